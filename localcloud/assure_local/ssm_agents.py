"""Session Manager's view of managed instances: whether an instance's agent is online and reachable
(its role may ping Systems Manager and open control channels)."""

from __future__ import annotations

import re
from typing import Any

from assure_local import authz, aws_request, policies, principals
from assure_local.core import INSTANCES

INSTANCE_ID = re.compile(r"^(i-[0-9a-f]{8}([0-9a-f]{9})?|mi-[0-9a-f]{17})$")


def instance_role(inst: dict) -> Any:
    from moto.iam.models import iam_backends

    return next((r for r in iam_backends[inst["account"]]["aws"].roles.values() if r.name == inst["roleName"]), None)


def agent(inst: dict) -> Any:
    """The instance role's session, as the SSM Agent uses it (an EC2 instance's session is named for
    the instance)."""
    role = instance_role(inst)
    return principals.role_principal(role, f"arn:aws:sts::{inst['account']}:assumed-role/{role.name}/{inst['instanceId']}")


def agent_refusal(inst: dict, actions: tuple[str, ...]) -> str | None:
    """Why the instance's agent cannot work: its role is gone, does not trust the compute service
    (EC2 for i-…, Systems Manager for a hybrid mi-… node), or may not call `actions`."""
    role = instance_role(inst)
    if role is None:
        return f"role {inst['roleName']} does not exist"
    service = "ssm.amazonaws.com" if inst["instanceId"].startswith("mi-") else "ec2.amazonaws.com"
    if not principals.service_trusted(service, role).allowed:
        return f"the trust policy of {role.arn} does not admit {service}"
    if not policies.enabled():
        return None
    principal = agent(inst)
    for action in actions:
        service_name, op = action.split(":", 1)
        denial = authz.authorize(principal, aws_request.Req(service_name, op, {}, inst["region"]))
        if denial is not None:
            return denial.message
    return None


# The SSM Agent's calls: registering and pinging (ssm:UpdateInstanceInformation), and the control
# channel Session Manager starts sessions through (AmazonSSMManagedInstanceCore; "Step 2: Verify or
# create an IAM instance profile with Session Manager permissions").
PING = ("ssm:UpdateInstanceInformation",)


CONTROL = ("ssmmessages:CreateControlChannel", "ssmmessages:OpenControlChannel")


def target_id(target: str) -> str:
    """A StartSession target's instance ID: as given, or the last part of its ARN
    (`arn:aws:ec2:REGION:ACCOUNT:instance/i-…`, `arn:aws:ssm:REGION:ACCOUNT:managed-instance/mi-…`)."""
    return target.rsplit("/", 1)[-1] if target.startswith("arn:") else target


def connected(account: str, region: str, target: str) -> bool:
    """Whether Session Manager can reach `target`: registered here, and its agent online with a
    control channel (ssm.ssm_start_session answers TargetNotConnected otherwise)."""
    inst = INSTANCES.get((account, region, target_id(target)))
    return inst is not None and agent_refusal(inst, PING + CONTROL) is None
