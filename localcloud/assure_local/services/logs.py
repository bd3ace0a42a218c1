"""CloudWatch Logs: the operations moto lacks on a log group's KMS key."""

from __future__ import annotations


def patch_log_group_keys() -> None:
    """CloudWatch Logs: AssociateKmsKey and DisassociateKmsKey, which moto lacks: the log group's key
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_AssociateKmsKey.html;
    whether CloudWatch Logs may use the key is rules.logs_kms_key's)."""
    from moto.logs.exceptions import ResourceNotFoundException
    from moto.logs.responses import LogsResponse

    def set_key(self, key: str | None) -> str:  # type: ignore[no-untyped-def]
        group = self.logs_backend.groups.get(self._get_param("logGroupName"))
        if group is None:
            raise ResourceNotFoundException()
        group.kms_key_id = key
        return ""

    LogsResponse.associate_kms_key = lambda self: set_key(self, self._get_param("kmsKeyId"))
    LogsResponse.disassociate_kms_key = lambda self: set_key(self, None)
