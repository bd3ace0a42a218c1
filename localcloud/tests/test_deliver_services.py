"""Services acting on their own as their service principal (deliver_services.py): Config's snapshot
and aggregator, GuardDuty's export of sample findings, CloudWatch's alarm actions and SNS's deliveries,
each authorized by the policies AWS consults with the context keys the service sends
(rules.DELIVERY_CONTEXT_KEYS). Each test breaks one thing, sees the service report it, and restores it.
Requests go through the extension's WSGI app as the server runs it (no server, no network).

From localcloud/: VENV/bin/python -m pytest tests/test_deliver_services*.py"""

import gzip
import json
import re
import time
import unittest
from typing import ClassVar, cast

from assure_local.services import sns
from tests import deliveries_client
from tests.authz_client import ACCOUNT, make_role
from tests.deliveries_client import (
    WAIT,
    configservice,
    keys_under,
    limits,
    make_key,
    org_id,
    put_policy,
    s3,
    s3_get,
    set_key_policy,
    settle,
)


def setUpModule() -> None:
    deliveries_client.setUpModule()


class Delayed(unittest.TestCase):
    """The delay at its minimum, 0.5 s, and IAM's propagation off, for each test."""

    def setUp(self):
        from assure_local import rules

        sns.settle()  # nothing left from the test before
        self.propagation = rules.PROPAGATION["seconds"]
        limits({"transitionSeconds": 0.5, "iamPropagationSeconds": 0})

    def tearDown(self):
        limits({"iamPropagationSeconds": self.propagation})


class ContextKeys(unittest.TestCase):
    """Review finding #13: each service sends the source keys it documents, no others
    (rules.DELIVERY_CONTEXT_KEYS); aws:SourceOrgID and aws:SourceOrgPaths wherever aws:SourceAccount is."""

    def test_the_table(self):
        from assure_local import rules

        trail = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/t"
        assert set(rules.delivery_context("cloudtrail.amazonaws.com", ACCOUNT, trail)) == \
                         {"aws:SourceArn", "aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths"}
        assert set(rules.delivery_context("config.amazonaws.com", ACCOUNT, "arn:aws:config:x")) == \
                         {"aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths"}, "Config names no source ARN"
        assert set(rules.delivery_context("guardduty.me-south-1.amazonaws.com", ACCOUNT, "arn:aws:guardduty:d")) == \
                         {"aws:SourceArn", "aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths"}
        assert rules.delivery_context("sns.amazonaws.com", ACCOUNT, "arn:aws:sns:us-east-1:1:t") == \
                         {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}, "SNS to SQS: the topic only"
        assert rules.delivery_context("logging.s3.amazonaws.com", ACCOUNT, "arn:aws:s3:::b") == {}, \
                         "a service not in the table sends none"
        ctx = rules.delivery_context("config.amazonaws.com", ACCOUNT, None)
        assert ctx["aws:SourceOrgID"] == org_id()
        assert ctx["aws:SourceOrgPaths"][0].startswith(org_id() + "/r-")
        outside = "999999999999"
        assert "aws:SourceOrgID" not in rules.delivery_context("config.amazonaws.com", outside, None), \
                         "an account in no organization: no organization keys"

    def test_a_policy_keyed_on_a_key_the_service_does_not_send_refuses(self):
        from assure_local import rules

        status, _ = s3("PUT", "/dsvc-keys")
        assert status in (200, 409)

        def policy(condition: dict) -> None:
            put_policy("dsvc-keys", [{"Effect": "Allow", "Principal": {"Service": ["config.amazonaws.com", "guardduty.amazonaws.com"]},
                                      "Action": ["s3:PutObject", "s3:GetBucketAcl", "s3:GetBucketLocation"],
                                      "Resource": ["arn:aws:s3:::dsvc-keys", "arn:aws:s3:::dsvc-keys/*"],
                                      "Condition": condition}])

        def config_refused() -> bool:
            return rules.delivery_refusal("config.amazonaws.com", ACCOUNT, "us-east-1",
                                          {"aws:SourceArn": f"arn:aws:config:us-east-1:{ACCOUNT}:config-recorder/x"},
                                          "dsvc-keys", "k", "s3:GetBucketAcl", None) is not None

        def guardduty_refused() -> bool:
            return rules.delivery_refusal("guardduty.amazonaws.com", ACCOUNT, "us-east-1",
                                          {"aws:SourceArn": f"arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/d"},
                                          "dsvc-keys", "k", "s3:GetBucketLocation", None) is not None

        policy({"ArnLike": {"aws:SourceArn": f"arn:aws:*:us-east-1:{ACCOUNT}:*"}})
        assert config_refused(), "Config sends no aws:SourceArn, whatever its caller offers"
        assert not guardduty_refused(), "GuardDuty sends its detector"
        policy({"StringEquals": {"aws:SourceOrgID": org_id()}})
        assert not config_refused(), "aws:SourceOrgID comes with aws:SourceAccount"
        assert not guardduty_refused()
        policy({"StringEquals": {"aws:SourceOwner": ACCOUNT}})
        assert config_refused(), "AWS:SourceOwner is CloudWatch's (to SNS), not Config's"


