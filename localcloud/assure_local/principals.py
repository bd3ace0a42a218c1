"""Who signs a request: the principal behind an access key (users, role sessions, root sessions, federated identities), the bootstrap administrator, and the services that assume roles."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from assure_local import core, iam
from assure_local.aws_request import Req, arn_account, p
from assure_local.core import (
    LOCK,
    ApiError,
)
from assure_local.iam import Principal, Resource, as_list
from assure_local.policies import (
    boundary_of,
    enabled,
    managed_policy,
    record,
    role_by_arn,
    role_policies,
    session_policies,
    user_policies,
)

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
    invalid = (400, "InvalidIdentityToken", ("The web identity token that was passed could not be validated by AWS. "
               "Get a new identity token from the identity provider and then retry the request."))
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
            return (400, "ExpiredTokenException", ("The web identity token that was passed is expired or is not valid. "
                    "Get a new identity token from the identity provider and then retry the request."))
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
            region_name="us-east-1", role_session_name=session_name, role_arn=role_arn, policy=None,  # type: ignore[arg-type]
            duration=43200, external_id=None)  # type: ignore[arg-type]  # moto's annotation says str; it takes None
