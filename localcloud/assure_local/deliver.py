"""Deliveries: what AWS services write on their own, on AWS's timeline, as the service principal.

On AWS a trail's log files, Config's snapshots and GuardDuty's exports arrive some minutes after the
activity they record, written by the service into the customer's bucket under the customer's bucket
and key policies. The local cloud stands for "some minutes" with its transition delay (core.
TRANSITION, the one analyzers and Firehose streams wait; POST /assure-api/limits transitionSeconds),
and writes only what the policies let the service write.

For the delivery modules (services/*, deliver_findings.py, events.py), scheduler.py has:
- `later(seconds, fn)`: run `fn` once, `seconds` from now, on the one delivery thread, holding
  core.LOCK (moto's backends are not thread safe);
- `delay()`: how long a delivery waits (the transition);
- `flush()`: run every queued delivery now, due or not (tests; POST /assure-api/deliveries/flush);
- `put_object(bucket, key, body, kms_key_arn, content_type)`: an object as a delivering service
  writes it (owned by the bucket owner, SSE-KMS as S3 reports it);
and this module:
- `subscribe(fn)`: `fn(record)` for each CloudTrail event record, as it is recorded (account
  `record["recipientAccountId"]`, Region `record["awsRegion"]`).

CloudTrail here: every request the local cloud authorizes and answers with success becomes an event
record (`record`, called by `recorded`, the extension's WSGI wrapper); each trail that covers and
selects it batches it, per trail, account and Region, and delivers the batch after the delay as one
gzipped log file, and to its CloudWatch Logs log group when it has one (services/cloudtrail_logs.py:
`deliver_batch`). GetTrailStatus answers what those deliveries recorded; GetTrail, GetTrailStatus,
GetEventSelectors and GetInsightSelectors take a multi-Region trail's ARN from any Region
(services/cloudtrail_logs.py: `patch_cloudtrail`).

Locking: a delivery holds core.LOCK, which the extension holds around its own state and
each request's authorization; requests do not hold one lock from end to end (an SQS long poll, or
moto's Step Functions interpreter calling the server from inside a request, would stall every other
caller), so a delivery interleaves with moto's answers exactly as two concurrent requests already do.

Not recorded: requests the local cloud refuses or moto fails (AWS records those too, with an
errorCode: a gap on the side of recording less), data events, the local cloud's own callers (moto's
Step Functions interpreter, /assure-api/...), and requests while IAM enforcement is off (nothing is
authorized then).
"""

from __future__ import annotations

import datetime
import json
import sys
import traceback
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from assure_local import aws_request, core, policies, principals, resources
from assure_local.scheduler import delay, flush, queued
from assure_local.services.cloudtrail_logs import WRITES, enqueue

# ---------------------------------------------------------------------------------------------------
# The delivery thread


# ---------------------------------------------------------------------------------------------------
# Writing an object as a service


# ---------------------------------------------------------------------------------------------------
# The extension's hook: each answered request


# Everything recorded is handed to these too (subscribe).
LISTENERS: list[Callable[[dict], Any]] = []
WRITING_SERVICES = {"s3", "kms", "organizations"}


def subscribe(fn: Callable[[dict], Any]) -> None:
    """`fn(record)` for each CloudTrail event record as it is recorded (under core.LOCK)."""
    LISTENERS.append(fn)


def recorded(answer: Callable, environ: dict, start_response: Callable) -> Any:
    """The extension's WSGI entry: answers the request (`answer`, the extension's own __call__), then
    records it (`record`) if it succeeded, before the client sees the answer. Also answers
    /assure-api/deliveries (GET: what is queued; POST /assure-api/deliveries/flush: run it all now)."""
    path = environ.get("PATH_INFO", "")
    if path.startswith("/assure-api/deliveries"):
        return deliveries_api(environ, start_response)
    seen: dict[str, Any] = {}

    def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
        seen["status"], seen["headers"] = status, headers
        return start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)

    body = answer(environ, capture)
    if str(seen.get("status", ""))[:1] == "2" and "assure.request" in environ:
        try:
            record(environ, {str(k).lower(): v for k, v in seen.get("headers") or []})
        except Exception:  # noqa: BLE001 - a failed record must not fail the request it records
            print(f"recording {environ.get('REQUEST_METHOD')} {path} failed:\n{traceback.format_exc()}",
                  file=sys.stderr, flush=True)
    return body


