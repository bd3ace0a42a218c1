"""EventBridge as the local cloud delivers it: events on a bus (AWS's and moto's own), rules' targets (another bus, a state machine, a Firehose stream) invoked as their role, topics as their policy admits, and Firehose's buffered writes to S3."""

from __future__ import annotations

import copy
import datetime
import gzip
import io
import json
import re
import sys
import threading
import time
import uuid
import zipfile
from typing import Any

from assure_local import authz, aws_request, core, iam, policies, principals, rules, scheduler, stack_model
from assure_local.core import replace

_MUTEX = threading.Lock()


def iso(when: datetime.datetime | None = None, fraction: bool = True) -> str:
    when = when or datetime.datetime.now(datetime.UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] if fraction else when.strftime("%Y-%m-%dT%H:%M:%S")
    return text + "Z"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Events that reached a bus: (account, Region, bus, event), the newest last (for tests and debugging).
RECEIVED: list[tuple[str, str, str, dict]] = []


_ROUTE = threading.local()


MAX_HOPS = 5


def emit(acct: str, region: str, analyzer: dict, finding: dict) -> None:
    """The finding's event on the analyzer account's default bus in its Region."""
    detail = {"version": "1.0", "id": finding["id"], "status": finding["status"],
              "resourceType": finding["resourceType"], "resource": finding["resource"],
              "createdAt": finding["createdAt"], "analyzedAt": finding["analyzedAt"], "updatedAt": finding["updatedAt"],
              "accountId": finding["resourceOwnerAccount"], "region": region, "principal": finding["principal"],
              "action": finding["action"], "condition": finding["condition"], "isPublic": finding["isPublic"],
              "isDeleted": False}
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Access Analyzer Finding",
             "source": "aws.access-analyzer", "account": acct, "time": iso(fraction=False), "region": region,
             "resources": [analyzer["arn"]], "detail": detail}
    to_bus(acct, region, "default", event, sender=acct)


def to_bus(account: str, region: str, bus_name: str, event: dict, sender: str) -> None:
    """`event` arriving on a bus: each of its rules runs."""
    from moto.events.models import events_backends

    bus = events_backends[account][region].event_buses.get(bus_name)
    if bus is None:
        return
    RECEIVED.append((account, region, bus_name, event))
    del RECEIVED[:-500]
    outer = getattr(_ROUTE, "stack", [])
    _ROUTE.stack = outer + [sender]
    try:
        for rule in list(bus.rules.values()):
            rule.send_to_targets(event)  # type: ignore[arg-type]  # moto's EventMessageType is this dict
    finally:
        _ROUTE.stack = outer


def aws_event(event: dict) -> dict:
    """The event as AWS sends it to a target: `time` ISO 8601 (moto's own PutEvents keeps epoch
    seconds, and an `ingestion-time` of its own)."""
    event = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(event.get("time"), (int, float)):
        event["time"] = iso(datetime.datetime.fromtimestamp(event["time"], datetime.UTC), fraction=False)
    return event


