"""IAM and STS: moto's fixes (identity, permissions boundaries, what IAM lists) and centralized root access (root features, sts:AssumeRoot)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import cast

from assure_local import aws_request, policies, principals
from assure_local.aws_request import Req
from assure_local.core import (
    LOCK,
    delegated_admin,
    organization_of,
    replace,
    trusted_access,
)
from assure_local.rules import Refusal, missing_principal


def iam_lists_what_it_holds() -> None:
    """moto's IAM looks a role up by walking its live dictionary of roles; a role made by another
    request at that moment (CloudFormation makes a stack's roles at once, as on AWS) ended the walk
    with "dictionary changed size during iteration", an HTTP 500. It walks a copy."""
    from moto.iam.models import IAMBackend

    replace(IAMBackend, "get_roles", lambda self: list(self.roles.values()))


def patch_identity() -> None:
    """What moto's IAM and STS lack for permissions boundaries, session policies and the root user."""
    from moto.core.responses import EmptyResult
    from moto.iam import models as iam
    from moto.iam import responses as iam_responses
    from moto.sts import models as sts
    from moto.sts import responses as sts_responses

    # AssumeRole's managed session policies (PolicyArns): moto keeps the inline Policy on the session
    # and drops the ARNs. They are kept on the session, which policies.session_policies reads: "The
    # resulting session's permissions are the intersection of the role's identity-based policy and the
    # session policies" (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
    moto_assume_role = sts_responses.TokenResponse.assume_role

    def assume_role(self):
        result = moto_assume_role(self)
        session = cast(dict, result.result)["Credentials"]
        arns = self._get_param("PolicyArns") or []
        session.policy_arns = [a.get("arn") if isinstance(a, dict) else a for a in arns if a]
        return result

    replace(sts_responses.TokenResponse, "assume_role", assume_role)

    # GetCallerIdentity of the root user (its access keys, a centralized root session): the account's ID
    # and arn:aws:iam::ACCOUNT:root (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html,
    # "Example: root user"); moto answers with a made-up user.
    moto_caller = sts.STSBackend.get_caller_identity

    def get_caller_identity(self, access_key_id, region):
        account = principals.ROOT_KEYS.get(access_key_id)
        if account is None and access_key_id in principals.ROOT_SESSIONS:
            account = principals.ROOT_SESSIONS[access_key_id].account
        if account is not None:
            return account, principals.root_arn(account), account
        return moto_caller(self, access_key_id, region)

    replace(sts.STSBackend, "get_caller_identity", get_caller_identity)

    # A user's permissions boundary: PutUserPermissionsBoundary, DeleteUserPermissionsBoundary,
    # CreateUser's PermissionsBoundary and GetUser's answer, which moto lacks (it keeps a role's only).
    # Errors as IAM's: NoSuchEntity for a user that does not exist, InvalidInput for a value that is
    # not a policy ARN (https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPermissionsBoundary.html).
    replace(iam.User, "permissions_boundary_arn", None)

    def user_boundary(self):
        if not self.permissions_boundary_arn:
            return None
        return {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": self.permissions_boundary_arn}

    replace(iam.User, "permissions_boundary", property(user_boundary))

    def set_user_boundary(backend, user_name: str, arn: str | None) -> None:
        user = backend.get_user(user_name)
        if arn and not backend.policy_arn_regex.match(arn):
            raise iam.ValidationError(f"Value ({arn}) for parameter PermissionsBoundary is invalid.")
        user.permissions_boundary_arn = arn or None

    def put_user_permissions_boundary(self):
        set_user_boundary(self.backend, self._get_param("UserName"), self._get_param("PermissionsBoundary"))
        return EmptyResult()

    def delete_user_permissions_boundary(self):
        set_user_boundary(self.backend, self._get_param("UserName"), None)
        return EmptyResult()

    moto_create_user = iam_responses.IamResponse.create_user

    def create_user(self):
        boundary = self._get_param("PermissionsBoundary")
        if boundary and not self.backend.policy_arn_regex.match(boundary):
            raise iam.ValidationError(f"Value ({boundary}) for parameter PermissionsBoundary is invalid.")
        result = moto_create_user(self)
        if boundary:
            cast(dict, result.result)["User"].permissions_boundary_arn = boundary
        return result

    replace(iam_responses.IamResponse, "put_user_permissions_boundary", put_user_permissions_boundary)
    replace(iam_responses.IamResponse, "delete_user_permissions_boundary", delete_user_permissions_boundary)
    replace(iam_responses.IamResponse, "create_user", create_user)

    # Centralized root access, which moto lacks: the organization's features
    # (EnableOrganizationsRootCredentialsManagement, EnableOrganizationsRootSessions, their Disable
    # twins, ListOrganizationsFeatures) and sts:AssumeRoot.
    for name in ("enable_organizations_root_credentials_management", "enable_organizations_root_sessions",
                 "disable_organizations_root_credentials_management", "disable_organizations_root_sessions",
                 "list_organizations_features"):
        setattr(iam_responses.IamResponse, name, root_features_handler(name))
    replace(sts_responses.TokenResponse, "assume_root", assume_root)
    # The root user's credentials as IAM shows them (password, access keys, signing certificates, MFA
    # devices), for centralized root access's IAM tasks: root.py.
    from assure_local import root

    root.patch()


def query_error(service: str, code: str, message: str) -> Exception:
    """An IAM or STS error that moto serializes in the query protocol's shape, with the HTTP status of
    the API model's error shape (moto finds the model by the exception's package)."""
    from moto.iam.exceptions import IAMException
    from moto.sts.exceptions import STSClientError

    return (IAMException if service == "iam" else STSClientError)(code, message)


def access_denied(message: str) -> Exception:
    """STS's AccessDenied, HTTP 403, in the query protocol's shape (the API model has no shape for it)."""
    from moto.core.exceptions import _RESTError

    class Denied(_RESTError):
        code = 403

    return Denied("AccessDenied", message)


# Centralized root access (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user.html#id_root-user-access-management):
# per organization (its management account), the features enabled: "RootCredentialsManagement" (the
# management account or IAM's delegated administrator may delete, audit and recover member accounts'
# root credentials) and "RootSessions" (they may take privileged root sessions, sts:AssumeRoot).
ROOT_FEATURES: dict[str, set[str]] = {}


IAM_PRINCIPAL = "iam.amazonaws.com"


def root_features_handler(name: str) -> Callable:
    """The IAM operation `name`. Its errors, in the order checked, are the API reference's
    (https://docs.aws.amazon.com/IAM/latest/APIReference/API_EnableOrganizationsRootSessions.html and
    its siblings, "Errors"): OrganizationNotFoundException ("no organization is associated with your
    account"), OrganizationNotInAllFeaturesModeException, CallerIsNotManagementAccountException
    (Enable/Disable: "the account making the request is not the management account for the
    organization"), AccountNotManagementOrDelegatedAdministratorException (ListOrganizationsFeatures:
    neither the management account nor IAM's delegated administrator), ServiceAccessNotEnabledException
    ("trusted access is not enabled for IAM in AWS Organizations")."""
    feature = "RootSessions" if name.endswith("root_sessions") else "RootCredentialsManagement"

    def handler(self):
        from moto.core.responses import ActionResult

        account = self.current_account
        org = organization_of(account)
        if org is None or org[1].org is None:
            raise query_error("iam", "OrganizationNotFoundException",
                              "The request was rejected because no organization is associated with your account.")
        mgmt, backend = org
        if backend.org.feature_set != "ALL":
            raise query_error("iam", "OrganizationNotInAllFeaturesModeException",
                              "The request was rejected because your organization does not have All features enabled.")
        if name.startswith(("enable", "disable")) and account != mgmt:
            raise query_error("iam", "CallerIsNotManagementAccountException",
                              "The request was rejected because the account making the request is not the management "
                              "account for the organization.")
        if account != mgmt and not delegated_admin(account, IAM_PRINCIPAL):
            raise query_error("iam", "AccountNotManagementOrDelegatedAdministratorException",
                              "The request was rejected because the account making the request is not the management "
                              "account or delegated administrator account for centralized root access.")
        if not trusted_access(mgmt, IAM_PRINCIPAL):
            raise query_error("iam", "ServiceAccessNotEnabledException",
                              "The request was rejected because trusted access is not enabled for IAM in AWS Organizations.")
        with LOCK:
            features = ROOT_FEATURES.setdefault(mgmt, set())
            if name.startswith("enable"):
                features.add(feature)
            elif name.startswith("disable"):
                features.discard(feature)
            enabled = sorted(features)
        return ActionResult({"OrganizationId": backend.org.id, "EnabledFeatures": enabled})

    return handler


# The task policies a root session may be scoped to (API_AssumeRoot, TaskPolicyArn).
ROOT_TASK_POLICY_ARNS = tuple(policies.ROOT_TASK_POLICIES)


def assume_root(self):
    """sts:AssumeRoot (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoot.html), once
    authorized (the caller's identity-based policy allows sts:AssumeRoot on the member's root user,
    resources.resources_for; root credentials may not call it, authz.authorize): "You must use credentials
    from an Organizations management account or a delegated administrator account for IAM", the
    organization must have centralized root sessions enabled ("Before you can launch a privileged
    session, you must have centralized root access in your organization":
    https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-enable-root-access.html), TargetPrincipal
    is a member account (ID or ARN), TaskPolicyArn one of the five root task policies, DurationSeconds
    at most 900 (the default). AWS documents no error codes for these refusals but the common ones:
    AccessDenied (403) for the account and the feature, ValidationError (400) for the parameters.

    The session acts as the member's root user, limited by its task policy (a session policy), with
    aws:AssumedRoot in its requests' context; GetCallerIdentity answers arn:aws:iam::MEMBER:root."""
    import datetime as dt
    import secrets

    from moto.core.responses import ActionResult
    from moto.iam.models import iam_backends

    account = self.current_account
    org = organization_of(account)
    if org is None or org[1].org is None or (account != org[0] and not delegated_admin(account, IAM_PRINCIPAL)):
        raise access_denied(f"Account {account} is not the management account or IAM's delegated "
                                          "administrator of an organization: it cannot call AssumeRoot.")
    mgmt, backend = org
    if "RootSessions" not in ROOT_FEATURES.get(mgmt, set()):
        raise access_denied("Centralized root sessions (iam:EnableOrganizationsRootSessions) are not "
                                          "enabled for the organization.")
    target = str(self._get_param("TargetPrincipal") or "")
    target = aws_request.arn_account(target) or target
    members = {a.id for a in backend.accounts}
    if not re.fullmatch(r"\d{12}", target) or target not in members or target == mgmt:
        raise query_error("sts", "ValidationError", f"TargetPrincipal {target or '(none)'} is not a member account of the "
                                             "organization.")
    descriptor = self._get_param("TaskPolicyArn")
    task = descriptor.get("arn") if isinstance(descriptor, dict) else self._get_param("TaskPolicyArn.arn")
    if task not in ROOT_TASK_POLICY_ARNS:
        raise query_error("sts", "ValidationError", f"TaskPolicyArn {task} is not one of the task policies a root session "
                                             f"may be scoped to: {', '.join(ROOT_TASK_POLICY_ARNS)}.")
    duration = self._get_int_param("DurationSeconds", 900)
    if duration < 0 or duration > 900:
        raise query_error("sts", "ValidationError", f"1 validation error detected: Value '{duration}' at 'durationSeconds' "
                                             "failed to satisfy constraint: Member must have value less than or equal to 900")
    with LOCK:
        key = iam_backends[target]["aws"].create_temp_access_key()
        token = "IQoJb3JpZ2lu" + secrets.token_urlsafe(96)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=duration)
        principals.ROOT_SESSIONS[key.access_key_id] = principals.RootSession(target, token, task, expires.timestamp(),
                                                                   key.secret_access_key)
    return ActionResult({"Credentials": {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key,
                                         "SessionToken": token, "Expiration": expires}})


def patch_moto() -> None:
    """IAM: service-linked roles' names."""
    # IAM: AWS names these service-linked roles in PascalCase (AWSServiceRoleForConfig,
    # AWSServiceRoleForAccessAnalyzer); moto keeps the service prefix as it is.
    from moto.iam import models as iam

    iam.SERVICE_NAME_CONVERSION.update({"config": "Config", "access-analyzer": "AccessAnalyzer"})


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
