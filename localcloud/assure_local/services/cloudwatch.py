"""CloudWatch over Smithy RPC v2 CBOR, the protocol the current AWS SDKs speak to it: translated to moto's JSON and back."""

from __future__ import annotations

import datetime
import functools
import io
import json
import re
from collections.abc import Callable
from typing import Any

from assure_local import core, iam
from assure_local.aws_request import Req
from assure_local.deliver_services import epoch_ms, install, later, mine, utcnow
from assure_local.iam import as_list
from assure_local.rules import Refusal


class CborBridge:
    PATH = re.compile(r"^/service/([A-Za-z0-9_]+)/operation/([A-Za-z0-9_]+)$")

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}

    def model(self, signing: str) -> Any:
        if signing not in self.models:
            import botocore.session

            names = {"monitoring": "cloudwatch"}
            self.models[signing] = botocore.session.get_session().get_service_model(names.get(signing, signing))
        return self.models[signing]

    def owns(self, environ: dict) -> re.Match | None:
        if "cbor" not in (environ.get("CONTENT_TYPE") or "") and environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor":
            return None
        return self.PATH.match(environ.get("PATH_INFO", ""))

    @staticmethod
    def to_json(value: Any) -> Any:
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, dict):
            return {k: CborBridge.to_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [CborBridge.to_json(v) for v in value]
        if isinstance(value, bytes):
            import base64

            return base64.b64encode(value).decode()
        return value

    def __call__(self, moto_app: Callable, environ: dict, start_response: Callable, signing: str,
                 match: re.Match) -> list[bytes]:

        import cbor2
        from botocore.parsers import JSONParser

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        params = cbor2.loads(raw) if raw else {}
        body = json.dumps(self.to_json(params)).encode()
        namespace, operation = match.groups()
        inner = dict(environ)
        inner.update({"PATH_INFO": "/", "QUERY_STRING": "", "CONTENT_TYPE": "application/x-amz-json-1.0",
                      "HTTP_X_AMZ_TARGET": f"{namespace}.{operation}", "CONTENT_LENGTH": str(len(body)),
                      "wsgi.input": io.BytesIO(body)})
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        answer = b"".join(moto_app(inner, capture))
        status = int(captured["status"].split()[0])
        headers = {k.lower(): v for k, v in captured["headers"]}
        op = self.model(signing).operation_model(operation)
        if status >= 300:
            try:
                err = json.loads(answer or b"{}")
            except ValueError:
                err = {}
            code = (err.get("__type") or headers.get("x-amzn-errortype") or "InternalFailure").split("#")[-1]
            code = code.split(":")[0]
            doc = {"__type": code, "message": err.get("message") or err.get("Message") or ""}
            return core.respond(start_response, status, doc, error=code, cbor=True)
        parsed = JSONParser().parse({"status_code": status, "headers": headers, "body": answer}, op.output_shape)
        parsed.pop("ResponseMetadata", None)
        return core.respond(start_response, 200, parsed, cbor=True)


def cloudwatch_delete_alarms(req: Req, account: str, raw: bytes) -> Refusal | None:
    # DeleteAlarms: "If you specify any alarm that does not exist, ... no alarms are deleted" and the call
    # fails with ResourceNotFound (HTTP 404); moto deletes the others and succeeds.
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteAlarms.html
    if req.service != "monitoring" or req.operation != "DeleteAlarms":
        return None
    from moto.cloudwatch.models import cloudwatch_backends

    existing = cloudwatch_backends[account][req.region].alarms
    missing = [n for n in as_list(req.params.get("AlarmNames")) if n not in existing]
    if missing:
        return Refusal(404, "ResourceNotFound", f"{', '.join(missing)} not found")
    return None


CLOUDWATCH = "cloudwatch.amazonaws.com"


# (account, region) -> AlarmHistoryItems, oldest first
HISTORY: dict[tuple[str, str], list[dict]] = {}


KMS_REFUSED = "CloudWatch Alarms does not have authorization to access the SNS topic encryption key."


@functools.lru_cache(maxsize=64)
def region_name(region: str) -> str:
    """The Region's long name, as an alarm's notification writes it ("Region": "US East (N. Virginia)")."""
    import botocore.session

    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        found = partition.get("regions", {}).get(region)
        if found:
            return str(found.get("description", region))
    return region


def cw_time(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def history_add(account: str, region: str, alarm: Any, kind: str, summary: str, data: dict,
                when: datetime.datetime | None = None) -> None:
    HISTORY.setdefault((account, region), []).append({
        "AlarmName": alarm.name, "AlarmType": "CompositeAlarm" if getattr(alarm, "rule", None) else "MetricAlarm",
        "Timestamp": when or utcnow(), "HistoryItemType": kind, "HistorySummary": summary,
        "HistoryData": json.dumps(data)})


def alarm_message(account: str, region: str, alarm: Any, old: str, when: datetime.datetime) -> dict:
    """The notification CloudWatch publishes for a metric alarm's state change (the schema of "Schema when
    a metric alarm changes state": https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html)."""
    dims = [{"value": d.value, "name": d.name} for d in getattr(alarm, "dimensions", []) or []]
    return {
        "AlarmName": alarm.name, "AlarmDescription": alarm.description, "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": cw_time(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value, "NewStateReason": alarm.state_reason, "StateChangeTime": cw_time(when),
        "Region": region_name(region), "AlarmArn": alarm.alarm_arn, "OldStateValue": old,
        "OKActions": list(alarm.ok_actions or []), "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
        "Trigger": {"MetricName": alarm.metric_name, "Namespace": alarm.namespace, "StatisticType": "Statistic",
                    "Statistic": str(alarm.statistic or "").upper(), "Unit": alarm.unit, "Dimensions": dims,
                    "Period": alarm.period, "EvaluationPeriods": alarm.evaluation_periods,
                    "DatapointsToAlarm": alarm.datapoints_to_alarm, "ComparisonOperator": alarm.comparison_operator,
                    "Threshold": alarm.threshold, "TreatMissingData": alarm.treat_missing_data or "",
                    "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or ""},
    }


def everyone_as_star(doc: dict | None) -> dict | None:
    """A topic policy with Principal {"AWS": "*"} read as "*": the default topic policy (everyone, on
    AWS:SourceOwner the topic's account) lets the account's own alarms publish, as CloudWatch's guide
    asks no topic policy of an alarm publishing to its own account's topic and AWS's troubleshooting
    names one only when the history shows the publish refused
    (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger)."""
    if not doc:
        return doc
    out = json.loads(json.dumps(doc))
    for stmt in iam.statements(out):
        p = stmt.get("Principal")
        if isinstance(p, dict) and "*" in iam.as_list(p.get("AWS")):
            stmt["Principal"] = "*"
    return out


def publish_refusal(account: str, alarm_arn: str, topic: Any) -> str | None:
    """Why CloudWatch cannot publish the alarm's notification to `topic` (sns.publish_refusal, with
    the alarm as the source, a principal of everyone read as "*"), in the texts the alarm history
    shows (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger)."""
    from assure_local.services import sns

    refused = sns.publish_refusal(CLOUDWATCH, account, alarm_arn, topic, everyone_as_star(iam.parse(topic.policy)))
    if refused is None:
        return None
    if refused[0] == "policy":
        return f"Resource: {alarm_arn} is not authorized to perform: SNS:Publish on resource: {topic.arn}"
    return KMS_REFUSED


def execute_action(account: str, region: str, alarm_name: str, action: str, message: dict, subject: str,
                   state_time: datetime.datetime) -> None:
    """CloudWatch executes one alarm action (an SNS topic) and records the outcome in the alarm's
    history: "Successfully executed action TOPIC" or "Failed to execute action TOPIC. Received error:
    "…"" (the texts of https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger),
    HistoryData {actionState, stateUpdateTimestamp, notificationResource, publishedMessage | error}."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.sns.models import sns_backends

    alarm = cloudwatch_backends[account][region].alarms.get(alarm_name)
    if alarm is None:
        return
    parts = action.split(":")
    if len(parts) < 6 or parts[2] != "sns":
        return  # Auto Scaling, EC2, Systems Manager, Lambda actions: not modelled
    topic = sns_backends[parts[4]][parts[3]].topics.get(action)
    data: dict[str, Any] = {"actionState": "Failed", "stateUpdateTimestamp": epoch_ms(state_time),
                            "notificationResource": action}
    error = "Topic does not exist" if topic is None else publish_refusal(account, alarm.alarm_arn, topic)
    if error is not None:
        data["error"] = error
        history_add(account, region, alarm, "Action", f'Failed to execute action {action}. Received error: "{error}"', data)
        return
    text = json.dumps(message)
    assert topic is not None  # refused above otherwise
    topic.publish(text, subject=subject)
    data.update(actionState="Succeeded", publishedMessage=text)
    history_add(account, region, alarm, "Action", f"Successfully executed action {action}", data)


def patch_cloudwatch() -> None:
    from moto.cloudwatch import models as cw_models
    from moto.cloudwatch import responses as cw
    from moto.core.responses import ActionResult

    set_state = cw_models.CloudWatchBackend.set_alarm_state
    if mine(set_state):
        return

    def set_alarm_state(self, alarm_name, reason, reason_data, state_value):
        """SetAlarmState: "When the updated state differs from the previous value, the action configured
        for the appropriate state is invoked" (API_SetAlarmState): the StateUpdate in the history now,
        each SNS action after the delay, if the alarm's actions are enabled."""
        alarm = self.alarms.get(alarm_name)
        old, old_reason = (alarm.state_value, alarm.state_reason) if alarm is not None else (None, None)
        set_state(self, alarm_name, reason, reason_data, state_value)
        alarm = self.alarms[alarm_name]
        if old == state_value:
            return
        now = utcnow()
        new_state: dict[str, Any] = {"stateValue": state_value, "stateReason": reason}
        if reason_data:
            try:
                new_state["stateReasonData"] = json.loads(reason_data)
            except ValueError:
                pass
        history_add(self.account_id, self.region_name, alarm, "StateUpdate", f"Alarm updated from {old} to {state_value}",
                    {"version": "1.0", "oldState": {"stateValue": old, "stateReason": old_reason}, "newState": new_state}, now)
        enabled = alarm.actions_enabled
        if isinstance(enabled, str):
            enabled = enabled.lower() == "true"
        if not enabled:
            return
        actions = {"ALARM": alarm.alarm_actions, "OK": alarm.ok_actions,
                   "INSUFFICIENT_DATA": alarm.insufficient_data_actions}.get(state_value) or []
        message = alarm_message(self.account_id, self.region_name, alarm, old or "", now)
        subject = f'{state_value}: "{alarm.name}" in {region_name(self.region_name)}'[:100]
        account, region = self.account_id, self.region_name
        for action in actions:
            def execute_alarm_action(action=action) -> None:
                execute_action(account, region, alarm_name, action, message, subject, now)

            later(execute_alarm_action)

    def describe_alarm_history(self):
        """DescribeAlarmHistory: AlarmName, AlarmTypes (metric alarms when omitted), HistoryItemType,
        StartDate, EndDate, ScanBy (newest first by default), MaxRecords (100), NextToken."""
        name = self._get_param("AlarmName")
        kind = self._get_param("HistoryItemType")
        types = self._get_param("AlarmTypes") or ["MetricAlarm"]
        start, end = self._get_param("StartDate"), self._get_param("EndDate")

        def when(value: Any) -> datetime.datetime | None:
            if value is None or value == "":
                return None
            if isinstance(value, datetime.datetime):
                return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
            if isinstance(value, (int, float)):
                return datetime.datetime.fromtimestamp(value, datetime.UTC)
            return datetime.datetime.fromisoformat(str(value))

        start, end = when(start), when(end)
        items = [i for i in HISTORY.get((self.current_account, self.region), [])
                 if (not name or i["AlarmName"] == name) and (not kind or i["HistoryItemType"] == kind)
                 and i["AlarmType"] in types and (start is None or i["Timestamp"] >= start)
                 and (end is None or i["Timestamp"] <= end)]
        items.sort(key=lambda i: i["Timestamp"], reverse=(self._get_param("ScanBy") or "TimestampDescending") == "TimestampDescending")

        return ActionResult(core.paged([dict(i) for i in items], "AlarmHistoryItems", self._get_param("NextToken"),
                                            self._get_param("MaxRecords"), 100, "NextToken"))

    install(cw_models.CloudWatchBackend, "set_alarm_state", set_alarm_state)
    install(cw.CloudWatchResponse, "describe_alarm_history", describe_alarm_history)
