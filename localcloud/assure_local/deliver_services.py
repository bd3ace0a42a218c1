"""Services that act on their own, as their service principal, through the same authorization as
every request: Config delivering a snapshot, GuardDuty exporting findings, CloudWatch publishing an
alarm's notification and SNS delivering it, Config's organization aggregator reading the organization.

Each acts after the local cloud's delay (scheduler.later, scheduler.delay(): core.TRANSITION, the
delay analyzers and Firehose streams wait), and only where the policies AWS consults let it: the bucket
and key policies for a service principal writing to S3 (rules.delivery_refusal, with the context keys
each service documents sending: rules.DELIVERY_CONTEXT_KEYS), the recorder's role (authz.authorize) for
Config's first attempt, the topic's and the key's policies for CloudWatch, the queue's and its key's for
SNS, the aggregator role's trust and permissions for Config. What happened is what the service then
reports: DescribeDeliveryChannelStatus, DescribePublishingDestination, DescribeAlarmHistory,
DescribeConfigurationAggregatorSourcesStatus, SNS's CloudWatch metrics.

Each service's deliveries live with it: services/config.py (snapshots, the organization aggregator),
services/guardduty_findings.py, services/cloudwatch.py (alarm actions, history), services/sns.py,
services/s3.py (a bucket policy's reads). This module holds what they share: clocks, the delivery
log, `install` (each patch once), and whether a service principal may act (service_allows).

Operations answered by them (moto lacks them):
- Config: DeliverConfigSnapshot, DescribeConfigurationAggregatorSourcesStatus; DescribeDeliveryChannelStatus's
  configSnapshotDeliveryInfo.
- GuardDuty: CreateSampleFindings, ListFindings, GetFindings (routed by the extension like its other
  GuardDuty operations).
- CloudWatch: DescribeAlarmHistory (StateUpdate and Action items).

extension.patch_deliveries installs it all; the extension's patch_moto calls it.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable
from typing import Any

from assure_local import iam, rules, scheduler


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def epoch_ms(when: datetime.datetime | None = None) -> int:
    return int((when or utcnow()).timestamp() * 1000)


def iso_ms(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def later(fn: Callable[[], Any]) -> None:
    """`fn` after the delivery delay, on the delivery thread, holding core.LOCK."""
    scheduler.later(scheduler.delay(), fn)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def mine(fn: Any) -> bool:
    return bool(getattr(fn, "_deliver_services", False))


def install(owner: Any, name: str, fn: Callable) -> None:
    """`owner.name = fn`, marked as this module's, so that patching again (a second patch_moto in one
    process) neither wraps this module's functions twice nor loses them."""
    fn._deliver_services = True  # type: ignore[attr-defined]
    setattr(owner, name, fn)


def service_allows(doc: Any, service: str, action: str, resource: str, ctx: dict) -> bool:
    """Whether the resource-based policy `doc` lets the service principal `service` do `action` on
    `resource` with the context `ctx`: an allow naming it, and no deny."""
    principal = iam.Principal(kind="service", account="", arn=service)
    direct, _, deny = iam.resource_effects(doc, principal, action, resource, ctx)
    return direct and not deny


def service_context(service: str, account: str, source_arn: str | None) -> dict:
    """What a service principal's request carries: TLS, aws:PrincipalIsAWSService, and the source keys
    the service documents (rules.delivery_context)."""
    return {"aws:SecureTransport": "true", "aws:PrincipalIsAWSService": "true",
            **rules.delivery_context(service, account, source_arn)}


# ---------------------------------------------------------------------------------------------------
# AWS Config: DeliverConfigSnapshot
# (https://docs.aws.amazon.com/config/latest/APIReference/API_DeliverConfigSnapshot.html)


# ---------------------------------------------------------------------------------------------------
# AWS Config: the organization aggregator reads the organization as its role
# (https://docs.aws.amazon.com/config/latest/APIReference/API_DescribeConfigurationAggregatorSourcesStatus.html)


# ---------------------------------------------------------------------------------------------------
# GuardDuty: sample findings, and their export to the publishing destinations
# (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_CreateSampleFindings.html,
# https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_exportfindings.html)


# ---------------------------------------------------------------------------------------------------
# CloudWatch: an alarm's state change, its actions, its history
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarmHistory.html)


# ---------------------------------------------------------------------------------------------------
# SNS delivering to its subscriptions
# (https://docs.aws.amazon.com/sns/latest/dg/sns-sqs-as-subscriber.html,
# https://docs.aws.amazon.com/sns/latest/dg/sns-http-https-endpoint-as-subscriber.html)


# ---------------------------------------------------------------------------------------------------


