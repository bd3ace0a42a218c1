"""Service-managed StackSets, as the local cloud runs them: the way the member role reaches every
account of the organization on AWS
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-manage-auto-deployment.html).

- Only the management account (or a delegated administrator, CallAs=DELEGATED_ADMIN) operates a
  SERVICE_MANAGED stack set, and only once trusted access for StackSets is enabled
  (member.org.stacksets.cloudformation.amazonaws.com): otherwise ValidationError, with AWS's words.
- CreateStackInstances on organizational units deploys to every account under them, never to the
  management account (StackSets does not deploy there), in each Region asked. Each instance is a
  stack `StackSet-NAME-UUID` in its account, made by the stacks engine (stacks.py) as the StackSets
  execution role, `stacksets-exec-…`, which StackSets' service-linked role makes in the account,
  trusted by the management account's StackSets service-linked role. Service control policies do
  not bind the service-linked role; they bind the execution role (assure's SCPs exempt it by name).
- Operations run in the background: DescribeStackSetOperation reports RUNNING, then SUCCEEDED or
  FAILED; ListStackInstances reports each instance's status and reason.
- AutoDeployment: an account that joins a target OU later (MoveAccount, CreateAccount, an invitation
  accepted into the root) gets its instance, after StackSets' delay (`DELAY_SECONDS`), as on AWS where
  it takes minutes. Until then the account has no member role.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from assure_local import core, stack_model, stack_store, stacks
from assure_local.core import replace
from assure_local.stack_model import Caller, StackError, iso, now
from assure_local.stacks import members

SERVICE = "member.org.stacksets.cloudformation.amazonaws.com"
ADMIN_ROLE = ("role/aws-service-role/stacksets.cloudformation.amazonaws.com/"
              "AWSServiceRoleForCloudFormationStackSetsOrgAdmin")
# How long StackSets takes to deploy to an account that joined a target OU. On AWS: minutes.
DELAY_SECONDS = {"seconds": float(os.environ.get("ASSURE_STACKSETS_DELAY_SECONDS", "2"))}

OPERATIONS = ("CreateStackSet", "DescribeStackSet", "ListStackSets", "UpdateStackSet", "DeleteStackSet",
              "CreateStackInstances", "DeleteStackInstances", "ListStackInstances", "DescribeStackInstance",
              "DescribeStackSetOperation", "ListStackSetOperations")


@dataclass
class Instance:
    account: str
    region: str
    ou: str
    status: str = "OUTDATED"
    detailed: str = "PENDING"
    reason: str | None = None
    stack_id: str | None = None


@dataclass
class StackSet:
    name: str
    owner: str
    region: str
    body: str
    parameters: dict[str, str]
    capabilities: list[str]
    auto_deployment: bool
    retain_on_removal: bool
    description: str | None
    set_id: str = field(default_factory=lambda: "")
    status: str = "ACTIVE"
    targets: set[str] = field(default_factory=set)  # OU or root IDs
    regions: list[str] = field(default_factory=list)
    instances: dict[tuple[str, str], Instance] = field(default_factory=dict)
    operations: dict[str, dict] = field(default_factory=dict)


SETS: dict[tuple[str, str], dict[str, StackSet]] = {}


def organization(account: str) -> Any:

    found = core.organization_of(account)
    return None if found is None else found[1]


def operating_account(account: str, form: dict[str, str]) -> str:
    """The organization's management account, whose stack sets these are; refused as StackSets
    refuses a caller that may not operate service-managed stack sets."""

    org = organization(account)
    if org is None or org.org is None:
        raise StackError("ValidationError", "You must be the master or delegated admin account of an organization "
                                            "before operating a SERVICE_MANAGED stack set")
    management = org.org.master_account_id
    if account != management and not (form.get("CallAs") == "DELEGATED_ADMIN"
                                       and core.delegated_admin(account, SERVICE)):
        raise StackError("ValidationError", "You must be the master or delegated admin account of an organization "
                                            "before operating a SERVICE_MANAGED stack set")
    if not core.trusted_access(management, SERVICE):
        raise StackError("ValidationError", "You must enable organizations access to operate a service managed stack set")
    return management


def find(account: str, region: str, name: str) -> StackSet:
    found = SETS.get((account, region), {}).get(name.split(":")[0])
    if found is None or found.status == "DELETED":
        raise StackError("StackSetNotFoundException", f"StackSet {name} not found", 404)
    return found


def accounts_under(org: Any, target: str) -> list[tuple[str, str]]:
    """(account, its parent) of every account under the OU or root `target`, however deep."""
    out: list[tuple[str, str]] = []
    pending = [target]
    while pending:
        parent = pending.pop()
        for account in org.accounts:
            if account.parent_id == parent and account.status == "ACTIVE":
                out.append((account.id, parent))
        pending.extend(ou.id for ou in org.ou if getattr(ou, "parent_id", None) == parent)
    return out


def execution_role(account: str, management: str) -> Caller:
    """A session of the StackSets execution role in `account`, made as StackSets' service-linked
    role makes it (once): trusted only by the management account's StackSets role, allowed what the
    stack's resources need. SCPs do not bind the service-linked role that makes it."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    name = "stacksets-exec-" + hashlib.md5(management.encode()).hexdigest()
    iam = iam_backends[account]["aws"]
    if name not in iam.roles and not any(r.name == name for r in iam.roles.values()):
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{management}:{ADMIN_ROLE}"},
            "Action": "sts:AssumeRole"}]}
        role = iam.create_role(role_name=name, assume_role_policy_document=json.dumps(trust), path="/",
                               permissions_boundary=None, description="StackSets execution role",
                               tags=[], max_session_duration="3600", linked_service=None)
        iam.put_role_policy(name, "AdministratorAccess", json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        # Made long ago as far as IAM's propagation goes: StackSets made it when trusted access began.
        role.create_date = role.create_date.replace(year=role.create_date.year - 1)
    session = sts_backends[account]["aws"].assume_role(
        region_name="us-east-1", role_session_name="StackSets", role_arn=f"arn:aws:iam::{account}:role/{name}",
        policy=None, duration=3600, external_id=None)  # type: ignore[arg-type]  # moto's annotation says str; it takes None
    return Caller(session.access_key_id, session.secret_access_key, session.session_token)


def deploy(stack_set: StackSet, instance: Instance, management: str) -> None:
    """Creates or updates the instance's stack in its account, and records how it went."""

    instance.detailed, instance.reason = "RUNNING", None
    with core.LOCK:
        caller = execution_role(instance.account, management)
    form: dict[str, str] = {"TemplateBody": stack_set.body}
    for i, (k, v) in enumerate(stack_set.parameters.items(), 1):
        form[f"Parameters.member.{i}.ParameterKey"], form[f"Parameters.member.{i}.ParameterValue"] = k, v
    for i, c in enumerate(stack_set.capabilities, 1):
        form[f"Capabilities.member.{i}"] = c
    try:
        existing = stack_store.live(instance.account, instance.region, instance.stack_id or "-")
        if existing is None:
            form["StackName"] = f"StackSet-{stack_set.name}-{uuid.uuid4()}"
            made = stacks.create_stack(instance.account, instance.region, form, caller)
            instance.stack_id = made["StackId"]
        else:
            form["StackName"] = existing.stack_id
            try:
                stacks.update_stack(instance.account, instance.region, form, caller)
            except StackError as e:
                if "No updates are to be performed" not in e.message:
                    raise
        stack = stacks.wait(instance.stack_id, 600) if instance.stack_id else None
    except StackError as e:
        instance.status, instance.detailed, instance.reason = "OUTDATED", "FAILED", e.message
        return
    if stack is not None and stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        instance.status, instance.detailed = "CURRENT", "SUCCEEDED"
    else:
        reason = next((e.reason for e in stack.events if e.status.endswith("_FAILED") and e.reason), None) if stack else None
        instance.status, instance.detailed = "OUTDATED", "FAILED"
        instance.reason = f"ResourceLogicalId:{reason}" if reason else (stack.status if stack else "no stack")


def remove(instance: Instance, management: str, retain: bool) -> None:

    if retain or not instance.stack_id:
        return
    stack = stack_store.live(instance.account, instance.region, instance.stack_id)
    if stack is None:
        return
    with core.LOCK:
        caller = execution_role(instance.account, management)
    stacks.delete_stack(instance.account, instance.region, {"StackName": stack.stack_id}, caller)
    stacks.wait(stack.stack_id, 600)


def operation(stack_set: StackSet, action: str, work: list[Instance], management: str,
              delete: bool = False, retain: bool = False, delay: float = 0) -> str:
    op_id = str(uuid.uuid4())
    record = {"OperationId": op_id, "StackSetId": stack_set.set_id, "Action": action, "Status": "RUNNING",
              "CreationTimestamp": iso(now())}
    stack_set.operations[op_id] = record

    def run() -> None:
        if delay:
            time.sleep(delay)
        for instance in work:
            if delete:
                remove(instance, management, retain)
                stack_set.instances.pop((instance.account, instance.region), None)
            else:
                deploy(stack_set, instance, management)
        failed = [i for i in work if i.detailed == "FAILED"]
        record["Status"] = "FAILED" if failed else "SUCCEEDED"
        record["EndTimestamp"] = iso(now())
        if failed:
            record["StatusReason"] = "; ".join(f"{i.account} {i.region}: {i.reason}" for i in failed)

    threading.Thread(target=run, daemon=True, name="stacksets").start()
    return op_id


def answer_cloudformation(op: str, account: str, region: str, form: dict[str, str], caller: Caller) -> dict | None:
    """A CloudFormation operation: StackSets' here, a stack's by stacks.answer (None: moto's)."""
    if op in OPERATIONS:
        return answer(op, account, region, form, caller)
    return stacks.answer(op, account, region, form, caller)


def answer(op: str, account: str, region: str, form: dict[str, str], caller: Caller) -> dict:
    management = operating_account(account, form)
    sets = SETS.setdefault((management, region), {})
    if op == "CreateStackSet":
        name = form.get("StackSetName", "")
        if name in sets and sets[name].status != "DELETED":
            raise StackError("NameAlreadyExistsException", f"StackSet {name} already exists")
        if form.get("PermissionModel") != "SERVICE_MANAGED":
            raise StackError("ValidationError", "The local cloud runs SERVICE_MANAGED stack sets only")
        if "AutoDeployment.Enabled" not in form:
            raise StackError("ValidationError", "AutoDeployment must be specified for a SERVICE_MANAGED stack set")
        body = stacks.template_of(form, caller, region)
        template = stack_model.parse_template(body)
        given = {m["ParameterKey"]: m.get("ParameterValue", "") for m in members(form, "Parameters")
                 if isinstance(m, dict) and "ParameterKey" in m}
        stack_model.parameter_values(template, given)
        capabilities = [c for c in members(form, "Capabilities") if isinstance(c, str)]
        for need in stack_model.needed_capabilities(template):
            if need not in capabilities and not (need == "CAPABILITY_IAM" and "CAPABILITY_NAMED_IAM" in capabilities):
                raise StackError("InsufficientCapabilitiesException", f"Requires capabilities : [{need}]")
        stack_set = StackSet(name=name, owner=management, region=region, body=body, parameters=given,
                             capabilities=capabilities, auto_deployment=form.get("AutoDeployment.Enabled") == "true",
                             retain_on_removal=form.get("AutoDeployment.RetainStacksOnAccountRemoval") == "true",
                             description=form.get("Description"))
        stack_set.set_id = f"{name}:{uuid.uuid4()}"
        sets[name] = stack_set
        return {"StackSetId": stack_set.set_id}
    if op == "ListStackSets":
        return {"Summaries": [{"StackSetName": s.name, "StackSetId": s.set_id, "Status": s.status,
                               "PermissionModel": "SERVICE_MANAGED",
                               "AutoDeployment": {"Enabled": str(s.auto_deployment).lower()}}
                              for s in sets.values() if s.status != "DELETED"]}
    stack_set = find(management, region, form.get("StackSetName", ""))
    org = organization(management)
    if op == "DescribeStackSet":
        return {"StackSet": {
            "StackSetName": stack_set.name, "StackSetId": stack_set.set_id, "Status": stack_set.status,
            "TemplateBody": stack_set.body, "PermissionModel": "SERVICE_MANAGED",
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in stack_set.parameters.items()],
            "Capabilities": stack_set.capabilities,
            "AutoDeployment": {"Enabled": str(stack_set.auto_deployment).lower(),
                               "RetainStacksOnAccountRemoval": str(stack_set.retain_on_removal).lower()},
            "OrganizationalUnitIds": sorted(stack_set.targets),
            **({"Description": stack_set.description} if stack_set.description else {})}}
    if op == "CreateStackInstances":
        targets = [t for t in members(form, "DeploymentTargets.OrganizationalUnitIds") if isinstance(t, str)]
        regions = [r for r in members(form, "Regions") if isinstance(r, str)]
        if not targets or not regions:
            raise StackError("ValidationError", "DeploymentTargets.OrganizationalUnitIds and Regions are required "
                                                "for a SERVICE_MANAGED stack set")
        known = {ou.id for ou in org.ou}  # the roots among them
        for t in targets:
            if t not in known:
                raise StackError("ValidationError", f"OrganizationalUnitId {t} does not exist in the organization")
        stack_set.targets |= set(targets)
        stack_set.regions = sorted(set(stack_set.regions) | set(regions))
        work = []
        for t in targets:
            for acct, parent in accounts_under(org, t):
                if acct == management:
                    continue  # StackSets does not deploy to the management account
                for r in regions:
                    inst = stack_set.instances.setdefault((acct, r), Instance(acct, r, parent))
                    work.append(inst)
        return {"OperationId": operation(stack_set, "CREATE", work, management)}
    if op == "UpdateStackSet":
        if form.get("UsePreviousTemplate") != "true":
            stack_set.body = stacks.template_of(form, caller, region)
        for m in members(form, "Parameters"):
            if isinstance(m, dict) and "ParameterKey" in m and m.get("UsePreviousValue") != "true":
                stack_set.parameters[m["ParameterKey"]] = m.get("ParameterValue", "")
        capabilities = [c for c in members(form, "Capabilities") if isinstance(c, str)]
        if capabilities:
            stack_set.capabilities = capabilities
        work = list(stack_set.instances.values())
        for i in work:
            i.status = "OUTDATED"
        return {"OperationId": operation(stack_set, "UPDATE", work, management)}
    if op == "DeleteStackInstances":
        removed = {t for t in members(form, "DeploymentTargets.OrganizationalUnitIds") if isinstance(t, str)}
        in_regions = {r for r in members(form, "Regions") if isinstance(r, str)}
        accounts = {a for t in removed for a, _ in accounts_under(org, t)}
        work = [i for (a, r), i in stack_set.instances.items() if a in accounts and r in in_regions]
        stack_set.targets -= removed
        return {"OperationId": operation(stack_set, "DELETE", work, management, delete=True,
                                         retain=form.get("RetainStacks") == "true")}
    if op == "DeleteStackSet":
        if stack_set.instances:
            raise StackError("StackSetNotEmptyException", f"StackSet {stack_set.name} is not empty", 409)
        stack_set.status = "DELETED"
        return {}
    if op == "ListStackInstances":
        return {"Summaries": [{
            "StackSetId": stack_set.set_id, "Account": i.account, "Region": i.region, "OrganizationalUnitId": i.ou,
            "Status": i.status, "StackInstanceStatus": {"DetailedStatus": i.detailed},
            **({"StackId": i.stack_id} if i.stack_id else {}), **({"StatusReason": i.reason} if i.reason else {})}
            for i in stack_set.instances.values()
            if form.get("StackInstanceAccount") in (None, i.account) and form.get("StackInstanceRegion") in (None, i.region)]}
    if op == "DescribeStackInstance":
        found = stack_set.instances.get((form.get("StackInstanceAccount", ""), form.get("StackInstanceRegion", "")))
        if found is None:
            raise StackError("StackInstanceNotFoundException", "Stack instance not found", 404)
        return {"StackInstance": {
            "StackSetId": stack_set.set_id, "Account": found.account, "Region": found.region, "OrganizationalUnitId": found.ou,
            "Status": found.status, "StackInstanceStatus": {"DetailedStatus": found.detailed},
            **({"StackId": found.stack_id} if found.stack_id else {}),
            **({"StatusReason": found.reason} if found.reason else {})}}
    if op == "DescribeStackSetOperation":
        record = stack_set.operations.get(form.get("OperationId", ""))
        if record is None:
            raise StackError("OperationNotFoundException", f"Operation {form.get('OperationId')} not found", 404)
        return {"StackSetOperation": record}
    if op == "ListStackSetOperations":
        return {"Summaries": list(stack_set.operations.values())}
    return {}


