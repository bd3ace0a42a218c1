"""What AWS services check of a request beyond IAM: the validations their front ends make before
they act. moto makes few of them, so a pipeline that breaks one passes locally and fails on AWS.

Each rule cites the AWS documentation page it comes from and answers with that service's error code
and message. The rules live with their service (services/<service>.py) and in model_validation.py;
validation.check runs them after authorization (AWS authorizes first) and returns None or a
`Refusal`; the pipeline answers it in the service's protocol. This module holds what they share:
`Refusal`, the principals a policy names, the roles handed to services (PROPAGATION), and whether a
service may deliver to a bucket (CloudTrail, Config, GuardDuty, Firehose; also used by deliver*.py).

Rules:
- Every request to a JSON, CBOR, query or REST-JSON service is checked against the service's API model
  (required members, types, lengths, ranges, enum values): the protocol's validation error.
- Policies naming IAM principals that do not exist are refused (S3 bucket policies, KMS key policies,
  IAM role trust policies): the principal must exist when the policy is saved.
- CloudWatch DeleteAlarms naming an alarm that does not exist deletes none and fails.
- Config PutConfigurationAggregator with an organization source: management account or Config's
  delegated administrator only.
- CloudTrail CreateTrail/UpdateTrail: the bucket and key policies must let CloudTrail deliver; an
  organization trail is made and changed by the management account only, with trusted access.
- Config PutDeliveryChannel: the bucket exists and, in another account, its policy lets Config write.
- GuardDuty CreateDetector: one detector per account and Region.
- Organizations: an SCP follows the SCP grammar and has at most 5,120 characters; a target has at most
  5 SCPs, and a policy is attached to it once, only while its type is enabled in the root; IAM Access
  Analyzer has one delegated administrator per organization.
- S3: a request whose expected bucket owner (x-amz-expected-bucket-owner, or for a copy's source
  x-amz-source-expected-bucket-owner) is not the bucket's owner is refused 403 AccessDenied.
- SSM StartSession: a target that is not a registered managed node with its agent online
  (ssm_agents.connected) is TargetNotConnected; a document of the account's that does not exist
  is InvalidDocument.
- Firehose writes a batch to its S3 destination as the stream's role, only where the role may put it,
  and reports each attempt in AWS/Firehose DeliveryToS3.Success (services/firehose.py: checked_put).
- Lambda: a function's role must be one Lambda can assume; an SQS event source mapping needs a queue
  visibility timeout of at least the function's timeout and a role that may receive and delete.
- A role handed to a service (CloudTrail's CloudWatch Logs role, Firehose's delivery role) must exist,
  trust the service, hold the permissions the service documents, and be older than IAM's propagation
  delay (PROPAGATION, a few seconds).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from assure_local import authz, aws_request, iam, policies, principals, resources
from assure_local.aws_request import Req
from assure_local.iam import as_list


@dataclass
class Refusal:
    status: int
    code: str
    message: str
    # More members of the error's shape (Organizations' ConstraintViolationException has a Reason).
    extra: dict | None = None


IAM_ENTITY = re.compile(r"^arn:aws:iam::(\d{12}):(role|user)/(.+)$")


def named_principals(doc: Any) -> list[str]:
    """Every IAM role or user ARN a policy's Principal (or NotPrincipal) elements name."""
    out = []
    statements = as_list(doc.get("Statement")) if isinstance(doc, dict) else []
    for stmt in statements:
        if not isinstance(stmt, dict):
            continue
        for key in ("Principal", "NotPrincipal"):
            p = stmt.get(key)
            if isinstance(p, dict):
                out += [v for v in as_list(p.get("AWS")) if isinstance(v, str) and IAM_ENTITY.match(v)]
    return out


def exists(arn: str) -> bool:
    from moto.iam.models import iam_backends

    m = IAM_ENTITY.match(arn)
    if not m:
        return True
    account, kind, path_and_name = m.groups()
    name = path_and_name.split("/")[-1]
    backend = iam_backends[account]["aws"]
    entities = backend.roles.values() if kind == "role" else backend.users.values()
    return any(e.name == name and e.arn == arn for e in entities)


