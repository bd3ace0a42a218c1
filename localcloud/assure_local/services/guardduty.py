"""Amazon GuardDuty: the operations moto lacks (organization membership and configuration, publishing destinations), answered in REST-JSON."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, ClassVar

from moto.guardduty.models import guardduty_backends

from assure_local import rules
from assure_local.aws_request import Req
from assure_local.core import (
    ApiError,
    Call,
    final_at,
    now,
    organization_of,
    page,
    transitional,
)
from assure_local.rules import Refusal

GUARDDUTY = "guardduty.amazonaws.com"


class GuardDuty:
    def __init__(self) -> None:
        # (admin account, region) -> member account -> member record
        self.members: dict[tuple[str, str], dict[str, dict]] = {}
        # (member account, region) -> {"accountId", "invitationId", "relationshipStatus", "invitedAt"}
        self.administrator: dict[tuple[str, str], dict] = {}
        # (member account, region) -> pending invitation from an administrator
        self.invitations: dict[tuple[str, str], dict] = {}
        # management account -> delegated administrator account (one per organization, as on AWS)
        # The delegated administrator per organization and region: GuardDuty is regional, and the
        # management account designates one in each region (GuardDuty User Guide, "Managing accounts
        # with AWS Organizations").
        self.org_admin: dict[tuple[str, str], str] = {}
        # When each Region's designation reaches GuardDuty (see enable_organization_admin_account).
        self.org_admin_final: dict[tuple[str, str], float] = {}
        # (admin account, region) -> organization configuration
        self.org_config: dict[tuple[str, str], dict] = {}
        # (account, region, detector) -> destination id -> destination
        self.destinations: dict[tuple[str, str, str], dict[str, dict]] = {}

    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("POST", r"/detector/(?P<d>[^/]+)/member", "create_members"),
        ("POST", r"/detector/(?P<d>[^/]+)/member/get", "get_members"),
        ("GET", r"/detector/(?P<d>[^/]+)/member", "list_members"),
        ("POST", r"/detector/(?P<d>[^/]+)/member/delete", "delete_members"),
        ("POST", r"/detector/(?P<d>[^/]+)/member/disassociate", "disassociate_members"),
        ("POST", r"/detector/(?P<d>[^/]+)/member/invite", "invite_members"),
        ("GET", r"/invitation", "list_invitations"),
        ("POST", r"/detector/(?P<d>[^/]+)/administrator", "accept_administrator_invitation"),
        ("GET", r"/detector/(?P<d>[^/]+)/administrator", "get_administrator_account"),
        ("POST", r"/detector/(?P<d>[^/]+)/administrator/disassociate", "disassociate_from_administrator"),
        ("POST", r"/admin/enable", "enable_organization_admin_account"),
        ("POST", r"/admin/disable", "disable_organization_admin_account"),
        ("GET", r"/admin", "list_organization_admin_accounts"),
        ("POST", r"/detector/(?P<d>[^/]+)/admin", "update_organization_configuration"),
        ("GET", r"/detector/(?P<d>[^/]+)/admin", "describe_organization_configuration"),
        ("GET", r"/detector/(?P<d>[^/]+)/filter", "list_filters"),
        ("POST", r"/detector/(?P<d>[^/]+)/publishingDestination", "create_publishing_destination"),
        ("GET", r"/detector/(?P<d>[^/]+)/publishingDestination", "list_publishing_destinations"),
        ("GET", r"/detector/(?P<d>[^/]+)/publishingDestination/(?P<p>[^/]+)", "describe_publishing_destination"),
        ("DELETE", r"/detector/(?P<d>[^/]+)/publishingDestination/(?P<p>[^/]+)", "delete_publishing_destination"),
    ]

    @staticmethod
    def bad_request(message: str) -> ApiError:
        return ApiError(400, "BadRequestException", message, type="InvalidInputException")

    def detector(self, call: Call, detector_id: str):
        backend = guardduty_backends[call.account][call.region]
        detector = backend.detectors.get(detector_id)
        if detector is None:
            raise self.bad_request(
                "The request is rejected because the input detectorId is not owned by the current account."
            )
        return detector

    @staticmethod
    def detector_id_of(account: str, region: str) -> str | None:
        detectors = list(guardduty_backends[account][region].detectors)
        return detectors[0] if detectors else None

    def _member_view(self, admin: str, region: str, record: dict) -> dict:
        out = {k: v for k, v in record.items() if not k.startswith("_")}
        if transitional(record.get("_final")):
            # GuardDuty enables itself in the member asynchronously: the member is Created until
            # then (Member.relationshipStatus, https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Member.html).
            out["relationshipStatus"] = "Created"
        out["administratorId"] = admin
        out["masterId"] = admin
        out["detectorId"] = self.detector_id_of(record["accountId"], region) or ""
        return out

    def create_members(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        org_admin = organization_of(call.account)
        is_org_admin = org_admin is not None and self.org_admin.get((org_admin[0], call.region)) == call.account
        members = self.members.setdefault((call.account, call.region), {})
        unprocessed = []
        for detail in call.body.get("accountDetails") or []:
            member = detail.get("accountId", "")
            if not re.fullmatch(r"\d{12}", member) or member == call.account:
                unprocessed.append({"accountId": member, "result": "The account ID is not valid."})
                continue
            current = self.administrator.get((member, call.region))
            if current and current["accountId"] != call.account and current["relationshipStatus"] == "Enabled":
                unprocessed.append(
                    {"accountId": member, "result": "The account is already associated with another administrator account."}
                )
                continue
            member_org = organization_of(member)
            same_org = org_admin is not None and member_org is not None and member_org[0] == org_admin[0]
            status = "Enabled" if (is_org_admin and same_org) else "Created"
            record = members.get(member) or {"accountId": member, "email": detail.get("email", ""), "invitedAt": now()}
            was_enabled = record.get("relationshipStatus") == "Enabled" and not transitional(record.get("_final"))
            record.update({"relationshipStatus": status, "updatedAt": now()})
            if status == "Enabled" and not was_enabled:
                record["_final"] = final_at()
            members[member] = record
            if status == "Enabled":
                # As the delegated administrator, CreateMembers enables GuardDuty in the added
                # members (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_CreateMembers.html).
                self._enable_guardduty(member, call.region)
                self.administrator[(member, call.region)] = {
                    "accountId": call.account,
                    "invitationId": uuid.uuid4().hex,
                    "relationshipStatus": "Enabled",
                    "invitedAt": record["invitedAt"],
                }
        return {"unprocessedAccounts": unprocessed}

    def _select(self, call: Call) -> tuple[dict, list[str], list[dict]]:
        members = self.members.setdefault((call.account, call.region), {})
        ids = call.body.get("accountIds") or []
        unprocessed = [
            {"accountId": a, "result": "The request is rejected because the given account ID is not a member of the current account."}
            for a in ids
            if a not in members
        ]
        return members, [a for a in ids if a in members], unprocessed

    def get_members(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        members, found, unprocessed = self._select(call)
        return {
            "members": [self._member_view(call.account, call.region, members[a]) for a in found],
            "unprocessedAccounts": unprocessed,
        }

    def list_members(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        views = [self._member_view(call.account, call.region, r)
                 for r in self.members.get((call.account, call.region), {}).values()]
        if (call.q("onlyAssociated") or "true").lower() == "true":
            views = [v for v in views if v["relationshipStatus"] == "Enabled"]
        return page(views, call, "members")

    def _release(self, admin: str, region: str, member: str) -> None:
        current = self.administrator.get((member, region))
        if current and current["accountId"] == admin:
            del self.administrator[(member, region)]

    def delete_members(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        members, found, unprocessed = self._select(call)
        for a in found:
            del members[a]
            self._release(call.account, call.region, a)
        return {"unprocessedAccounts": unprocessed}

    def disassociate_members(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        members, found, unprocessed = self._select(call)
        # "With autoEnableOrganizationMembers configuration for your organization set to ALL, you'll
        # receive an error if you attempt to disassociate a member account before removing them from
        # your organization." https://docs.aws.amazon.com/guardduty/latest/APIReference/API_DisassociateMembers.html
        # (the page names no message; this one is ours).
        config = self.org_config.get((call.account, call.region), {})
        if config.get("autoEnableOrganizationMembers") == "ALL":
            org = organization_of(call.account)
            managed = [a for a in found if members[a].get("relationshipStatus") == "Enabled" and org is not None
                       and (organization_of(a) or ("",))[0] == org[0]]
            if managed:
                raise self.bad_request(
                    f"The request is rejected because autoEnableOrganizationMembers is ALL: account {managed[0]} "
                    "must be removed from the organization before it can be disassociated.")
        for a in found:
            members[a].update({"relationshipStatus": "Removed", "updatedAt": now()})
            self._release(call.account, call.region, a)
        return {"unprocessedAccounts": unprocessed}

    def invite_members(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        members, found, unprocessed = self._select(call)
        for a in found:
            invitation = {"accountId": call.account, "invitationId": uuid.uuid4().hex, "invitedAt": now()}
            self.invitations[(a, call.region)] = invitation
            members[a].update({"relationshipStatus": "Invited", "invitedAt": invitation["invitedAt"], "updatedAt": now()})
        return {"unprocessedAccounts": unprocessed}

    def list_invitations(self, call: Call) -> dict:
        invitation = self.invitations.get((call.account, call.region))
        items = [dict(invitation, relationshipStatus="Invited")] if invitation else []
        return page(items, call, "invitations")

    def accept_administrator_invitation(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        admin = call.body.get("administratorId")
        invitation = self.invitations.get((call.account, call.region))
        if not invitation or invitation["accountId"] != admin or invitation["invitationId"] != call.body.get("invitationId"):
            raise self.bad_request("The request is rejected because the invitation is not valid.")
        del self.invitations[(call.account, call.region)]
        self.administrator[(call.account, call.region)] = {
            "accountId": admin,
            "invitationId": invitation["invitationId"],
            "relationshipStatus": "Enabled",
            "invitedAt": invitation["invitedAt"],
        }
        record = self.members.get((admin, call.region), {}).get(call.account)
        if record:
            record.update({"relationshipStatus": "Enabled", "updatedAt": now()})
        return {}

    def get_administrator_account(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        current = self.administrator.get((call.account, call.region))
        return {"administrator": dict(current), "master": dict(current)} if current else {}

    def disassociate_from_administrator(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        current = self.administrator.pop((call.account, call.region), None)
        if current:
            record = self.members.get((current["accountId"], call.region), {}).get(call.account)
            if record:
                record.update({"relationshipStatus": "Removed", "updatedAt": now()})
        return {}

    def _management(self, call: Call) -> str:
        org = organization_of(call.account)
        if org is None or org[0] != call.account:
            raise self.bad_request(
                "The request failed because you do not have required permissions to make this request: "
                "only the organization's management account can manage the delegated administrator."
            )
        return org[0]

    def enable_organization_admin_account(self, call: Call) -> dict:
        mgmt = self._management(call)
        admin = call.body.get("adminAccountId", "")
        admin_org = organization_of(admin)
        if admin_org is None or admin_org[0] != mgmt:
            raise self.bad_request("The request is rejected because the account is not a member of the organization.")
        if self.org_admin.get((mgmt, call.region)) not in (None, admin):
            raise self.bad_request(
                "The request is rejected because an administrator account is already enabled for the organization."
            )
        if self.org_admin.get((mgmt, call.region)) != admin:
            # GuardDuty learns of its new administrator through Organizations, a moment later: until
            # then the administrator's organization calls are refused as from any member
            # ("Designating a delegated GuardDuty administrator ... can take a few minutes";
            # https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_organizations.html).
            self.org_admin_final[(mgmt, call.region)] = final_at()
        self.org_admin[(mgmt, call.region)] = admin
        # Designating the delegated administrator also enables GuardDuty for that account in the
        # Region (https://docs.aws.amazon.com/guardduty/latest/ug/organizations_permissions.html).
        self._enable_guardduty(admin, call.region)
        # It "enables GuardDuty as a trusted service in AWS Organizations" and registers the account
        # as the service's delegated administrator there (the same page: the management account needs
        # organizations:EnableAWSServiceAccess and organizations:RegisterDelegatedAdministrator), so
        # Organizations' ListDelegatedAdministrators names it for guardduty.amazonaws.com.
        org = core_org(mgmt)
        org.enable_aws_service_access(ServicePrincipal=GUARDDUTY)
        if admin != mgmt and not any(a.account.id == admin and GUARDDUTY in a.services for a in org.admins):
            org.register_delegated_administrator(AccountId=admin, ServicePrincipal=GUARDDUTY)
        return {}

    @staticmethod
    def _enable_guardduty(account: str, region: str) -> None:
        """GuardDuty turned on for `account` by the service itself: a detector with the defaults the
        console and CreateDetector give (six-hour findings updates), or its suspended one resumed."""
        backend = guardduty_backends[account][region]
        if backend.detectors:
            for detector in backend.detectors.values():
                detector.enabled = True
            return
        backend.create_detector(True, "SIX_HOURS", {}, {}, [])

    def disable_organization_admin_account(self, call: Call) -> dict:
        mgmt = self._management(call)
        if self.org_admin.get((mgmt, call.region)) != call.body.get("adminAccountId"):
            raise self.bad_request("The request is rejected because the account is not the administrator account.")
        admin = self.org_admin.pop((mgmt, call.region))
        # Administrator in no Region any more: no longer the service's delegated administrator.
        if admin not in [a for (m, _), a in self.org_admin.items() if m == mgmt]:
            org = core_org(mgmt)
            if any(a.account.id == admin and GUARDDUTY in a.services for a in org.admins):
                org.deregister_delegated_administrator(AccountId=admin, ServicePrincipal=GUARDDUTY)
        return {}

    def list_organization_admin_accounts(self, call: Call) -> dict:
        mgmt = self._management(call)
        admin = self.org_admin.get((mgmt, call.region))
        admins = [{"adminAccountId": admin, "adminStatus": "ENABLED"}] if admin else []
        return page(admins, call, "adminAccounts")

    def _org_admin_of(self, call: Call) -> None:
        org = organization_of(call.account)
        if (org is None or self.org_admin.get((org[0], call.region)) != call.account
                or transitional(self.org_admin_final.get((org[0], call.region)))):
            raise self.bad_request(
                "The request is rejected because the current account is not the GuardDuty delegated administrator."
            )

    def update_organization_configuration(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        self._org_admin_of(call)
        config = self.org_config.setdefault((call.account, call.region), {"autoEnable": False, "autoEnableOrganizationMembers": "NONE"})
        if "autoEnableOrganizationMembers" in call.body:
            value = call.body["autoEnableOrganizationMembers"]
            if value not in ("NEW", "ALL", "NONE"):
                raise self.bad_request("The request is rejected because autoEnableOrganizationMembers is not valid.")
            config["autoEnableOrganizationMembers"] = value
            config["autoEnable"] = value != "NONE"
        elif "autoEnable" in call.body:
            config["autoEnable"] = bool(call.body["autoEnable"])
            config["autoEnableOrganizationMembers"] = "NEW" if config["autoEnable"] else "NONE"
        for key in ("dataSources", "features"):
            if key in call.body:
                config[key] = call.body[key]
        return {}

    def describe_organization_configuration(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        self._org_admin_of(call)
        config = self.org_config.get((call.account, call.region), {"autoEnable": False, "autoEnableOrganizationMembers": "NONE"})
        return dict(config, memberAccountLimitReached=False)

    def list_filters(self, call: Call, d: str) -> dict:
        detector = self.detector(call, d)
        return page(sorted(detector.filters), call, "filterNames")

    def create_publishing_destination(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        if call.body.get("destinationType") != "S3":
            raise self.bad_request("The request is rejected because destinationType is not valid.")
        props = call.body.get("destinationProperties") or {}
        if not props.get("destinationArn", "").startswith("arn:aws:s3:::") or not props.get("kmsKeyArn"):
            raise self.bad_request("The request is rejected because destinationProperties is not valid.")
        destinations = self.destinations.setdefault((call.account, call.region, d), {})
        if destinations:
            raise self.bad_request("The request is rejected because a publishing destination already exists for this detector.")
        destination_id = uuid.uuid4().hex
        destinations[destination_id] = {
            "destinationId": destination_id,
            "destinationType": "S3",
            "destinationProperties": {"destinationArn": props["destinationArn"], "kmsKeyArn": props["kmsKeyArn"]},
            # GuardDuty verifies a new destination before it publishes to it: PENDING_VERIFICATION until
            # then (the transition, above).
            "_final": final_at(),
        }
        return {"destinationId": destination_id}

    def _with_status(self, call: Call, d: str, destination: dict) -> dict:
        """A destination as DescribePublishingDestination shows it
        (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_DescribePublishingDestination.html,
        statuses: https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Destination.html).
        PENDING_VERIFICATION for the transition after CreatePublishingDestination (nothing is exported
        yet); then what GuardDuty finds when it publishes: UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY
        while the bucket or key policy does not let this region's GuardDuty principal write
        (rules.guardduty_export_refusal), PUBLISHING otherwise. Neither page names a call GuardDuty
        refuses while a destination is PENDING_VERIFICATION, so none is refused here."""
        visible = {k: v for k, v in destination.items() if not k.startswith("_")}
        if transitional(destination.get("_final")):
            return dict(visible, status="PENDING_VERIFICATION", publishingFailureStartTimestamp=0)
        props = destination["destinationProperties"]
        refusal = rules.guardduty_export_refusal(call.account, call.region, d, props["destinationArn"], props["kmsKeyArn"])
        out = dict(visible, status="PUBLISHING", publishingFailureStartTimestamp=0)
        if refusal:
            out.update(status="UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY",
                       publishingFailureStartTimestamp=int(time.time()), statusReason=refusal)
        return out

    def list_publishing_destinations(self, call: Call, d: str) -> dict:
        self.detector(call, d)
        items = [
            {k: v[k] for k in ("destinationId", "destinationType", "status")}
            for v in (self._with_status(call, d, x) for x in self.destinations.get((call.account, call.region, d), {}).values())
        ]
        return page(items, call, "destinations")

    def _destination(self, call: Call, d: str, p: str) -> dict:
        self.detector(call, d)
        destination = self.destinations.get((call.account, call.region, d), {}).get(p)
        if destination is None:
            raise self.bad_request("The request is rejected since no such resource found.")
        return destination

    def describe_publishing_destination(self, call: Call, d: str, p: str) -> dict:
        out = self._with_status(call, d, self._destination(call, d, p))
        out.pop("statusReason", None)
        return out

    def delete_publishing_destination(self, call: Call, d: str, p: str) -> dict:
        self._destination(call, d, p)
        del self.destinations[(call.account, call.region, d)][p]
        return {}


def guardduty_one_detector(req: Req, account: str, raw: bytes) -> Refusal | None:
    """"You can have only one detector per account per Region"
    (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_CreateDetector.html): a second
    CreateDetector is a BadRequestException; moto would make a second detector."""
    if req.service != "guardduty" or req.operation != "CreateDetector":
        return None
    from moto.guardduty.models import guardduty_backends

    if guardduty_backends[account][req.region].detectors:
        return Refusal(400, "BadRequestException",
                       "The request is rejected because a detector already exists for the current account.")
    return None


def core_org(mgmt: str) -> Any:
    """moto's organization backend of the organization `mgmt` manages (it is in one)."""
    found = organization_of(mgmt)
    assert found is not None, f"{mgmt} is in no organization"
    return found[1]
