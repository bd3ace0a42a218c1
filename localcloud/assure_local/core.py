"""The local cloud's shared state and plumbing, below every other module: the lock moto's state is
changed under, transitions (what AWS makes is not final at once), the organization an account is in
and what its services see of it, credentials in a request, AWS-style pages and API errors."""

from __future__ import annotations

import datetime
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from moto.organizations.models import organizations_backends

# Services the extension answers in REST-JSON (errors in x-amzn-ErrorType and a JSON body; throttling
# is TooManyRequestsException, 429: https://docs.aws.amazon.com/accounts/latest/reference/API_ListRegions.html).
REST_JSON = ("guardduty", "access-analyzer", "account", "lambda")


SCOPE = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")


# S3's Signature Version 2 header, `AWS AKID:signature`
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html).
SIGV2 = re.compile(r"^AWS ([^:\s]+):")


LOCK = threading.RLock()


class Credential(NamedTuple):
    """Who signed a request and for what: the access key, and the Region and signing name of its
    credential scope."""

    key: str
    region: str
    service: str


def credential_of(environ: dict) -> Credential | None:
    """The credential a request is signed with: in its Authorization header (Signature Version 4, or
    S3's Version 2), or, for a presigned URL, in its query string (`X-Amz-Credential`, or S3's
    `AWSAccessKeyId`) (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
    None: the request is not signed."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    m = SCOPE.search(header)
    if m:
        return Credential(m.group(1), m.group(2), m.group(3))
    m = SIGV2.match(header)
    if m:
        return Credential(m.group(1), "us-east-1", "s3")
    query = environ.get("QUERY_STRING", "")
    if "X-Amz-Credential" not in query and "AWSAccessKeyId" not in query:
        return None
    q = parse_qs(query)
    parts = (q.get("X-Amz-Credential") or [""])[0].split("/")
    if len(parts) == 5 and parts[4] == "aws4_request":
        return Credential(parts[0], parts[2], parts[3])
    if q.get("AWSAccessKeyId") and q.get("Signature"):
        return Credential(q["AWSAccessKeyId"][0], "us-east-1", "s3")
    return None


def session_token(environ: dict) -> str | None:
    """The session token sent with a request: its header, or a presigned URL's query parameter."""
    token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
    if token is None and "X-Amz-Security-Token" in environ.get("QUERY_STRING", ""):
        token = (parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Security-Token") or [None])[0]
    return token


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------------------------
# Transitions. On AWS what the pipeline creates is not final at once:
# - an IAM Access Analyzer analyzer is CREATING, then ACTIVE ("The status is Creating when the analyzer
#   creation is in progress": https://docs.aws.amazon.com/access-analyzer/latest/APIReference/API_AnalyzerSummary.html);
# - a Firehose stream is CREATING, then ACTIVE, "and it now accepts data"
#   (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html);
# - a GuardDuty publishing destination is PENDING_VERIFICATION, then PUBLISHING or
#   UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY
#   (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Destination.html).
# Each records, when it is created, when its transition ends (the setting then in force: a later change
# never turns a final status back); its status is computed when it is read, with no thread.
# ASSURE_TRANSITION_SECONDS sets the default (2); POST /assure-api/limits {"transitionSeconds": N}
# changes it. Tests may shorten the delays; none may turn them off: below MIN_TRANSITION is raised to it.
MIN_TRANSITION = 0.5


def transition_seconds(value: Any) -> float:
    return max(MIN_TRANSITION, float(value))


TRANSITION = {"seconds": transition_seconds(os.environ.get("ASSURE_TRANSITION_SECONDS", "2"))}


def final_at() -> float:
    """When a resource created now leaves its transitional status (time.monotonic)."""
    return time.monotonic() + TRANSITION["seconds"]


def transitional(final: float | None) -> bool:
    return final is not None and time.monotonic() < final


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class Call:
    """One request as the handlers see it."""

    def __init__(self, account: str, region: str, method: str, path: str, query: dict, body: dict):
        self.account, self.region, self.method, self.path = account, region, method, path
        self.query, self.body = query, body

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


def organization_of(account: str) -> tuple[str, Any] | None:
    """(management account id, moto's organization backend) of the organization `account` is in."""
    own = organizations_backends[account]["aws"]
    if own.org is not None:
        return account, own
    if account in organizations_backends.master_accounts:
        mgmt, partition = organizations_backends.master_accounts[account]
        return mgmt, organizations_backends[mgmt][partition]
    return None


# When each (account, service principal) registration as delegated administrator reaches the
# services (time.monotonic). Organizations lists a registration at once; the service it names
# learns of it through Organizations a moment later, and until then treats the account as any
# member (CreateAnalyzer with an organization zone of trust: AccessDeniedException; a Config
# organization aggregator: OrganizationAccessDeniedException). AWS documents no bound; the
# transition setting (TRANSITION) stands for it, so a caller that acts right after registering
# must retry, as on AWS.
REGISTERED: dict[tuple[str, str], float] = {}


def delegated_admin(account: str, principal: str) -> bool:
    """Whether the service `principal` sees `account` as its delegated administrator."""
    org = organization_of(account)
    if org is None:
        return False
    listed = any(a.account.id == account and principal in a.services for a in org[1].admins)
    return listed and not transitional(REGISTERED.get((account, principal)))


# When trusted access for each (management account, service principal) reaches the service
# (time.monotonic). Organizations lists the service at once; the service learns of it a moment
# later: "it can take a few minutes for the change to propagate" (enabling trusted access with the
# Organizations API rather than the service's own console, https://docs.aws.amazon.com/organizations/latest/userguide/orgs_integrate_services.html).
# The transition setting (TRANSITION) stands for it; until then the service answers as it does with
# trusted access off, so a caller that acts right after enabling it must retry, as on AWS.
TRUSTED: dict[tuple[str, str], float] = {}


def trusted_access(account: str, principal: str) -> bool:
    """Whether the service `principal` sees trusted access enabled in `account`'s organization."""
    org = organization_of(account)
    if org is None or not any(s["ServicePrincipal"] == principal for s in org[1].services):
        return False
    return not transitional(TRUSTED.get((org[0], principal)))


def paged(items: list, key: str, token: Any, size: Any, default: int = 50, token_key: str = "nextToken") -> dict:
    """AWS-style pagination: the page of `items` (under `key`) that the opaque `token` (here: the
    offset) starts, at most `size` (else `default`) long, and the next page's token (under
    `token_key`) while there is one."""
    start = int(token or 0)
    size = int(size or default) or default
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out[token_key] = str(start + size)
    return out


def page(items: list, call: Call, key: str) -> dict:
    """`paged` by a REST request's maxResults and nextToken query parameters."""
    return paged(items, key, call.q("nextToken"), call.q("maxResults"))


# Access keys of the sessions Step Functions' interpreter calls the local cloud with: authorized like
# any client, but not slowed, throttled or failed by the test knobs meant for assure's own calls.
SERVICE_KEYS: set[str] = set()


# Firehose streams in their transition: stream ARN -> when the stream is ACTIVE (time.monotonic).
STREAMS_CREATING: dict[str, float] = {}


# (account, Region, instance ID) -> the registration.
INSTANCES: dict[tuple[str, str, str], dict] = {}


def api_doc(environ: dict) -> dict | None:
    """What a call to one of the local cloud's own endpoints asks: its query's parameters, and its
    JSON object body over them; None when the body is not a JSON object."""
    from urllib.parse import parse_qs

    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    return {**query, **doc} if isinstance(doc, dict) else None


def respond(start_response: Callable, status: int, body: dict, error: str | None = None, cbor: bool = False) -> list[bytes]:
    """A JSON (or, `cbor`, Smithy RPC v2 CBOR) answer of the local cloud's own operations."""
    if cbor:
        import cbor2

        data = cbor2.dumps(body, datetime_as_timestamp=True, timezone=datetime.UTC)
        headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    else:
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/json")]
    headers += [("Content-Length", str(len(data))), ("x-amzn-RequestId", str(uuid.uuid4()))]
    if error:
        headers.append(("x-amzn-ErrorType", error))
    reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
    start_response(f"{status} {reasons.get(status, 'Error')}", headers)
    return [data]


ADMINISTRATOR = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


# Every attribute of moto a fix replaced: "module.Class.name" (see replace).
REPLACED: list[str] = []


def replace(owner: Any, name: str, new: Any) -> Any:
    """Replaces `owner.name` (a class's method, a module's function) with `new`: one of the local
    cloud's fixes to moto, recorded in REPLACED. Returns what was there."""
    old = getattr(owner, name, None)
    setattr(owner, name, new)
    REPLACED.append(f"{getattr(owner, '__module__', '')}.{getattr(owner, '__qualname__', owner)}.{name}")
    return old
