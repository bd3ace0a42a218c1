"""CloudWatch over Smithy RPC v2 CBOR, the protocol the current AWS SDKs speak to it: translated to moto's JSON and back."""

from __future__ import annotations

import datetime
import io
import json
import re
from collections.abc import Callable
from typing import Any

from assure_local import core
from assure_local.aws_request import Req
from assure_local.iam import as_list
from assure_local.rules import Refusal


class CborBridge:
    PATH = re.compile(r"^/service/([A-Za-z0-9_]+)/operation/([A-Za-z0-9_]+)$")

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}

    def model(self, signing: str) -> Any:
        if signing not in self.models:
            import botocore.session

            names = {"monitoring": "cloudwatch"}
            self.models[signing] = botocore.session.get_session().get_service_model(names.get(signing, signing))
        return self.models[signing]

    def owns(self, environ: dict) -> re.Match | None:
        if "cbor" not in (environ.get("CONTENT_TYPE") or "") and environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor":
            return None
        return self.PATH.match(environ.get("PATH_INFO", ""))

    @staticmethod
    def to_json(value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, dict):
            return {k: CborBridge.to_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [CborBridge.to_json(v) for v in value]
        if isinstance(value, bytes):
            import base64

            return base64.b64encode(value).decode()
        return value

    def __call__(self, moto_app: Callable, environ: dict, start_response: Callable, signing: str,
                 match: re.Match) -> list[bytes]:

        import cbor2
        from botocore.parsers import JSONParser

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        params = cbor2.loads(raw) if raw else {}
        body = json.dumps(self.to_json(params)).encode()
        namespace, operation = match.groups()
        inner = dict(environ)
        inner.update({"PATH_INFO": "/", "QUERY_STRING": "", "CONTENT_TYPE": "application/x-amz-json-1.0",
                      "HTTP_X_AMZ_TARGET": f"{namespace}.{operation}", "CONTENT_LENGTH": str(len(body)),
                      "wsgi.input": io.BytesIO(body)})
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        answer = b"".join(moto_app(inner, capture))
        status = int(captured["status"].split()[0])
        headers = {k.lower(): v for k, v in captured["headers"]}
        op = self.model(signing).operation_model(operation)
        if status >= 300:
            try:
                err = json.loads(answer or b"{}")
            except ValueError:
                err = {}
            code = (err.get("__type") or headers.get("x-amzn-errortype") or "InternalFailure").split("#")[-1]
            code = code.split(":")[0]
            doc = {"__type": code, "message": err.get("message") or err.get("Message") or ""}
            return core.respond(start_response, status, doc, error=code, cbor=True)
        parsed = JSONParser().parse({"status_code": status, "headers": headers, "body": answer}, op.output_shape)
        parsed.pop("ResponseMetadata", None)
        return core.respond(start_response, 200, parsed, cbor=True)


def cloudwatch_delete_alarms(req: Req, account: str, raw: bytes) -> Refusal | None:
    # DeleteAlarms: "If you specify any alarm that does not exist, ... no alarms are deleted" and the call
    # fails with ResourceNotFound (HTTP 404); moto deletes the others and succeeds.
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteAlarms.html
    if req.service != "monitoring" or req.operation != "DeleteAlarms":
        return None
    from moto.cloudwatch.models import cloudwatch_backends

    existing = cloudwatch_backends[account][req.region].alarms
    missing = [n for n in as_list(req.params.get("AlarmNames")) if n not in existing]
    if missing:
        return Refusal(404, "ResourceNotFound", f"{', '.join(missing)} not found")
    return None
