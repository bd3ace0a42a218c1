"""Fault injection and rate limits, for tests and the benchmark: the knobs of /assure-api/faults and /assure-api/limits."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs

from assure_local import rules
from assure_local.core import (
    LOCK,
    REST_JSON,
    TRANSITION,
    transition_seconds,
)


class Faults:
    def __init__(self) -> None:
        import random

        self.rules: list[dict] = []
        self.random = random.Random(7)

    @staticmethod
    def operation(environ: dict, raw: bytes) -> str:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            return target.rsplit(".", 1)[-1]
        path = environ.get("PATH_INFO", "")
        if "/operation/" in path:
            return path.rsplit("/", 1)[-1]
        if raw and b"Action=" in raw:
            return parse_qs(raw.decode(errors="replace")).get("Action", [""])[0]
        return f"{environ.get('REQUEST_METHOD', '')} {path}"

    def pick(self, service: str, operation: str, caller: Callable[[], str]) -> dict | None:
        with LOCK:
            for rule in self.rules:
                if rule["service"] not in ("*", service) or rule["operation"] not in ("*", operation):
                    continue
                if rule.get("caller") and rule["caller"] not in caller():
                    continue
                if rule["fired"] >= rule["count"] or self.random.random() >= rule["rate"]:
                    continue
                rule["fired"] += 1
                return rule
        return None

    @staticmethod
    def respond(start_response: Callable, environ: dict, service: str, kind: str) -> list[bytes]:
        if kind == "5xx":
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        denied = kind == "AccessDenied"
        status = "403 Forbidden" if denied else "400 Bad Request"
        message = "injected by the local cloud"
        if service == "s3":
            code = "AccessDenied" if denied else "SlowDown"
            status = "403 Forbidden" if denied else "503 Slow Down"
            body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            ctype = "application/xml"
        elif environ.get("HTTP_X_AMZ_TARGET") or service in REST_JSON:
            code = "AccessDeniedException" if denied else "ThrottlingException"
            if service == "organizations" and not denied:
                code = "TooManyRequestsException"
            if service in REST_JSON and not denied:
                code, status = "TooManyRequestsException", "429 Too Many Requests"
            body = json.dumps({"__type": code, "message": message}).encode()
            ctype = "application/x-amz-json-1.1"
        elif "/operation/" in environ.get("PATH_INFO", ""):
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        else:
            code = "AccessDenied" if denied else "Throttling"
            body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                    f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>").encode()
            ctype = "text/xml"
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body))),
                                ("x-amzn-ErrorType", code), ("x-amzn-RequestId", str(uuid.uuid4()))])
        return [body]


DEFAULT_PROPAGATION = rules.PROPAGATION["seconds"]


DEFAULT_TRANSITION = TRANSITION["seconds"]


class Limits:
    def __init__(self) -> None:
        self.rps: dict[str, float] = {}
        self.tokens: dict[str, float] = {}
        self.stamp: dict[str, float] = {}
        self.allowed: dict[str, int] = {}
        self.throttled: dict[str, int] = {}
        self.latency = 0.0

    def set(self, doc: dict) -> None:
        with LOCK:
            self.rps = {str(l["service"]): float(l["rps"]) for l in doc.get("limits", []) if float(l["rps"]) > 0}
            self.tokens = dict(self.rps)
            self.stamp = {k: time.monotonic() for k in self.rps}
            self.allowed, self.throttled = {}, {}
            self.latency = max(0.0, float(doc.get("latencyMs", 0))) / 1000.0
            rules.PROPAGATION["seconds"] = float(doc.get("iamPropagationSeconds", DEFAULT_PROPAGATION))
            TRANSITION["seconds"] = transition_seconds(doc.get("transitionSeconds", DEFAULT_TRANSITION))

    def admit(self, service: str) -> bool:
        """Whether a call to `service` may go on now; counts it either way."""
        with LOCK:
            rate = self.rps.get(service)
            if rate is None:
                return True
            now = time.monotonic()
            self.tokens[service] = min(rate, self.tokens[service] + (now - self.stamp[service]) * rate)
            self.stamp[service] = now
            if self.tokens[service] >= 1.0:
                self.tokens[service] -= 1.0
                self.allowed[service] = self.allowed.get(service, 0) + 1
                return True
            self.throttled[service] = self.throttled.get(service, 0) + 1
            return False

    def state(self) -> dict:
        with LOCK:
            return {"limits": [{"service": k, "rps": v} for k, v in self.rps.items()],
                    "latencyMs": round(self.latency * 1000), "allowed": dict(self.allowed),
                    "throttled": dict(self.throttled), "iamPropagationSeconds": rules.PROPAGATION["seconds"],
                    "transitionSeconds": TRANSITION["seconds"]}
