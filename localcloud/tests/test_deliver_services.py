"""Services acting on their own as their service principal (deliver_services.py): Config's snapshot
and aggregator, GuardDuty's export of sample findings, CloudWatch's alarm actions and SNS's deliveries,
each authorized by the policies AWS consults with the context keys the service sends
(rules.DELIVERY_CONTEXT_KEYS). Each test breaks one thing, sees the service report it, and restores it.
Requests go through the extension's WSGI app as the server runs it (no server, no network).

From infra/local: VENV/bin/python -W ignore -m unittest test_deliver_services"""

import gzip
import http.server
import json
import threading
import time
import unittest
from urllib.parse import urlencode

import test_authz
from test_authz import ACCOUNT, auth, call, make_role, org, remember, tag

from assure_local import principals
from assure_local.services import sns

WAIT = 0.7  # the transition is set to 0.5 s


def setUpModule() -> None:
    import os

    os.environ.setdefault("ASSURE_IAM", "on")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    from assure_local import extension

    extension.patch_moto()
    principals.bootstrap_admin()
    test_authz.APP = Client(extension.Extension(DomainDispatcherApplication(create_backend_app)))
    from moto.organizations.models import organizations_backends

    if organizations_backends[ACCOUNT]["aws"].org is None:
        assert org("CreateOrganization", {"FeatureSet": "ALL"})[0] == 200


def limits(doc: dict) -> None:
    status, body = call("POST", "/assure-api/limits", {}, json.dumps(doc))
    assert status == 200, body


def settle() -> None:
    """Waits out the delay, then runs what is queued (sns.settle)."""

    time.sleep(WAIT)
    sns.settle()


class Creds:
    """Credentials to sign with: the administrator's key, or a session (key, token)."""

    def __init__(self, key: str = "testing", token: str | None = None):
        self.key, self.token = key, token

    def headers(self, service: str, region: str, extra: dict | None = None) -> dict:
        out = dict(auth(self.key, service, region), **(extra or {}))
        if self.token:
            out["X-Amz-Security-Token"] = self.token
        return out


ADMIN = Creds()


def member(name: str) -> tuple[str, Creds]:
    """An account of the organization (made once) and a session of its OrganizationAccountAccessRole."""
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[ACCOUNT]["aws"]
    account = next((a.id for a in backend.accounts if a.name == name), None)
    if account is None:
        status, body = org("CreateAccount", {"Email": f"{name}@example.com", "AccountName": name})
        assert status == 200, body
        account = json.loads(body)["CreateAccountStatus"]["AccountId"]
    role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
    status, body = query("sts", "AssumeRole", {"RoleArn": role, "RoleSessionName": "dsvc"}, "2011-06-15")
    assert status == 200, body
    remember(body)
    return account, Creds(tag("AccessKeyId", body), tag("SessionToken", body))


def query(service: str, action: str, params: dict, version: str, creds: Creds = ADMIN, region: str = "us-east-1"):
    headers = creds.headers(service, region, {"Content-Type": "application/x-www-form-urlencoded"})
    return call("POST", "/", headers, urlencode(dict(params, Action=action, Version=version)))


def target(prefix: str, service: str, operation: str, body: dict, region: str, creds: Creds = ADMIN,
           version: str = "1.1") -> tuple[int, dict]:
    headers = creds.headers(service, region, {"Content-Type": f"application/x-amz-json-{version}",
                                              "X-Amz-Target": f"{prefix}.{operation}"})
    status, text = call("POST", "/", headers, json.dumps(body))
    return status, json.loads(text or "{}")


def configservice(operation: str, body: dict, region: str, creds: Creds = ADMIN) -> tuple[int, dict]:
    return target("StarlingDoveService", "config", operation, body, region, creds)


def kms(operation: str, body: dict, region: str, creds: Creds = ADMIN) -> tuple[int, dict]:
    return target("TrentService", "kms", operation, body, region, creds)


def guardduty(method: str, path: str, region: str, body: dict | None = None, creds: Creds = ADMIN) -> tuple[int, dict]:
    headers = creds.headers("guardduty", region, {"Content-Type": "application/json"})
    status, text = call(method, path, headers, json.dumps(body) if body is not None else b"")
    return status, json.loads(text or "{}")


