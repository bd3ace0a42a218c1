"""AWS Organizations: moto's fixes (delegated administrators and trusted access as the services see
them: core.REGISTERED, core.TRUSTED; the role CreateAccount makes) and the service's rules (the SCP
grammar and size, SCPs per target, one Access Analyzer delegated administrator)."""

from __future__ import annotations

import json
from typing import Any

from moto.iam import models as iam_models

from assure_local.aws_request import Req, p
from assure_local.core import (
    ADMINISTRATOR,
    REGISTERED,
    TRUSTED,
    final_at,
    replace,
)
from assure_local.iam import as_list
from assure_local.rules import Refusal


def patch_registrations() -> None:
    """Records when each registration happens (see REGISTERED)."""
    from moto.organizations.models import OrganizationsBackend

    moto_register = OrganizationsBackend.register_delegated_administrator

    def register_delegated_administrator(self, **kwargs: str) -> None:
        moto_register(self, **kwargs)
        REGISTERED[(kwargs["AccountId"], kwargs["ServicePrincipal"])] = final_at()

    replace(OrganizationsBackend, "register_delegated_administrator", register_delegated_administrator)


def patch_trusted_access() -> None:
    """Records when trusted access is enabled (see TRUSTED)."""
    from moto.organizations.models import OrganizationsBackend

    moto_enable = OrganizationsBackend.enable_aws_service_access

    def enable_aws_service_access(self, **kwargs: str) -> None:
        principal = kwargs.get("ServicePrincipal")
        listed = any(s["ServicePrincipal"] == principal for s in self.services)
        moto_enable(self, **kwargs)
        if not listed and principal is not None:
            TRUSTED[(self.account_id, principal)] = final_at()

    replace(OrganizationsBackend, "enable_aws_service_access", enable_aws_service_access)


def patch_moto() -> None:
    """Organizations: the delegated administrators and trusted services AWS takes, and the role CreateAccount makes."""
    from moto.organizations.models import FakeDelegatedAdministrator

    # Organizations: moto accepts delegated administrators for six services; AWS Config (its
    # organization aggregators), CloudTrail, Security Hub, Detective and Inspector take one too
    # (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_integrated-services-list.html,
    # https://docs.aws.amazon.com/config/latest/developerguide/set-up-aggregator-cli.html).
    for principal in ("config.amazonaws.com", "cloudtrail.amazonaws.com", "securityhub.amazonaws.com",
                      "detective.amazonaws.com", "inspector2.amazonaws.com", "iam.amazonaws.com"):
        if principal not in FakeDelegatedAdministrator.SUPPORTED_SERVICES:
            FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(principal)
    # IAM takes trusted access and a delegated administrator for centralized root access (same page,
    # "AWS Identity and Access Management"; https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-enable-root-access.html).
    from moto.organizations.models import FakeServiceAccess

    if "iam.amazonaws.com" not in FakeServiceAccess.TRUSTED_SERVICES:
        FakeServiceAccess.TRUSTED_SERVICES.append("iam.amazonaws.com")
    # Organizations: an account created by CreateAccount gets OrganizationAccountAccessRole, trusting
    # the management account, with full administrator permissions
    # (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_access.html).
    # moto creates none; with IAM enforced, nothing could then act in a new account.
    from moto.organizations import models as orgs

    create_account = orgs.OrganizationsBackend.create_account

    def create_account_with_role(self, **kwargs):
        result = create_account(self, **kwargs)
        account = result["CreateAccountStatus"]["AccountId"]
        role = kwargs.get("RoleName") or "OrganizationAccountAccessRole"
        backend = iam_models.iam_backends[account]["aws"]
        # moto creates the role with its trust policy but no permissions.
        if not any(r.name == role for r in backend.roles.values()):
            trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                     "Principal": {"AWS": f"arn:aws:iam::{self.account_id}:root"}}]}
            backend.create_role(role_name=role, assume_role_policy_document=json.dumps(trust), path="/",
                                permissions_boundary=None, description="", tags=[], max_session_duration=None)
        backend.put_role_policy(role, "AdministratorAccess", json.dumps(ADMINISTRATOR))
        return result

    replace(orgs.OrganizationsBackend, "create_account", create_account_with_role)


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
