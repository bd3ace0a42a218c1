"""Services acting on their own as their service principal (deliver_services.py): Config's snapshot (continued: GuardDutyExport, AlarmNotifications, BucketPoliciesWithoutEnforcement)."""

import gzip
import http.server
import json
import re
import threading
import time
import unittest
from typing import ClassVar

from assure_local.services import sns
from tests import authz_client, deliveries_client
from tests.authz_client import ACCOUNT, tag
from tests.deliveries_client import (
    ADMIN,
    WAIT,
    Creds,
    Received,
    cloudwatch,
    guardduty,
    keys_under,
    make_key,
    member,
    put_policy,
    query,
    s3,
    s3_get,
    set_key_policy,
    settle,
    target,
)
from tests.test_deliver_services import Delayed


def setUpModule() -> None:
    deliveries_client.setUpModule()


class GuardDutyExport(Delayed):
    """Sample findings, shown to the member and its administrator, exported by the administrator's
    publishing destination as its GuardDuty principal; the destination's status reports refusals."""

    REGION = "ca-central-1"
    BUCKET = "dsvc-findings"
    state: ClassVar[dict] = {}

    def detector(self, creds: Creds) -> str:
        status, body = guardduty("GET", "/detector", self.REGION, creds=creds)
        assert status == 200, body
        if body["detectorIds"]:
            return body["detectorIds"][0]
        status, body = guardduty("POST", "/detector", self.REGION, {"enable": True}, creds)
        assert status == 200, body
        return body["detectorId"]

    def bucket_statements(self) -> list[dict]:
        d = self.state
        service = {"Service": "guardduty.amazonaws.com"}
        source = {"StringEquals": {"aws:SourceAccount": ACCOUNT,
                                   "aws:SourceArn": f"arn:aws:guardduty:{self.REGION}:{ACCOUNT}:detector/{d['admin_detector']}"}}
        objects = f"arn:aws:s3:::{self.BUCKET}/gd/*"
        # The guide's example policy, statement by statement.
        return [
            {"Sid": "Allow GetBucketLocation", "Effect": "Allow", "Principal": service, "Action": "s3:GetBucketLocation",
             "Resource": f"arn:aws:s3:::{self.BUCKET}", "Condition": source},
            {"Sid": "Allow PutObject", "Effect": "Allow", "Principal": service, "Action": "s3:PutObject", "Resource": objects,
             "Condition": source},
            {"Sid": "Deny unencrypted object uploads", "Effect": "Deny", "Principal": service, "Action": "s3:PutObject",
             "Resource": objects, "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}},
            {"Sid": "Deny incorrect encryption header", "Effect": "Deny", "Principal": service, "Action": "s3:PutObject",
             "Resource": objects, "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": d["key"]}}},
            {"Sid": "Deny non-HTTPS access", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": objects,
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]

    def key_statements(self) -> list[dict]:
        d = self.state
        return [{"Sid": "AllowGuardDutyKey", "Effect": "Allow", "Principal": {"Service": "guardduty.amazonaws.com"},
                 "Action": "kms:GenerateDataKey", "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT,
                                                "aws:SourceArn": f"arn:aws:guardduty:{self.REGION}:{ACCOUNT}:detector/{d['admin_detector']}"}}}]

    def setUp(self):
        super().setUp()
        d = self.state
        if not d:
            d["member"], d["member_creds"] = member("dsvc-guardduty-member")
            d["admin_detector"] = self.detector(ADMIN)
            d["member_detector"] = self.detector(d["member_creds"])
            admin_detector = d["admin_detector"]
            status, body = guardduty("POST", f"/detector/{admin_detector}/member", self.REGION,
                                     {"accountDetails": [{"accountId": d["member"], "email": "m@example.com"}]})
            assert status == 200, body
            status, body = guardduty("POST", f"/detector/{admin_detector}/member/invite", self.REGION, {"accountIds": [d["member"]]})
            assert status == 200, body
            status, body = guardduty("GET", "/invitation", self.REGION, creds=d["member_creds"])
            invitation = body["invitations"][0]["invitationId"]
            status, body = guardduty("POST", f"/detector/{d['member_detector']}/administrator", self.REGION,
                                     {"administratorId": ACCOUNT, "invitationId": invitation}, d["member_creds"])
            assert status == 200, body
            status, _ = s3("PUT", f"/{self.BUCKET}")
            assert status in (200, 409)
            d["key"] = make_key(self.REGION, [])
            set_key_policy(self.REGION, d["key"], self.key_statements())
            put_policy(self.BUCKET, self.bucket_statements())
            status, body = guardduty("POST", f"/detector/{admin_detector}/publishingDestination", self.REGION, {
                "destinationType": "S3",
                "destinationProperties": {"destinationArn": f"arn:aws:s3:::{self.BUCKET}/gd", "kmsKeyArn": d["key"]}})
            assert status == 200, body
            d["destination"] = body["destinationId"]
            time.sleep(WAIT)
        set_key_policy(self.REGION, d["key"], self.key_statements())
        put_policy(self.BUCKET, self.bucket_statements())

    def destination(self) -> dict:
        d = self.state
        status, body = guardduty("GET", f"/detector/{d['admin_detector']}/publishingDestination/{d['destination']}", self.REGION)
        assert status == 200, body
        return body

    def sample(self, creds: Creds, detector: str) -> None:
        status, body = guardduty("POST", f"/detector/{detector}/findings/create", self.REGION,
                                 {"findingTypes": ["Recon:EC2/PortProbeUnprotectedPort"]}, creds)
        assert status == 200, body

    def exported(self) -> list[dict]:
        import datetime

        now = datetime.datetime.now(datetime.UTC)
        folder = f"gd/AWSLogs/{ACCOUNT}/GuardDuty/{self.REGION}/{now:%Y/%m/%d}/"
        out = []
        for key in keys_under(self.BUCKET, folder):
            assert re.search(r"/[0-9a-f-]{36}\.jsonl\.gz$", key)
            out += [json.loads(line) for line in gzip.decompress(s3_get(f"/{self.BUCKET}/{key}")).decode().splitlines() if line]
        return out

    def test_a_members_sample_finding_is_shown_to_both_and_exported_by_the_administrator(self):
        d = self.state
        before = {f["id"] for f in self.exported()}
        self.sample(d["member_creds"], d["member_detector"])

        def listed(creds: Creds, detector: str) -> list[str]:
            status, body = guardduty("POST", f"/detector/{detector}/findings", self.REGION, {"findingCriteria": {
                "criterion": {"accountId": {"eq": [d["member"]]}}}}, creds)
            assert status == 200, body
            return body["findingIds"]

        mine, theirs = listed(d["member_creds"], d["member_detector"]), listed(ADMIN, d["admin_detector"])
        assert mine
        assert set(mine) == set(theirs), "the administrator sees the member's findings"
        _status, body = guardduty("POST", f"/detector/{d['admin_detector']}/findings/get", self.REGION, {"findingIds": mine[-1:]})
        finding = body["findings"][0]
        assert (finding["accountId"], finding["type"], finding["schemaVersion"]) == \
                         (d["member"], "Recon:EC2/PortProbeUnprotectedPort", "2.0")
        assert json.loads(finding["service"]["additionalInfo"]["value"])["sample"]
        assert {f["id"] for f in self.exported()} == before, "exported after the delay"
        settle()
        new = [f for f in self.exported() if f["id"] not in before]
        assert len(new) == 1
        assert new[0]["accountId"] == d["member"]
        assert new[0]["service"]["additionalInfo"]["sample"] is True
        assert new[0]["id"] == mine[-1]
        assert (self.destination()["status"], self.destination()["publishingFailureStartTimestamp"]) == ("PUBLISHING", 0)

    def test_the_administrators_own_findings_are_exported(self):
        d = self.state
        before = {f["id"] for f in self.exported()}
        self.sample(ADMIN, d["admin_detector"])
        settle()
        new = [f for f in self.exported() if f["id"] not in before]
        assert [f["accountId"] for f in new] == [ACCOUNT]

    def test_a_bucket_policy_without_guarddutys_write_makes_the_destination_unable_to_publish(self):
        d = self.state
        before = len(self.exported())
        put_policy(self.BUCKET, [s for s in self.bucket_statements() if s["Sid"] != "Allow PutObject"])
        started = time.time() * 1000
        self.sample(d["member_creds"], d["member_detector"])
        settle()
        dest = self.destination()
        assert dest["status"] == "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
        assert dest["publishingFailureStartTimestamp"] >= started - 1000, "epoch milliseconds"
        put_policy(self.BUCKET, self.bucket_statements())
        assert len(self.exported()) == before
        self.sample(d["member_creds"], d["member_detector"])
        settle()
        assert (self.destination()["status"], self.destination()["publishingFailureStartTimestamp"]) == ("PUBLISHING", 0)
        assert len(self.exported()) == before + 1

    def test_a_key_policy_without_guardduty_makes_the_destination_unable_to_publish(self):
        d = self.state
        set_key_policy(self.REGION, d["key"], [])
        self.sample(ADMIN, d["admin_detector"])
        settle()
        assert self.destination()["status"] == "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
        set_key_policy(self.REGION, d["key"], self.key_statements())
        self.sample(ADMIN, d["admin_detector"])
        settle()
        assert self.destination()["status"] == "PUBLISHING"