def deliveries_api(environ: dict, start_response: Callable) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
    if method == "POST" and path == "/assure-api/deliveries/flush":
        body: dict[str, Any] = {"ran": flush(), "queued": queued()}
        status = "200 OK"
    elif method == "GET" and path == "/assure-api/deliveries":
        body, status = {"queued": queued(), "delaySeconds": delay()}, "200 OK"
    else:
        body, status = {"message": "POST /assure-api/deliveries/flush or GET /assure-api/deliveries"}, "404 Not Found"
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


# ---------------------------------------------------------------------------------------------------
# CloudTrail event records
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html)


# Global services: "events are delivered to any trail that includes global services, and are logged as
# occurring in US East (N. Virginia) Region"
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-concepts.html#cloudtrail-concepts-global-service-events).
# STS is global at its global endpoint (signed for us-east-1); a regional endpoint's events are that
# Region's. Organizations has its one endpoint in us-east-1
# (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_cloudtrail-integration.html).
GLOBAL_SERVICES = {"iam", "organizations", "cloudfront", "route53"}

# Data events, which a trail records only when its selectors name them, never as management events
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html):
# S3's object-level operations (decided by the request's path, below), SQS's message operations,
# Lambda's Invoke.
DATA_EVENTS = {
    "sqs": {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch",
            "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"},
    "lambda": {"Invoke", "InvokeAsync", "InvokeWithResponseStream"},
}

# S3's event names where they differ from the IAM action authz names a request by
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-s3-info.html, "Amazon S3
# bucket-level actions tracked by CloudTrail logging"); by (action, method).
S3_EVENT_NAMES = {
    "s3:ListAllMyBuckets": "ListBuckets",
    "s3:GetEncryptionConfiguration": "GetBucketEncryption",
    ("s3:PutEncryptionConfiguration", "PUT"): "PutBucketEncryption",
    ("s3:PutEncryptionConfiguration", "DELETE"): "DeleteBucketEncryption",
    "s3:GetLifecycleConfiguration": "GetBucketLifecycle",
    ("s3:PutLifecycleConfiguration", "PUT"): "PutBucketLifecycle",
    ("s3:PutLifecycleConfiguration", "DELETE"): "DeleteBucketLifecycle",
    ("s3:PutBucketPublicAccessBlock", "DELETE"): "DeleteBucketPublicAccessBlock",
    ("s3:PutBucketOwnershipControls", "DELETE"): "DeleteBucketOwnershipControls",
    ("s3:PutBucketTagging", "DELETE"): "DeleteBucketTagging",
    "s3:GetReplicationConfiguration": "GetBucketReplication",
    ("s3:PutReplicationConfiguration", "PUT"): "PutBucketReplication",
    ("s3:PutReplicationConfiguration", "DELETE"): "DeleteBucketReplication",
    "s3:GetBucketCORS": "GetBucketCors",
    ("s3:PutBucketCORS", "PUT"): "PutBucketCors",
    ("s3:PutBucketCORS", "DELETE"): "DeleteBucketCors",
    "s3:GetBucketObjectLockConfiguration": "GetObjectLockConfiguration",
    "s3:PutBucketObjectLockConfiguration": "PutObjectLockConfiguration",
    "s3:GetAccelerateConfiguration": "GetBucketAccelerateConfiguration",
    "s3:PutAccelerateConfiguration": "PutBucketAccelerateConfiguration",
}
S3_DATA_ACTIONS = {"s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads", "s3:DeleteObject"}

READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup")
# The most of a request's body kept as requestParameters: CloudTrail's own bound on an event is 256 KB
# ("Event size", https://docs.aws.amazon.com/awscloudtrail/latest/userguide/WhatIsCloudTrail-Limits.html);
# a larger request (a function's code, a template) is recorded without its parameters.
MAX_PARAMETER_BYTES = 100 * 1024
# KMS's cryptographic operations are management events that read: "readOnly": true in their records
# (https://docs.aws.amazon.com/kms/latest/developerguide/ct-decrypt.html, ct-generatedatakey.html).
READ_ONLY_NAMES = {"Decrypt", "Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateRandom",
                   "ReEncrypt", "Sign", "Verify", "GenerateMac", "VerifyMac"}


def read_only(name: str) -> bool:
    return name.startswith(READ_PREFIXES) or name in READ_ONLY_NAMES


