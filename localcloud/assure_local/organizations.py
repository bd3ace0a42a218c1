"""Organizations: invitations, which moto lacks, the membership events AWS sends the management
account when an account joins, and what the organization's other accounts may call.

- Handshakes (https://docs.aws.amazon.com/organizations/latest/APIReference/API_Handshake.html):
  InviteAccountToOrganization by the management account; AcceptHandshake and DeclineHandshake by
  the invited account; CancelHandshake by the management account; DescribeHandshake by either
  party; ListHandshakesForAccount and ListHandshakesForOrganization. An accepted invitation puts the
  account under the root with JoinedMethod INVITED. Unlike an account Organizations creates, an
  invited account gets no OrganizationAccountAccessRole
  (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_access.html).
- Membership events, on the management account's default event bus in us-east-1, where
  Organizations sends its CloudTrail events
  (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_security_incident-response.html),
  after CloudTrail's delay (the local cloud's transition):
  - `CreateAccountResult` once CreateAccount ends, `serviceEventDetails.createAccountStatus` with the
    new account's id (API_CreateAccount: "Check the CloudTrail log for the CreateAccountResult event");
  - `AccountJoinedOrganization` for every account that joins, created or invited, with
    `joinedMethod` (`Created` or `Invited`) and `joinedTime` (API_CreateAccount, API_AcceptHandshake:
    "available only in the management account's event history").
  Both are CloudTrail service events: detail-type "AWS Service Event via CloudTrail", eventType
  AwsServiceEvent. AWS documents no field naming the joined account in AccountJoinedOrganization;
  the event here names it nowhere either, so nothing local can come to depend on a guess.
- Member accounts (https://docs.aws.amazon.com/organizations/latest/APIReference/action-reference.html):
  the operations AWS lists as callable "from only the organization's management account" are
  refused to every other account with AccessDeniedException, as AWS answers ("You don't have
  permissions to access this resource."); any member may describe the organization and answer its
  own invitations; every other call acts on the organization, and IAM decides it (authz.py) against
  the organization's effective delegation policy ([`effective_policy`]): the resource-based
  delegation policy the management account put (PutResourcePolicy,
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs-policy-delegate-update.html), and the
  read-only calls every service's delegated administrator may make
  (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_integrate_delegated_admin.html).
"""

from __future__ import annotations

import datetime
import json
import secrets
import string
import time
import uuid
from typing import Any

from assure_local import core, events, scheduler
from assure_local.core import replace
from assure_local.policies import ANY_MEMBER, POLICIES

# Handshake id -> the handshake as the API returns it, with private fields `_mgmt` and `_account`.
HANDSHAKES: dict[str, dict] = {}
# "Handshakes ... are deleted from the history 30 days after they end"; an invitation expires after
# 15 days (API_InviteAccountToOrganization).
EXPIRES_AFTER = datetime.timedelta(days=15)
ORGANIZATIONS_REGION = "us-east-1"


def error(code: str, message: str, reason: str | None = None) -> Exception:
    from moto.core.exceptions import JsonRESTError

    e = JsonRESTError(code, message)
    if reason is not None:
        # HandshakeConstraintViolationException and InvalidInputException carry a Reason.
        e.description = json.dumps(dict(json.loads(e.description), Reason=reason))
    return e


def iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public(handshake: dict) -> dict:
    state = handshake["State"]
    if state == "OPEN" and time.time() > handshake["ExpirationTimestamp"]:
        handshake["State"] = state = "EXPIRED"
    return {k: v for k, v in handshake.items() if not k.startswith("_")}


def find(handshake_id: str) -> dict:
    found = HANDSHAKES.get(handshake_id or "")
    if found is None:
        raise error("HandshakeNotFoundException", "We can't find a handshake with the HandshakeId that you specified.")
    return found


def organization_of(account: str) -> tuple[str, Any] | None:

    return core.organization_of(account)


def denied() -> Exception:
    return error("AccessDeniedException", "You don't have permissions to access this resource.")


def management_backend(caller: str) -> Any:
    """The backend of the organization whose management account is `caller`."""
    from moto.organizations.exceptions import AWSOrganizationsNotInUseException

    org = organization_of(caller)
    if org is None:
        raise AWSOrganizationsNotInUseException
    if org[0] != caller:
        raise denied()
    return org[1]


