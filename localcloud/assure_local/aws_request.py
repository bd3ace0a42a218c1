"""A request as IAM sees it (Req): its service, operation and parameters, parsed from any protocol (query, JSON, REST), and the helpers that read its parameters."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote


@dataclass
class Req:
    service: str  # the signing name
    operation: str
    params: dict
    region: str
    method: str = ""
    path: str = ""
    query: dict | None = None
    headers: dict | None = None


# Signing names whose IAM prefix differs.
PREFIX = {"monitoring": "cloudwatch", "email": "ses"}


def arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and re.fullmatch(r"\d{12}", parts[4]) else None


def p(params: dict, *names: str) -> Any:
    for n in names:
        for k, v in params.items():
            if k.lower() == n.lower():
                return v
    return None


def task_policy_arn(params: dict) -> str | None:
    """AssumeRoot's TaskPolicyArn (a PolicyDescriptorType: `TaskPolicyArn.arn` in the query protocol)."""
    value = p(params, "TaskPolicyArn.arn")
    if value is None and isinstance(p(params, "TaskPolicyArn"), dict):
        value = p(p(params, "TaskPolicyArn"), "arn")
    return value if isinstance(value, str) and value else None


def dig(params: Any, path: str) -> list[str]:
    head, _, rest = path.partition(".")
    many = head.endswith("[]")
    key = head[:-2] if many else head
    value = p(params, key) if isinstance(params, dict) else None
    values = value if many and isinstance(value, list) else [value]
    out: list[str] = []
    for v in values:
        if v is None:
            continue
        if rest:
            out += dig(v, rest)
        elif isinstance(v, str) and v:
            out.append(v)
    return out


def parse_request(environ: dict, raw: bytes, service: str, region: str) -> Req:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    params: dict = {}
    op = ""
    if target:
        op = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(raw) if raw.strip() else {}
        except ValueError:
            params = {}
    elif "/operation/" in path:
        import cbor2

        op = path.rsplit("/", 1)[-1]
        try:
            params = cbor2.loads(raw) if raw else {}
        except Exception:  # noqa: BLE001 - a body that is not CBOR carries no parameters
            params = {}
    elif service in BOTOCORE_NAME or service in ("guardduty", "account", "lambda"):
        op, params = rest_operation(service, method, unquote(path), raw)
    elif service != "s3" and (b"Action=" in raw or "Action" in query):
        form = parse_qs(raw.decode(errors="replace"), keep_blank_values=True) if raw else {}
        form.update(query)
        op = form.get("Action", [""])[0]
        params = query_params(form)
    return Req(service, op, params, region, method, path, query, headers)


def query_params(form: dict) -> dict:
    """The query protocol's flattened members: `Tags.member.1.Key` and friends become lists."""
    out: dict[str, Any] = {}
    lists: dict[str, dict[int, dict]] = {}
    for k, v in form.items():
        m = re.match(r"^(\w+)\.member\.(\d+)(?:\.(\w+))?$", k)
        if m:
            entry = lists.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})
            if m.group(3):
                entry[m.group(3)] = v[0]
            else:
                entry["_"] = v[0]
            continue
        out[k] = v[0]
    for name, items in lists.items():
        out[name] = [i.get("_", i) if set(i) == {"_"} else i for _, i in sorted(items.items())]
    return out


# REST-JSON services (GuardDuty, IAM Access Analyzer, Account Management): the operation is found by matching the method
# and path against the service's API model, as shipped with botocore.
BOTOCORE_NAME = {"access-analyzer": "accessanalyzer"}


_REST: dict[str, list] = {}


def rest_routes(service: str) -> list:
    if service not in _REST:
        import botocore.session

        model = botocore.session.get_session().get_service_model(BOTOCORE_NAME.get(service, service))
        routes = []
        for name in model.operation_names:
            http = model.operation_model(name).http
            uri = http["requestUri"].split("?")[0]
            labels = re.findall(r"\{(\w+)\+?\}", uri)
            rx = "^" + re.sub(r"\\\{(\w+)(\\\+)?\\\}", lambda m: "(.+)" if m.group(2) else "([^/]+)", re.escape(uri)) + "/?$"
            literal = len(re.sub(r"\{[^}]+\}", "", uri))
            routes.append((http["method"], re.compile(rx), labels, name, literal))
        routes.sort(key=lambda r: -r[4])
        _REST[service] = routes
    return _REST[service]


def rest_operation(service: str, method: str, path: str, raw: bytes) -> tuple[str, dict]:
    for m, rx, labels, name, _ in rest_routes(service):
        match = rx.match(path)
        if m == method and match:
            try:
                params = json.loads(raw) if raw.strip() else {}
            except ValueError:
                params = {}
            if not isinstance(params, dict):
                params = {}
            for label, value in zip(labels, match.groups(), strict=False):
                params[label] = unquote(value)
            return name, params
    return "", {}
