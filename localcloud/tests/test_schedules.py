"""EventBridge's scheduled rules (schedules.py): a scheduled rule matches no event, fires only when
its schedule comes due, or when /assure-api/schedules fires it now.

    VENV/bin/python -m pytest tests/test_schedules.py
"""

import json

from assure_local import schedules
from tests import authz_client
from tests.authz_client import ACCOUNT, REGION, call, json_call


def setup_module() -> None:
    authz_client.setUpModule()


def events(operation: str, body: dict) -> tuple[int, dict]:
    status, text = json_call(f"AWSEvents.{operation}", "events", body)
    return status, json.loads(text or "{}")


def queue_with_messages(name: str) -> str:
    """A queue the rule's target sends to: its ARN."""
    from moto.sqs.models import sqs_backends

    return sqs_backends[ACCOUNT][REGION].create_queue(name).queue_arn


def received(name: str) -> list[dict]:
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[ACCOUNT][REGION].get_queue(name)
    return [json.loads(m.body) for m in queue._messages]


def scheduled_rule(name: str, expression: str) -> None:
    assert events("PutRule", {"Name": name, "ScheduleExpression": expression})[0] == 200
    arn = queue_with_messages(name)
    assert events("PutTargets", {"Rule": name, "Targets": [{"Id": "q", "Arn": arn}]})[0] == 200


def fire(doc: dict) -> tuple[int, dict]:
    status, text = call("POST", "/assure-api/schedules", {"Content-Type": "application/json"}, json.dumps(doc))
    return status, json.loads(text)


def test_rates_are_read_as_eventbridge_writes_them():
    assert schedules.period("rate(1 day)") == 86_400
    assert schedules.period("rate(5 minutes)") == 300
    assert schedules.period("rate(2 hours)") == 7200
    assert schedules.period("cron(0 6 * * ? *)") is None
    assert schedules.period("rate(0 days)") is None


def test_a_scheduled_rule_matches_no_event_put_on_its_bus():
    scheduled_rule("sched-quiet", "rate(1 day)")
    entry = {"Source": "assure", "DetailType": "Assure Control Drift", "Detail": "{}"}
    assert events("PutEvents", {"Entries": [entry]})[0] == 200
    assert received("sched-quiet") == []


def test_firing_sends_the_scheduled_event_to_the_targets():
    scheduled_rule("sched-fired", "rate(1 day)")
    status, body = fire({"account": ACCOUNT, "region": REGION, "rule": "sched-fired"})
    assert status == 200, body
    got = received("sched-fired")
    assert len(got) == 1, got
    assert got[0]["detail-type"] == "Scheduled Event" and got[0]["source"] == "aws.events"
    assert got[0]["resources"] == [body["fired"]]
    listed = call("GET", "/assure-api/schedules")[1]
    assert any(r["rule"] == "sched-fired" and r["lastFired"] for r in json.loads(listed)["rules"])


def test_a_rule_fires_on_its_own_once_its_rate_has_elapsed_and_a_disabled_one_never():
    scheduled_rule("sched-due", "rate(1 minute)")
    rule = next(r for r in schedules.scheduled_rules() if r.name == "sched-due")
    now = 1_000_000.0
    schedules.LAST.pop((ACCOUNT, REGION, "sched-due"), None)
    assert rule not in schedules.due(now), "a rule seen for the first time starts its clock"
    assert rule not in schedules.due(now + 59)
    assert rule in schedules.due(now + 60)
    assert events("DisableRule", {"Name": "sched-due"})[0] == 200
    assert rule not in schedules.due(now + 600)


def test_firing_names_what_is_wrong():
    assert fire({"account": "1", "region": REGION, "rule": "x"})[0] == 400
    status, body = fire({"account": ACCOUNT, "region": REGION, "rule": "no-such-rule"})
    assert status == 404 and "no-such-rule" in body["message"], body
    scheduled_rule("sched-off", "rate(1 day)")
    assert events("DisableRule", {"Name": "sched-off"})[0] == 200
    assert fire({"account": ACCOUNT, "region": REGION, "rule": "sched-off"})[0] == 409


def test_put_events_is_authorized_on_each_entrys_event_bus():
    # The watch step's grant: events:PutEvents on its account's default bus, by ARN.
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}]})
    role = authz_client.make_role("put-default-bus", authz_client.TRUST_ACCOUNT, policy)
    key, token = authz_client.assume(role)
    entry = {"Source": "assure", "DetailType": "Assure Control Drift", "Detail": "{}"}

    def put(entries: list[dict]) -> tuple[int, str]:
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "AWSEvents.PutEvents",
                   **authz_client.auth(key, "events"), "X-Amz-Security-Token": token}
        return call("POST", "/", headers, json.dumps({"Entries": entries}))

    assert put([entry])[0] == 200
    assert put([dict(entry, EventBusName="default")])[0] == 200
    assert put([dict(entry, EventBusName=bus)])[0] == 200
    assert events("CreateEventBus", {"Name": "elsewhere"})[0] == 200
    status, body = put([entry, dict(entry, EventBusName="elsewhere")])
    assert "AccessDeniedException" in body and "event-bus/elsewhere" in body, (status, body)
