"""The services' own checks of a request, after authorization (AWS authorizes first): every rule of
services/ and the API models' (model_validation.py), run in order; the first refusal is the answer."""

from __future__ import annotations

from collections.abc import Callable

from assure_local.aws_request import Req
from assure_local.model_validation import api_model
from assure_local.rules import Refusal
from assure_local.services.awslambda import lambda_role, lambda_sqs_mapping
from assure_local.services.cloudtrail import cloudtrail_delivery, cloudtrail_logs_delivery, cloudtrail_organization_trail
from assure_local.services.cloudwatch import cloudwatch_delete_alarms
from assure_local.services.config import config_delivery_channel, config_organization_aggregator
from assure_local.services.firehose import firehose_role
from assure_local.services.guardduty import guardduty_one_detector
from assure_local.services.identity import iam_trust_policy
from assure_local.services.kms import kms_key_policy
from assure_local.services.logs import logs_kms_key
from assure_local.services.organizations import organizations_attach, organizations_delegated_administrator, organizations_policy
from assure_local.services.s3 import s3_bucket_policy, s3_expected_bucket_owner
from assure_local.services.ssm import ssm_start_session

RULES: list[Callable[[Req, str, bytes], Refusal | None]] = [
    api_model, s3_expected_bucket_owner, ssm_start_session, logs_kms_key, lambda_role, lambda_sqs_mapping,
    s3_bucket_policy, kms_key_policy, iam_trust_policy, cloudwatch_delete_alarms, config_organization_aggregator,
    cloudtrail_logs_delivery, cloudtrail_organization_trail, cloudtrail_delivery, firehose_role, organizations_policy,
    organizations_attach, organizations_delegated_administrator, config_delivery_channel, guardduty_one_detector,
]


def check(req: Req, account: str, raw: bytes) -> Refusal | None:
    for rule in RULES:
        refused = rule(req, account, raw)
        if refused is not None:
            return refused
    return None
