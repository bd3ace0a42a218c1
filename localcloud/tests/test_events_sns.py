"""A topic as an EventBridge rule's target (events.invoke_sns): EventBridge publishes the target's
input as events.amazonaws.com where the topic's policy and its key's policy admit it, and counts a
FailedInvocations where they do not; a text input template gives text.

    VENV/bin/python -m pytest tests/test_events_sns.py
"""

import json

from assure_local import events as eb
from assure_local.services import sns as sns_service
from tests import deliveries_client
from tests.authz_client import ACCOUNT, tag
from tests.deliveries_client import make_key, query, set_key_policy, target

REGION = "eu-west-1"

RULE = "ev-drift"

RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{RULE}"


def setup_module() -> None:
    deliveries_client.setUpModule()


def sns(action: str, params: dict) -> str:
    status, body = query("sns", action, params, "2010-03-31", region=REGION)
    assert status == 200, body
    return body


def events(operation: str, body: dict) -> dict:
    status, out = target("AWSEvents", "events", operation, body, REGION)
    assert status == 200, out
    return out


TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:ev-drift"


def events_may_publish(topic: str = TOPIC_ARN) -> list[dict]:
    """EventBridge may use the key for the topic: by SNS's encryption context."""
    return [{"Sid": "EventsPublish", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
             "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
             "Condition": {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic}}}]


def events_may_publish_from(source: str) -> list[dict]:
    """A key statement by the source rule, which SNS's guide says EventBridge cannot meet."""
    return [{"Sid": "EventsPublish", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
             "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
             "Condition": {"ArnEquals": {"aws:SourceArn": source}}}]


def topic_policy(topic: str, source: str = RULE_ARN) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish",
        "Resource": topic, "Condition": {"ArnEquals": {"aws:SourceArn": source}}}]})


def setup_topic() -> tuple[str, str, str]:
    """An encrypted topic, a queue subscribed to it, a rule with the topic as target: (topic, key, queue)."""
    key = make_key(REGION, events_may_publish())
    topic = tag("TopicArn", sns("CreateTopic", {"Name": "ev-drift", "Attributes.entry.1.key": "KmsMasterKeyId",
                                                "Attributes.entry.1.value": key}))
    sns("SetTopicAttributes", {"TopicArn": topic, "AttributeName": "Policy", "AttributeValue": topic_policy(topic)})
    status, body = target("AmazonSQS", "sqs", "CreateQueue", {"QueueName": "ev-inbox"}, REGION, version="1.0")
    assert status == 200, body
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ev-inbox"
    status, body = target("AmazonSQS", "sqs", "SetQueueAttributes", {"QueueUrl": body["QueueUrl"], "Attributes": {
        "Policy": json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue, "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]})}}, REGION, version="1.0")
    assert status == 200, body
    sns("Subscribe", {"TopicArn": topic, "Protocol": "sqs", "Endpoint": queue})
    events("PutRule", {"Name": RULE, "EventPattern": json.dumps({"source": ["assure"]})})
    events("PutTargets", {"Rule": RULE, "Targets": [{"Id": "topic", "Arn": topic, "InputTransformer": {
        "InputPathsMap": {"summary": "$.detail.summary", "account": "$.detail.account"},
        "InputTemplate": "<summary> (account <account>)"}}]})
    return topic, key, queue


STATE: dict = {}


def fixture() -> tuple[str, str, str]:
    if not STATE:
        STATE["made"] = setup_topic()
    topic, key, queue = STATE["made"]
    set_key_policy(REGION, key, events_may_publish())
    sns("SetTopicAttributes", {"TopicArn": topic, "AttributeName": "KmsMasterKeyId", "AttributeValue": key})
    sns("SetTopicAttributes", {"TopicArn": topic, "AttributeName": "Policy", "AttributeValue": topic_policy(topic)})
    return topic, key, queue


def put_drift(summary: str) -> None:
    detail = json.dumps({"summary": summary, "account": "111122223333"})
    out = events("PutEvents", {"Entries": [{"Source": "assure", "DetailType": "Assure Control Drift", "Detail": detail}]})
    assert out["FailedEntryCount"] == 0, out
    sns_service.settle()


def drained() -> list[str]:
    """The notifications the queue received since the last call: each one's Message."""
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT][REGION].get_queue("ev-inbox")
    out = [json.loads(m.body)["Message"] for m in queue._messages]
    queue._messages.clear()
    return out


def failed_invocations() -> float:
    from moto.cloudwatch.models import cloudwatch_backends

    data = cloudwatch_backends[ACCOUNT][REGION].metric_data
    return sum(float(getattr(d, "value", 0.0)) for d in data
               if d.namespace == "AWS/Events" and d.name == "FailedInvocations" and any(dim.value == RULE for dim in d.dimensions))


def test_a_text_template_fills_in_strings_as_they_are():
    event = {"id": "e-1", "detail": {"summary": 'trail "x" off', "n": 3, "cis": None}}
    paths = {"s": "$.detail.summary", "n": "$.detail.n", "c": "$.detail.cis", "m": "$.detail.missing", "id": "$.id"}
    assert eb.text_template("<s>; <n>; [<c>]; [<m>]", paths, event) == 'trail "x" off; 3; []; []'
    template = {"InputTransformer": {"InputPathsMap": paths, "InputTemplate": "<s> (event <id>)"}}
    assert eb.target_input(template, event) == b'trail "x" off (event e-1)'


def test_eventbridge_publishes_the_transformed_text_where_the_topic_and_its_key_admit_it():
    fixture()
    drained()
    put_drift("Account 111122223333: cloudtrail.all-regions no longer holds")
    assert drained() == ["Account 111122223333: cloudtrail.all-regions no longer holds (account 111122223333)"]


def test_a_topic_policy_without_eventbridge_fails_the_invocation_and_publishes_nothing():
    topic, _, _ = fixture()
    drained()
    before = failed_invocations()
    other = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/someone-else"
    sns("SetTopicAttributes", {"TopicArn": topic, "AttributeName": "Policy", "AttributeValue": topic_policy(topic, other)})
    put_drift("not published")
    assert drained() == []
    assert failed_invocations() == before + 1


def test_a_key_eventbridge_may_not_use_fails_the_invocation():
    topic, key, _ = fixture()
    drained()
    before = failed_invocations()
    set_key_policy(REGION, key, events_may_publish(f"arn:aws:sns:{REGION}:{ACCOUNT}:another-topic"))
    put_drift("not published")
    assert drained() == []
    assert failed_invocations() == before + 1
    # Held to the rule by aws:SourceArn, the key admits nothing: EventBridge's publishing to an
    # encrypted topic does not bring the source keys to KMS.
    set_key_policy(REGION, key, events_may_publish_from(RULE_ARN))
    put_drift("not published")
    assert drained() == []
    assert failed_invocations() == before + 2
    # The AWS managed key admits no service.
    set_key_policy(REGION, key, events_may_publish())
    sns("SetTopicAttributes", {"TopicArn": topic, "AttributeName": "KmsMasterKeyId", "AttributeValue": "alias/aws/sns"})
    put_drift("not published either")
    assert drained() == []
    assert failed_invocations() == before + 3
