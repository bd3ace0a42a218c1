"""The request pipeline: what every client's (and service's) call to the local cloud goes through
before moto or the extension answers it, as a sequence of small stages. Each stage takes the
request and answers None (go on) or the refusal to send back; the first refusal ends the request.

    latency -> rate limit -> fault -> Region enabled -> authorize (IAM) -> validate (the service's rules)

The first four apply to clients' calls only (not to the sessions Step Functions' interpreter runs
tasks with: core.SERVICE_KEYS); authorization only while IAM is enforced."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.iam import models as iam_models

from assure_local import authz, aws_request, policies, principals, sigv4, validation
from assure_local.core import LOCK, Credential, session_token
from assure_local.errors import error_response, service_error, signature_error
from assure_local.knobs import Faults


@dataclass
class Request:
    """One call through the pipeline: the app's knobs and counters (`app`: the Extension), the WSGI
    request, its credential, and whether it is a client's call (else a service session's)."""

    app: Any
    environ: dict
    start_response: Callable
    cred: Credential
    client_call: bool

    def skip_body(self) -> None:
        """Reads the body away: an unread body can keep the client waiting."""
        length = int(self.environ.get("CONTENT_LENGTH") or 0)
        if length:
            self.environ["wsgi.input"].read(length)

    def body(self) -> bytes:
        """The body, read once and put back for the stages and the service after."""
        length = int(self.environ.get("CONTENT_LENGTH") or 0)
        raw = self.environ["wsgi.input"].read(length) if length else b""
        self.environ["wsgi.input"] = io.BytesIO(raw)
        return raw


Answer = list[bytes] | None


def latency(req: Request) -> Answer:
    """The latency set with /assure-api/limits (latencyMs), on every client call."""
    if req.client_call and req.app.limits.latency:
        time.sleep(req.app.limits.latency)
    return None


def rate_limit(req: Request) -> Answer:
    """A service's calls beyond its rate (/assure-api/limits) get its throttling error."""
    limits = req.app.limits
    if req.client_call and limits.rps and not limits.admit(req.cred.service):
        req.skip_body()
        return Faults.respond(req.start_response, req.environ, req.cred.service, "throttle")
    return None


def fault(req: Request) -> Answer:
    """The fault rules of /assure-api/faults: an error, or a delay before the call is served."""
    faults = req.app.faults
    if not (faults.rules and req.client_call):
        return None
    raw = req.body()
    cred, environ = req.cred, req.environ

    def caller() -> str:
        who = principals.principal_for(cred.key, session_token(environ))
        return f"{who.arn} {who.session_arn}" if who else ""

    rule = faults.pick(cred.service, Faults.operation(environ, raw), caller)
    if rule and rule["error"] == "delay":
        time.sleep(rule["delayMs"] / 1000.0)
    elif rule:
        return Faults.respond(req.start_response, environ, cred.service, rule["error"])
    return None


def region_enabled(req: Request) -> Answer:
    """A Region the account has not enabled does not know the account (services/account.py)."""
    cred = req.cred
    if req.client_call and not req.app.services["account"].enabled(iam_models.get_account_id_from(cred.key), cred.region):
        req.skip_body()
        return error_response(req.start_response, req.environ, cred.service, "invalid-key",
                              "The security token included in the request is invalid.")
    return None


def authorize(req: Request) -> Answer:
    """IAM, while it is enforced (authorize_request)."""
    if not policies.enabled():
        return None
    return authorize_request(req.app.iam_counts, req.environ, req.start_response, req.cred)


def validate(req: Request) -> Answer:
    """The service's own checks (validate_request)."""
    return validate_request(req.environ, req.start_response, req.cred)


STAGES: tuple[Callable[[Request], Answer], ...] = (latency, rate_limit, fault, region_enabled, authorize, validate)


def run(req: Request, stages: tuple[Callable[[Request], Answer], ...] = STAGES) -> Answer:
    """The first refusal of `stages`, in order, or None: the request goes on to its service."""
    for stage in stages:
        refused = stage(req)
        if refused is not None:
            return refused
    return None


def authorize_request(counts: dict[str, int], environ: dict, start_response: Callable, cred: Credential) -> list[bytes] | None:
    """IAM as AWS evaluates it (authz.py, iam.py): None to go on, or the service's refusal."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""

    environ["wsgi.input"] = io.BytesIO(raw)
    service, region = cred.service, cred.region
    token = session_token(environ)
    with LOCK:
        principal = principals.principal_for(cred.key, token)
        secret = principals.secret_of(cred.key) if principal is not None else None
    if principal is None or secret is None:
        counts["unknownKeys"] += 1
        return error_response(start_response, environ, service, "invalid-key",
                              "The security token included in the request is invalid.")
    # The signature, over the request as it arrived (nothing before this rewrites the path, the
    # query or the headers; the body is the bytes read above). A chunked transfer without a
    # Content-Length leaves the body unknown.
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not length
    try:
        failure = sigv4.verify(environ, None if chunked else raw, secret)
    except Exception as e:  # noqa: BLE001 - a request this server cannot read is refused, not answered with a 500
        print(f"signature of {environ.get('REQUEST_METHOD')} {environ.get('RAW_URI')} unreadable: {e!r}",
              file=sys.stderr, flush=True)
        failure = sigv4.Failure("malformed", f"The signature of this request could not be read: {e}")
    if failure is not None:
        counts["badSignatures"] += 1
        return signature_error(start_response, environ, service, failure)
    with LOCK:
        req = environ["assure.request"] = aws_request.parse_request(environ, raw, service, region)
        environ["assure.principal"] = principal  # who the CloudTrail event names (deliver.record)
        if not req.operation and service != "s3":
            return None
        denial = authz.authorize(principal, req)
    if denial is None:
        counts["allowed"] += 1
        return None
    counts["denied"] += 1
    return error_response(start_response, environ, service, "denied", denial.message)


def validate_request(environ: dict, start_response: Callable, cred: Credential | None) -> list[bytes] | None:
    """The service's own checks of the request (rules.py): None to go on, or its refusal. `cred`
    None: an unsigned request (S3's anonymous user, STS's identity providers)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""

    environ["wsgi.input"] = io.BytesIO(raw)
    service = cred.service if cred else environ["assure.request"].service
    with LOCK:
        # Read once per request: authorize parsed it already when IAM is enforced.
        req = environ.get("assure.request") or aws_request.parse_request(environ, raw, service, cred.region if cred else "us-east-1")
        refused = validation.check(req, iam_models.get_account_id_from(cred.key) if cred else "", raw)
    if refused is None:
        return None
    return service_error(start_response, environ, service, refused.status, refused.code, refused.message,
                         refused.extra)