def s3_event(req: Any) -> tuple[str, bool, dict]:
    """(event name, whether a data event, requestParameters) of an S3 request."""
    path = unquote(req.path or "").lstrip("/")
    bucket, _, key = path.partition("/")
    query = {k: (v[0] if isinstance(v, list) and v else v) for k, v in (req.query or {}).items()}
    params = {"bucketName": bucket, "Host": (req.headers or {}).get("host", "")} if bucket else {}
    params.update({k: v for k, v in query.items() if not k.startswith("X-Amz-")})
    if key:
        return "", True, params
    if bucket and req.method == "HEAD" and not query:
        return "HeadBucket", False, params
    checks = resources.s3_checks(req)
    if not checks:
        return "", False, params
    action = checks[0][0]
    if action in S3_DATA_ACTIONS:
        return "", True, params
    name = S3_EVENT_NAMES.get((action, req.method)) or S3_EVENT_NAMES.get(action) or action.split(":", 1)[1]
    return str(name), False, params


def lower_camel(value: Any, depth: int = 0) -> Any:
    """requestParameters' names as CloudTrail writes them, lowerCamelCase ("roleName")."""
    if depth > 8:
        return value
    if isinstance(value, dict):
        return {(k[:1].lower() + k[1:] if isinstance(k, str) else k): lower_camel(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_camel(v, depth + 1) for v in value]
    return value


def user_identity(principal: Any, access_key: str) -> dict:
    """The userIdentity element (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-user-identity.html)."""
    from moto.iam.models import iam_backends

    account = principal.account
    if principal.kind == "root":
        return {"type": "Root", "principalId": account, "arn": principal.arn, "accountId": account,
                "accessKeyId": access_key}
    if principal.kind == "user":
        name = principal.arn.split("/")[-1]
        user = iam_backends[account]["aws"].users.get(name)
        return {"type": "IAMUser", "principalId": getattr(user, "id", ""), "arn": principal.arn, "accountId": account,
                "accessKeyId": access_key, "userName": name}
    if principal.kind == "role":
        role = policies.role_by_arn(principal.arn)
        role_id = getattr(role, "id", "")
        session = principal.session_arn.rsplit("/", 1)[-1]
        issued = principals._SESSIONS.get(access_key)
        created = getattr(getattr(issued, "access_key", None), "create_date", None)
        attributes = {"mfaAuthenticated": "false"}
        if created is not None:
            attributes["creationDate"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"type": "AssumedRole", "principalId": f"{role_id}:{session}", "arn": principal.session_arn,
                "accountId": account, "accessKeyId": access_key,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role_id, "arn": principal.arn,
                                                     "accountId": account, "userName": principal.arn.split("/")[-1]},
                                   "attributes": attributes}}
    return {"type": "Unknown", "principalId": principal.arn, "accountId": account, "accessKeyId": access_key}