def moto_event(event: dict) -> dict:
    """The event as moto's own targets (logs, SQS) expect it: `time` in epoch seconds."""
    if isinstance(event.get("time"), str):
        when = datetime.datetime.strptime(event["time"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
        event = dict(event, time=when.timestamp())
    if "ingestion-time" not in event:
        event = dict(event, **{"ingestion-time": time.time()})
    return event


def metric(account: str, region: str, namespace: str, name: str, dims: list[dict], value: float = 1.0) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[account][region].put_metric_data(
        namespace, [{"MetricName": name, "Value": value, "Unit": "Count", "Dimensions": dims}])


def failed(rule: Any, target: dict, why: str) -> None:
    """A target EventBridge could not invoke: AWS/Events FailedInvocations for the rule
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html)."""
    metric(rule.account_id, rule.region_name, "AWS/Events", "FailedInvocations",
           [{"Name": "RuleName", "Value": rule.name}])
    log(f"events rule {rule.arn}: target {target.get('Id')} ({target.get('Arn')}) not invoked: {why}")


def role_session(role_arn: str, session: str) -> Any:
    role = policies.role_by_arn(role_arn)
    owner = role_arn.split(":")[4]
    return principals.role_principal(role, f"arn:aws:sts::{owner}:assumed-role/{role.name}/{session}")


def role_refusal(rule: Any, target: dict) -> tuple[str | None, Any]:
    """(why EventBridge cannot act as the target's role for the rule, the role's session)."""
    role_arn = target.get("RoleArn")
    if not role_arn:
        return "the target has no role (RoleArn)", None
    why = rules.unusable_role("events.amazonaws.com", role_arn, rule.arn)
    if why is not None:
        return f"EventBridge cannot assume {role_arn}: {why}", None
    return None, role_session(role_arn, uuid.uuid4().hex[:16])


def invoke_bus(rule: Any, target: dict, event: dict) -> None:
    from moto.events.models import events_backends

    m = re.match(r"^arn:aws:events:([^:]+):(\d{12}):event-bus/(.+)$", target["Arn"])
    if m is None:
        return failed(rule, target, "not an event bus ARN")
    region, account, name = m.groups()
    stack = getattr(_ROUTE, "stack", [])
    if len(stack) >= MAX_HOPS:
        return failed(rule, target, "the event has crossed too many buses")
    received_from = stack[-1] if stack else rule.account_id
    if received_from != rule.account_id and account not in (rule.account_id, received_from):
        # Events received from another account are not sent on to a third (eb-cross-account.html);
        # an account's own events go to any account whose bus admits them.
        return
    try:
        bus = events_backends[account][region].event_buses.get(name)
    except KeyError:  # not a Region
        bus = None
    if bus is None:
        return failed(rule, target, f"event bus {target['Arn']} does not exist")
    if policies.enabled():
        if target.get("RoleArn"):
            why, principal = role_refusal(rule, target)
            if why is None:
                req = aws_request.Req("events", "PutEvents", {}, region)
                ctx = authz.request_context(req, principal)
                res = iam.Resource(bus.arn, account, iam.parse(bus.policy), "events")
                decision = iam.decide(principal, "events:PutEvents", res, ctx, policies.scp_levels(principal))
                # Logged as every request's decision is: the role's use, for the least-privilege check.
                policies.record(principal, "events:PutEvents", bus.arn, decision.allowed)
                if not decision.allowed:
                    why = (f"{principal.shown()} is not authorized to perform: events:PutEvents on resource: "
                           f"{bus.arn} {decision.reason}")
        elif region != rule.region_name:
            why = "a target event bus in another Region takes a role (RoleArn)"
        else:
            # Same Region, another account, no role: the receiving bus's policy must admit the sender.
            sender = iam.Principal(kind="root", account=rule.account_id, arn=f"arn:aws:iam::{rule.account_id}:root")
            direct, delegated, deny = iam.resource_effects(iam.parse(bus.policy), sender, "events:PutEvents", bus.arn,
                                                           {"aws:PrincipalAccount": rule.account_id})
            why = None if account == rule.account_id or ((direct or delegated) and not deny) else \
                f"the policy of {bus.arn} does not admit account {rule.account_id}"
        if why is not None:
            return failed(rule, target, why)
    to_bus(account, region, name, copy.deepcopy(event), sender=rule.account_id)


def invoke_states(rule: Any, target: dict, event: dict) -> None:
    """A state machine target: EventBridge starts an execution, named at random, with the target's
    input, as the target's role (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html;
    the role needs states:StartExecution, eb-use-identity-based.html). The start goes through the local
    cloud's front door signed as the role's session, so IAM and the state machine's own checks apply;
    on a thread of its own, since a delivery holds the extension's lock."""

    m = re.match(r"^arn:aws:states:([^:]+):(\d{12}):stateMachine:(.+)$", target["Arn"])
    if m is None:
        return failed(rule, target, "not a state machine ARN")
    region = m.group(1)
    try:
        data = target_input(target, event).decode()
    except Exception as e:  # noqa: BLE001 - an InputTransformer that does not produce JSON moto can read
        return failed(rule, target, f"the target's input could not be made: {e}")
    role_arn = target.get("RoleArn")
    if not role_arn:
        return failed(rule, target, "the target has no role (RoleArn)")
    try:
        session = principals.service_session("events.amazonaws.com", role_arn, uuid.uuid4().hex[:16], rule.arn)
    except core.ApiError as e:
        return failed(rule, target, f"EventBridge cannot assume {role_arn}: {e.message}")

    def start() -> None:

        caller = stack_model.Caller(session.access_key_id, session.secret_access_key, session.session_token)
        try:
            stack_model.clients(caller, region)("stepfunctions").start_execution(
                stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=data)
        except Exception as e:  # noqa: BLE001 - refused (IAM, a missing machine, bad input): FailedInvocations
            with core.LOCK:
                failed(rule, target, str(e))

    threading.Thread(target=start, name="assure-events-states", daemon=True).start()


# Records Firehose holds before it writes them: (account, Region, stream) -> data of each record.
BUFFERS: dict[tuple[str, str, str], list[bytes]] = {}


def target_input(target: dict, event: dict) -> bytes:
    """What EventBridge sends a target: the event, or the target's Input, or its InputTransformer's
    output. A template that is a JSON object or array gives JSON (moto's template parser); any other
    template is text, each <variable> replaced by its value as it is, a string without quotes
    (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_InputTransformer.html:
    "InputTemplate": "<instance> is in state <status>")."""
    if target.get("Input"):
        return str(target["Input"]).encode()
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.models import EventTemplateParser

        template = str(transformer.get("InputTemplate") or "")
        paths = transformer.get("InputPathsMap", {})
        full = dict(event, **{"ingestion-time": time.time()})
        if not template.lstrip().startswith(("{", "[")):
            return text_template(template, paths, full).encode()
        out = EventTemplateParser.parse(input_template=template, input_paths_map=paths,
                                        event=full)  # type: ignore[arg-type]  # the event dict moto means
        return (out if isinstance(out, str) else json.dumps(out, separators=(",", ":"))).encode()
    return json.dumps(event, separators=(",", ":")).encode()


def text_template(template: str, paths: dict, event: dict) -> str:
    """A text input template filled in: strings as they are, other values as JSON, a path the event
    does not have as nothing."""
    from jsonpath_ng.ext import parse

    out = template
    for name, path in paths.items():
        found = parse(path).find(event)
        value = found[0].value if found else None
        text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        out = out.replace(f"<{name}>", text)
    return out


def invoke_sns(rule: Any, target: dict, event: dict) -> None:
    """A topic target: EventBridge publishes the target's input to the topic in the rule's Region as
    events.amazonaws.com, which the topic's policy (and an encrypted topic's key policy) must admit
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions,
    https://repost.aws/knowledge-center/sns-not-getting-eventbridge-notification)."""
    from moto.sns.models import sns_backends

    from assure_local.services import sns

    m = re.match(r"^arn:aws:sns:([^:]+):(\d{12}):([^:]+)$", target["Arn"])
    if m is None:
        return failed(rule, target, "not a topic ARN")
    region, account, _ = m.groups()
    if region != rule.region_name:
        return failed(rule, target, "a topic target must be in the rule's Region")
    if target.get("RoleArn"):
        return failed(rule, target, "the local cloud publishes to a topic by its policy only, not as a role (RoleArn)")
    topic = sns_backends[account][region].topics.get(target["Arn"])
    if topic is None:
        return failed(rule, target, f"topic {target['Arn']} does not exist")
    if policies.enabled():
        refused = sns.publish_refusal("events.amazonaws.com", rule.account_id, rule.arn, topic)
        if refused is not None:
            return failed(rule, target, refused[1])
    try:
        data = target_input(target, event).decode()
    except Exception as e:  # noqa: BLE001 - a template EventBridge cannot fill is a failed invocation
        return failed(rule, target, f"the target's input could not be made: {e}")
    topic.publish(data)


def invoke_firehose(rule: Any, target: dict, event: dict) -> None:
    from moto.firehose.models import firehose_backends


    m = re.match(r"^arn:aws:firehose:([^:]+):(\d{12}):deliverystream/(.+)$", target["Arn"])
    if m is None:
        return failed(rule, target, "not a delivery stream ARN")
    region, account, name = m.groups()
    if policies.enabled():
        why, principal = role_refusal(rule, target)
        if why is None and principal.account != account:
            why = f"the stream {target['Arn']} is in another account than the role"
        if why is None:
            denial = authz.authorize(principal, aws_request.Req("firehose", "PutRecord", {"DeliveryStreamName": name}, region))
            if denial is not None:
                why = denial.message
        if why is not None:
            return failed(rule, target, why)
    stream = firehose_backends[account][region].delivery_streams.get(name)
    if stream is None:
        return failed(rule, target, f"ResourceNotFoundException: Firehose {name} not found")
    if core.transitional(core.STREAMS_CREATING.get(stream.delivery_stream_arn)):
        return failed(rule, target, f"ResourceNotFoundException: Firehose {name} is not ACTIVE")
    try:
        data = target_input(target, event)
    except Exception as e:  # noqa: BLE001 - an InputTransformer that does not produce JSON moto can read
        return failed(rule, target, f"the target's input could not be made: {e}")
    key = (account, region, name)
    with _MUTEX:
        first = key not in BUFFERS
        BUFFERS.setdefault(key, []).append(data)
    if first:
        # Firehose buffers records (BufferingHints, 300 s by default for S3) before it writes them.
        scheduler.later(scheduler.delay(), lambda: flush_stream(key))


def flush_stream(key: tuple[str, str, str]) -> None:
    """The stream's buffered records, written as one batch as the stream's role (the extension's
    PutRecordBatch path: put_batch_when_active, then checked_put)."""
    from moto.firehose.models import firehose_backends

    with _MUTEX:
        records = BUFFERS.pop(key, [])
    if not records:
        return
    account, region, name = key
    try:
        firehose_backends[account][region].put_record_batch(name, [{"Data": r} for r in records])
    except Exception as e:  # noqa: BLE001 - the stream went away, or is no longer ACTIVE: the records are lost
        log(f"firehose {name} ({account}, {region}): {len(records)} buffered record(s) not delivered: {e}")


def firehose_s3_write(backend: Any, name: str, version_id: str, dest: dict, records: list[dict]) -> list[dict]:
    """Writes a batch to the stream's S3 destination as Firehose names and encodes it: the records
    concatenated (a newline after each with the AppendDelimiterToRecord processor), compressed as
    CompressionFormat says with its file extension (GZIP `.gz`, ZIP `.zip`), or the stream's
    FileExtension, under `PREFIX` + `YYYY/MM/dd/HH/` + `STREAM-VERSION-YYYY-MM-dd-HH-MM-SS-UUID`
    (https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html; moto's name), SSE-KMS with
    the stream's key when it has one. Called by services/firehose.py's checked_put once the write is allowed."""
    delimiter = any(p.get("Type") == "AppendDelimiterToRecord"
                    for p in ((dest.get("ProcessingConfiguration") or {}).get("Processors") or []))
    data = b"".join(bytes(r["Data"]) + (b"\n" if delimiter else b"") for r in records)
    compression = dest.get("CompressionFormat") or "UNCOMPRESSED"
    extension_ = ""
    if compression == "GZIP":
        data, extension_ = gzip.compress(data), ".gz"
    elif compression == "ZIP":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, data)
        data, extension_ = buf.getvalue(), ".zip"
    extension_ = dest.get("FileExtension") or extension_
    key = backend._format_s3_object_path(name, version_id, dest.get("Prefix", "")) + extension_
    kms = ((dest.get("EncryptionConfiguration") or {}).get("KMSEncryptionConfig") or {}).get("AWSKMSKeyARN")
    bucket = dest["BucketARN"].split(":")[-1]
    scheduler.put_object(bucket, key, data, kms, "application/octet-stream")
    return [{"RecordId": str(uuid.uuid4())} for _ in records]


def scheduled(rule: Any, event: dict) -> None:
    """A scheduled rule's Scheduled Event sent to its targets (schedules.py): that rule's pattern,
    if it has one too, does not apply to its own schedule."""
    _ROUTE.scheduled = rule
    try:
        rule.send_to_targets(event)
    finally:
        _ROUTE.scheduled = None


def install_events() -> None:
    """moto's Rule.send_to_targets, extended: disabled rules match nothing; event bus, Firehose, Step
    Functions and SNS targets are invoked as EventBridge invokes them (above); moto's own targets (CloudWatch Logs, SQS,
    archives, API destinations) as moto did."""
    from moto.events import models as ev

    original = ev.Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        # "A rule can be ENABLED or DISABLED ... a disabled rule doesn't match any events"
        # (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DisableRule.html: "When you
        # disable a rule, incoming events don't trigger it"). A scheduled rule has no event pattern
        # and matches no event: only its schedule triggers it (schedules.py; moto's empty pattern
        # would match every event on the bus).
        firing = getattr(_ROUTE, "scheduled", None) is self
        if self.state != "ENABLED":
            return
        if not firing and (not self.event_pattern.matches_event(original_event)
                           or (self.scheduled_expression and not self.event_pattern._pattern)):
            return
        event = aws_event(original_event)
        for target in list(self.targets):
            arn = str(target.get("Arn", ""))
            service, resource = arn.split(":")[2] if arn.count(":") >= 5 else "", arn.split(":", 5)[-1]
            metric(self.account_id, self.region_name, "AWS/Events", "Invocations",
                   [{"Name": "RuleName", "Value": self.name}])
            if service == "events" and resource.startswith("event-bus/"):
                invoke_bus(self, target, event)
            elif service == "firehose":
                invoke_firehose(self, target, event)
            elif service == "states":
                invoke_states(self, target, event)
            elif service == "sns":
                invoke_sns(self, target, event)
            else:
                only = copy.copy(self)
                only.targets = [target]
                try:
                    original(only, moto_event(original_event), transform_input)  # type: ignore[arg-type]  # the event dict moto means
                except NotImplementedError:
                    failed(self, target, "the local cloud does not invoke this kind of target")

    replace(ev.Rule, "send_to_targets", send_to_targets)
