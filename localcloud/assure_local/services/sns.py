"""Amazon SNS: deliveries to SQS queues (as the queue's policy and key allow) and HTTP endpoints, counted in CloudWatch."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from assure_local import iam, resources, scheduler
from assure_local.deliver_services import install, log, mine, service_allows, service_context

SNS = "sns.amazonaws.com"


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


HTTP_TIMEOUT = 2.0


_HTTP = ThreadPoolExecutor(max_workers=4, thread_name_prefix="assure-sns-http")


_HTTP_PENDING = {"count": 0}


_HTTP_CV = threading.Condition()


def count_delivery(topic: Any, delivered: bool) -> None:
    """AWS/SNS NumberOfNotificationsDelivered or NumberOfNotificationsFailed, dimension TopicName
    (https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html), in the topic's
    account and Region, where GetMetricStatistics and GetMetricData read them."""
    from moto.cloudwatch.models import cloudwatch_backends

    from assure_local.core import LOCK

    name = "NumberOfNotificationsDelivered" if delivered else "NumberOfNotificationsFailed"
    with LOCK:
        cloudwatch_backends[topic.account_id][topic.sns_backend.region_name].put_metric_data("AWS/SNS", [
            {"MetricName": name, "Value": 1.0, "Unit": "Count", "Dimensions": [{"Name": "TopicName", "Value": topic.name}]}])


def queue_refusal(topic: Any, queue: Any, queue_arn: str) -> str | None:
    """Why SNS cannot send to the queue: its policy must let sns.amazonaws.com sqs:SendMessage with the
    topic as aws:SourceArn ("Publish messages to an Amazon SQS queue":
    https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html), and an encrypted
    queue's key policy must let it kms:GenerateDataKey and kms:Decrypt; the AWS managed key (aws/sqs)
    cannot admit it (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html,
    "Enable compatibility between encrypted queues and AWS services")."""
    ctx = service_context(SNS, topic.account_id, topic.arn)
    if not service_allows(iam.parse(queue.policy), SNS, "sqs:SendMessage", queue_arn, ctx):
        return f"the policy of queue {queue_arn} does not let {SNS} sqs:SendMessage for {topic.arn}"
    key_id = getattr(queue, "kms_master_key_id", None)
    if key_id:
        region, owner = queue_arn.split(":")[3], queue_arn.split(":")[4]
        key = None if str(key_id).startswith("alias/aws/") else resources.kms_key(region, owner, key_id)
        if key is None:
            return f"{SNS} cannot use the key {key_id} of queue {queue_arn}"
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            if not service_allows(key.policy, SNS, action, key.arn, ctx):
                return f"the policy of key {key.arn} does not let {SNS} {action}"
    return None


def publish_refusal(service: str, account: str, source_arn: str, topic: Any, policy: Any = None) -> tuple[str, str] | None:
    """Why the service principal `service`, publishing for its resource `source_arn` in `account`,
    cannot publish to `topic`, as (what, reason) with what `policy` or `key`: the topic's policy
    (`policy`, if given, in its stead) must let it sns:Publish with the source keys it sends, and an
    encrypted topic's key policy must let it kms:GenerateDataKey and kms:Decrypt; an AWS managed key
    (alias/aws/sns) admits no service
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services)."""
    ctx = service_context(service, account, source_arn)
    doc = policy if policy is not None else iam.parse(topic.policy)
    if not service_allows(doc, service, "sns:Publish", topic.arn, ctx):
        return "policy", f"the policy of topic {topic.arn} does not let {service} sns:Publish for {source_arn}"
    key_id = topic.kms_master_key_id
    if key_id:
        if str(key_id).startswith("alias/aws/"):
            return "key", f"the topic's key {key_id} is AWS managed: its policy admits no {service}"
        key = resources.kms_key(topic.sns_backend.region_name, topic.account_id, key_id)
        if key is None:
            return "key", f"the topic's key {key_id} does not exist"
        # SNS uses the key with the topic as its encryption context; the source keys reach the key
        # policy too, except EventBridge's ("Adding the aws:SourceAccount and aws:SourceArn to a
        # AWS KMS policy is not supported for EventBridge-to-encrypted topics", the same page).
        key_ctx = dict(ctx, **{"kms:EncryptionContext:aws:sns:topicArn": topic.arn})
        if service == "events.amazonaws.com":
            key_ctx = {k: v for k, v in key_ctx.items() if not k.lower().startswith("aws:source")}
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            if not service_allows(key.policy, service, action, key.arn, key_ctx):
                return "key", f"the policy of key {key.arn} does not let {service} {action}"
    return None


def deliver_sqs(sub: Any, message: str, message_id: str, subject: str | None, message_attributes: dict | None,
                group_id: str | None, deduplication_id: str | None) -> bool:
    """SNS sends the notification to the subscribed queue, in the queue's account (moto's own delivery
    looked for it in the topic's), as moto formats it (the notification JSON, or the raw message)."""
    from moto.sqs.models import sqs_backends

    from assure_local.core import LOCK

    parts = sub.endpoint.split(":")
    if len(parts) != 6:
        return False
    region, owner, name = parts[3], parts[4], parts[5]
    with LOCK:
        backend = sqs_backends[owner][region]
        queue = backend.queues.get(name)
        why = f"queue {sub.endpoint} does not exist" if queue is None else queue_refusal(sub.topic, queue, sub.endpoint)
        if why is not None:
            log(f"sns {sub.topic.arn}: not delivered to {sub.endpoint}: {why}")
            return False
        raw = str(sub.attributes.get("RawMessageDelivery", "false")).lower() == "true"
        if not raw:
            body = json.dumps(sub.get_post_data(message, message_id, subject, message_attributes=message_attributes),
                              sort_keys=True, indent=2, separators=(",", ": "))
            backend.send_message(name, body, deduplication_id=deduplication_id, group_id=group_id, validate_group_id=False)
        else:
            attributes = {}
            for k, v in (message_attributes or {}).items():
                kind = "BinaryValue" if v["Type"].startswith("Binary") else "StringValue"
                attributes[k] = {"DataType": v["Type"], kind: str(v["Value"]) if v["Type"].startswith("Number") else v["Value"]}
            backend.send_message(name, message, message_attributes=attributes, deduplication_id=deduplication_id,
                                 group_id=group_id, validate_group_id=False)
    return True