def s3(method: str, path: str, data: bytes | str = b"", query_string: str = "", creds: Creds = ADMIN,
       headers: dict | None = None) -> tuple[int, str]:
    return call(method, path, creds.headers("s3", "us-east-1", headers), data, query=query_string)


def s3_get(path: str) -> bytes:
    r = test_authz.APP.open(path, method="GET", headers=test_authz.sign("GET", path, "", {}, b"", "testing", "s3"))
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_data()


def keys_under(bucket: str, prefix: str) -> list[str]:
    import re

    status, body = s3("GET", f"/{bucket}", query_string=urlencode({"list-type": "2", "prefix": prefix}))
    assert status == 200, body
    return re.findall(r"<Key>([^<]+)</Key>", body)


def put_policy(bucket: str, statements: list[dict]) -> None:
    status, body = s3("PUT", f"/{bucket}", json.dumps({"Version": "2012-10-17", "Statement": statements}), "policy")
    assert status in (200, 204), body


def make_key(region: str, statements: list[dict]) -> str:
    status, body = kms("CreateKey", {"Policy": json.dumps(key_policy(statements))}, region)
    assert status == 200, body
    return body["KeyMetadata"]["Arn"]


def key_policy(statements: list[dict]) -> dict:
    root = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [root] + statements}


def set_key_policy(region: str, key: str, statements: list[dict]) -> None:
    status, body = kms("PutKeyPolicy", {"KeyId": key, "PolicyName": "default", "Policy": json.dumps(key_policy(statements))}, region)
    assert status == 200, body


def org_id() -> str:
    from moto.organizations.models import organizations_backends

    return organizations_backends[ACCOUNT]["aws"].org.id


class Delayed(unittest.TestCase):
    """The delay at its minimum, 0.5 s, and IAM's propagation off, for each test."""

    def setUp(self):
        from assure_local import rules

        sns.settle()  # nothing left from the test before
        self.propagation = rules.PROPAGATION["seconds"]
        limits({"transitionSeconds": 0.5, "iamPropagationSeconds": 0})

    def tearDown(self):
        limits({"iamPropagationSeconds": self.propagation})


# ---------------------------------------------------------------------------------------------------


class ContextKeys(unittest.TestCase):
    """Review finding #13: each service sends the source keys it documents, no others
    (rules.DELIVERY_CONTEXT_KEYS); aws:SourceOrgID and aws:SourceOrgPaths wherever aws:SourceAccount is."""

    def test_the_table(self):
        from assure_local import rules

        trail = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/t"
        self.assertEqual(set(rules.delivery_context("cloudtrail.amazonaws.com", ACCOUNT, trail)),
                         {"aws:SourceArn", "aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths"})
        self.assertEqual(set(rules.delivery_context("config.amazonaws.com", ACCOUNT, "arn:aws:config:x")),
                         {"aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths"}, "Config names no source ARN")
        self.assertEqual(set(rules.delivery_context("guardduty.me-south-1.amazonaws.com", ACCOUNT, "arn:aws:guardduty:d")),
                         {"aws:SourceArn", "aws:SourceAccount", "aws:SourceOrgID", "aws:SourceOrgPaths"})
        self.assertEqual(rules.delivery_context("sns.amazonaws.com", ACCOUNT, "arn:aws:sns:us-east-1:1:t"),
                         {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}, "SNS to SQS: the topic only")
        self.assertEqual(rules.delivery_context("logging.s3.amazonaws.com", ACCOUNT, "arn:aws:s3:::b"), {},
                         "a service not in the table sends none")
        ctx = rules.delivery_context("config.amazonaws.com", ACCOUNT, None)
        self.assertEqual(ctx["aws:SourceOrgID"], org_id())
        self.assertTrue(ctx["aws:SourceOrgPaths"][0].startswith(org_id() + "/r-"))
        outside = "999999999999"
        self.assertNotIn("aws:SourceOrgID", rules.delivery_context("config.amazonaws.com", outside, None),
                         "an account in no organization: no organization keys")

    def test_a_policy_keyed_on_a_key_the_service_does_not_send_refuses(self):
        from assure_local import rules

        status, _ = s3("PUT", "/dsvc-keys")
        self.assertIn(status, (200, 409))

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
        self.assertTrue(config_refused(), "Config sends no aws:SourceArn, whatever its caller offers")
        self.assertFalse(guardduty_refused(), "GuardDuty sends its detector")
        policy({"StringEquals": {"aws:SourceOrgID": org_id()}})
        self.assertFalse(config_refused(), "aws:SourceOrgID comes with aws:SourceAccount")
        self.assertFalse(guardduty_refused())
        policy({"StringEquals": {"aws:SourceOwner": ACCOUNT}})
        self.assertTrue(config_refused(), "AWS:SourceOwner is CloudWatch's (to SNS), not Config's")


