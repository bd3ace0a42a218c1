"""AWS Account Management: the Regions an account has enabled (moto has no Account service)."""

from __future__ import annotations

from typing import Any, ClassVar

from assure_local import rules
from assure_local.core import (
    ApiError,
    Call,
    organization_of,
    trusted_access,
)


class Accounts:
    def __init__(self) -> None:
        # account -> Region -> status, for opt-in Regions whose status changed
        self.status: dict[str, dict[str, str]] = {}

    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("POST", r"/listRegions", "list_regions"),
        ("POST", r"/getRegionOptStatus", "get_region_opt_status"),
        ("POST", r"/enableRegion", "enable_region"),
        ("POST", r"/disableRegion", "disable_region"),
    ]

    _known: ClassVar[list[str]] = []

    @classmethod
    def known(cls) -> list[str]:
        """The commercial partition's Regions, as botocore's endpoint data lists them."""
        if not cls._known:
            import botocore.session

            listed = botocore.session.get_session().get_available_regions("ec2")
            cls._known = sorted(set(listed) | rules.OPT_IN_REGIONS)
        return cls._known

    def region_status(self, account: str, region: str) -> str:
        """An opt-in Region is DISABLED in every account until the account (or its organization's
        management account) enables it, as on AWS
        (https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html)."""
        if region not in rules.OPT_IN_REGIONS:
            return "ENABLED_BY_DEFAULT"
        return self.status.get(account, {}).get(region, "DISABLED")

    def enabled(self, account: str, region: str) -> bool:
        return self.region_status(account, region) in ("ENABLED", "ENABLED_BY_DEFAULT")

    def _account(self, call: Call) -> str:
        """The account asked about: the caller's own, or with AccountId a member of the caller's
        organization when the caller is its management account (and never the management account
        itself by AccountId), as the API reference says of every Region operation."""
        target = call.body.get("AccountId")
        if target is None:
            return call.account
        org = organization_of(call.account)
        if org is None or org[0] != call.account:
            raise ApiError(403, "AccessDeniedException", "Only the management account of an organization can specify AccountId.")
        if target == call.account:
            raise ApiError(400, "ValidationException", "The management account can't specify its own AccountId.")
        if not any(a.id == target for a in org[1].accounts):
            raise ApiError(403, "AccessDeniedException", f"Account {target} is not a member of your organization.")
        if not trusted_access(call.account, "account.amazonaws.com"):
            raise ApiError(403, "AccessDeniedException", "Trusted access for account.amazonaws.com is not enabled in the organization.")
        return target

    def _region(self, call: Call) -> str:
        region = call.body.get("RegionName") or ""
        if region not in self.known():
            raise ApiError(400, "ValidationException", f"{region} is not a valid Region name.")
        return region

    def list_regions(self, call: Call) -> dict:
        account = self._account(call)
        wanted = call.body.get("RegionOptStatusContains")
        regions = [{"RegionName": r, "RegionOptStatus": self.region_status(account, r)} for r in self.known()]
        if wanted:
            regions = [r for r in regions if r["RegionOptStatus"] in wanted]
        start = int(call.body.get("NextToken") or 0)
        size = int(call.body.get("MaxResults") or 50)
        out: dict[str, Any] = {"Regions": regions[start : start + size]}
        if start + size < len(regions):
            out["NextToken"] = str(start + size)
        return out

    def get_region_opt_status(self, call: Call) -> dict:
        account, region = self._account(call), self._region(call)
        return {"RegionName": region, "RegionOptStatus": self.region_status(account, region)}

    def _set(self, call: Call, status: str) -> dict:
        account, region = self._account(call), self._region(call)
        if region not in rules.OPT_IN_REGIONS:
            raise ApiError(400, "ValidationException", f"{region} is enabled by default and cannot be changed.")
        self.status.setdefault(account, {})[region] = status
        return {}

    def enable_region(self, call: Call) -> dict:
        return self._set(call, "ENABLED")

    def disable_region(self, call: Call) -> dict:
        return self._set(call, "DISABLED")
