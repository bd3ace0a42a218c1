"""Amazon Data Firehose: a stream's CREATING transition."""

from __future__ import annotations

import sys
import uuid
from typing import Any

from assure_local import aws_request, events, rules
from assure_local.aws_request import Req, p
from assure_local.core import (
    LOCK,
    STREAMS_CREATING,
    final_at,
    replace,
    transitional,
)
from assure_local.rules import Refusal, unusable_role


def patch_firehose_transition() -> None:
    """Firehose: CreateDeliveryStream "is an asynchronous operation that immediately returns. The
    initial status of the Firehose stream is CREATING. After the Firehose stream is created, its status
    is ACTIVE and it now accepts data. ... Attempts to send data to a delivery stream that is not in the
    ACTIVE state cause an exception"
    (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html). moto makes
    a stream ACTIVE at once. Here it is CREATING for the transition (TRANSITION), as DescribeDeliveryStream
    shows (ListDeliveryStreams shows names only), and while CREATING:
    - PutRecord and PutRecordBatch are refused with ResourceNotFoundException. The page names no error
      code; of the errors those operations list
      (https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecord.html: InvalidArgumentException,
      InvalidKMSResourceException, InvalidSourceException, ResourceNotFoundException,
      ServiceUnavailableException) it is the one for a stream that cannot take the request.
    - DeleteDeliveryStream is refused with ResourceInUseException: "You can't delete a Firehose stream
      that is in the CREATING state"
      (https://docs.aws.amazon.com/firehose/latest/APIReference/API_DeleteDeliveryStream.html; its errors:
      ResourceInUseException, "The resource is already in use and not available for this operation",
      and ResourceNotFoundException).
    - CloudWatch Logs' PutSubscriptionFilter naming the stream is refused, as for a stream that does not
      exist (InvalidParameterException, "Could not deliver test message to specified Firehose stream"):
      CloudWatch Logs sends the stream a test message, and its guide says to wait until the stream is
      active (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CreateFirehoseStreamDestination-Account.html).
      A subscription's log events reaching a stream that is not ACTIVE are not delivered.
    UpdateDestination and the tagging operations name no refusal while CREATING; none is made."""
    from moto.firehose import exceptions as errors
    from moto.firehose import models as firehose
    from moto.logs import models as logs
    from moto.logs.exceptions import InvalidParameterException

    def settle(stream: Any) -> str:
        """The stream's status now; moto's record of it is brought up to date for its answers."""
        final = STREAMS_CREATING.get(stream.delivery_stream_arn)
        if final is not None:
            if transitional(final):
                stream.delivery_stream_status = "CREATING"
            else:
                stream.delivery_stream_status = "ACTIVE"
                STREAMS_CREATING.pop(stream.delivery_stream_arn, None)
        return stream.delivery_stream_status

    create = firehose.FirehoseBackend.create_delivery_stream

    def create_creating(self, region, delivery_stream_name, *args, **kwargs):
        arn = create(self, region, delivery_stream_name, *args, **kwargs)
        STREAMS_CREATING[arn] = final_at()
        settle(self.delivery_streams[delivery_stream_name])
        return arn

    describe = firehose.FirehoseBackend.describe_delivery_stream

    def describe_settled(self, delivery_stream_name, *args, **kwargs):
        stream = self.delivery_streams.get(delivery_stream_name)
        if stream is not None:
            settle(stream)
        return describe(self, delivery_stream_name, *args, **kwargs)

    put_batch = firehose.FirehoseBackend.put_record_batch

    def put_batch_when_active(self, delivery_stream_name, records):
        stream = self.delivery_streams.get(delivery_stream_name)
        if stream is not None and settle(stream) != "ACTIVE":
            raise errors.ResourceNotFoundException(
                f"Firehose {delivery_stream_name} under account {self.account_id} is not ACTIVE "
                f"(its status is {stream.delivery_stream_status}): it does not accept data yet.")
        return put_batch(self, delivery_stream_name, records)

    delete = firehose.FirehoseBackend.delete_delivery_stream

    def delete_unless_creating(self, delivery_stream_name, *args, **kwargs):
        stream = self.delivery_streams.get(delivery_stream_name)
        if stream is not None and settle(stream) == "CREATING":
            raise errors.ResourceInUseException(
                f"Firehose {delivery_stream_name} under account {self.account_id} is in the CREATING state "
                "and cannot be deleted until it is ACTIVE.")
        delete(self, delivery_stream_name, *args, **kwargs)
        if stream is not None:
            STREAMS_CREATING.pop(stream.delivery_stream_arn, None)

    send_log_event = firehose.FirehoseBackend.send_log_event

    def send_log_event_when_active(self, delivery_stream_arn, *args, **kwargs):
        stream = self.lookup_name_from_arn(delivery_stream_arn)
        if stream is not None and settle(stream) != "ACTIVE":
            print(f"firehose {stream.delivery_stream_name} ({self.account_id}, {self.region_name}): "
                  f"log events not delivered: the stream is {stream.delivery_stream_status}", file=sys.stderr, flush=True)
            return None
        return send_log_event(self, delivery_stream_arn, *args, **kwargs)

    put_subscription_filter = logs.LogsBackend.put_subscription_filter

    def subscribe_only_active(self, log_group_name, filter_name, filter_pattern, destination_arn, *args, **kwargs):
        if str(destination_arn or "").startswith("arn:") and destination_arn.split(":")[2] == "firehose":
            stream = firehose.firehose_backends[self.account_id][self.region_name].lookup_name_from_arn(destination_arn)
            if stream is not None and settle(stream) != "ACTIVE":
                raise InvalidParameterException("Could not deliver test message to specified Firehose stream. "
                                                "Check if the given Firehose stream is in ACTIVE state.")
        return put_subscription_filter(self, log_group_name, filter_name, filter_pattern, destination_arn, *args, **kwargs)

    replace(firehose.FirehoseBackend, "create_delivery_stream", create_creating)
    replace(firehose.FirehoseBackend, "describe_delivery_stream", describe_settled)
    replace(firehose.FirehoseBackend, "put_record_batch", put_batch_when_active)
    replace(firehose.FirehoseBackend, "delete_delivery_stream", delete_unless_creating)
    replace(firehose.FirehoseBackend, "send_log_event", send_log_event_when_active)
    replace(logs.LogsBackend, "put_subscription_filter", subscribe_only_active)