class ConfigSnapshots(Delayed):
    """DeliverConfigSnapshot: the snapshot written by Config after the delay, as the recorder's role or
    as config.amazonaws.com, and DescribeDeliveryChannelStatus's configSnapshotDeliveryInfo."""

    REGION = "eu-west-1"
    BUCKET = "dsvc-config"

    def bucket_statements(self, put_condition: dict | None = None) -> list[dict]:
        service = {"Service": "config.amazonaws.com"}
        org = {"StringEquals": {"aws:SourceOrgID": org_id()}}
        return [
            {"Sid": "Check", "Effect": "Allow", "Principal": service, "Action": "s3:GetBucketAcl",
             "Resource": f"arn:aws:s3:::{self.BUCKET}", "Condition": org},
            {"Sid": "Write", "Effect": "Allow", "Principal": service, "Action": "s3:PutObject",
             "Resource": f"arn:aws:s3:::{self.BUCKET}/cfg/AWSLogs/{ACCOUNT}/Config/*",
             "Condition": put_condition or {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                                              "aws:SourceAccount": ACCOUNT}}}]

    CONFIG_KEY: ClassVar[list[dict]] = [{"Sid": "Config", "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
                   "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
                   "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]

    def setUp(self):
        super().setUp()
        status, _ = s3("PUT", f"/{self.BUCKET}")
        assert status in (200, 409)
        put_policy(self.BUCKET, self.bucket_statements())
        self.key = getattr(type(self), "key_arn", None) or make_key(self.REGION, self.CONFIG_KEY)
        type(self).key_arn = self.key  # type: ignore[attr-defined]  # one key for the class's tests
        set_key_policy(self.REGION, self.key, self.CONFIG_KEY)
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]}
        # The recorder's role may not write to S3: Config writes as its service principal.
        self.role = make_role("dsvc-recorder", trust, json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "config:Put*", "Resource": "*"}]}))
        status, body = configservice("PutConfigurationRecorder", {"ConfigurationRecorder": {
            "name": "default", "roleARN": self.role, "recordingGroup": {"allSupported": True}}}, self.REGION)
        assert status == 200, body
        status, body = configservice("PutDeliveryChannel", {"DeliveryChannel": {
            "name": "default", "s3BucketName": self.BUCKET, "s3KeyPrefix": "cfg", "s3KmsKeyArn": self.key}}, self.REGION)
        assert status == 200, body
        assert configservice("StartConfigurationRecorder", {"ConfigurationRecorderName": "default"}, self.REGION)[0] == 200

    def snapshot_info(self) -> dict:
        status, body = configservice("DescribeDeliveryChannelStatus", {"DeliveryChannelNames": ["default"]}, self.REGION)
        assert status == 200, body
        return body["DeliveryChannelsStatus"][0]["configSnapshotDeliveryInfo"]

    def deliver(self) -> tuple[str, dict]:
        status, body = configservice("DeliverConfigSnapshot", {"deliveryChannelName": "default"}, self.REGION)
        assert status == 200, body
        settle()
        return body["configSnapshotId"], self.snapshot_info()

    def test_errors(self):
        status, body = configservice("DeliverConfigSnapshot", {"deliveryChannelName": "nope"}, self.REGION)
        assert (status, body.get("__type")) == (400, "NoSuchDeliveryChannelException")
        configservice("StopConfigurationRecorder", {"ConfigurationRecorderName": "default"}, self.REGION)
        status, body = configservice("DeliverConfigSnapshot", {"deliveryChannelName": "default"}, self.REGION)
        assert (status, body.get("__type")) == (400, "NoRunningConfigurationRecorderException")

    def test_the_snapshot_is_delivered_after_the_delay(self):
        import datetime

        before = self.snapshot_info()
        status, body = configservice("DeliverConfigSnapshot", {"deliveryChannelName": "default"}, self.REGION)
        assert status == 200, body
        snapshot = body["configSnapshotId"]
        assert self.snapshot_info() == before, "nothing happens before the delay"
        settle()
        info = self.snapshot_info()
        assert info["lastStatus"] == "Success", info
        assert info["lastSuccessfulTime"] == info["lastAttemptTime"]
        now = datetime.datetime.now(datetime.UTC)
        folder = f"cfg/AWSLogs/{ACCOUNT}/Config/{self.REGION}/{now.year}/{now.month}/{now.day}/ConfigSnapshot/"
        found = [k for k in keys_under(self.BUCKET, folder) if k.endswith(f"_{snapshot}.json.gz")]
        assert len(found) == 1, keys_under(self.BUCKET, folder)
        assert re.search(rf"^{ACCOUNT}_Config_{self.REGION}_ConfigSnapshot_\d{{8}}T\d{{6}}Z_{snapshot}\.json\.gz$", found[0].rsplit("/", 1)[1])
        doc = json.loads(gzip.decompress(s3_get(f"/{self.BUCKET}/{found[0]}")))
        assert (doc["fileVersion"], doc["configSnapshotId"], doc["configurationItems"]) == ("1.0", snapshot, [])
        from moto.s3.models import s3_backends

        stored = s3_backends[ACCOUNT]["aws"].buckets[self.BUCKET].keys[found[0]]
        assert stored.kms_key_id == self.key, "encrypted with the channel's key"

    def test_a_bucket_policy_without_configs_write_refuses_it(self):
        put_policy(self.BUCKET, self.bucket_statements()[:1])
        _, info = self.deliver()
        assert (info["lastStatus"], info["lastErrorCode"]) == ("Failure", "AccessDenied"), info
        assert "s3:PutObject" in info["lastErrorMessage"]
        assert "lastSuccessfulTime" not in info, "never delivered"
        put_policy(self.BUCKET, self.bucket_statements())
        _, info = self.deliver()
        assert info["lastStatus"] == "Success", info
        assert "lastErrorCode" not in info

    def test_a_key_policy_without_config_refuses_it(self):
        set_key_policy(self.REGION, self.key, [])
        _, info = self.deliver()
        assert (info["lastStatus"], info["lastErrorCode"]) == ("Failure", "AccessDenied"), info
        assert "kms:" in info["lastErrorMessage"]
        set_key_policy(self.REGION, self.key, self.CONFIG_KEY)
        assert self.deliver()[1]["lastStatus"] == "Success"

    def test_config_sends_no_source_arn(self):
        # A policy keyed on aws:SourceArn: Config documents aws:SourceAccount only for its delivery.
        put_policy(self.BUCKET, self.bucket_statements({"ArnLike": {"aws:SourceArn": f"arn:aws:config:*:{ACCOUNT}:*"}}))
        assert self.deliver()[1]["lastStatus"] == "Failure"
        put_policy(self.BUCKET, self.bucket_statements())
        assert self.deliver()[1]["lastStatus"] == "Success"

    def test_the_recorders_role_writes_first(self):
        # No statement for Config's service principal: the role's own permissions must do.
        put_policy(self.BUCKET, [])
        assert self.deliver()[1]["lastStatus"] == "Failure"
        from moto.iam.models import iam_backends

        iam_backends[ACCOUNT]["aws"].put_role_policy("dsvc-recorder", "deliver", json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetBucketAcl", "kms:GenerateDataKey"], "Resource": "*"}]}))
        try:
            assert self.deliver()[1]["lastStatus"] == "Success"
        finally:
            iam_backends[ACCOUNT]["aws"].delete_role_policy("dsvc-recorder", "deliver")


class Aggregator(Delayed):
    """An organization aggregator: Config reads the organization as the source's role after the delay;
    DescribeConfigurationAggregatorSourcesStatus reports each Region's read."""

    REGION = "us-east-1"
    READS: ClassVar[dict] = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "organizations:ListAccounts", "organizations:DescribeOrganization", "organizations:ListAWSServiceAccessForOrganization"]}]}

    def statuses(self) -> list[dict]:
        status, body = configservice("DescribeConfigurationAggregatorSourcesStatus",
                                     {"ConfigurationAggregatorName": "dsvc-org"}, self.REGION)
        assert status == 200, body
        return body["AggregatedSourceStatusList"]

    def test_the_sources_with_and_without_the_roles_permissions(self):
        from moto.iam.models import iam_backends

        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
                                                         "Action": "sts:AssumeRole",
                                                         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}
        role = make_role("dsvc-aggregator", trust, json.dumps(self.READS))
        status, body = configservice("PutConfigurationAggregator", {
            "ConfigurationAggregatorName": "dsvc-org",
            "OrganizationAggregationSource": {"RoleArn": role, "AwsRegions": ["us-east-1", "eu-west-1"]}}, self.REGION)
        assert status == 200, body
        first = self.statuses()
        assert [(s["SourceType"], s["AwsRegion"], s["LastUpdateStatus"]) for s in first] == \
                         [("ORGANIZATION", "us-east-1", "OUTDATED"), ("ORGANIZATION", "eu-west-1", "OUTDATED")], \
                         "not read before the delay"
        settle()
        read = self.statuses()
        assert {s["LastUpdateStatus"] for s in read} == {"SUCCEEDED"}, read
        assert {s["SourceId"] for s in read} == {org_id()}
        assert "LastUpdateTime" in read[0]

        iam_backends[ACCOUNT]["aws"].put_role_policy("dsvc-aggregator", "all", json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": "organizations:DescribeOrganization"}]}))
        time.sleep(WAIT)
        failed = self.statuses()
        assert {s["LastUpdateStatus"] for s in failed} == {"FAILED"}, failed
        assert failed[0]["LastErrorCode"] == "OrganizationAccessDeniedException"
        assert "organizations:ListAccounts" in failed[0]["LastErrorMessage"]
        assert len(self.statuses_filtered("SUCCEEDED")) == 0

        iam_backends[ACCOUNT]["aws"].put_role_policy("dsvc-aggregator", "all", json.dumps(self.READS))
        time.sleep(WAIT)
        assert {s["LastUpdateStatus"] for s in self.statuses()} == {"SUCCEEDED"}

        # A trust policy that does not admit this aggregator: Config cannot assume the role.
        iam_backends[ACCOUNT]["aws"].update_assume_role_policy("dsvc-aggregator", json.dumps(
            {"Version": "2012-10-17", "Statement": [dict(cast(dict, trust["Statement"])[0], Condition={
                "ArnEquals": {"aws:SourceArn": f"arn:aws:config:{self.REGION}:{ACCOUNT}:config-aggregator/another"}})]}))
        time.sleep(WAIT)
        failed = self.statuses()
        assert (failed[0]["LastUpdateStatus"], failed[0]["LastErrorCode"]) == ("FAILED", "AccessDeniedException")
        iam_backends[ACCOUNT]["aws"].update_assume_role_policy("dsvc-aggregator", json.dumps(trust))
        time.sleep(WAIT)
        assert {s["LastUpdateStatus"] for s in self.statuses()} == {"SUCCEEDED"}
        assert configservice("DeleteConfigurationAggregator", {"ConfigurationAggregatorName": "dsvc-org"}, self.REGION)[0] == 200
        status, body = configservice("DescribeConfigurationAggregatorSourcesStatus", {"ConfigurationAggregatorName": "dsvc-org"},
                                     self.REGION)
        assert (status, body.get("__type")) == (400, "NoSuchConfigurationAggregatorException")

    def statuses_filtered(self, wanted: str) -> list[dict]:
        status, body = configservice("DescribeConfigurationAggregatorSourcesStatus",
                                     {"ConfigurationAggregatorName": "dsvc-org", "UpdateStatus": [wanted]}, self.REGION)
        assert status == 200, body
        return body["AggregatedSourceStatusList"]
