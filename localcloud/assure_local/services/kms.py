"""AWS KMS: a key policy naming IAM principals that do not exist is refused."""

from __future__ import annotations

from assure_local.aws_request import Req
from assure_local.rules import Refusal, missing_principal


def kms_key_policy(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateKey and PutKeyPolicy, parameter Policy: "The principals in the key policy must exist and be
    # visible to KMS." https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html and
    # https://docs.aws.amazon.com/kms/latest/APIReference/API_PutKeyPolicy.html; the error's message:
    # https://repost.aws/knowledge-center/kms-policy-error-invalid-principals
    if req.service != "kms" or req.operation not in ("CreateKey", "PutKeyPolicy"):
        return None
    if missing_principal(req.params.get("Policy")):
        return Refusal(400, "MalformedPolicyDocumentException",
                       "Policy contains a statement with one or more invalid principals.")
    return None