def patch_moto() -> None:
    """Firehose: UpdateDestination's merge, S3 writes as the stream's role, the CREATING transition."""
    # Firehose: UpdateDestination merges the update into the destination (AWS keeps every field it
    # does not name). moto merges the ExtendedS3 half but rebuilds its S3 twin from the update alone,
    # so the next DescribeDeliveryStream lacks the required CompressionFormat and SDKs fail to read it.
    from moto.firehose import models as firehose

    update_destination = firehose.FirehoseBackend.update_destination

    def merged_update(self, delivery_stream_name, current_delivery_stream_version_id, destination_id, *args, **kwargs):
        update_destination(self, delivery_stream_name, current_delivery_stream_version_id, destination_id, *args, **kwargs)
        for d in self.delivery_streams[delivery_stream_name].destinations:
            if d.get("destination_id") == destination_id and "ExtendedS3" in d:
                d["S3"] = firehose.create_s3_destination_config(d["ExtendedS3"])

    replace(firehose.FirehoseBackend, "update_destination", merged_update)

    # Firehose: a batch reaches the S3 destination only if the stream's role may write it there
    # (rules.firehose_s3_refusal); moto writes with no check. Each attempt is reported as AWS does,
    # in AWS/Firehose DeliveryToS3.Success (1 delivered, 0 refused) and DeliveryToS3.Records
    # (https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html).

    def checked_put(self, delivery_stream_name, version_id, s3_destination, records):
        from moto.cloudwatch.models import cloudwatch_backends

        object_key = self._format_s3_object_path(delivery_stream_name, version_id, s3_destination.get("Prefix", ""))
        with LOCK:
            stream_arn = f"arn:aws:firehose:{self.region_name}:{self.account_id}:deliverystream/{delivery_stream_name}"
            refused = rules.firehose_s3_refusal(self.region_name, s3_destination, object_key, stream_arn)
        dims = [{"Name": "DeliveryStreamName", "Value": delivery_stream_name}]
        metrics = [{"MetricName": "DeliveryToS3.Success", "Value": 0.0 if refused else 1.0, "Dimensions": dims}]
        if not refused:
            metrics.append({"MetricName": "DeliveryToS3.Records", "Value": float(len(records)), "Dimensions": dims,
                            "Unit": "Count"})
        cloudwatch_backends[self.account_id][self.region_name].put_metric_data("AWS/Firehose", metrics)
        if refused:
            print(f"firehose {delivery_stream_name} ({self.account_id}, {self.region_name}): delivery refused: {refused}",
                  file=sys.stderr, flush=True)
            return [{"RecordId": str(uuid.uuid4())} for _ in records]
        # Written as Firehose names and encodes it (its compression and file extension, its KMS key).

        return events.firehose_s3_write(self, delivery_stream_name, version_id, s3_destination, records)

    replace(firehose.FirehoseBackend, "put_s3_records", checked_put)
    patch_firehose_transition()


def firehose_role(req: Req, account: str, raw: bytes) -> Refusal | None:
    # CreateDeliveryStream and UpdateDestination: Firehose assumes the destination's role at once and
    # refuses one it cannot assume with InvalidArgumentException
    # (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html; the role's
    # trust: https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html).
    if req.service != "firehose" or req.operation not in ("CreateDeliveryStream", "UpdateDestination"):
        return None
    roles = aws_request.dig(req.params, "ExtendedS3DestinationConfiguration.RoleARN")
    roles += aws_request.dig(req.params, "S3DestinationConfiguration.RoleARN")
    roles += aws_request.dig(req.params, "ExtendedS3DestinationUpdate.RoleARN")
    stream = f"arn:aws:firehose:{req.region}:{account}:deliverystream/{p(req.params, 'DeliveryStreamName') or ''}"
    for role in roles:
        if unusable_role("firehose.amazonaws.com", role, stream):
            return Refusal(400, "InvalidArgumentException",
                           f"Firehose is unable to assume role {role}. Please check the role provided.")
    return None