# ---------------------------------------------------------------------------------------------------


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

    CONFIG_KEY = [{"Sid": "Config", "Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
                   "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
                   "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]

    def setUp(self):
        super().setUp()
        status, _ = s3("PUT", f"/{self.BUCKET}")
        self.assertIn(status, (200, 409))
        put_policy(self.BUCKET, self.bucket_statements())
        self.key = getattr(type(self), "key_arn", None) or make_key(self.REGION, self.CONFIG_KEY)
        type(self).key_arn = self.key
        set_key_policy(self.REGION, self.key, self.CONFIG_KEY)
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]}
        # The recorder's role may not write to S3: Config writes as its service principal.
        self.role = make_role("dsvc-recorder", trust, json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "config:Put*", "Resource": "*"}]}))
        status, body = configservice("PutConfigurationRecorder", {"ConfigurationRecorder": {
            "name": "default", "roleARN": self.role, "recordingGroup": {"allSupported": True}}}, self.REGION)
        self.assertEqual(status, 200, body)
        status, body = configservice("PutDeliveryChannel", {"DeliveryChannel": {
            "name": "default", "s3BucketName": self.BUCKET, "s3KeyPrefix": "cfg", "s3KmsKeyArn": self.key}}, self.REGION)
        self.assertEqual(status, 200, body)
        self.assertEqual(configservice("StartConfigurationRecorder", {"ConfigurationRecorderName": "default"}, self.REGION)[0], 200)

    def snapshot_info(self) -> dict:
        status, body = configservice("DescribeDeliveryChannelStatus", {"DeliveryChannelNames": ["default"]}, self.REGION)
        self.assertEqual(status, 200, body)
        return body["DeliveryChannelsStatus"][0]["configSnapshotDeliveryInfo"]

    def deliver(self) -> tuple[str, dict]:
        status, body = configservice("DeliverConfigSnapshot", {"deliveryChannelName": "default"}, self.REGION)
        self.assertEqual(status, 200, body)
        settle()
        return body["configSnapshotId"], self.snapshot_info()

    def test_errors(self):
        status, body = configservice("DeliverConfigSnapshot", {"deliveryChannelName": "nope"}, self.REGION)
        self.assertEqual((status, body.get("__type")), (400, "NoSuchDeliveryChannelException"))
        configservice("StopConfigurationRecorder", {"ConfigurationRecorderName": "default"}, self.REGION)
        status, body = configservice("DeliverConfigSnapshot", {"deliveryChannelName": "default"}, self.REGION)
        self.assertEqual((status, body.get("__type")), (400, "NoRunningConfigurationRecorderException"))

    def test_the_snapshot_is_delivered_after_the_delay(self):
        import datetime

        before = self.snapshot_info()
        status, body = configservice("DeliverConfigSnapshot", {"deliveryChannelName": "default"}, self.REGION)
        self.assertEqual(status, 200, body)
        snapshot = body["configSnapshotId"]
        self.assertEqual(self.snapshot_info(), before, "nothing happens before the delay")
        settle()
        info = self.snapshot_info()
        self.assertEqual(info["lastStatus"], "Success", info)
        self.assertEqual(info["lastSuccessfulTime"], info["lastAttemptTime"])
        now = datetime.datetime.now(datetime.UTC)
        folder = f"cfg/AWSLogs/{ACCOUNT}/Config/{self.REGION}/{now.year}/{now.month}/{now.day}/ConfigSnapshot/"
        found = [k for k in keys_under(self.BUCKET, folder) if k.endswith(f"_{snapshot}.json.gz")]
        self.assertEqual(len(found), 1, keys_under(self.BUCKET, folder))
        self.assertRegex(found[0].rsplit("/", 1)[1], rf"^{ACCOUNT}_Config_{self.REGION}_ConfigSnapshot_\d{{8}}T\d{{6}}Z_{snapshot}\.json\.gz$")
        doc = json.loads(gzip.decompress(s3_get(f"/{self.BUCKET}/{found[0]}")))
        self.assertEqual((doc["fileVersion"], doc["configSnapshotId"], doc["configurationItems"]), ("1.0", snapshot, []))
        from moto.s3.models import s3_backends

        stored = s3_backends[ACCOUNT]["aws"].buckets[self.BUCKET].keys[found[0]]
        self.assertEqual(stored.kms_key_id, self.key, "encrypted with the channel's key")

    def test_a_bucket_policy_without_configs_write_refuses_it(self):
        put_policy(self.BUCKET, self.bucket_statements()[:1])
        _, info = self.deliver()
        self.assertEqual((info["lastStatus"], info["lastErrorCode"]), ("Failure", "AccessDenied"), info)
        self.assertIn("s3:PutObject", info["lastErrorMessage"])
        self.assertNotIn("lastSuccessfulTime", info, "never delivered")
        put_policy(self.BUCKET, self.bucket_statements())
        _, info = self.deliver()
        self.assertEqual(info["lastStatus"], "Success", info)
        self.assertNotIn("lastErrorCode", info)

    def test_a_key_policy_without_config_refuses_it(self):
        set_key_policy(self.REGION, self.key, [])
        _, info = self.deliver()
        self.assertEqual((info["lastStatus"], info["lastErrorCode"]), ("Failure", "AccessDenied"), info)
        self.assertIn("kms:", info["lastErrorMessage"])
        set_key_policy(self.REGION, self.key, self.CONFIG_KEY)
        self.assertEqual(self.deliver()[1]["lastStatus"], "Success")

    def test_config_sends_no_source_arn(self):
        # A policy keyed on aws:SourceArn: Config documents aws:SourceAccount only for its delivery.
        put_policy(self.BUCKET, self.bucket_statements({"ArnLike": {"aws:SourceArn": f"arn:aws:config:*:{ACCOUNT}:*"}}))
        self.assertEqual(self.deliver()[1]["lastStatus"], "Failure")
        put_policy(self.BUCKET, self.bucket_statements())
        self.assertEqual(self.deliver()[1]["lastStatus"], "Success")

    def test_the_recorders_role_writes_first(self):
        # No statement for Config's service principal: the role's own permissions must do.
        put_policy(self.BUCKET, [])
        self.assertEqual(self.deliver()[1]["lastStatus"], "Failure")
        from moto.iam.models import iam_backends

        iam_backends[ACCOUNT]["aws"].put_role_policy("dsvc-recorder", "deliver", json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetBucketAcl", "kms:GenerateDataKey"], "Resource": "*"}]}))
        try:
            self.assertEqual(self.deliver()[1]["lastStatus"], "Success")
        finally:
            iam_backends[ACCOUNT]["aws"].delete_role_policy("dsvc-recorder", "deliver")


# ---------------------------------------------------------------------------------------------------


class Aggregator(Delayed):
    """An organization aggregator: Config reads the organization as the source's role after the delay;
    DescribeConfigurationAggregatorSourcesStatus reports each Region's read."""

    REGION = "us-east-1"
    READS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "organizations:ListAccounts", "organizations:DescribeOrganization", "organizations:ListAWSServiceAccessForOrganization"]}]}

    def statuses(self) -> list[dict]:
        status, body = configservice("DescribeConfigurationAggregatorSourcesStatus",
                                     {"ConfigurationAggregatorName": "dsvc-org"}, self.REGION)
        self.assertEqual(status, 200, body)
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
        self.assertEqual(status, 200, body)
        first = self.statuses()
        self.assertEqual([(s["SourceType"], s["AwsRegion"], s["LastUpdateStatus"]) for s in first],
                         [("ORGANIZATION", "us-east-1", "OUTDATED"), ("ORGANIZATION", "eu-west-1", "OUTDATED")],
                         "not read before the delay")
        settle()
        read = self.statuses()
        self.assertEqual({s["LastUpdateStatus"] for s in read}, {"SUCCEEDED"}, read)
        self.assertEqual({s["SourceId"] for s in read}, {org_id()})
        self.assertIn("LastUpdateTime", read[0])

        iam_backends[ACCOUNT]["aws"].put_role_policy("dsvc-aggregator", "all", json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": "organizations:DescribeOrganization"}]}))
        time.sleep(WAIT)
        failed = self.statuses()
        self.assertEqual({s["LastUpdateStatus"] for s in failed}, {"FAILED"}, failed)
        self.assertEqual(failed[0]["LastErrorCode"], "OrganizationAccessDeniedException")
        self.assertIn("organizations:ListAccounts", failed[0]["LastErrorMessage"])
        self.assertEqual(len(self.statuses_filtered("SUCCEEDED")), 0)

        iam_backends[ACCOUNT]["aws"].put_role_policy("dsvc-aggregator", "all", json.dumps(self.READS))
        time.sleep(WAIT)
        self.assertEqual({s["LastUpdateStatus"] for s in self.statuses()}, {"SUCCEEDED"})

        # A trust policy that does not admit this aggregator: Config cannot assume the role.
        iam_backends[ACCOUNT]["aws"].update_assume_role_policy("dsvc-aggregator", json.dumps(
            {"Version": "2012-10-17", "Statement": [dict(trust["Statement"][0], Condition={
                "ArnEquals": {"aws:SourceArn": f"arn:aws:config:{self.REGION}:{ACCOUNT}:config-aggregator/another"}})]}))
        time.sleep(WAIT)
        failed = self.statuses()
        self.assertEqual((failed[0]["LastUpdateStatus"], failed[0]["LastErrorCode"]), ("FAILED", "AccessDeniedException"))
        iam_backends[ACCOUNT]["aws"].update_assume_role_policy("dsvc-aggregator", json.dumps(trust))
        time.sleep(WAIT)
        self.assertEqual({s["LastUpdateStatus"] for s in self.statuses()}, {"SUCCEEDED"})
        self.assertEqual(configservice("DeleteConfigurationAggregator", {"ConfigurationAggregatorName": "dsvc-org"}, self.REGION)[0], 200)
        status, body = configservice("DescribeConfigurationAggregatorSourcesStatus", {"ConfigurationAggregatorName": "dsvc-org"},
                                     self.REGION)
        self.assertEqual((status, body.get("__type")), (400, "NoSuchConfigurationAggregatorException"))

    def statuses_filtered(self, wanted: str) -> list[dict]:
        status, body = configservice("DescribeConfigurationAggregatorSourcesStatus",
                                     {"ConfigurationAggregatorName": "dsvc-org", "UpdateStatus": [wanted]}, self.REGION)
        self.assertEqual(status, 200, body)
        return body["AggregatedSourceStatusList"]


# ---------------------------------------------------------------------------------------------------


class GuardDutyExport(Delayed):
    """Sample findings, shown to the member and its administrator, exported by the administrator's
    publishing destination as its GuardDuty principal; the destination's status reports refusals."""

    REGION = "ca-central-1"
    BUCKET = "dsvc-findings"
    state: dict = {}

    def detector(self, creds: Creds) -> str:
        status, body = guardduty("GET", "/detector", self.REGION, creds=creds)
        self.assertEqual(status, 200, body)
        if body["detectorIds"]:
            return body["detectorIds"][0]
        status, body = guardduty("POST", "/detector", self.REGION, {"enable": True}, creds)
        self.assertEqual(status, 200, body)
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
            self.assertEqual(status, 200, body)
            status, body = guardduty("POST", f"/detector/{admin_detector}/member/invite", self.REGION, {"accountIds": [d["member"]]})
            self.assertEqual(status, 200, body)
            status, body = guardduty("GET", "/invitation", self.REGION, creds=d["member_creds"])
            invitation = body["invitations"][0]["invitationId"]
            status, body = guardduty("POST", f"/detector/{d['member_detector']}/administrator", self.REGION,
                                     {"administratorId": ACCOUNT, "invitationId": invitation}, d["member_creds"])
            self.assertEqual(status, 200, body)
            status, _ = s3("PUT", f"/{self.BUCKET}")
            self.assertIn(status, (200, 409))
            d["key"] = make_key(self.REGION, [])
            set_key_policy(self.REGION, d["key"], self.key_statements())
            put_policy(self.BUCKET, self.bucket_statements())
            status, body = guardduty("POST", f"/detector/{admin_detector}/publishingDestination", self.REGION, {
                "destinationType": "S3",
                "destinationProperties": {"destinationArn": f"arn:aws:s3:::{self.BUCKET}/gd", "kmsKeyArn": d["key"]}})
            self.assertEqual(status, 200, body)
            d["destination"] = body["destinationId"]
            time.sleep(WAIT)
        set_key_policy(self.REGION, d["key"], self.key_statements())
        put_policy(self.BUCKET, self.bucket_statements())

    def destination(self) -> dict:
        d = self.state
        status, body = guardduty("GET", f"/detector/{d['admin_detector']}/publishingDestination/{d['destination']}", self.REGION)
        self.assertEqual(status, 200, body)
        return body

    def sample(self, creds: Creds, detector: str) -> None:
        status, body = guardduty("POST", f"/detector/{detector}/findings/create", self.REGION,
                                 {"findingTypes": ["Recon:EC2/PortProbeUnprotectedPort"]}, creds)
        self.assertEqual(status, 200, body)

    def exported(self) -> list[dict]:
        import datetime

        now = datetime.datetime.now(datetime.UTC)
        folder = f"gd/AWSLogs/{ACCOUNT}/GuardDuty/{self.REGION}/{now:%Y/%m/%d}/"
        out = []
        for key in keys_under(self.BUCKET, folder):
            self.assertRegex(key, r"/[0-9a-f-]{36}\.jsonl\.gz$")
            out += [json.loads(line) for line in gzip.decompress(s3_get(f"/{self.BUCKET}/{key}")).decode().splitlines() if line]
        return out

    def test_a_members_sample_finding_is_shown_to_both_and_exported_by_the_administrator(self):
        d = self.state
        before = {f["id"] for f in self.exported()}
        self.sample(d["member_creds"], d["member_detector"])

        def listed(creds: Creds, detector: str) -> list[str]:
            status, body = guardduty("POST", f"/detector/{detector}/findings", self.REGION, {"findingCriteria": {
                "criterion": {"accountId": {"eq": [d["member"]]}}}}, creds)
            self.assertEqual(status, 200, body)
            return body["findingIds"]

        mine, theirs = listed(d["member_creds"], d["member_detector"]), listed(ADMIN, d["admin_detector"])
        self.assertTrue(mine)
        self.assertEqual(set(mine), set(theirs), "the administrator sees the member's findings")
        status, body = guardduty("POST", f"/detector/{d['admin_detector']}/findings/get", self.REGION, {"findingIds": mine[-1:]})
        finding = body["findings"][0]
        self.assertEqual((finding["accountId"], finding["type"], finding["schemaVersion"]),
                         (d["member"], "Recon:EC2/PortProbeUnprotectedPort", "2.0"))
        self.assertTrue(json.loads(finding["service"]["additionalInfo"]["value"])["sample"])
        self.assertEqual({f["id"] for f in self.exported()}, before, "exported after the delay")
        settle()
        new = [f for f in self.exported() if f["id"] not in before]
        self.assertEqual(len(new), 1)
        self.assertEqual(new[0]["accountId"], d["member"])
        self.assertIs(new[0]["service"]["additionalInfo"]["sample"], True)
        self.assertEqual(new[0]["id"], mine[-1])
        self.assertEqual((self.destination()["status"], self.destination()["publishingFailureStartTimestamp"]), ("PUBLISHING", 0))

    def test_the_administrators_own_findings_are_exported(self):
        d = self.state
        before = {f["id"] for f in self.exported()}
        self.sample(ADMIN, d["admin_detector"])
        settle()
        new = [f for f in self.exported() if f["id"] not in before]
        self.assertEqual([f["accountId"] for f in new], [ACCOUNT])

    def test_a_bucket_policy_without_guarddutys_write_makes_the_destination_unable_to_publish(self):
        d = self.state
        before = len(self.exported())
        put_policy(self.BUCKET, [s for s in self.bucket_statements() if s["Sid"] != "Allow PutObject"])
        started = time.time() * 1000
        self.sample(d["member_creds"], d["member_detector"])
        settle()
        dest = self.destination()
        self.assertEqual(dest["status"], "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY")
        self.assertGreaterEqual(dest["publishingFailureStartTimestamp"], started - 1000, "epoch milliseconds")
        put_policy(self.BUCKET, self.bucket_statements())
        self.assertEqual(len(self.exported()), before)
        self.sample(d["member_creds"], d["member_detector"])
        settle()
        self.assertEqual((self.destination()["status"], self.destination()["publishingFailureStartTimestamp"]), ("PUBLISHING", 0))
        self.assertEqual(len(self.exported()), before + 1)

    def test_a_key_policy_without_guardduty_makes_the_destination_unable_to_publish(self):
        d = self.state
        set_key_policy(self.REGION, d["key"], [])
        self.sample(ADMIN, d["admin_detector"])
        settle()
        self.assertEqual(self.destination()["status"], "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY")
        set_key_policy(self.REGION, d["key"], self.key_statements())
        self.sample(ADMIN, d["admin_detector"])
        settle()
        self.assertEqual(self.destination()["status"], "PUBLISHING")


# ---------------------------------------------------------------------------------------------------


class Received(http.server.BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        Received.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def cloudwatch(action: str, params: dict, region: str) -> tuple[int, str]:
    return query("monitoring", action, params, "2010-08-01", region=region)


class AlarmNotifications(Delayed):
    """SetAlarmState to ALARM: CloudWatch publishes to the alarm's encrypted topic as
    cloudwatch.amazonaws.com (topic policy, key policy), records the outcome in the alarm's history, and
    SNS delivers to the queue (its policy) and the HTTP endpoint, counted in AWS/SNS."""

    REGION = "us-west-2"
    state: dict = {}

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
        self.assertEqual(status, 200, body)
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
            self.assertEqual(status, 200, body)
            d["queue_url"] = body["QueueUrl"]
            d["queue_arn"] = f"arn:aws:sqs:{self.REGION}:{ACCOUNT}:dsvc-inbox"
            self.sns("Subscribe", {"TopicArn": d["topic"], "Protocol": "sqs", "Endpoint": d["queue_arn"]})
            self.sns("Subscribe", {"TopicArn": d["topic"], "Protocol": "http",
                                   "Endpoint": f"http://127.0.0.1:{server.server_address[1]}/hook"})
            status, body = cloudwatch("PutMetricAlarm", {
                "AlarmName": "dsvc-root", "MetricName": "RootUsage", "Namespace": "Assure", "Statistic": "Sum",
                "Period": "300", "EvaluationPeriods": "1", "Threshold": "1", "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "ActionsEnabled": "true", "AlarmActions.member.1": d["topic"]}, self.REGION)
            self.assertEqual(status, 200, body)
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
        self.assertEqual(status, 200, body)

    def alarm(self) -> None:
        status, body = cloudwatch("SetAlarmState", {"AlarmName": "dsvc-root", "StateValue": "ALARM",
                                                    "StateReason": "canary"}, self.REGION)
        self.assertEqual(status, 200, body)

    def history(self, kind: str) -> list[dict]:
        status, body = target("GraniteServiceVersion20100801", "monitoring", "DescribeAlarmHistory",
                              {"AlarmName": "dsvc-root", "HistoryItemType": kind}, self.REGION, version="1.0")
        self.assertEqual(status, 200, body)
        return body["AlarmHistoryItems"]

    def received(self) -> list[dict]:
        status, body = target("AmazonSQS", "sqs", "ReceiveMessage", {"QueueUrl": self.state["queue_url"],
                                                                      "MaxNumberOfMessages": 10}, self.REGION, version="1.0")
        self.assertEqual(status, 200, body)
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
        self.assertEqual(status, 200, body)
        import re

        return sum(float(x) for x in re.findall(r"<Sum>([^<]+)</Sum>", body))

    def test_the_notification_is_published_and_delivered(self):
        self.received()
        Received.bodies.clear()
        delivered = self.metric("NumberOfNotificationsDelivered")
        actions = len(self.history("Action"))
        self.alarm()
        update = self.history("StateUpdate")[0]
        self.assertEqual(update["HistorySummary"], "Alarm updated from OK to ALARM")
        self.assertEqual(json.loads(update["HistoryData"])["newState"]["stateValue"], "ALARM")
        self.assertEqual(len(self.history("Action")), actions, "published after the delay")
        settle()
        action = self.history("Action")[0]
        self.assertEqual(action["HistorySummary"], f"Successfully executed action {self.state['topic']}")
        data = json.loads(action["HistoryData"])
        self.assertEqual((data["actionState"], data["notificationResource"]), ("Succeeded", self.state["topic"]))
        messages = self.received()
        self.assertEqual(len(messages), 1)
        self.assertEqual((messages[0]["Type"], messages[0]["TopicArn"]), ("Notification", self.state["topic"]))
        alarm = json.loads(messages[0]["Message"])
        self.assertEqual((alarm["AlarmName"], alarm["NewStateValue"], alarm["OldStateValue"], alarm["NewStateReason"]),
                         ("dsvc-root", "ALARM", "OK", "canary"))
        self.assertEqual(alarm["AlarmArn"], f"arn:aws:cloudwatch:{self.REGION}:{ACCOUNT}:alarm:dsvc-root")
        self.assertEqual(alarm["Region"], "US West (Oregon)")
        self.assertEqual([json.loads(b["Message"])["AlarmName"] for b in Received.bodies], ["dsvc-root"], "the HTTP endpoint")
        self.assertEqual(self.metric("NumberOfNotificationsDelivered"), delivered + 2)
        # The same state again changes nothing, and invokes no action.
        self.alarm()
        settle()
        self.assertEqual(self.history("Action")[0]["Timestamp"], action["Timestamp"])

    def test_a_key_policy_without_cloudwatch_fails_the_action(self):
        set_key_policy(self.REGION, self.state["key"], [])
        self.alarm()
        settle()
        action = self.history("Action")[0]
        self.assertEqual(action["HistorySummary"],
                         f'Failed to execute action {self.state["topic"]}. Received error: '
                         '"CloudWatch Alarms does not have authorization to access the SNS topic encryption key."')
        self.assertEqual(json.loads(action["HistoryData"])["actionState"], "Failed")
        self.assertEqual(self.received(), [], "nothing published")
        set_key_policy(self.REGION, self.state["key"], self.key_statements())
        cloudwatch("SetAlarmState", {"AlarmName": "dsvc-root", "StateValue": "OK", "StateReason": "reset"}, self.REGION)
        self.alarm()
        settle()
        self.assertTrue(self.history("Action")[0]["HistorySummary"].startswith("Successfully"))
        self.assertEqual(len(self.received()), 1)

    def test_a_topic_policy_refusing_cloudwatch_fails_the_action(self):
        d = self.state
        self.sns("SetTopicAttributes", {"TopicArn": d["topic"], "AttributeName": "Policy", "AttributeValue": json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                                                    "Action": "sns:*", "Resource": d["topic"]}]})})
        try:
            self.alarm()
            settle()
            summary = self.history("Action")[0]["HistorySummary"]
            self.assertIn(f"is not authorized to perform: SNS:Publish on resource: {d['topic']}", summary)
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
        self.assertTrue(self.history("Action")[0]["HistorySummary"].startswith("Successfully"), "published to the topic")
        self.assertEqual(self.received(), [], "not delivered to the queue")
        self.assertEqual(self.metric("NumberOfNotificationsFailed"), failed + 1)
        self.set_queue_policy(self.queue_policy())
        cloudwatch("SetAlarmState", {"AlarmName": "dsvc-root", "StateValue": "OK", "StateReason": "reset"}, self.REGION)
        self.alarm()
        settle()
        self.assertEqual(len(self.received()), 1)

    def test_http_endpoints_off_the_loopback_interface_are_not_reached(self):
        d = self.state
        body = self.sns("Subscribe", {"TopicArn": d["topic"], "Protocol": "https", "Endpoint": "https://192.0.2.1/hook"})
        failed = self.metric("NumberOfNotificationsFailed")
        try:
            self.alarm()
            settle()
            self.assertEqual(self.metric("NumberOfNotificationsFailed"), failed + 1)
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
            self.assertEqual(self.metric("NumberOfNotificationsDelivered"), delivered + 3)
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
        r = test_authz.APP.open(path, method="POST", headers=test_authz.sign("POST", path, "", {
            k: v for k, v in headers.items() if k != test_authz.SIGN_AS}, data, "testing", "monitoring", self.REGION), data=data)
        self.assertEqual(r.status_code, 200, r.get_data())
        items = cbor2.loads(r.get_data())["AlarmHistoryItems"]
        self.assertEqual(items[0]["HistorySummary"], "Alarm updated from OK to ALARM")
        self.assertTrue(all(i["Timestamp"] >= since for i in items), "StartDate bounds the history")

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
            self.assertEqual(bucket.get_permission("s3:GetObject", "arn:aws:s3:::tls-only-no-iam/k"),
                             PermissionResult.PERMITTED)
        finally:
            os.environ["ASSURE_IAM"] = before or "on"

if __name__ == "__main__":
    unittest.main()