def invite(caller: str, params: dict) -> dict:
    backend = management_backend(caller)
    target = params.get("Target") or {}
    account = str(target.get("Id", ""))
    if target.get("Type") != "ACCOUNT" or not (len(account) == 12 and account.isdigit()):
        # EMAIL targets need the account's email, which the local cloud does not know.
        raise error("InvalidInputException", "You provided a value that does not match the required pattern.",
                    reason="INVALID_PARTY_TYPE_TARGET")
    if account == backend.account_id or any(a.id == account for a in backend.accounts):
        raise error("DuplicateAccountException", "That account is already present in the specified destination.")
    if any(h["_account"] == account and h["_mgmt"] == backend.account_id and public(h)["State"] == "OPEN"
           for h in HANDSHAKES.values()):
        raise error("DuplicateHandshakeException",
                    "A handshake with the same action and target already exists.")
    now = time.time()
    hid = "h-" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))
    org = backend.org
    resources = [{"Value": org.id, "Type": "ORGANIZATION", "Resources": [
        {"Value": org.master_account_email, "Type": "MASTER_EMAIL"},
        {"Value": org.master_account_id, "Type": "MASTER_NAME"},
        {"Value": org.feature_set, "Type": "ORGANIZATION_FEATURE_SET"}]},
        {"Value": account, "Type": "ACCOUNT"}]
    if params.get("Notes"):
        resources.append({"Value": params["Notes"], "Type": "NOTES"})
    handshake = {
        "Id": hid,
        "Arn": f"arn:aws:organizations::{backend.account_id}:handshake/{org.id}/invite/{hid}",
        "Parties": [{"Id": org.id, "Type": "ORGANIZATION"}, {"Id": account, "Type": "ACCOUNT"}],
        "State": "OPEN",
        "RequestedTimestamp": now,
        "ExpirationTimestamp": now + EXPIRES_AFTER.total_seconds(),
        "Action": "INVITE",
        "Resources": resources,
        "_mgmt": backend.account_id,
        "_account": account,
    }
    HANDSHAKES[hid] = handshake
    return {"Handshake": public(handshake)}


def respond(caller: str, params: dict, verb: str) -> dict:
    """AcceptHandshake, DeclineHandshake (the invited account) or CancelHandshake (its sender)."""

    handshake = find(params.get("HandshakeId", ""))
    party = handshake["_account"] if verb in ("accept", "decline") else handshake["_mgmt"]
    if caller != party:
        raise error("AccessDeniedException", "You don't have permissions to access this resource.")
    if public(handshake)["State"] != "OPEN":
        raise error("InvalidHandshakeTransitionException",
                    f"You can't perform the operation on the handshake in its current state ({handshake['State']}).")
    if verb == "accept":
        if core.organization_of(caller) is not None:
            raise error("HandshakeConstraintViolationException",
                        "The invited account is already a member of an organization.",
                        reason="ALREADY_IN_AN_ORGANIZATION")
        join(handshake["_mgmt"], caller)
    handshake["State"] = {"accept": "ACCEPTED", "decline": "DECLINED", "cancel": "CANCELED"}[verb]
    return {"Handshake": public(handshake)}


def join(mgmt: str, account: str) -> None:
    """`account` joins `mgmt`'s organization by invitation: under the root, the organization's
    default policies attached (FullAWSAccess), JoinedMethod INVITED; no role is made in it."""
    from moto.core.utils import utcnow
    from moto.organizations import utils
    from moto.organizations.models import FakeAccount, organizations_backends

    from assure_local import stacksets

    backend = organizations_backends[mgmt]["aws"]
    org = backend.org
    assert org is not None, f"{mgmt} manages no organization"
    member = FakeAccount.__new__(FakeAccount)
    member.__dict__.update(
        type="ACCOUNT", region=org.region, organization_id=org.id, master_account_id=org.master_account_id,
        create_account_status_id=utils.make_random_create_account_status_id(), id=account,
        name=f"account-{account}", email=f"{account}@example.com", create_time=utcnow(), status="ACTIVE",
        state="ACTIVE", joined_method="INVITED", parent_id=org.root_id, attached_policies=[], tags={})
    backend.accounts.append(member)  # type: ignore[arg-type]  # moto types __new__ as its base class's
    for policy_id in (utils.DEFAULT_SCP_POLICY_ID, utils.DEFAULT_RCP_POLICY_ID):
        backend.attach_policy(PolicyId=policy_id, TargetId=account)
    organizations_backends.master_accounts[account] = (mgmt, "aws")
    stacksets.account_joined(account)
    joined(mgmt, account, "Invited")


