"""AWS Organizations: when a delegated administrator's registration and trusted access reach the services they name (core.REGISTERED, core.TRUSTED)."""

from __future__ import annotations

from assure_local.core import (
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
