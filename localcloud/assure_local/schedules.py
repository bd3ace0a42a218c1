"""EventBridge's scheduled rules, fired as EventBridge fires them: when a rule's schedule comes
due, EventBridge sends each of its targets a Scheduled Event
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-run-lambda-schedule.html):
`{"detail-type": "Scheduled Event", "source": "aws.events", "resources": [RULE ARN], "detail": {}}`.

Time passes two ways here:
- on its own: a thread fires every enabled rule whose `rate(...)` has elapsed since the rule was
  first seen or last fired (a `cron(...)` rule is fired only on demand);
- on demand: POST /assure-api/schedules {"account", "region", "rule"} fires one rule now, as if its
  time had come, which is how a test or an operator skips a day. GET lists the scheduled rules
  with when each last fired.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from assure_local import core, events

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}

# (account, Region, rule name) -> when the rule was first seen or last fired (epoch seconds).
LAST: dict[tuple[str, str, str], float] = {}

# How often the thread looks for rules that are due.
TICK = 5.0


def period(expression: str | None) -> float | None:
    """The seconds between two firings of a `rate(...)` expression; None for anything else."""
    m = RATE.match(expression or "")
    if m is None or int(m.group(1)) < 1:
        return None
    return int(m.group(1)) * SECONDS[m.group(2).rstrip("s")]


def scheduled_rules() -> list[Any]:
    """Every rule with a schedule expression, of every account and Region (default bus: AWS puts
    scheduled rules only there)."""
    from moto.events.models import events_backends

    found: list[Any] = []
    for _account, regions in list(events_backends.items()):
        for _region, backend in list(regions.items()):
            bus = backend.event_buses.get("default")
            found.extend(r for r in list(getattr(bus, "rules", {}).values()) if r.scheduled_expression)
    return found


def fire(rule: Any) -> dict:
    """Sends `rule`'s targets its Scheduled Event now (an ENABLED rule only); returns the event."""
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": rule.account_id, "time": events.iso(fraction=False), "region": rule.region_name,
             "resources": [rule.arn], "detail": {}}
    LAST[(rule.account_id, rule.region_name, rule.name)] = time.time()
    events.scheduled(rule, event)
    return event


def due(now: float) -> list[Any]:
    """The enabled rules whose rate has elapsed; a rule seen for the first time starts its clock."""
    out = []
    for rule in scheduled_rules():
        key = (rule.account_id, rule.region_name, rule.name)
        every = period(rule.scheduled_expression)
        if key not in LAST:
            LAST[key] = now
        elif rule.state == "ENABLED" and every is not None and now - LAST[key] >= every:
            out.append(rule)
    return out


def start() -> None:
    """The thread that fires rules as their time comes."""

    def loop() -> None:
        while True:
            time.sleep(TICK)
            with core.LOCK:
                for rule in due(time.time()):
                    fire(rule)

    threading.Thread(target=loop, name="assure-schedules", daemon=True).start()


def api(environ: dict, start_response: Callable) -> list[bytes]:
    """POST {"account", "region", "rule"}: fires the rule now; GET: the scheduled rules."""
    respond = core.respond
    doc = core.api_doc(environ)
    if doc is None:
        return respond(start_response, 400, {"message": "a JSON object"}, error="ValidationError")
    with core.LOCK:
        rules = scheduled_rules()
        if environ.get("REQUEST_METHOD", "GET") == "GET":
            listed = [{"account": r.account_id, "region": r.region_name, "rule": r.name, "arn": r.arn,
                       "schedule": r.scheduled_expression, "state": r.state,
                       "lastFired": LAST.get((r.account_id, r.region_name, r.name))} for r in rules]
            return respond(start_response, 200, {"rules": listed})
        account, region, name = (str(doc.get(k, "")) for k in ("account", "region", "rule"))
        if not re.fullmatch(r"\d{12}", account) or not region or not name:
            return respond(start_response, 400, {"message": "account: 12 digits; region; rule: a rule's name"},
                           error="ValidationError")
        rule = next((r for r in rules if (r.account_id, r.region_name, r.name) == (account, region, name)), None)
        if rule is None:
            return respond(start_response, 404, {"message": f"no scheduled rule {name} in {account} {region}"},
                           error="ResourceNotFoundException")
        if rule.state != "ENABLED":
            return respond(start_response, 409, {"message": f"rule {name} is {rule.state}: a disabled rule does not fire"},
                           error="ConflictException")
        event = fire(rule)
    return respond(start_response, 200, {"fired": rule.arn, "event": event})