def describe(caller: str, params: dict) -> dict:
    handshake = find(params.get("HandshakeId", ""))
    if caller not in (handshake["_mgmt"], handshake["_account"]):
        raise error("AccessDeniedException", "You don't have permissions to access this resource.")
    return {"Handshake": public(handshake)}


def listed(handshakes: list[dict], params: dict) -> dict:
    wanted = (params.get("Filter") or {}).get("ActionType")
    out = [public(h) for h in handshakes if wanted in (None, h["Action"])]
    return {"Handshakes": sorted(out, key=lambda h: h["RequestedTimestamp"])}


def for_account(caller: str, params: dict) -> dict:
    return listed([h for h in HANDSHAKES.values() if h["_account"] == caller], params)


def for_organization(caller: str, params: dict) -> dict:
    org = organization_of(caller)
    if org is None:
        from moto.organizations.exceptions import AWSOrganizationsNotInUseException

        raise AWSOrganizationsNotInUseException
    return listed([h for h in HANDSHAKES.values() if h["_mgmt"] == org[0]], params)


# ---------------------------------------------------------------------------------------------------
# Membership events


def service_event(mgmt: str, name: str, details: dict) -> dict:
    """A CloudTrail service event of Organizations as EventBridge delivers it to the management account."""
    now = time.time()
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS Service Event via CloudTrail",
        "source": "aws.organizations", "account": mgmt, "time": iso(now), "region": ORGANIZATIONS_REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.11", "userIdentity": {"accountId": mgmt, "invokedBy": "AWS Internal"},
            "eventTime": iso(now), "eventSource": "organizations.amazonaws.com", "eventName": name,
            "awsRegion": ORGANIZATIONS_REGION, "sourceIPAddress": "AWS Internal", "userAgent": "AWS Internal",
            "requestParameters": None, "responseElements": None, "eventID": str(uuid.uuid4()),
            "readOnly": False, "eventType": "AwsServiceEvent", "managementEvent": True,
            "recipientAccountId": mgmt, "serviceEventDetails": details, "eventCategory": "Management",
        },
    }


def send(mgmt: str, event: dict) -> None:
    """The event on the management account's default bus, after CloudTrail's delay."""

    scheduler.later(scheduler.delay(), lambda: events.to_bus(mgmt, ORGANIZATIONS_REGION, "default", event,
                                                                  sender=mgmt))


def joined(mgmt: str, account: str, method: str) -> None:
    del account  # AWS documents no field of the event that names it (see the module's note)
    send(mgmt, service_event(mgmt, "AccountJoinedOrganization",
                             {"joinedMethod": method, "joinedTime": iso(time.time())}))


def created(mgmt: str, status: dict) -> None:
    """CreateAccountResult, then AccountJoinedOrganization (joinedMethod Created)."""
    s = status["CreateAccountStatus"]
    stamp = datetime.datetime.fromtimestamp(float(s["CompletedTimestamp"]), datetime.UTC)
    send(mgmt, service_event(mgmt, "CreateAccountResult", {"createAccountStatus": {
        "id": s["Id"], "state": s["State"], "accountName": s["AccountName"], "accountId": s["AccountId"],
        "requestedTimestamp": stamp.strftime("%b %d, %Y %-I:%M:%S %p"),
        "completedTimestamp": stamp.strftime("%b %d, %Y %-I:%M:%S %p")}}))
    joined(mgmt, s["AccountId"], "Created")


# ---------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------
# The organization's other accounts