def deliver_http(sub: Any, message: str, message_id: str, subject: str | None) -> None:
    """SNS POSTs the notification to an HTTP/HTTPS subscriber (its headers:
    https://docs.aws.amazon.com/sns/latest/dg/http-header.html), from a worker of its own, so neither the
    publisher nor the delivery thread waits: to the loopback interface only (the local cloud reaches
    nothing else), within 2 s; a 2xx answer is a delivery."""
    topic = sub.topic
    host = urlparse(sub.endpoint).hostname or ""
    if host not in LOOPBACK:
        log(f"sns {topic.arn}: not delivered to {sub.endpoint}: the local cloud delivers to the loopback interface only")
        count_delivery(topic, False)
        return
    post = sub.get_post_data(message, message_id, subject)
    headers = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification",
               "x-amz-sns-message-id": message_id, "x-amz-sns-topic-arn": topic.arn,
               "x-amz-sns-subscription-arn": sub.arn}

    def send() -> None:
        import requests

        ok = False
        try:
            answer = requests.post(sub.endpoint, data=json.dumps(post), headers=headers, timeout=HTTP_TIMEOUT,
                                   allow_redirects=False)
            ok = 200 <= answer.status_code < 300
        except Exception as e:  # noqa: BLE001 - any failure of an HTTP delivery is logged and counted
            log(f"sns {topic.arn}: delivery to {sub.endpoint} failed: {e!r}")
        try:
            count_delivery(topic, ok)
        finally:
            with _HTTP_CV:
                _HTTP_PENDING["count"] -= 1
                _HTTP_CV.notify_all()

    with _HTTP_CV:
        _HTTP_PENDING["count"] += 1
    _HTTP.submit(send)


def patch_sns() -> None:
    from moto.sns import models as sns_models

    original = sns_models.Subscription.publish
    if mine(original):
        return

    def publish(self, message, message_id, subject=None, message_attributes=None, group_id=None,
                deduplication_id=None, message_structure=None):
        """A notification to one subscription: only a confirmed one, only if its filter policy matches;
        to a queue if its policy lets SNS, to an HTTP(S) endpoint on the loopback interface; each
        delivery counted in AWS/SNS. An email is counted delivered when SNS hands it to its mail
        system, which the local cloud has none of: a confirmed email subscription stands for one
        that accepts it. Other protocols (SMS, Lambda, applications) as moto does, uncounted."""
        if str(self.attributes.get("PendingConfirmation", "false")).lower() == "true":
            return
        if self.protocol in ("email", "email-json") and (
                self._filter_policy_matcher is None or self._filter_policy_matcher.matches(message_attributes, message)):
            count_delivery(self.topic, True)
        if self.protocol not in ("sqs", "http", "https"):
            return original(self, message, message_id, subject=subject, message_attributes=message_attributes,
                            group_id=group_id, deduplication_id=deduplication_id, message_structure=message_structure)
        if self._filter_policy_matcher is not None and not self._filter_policy_matcher.matches(message_attributes, message):
            return
        if message_structure == "json":
            message = self._parse_message_structure(message, self.protocol)
        if self.protocol == "sqs":
            count_delivery(self.topic, deliver_sqs(self, message, message_id, subject, message_attributes, group_id,
                                                   deduplication_id))
        else:
            deliver_http(self, message, message_id, subject)

    install(sns_models.Subscription, "publish", publish)


def settle(timeout: float = 10.0) -> None:
    """Runs every queued delivery now (scheduler.flush) and waits for SNS's HTTP deliveries: for tests."""
    deadline = time.monotonic() + timeout
    for _ in range(3):
        scheduler.flush()
        with _HTTP_CV:
            while _HTTP_PENDING["count"] > 0 and time.monotonic() < deadline:
                _HTTP_CV.wait(0.05)