def missing_principal(text: str | None) -> str | None:
    """The first IAM principal the policy names that does not exist, or None."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return next((arn for arn in named_principals(doc) if not exists(arn)), None)


# IAM is eventually consistent: "a role you create ... might not be immediately usable" by another
# service for a few seconds (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html,
# "Changes that I make are not always immediately visible"). For this many seconds after CreateRole a
# service handed the role refuses it, with its own error. POST /assure-api/limits
# {"iamPropagationSeconds": N} changes it; the environment sets the default.
PROPAGATION = {"seconds": float(os.environ.get("ASSURE_IAM_PROPAGATION_SECONDS", "3"))}


def unusable_role(service: str, role_arn: str, source_arn: str | None = None) -> str | None:
    """Why the service principal `service` cannot use `role_arn` now, or None: the role must exist,
    be old enough for IAM to have propagated it, and trust the service acting for `source_arn` (the
    trail, the delivery stream: the context keys the service sends, principals.service_context)."""
    from moto.core.utils import utcnow

    role = policies.role_by_arn(role_arn)
    if role is None:
        return f"{role_arn} does not exist"
    if (utcnow() - role.create_date).total_seconds() < PROPAGATION["seconds"]:
        return f"{role_arn} is not yet visible to {service}"
    if not principals.service_trusted(service, role, source_arn).allowed:
        return f"the trust policy of {role_arn} does not admit {service}"
    return None


def role_allows(role_arn: str, action: str, resource: str) -> bool:
    """Whether the role's identity-based permissions allow `action` on `resource`: its policies, within
    its permissions boundary (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html)."""
    role = policies.role_by_arn(role_arn)
    allow, deny = iam.identity_effects(policies.role_policies(None, role), action, resource, {})
    boundary = policies.boundary_of(role.arn.split(":")[4], role)
    if boundary is not None:
        bound_allow, bound_deny = iam.identity_effects([boundary], action, resource, {})
        allow, deny = allow and bound_allow, deny or bound_deny
    return allow and not deny


def firehose_s3_refusal(region: str, s3: dict, object_key: str, stream_arn: str | None = None) -> str | None:
    """Why Firehose cannot write a batch of a stream's records to `object_key` of its S3 destination
    `s3` (moto's destination description), or None. Firehose writes as the destination's role: the
    role must still be usable by firehose.amazonaws.com, and the role's s3:PutObject of the object
    must be allowed (its policies, the bucket's policy, the SCPs), with the stream's KMS key
    (kms:GenerateDataKey through S3) when the stream encrypts
    (https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#using-iam-s3). A refused
    write is not lost on AWS at once but retried and reported: DeliveryToS3.Success drops below 1
    (https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html)."""
    role_arn = s3.get("RoleARN", "")
    why = unusable_role("firehose.amazonaws.com", role_arn, stream_arn)
    if why is not None:
        return f"Firehose is unable to assume role {role_arn}: {why}"
    role = policies.role_by_arn(role_arn)
    owner = aws_request.arn_account(role_arn) or ""
    principal = principals.role_principal(role, f"arn:aws:sts::{owner}:assumed-role/{role.name}/firehose")
    bucket = s3.get("BucketARN", "").split(":")[-1]
    headers = {}
    key = ((s3.get("EncryptionConfiguration") or {}).get("KMSEncryptionConfig") or {}).get("AWSKMSKeyARN")
    if key:
        headers = {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": key}
    put = Req("s3", "PutObject", {}, region, "PUT", f"/{bucket}/{object_key}", {}, headers)
    denial = authz.authorize(principal, put)
    return denial.message if denial is not None else None


# Regions an account must opt in to; there GuardDuty acts as guardduty.REGION.amazonaws.com
# (https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html,
# https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_exportfindings.html).
OPT_IN_REGIONS = {"af-south-1", "ap-east-1", "ap-east-2", "ap-south-2", "ap-southeast-3", "ap-southeast-4",
                  "ap-southeast-5", "ap-southeast-7", "ca-west-1", "eu-central-2", "eu-south-1", "eu-south-2",
                  "il-central-1", "me-central-1", "me-south-1", "mx-central-1"}


def guardduty_principal(region: str) -> str:
    return f"guardduty.{region}.amazonaws.com" if region in OPT_IN_REGIONS else "guardduty.amazonaws.com"


def bucket_key_enabled(bucket: str) -> bool:
    """Whether `bucket`'s default encryption uses an S3 Bucket Key
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html)."""
    from moto.s3.models import s3_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    found = s3_backends[owner[1]][owner[0]].buckets.get(bucket) if owner else None
    rule = (getattr(found, "encryption", None) or {}).get("Rule") or {}
    if isinstance(rule, list):
        rule = rule[0] if rule else {}
    return str(rule.get("BucketKeyEnabled", "false")).lower() == "true"


# The context keys each AWS service documents sending when it writes to a customer's S3 bucket or uses
# a customer's KMS key (or publishes to a topic, sends to a queue) as its own service principal, for
# one of its resources (the "source"). Review finding #13: the local cloud used to add
# aws:SourceAccount and aws:SourceOrgID to every service's requests, so a policy relying on a key a
# service never sends passed locally and failed on AWS. A key not listed for a service is not sent.
# - CloudTrail delivering a trail's log files: aws:SourceArn, the trail's ARN, and aws:SourceAccount
#   ("The value of aws:SourceArn must be the ARN of the trail, event data store, or channel that is
#   using the resource": https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cross-service-confused-deputy-prevention.html;
#   the bucket and key policies: create-s3-bucket-policy-for-cloudtrail.html, create-kms-key-policy-for-cloudtrail.html).
# - AWS Config delivering configuration history and snapshots: aws:SourceAccount, "the ID of the
#   account for which AWS Config will deliver configuration items" (the bucket policy's and the key
#   policy's only condition: https://docs.aws.amazon.com/config/latest/developerguide/s3-bucket-policy.html,
#   https://docs.aws.amazon.com/config/latest/developerguide/s3-kms-key-policy.html). Config's
#   confused-deputy page recommends aws:SourceArn in general but its S3 example ("Granting AWS Config
#   access to the Amazon S3 Bucket") conditions on aws:SourceAccount alone and no page names the ARN
#   Config would send: it is not sent.
# - GuardDuty exporting findings: aws:SourceAccount and aws:SourceArn, the exporting detector's ARN
#   (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_exportfindings.html, steps 2 and 3).
# - CloudWatch publishing an alarm's notification to an SNS topic, and using the topic's KMS key:
#   aws:SourceArn, "the ARN of the alarm that is sending notifications", and aws:SourceAccount
#   (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html,
#   "Preventing confused deputy security issues"). SNS also keeps the older AWS:SourceOwner, the
#   alarm's account, for the services that already sent it (the default topic policy's condition:
#   https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html, "aws:SourceAccount
#   versus aws:SourceOwner").
# - CloudWatch Logs using a log group's KMS key: the encryption context (kms:EncryptionContext:aws:logs:arn,
#   the log group's ARN) and no source key (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html):
#   not listed, nothing sent (logs_kms_key).
# - SNS delivering to an SQS queue (and using the queue's KMS key): aws:SourceArn, the topic's ARN
#   (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html, "Publish messages to an
#   Amazon SQS queue"); no page names aws:SourceAccount for it: not sent.
# aws:SourceOrgID and aws:SourceOrgPaths: the IAM reference gives them the availability of
# aws:SourceAccount ("This key is included in the request context only when the call to your resource
# is being made directly by an AWS service principal on behalf of a resource for which the
# configuration triggered the service-to-service request"), with the calling service's resource
# belonging to an organization
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-sourceorgid,
# "Availability"; the quote is the aws:SourceAccount entry's, the stored copies reachable here did not
# hold the aws:SourceOrgID entry's own wording), and the services' guides offer them in the same breath
# ("Use aws:SourceAccount to let any resource in that account be associated with the cross-service
# use. Use aws:SourceOrgID to allow any resource from any account within an organization be associated
# with the cross-service use": Notify_Users_Alarm_Changes.html, above). So they are sent wherever the
# table lists aws:SourceAccount and the source's account is in an organization, and nowhere else.
DELIVERY_CONTEXT_KEYS: dict[str, tuple[str, ...]] = {
    "cloudtrail.amazonaws.com": ("aws:SourceArn", "aws:SourceAccount"),
    "config.amazonaws.com": ("aws:SourceAccount",),
    "guardduty.amazonaws.com": ("aws:SourceArn", "aws:SourceAccount"),
    "cloudwatch.amazonaws.com": ("aws:SourceArn", "aws:SourceAccount", "AWS:SourceOwner"),
    "sns.amazonaws.com": ("aws:SourceArn",),
    # EventBridge invoking a rule's target: the rule (eb-use-resource-based.html's policies).
    "events.amazonaws.com": ("aws:SourceArn",),
}


def delivery_keys(service: str) -> tuple[str, ...]:
    """The context keys `service` sends (DELIVERY_CONTEXT_KEYS); GuardDuty's regional principals in
    opt-in Regions (guardduty.REGION.amazonaws.com) as GuardDuty's."""
    if service.startswith("guardduty."):
        service = "guardduty.amazonaws.com"
    return DELIVERY_CONTEXT_KEYS.get(service, ())


def organization_path(account: str) -> tuple[str, str] | None:
    """(organization ID, the account's AWS Organizations entity path `o-…/r-…/ou-…/`) of an account in
    an organization, or None (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_last-accessed-view-data-orgs.html#access_policies_last-accessed-viewing-orgs-entity-path)."""
    from assure_local.core import organization_of

    org = organization_of(account)
    if org is None or org[1].org is None:
        return None
    backend = org[1]
    org_id = backend.org.id
    parent = next((a.parent_id for a in backend.accounts if a.id == account), None)
    chain: list[str] = []
    seen: set[str] = set()
    while parent and parent not in seen:
        seen.add(parent)
        chain.append(parent)
        parent = next((getattr(ou, "parent_id", None) for ou in backend.ou if ou.id == parent), None)
    return org_id, "/".join([org_id] + list(reversed(chain))) + "/"


def delivery_context(service: str, account: str, source_arn: str | None) -> dict:
    """The request context of `service` acting for its resource `source_arn` in `account`: the keys of
    DELIVERY_CONTEXT_KEYS, with aws:SourceOrgID and aws:SourceOrgPaths wherever aws:SourceAccount is
    sent and the account is in an organization."""
    keys = delivery_keys(service)
    values = {"aws:SourceArn": source_arn, "aws:SourceAccount": account, "AWS:SourceOwner": account}
    ctx: dict[str, Any] = {k: values[k] for k in keys if values.get(k)}
    if "aws:SourceAccount" in ctx:
        path = organization_path(account)
        if path is not None:
            ctx["aws:SourceOrgID"], ctx["aws:SourceOrgPaths"] = path[0], [path[1]]
    return ctx


def delivery_refusal(service: str, account: str, region: str, ctx: dict, bucket: str, object_key: str,
                     bucket_action: str, key_id: str | None,
                     key_actions: tuple[str, ...] = ("kms:GenerateDataKey",)) -> tuple[str, str] | None:
    """Why `service` (a service principal) delivering for `account` cannot write `object_key` (the
    object's real key) to `bucket` (bucket policy: s3:PutObject on the object, `bucket_action` on the
    bucket) encrypted with `key_id` (key policy: each of `key_actions`), as (what, reason) with what one
    of bucket, bucket-policy, key, key-policy; or None. `ctx` holds the request's own keys (the ACL,
    the encryption headers, the encryption context) and the source's ARN (aws:SourceArn); the
    source keys that reach the policies are those the service documents sending
    (delivery_context), whatever `ctx` offers."""
    principal = iam.Principal(kind="service", account="", arn=service)
    own = {k: v for k, v in ctx.items() if k.lower() not in ("aws:sourcearn", "aws:sourceaccount", "aws:sourceorgid",
                                                              "aws:sourceorgpaths", "aws:sourceowner")}
    source_arn = next((v for k, v in ctx.items() if k.lower() == "aws:sourcearn"), None)
    ctx = {"aws:SecureTransport": "true", "aws:PrincipalIsAWSService": "true", **delivery_context(service, account, source_arn),
           **own}
    found = resources.s3_bucket(bucket)
    if found.account is None:
        return "bucket", f"bucket {bucket} does not exist"
    doc = found.policy
    for action, resource in (("s3:PutObject", f"arn:aws:s3:::{bucket}/{object_key}"),
                             (bucket_action, f"arn:aws:s3:::{bucket}")):
        direct, _, deny = iam.resource_effects(doc, principal, action, resource, ctx)
        if deny or not direct:
            return "bucket-policy", f"the policy of bucket {bucket} does not let {service} {action} {resource}"
    if key_id:
        key = resources.kms_key(region, account, key_id)
        if key is None:
            return "key", f"key {key_id} does not exist"
        for action in key_actions:
            direct, _, deny = iam.resource_effects(key.policy, principal, action, key.arn, ctx)
            if deny or not direct:
                return "key-policy", f"the policy of key {key.arn} does not let {service} {action}"
    return None


def guardduty_export_key(account: str, region: str, prefix: str, when: Any = None, name: str | None = None) -> str:
    """The object GuardDuty exports a batch of findings to: `[prefix/]AWSLogs/ACCOUNT/GuardDuty/REGION/`
    (the exporting detector's account), then the day, then a random UUID `.jsonl.gz`. The user guide
    (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_exportfindings.html, step 4) names the
    folder `/AWSLogs/123456789012/GuardDuty/Region` and a random UUID file; GuardDuty files each
    export under a zero-padded day folder, `…/GuardDuty/REGION/YYYY/MM/DD/UUID.jsonl.gz`, as AWS's
    Landing Zone Accelerator documents the layout of the exports it collects
    (`guardduty/AWSLogs/{account#}/GuardDuty/region/{year}/{month}/{day}/*`)."""
    import datetime
    import uuid

    when = when or datetime.datetime.now(datetime.UTC)
    prefix = prefix.strip("/") + "/" if prefix and prefix.strip("/") else ""
    return (f"{prefix}AWSLogs/{account}/GuardDuty/{region}/{when.year:04d}/{when.month:02d}/{when.day:02d}/"
            f"{name or uuid.uuid4()}.jsonl.gz")


def guardduty_export_refusal(account: str, region: str, detector: str, destination: str, key_arn: str,
                             object_key: str | None = None) -> str | None:
    """Why GuardDuty in `region` cannot export `account`'s findings to `destination` (an S3 ARN, bucket
    and prefix) encrypted with `key_arn`, or None: the bucket policy must let the region's GuardDuty
    principal s3:PutObject the export's object and s3:GetBucketLocation the bucket, the key policy
    kms:GenerateDataKey, with aws:SourceAccount and aws:SourceArn (the detector); the object is
    uploaded with SSE-KMS under the destination's key, as the guide's policy requires ("Deny
    unencrypted object uploads", "Deny incorrect encryption header")
    (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_exportfindings.html, steps 2 and 3).
    `object_key`: the export's real object (guardduty_export_key); by default one of today's."""
    bucket, _, prefix = destination.removeprefix("arn:aws:s3:::").partition("/")
    if object_key is None:
        object_key = guardduty_export_key(account, region, prefix, name="verification")
    ctx = {"aws:SourceArn": f"arn:aws:guardduty:{region}:{account}:detector/{detector}",
           "s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}
    refused = delivery_refusal(guardduty_principal(region), account, region, ctx, bucket, object_key,
                               "s3:GetBucketLocation", key_arn)
    return refused[1] if refused else None


def trail_delivery_refusal(account: str, region: str, trail_arn: str, bucket: str, prefix: str | None,
                           key_id: str | None, object_key: str | None = None) -> tuple[str, str] | None:
    """Why CloudTrail cannot deliver a trail's log files: the bucket policy must let
    cloudtrail.amazonaws.com s3:GetBucketAcl the bucket and s3:PutObject under
    [prefix/]AWSLogs/ACCOUNT/ (with the bucket-owner-full-control ACL), and the key policy must let it
    kms:GenerateDataKey*, and kms:Decrypt too when the bucket uses an S3 Bucket Key ("If you are using
    an existing S3 bucket with an S3 Bucket Key, kms:Decrypt permissions are required to create or
    update a trail with SSE-KMS encryption enabled")
    (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html,
    https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html).
    `object_key`: the log file's real object; by default one under today's prefix."""
    prefix = prefix.strip("/") + "/" if prefix and prefix.strip("/") else ""
    ctx = {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control",
           "kms:EncryptionContext:aws:cloudtrail:arn": trail_arn}
    if key_id:
        ctx.update({"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": key_id})
    key_actions = ("kms:GenerateDataKey", "kms:Decrypt") if bucket_key_enabled(bucket) else ("kms:GenerateDataKey",)
    return delivery_refusal("cloudtrail.amazonaws.com", account, region, ctx, bucket,
                            object_key or f"{prefix}AWSLogs/{account}/CloudTrail/{region}/log.json.gz", "s3:GetBucketAcl",
                            key_id, key_actions)


def config_delivery_refusal(account: str, region: str, bucket: str, prefix: str | None,
                            object_key: str | None = None, key_arn: str | None = None,
                            own_bucket_as_role: bool = True) -> tuple[str, str] | None:
    """Why Config, as its service principal, cannot deliver `account`'s snapshots and history to
    `bucket`, or None: the bucket policy must let config.amazonaws.com s3:GetBucketAcl the bucket and
    s3:PutObject the object (with the bucket-owner-full-control ACL), and, for a channel encrypting
    with `key_arn`, the key policy kms:GenerateDataKey and kms:Decrypt, with aws:SourceAccount
    (https://docs.aws.amazon.com/config/latest/developerguide/s3-bucket-policy.html,
    https://docs.aws.amazon.com/config/latest/developerguide/s3-kms-key-policy.html). A bucket of the
    account's own is written with the recorder's role first, which this does not check unless
    `own_bucket_as_role` is False (deliver_services checks the role). `object_key`: the object's real
    key; by default a snapshot under today's prefix."""
    owner = resources.s3_bucket(bucket).account
    if owner is None:
        return "bucket", f"bucket {bucket} does not exist"
    if owner == account and own_bucket_as_role:
        return None
    prefix = prefix.strip("/") + "/" if prefix and prefix.strip("/") else ""
    ctx = {"s3:x-amz-acl": "bucket-owner-full-control"}
    if key_arn:
        ctx.update({"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn})
    return delivery_refusal("config.amazonaws.com", account, region, ctx, bucket,
                            object_key or f"{prefix}AWSLogs/{account}/Config/{region}/ConfigSnapshot/snapshot.json.gz",
                            "s3:GetBucketAcl", key_arn, ("kms:GenerateDataKey", "kms:Decrypt"))


def key_state(key_arn: str) -> str | None:
    """The KMS key's state (Enabled, Disabled, PendingDeletion, ...), or None if it does not exist."""
    from moto.kms.models import kms_backends

    _, _, _, region, account, rest = key_arn.split(":", 5)
    key = kms_backends[account][region].keys.get(rest.split("/", 1)[-1])
    return None if key is None else getattr(key, "key_state", "Enabled")


