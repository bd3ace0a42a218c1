"""AWS Systems Manager: Session Manager's StartSession needs a connected target and an existing document."""

from __future__ import annotations

from assure_local import resources, ssm_agents
from assure_local.aws_request import Req, p
from assure_local.rules import Refusal


def ssm_start_session(req: Req, account: str, raw: bytes) -> Refusal | None:
    # StartSession, once authorized: a target that is not a managed node whose SSM Agent is online
    # with a control channel (ssm_agents.connected: registered with /assure-api/managed-instances,
    # its role usable) is TargetNotConnected, "The specified target managed node for the session isn't
    # fully configured for use with Session Manager"; a document of the account's that does not exist:
    # InvalidDocument, "The specified SSM document doesn't exist"
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StartSession.html, Errors).
    # AWS's own documents (AWS-StartPortForwardingSession, …) exist in every account; moto has none.
    if req.service != "ssm" or req.operation != "StartSession":
        return None
    doc = p(req.params, "DocumentName")
    if isinstance(doc, str) and doc and doc != resources.DEFAULT_SESSION_DOCUMENT and not doc.startswith("arn:") \
            and not doc.lower().startswith(resources.AWS_DOCUMENT_PREFIXES):
        from moto.ssm.models import ssm_backends

        if doc not in ssm_backends[account][req.region]._documents:
            return Refusal(400, "InvalidDocument", "The specified document does not exist.")
    target = p(req.params, "Target") or ""

    if isinstance(target, str) and ssm_agents.connected(account, req.region, target):
        return None
    return Refusal(400, "TargetNotConnected", f"{target} is not connected.")
