"""CloudWatch Logs: the operations moto lacks on a log group's KMS key."""

from __future__ import annotations

from assure_local import iam, resources
from assure_local.aws_request import Req, p
from assure_local.core import replace
from assure_local.rules import Refusal, delivery_context, key_state


def patch_log_group_keys() -> None:
    """CloudWatch Logs: AssociateKmsKey and DisassociateKmsKey, which moto lacks: the log group's key
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_AssociateKmsKey.html;
    whether CloudWatch Logs may use the key is logs.logs_kms_key's)."""
    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    def set_key(self, key: str | None) -> str:
        group = self.logs_backend.groups.get(self._get_param("logGroupName"))
        if group is None:
            raise ResourceNotFoundException()
        group.kms_key_id = key
        return ""

    replace(LogsResponse, "associate_kms_key", lambda self: set_key(self, self._get_param("kmsKeyId")))
    replace(LogsResponse, "disassociate_kms_key", lambda self: set_key(self, None))


def logs_kms_key(req: Req, account: str, raw: bytes) -> Refusal | None:
    """CreateLogGroup and AssociateKmsKey with a key: CloudWatch Logs must be able to use it for the
    log group, as its own service principal (logs.REGION.amazonaws.com), under the encryption context
    it always uses, `aws:logs:arn` the log group's ARN ("Encrypt log data in CloudWatch Logs using AWS
    Key Management Service": the key policy's statement for CloudWatch Logs, conditioned on
    kms:EncryptionContext:aws:logs:arn,
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html). The page
    names no aws:SourceAccount or aws:SourceArn for this use, so none is sent (DELIVERY_CONTEXT_KEYS).
    A key that does not exist, is disabled, or whose policy does not admit CloudWatch Logs:
    InvalidParameterException (API_CreateLogGroup, API_AssociateKmsKey)."""
    if req.service != "logs" or req.operation not in ("CreateLogGroup", "AssociateKmsKey"):
        return None
    key_id, group = p(req.params, "kmsKeyId"), p(req.params, "logGroupName")
    if not isinstance(key_id, str) or not key_id or not isinstance(group, str):
        return None
    arn = f"arn:aws:logs:{req.region}:{account}:log-group:{group}"
    refused = Refusal(400, "InvalidParameterException",
                      f"The specified KMS key does not exist or is not allowed to be used with Arn '{arn}'")
    key = resources.kms_key(req.region, account, key_id)
    if key is None or key_state(key.arn) != "Enabled":
        return refused
    service = f"logs.{req.region}.amazonaws.com"
    principal = iam.Principal(kind="service", account="", arn=service)
    ctx = {"aws:SecureTransport": "true", "aws:PrincipalIsAWSService": "true",
           "kms:EncryptionContext:aws:logs:arn": arn, "kms:EncryptionContextKeys": ["aws:logs:arn"],
           **delivery_context(service, account, arn)}
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        direct, _, deny = iam.resource_effects(key.policy, principal, action, key.arn, ctx)
        if deny or not direct:
            return refused
    return None
