"""AWS Organizations: when a delegated administrator's registration and trusted access reach the services they name (core.REGISTERED, core.TRUSTED)."""

from __future__ import annotations

import json

from moto.iam import models as iam

from assure_local.core import (
    ADMINISTRATOR,
    REGISTERED,
    TRUSTED,
    final_at,
)


def patch_registrations() -> None:
    """Records when each registration happens (see REGISTERED)."""
    from moto.organizations.models import OrganizationsBackend

    moto_register = OrganizationsBackend.register_delegated_administrator

    def register_delegated_administrator(self, **kwargs: str) -> None:  # type: ignore[no-untyped-def]
        moto_register(self, **kwargs)
        REGISTERED[(kwargs["AccountId"], kwargs["ServicePrincipal"])] = final_at()

    OrganizationsBackend.register_delegated_administrator = register_delegated_administrator


def patch_trusted_access() -> None:
    """Records when trusted access is enabled (see TRUSTED)."""
    from moto.organizations.models import OrganizationsBackend

    moto_enable = OrganizationsBackend.enable_aws_service_access

    def enable_aws_service_access(self, **kwargs: str) -> None:  # type: ignore[no-untyped-def]
        principal = kwargs.get("ServicePrincipal")
        listed = any(s["ServicePrincipal"] == principal for s in self.services)
        moto_enable(self, **kwargs)
        if not listed:
            TRUSTED[(self.account_id, principal)] = final_at()

    OrganizationsBackend.enable_aws_service_access = enable_aws_service_access


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

    def create_account_with_role(self, **kwargs):  # type: ignore[no-untyped-def]
        result = create_account(self, **kwargs)
        account = result["CreateAccountStatus"]["AccountId"]
        role = kwargs.get("RoleName") or "OrganizationAccountAccessRole"
        backend = iam.iam_backends[account]["aws"]
        # moto creates the role with its trust policy but no permissions.
        if not any(r.name == role for r in backend.roles.values()):
            trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                     "Principal": {"AWS": f"arn:aws:iam::{self.account_id}:root"}}]}
            backend.create_role(role_name=role, assume_role_policy_document=json.dumps(trust), path="/",
                                permissions_boundary=None, description="", tags=[], max_session_duration=None)
        backend.put_role_policy(role, "AdministratorAccess", json.dumps(ADMINISTRATOR))
        return result

    orgs.OrganizationsBackend.create_account = create_account_with_role