class AlarmNotifications(Delayed):
    """SetAlarmState to ALARM: CloudWatch publishes to the alarm's encrypted topic as
    cloudwatch.amazonaws.com (topic policy, key policy), records the outcome in the alarm's history, and
    SNS delivers to the queue (its policy) and the HTTP endpoint, counted in AWS/SNS."""

    REGION = "us-west-2"
    state: ClassVar[dict] = {}

    def key_statements(self) -> list[dict]:
        return [{"Sid": "CloudWatchPublishesAlarms", "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                 "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                 "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                               "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:*:{ACCOUNT}:alarm:dsvc-*"}}}]

    def queue_policy(self) -> str:
        d = self.state
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": d["queue_arn"], "Condition": {"ArnEquals": {"aws:SourceArn": d["topic"]}}}]})

    def sns(self, action: str, params: dict) -> str:
        status, body = query("sns", action, params, "2010-03-31", region=self.REGION)
        assert status == 200, body
        return body

    def setUp(self):
        super().setUp()
        d = self.state
        if not d:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Received)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            d["server"] = server
            d["key"] = make_key(self.REGION, self.key_statements())
            d["topic"] = tag("TopicArn", self.sns("CreateTopic", {"Name": "dsvc-alarms", "Attributes.entry.1.key": "KmsMasterKeyId",
                                                                  "Attributes.entry.1.value": d["key"]}))
            status, body = target("AmazonSQS", "sqs", "CreateQueue", {"QueueName": "dsvc-inbox"}, self.REGION, version="1.0")
            assert status == 200, body
            d["queue_url"] = body["QueueUrl"]
            d["queue_arn"] = f"arn:aws:sqs:{self.REGION}:{ACCOUNT}:dsvc-inbox"
            self.sns("Subscribe", {"TopicArn": d["topic"], "Protocol": "sqs", "Endpoint": d["queue_arn"]})
            self.sns("Subscribe", {"TopicArn": d["topic"], "Protocol": "http",
                                   "Endpoint": f"http://127.0.0.1:{server.server_address[1]}/hook"})
            status, text = cloudwatch("PutMetricAlarm", {
                "AlarmName": "dsvc-root", "MetricName": "RootUsage", "Namespace": "Assure", "Statistic": "Sum",
                "Period": "300", "EvaluationPeriods": "1", "Threshold": "1", "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "ActionsEnabled": "true", "AlarmActions.member.1": d["topic"]}, self.REGION)
            assert status == 200, text
        set_key_policy(self.REGION, d["key"], self.key_statements())
        self.set_queue_policy(self.queue_policy())
        cloudwatch("SetAlarmState", {"AlarmName": "dsvc-root", "StateValue": "OK", "StateReason": "reset"}, self.REGION)

    @classmethod
    def tearDownClass(cls):

        sns.settle()
        if cls.state.get("server"):
            cls.state["server"].shutdown()
            cls.state["server"].server_close()

    def set_queue_policy(self, policy: str) -> None:
        status, body = target("AmazonSQS", "sqs", "SetQueueAttributes", {"QueueUrl": self.state["queue_url"],
                                                                          "Attributes": {"Policy": policy}}, self.REGION, version="1.0")
        assert status == 200, body

    def alarm(self) -> None:
        status, body = cloudwatch("SetAlarmState", {"AlarmName": "dsvc-root", "StateValue": "ALARM",
                                                    "StateReason": "canary"}, self.REGION)
        assert status == 200, body

    def history(self, kind: str) -> list[dict]:
        status, body = target("GraniteServiceVersion20100801", "monitoring", "DescribeAlarmHistory",
                              {"AlarmName": "dsvc-root", "HistoryItemType": kind}, self.REGION, version="1.0")
        assert status == 200, body
        return body["AlarmHistoryItems"]

    def received(self) -> list[dict]:
        status, body = target("AmazonSQS", "sqs", "ReceiveMessage", {"QueueUrl": self.state["queue_url"],
                                                                      "MaxNumberOfMessages": 10}, self.REGION, version="1.0")
        assert status == 200, body
        for m in body.get("Messages", []):
            target("AmazonSQS", "sqs", "DeleteMessage", {"QueueUrl": self.state["queue_url"], "ReceiptHandle": m["ReceiptHandle"]},
                   self.REGION, version="1.0")
        return [json.loads(m["Body"]) for m in body.get("Messages", [])]

    def metric(self, name: str) -> float:
        import datetime

        now = datetime.datetime.now(datetime.UTC)
        status, body = cloudwatch("GetMetricStatistics", {
            "Namespace": "AWS/SNS", "MetricName": name, "Dimensions.member.1.Name": "TopicName",
            "Dimensions.member.1.Value": "dsvc-alarms", "StartTime": (now - datetime.timedelta(minutes=10)).isoformat(),
            "EndTime": (now + datetime.timedelta(minutes=1)).isoformat(), "Period": "60", "Statistics.member.1": "Sum"}, self.REGION)
        assert status == 200, body
        import re

        return sum(float(x) for x in re.findall(r"<Sum>([^<]+)</Sum>", body))

    def test_the_notification_is_published_and_delivered(self):
        self.received()
        Received.bodies.clear()
        delivered = self.metric("NumberOfNotificationsDelivered")
        actions = len(self.history("Action"))
        self.alarm()
        update = self.history("StateUpdate")[0]
        assert update["HistorySummary"] == "Alarm updated from OK to ALARM"
        assert json.loads(update["HistoryData"])["newState"]["stateValue"] == "ALARM"
        assert len(self.history("Action")) == actions, "published after the delay"
        settle()
        action = self.history("Action")[0]
        assert action["HistorySummary"] == f"Successfully executed action {self.state['topic']}"
        data = json.loads(action["HistoryData"])
        assert (data["actionState"], data["notificationResource"]) == ("Succeeded", self.state["topic"])
        messages = self.received()
        assert len(messages) == 1
        assert (messages[0]["Type"], messages[0]["TopicArn"]) == ("Notification", self.state["topic"])
        alarm = json.loads(messages[0]["Message"])
        assert (alarm["AlarmName"], alarm["NewStateValue"], alarm["OldStateValue"], alarm["NewStateReason"]) == \
                         ("dsvc-root", "ALARM", "OK", "canary")
        assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:{self.REGION}:{ACCOUNT}:alarm:dsvc-root"
        assert alarm["Region"] == "US West (Oregon)"
        assert [json.loads(b["Message"])["AlarmName"] for b in Received.bodies] == ["dsvc-root"], "the HTTP endpoint"
        assert self.metric("NumberOfNotificationsDelivered") == delivered + 2
        # The same state again changes nothing, and invokes no action.
        self.alarm()
        settle()
        assert self.history("Action")[0]["Timestamp"] == action["Timestamp"]

    def test_a_key_policy_without_cloudwatch_fails_the_action(self):
        set_key_policy(self.REGION, self.state["key"], [])
        self.alarm()
        settle()
        action = self.history("Action")[0]
        assert action["HistorySummary"] == \
                         f'Failed to execute action {self.state["topic"]}. Received error: ' \
                         '"CloudWatch Alarms does not have authorization to access the SNS topic encryption key."'
        assert json.loads(action["HistoryData"])["actionState"] == "Failed"
        assert self.received() == [], "nothing published"
        set_key_policy(self.REGION, self.state["key"], self.key_statements())
        cloudwatch("SetAlarmState", {"AlarmName": "dsvc-root", "StateValue": "OK", "StateReason": "reset"}, self.REGION)
        self.alarm()
        settle()
        assert self.history("Action")[0]["HistorySummary"].startswith("Successfully")
        assert len(self.received()) == 1

    def test_a_topic_policy_refusing_cloudwatch_fails_the_action(self):
        d = self.state
        self.sns("SetTopicAttributes", {"TopicArn": d["topic"], "AttributeName": "Policy", "AttributeValue": json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                    "Action": "sns:*", "Resource": d["topic"]}]})})
        try:
            self.alarm()
            settle()
            summary = self.history("Action")[0]["HistorySummary"]
            assert f"is not authorized to perform: SNS:Publish on resource: {d['topic']}" in summary
        finally:
            from moto.sns.models import sns_backends

            topic = sns_backends[ACCOUNT][self.REGION].topics[d["topic"]]
            topic._policy_json = topic._create_default_topic_policy(self.REGION, ACCOUNT, "dsvc-alarms")

    def test_a_queue_policy_refusing_sns_stops_the_delivery(self):
        self.received()
        failed = self.metric("NumberOfNotificationsFailed")
        # Keyed on aws:SourceAccount, which SNS does not send to SQS.
        self.set_queue_policy(json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": self.state["queue_arn"], "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}))
        self.alarm()
        settle()
        assert self.history("Action")[0]["HistorySummary"].startswith("Successfully"), "published to the topic"
        assert self.received() == [], "not delivered to the queue"
        assert self.metric("NumberOfNotificationsFailed") == failed + 1
        self.set_queue_policy(self.queue_policy())
        cloudwatch("SetAlarmState", {"AlarmName": "dsvc-root", "StateValue": "OK", "StateReason": "reset"}, self.REGION)
        self.alarm()
        settle()
        assert len(self.received()) == 1

    def test_http_endpoints_off_the_loopback_interface_are_not_reached(self):
        d = self.state
        body = self.sns("Subscribe", {"TopicArn": d["topic"], "Protocol": "https", "Endpoint": "https://192.0.2.1/hook"})
        failed = self.metric("NumberOfNotificationsFailed")
        try:
            self.alarm()
            settle()
            assert self.metric("NumberOfNotificationsFailed") == failed + 1
        finally:
            self.sns("Unsubscribe", {"SubscriptionArn": tag("SubscriptionArn", body)})

    def test_a_confirmed_email_subscription_counts_as_delivered(self):
        # SNS counts an email delivered once its mail system accepts it
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-monitoring-using-cloudwatch.html).
        d = self.state
        body = self.sns("Subscribe", {"TopicArn": d["topic"], "Protocol": "email", "Endpoint": "secops@example.com"})
        delivered = self.metric("NumberOfNotificationsDelivered")
        try:
            self.alarm()
            settle()
            # The queue, the HTTP endpoint and the email.
            assert self.metric("NumberOfNotificationsDelivered") == delivered + 3
        finally:
            self.sns("Unsubscribe", {"SubscriptionArn": tag("SubscriptionArn", body)})
            self.received()
            cloudwatch("SetAlarmState", {"AlarmName": "dsvc-root", "StateValue": "OK", "StateReason": "reset"}, self.REGION)

    def test_the_history_over_cbor(self):
        # The Rust SDK speaks Smithy RPC v2 CBOR to CloudWatch (the extension's CborBridge).
        import cbor2

        self.alarm()
        path = "/service/GraniteServiceVersion20100801/operation/DescribeAlarmHistory"
        import datetime

        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
        data = cbor2.dumps({"AlarmName": "dsvc-root", "HistoryItemType": "StateUpdate", "StartDate": since},
                           datetime_as_timestamp=True)
        headers = ADMIN.headers("monitoring", self.REGION, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                                                            "Accept": "application/cbor"})
        r = authz_client.APP.open(path, method="POST", headers=authz_client.sign("POST", path, "", {
            k: v for k, v in headers.items() if k != authz_client.SIGN_AS}, data, "testing", "monitoring", self.REGION), data=data)
        assert r.status_code == 200, r.get_data()
        items = cbor2.loads(r.get_data())["AlarmHistoryItems"]
        assert items[0]["HistorySummary"] == "Alarm updated from OK to ALARM"
        assert all(i["Timestamp"] >= since for i in items), "StartDate bounds the history"

        sns.settle()


class BucketPoliciesWithoutEnforcement(unittest.TestCase):
    """`--no-iam` authorizes nothing, bucket policies included: moto's own evaluation of a TLS-only
    policy would refuse every read of the pipeline's artifacts (s3.patch_s3_bucket_policy)."""

    def test_a_tls_only_bucket_is_read_without_enforcement(self):
        import os

        from moto.iam.access_control import PermissionResult
        from moto.s3.models import s3_backends

        backend = s3_backends[ACCOUNT]["aws"]
        bucket = backend.create_bucket("tls-only-no-iam", "us-east-1")
        backend.put_bucket_policy("tls-only-no-iam", json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::tls-only-no-iam/*",
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}).encode())
        before = os.environ.get("ASSURE_IAM")
        os.environ["ASSURE_IAM"] = "off"
        try:
            assert bucket.get_permission("s3:GetObject", "arn:aws:s3:::tls-only-no-iam/k") == \
                             PermissionResult.PERMITTED
        finally:
            os.environ["ASSURE_IAM"] = before or "on"