# "Operations you can call from only the organization's management account" (action-reference.html),
# with the resource-based delegation policy's own writes (API_PutResourcePolicy,
# API_DeleteResourcePolicy: "You can only call this operation from the organization's management
# account") and CloseAccount (API_CloseAccount).
MANAGEMENT_ONLY = frozenset({
    "CancelHandshake", "CreateAccount", "CreateGovCloudAccount", "CreateOrganization", "CreateOrganizationalUnit",
    "DeleteOrganization", "DeleteOrganizationalUnit", "DeregisterDelegatedAdministrator", "DisableAWSServiceAccess",
    "EnableAllFeatures", "EnableAWSServiceAccess", "InviteAccountToOrganization", "MoveAccount",
    "RegisterDelegatedAdministrator", "RemoveAccountFromOrganization", "UpdateOrganizationalUnit",
    "PutResourcePolicy", "DeleteResourcePolicy", "CloseAccount"})


def put_resource_policy(caller: str, params: dict) -> dict:
    backend = management_backend(caller)
    content = params.get("Content")
    try:
        doc = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        doc = None
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if not statements or not all(isinstance(st, dict) and "Principal" in st and "Action" in st
                                 for st in (statements if isinstance(statements, list) else [statements])):
        raise error("MalformedPolicyDocumentException",
                    "The provided policy document doesn't meet the requirements of the specified policy type.")
    rid = POLICIES.get(caller, {}).get("Id") or "rp-" + "".join(
        secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    POLICIES[caller] = {"Id": rid, "Arn": f"arn:aws:organizations::{caller}:resourcepolicy/{backend.org.id}/{rid}",
                        "Content": content}
    return describe_resource_policy(caller, {})


def describe_resource_policy(caller: str, params: dict) -> dict:
    del params
    org = organization_of(caller)
    put = POLICIES.get(org[0]) if org is not None else None
    if put is None:
        raise error("ResourcePolicyNotFoundException",
                    "We can't find a resource policy request with the parameter that you specified.")
    return {"ResourcePolicy": {"ResourcePolicySummary": {"Id": put["Id"], "Arn": put["Arn"]}, "Content": put["Content"]}}


def delete_resource_policy(caller: str, params: dict) -> dict:
    describe_resource_policy(caller, params)
    del POLICIES[management_backend(caller).account_id]
    return {}


def backend_for(caller: str, action: str, own: Any) -> Any:
    """The backend a call of `caller` acts on: its own outside an organization and in the management
    account; for another account of an organization, the organization's, except what AWS keeps to
    the management account (refused) and what any account does for itself (its own)."""
    if own.org is not None:
        return own
    org = organization_of(caller)
    if org is None or action in ANY_MEMBER:
        return own
    if action in MANAGEMENT_ONLY:
        raise denied()
    return org[1]


OPERATIONS = {
    "invite_account_to_organization": invite,
    "accept_handshake": lambda caller, p: respond(caller, p, "accept"),
    "decline_handshake": lambda caller, p: respond(caller, p, "decline"),
    "cancel_handshake": lambda caller, p: respond(caller, p, "cancel"),
    "describe_handshake": describe,
    "list_handshakes_for_account": for_account,
    "list_handshakes_for_organization": for_organization,
    "put_resource_policy": put_resource_policy,
    "describe_resource_policy": describe_resource_policy,
    "delete_resource_policy": delete_resource_policy,
}


def patch() -> None:
    """The operations above on moto's Organizations responses; a member's calls on the organization
    (backend_for); CreateAccount's events."""
    from moto.organizations.models import OrganizationsBackend
    from moto.organizations.responses import OrganizationsResponse

    if getattr(OrganizationsBackend, "_assure_membership", False):
        return
    replace(OrganizationsBackend, "_assure_membership", True)
    for name, handler in OPERATIONS.items():
        def method(self: Any, handler: Any = handler) -> str:
            return json.dumps(handler(self.current_account, self.request_params))

        setattr(OrganizationsResponse, name, method)
    from moto.organizations.models import organizations_backends

    def organizations_backend(self: Any) -> Any:
        own = organizations_backends[self.current_account][self.partition]
        return backend_for(self.current_account, self._get_action(), own)

    replace(OrganizationsResponse, "organizations_backend", property(organizations_backend))
    create = OrganizationsBackend.create_account

    def create_account(self: Any, **kwargs: Any) -> Any:
        out = create(self, **kwargs)
        created(self.account_id, out)
        return out

    replace(OrganizationsBackend, "create_account", create_account)
