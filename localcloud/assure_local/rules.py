"""What AWS services check of a request beyond IAM: the validations their front ends make before
they act. moto makes few of them, so a pipeline that breaks one passes locally and fails on AWS.

Each rule cites the AWS documentation page it comes from and answers with that service's error code
and message. `check(req, account)` runs after authorization (AWS authorizes first) and returns None
or a `Refusal`; the extension answers it in the service's protocol.

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
  and reports each attempt in AWS/Firehose DeliveryToS3.Success (the extension's put_s3_records).
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from assure_local import authz, iam, ssm_agents
from assure_local.authz import Req, p
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


def s3_bucket_policy(req: Req, account: str, raw: bytes) -> Refusal | None:
    # PutBucketPolicy: "Invalid principal in policy" when a principal it names does not exist (or was
    # deleted): https://repost.aws/knowledge-center/s3-invalid-principal-in-policy-error
    # (API: https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html, error MalformedPolicy).
    bucket, _, key = unquote(req.path).lstrip("/").partition("/")
    if req.service != "s3" or req.method != "PUT" or "policy" not in (req.query or {}) or not bucket or key:
        return None
    if missing_principal(raw.decode(errors="replace")):
        return Refusal(400, "MalformedPolicy", "Invalid principal in policy")
    return None


def kms_key_policy(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateKey and PutKeyPolicy, parameter Policy: "The principals in the key policy must exist and be
    # visible to KMS." https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html and
    # https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html; the error's message:
    # https://repost.aws/knowledge-center/kms-policy-error-invalid-principals
    if req.service != "kms" or req.operation not in ("CreateKey", "PutKeyPolicy"):
        return None
    if missing_principal(req.params.get("Policy")):
        return Refusal(400, "MalformedPolicyDocumentException",
                       "Policy contains a statement with one or more invalid principals.")
    return None


def iam_trust_policy(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateRole and UpdateAssumeRolePolicy: a trust policy naming a role or user that does not exist is
    # refused, "Invalid principal in policy" (IAM saves a named principal as its unique id, so it must
    # exist): https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    names = {"CreateRole": "AssumeRolePolicyDocument", "UpdateAssumeRolePolicy": "PolicyDocument"}
    if req.service != "iam" or req.operation not in names:
        return None
    arn = missing_principal(req.params.get(names[req.operation]))
    if arn:
        return Refusal(400, "MalformedPolicyDocument", f'Invalid principal in policy: "AWS":"{arn}"')
    return None


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


def config_organization_aggregator(req: Req, account: str, raw: bytes) -> Refusal | None:
    # PutConfigurationAggregator with an organization source: "you must be signed in to the management
    # account or a registered delegated administrator and all the features must be enabled in your
    # organization" (https://docs.aws.amazon.com/config/latest/APIReference/API_PutConfigurationAggregator.html;
    # the errors: OrganizationAccessDeniedException, NoAvailableOrganizationException,
    # OrganizationAllFeaturesNotEnabledException).
    if req.service != "config" or req.operation != "PutConfigurationAggregator":
        return None
    if not req.params.get("OrganizationAggregationSource"):
        return None
    from assure_local.core import delegated_admin, organization_of

    org = organization_of(account)
    if org is None:
        return Refusal(400, "NoAvailableOrganizationException",
                       "Organization is not available. Check if the account is part of an organization.")
    mgmt, backend = org
    if getattr(backend.org, "feature_set", "ALL") != "ALL":
        return Refusal(400, "OrganizationAllFeaturesNotEnabledException",
                       "AWS Config cannot proceed further because not all features are enabled in your organization.")
    if account != mgmt and not delegated_admin(account, "config.amazonaws.com"):
        return Refusal(400, "OrganizationAccessDeniedException",
                       "You are not a registered delegated administrator for AWS Config with permissions to call "
                       "ListDelegatedAdministrators API. Ensure that the management account registers delegated "
                       "administrator for AWS Config service principal name before the delegated administrator "
                       "creates an aggregator.")
    return None


# IAM is eventually consistent: "a role you create ... might not be immediately usable" by another
# service for a few seconds (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html,
# "Changes that I make are not always immediately visible"). For this many seconds after CreateRole a
# service handed the role refuses it, with its own error. POST /assure-api/limits
# {"iamPropagationSeconds": N} changes it; the environment sets the default.
PROPAGATION = {"seconds": float(os.environ.get("ASSURE_IAM_PROPAGATION_SECONDS", "3"))}


def unusable_role(service: str, role_arn: str, source_arn: str | None = None) -> str | None:
    """Why the service principal `service` cannot use `role_arn` now, or None: the role must exist,
    be old enough for IAM to have propagated it, and trust the service acting for `source_arn` (the
    trail, the delivery stream: the context keys the service sends, authz.service_context)."""
    from moto.core.utils import utcnow

    role = authz.role_by_arn(role_arn)
    if role is None:
        return f"{role_arn} does not exist"
    if (utcnow() - role.create_date).total_seconds() < PROPAGATION["seconds"]:
        return f"{role_arn} is not yet visible to {service}"
    if not authz.service_trusted(service, role, source_arn).allowed:
        return f"the trust policy of {role_arn} does not admit {service}"
    return None


def role_allows(role_arn: str, action: str, resource: str) -> bool:
    """Whether the role's identity-based permissions allow `action` on `resource`: its policies, within
    its permissions boundary (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html)."""
    role = authz.role_by_arn(role_arn)
    allow, deny = iam.identity_effects(authz.role_policies(None, role), action, resource, {})
    boundary = authz.boundary_of(role.arn.split(":")[4], role)
    if boundary is not None:
        bound_allow, bound_deny = iam.identity_effects([boundary], action, resource, {})
        allow, deny = allow and bound_allow, deny or bound_deny
    return allow and not deny


def cloudtrail_logs_delivery(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateTrail/UpdateTrail with CloudWatch Logs delivery: the log group must exist, and CloudTrail must
    # be able to assume the role and create streams and put events in that group, or the call fails with
    # InvalidCloudWatchLogsLogGroupArnException / InvalidCloudWatchLogsRoleArnException
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html; the role:
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/send-cloudtrail-events-to-cloudwatch-logs.html).
    if req.service != "cloudtrail" or req.operation not in ("CreateTrail", "UpdateTrail"):
        return None
    role, group = p(req.params, "CloudWatchLogsRoleArn"), p(req.params, "CloudWatchLogsLogGroupArn")
    if not role and not group:
        return None
    m = re.match(r"^arn:aws:logs:([a-z0-9-]+):(\d{12}):log-group:([^:]+)(:\*)?$", group or "")
    if not m:
        return Refusal(400, "InvalidCloudWatchLogsLogGroupArnException",
                       "You must specify a valid CloudWatch Logs log group ARN along with the role.")
    from moto.logs.models import logs_backends

    region, owner, name = m.group(1), m.group(2), m.group(3)
    if owner != account or name not in logs_backends[owner][region].groups:
        return Refusal(400, "InvalidCloudWatchLogsLogGroupArnException", f"Access denied. Check the log group: {group}")
    if not role:
        return Refusal(400, "InvalidCloudWatchLogsRoleArnException", "You must specify a role ARN along with the log group.")
    # CloudTrail assumes the role for the trail: aws:SourceArn is the trail's ARN (CreateTrail's Name
    # is a name; UpdateTrail's a name or an ARN).
    trail = str(p(req.params, "Name") or "")
    trail_arn = trail if trail.startswith("arn:") else f"arn:aws:cloudtrail:{req.region}:{account}:trail/{trail}"
    why = unusable_role("cloudtrail.amazonaws.com", role, trail_arn)
    stream = f"arn:aws:logs:{region}:{owner}:log-group:{name}:log-stream:{account}_CloudTrail_{region}"
    if why is None and not all(role_allows(role, a, stream) for a in ("logs:CreateLogStream", "logs:PutLogEvents")):
        why = f"{role} may not create log streams and put log events in {name}"
    if why:
        return Refusal(400, "InvalidCloudWatchLogsRoleArnException",
                       f"Access denied. Verify in IAM that the role has adequate permissions. ({why})")
    return None


def firehose_role(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateDeliveryStream and UpdateDestination: Firehose assumes the destination's role at once and
    # refuses one it cannot assume with InvalidArgumentException
    # (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html; the role's
    # trust: https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html).
    if req.service != "firehose" or req.operation not in ("CreateDeliveryStream", "UpdateDestination"):
        return None
    roles = authz.dig(req.params, "ExtendedS3DestinationConfiguration.RoleARN")
    roles += authz.dig(req.params, "S3DestinationConfiguration.RoleARN")
    roles += authz.dig(req.params, "ExtendedS3DestinationUpdate.RoleARN")
    stream = f"arn:aws:firehose:{req.region}:{account}:deliverystream/{p(req.params, 'DeliveryStreamName') or ''}"
    for role in roles:
        if unusable_role("firehose.amazonaws.com", role, stream):
            return Refusal(400, "InvalidArgumentException",
                           f"Firehose is unable to assume role {role}. Please check the role provided.")
    return None


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
    role = authz.role_by_arn(role_arn)
    owner = authz.arn_account(role_arn) or ""
    principal = authz.role_principal(role, f"arn:aws:sts::{owner}:assumed-role/{role.name}/firehose")
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
    ctx = {k: values[k] for k in keys if values.get(k)}
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
    found = authz.s3_bucket(bucket)
    if found.account is None:
        return "bucket", f"bucket {bucket} does not exist"
    doc = found.policy
    for action, resource in (("s3:PutObject", f"arn:aws:s3:::{bucket}/{object_key}"),
                             (bucket_action, f"arn:aws:s3:::{bucket}")):
        direct, _, deny = iam.resource_effects(doc, principal, action, resource, ctx)
        if deny or not direct:
            return "bucket-policy", f"the policy of bucket {bucket} does not let {service} {action} {resource}"
    if key_id:
        key = authz.kms_key(region, account, key_id)
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


def cloudtrail_organization_trail(req: Req, account: str, raw: bytes) -> Refusal | None:
    # An organization trail is created in the management account, with trusted access for CloudTrail
    # enabled in the organization (CloudTrailAccessNotEnabledException); an account that is not the
    # management account cannot make one (NotOrganizationMasterAccountException, "the AWS account making the request to create or update
    # an organization trail ... is not the management account for an organization";
    # https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html,
    # https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html).
    if req.service != "cloudtrail":
        return None
    from assure_local.core import organization_of, trusted_access

    if req.operation in ("CreateTrail", "UpdateTrail") and p(req.params, "IsOrganizationTrail") is True:
        org = organization_of(account)
        if org is None or org[0] != account:
            return Refusal(400, "NotOrganizationMasterAccountException",
                           "The request was made by an account that is not the management account of the organization.")
        if not trusted_access(account, "cloudtrail.amazonaws.com"):
            return Refusal(400, "CloudTrailAccessNotEnabledException",
                           "Trusted access has not been enabled between CloudTrail and Organizations.")
    # A member's change to the trail is refused before this, by IAM: the trail is another account's
    # resource and trails have no resource-based policy.
    return None


def cloudtrail_delivery(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateTrail/UpdateTrail check that CloudTrail can deliver: InsufficientS3BucketPolicyException,
    # KmsKeyNotFoundException, InsufficientEncryptionPolicyException, S3BucketDoesNotExistException
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html).
    if req.service != "cloudtrail" or req.operation not in ("CreateTrail", "UpdateTrail"):
        return None
    from moto.cloudtrail.models import cloudtrail_backends

    name = p(req.params, "Name") or ""
    bucket, prefix, key = p(req.params, "S3BucketName"), p(req.params, "S3KeyPrefix"), p(req.params, "KmsKeyId")
    if req.operation == "UpdateTrail":
        try:
            trail = cloudtrail_backends[account][req.region].get_trail(name)
        except Exception:
            return None  # moto answers TrailNotFoundException
        bucket, prefix = bucket or trail.bucket_name, prefix if prefix is not None else trail.s3_key_prefix
        key = key if key is not None else trail.kms_key_id
        name = trail.trail_name
    if not bucket:
        return None
    arn = f"arn:aws:cloudtrail:{req.region}:{account}:trail/{name}"
    refused = trail_delivery_refusal(account, req.region, arn, bucket, prefix, key)
    if refused is None:
        return None
    what, why = refused
    if what == "bucket":
        return Refusal(400, "S3BucketDoesNotExistException", f"S3 bucket {bucket} does not exist.")
    if what == "bucket-policy":
        return Refusal(400, "InsufficientS3BucketPolicyException",
                       f"Incorrect S3 bucket policy is detected for bucket: {bucket} ({why})")
    if what == "key":
        return Refusal(400, "KmsKeyNotFoundException", f"KMS key {key} not found ({why})")
    return Refusal(400, "InsufficientEncryptionPolicyException",
                   f"Insufficient permissions to access S3 bucket {bucket} or KMS key {key}. ({why})")


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
    owner = authz.s3_bucket(bucket).account
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


def config_delivery_channel(req: Req, account: str, raw: bytes) -> Refusal | None:
    # PutDeliveryChannel: NoSuchBucketException for a bucket that does not exist,
    # InsufficientDeliveryPolicyException when "your Amazon S3 bucket policy does not allow Config to
    # write to it" (https://docs.aws.amazon.com/config/latest/APIReference/API_PutDeliveryChannel.html).
    if req.service != "config" or req.operation != "PutDeliveryChannel":
        return None
    channel = p(req.params, "DeliveryChannel") or {}
    bucket = channel.get("s3BucketName")
    if not bucket:
        return None  # moto answers NoSuchBucketException for an empty name
    refused = config_delivery_refusal(account, req.region, bucket, channel.get("s3KeyPrefix"))
    if refused is None:
        return None
    if refused[0] == "bucket":
        return Refusal(400, "NoSuchBucketException", f"Cannot find a S3 bucket named {bucket}.")
    return Refusal(400, "InsufficientDeliveryPolicyException",
                   f"Insufficient delivery policy to s3 bucket: {bucket}, unable to write to bucket, provided s3 key prefix is '{channel.get('s3KeyPrefix') or ''}'. ({refused[1]})")


SCP_MAX_CHARACTERS = 5120
SCP_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


def scp_grammar_error(text: Any) -> str | None:
    """What makes `text` not a service control policy, or None. SCPs use the IAM policy grammar
    without principals: https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_syntax.html"""
    try:
        doc = json.loads(text) if isinstance(text, str) else None
    except ValueError as e:
        return f"the policy is not JSON: {e}"
    if not isinstance(doc, dict):
        return "the policy is not a JSON object"
    if set(doc) - {"Version", "Id", "Statement"}:
        return f"unknown top-level elements: {sorted(set(doc) - {'Version', 'Id', 'Statement'})}"
    if doc.get("Version", "2012-10-17") != "2012-10-17":
        return f"Version {doc.get('Version')!r} is not 2012-10-17"
    statements = as_list(doc.get("Statement"))
    if not statements:
        return "the policy has no Statement"
    for i, s in enumerate(statements):
        if not isinstance(s, dict):
            return f"statement {i} is not an object"
        if set(s) - SCP_KEYS:
            return f"statement {i}: {sorted(set(s) - SCP_KEYS)} not supported in an SCP"
        if s.get("Effect") not in ("Allow", "Deny"):
            return f"statement {i}: Effect must be Allow or Deny"
        if ("Action" in s) == ("NotAction" in s):
            return f"statement {i}: exactly one of Action and NotAction"
        if "Resource" in s and "NotResource" in s:
            return f"statement {i}: Resource and NotResource together"
    return None


def organizations_policy(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreatePolicy/UpdatePolicy of an SCP: the document must follow the SCP grammar
    # (MalformedPolicyDocumentException) and be at most 5,120 characters, white space included
    # (ConstraintViolationException, Reason POLICY_CONTENT_LIMIT_EXCEEDED):
    # https://docs.aws.amazon.com/organizations/latest/APIReference/API_CreatePolicy.html,
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html
    if req.service != "organizations" or req.operation not in ("CreatePolicy", "UpdatePolicy"):
        return None
    content = p(req.params, "Content")
    if content is None:
        return None
    kind = p(req.params, "Type")
    if req.operation == "UpdatePolicy":
        from assure_local.core import organization_of

        org = organization_of(account)
        found = next((x for x in org[1].policies if x.id == p(req.params, "PolicyId")), None) if org else None
        kind = getattr(found, "type", None)
    if kind != "SERVICE_CONTROL_POLICY":
        return None
    if len(content) > SCP_MAX_CHARACTERS:
        return Refusal(400, "ConstraintViolationException",
                       f"You attempted to create a policy larger than the maximum size ({len(content)} characters; an SCP may have {SCP_MAX_CHARACTERS}).",
                       {"Reason": "POLICY_CONTENT_LIMIT_EXCEEDED"})
    why = scp_grammar_error(content)
    if why:
        return Refusal(400, "MalformedPolicyDocumentException",
                       f"The provided policy document does not meet the requirements of the specified policy type: {why}.")
    return None


# Services whose organization has at most one delegated administrator: registering another account
# while one is registered is ConstraintViolationException, Reason
# DELEGATED_ADMINISTRATOR_EXISTS_FOR_THIS_SERVICE ("You attempted to register an AWS account as a
# delegated administrator for an AWS service that already has a delegated administrator. To complete
# this operation, you must first deregister any existing delegated administrators for this service":
# https://docs.aws.amazon.com/organizations/latest/APIReference/API_RegisterDelegatedAdministrator.html,
# ConstraintViolationException). IAM Access Analyzer is one: "Only the management account can add,
# remove, or change a delegated administrator" and changing it means replacing the one there
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-settings.html).
ONE_DELEGATED_ADMINISTRATOR = {"access-analyzer.amazonaws.com"}


def organizations_delegated_administrator(req: Req, account: str, raw: bytes) -> Refusal | None:
    if req.service != "organizations" or req.operation != "RegisterDelegatedAdministrator":
        return None
    principal, new = p(req.params, "ServicePrincipal"), p(req.params, "AccountId")
    if principal not in ONE_DELEGATED_ADMINISTRATOR:
        return None
    from assure_local.core import organization_of

    org = organization_of(account)
    if org is None:
        return None
    others = [a.account.id for a in org[1].admins if principal in a.services and a.account.id != new]
    if others:
        return Refusal(400, "ConstraintViolationException",
                       "You attempted to register an account as a delegated administrator for a service that already has a delegated administrator.",
                       {"Reason": "DELEGATED_ADMINISTRATOR_EXISTS_FOR_THIS_SERVICE"})
    return None


def guardduty_one_detector(req: Req, account: str, raw: bytes) -> Refusal | None:
    """"You can have only one detector per account per Region"
    (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_CreateDetector.html): a second
    CreateDetector is a BadRequestException; moto would make a second detector."""
    if req.service != "guardduty" or req.operation != "CreateDetector":
        return None
    from moto.guardduty.models import guardduty_backends

    if guardduty_backends[account][req.region].detectors:
        return Refusal(400, "BadRequestException",
                       "The request is rejected because a detector already exists for the current account.")
    return None


SCPS_PER_TARGET = 5


def organizations_attach(req: Req, account: str, raw: bytes) -> Refusal | None:
    # AttachPolicy: at most 5 SCPs on a root, OU or account (ConstraintViolationException, Reason
    # POLICY_NUMBER_LIMIT_EXCEEDED); a policy already attached is DuplicatePolicyAttachmentException
    # (https://docs.aws.amazon.com/organizations/latest/APIReference/API_AttachPolicy.html,
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html). A policy
    # whose type is not enabled in the root cannot be attached anywhere in it,
    # PolicyTypeNotEnabledException ("This operation can be performed only for enabled policy types.";
    # https://docs.aws.amazon.com/organizations/latest/APIReference/API_EnablePolicyType.html); moto
    # attaches it all the same.
    if req.service != "organizations" or req.operation != "AttachPolicy":
        return None
    from assure_local.core import organization_of

    org = organization_of(account)
    if org is None:
        return None
    backend = org[1]
    policy = next((x for x in backend.policies if x.id == p(req.params, "PolicyId")), None)
    target_id = p(req.params, "TargetId")
    target = next((x for x in list(backend.ou) + list(backend.accounts) if x.id == target_id), None)
    if policy is None or target is None:
        return None  # moto answers PolicyNotFoundException / TargetNotFoundException
    root = next((x for x in backend.ou if getattr(x, "type", "") == "ROOT"), None)
    if root is not None and not any(t.get("Type") == policy.type and t.get("Status") == "ENABLED"
                                    for t in root.policy_types):
        return Refusal(400, "PolicyTypeNotEnabledException", "This operation can be performed only for enabled policy types.")
    if policy in target.attached_policies:
        return Refusal(400, "DuplicatePolicyAttachmentException", "The selected policy is already attached to the specified target.")
    same = [x for x in target.attached_policies if x.type == policy.type]
    if policy.type == "SERVICE_CONTROL_POLICY" and len(same) >= SCPS_PER_TARGET:
        return Refusal(400, "ConstraintViolationException",
                       f"You have attached the maximum number of policies to this target ({SCPS_PER_TARGET} service control policies).",
                       {"Reason": "POLICY_NUMBER_LIMIT_EXCEEDED"})
    return None


# Every request is checked against the service's API model, as AWS's front ends do before the
# service acts: required members, types, lengths, ranges and enum values, answered in AWS's wording
# ("1 validation error detected: Value 'x' at 'roleName' failed to satisfy constraint: Member must
# have length less than or equal to 64"). The models are botocore's, as installed with moto. Patterns
# are not checked (the models' are Java regular expressions).
# - JSON and Smithy RPC v2 CBOR (KMS, CloudTrail, Config, ...): ValidationException.
#   https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html
# - Query (IAM, STS, SNS, CloudWatch's query clients): ValidationError; the flattened members
#   (`Tags.member.1.Key`) are read back into the input's shape first.
#   https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html
# - REST-JSON: the members come from the path, the query string, the headers and the body, each as
#   the model places it. IAM Access Analyzer answers ValidationException
#   (https://docs.aws.amazon.com/access-analyzer/latest/APIReference/CommonErrors.html), GuardDuty
#   BadRequestException (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_CreateDetector.html,
#   Errors).
# S3 (REST-XML) is not checked this way: its front end answers bad input with errors of its own
# (InvalidArgument, MalformedXML), not with a generic validation error.
MODEL_NAMES = {"kms": "kms", "cloudtrail": "cloudtrail", "config": "config", "organizations": "organizations",
               "firehose": "firehose", "ssm": "ssm", "states": "stepfunctions", "logs": "logs", "events": "events",
               "sqs": "sqs", "monitoring": "cloudwatch", "iam": "iam", "sts": "sts", "sns": "sns",
               "guardduty": "guardduty", "access-analyzer": "accessanalyzer"}
# The validation error each REST-JSON service answers.
# Account Management: https://docs.aws.amazon.com/accounts/latest/reference/CommonErrors.html.
REST_VALIDATION = {"guardduty": "BadRequestException", "access-analyzer": "ValidationException",
                   "account": "ValidationException"}
_MODELS: dict[str, Any] = {}


def model_of(service: str) -> Any:
    if service not in _MODELS:
        import botocore.session

        _MODELS[service] = botocore.session.get_session().get_service_model(MODEL_NAMES[service])
    return _MODELS[service]


def violations(shape: Any, value: Any, path: str, out: list[str]) -> None:
    """AWS's wording of each constraint `value` breaks, at `path` (the member names, camelCase)."""
    t = shape.type_name
    if value is None:
        return
    meta = shape.metadata
    text = str(value) if len(str(value)) <= 80 else str(value)[:77] + "..."
    shown = f"'{text}'" if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "[object]"
    if t == "structure":
        if not isinstance(value, dict):
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a structure")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                out.append(f"Value null at '{(path + '.') if path else ''}{name[:1].lower() + name[1:]}' failed to "
                           "satisfy constraint: Member must not be null")
        for name, member in shape.members.items():
            if name in value:
                violations(member, value[name], f"{(path + '.') if path else ''}{name[:1].lower() + name[1:]}", out)
    elif t == "list":
        if not isinstance(value, list):
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a list")
            return
        if "min" in meta and len(value) < meta["min"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        for i, v in enumerate(value):
            violations(shape.member, v, f"{path}.{i + 1}.member", out)
    elif t == "map":
        if isinstance(value, dict):
            for k, v in value.items():
                violations(shape.value, v, f"{path}.{k}", out)
    elif t == "string":
        if not isinstance(value, str):
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a string")
            return
        if "min" in meta and len(value) < meta["min"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        if shape.enum and value not in shape.enum:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    elif t in ("integer", "long", "double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a number")
            return
        if "min" in meta and value < meta["min"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have value less than or equal to {meta['max']}")
    elif t == "boolean" and not isinstance(value, bool):
        out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a boolean")


def query_members(shape: Any, form: dict[str, str], prefix: str) -> Any:
    """A query-protocol input read back into `shape`: `Tags.member.1.Key=k` becomes
    {"Tags": [{"Key": "k"}]}. Scalars keep their text unless they parse as the shape's type, so a
    value that does not is reported as the model's type error."""
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = query_members(member, form, f"{prefix}.{key}" if prefix else key)
            if value is not None:
                out[name] = value
        return out if out or not prefix else None
    if t == "list":
        if form.get(prefix) == "":
            return []  # botocore sends an empty list as `Name=`
        flat = shape.serialization.get("flattened")
        item = prefix if flat else f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        out, i = [], 1
        while any(k == f"{item}.{i}" or k.startswith(f"{item}.{i}.") for k in form):
            out.append(query_members(shape.member, form, f"{item}.{i}"))
            i += 1
        return out or None
    if t == "map":
        entry = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        k_name = shape.key.serialization.get("name", "key")
        v_name = shape.value.serialization.get("name", "value")
        out, i = {}, 1
        while f"{entry}.{i}.{k_name}" in form:
            out[form[f"{entry}.{i}.{k_name}"]] = query_members(shape.value, form, f"{entry}.{i}.{v_name}")
            i += 1
        return out or None
    if prefix not in form:
        return None
    return scalar(shape, form[prefix])


def scalar(shape: Any, text: str) -> Any:
    """A member sent as text (a query member, a query-string or header member of a REST call) as the
    type its shape names, or the text itself when it is not one."""
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(text)
        if t in ("double", "float"):
            return float(text)
    except ValueError:
        return text
    if t == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def by_member_name(shape: Any, value: Any) -> Any:
    """A JSON body keyed by the members' wire names (GuardDuty's `detectorId` for `DetectorId`) keyed
    by the model's member names instead, all the way down, as `violations` reads it."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            if key in value:
                out[name] = by_member_name(member, value[key])
            elif name in value:
                out[name] = by_member_name(member, value[name])
        return out
    if t == "list" and isinstance(value, list):
        return [by_member_name(shape.member, v) for v in value]
    if t == "map" and isinstance(value, dict):
        return {k: by_member_name(shape.value, v) for k, v in value.items()}
    return value


def rest_members(shape: Any, req: Req) -> dict:
    """A REST call's input keyed by member name: the path's labels (authz.rest_operation put them
    beside the body's members), the query string's and the headers' members, and the body's, each
    where the model places it."""
    sent = req.params if isinstance(req.params, dict) else {}
    out = {}
    for name, member in shape.members.items():
        where, key = member.serialization.get("location"), member.serialization.get("name", name)
        if where == "querystring":
            values = (req.query or {}).get(key)
            if values and member.type_name == "list":
                out[name] = list(values)
            elif values:
                out[name] = scalar(member, values[0])
        elif where == "header":
            if key.lower() in (req.headers or {}):
                out[name] = scalar(member, (req.headers or {})[key.lower()])
        elif key in sent:
            out[name] = by_member_name(member, sent[key])
    return out


def api_model(req: Req, account: str, raw: bytes) -> Refusal | None:
    if req.service not in MODEL_NAMES or not req.operation:
        return None
    model = model_of(req.service)
    if req.operation not in model.operation_names:
        return None
    shape = model.operation_model(req.operation).input_shape
    if shape is None:
        return None
    code = "ValidationException"
    if (req.headers or {}).get("x-amz-target") or "/operation/" in (req.path or ""):
        params = by_member_name(shape, req.params)
    elif req.service in REST_VALIDATION:
        params, code = rest_members(shape, req), REST_VALIDATION[req.service]
    else:
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace"), keep_blank_values=True).items()}
        form.update({k: v[0] for k, v in (req.query or {}).items() if v})
        params, code = query_members(shape, form, ""), "ValidationError"
    if not isinstance(params, dict):
        return None
    found: list[str] = []
    violations(shape, params, "", found)
    if not found:
        return None
    n = len(found)
    message = f"{n} validation error{'s' if n > 1 else ''} detected: {'; '.join(found)}"
    if code == "BadRequestException":
        # GuardDuty's wording, with the model's findings after it.
        message = ("The request is rejected because an invalid or out-of-range value is specified as an "
                   f"input parameter. {message}")
    return Refusal(400, code, message)


def s3_expected_bucket_owner(req: Req, account: str, raw: bytes) -> Refusal | None:
    # The bucket owner condition: "If the bucket is owned by a different account, the request fails
    # with an HTTP 403 (Access Denied) error", for every bucket and object operation that carries
    # x-amz-expected-bucket-owner, and, for the source of a copy, x-amz-source-expected-bucket-owner
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html). A value that
    # is not an account ID: 400 InvalidBucketOwnerAWSAccountID
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList).
    if req.service != "s3":
        return None
    headers = req.headers or {}
    checks = []
    bucket = unquote(req.path).lstrip("/").partition("/")[0]
    if bucket and "x-amz-expected-bucket-owner" in headers:
        checks.append((bucket, headers["x-amz-expected-bucket-owner"]))
    source = headers.get("x-amz-copy-source")
    if source and "x-amz-source-expected-bucket-owner" in headers:
        checks.append((unquote(source).lstrip("/").partition("/")[0], headers["x-amz-source-expected-bucket-owner"]))
    if not checks:
        return None
    from moto.s3.models import s3_backends

    for name, expected in checks:
        expected = expected.strip()
        if not re.fullmatch(r"\d{12}", expected):
            return Refusal(400, "InvalidBucketOwnerAWSAccountID",
                           "The value of the expected bucket owner parameter must be an AWS Account ID...")
        owner = s3_backends.bucket_accounts.get(name)
        if owner is not None and owner[1] != expected:
            return Refusal(403, "AccessDenied", "Access Denied")
    return None


def ssm_start_session(req: Req, account: str, raw: bytes) -> Refusal | None:
    # StartSession, once authorized: a target that is not a managed node whose SSM Agent is online
    # with a control channel (ssm_agents.connected: registered with /assure-api/managed-instances,
    # its role usable) is TargetNotConnected, "The specified target managed node for the session isn't
    # fully configured for use with Session Manager"; a document of the account's that does not exist:
    # InvalidDocument, "The specified SSM document doesn't exist"
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StartSession.html, Errors).
    # AWS's own documents (AWS-StartPortForwardingSession, …) exist in every account; moto has none.
    if req.service != "ssm" or req.operation != "StartSession":
        return None
    doc = p(req.params, "DocumentName")
    if isinstance(doc, str) and doc and doc != authz.DEFAULT_SESSION_DOCUMENT and not doc.startswith("arn:") \
            and not doc.lower().startswith(authz.AWS_DOCUMENT_PREFIXES):
        from moto.ssm.models import ssm_backends

        if doc not in ssm_backends[account][req.region]._documents:
            return Refusal(400, "InvalidDocument", "The specified document does not exist.")
    target = p(req.params, "Target") or ""

    if isinstance(target, str) and ssm_agents.connected(account, req.region, target):
        return None
    return Refusal(400, "TargetNotConnected", f"{target} is not connected.")


def logs_kms_key(req: Req, account: str, raw: bytes) -> Refusal | None:
    """CreateLogGroup and AssociateKmsKey with a key: CloudWatch Logs must be able to use it for the
    log group, as its own service principal (logs.REGION.amazonaws.com), under the encryption context
    it always uses, `aws:logs:arn` the log group's ARN ("Encrypt log data in CloudWatch Logs using AWS
    Key Management Service": the key policy's statement for CloudWatch Logs, conditioned on
    kms:EncryptionContext:aws:logs:arn,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html). The page
    names no aws:SourceAccount or aws:SourceArn for this use, so none is sent (DELIVERY_CONTEXT_KEYS).
    A key that does not exist, is disabled, or whose policy does not admit CloudWatch Logs:
    InvalidParameterException (API_CreateLogGroup, API_AssociateKmsKey)."""
    if req.service != "logs" or req.operation not in ("CreateLogGroup", "AssociateKmsKey"):
        return None
    key_id, group = p(req.params, "kmsKeyId"), p(req.params, "logGroupName")
    if not isinstance(key_id, str) or not key_id or not isinstance(group, str):
        return None
    arn = f"arn:aws:logs:{req.region}:{account}:log-group:{group}"
    refused = Refusal(400, "InvalidParameterException",
                      f"The specified KMS key does not exist or is not allowed to be used with Arn '{arn}'")
    key = authz.kms_key(req.region, account, key_id)
    if key is None or key_state(key.arn) != "Enabled":
        return refused
    service = f"logs.{req.region}.amazonaws.com"
    principal = iam.Principal(kind="service", account="", arn=service)
    ctx = {"aws:SecureTransport": "true", "aws:PrincipalIsAWSService": "true",
           "kms:EncryptionContext:aws:logs:arn": arn, "kms:EncryptionContextKeys": ["aws:logs:arn"],
           **delivery_context(service, account, arn)}
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        direct, _, deny = iam.resource_effects(key.policy, principal, action, key.arn, ctx)
        if deny or not direct:
            return refused
    return None


def lambda_role(req: Req, account: str, raw: bytes) -> Refusal | None:
    """CreateFunction and UpdateFunctionConfiguration with a role: Lambda assumes it, so it must exist,
    be propagated, and trust lambda.amazonaws.com; otherwise InvalidParameterValueException "The role
    defined for the function cannot be assumed by Lambda." (API_CreateFunction, Errors;
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html)."""
    if req.service != "lambda" or req.operation not in ("CreateFunction", "UpdateFunctionConfiguration"):
        return None
    role = p(req.params, "Role")
    if not isinstance(role, str) or not role:
        return None
    if unusable_role("lambda.amazonaws.com", role) is None:
        return None
    return Refusal(400, "InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.")


def lambda_function(region: str, account: str, name: str) -> Any:
    from moto.awslambda.models import lambda_backends

    try:
        return lambda_backends[account][region].get_function(name)
    except Exception:  # noqa: BLE001 - moto's not-found
        return None


def lambda_sqs_mapping(req: Req, account: str, raw: bytes) -> Refusal | None:
    """An event source mapping of an SQS queue (CreateEventSourceMapping, and UpdateEventSourceMapping
    naming another function), as Lambda checks it before it polls
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html):
    - the queue's visibility timeout must be at least the function's timeout ("Queue visibility
      timeout: 30 seconds is less than Function timeout: 900 seconds"; the page recommends six times);
    - the function's execution role must allow sqs:ReceiveMessage, sqs:DeleteMessage and
      sqs:GetQueueAttributes on the queue ("The provided execution role does not have permissions to
      call ReceiveMessage on SQS"; "Execution role permissions" on the same page).
    Both InvalidParameterValueException."""
    if req.service != "lambda" or req.operation not in ("CreateEventSourceMapping", "UpdateEventSourceMapping"):
        return None
    source = p(req.params, "EventSourceArn")
    function_name = p(req.params, "FunctionName")
    if req.operation == "UpdateEventSourceMapping":
        from moto.awslambda.models import lambda_backends

        uuid = (req.path or "").rstrip("/").rsplit("/", 1)[-1]
        mapping = lambda_backends[account][req.region].get_event_source_mapping(uuid)
        if mapping is None:
            return None
        source = mapping.event_source_arn
        function_name = function_name or mapping.function_arn
    if not isinstance(source, str) or ":sqs:" not in source or not isinstance(function_name, str):
        return None
    function = lambda_function(req.region, account, function_name)
    if function is None:
        return None
    from moto.sqs.models import sqs_backends

    _, _, _, q_region, q_account, q_name = source.split(":", 5)
    queue = sqs_backends[q_account][q_region].queues.get(q_name)
    if queue is None:
        return None
    visibility, timeout = int(queue.visibility_timeout), int(function.timeout)
    if visibility < timeout:
        return Refusal(400, "InvalidParameterValueException",
                       f"Queue visibility timeout: {visibility} seconds is less than Function timeout: {timeout} seconds")
    for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
        if authz.role_by_arn(function.role) is None or not role_allows(function.role, f"sqs:{action}", source):
            return Refusal(400, "InvalidParameterValueException",
                           f"The provided execution role does not have permissions to call {action} on SQS")
    return None


def key_state(key_arn: str) -> str | None:
    """The KMS key's state (Enabled, Disabled, PendingDeletion, ...), or None if it does not exist."""
    from moto.kms.models import kms_backends

    _, _, _, region, account, rest = key_arn.split(":", 5)
    key = kms_backends[account][region].keys.get(rest.split("/", 1)[-1])
    return None if key is None else getattr(key, "key_state", "Enabled")


RULES: list[Callable[[Req, str, bytes], Refusal | None]] = [
    api_model, s3_expected_bucket_owner, ssm_start_session, logs_kms_key, lambda_role, lambda_sqs_mapping,
    s3_bucket_policy, kms_key_policy, iam_trust_policy, cloudwatch_delete_alarms, config_organization_aggregator,
    cloudtrail_logs_delivery, cloudtrail_organization_trail, cloudtrail_delivery, firehose_role, organizations_policy,
    organizations_attach, organizations_delegated_administrator, config_delivery_channel, guardduty_one_detector,
]


def check(req: Req, account: str, raw: bytes) -> Refusal | None:
    for rule in RULES:
        refused = rule(req, account, raw)
        if refused is not None:
            return refused
    return None