def account_joined(account: str) -> None:
    """AutoDeployment: `account` now sits under an OU (or root) some stack set targets; its instances
    follow after StackSets' delay. Called by the extension after Organizations moved, created or
    admitted an account."""
    org = organization(account)
    if org is None or org.org is None:
        return
    management = org.org.master_account_id
    if account == management:
        return
    for (owner, _region), sets in list(SETS.items()):
        if owner != management:
            continue
        for stack_set in sets.values():
            if stack_set.status == "DELETED" or not stack_set.auto_deployment:
                continue
            under = {a: parent for t in stack_set.targets for a, parent in accounts_under(org, t)}
            if account not in under:
                continue
            work = []
            for r in stack_set.regions:
                if (account, r) not in stack_set.instances:
                    work.append(stack_set.instances.setdefault((account, r), Instance(account, r, under[account])))
            if work:
                operation(stack_set, "CREATE", work, management, delay=DELAY_SECONDS["seconds"])


def patch() -> None:
    """Tells AutoDeployment when an account joins an OU: MoveAccount and CreateAccount (into the
    root); an accepted invitation (organizations.join) tells it itself."""
    from moto.organizations.models import OrganizationsBackend

    if getattr(OrganizationsBackend, "_assure_stacksets", False):
        return
    replace(OrganizationsBackend, "_assure_stacksets", True)
    move, create = OrganizationsBackend.move_account, OrganizationsBackend.create_account

    def move_account(self: Any, **kwargs: Any) -> Any:
        out = move(self, **kwargs)
        account_joined(kwargs.get("AccountId", ""))
        return out

    def create_account(self: Any, **kwargs: Any) -> Any:
        out = create(self, **kwargs)
        account_joined(out["CreateAccountStatus"]["AccountId"])
        return out

    replace(OrganizationsBackend, "move_account", move_account)
    replace(OrganizationsBackend, "create_account", create_account)
