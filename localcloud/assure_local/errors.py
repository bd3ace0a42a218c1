"""The local cloud's answers for refused requests, in each protocol's shape (query XML, JSON, REST-XML)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from assure_local import sigv4
from assure_local.core import (
    REST_JSON,
)


def error_response(start_response: Callable, environ: dict, service: str, kind: str, message: str) -> list[bytes]:
    """A refusal in the shape the service's protocol uses: `denied` (AccessDenied) or `invalid-key`
    (an access key the account does not know)."""
    denied = kind == "denied"
    path = environ.get("PATH_INFO", "")
    if service == "s3":
        code, status = ("AccessDenied" if denied else "InvalidAccessKeyId"), 403
    elif "/operation/" in path:
        code, status = ("AccessDenied" if denied else "InvalidClientTokenId"), 403
    elif environ.get("HTTP_X_AMZ_TARGET") or service in REST_JSON:
        code = "AccessDeniedException" if denied else "UnrecognizedClientException"
        if service == "sqs":
            code = "AccessDenied" if denied else "InvalidClientTokenId"
        status = 403 if denied or service == "sqs" else 400
    else:
        code = "AccessDenied" if denied else "InvalidClientTokenId"
        if service == "sns" and denied:
            code = "AuthorizationError"
        status = 403
    return service_error(start_response, environ, service, status, code, message)


def signature_error(start_response: Callable, environ: dict, service: str, failure: sigv4.Failure) -> list[bytes]:
    """A signature refused (sigv4.Failure), in the service's protocol. S3: SignatureDoesNotMatch,
    RequestTimeTooSkewed, AccessDenied ("Request has expired"), XAmzContentSHA256Mismatch,
    AuthorizationHeaderMalformed / AuthorizationQueryParametersError
    (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList), with the
    elements S3 adds (StringToSign, CanonicalRequest, …). Query services, and the query-compatible
    codes of CloudWatch (CBOR, and JSON with x-amzn-query-mode) and SQS's JSON: 403
    SignatureDoesNotMatch (a signature signed too long ago too, "Signature expired: …"), 400 IncompleteSignature
    (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html). JSON services: 400
    InvalidSignatureException, as CloudWatch Logs, KMS, DynamoDB answer; REST-JSON ones 403."""
    kind = failure.kind
    if service == "s3":
        status, code = {
            "signature": (403, "SignatureDoesNotMatch"),
            "skewed": (403, "RequestTimeTooSkewed"),
            "expired": (403, "AccessDenied"),
            "denied": (403, "AccessDenied"),
            "payload": (400, "XAmzContentSHA256Mismatch"),
            "malformed": (400, "AuthorizationQueryParametersError" if failure.presigned else "AuthorizationHeaderMalformed"),
        }.get(kind, (403, "SignatureDoesNotMatch"))
        return service_error(start_response, environ, service, status, code, failure.message, failure.extra)
    malformed = kind == "malformed"
    json_protocol = bool(environ.get("HTTP_X_AMZ_TARGET")) or service in REST_JSON
    # A client of a query-compatible service (x-amzn-query-mode: CloudWatch and SQS over JSON) reads
    # the query protocol's codes.
    query_compatible = environ.get("HTTP_X_AMZN_QUERY_MODE", "").lower() == "true"
    if "/operation/" in environ.get("PATH_INFO", "") or service == "sqs" or query_compatible or not json_protocol:
        status, code = (400, "IncompleteSignature") if malformed else (403, "SignatureDoesNotMatch")
    elif malformed:
        status, code = 400, "IncompleteSignatureException"
    else:
        status, code = (403 if service in REST_JSON else 400), "InvalidSignatureException"
    return service_error(start_response, environ, service, status, code, failure.message)


STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}


def service_error(start_response: Callable, environ: dict, service: str, status: int, code: str,
                  message: str, extra: dict | None = None) -> list[bytes]:
    """An error answer in the service's protocol: S3's XML, Smithy RPC v2 CBOR, JSON (x-amz-target and
    REST-JSON), or the query protocol's XML."""
    rid = str(uuid.uuid4())
    line = f"{status} {STATUS_TEXT.get(status, 'Error')}"
    headers = [("x-amzn-ErrorType", code), ("x-amzn-RequestId", rid)]
    if service == "s3":
        # S3's error document names more of the error in elements of its own (SignatureDoesNotMatch's
        # StringToSign, RequestTimeTooSkewed's ServerTime, …).
        more = "".join(f"<{k}>{xml_escape(str(v))}</{k}>" for k, v in (extra or {}).items())
        body = (f"<Error><Code>{code}</Code><Message>{xml_escape(message)}</Message>{more}"
                f"<RequestId>{rid}</RequestId></Error>").encode()
        headers.append(("Content-Type", "application/xml"))
    elif "/operation/" in environ.get("PATH_INFO", ""):
        import cbor2

        body = cbor2.dumps({"__type": code, "message": message})
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    elif environ.get("HTTP_X_AMZ_TARGET") or service in REST_JSON:
        body = json.dumps({"__type": code, "message": message, "Message": message, **(extra or {})}).encode()
        headers.append(("Content-Type", "application/x-amz-json-1.1"))
    else:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{xml_escape(message)}</Message>"
                f"</Error><RequestId>{rid}</RequestId></ErrorResponse>").encode()
        headers.append(("Content-Type", "text/xml"))
    start_response(line, headers + [("Content-Length", str(len(body)))])
    return [body]


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
