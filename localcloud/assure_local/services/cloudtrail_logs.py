"""CloudTrail's log files: each trail's events batched into gzipped log files in its bucket (as the bucket and key policies allow), its CloudWatch Logs group, digest files, and what GetTrailStatus reports of them."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import random
import re
import string
import sys
from operator import itemgetter
from typing import Any

from assure_local import resources, rules
from assure_local.core import replace
from assure_local.scheduler import delay, later, put_object

# Counts the successful writes to what a delivery check reads (S3 buckets, KMS keys, the organization:
# WRITING_SERVICES): a delivery check cached at one count holds until the next.
WRITES = {"count": 0}


# Pending log files: (trail ARN, account, Region) -> the batch.
PENDING: dict[tuple[str, str, str], dict] = {}


# Delivery checks at a count of WRITES: key -> (count, (error code, reason) or None).
_CHECKED: dict[tuple, tuple[int, tuple[str, str] | None]] = {}


def state(trail: Any) -> dict:
    """What the trail's deliveries recorded, kept on the trail (a deleted trail's goes with it)."""
    found = getattr(trail, "assure_delivery", None)
    if found is None:
        found = trail.assure_delivery = {}
    return found


def log_dir(trail: Any, account: str, region: str, org_id: str | None, when: datetime.datetime,
            kind: str = "CloudTrail") -> str:
    """`{prefix/}AWSLogs/{o-id/ of an organization trail}{account}/CloudTrail/{region}/YYYY/MM/DD/`
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html;
    an organization trail's: https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html,
    "bucket_name/prefix_name/AWSLogs/O-ID/Account ID/CloudTrail/Region/YYYY/MM/DD/")."""
    prefix = (trail.s3_key_prefix or "").strip("/")
    org = f"{org_id}/" if org_id else ""
    return f"{prefix + '/' if prefix else ''}AWSLogs/{org}{account}/{kind}/{region}/{when:%Y/%m/%d}/"


def log_name(account: str, region: str, when: datetime.datetime) -> str:
    """`AccountID_CloudTrail_RegionName_YYYYMMDDTHHmmZ_UniqueString.json.gz`, the unique string 16
    alphanumeric characters ("CloudTrail log file naming format",
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html)."""
    unique = "".join(random.choices(string.ascii_letters + string.digits, k=16))
    return f"{account}_CloudTrail_{region}_{when:%Y%m%dT%H%MZ}_{unique}.json.gz"


def refusal(trail: Any, object_key: str, key_id: str | None) -> tuple[str, str] | None:
    """Why CloudTrail cannot write `object_key` for the trail now, as (the S3 error it gets, why), or
    None. The bucket and key policies: rules.trail_delivery_refusal, as CreateTrail checks them, for
    the real object key. What GetTrailStatus's LatestDeliveryError then shows is "any Amazon S3 error
    that CloudTrail encountered" (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html),
    S3's code for it (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList):
    NoSuchBucket for a bucket that is gone; AccessDenied when the bucket policy refuses the write, and
    when the key policy refuses KMS's data key (S3 answers an upload whose key the writer may not use
    with 403 AccessDenied: https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html);
    KMS.NotFoundException for a key that does not exist, KMS.DisabledException for a disabled key,
    KMS.KMSInvalidStateException for one pending deletion."""
    refused = rules.trail_delivery_refusal(trail.account_id, trail.region_name, trail.arn, trail.bucket_name,
                                           trail.s3_key_prefix, key_id, object_key=object_key)
    if refused is not None:
        what, why = refused
        code = {"bucket": "NoSuchBucket", "key": "KMS.NotFoundException"}.get(what, "AccessDenied")
        return code, why
    if key_id:
        res = resources.kms_key(trail.region_name, trail.account_id, key_id)
        if res is not None:
            key_state = rules.key_state(res.arn) or "Enabled"
            if key_state == "Disabled":
                return "KMS.DisabledException", f"key {res.arn} is disabled"
            if key_state != "Enabled":
                return "KMS.KMSInvalidStateException", f"key {res.arn} is {key_state}"
    return None


def key_arn(trail: Any) -> str | None:
    """The trail's KMS key as S3 reports it on the object: its ARN (KmsKeyId may be an alias or an ID)."""
    if not trail.kms_key_id:
        return None
    res = resources.kms_key(trail.region_name, trail.account_id, trail.kms_key_id)
    return res.arn if res is not None else trail.kms_key_id


