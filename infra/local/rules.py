"""What AWS services check of a request beyond IAM: the validations their front ends make before
they act. moto makes few of them, so a pipeline that breaks one passes locally and fails on AWS.

Each rule cites the AWS documentation page it comes from and answers with that service's error code
and message. `check(req, account)` runs after authorization (AWS authorizes first) and returns None
or a `Refusal`; the extension answers it in the service's protocol.

Rules:
- Policies naming IAM principals that do not exist are refused (S3 bucket policies, KMS key policies,
  IAM role trust policies): the principal must exist when the policy is saved.
- CloudWatch DeleteAlarms naming an alarm that does not exist deletes none and fails.
- Config PutConfigurationAggregator with an organization source: management account or Config's
  delegated administrator only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote

from authz import Req
from iam import as_list


@dataclass
class Refusal:
    status: int
    code: str
    message: str


IAM_ENTITY = re.compile(r"^arn:aws:iam::(\d{12}):(role|user)/(.+)$")


def named_principals(doc: Any) -> list[str]:
    """Every IAM role or user ARN a policy's Principal (or NotPrincipal) elements name."""
    out = []
    statements = as_list(doc.get("Statement")) if isinstance(doc, dict) else []
    for stmt in statements:
        if not isinstance(stmt, dict):
            continue
        for key in ("Principal", "NotPrincipal"):
            p = stmt.get(key)
            if isinstance(p, dict):
                out += [v for v in as_list(p.get("AWS")) if isinstance(v, str) and IAM_ENTITY.match(v)]
    return out


def exists(arn: str) -> bool:
    from moto.iam.models import iam_backends

    m = IAM_ENTITY.match(arn)
    if not m:
        return True
    account, kind, path_and_name = m.groups()
    name = path_and_name.split("/")[-1]
    backend = iam_backends[account]["aws"]
    entities = backend.roles.values() if kind == "role" else backend.users.values()
    return any(e.name == name and e.arn == arn for e in entities)


def missing_principal(text: str | None) -> str | None:
    """The first IAM principal the policy names that does not exist, or None."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return next((arn for arn in named_principals(doc) if not exists(arn)), None)


def s3_bucket_policy(req: Req, account: str, raw: bytes) -> Refusal | None:
    # PutBucketPolicy: "Invalid principal in policy" when a principal it names does not exist (or was
    # deleted): https://repost.aws/knowledge-center/s3-invalid-principal-in-policy-error
    # (API: https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html, error MalformedPolicy).
    bucket, _, key = unquote(req.path).lstrip("/").partition("/")
    if req.service != "s3" or req.method != "PUT" or "policy" not in (req.query or {}) or not bucket or key:
        return None
    if missing_principal(raw.decode(errors="replace")):
        return Refusal(400, "MalformedPolicy", "Invalid principal in policy")
    return None


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


def iam_trust_policy(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateRole and UpdateAssumeRolePolicy: a trust policy naming a role or user that does not exist is
    # refused, "Invalid principal in policy" (IAM saves a named principal as its unique id, so it must
    # exist): https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    names = {"CreateRole": "AssumeRolePolicyDocument", "UpdateAssumeRolePolicy": "PolicyDocument"}
    if req.service != "iam" or req.operation not in names:
        return None
    arn = missing_principal(req.params.get(names[req.operation]))
    if arn:
        return Refusal(400, "MalformedPolicyDocument", f'Invalid principal in policy: "AWS":"{arn}"')
    return None


def cloudwatch_delete_alarms(req: Req, account: str, raw: bytes) -> Refusal | None:
    # DeleteAlarms: "If you specify any alarm that does not exist, ... no alarms are deleted" and the call
    # fails with ResourceNotFound (HTTP 404); moto deletes the others and succeeds.
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteAlarms.html
    if req.service != "monitoring" or req.operation != "DeleteAlarms":
        return None
    from moto.cloudwatch.models import cloudwatch_backends

    existing = cloudwatch_backends[account][req.region].alarms
    missing = [n for n in as_list(req.params.get("AlarmNames")) if n not in existing]
    if missing:
        return Refusal(404, "ResourceNotFound", f"{', '.join(missing)} not found")
    return None


def config_organization_aggregator(req: Req, account: str, raw: bytes) -> Refusal | None:
    # PutConfigurationAggregator with an organization source: "you must be signed in to the management
    # account or a registered delegated administrator and all the features must be enabled in your
    # organization" (https://docs.aws.amazon.com/config/latest/APIReference/API_PutConfigurationAggregator.html;
    # the errors: OrganizationAccessDeniedException, NoAvailableOrganizationException,
    # OrganizationAllFeaturesNotEnabledException).
    if req.service != "config" or req.operation != "PutConfigurationAggregator":
        return None
    if not req.params.get("OrganizationAggregationSource"):
        return None
    from extension import delegated_admin, organization_of

    org = organization_of(account)
    if org is None:
        return Refusal(400, "NoAvailableOrganizationException",
                       "Organization is not available. Check if the account is part of an organization.")
    mgmt, backend = org
    if getattr(backend.org, "feature_set", "ALL") != "ALL":
        return Refusal(400, "OrganizationAllFeaturesNotEnabledException",
                       "AWS Config cannot proceed further because not all features are enabled in your organization.")
    if account != mgmt and not delegated_admin(account, "config.amazonaws.com"):
        return Refusal(400, "OrganizationAccessDeniedException",
                       "You are not a registered delegated administrator for AWS Config with permissions to call "
                       "ListDelegatedAdministrators API. Ensure that the management account registers delegated "
                       "administrator for AWS Config service principal name before the delegated administrator "
                       "creates an aggregator.")
    return None


RULES: list[Callable[[Req, str, bytes], Refusal | None]] = [
    s3_bucket_policy, kms_key_policy, iam_trust_policy, cloudwatch_delete_alarms, config_organization_aggregator,
]


def check(req: Req, account: str, raw: bytes) -> Refusal | None:
    for rule in RULES:
        refused = rule(req, account, raw)
        if refused is not None:
            return refused
    return None