def record(environ: dict, headers: dict) -> dict | None:
    """The CloudTrail event record of an answered request, handed to each trail that records it (and
    to the listeners); None when CloudTrail records nothing of it."""

    req = environ.get("assure.request")
    name, data = "", False
    params: dict = {}
    if req is not None and req.service == "s3":
        name, data, params = s3_event(req)
    elif req is not None:
        name = req.operation
        params = {k: v for k, v in (req.params or {}).items() if k not in ("Action", "Version")}
    if not name or req is None:
        return None
    reads = read_only(name)
    if not reads and not data and req.service in WRITING_SERVICES:
        WRITES["count"] += 1
    principal = environ.get("assure.principal")
    cred = core.credential_of(environ)
    if principal is None or cred is None or data or name in DATA_EVENTS.get(req.service, ()):
        return None
    if cred.key in core.SERVICE_KEYS or cred.key == "ak":
        return None  # the local cloud's own callers (moto's Step Functions interpreter)
    service = req.service
    region = req.region
    global_event = service in GLOBAL_SERVICES or (service == "sts" and region == "us-east-1")
    if global_event:
        region = "us-east-1"
    account = principal.account
    # The service's endpoint name: CloudWatch's is monitoring (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/logging_cw_api_calls.html).
    source = "monitoring.amazonaws.com" if service == "monitoring" else f"{aws_request.PREFIX.get(service, service)}.amazonaws.com"
    with core.LOCK:
        trails = [(t, org) for t, org in covering(account, region, global_event)
                  if selects(t, source, name, reads)]
        if not trails and not LISTENERS:
            return None
        now = datetime.datetime.now(datetime.UTC)
        small = int(environ.get("CONTENT_LENGTH") or 0) <= MAX_PARAMETER_BYTES
        parameters = lower_camel(params) if params and small else None
        rec = {
            "eventVersion": "1.11",
            "userIdentity": user_identity(principal, cred.key),
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": environ.get("REMOTE_ADDR") or "127.0.0.1",
            "userAgent": environ.get("HTTP_USER_AGENT", ""),
            "requestParameters": parameters,
            "responseElements": None,
            "requestID": headers.get("x-amzn-requestid") or headers.get("x-amz-request-id") or str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "readOnly": reads,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
        for trail, org in trails:
            enqueue(trail, account, region, org, rec, now)
        for fn in LISTENERS:
            try:
                fn(rec)
            except Exception:  # noqa: BLE001 - one listener's failure must not stop the others
                print(f"event listener {fn!r} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    return rec


# ---------------------------------------------------------------------------------------------------
# Which trails record an event


def covering(account: str, region: str, global_event: bool) -> list[tuple[Any, str | None]]:
    """The logging trails that receive `account`'s events in `region`, each with the organization ID
    its log files are filed under (None: not an organization trail): the account's own trails, a
    multi-Region trail from every Region and a single-Region trail from its own
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-trails.html), and the
    organization trails of the account's organization, which "log events for the management account
    and all member accounts"
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html).
    Global service events only reach trails that include them (IncludeGlobalServiceEvents)."""
    from moto.cloudtrail.models import cloudtrail_backends


    org = core.organization_of(account)
    org_id = org[1].org.id if org is not None and org[1].org is not None else None
    found: list[tuple[Any, str | None]] = []

    def consider(trail: Any, filed_under: str | None) -> None:
        if not trail.status.is_logging or not (trail.is_multi_region or trail.region_name == region):
            return
        if global_event and not trail.include_global_service_events:
            return
        found.append((trail, filed_under))

    for backend in list(cloudtrail_backends[account].values()):
        for trail in list(backend.trails.values()):
            consider(trail, org_id if trail.is_org_trail else None)
    if org is not None and org[0] != account and org_id:
        for backend in list(cloudtrail_backends[org[0]].values()):
            for trail in list(backend.trails.values()):
                if trail.is_org_trail:
                    consider(trail, org_id)
    return found


def selects(trail: Any, source: str, name: str, reads: bool) -> bool:
    """Whether the trail's selectors record this management event. Basic selectors: one that includes
    management events, whose ReadWriteType admits it (ReadOnly, WriteOnly, All) and that does not
    exclude its source (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_EventSelector.html).
    Advanced selectors: one whose every field selector matches (eventCategory, readOnly, eventSource,
    eventName, eventType; Equals, NotEquals, StartsWith, NotStartsWith, EndsWith, NotEndsWith), a
    field a management event lacks never matching
    (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_AdvancedFieldSelector.html)."""
    advanced = getattr(trail, "advanced_event_selectors", None) or []
    if advanced:
        fields = {"eventCategory": "Management", "readOnly": "true" if reads else "false", "eventSource": source,
                  "eventName": name, "eventType": "AwsApiCall"}
        return any(advanced_matches(s, fields) for s in advanced)
    for s in getattr(trail, "event_selectors", None) or []:
        if not s.get("IncludeManagementEvents", True):
            continue
        kind = s.get("ReadWriteType", "All")
        if (kind == "ReadOnly" and not reads) or (kind == "WriteOnly" and reads):
            continue
        if source in (s.get("ExcludeManagementEventSources") or []):
            continue
        return True
    return False


def advanced_matches(selector: dict, fields: dict) -> bool:
    for f in selector.get("FieldSelectors") or []:
        value = fields.get(f.get("Field", ""))
        if value is None:
            return False
        tests = (("Equals", lambda v, x: v == x, any), ("StartsWith", str.startswith, any),
                 ("EndsWith", str.endswith, any), ("NotEquals", lambda v, x: v != x, all),
                 ("NotStartsWith", lambda v, x: not v.startswith(x), all),
                 ("NotEndsWith", lambda v, x: not v.endswith(x), all))
        for key, test, combine in tests:
            wanted = f.get(key)
            if wanted and not combine(test(value, str(w)) for w in wanted):
                return False
    return True


# ---------------------------------------------------------------------------------------------------
# Log files: batches, keys, deliveries


# ---------------------------------------------------------------------------------------------------
# CloudWatch Logs


# ---------------------------------------------------------------------------------------------------
# Log file integrity: digest files
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html)


# ---------------------------------------------------------------------------------------------------
# CloudTrail's API: the recorded status, and shadow trails by ARN