def checked(trail: Any, account: str, region: str, org_id: str | None, when: datetime.datetime) -> tuple[str, str] | None:
    """`refusal` for the log file the trail's next delivery writes, remembered until the next write
    request (nothing else changes a policy)."""
    folder = log_dir(trail, account, region, org_id, when)
    key = (trail.arn, id(trail), trail.bucket_name, folder, trail.kms_key_id)
    hit = _CHECKED.get(key)
    if hit is not None and hit[0] == WRITES["count"]:
        return hit[1]
    if len(_CHECKED) > 10000:
        _CHECKED.clear()
    found = refusal(trail, folder + f"{account}_CloudTrail_{region}_{when:%Y%m%dT%H%MZ}_check.json.gz", trail.kms_key_id)
    _CHECKED[key] = (WRITES["count"], found)
    return found


def iso(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def failed(trail: Any, code: str, why: str, when: datetime.datetime) -> None:
    s = state(trail)
    s["error"], s["why"], s["attempt"] = code, why, when


def enqueue(trail: Any, account: str, region: str, org_id: str | None, rec: dict, now: datetime.datetime) -> None:
    """Adds the record to the trail's pending log file for (account, region), queueing its delivery
    after the delay when it is the first. A delivery the policies refuse now is reported at once
    (GetTrailStatus's LatestDeliveryError): AWS reports it at its next attempt, within minutes, and
    events flow all the time; a refusal shown early never makes a local pass where AWS fails. The
    error clears only when a log file is delivered."""
    refused = checked(trail, account, region, org_id, now)
    if refused is not None:
        failed(trail, refused[0], refused[1], now)
    batch_key = (trail.arn, account, region)
    batch = PENDING.get(batch_key)
    if batch is None or batch["trail"] is not trail:
        batch = PENDING[batch_key] = {"trail": trail, "account": account, "region": region, "org": org_id,
                                      "records": []}

        def deliver_log_file() -> None:
            if PENDING.get(batch_key) is batch:
                del PENDING[batch_key]
            deliver_batch(batch)

        later(delay(), deliver_log_file)
    batch["records"].append(rec)


def alive(trail: Any) -> bool:
    from moto.cloudtrail.models import cloudtrail_backends

    return cloudtrail_backends[trail.account_id][trail.region_name].trails.get(trail.trail_name) is trail


def deliver_batch(batch: dict) -> None:
    """Writes a batch as one log file, `{"Records": [...]}` gzipped, as cloudtrail.amazonaws.com under
    the bucket and key policies (`refusal`), encrypted with the trail's KMS key when it has one
    ("SSE-KMS": https://docs.aws.amazon.com/awscloudtrail/latest/userguide/encrypting-cloudtrail-log-files-with-aws-kms.html),
    and records the outcome for GetTrailStatus; then to the trail's CloudWatch Logs log group. A
    refused log file is not written. A trail deleted meanwhile delivers nothing."""
    trail, account, region, org_id = batch["trail"], batch["account"], batch["region"], batch["org"]
    if not alive(trail):
        return
    records = batch["records"]
    now = datetime.datetime.now(datetime.UTC)
    object_key = log_dir(trail, account, region, org_id, now) + log_name(account, region, now)
    s = state(trail)
    refused = refusal(trail, object_key, trail.kms_key_id)
    if refused is not None:
        failed(trail, refused[0], refused[1], now)
        print(f"cloudtrail {trail.arn}: log file for {account} {region} refused: {refused[1]}", file=sys.stderr, flush=True)
    else:
        text = json.dumps({"Records": records}, default=str).encode()
        put_object(trail.bucket_name, object_key, gzip.compress(text), key_arn(trail), "application/json")
        s["delivered"] = s["attempt"] = s["succeeded"] = now
        s.pop("error", None)
        s.pop("why", None)
        if trail.log_validation:
            digest_add(trail, account, region, org_id, object_key, text, records, now)
    deliver_to_logs(trail, account, region, org_id, records, now)


LOG_GROUP = re.compile(r"^arn:aws:logs:([a-z0-9-]+):(\d{12}):log-group:([^:]+)(:\*)?$")


def logs_refusal(trail: Any, group_arn: str, stream: str) -> tuple[str, str] | None:
    """Why CloudTrail cannot put the trail's events in its log group, as (error code, why), or None.
    CloudTrail assumes the trail's role as cloudtrail.amazonaws.com for the trail (aws:SourceArn) and
    needs logs:CreateLogStream and logs:PutLogEvents on the stream
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html,
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-required-policy-for-cloudwatch-logs.html):
    rules.unusable_role and rules.role_allows, as CreateTrail checks them. The code is that of the
    call that fails: STS's AccessDenied for a role CloudTrail cannot assume
    (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html), CloudWatch Logs'
    AccessDeniedException and ResourceNotFoundException
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html)."""
    from moto.logs.models import logs_backends

    m = LOG_GROUP.match(group_arn or "")
    if not m:
        return "ResourceNotFoundException", f"{group_arn} is not a log group ARN"
    role = trail.cw_role_arn or ""
    why = rules.unusable_role("cloudtrail.amazonaws.com", role, trail.arn)
    if why is not None:
        return "AccessDenied", why
    g_region, g_owner, g_name = m.group(1), m.group(2), m.group(3)
    stream_arn = f"arn:aws:logs:{g_region}:{g_owner}:log-group:{g_name}:log-stream:{stream}"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        if not rules.role_allows(role, action, stream_arn):
            return "AccessDeniedException", f"{role} may not {action} on {stream_arn}"
    if g_name not in logs_backends[g_owner][g_region].groups:
        return "ResourceNotFoundException", f"log group {g_name} does not exist"
    return None


def stream_name(trail: Any, account: str, org_id: str | None) -> str:
    """`account_ID_CloudTrail_trail_region`
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudwatch-log-group-log-stream-naming-for-cloudtrail.html);
    an organization trail's streams begin with the organization's ID, `o-exampleorgid_` (the role
    policy for organization trails grants `log-stream:o-exampleorgid_*`:
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-required-policy-for-cloudwatch-logs.html)."""
    own = f"{account}_CloudTrail_{trail.region_name}"
    return f"{org_id}_{own}" if org_id else own


def deliver_to_logs(trail: Any, account: str, region: str, org_id: str | None, records: list[dict],
                    now: datetime.datetime) -> None:
    """Each event, a JSON string, into the trail's log group; the outcome in GetTrailStatus's
    LatestCloudWatchLogsDeliveryTime or LatestCloudWatchLogsDeliveryError."""
    if not trail.cw_log_group_arn or not trail.cw_role_arn:
        return
    from moto.logs.models import logs_backends

    s = state(trail)
    stream = stream_name(trail, account, org_id)
    refused = logs_refusal(trail, trail.cw_log_group_arn, stream)
    if refused is not None:
        s["cw_error"], s["cw_why"] = refused
        print(f"cloudtrail {trail.arn}: CloudWatch Logs delivery refused: {refused[1]}", file=sys.stderr, flush=True)
        return
    m = LOG_GROUP.match(trail.cw_log_group_arn)
    if m is None:
        return  # not a log group's ARN: CreateTrail refused it already
    backend = logs_backends[m.group(2)][m.group(1)]
    backend.ensure_log_stream(m.group(3), stream)
    stamp = int(now.timestamp() * 1000)
    events = sorted(({"timestamp": min(stamp, event_millis(r, stamp)), "message": json.dumps(r, default=str)}
                     for r in records), key=itemgetter("timestamp"))
    backend.put_log_events(m.group(3), stream, events)
    s["cw_time"] = now
    s.pop("cw_error", None)
    s.pop("cw_why", None)


def event_millis(rec: dict, default: int) -> int:
    try:
        when = datetime.datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
        return int(when.timestamp() * 1000)
    except (KeyError, ValueError):
        return default


# Digests being gathered: (trail ARN, account, Region) -> the log files since the last digest.
DIGESTS: dict[tuple[str, str, str], dict] = {}


DIGEST_SECONDS = 3600.0


def digest_add(trail: Any, account: str, region: str, org_id: str | None, object_key: str, text: bytes,
               records: list[dict], now: datetime.datetime) -> None:
    """Notes a delivered log file for the digest of its hour ("Each digest file contains the names of
    the log files that were delivered to your Amazon S3 bucket during the last hour, the hash values
    for those log files"), queueing that digest an hour after the first."""
    times = sorted(r.get("eventTime", "") for r in records)
    entry = {"s3Bucket": trail.bucket_name, "s3Object": object_key, "hashValue": hashlib.sha256(text).hexdigest(),
             "hashAlgorithm": "SHA-256", "newestEventTime": times[-1] if times else None,
             "oldestEventTime": times[0] if times else None}
    key = (trail.arn, account, region)
    digest = DIGESTS.get(key)
    if digest is None or digest["trail"] is not trail:
        digest = DIGESTS[key] = {"trail": trail, "account": account, "region": region, "org": org_id, "start": now,
                                 "files": []}

        def deliver_digest_file() -> None:
            if DIGESTS.get(key) is digest:
                del DIGESTS[key]
            deliver_digest(digest)

        later(DIGEST_SECONDS, deliver_digest_file)
    digest["files"].append(entry)


def deliver_digest(digest: dict) -> None:
    """Writes the digest file, `AWSLogs/{o-id/}ACCOUNT/CloudTrail-Digest/REGION/YYYY/MM/DD/
    ACCOUNT_CloudTrail-Digest_REGION_TRAIL_HOMEREGION_YYYYMMDDTHHmmssZ.json.gz`, chained to the trail's
    previous one. Digest files are encrypted with S3's own keys, not the trail's KMS key ("digest
    files are encrypted with Amazon S3-managed encryption keys (SSE-S3)":
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-intro.html).
    The signature is the digest's SHA-256 in x-amz-meta-signature: nothing here holds CloudTrail's
    private keys."""
    trail, account, region, org_id = digest["trail"], digest["account"], digest["region"], digest["org"]
    if not alive(trail):
        return
    now = datetime.datetime.now(datetime.UTC)
    folder = log_dir(trail, account, region, org_id, now, kind="CloudTrail-Digest")
    name = f"{account}_CloudTrail-Digest_{region}_{trail.trail_name}_{trail.region_name}_{now:%Y%m%dT%H%M%SZ}.json.gz"
    object_key = folder + name
    s = state(trail)
    chain = s.setdefault("digests", {})
    previous = chain.get((account, region))
    files = digest["files"]
    newest = max((f["newestEventTime"] for f in files if f["newestEventTime"]), default=None)
    oldest = min((f["oldestEventTime"] for f in files if f["oldestEventTime"]), default=None)
    doc = {"awsAccountId": account, "digestStartTime": iso(digest["start"]), "digestEndTime": iso(now),
           "digestS3Bucket": trail.bucket_name, "digestS3Object": object_key,
           "digestPublicKeyFingerprint": hashlib.md5(trail.arn.encode()).hexdigest(),
           "digestSignatureAlgorithm": "SHA256withRSA", "newestEventTime": newest, "oldestEventTime": oldest,
           "previousDigestS3Bucket": previous["bucket"] if previous else None,
           "previousDigestS3Object": previous["key"] if previous else None,
           "previousDigestHashValue": previous["hash"] if previous else None,
           "previousDigestHashAlgorithm": "SHA-256" if previous else None,
           "previousDigestSignature": previous["signature"] if previous else None,
           "logFiles": files}
    refused = refusal(trail, object_key, None)
    if refused is not None:
        s["digest_error"] = refused[0]
        return
    text = json.dumps(doc).encode()
    signature = hashlib.sha256(text).hexdigest()
    put_object(trail.bucket_name, object_key, gzip.compress(text), None, "application/json",
               {"x-amz-meta-signature": signature, "x-amz-meta-signature-algorithm": "SHA256withRSA"})
    chain[(account, region)] = {"bucket": trail.bucket_name, "key": object_key, "hash": signature,
                                "signature": signature}
    s["digest_time"] = now
    s.pop("digest_error", None)


TRAIL_ARN = re.compile(r"^arn:aws:cloudtrail:([a-z0-9-]+):(\d{12}):trail/(.+)$")


def find_trail(backend: Any, name: str) -> Any:
    """The trail a read names: by name, the current Region's own trail; by ARN, also a multi-Region
    trail of the account homed in another Region (its shadow here) and an organization trail of the
    account's organization. "To get the status of a shadow trail (a replication of the trail in
    another Region), you must specify its ARN"; "If the trail is an organization trail and you are a
    member account in the organization in Organizations, you must provide the full ARN of that
    trail" (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html).
    A single-Region trail has no shadow ("A shadow trail is the replication in a Region of a trail
    that was created in a different Region":
    https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html), so its ARN
    from another Region, like a name, is TrailNotFoundException."""
    from moto.cloudtrail import exceptions as errors
    from moto.cloudtrail.models import cloudtrail_backends

    try:
        return backend.get_trail(name)  # the extension's: own trails, and organization trails by ARN
    except errors.TrailNotFoundException:
        m = TRAIL_ARN.match(name or "")
        if m and m.group(2) == backend.account_id and m.group(1) != backend.region_name:
            home = cloudtrail_backends[m.group(2)]
            if m.group(1) in home:
                trail = home[m.group(1)].trails.get(m.group(3))
                if trail is not None and trail.is_multi_region:
                    return trail
        raise


def epoch(when: datetime.datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def status_view(trail: Any) -> dict:
    """GetTrailStatus's answer from what was recorded
    (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html): IsLogging;
    StartLoggingTime/StopLoggingTime; LatestDeliveryTime, the last log file delivered;
    LatestDeliveryError, the S3 error of the last attempt, until a log file is delivered;
    LatestCloudWatchLogsDeliveryTime/Error; LatestDigestDeliveryTime/Error. The fields the reference
    marks "no longer in use" carry what AWS still answers in them: the attempt times as text
    (LatestDeliveryAttemptTime, LatestDeliveryAttemptSucceeded, TimeLoggingStarted,
    TimeLoggingStopped), empty when none."""
    st = trail.status
    s = state(trail)
    out: dict[str, Any] = {"IsLogging": st.is_logging}
    utc = datetime.UTC
    started = st.started.replace(tzinfo=utc) if st.started is not None and st.started.tzinfo is None else st.started
    stopped = st.stopped.replace(tzinfo=utc) if st.stopped is not None and st.stopped.tzinfo is None else st.stopped
    if s.get("delivered"):
        out["LatestDeliveryTime"] = epoch(s["delivered"])
    if s.get("error"):
        out["LatestDeliveryError"] = s["error"]
    if started is not None:
        out["StartLoggingTime"] = epoch(started)
    if stopped is not None:
        out["StopLoggingTime"] = epoch(stopped)
    if s.get("cw_time"):
        out["LatestCloudWatchLogsDeliveryTime"] = epoch(s["cw_time"])
    if s.get("cw_error"):
        out["LatestCloudWatchLogsDeliveryError"] = s["cw_error"]
    if s.get("digest_time"):
        out["LatestDigestDeliveryTime"] = epoch(s["digest_time"])
    if s.get("digest_error"):
        out["LatestDigestDeliveryError"] = s["digest_error"]
    out.update({
        "LatestDeliveryAttemptTime": iso(s["attempt"]) if s.get("attempt") else "",
        "LatestNotificationAttemptTime": "",
        "LatestNotificationAttemptSucceeded": "",
        "LatestDeliveryAttemptSucceeded": iso(s["succeeded"]) if s.get("succeeded") else "",
        "TimeLoggingStarted": iso(started) if started is not None else "",
        "TimeLoggingStopped": iso(stopped) if stopped is not None else "",
    })
    return out


def patch_cloudtrail() -> None:
    """GetTrailStatus answers the recorded deliveries (status_view); GetTrail, GetTrailStatus,
    GetEventSelectors and GetInsightSelectors find the trail as `find_trail` does. moto answered a
    status it made up at each call (a delivery "now" whenever the trail logged), found shadows by name
    for GetTrailStatus and by neither name nor ARN for the other three. GetInsightSelectors on a trail
    without Insights answers InsightNotEnabledException ("If you run GetInsightSelectors on a trail or
    event data store that does not have Insights events enabled, the operation throws the exception
    InsightNotEnabledException": https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetInsightSelectors.html);
    moto answered no selectors."""
    from moto.cloudtrail import exceptions as errors
    from moto.cloudtrail import responses

    class InsightNotEnabledException(errors.JsonRESTError):
        code = 400

        def __init__(self, message: str):
            super().__init__("InsightNotEnabledException", message)

    def named(self, param: str) -> Any:
        name = self._get_param(param)
        if name is None or len(str(name)) < 3:
            raise errors.TrailNameTooShort(actual_length=len(str(name or "")))
        try:
            return find_trail(self.cloudtrail_backend, name)
        except errors.TrailNotFoundException:
            # This operation names the trail by its ARN in its error, as moto did.
            backend = self.cloudtrail_backend
            arn = name if name.startswith("arn:") else f"arn:aws:cloudtrail:{backend.region_name}:{backend.account_id}:trail/{name}"
            raise errors.TrailNotFoundException(account_id=backend.account_id, name=arn) from None

    def get_trail_status(self):
        return json.dumps(status_view(named(self, "Name")))

    def get_trail(self):
        # The Trail shape carries HomeRegion (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_Trail.html).
        return json.dumps({"Trail": named(self, "Name").description(include_region=True)})

    def get_event_selectors(self):
        trail = named(self, "TrailName")
        return json.dumps({"TrailARN": trail.arn, "EventSelectors": trail.event_selectors,
                           "AdvancedEventSelectors": trail.advanced_event_selectors})

    def get_insight_selectors(self):
        trail = named(self, "TrailName")
        if not trail.insight_selectors:
            raise InsightNotEnabledException(f"Trail {trail.arn} does not have Insights enabled.")
        return json.dumps({"TrailARN": trail.arn, "InsightSelectors": trail.insight_selectors})

    replace(responses.CloudTrailResponse, "get_trail_status", get_trail_status)
    replace(responses.CloudTrailResponse, "get_trail", get_trail)
    replace(responses.CloudTrailResponse, "get_event_selectors", get_event_selectors)
    replace(responses.CloudTrailResponse, "get_insight_selectors", get_insight_selectors)
