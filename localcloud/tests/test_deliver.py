"""CloudTrail's deliveries (deliver.py): event records, log files in the trail's bucket as the service
principal, CloudWatch Logs, GetTrailStatus from what was delivered, shadow trails by ARN. Each test
breaks one thing. Against moto in this process, through the extension's WSGI app (test_authz's
helpers); deliveries are run at once with scheduler.flush() unless a test waits for the thread.

    VENV/bin/python -m pytest tests/test_deliver.py
"""

import datetime
import gzip
import hashlib
import json
import re
import time
import unittest
import uuid

from assure_local import scheduler
from tests import authz_client as t
from tests.authz_client import ACCOUNT, REGION, auth, call

CT = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."


def setUpModule() -> None:
    if t.APP is None:  # run alone (with test_authz in one process, its setUpModule made the app)
        t.setUpModule()
    # The shortest transition (0.5 s), and roles usable at once.
    t.limits("POST", {"transitionSeconds": 0.5, "iamPropagationSeconds": 0})


def tearDownModule() -> None:
    t.limits("DELETE")


def jcall(target: str, service: str, body: dict, region: str = REGION, key: str = "testing",
          token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    headers.update(auth(key, service, region))
    if token:
        headers["X-Amz-Security-Token"] = token
    status, text = call("POST", "/", headers, json.dumps(body))
    return status, json.loads(text or "{}")


def ct(operation: str, body: dict, region: str = REGION, **who) -> tuple[int, dict]:
    return jcall(CT + operation, "cloudtrail", body, region, **who)


def canary(region: str = REGION, **who) -> str:
    """A read-only management call whose parameters carry a unique marker (as assure's canary)."""
    marker = f"canary-{uuid.uuid4().hex[:12]}"
    status, body = jcall("Logs_20140328.DescribeLogGroups", "logs", {"logGroupNamePrefix": marker}, region, **who)
    assert status == 200, body
    return marker


def write_canary(region: str = REGION) -> str:
    """A write management call carrying a marker."""
    marker = f"canary-{uuid.uuid4().hex[:12]}"
    status, body = jcall("Logs_20140328.CreateLogGroup", "logs", {"logGroupName": marker}, region)
    assert status == 200, body
    return marker


def trail_policy(bucket: str, write: bool = True, account: str = ACCOUNT) -> str:
    """CloudTrail's bucket policy (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html)."""
    statements = [{"Sid": "Acl", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                   "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{bucket}"}]
    if write:
        statements.append({"Sid": "Write", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                           "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/*",
                           "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}})
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def bucket_for_trail(bucket: str) -> None:
    admin = auth("testing", "s3")
    status, body = call("PUT", f"/{bucket}", admin)
    assert status == 200, body
    put_policy(bucket, trail_policy(bucket))


def put_policy(bucket: str, policy: str) -> None:
    status, body = call("PUT", f"/{bucket}", auth("testing", "s3"), policy, "policy")
    assert status < 300, body


def objects(bucket: str) -> dict[str, bytes]:
    from moto.s3.models import s3_backends

    found = s3_backends[ACCOUNT]["aws"].buckets[bucket]
    return {k: found.keys[k].value for k in list(found.keys.keys())}


def log_files(bucket: str, marker: str | None = None) -> dict[str, dict]:
    """The bucket's CloudTrail log files (gunzipped), those holding `marker` if given."""
    out = {}
    for key, value in objects(bucket).items():
        if "/CloudTrail/" not in key:
            continue
        text = gzip.decompress(value).decode()
        if marker is None or marker in text:
            out[key] = json.loads(text)
    return out


def status(name: str, region: str = REGION, **who) -> dict:
    code, body = ct("GetTrailStatus", {"Name": name}, region, **who)
    assert code == 200, body
    return body


class Trailed(unittest.TestCase):
    """A single-Region trail in us-east-1, logging to its own bucket; deleted after the test."""

    MULTI = False

    def setUp(self):

        scheduler.flush()
        self.name = f"t-{uuid.uuid4().hex[:8]}"
        self.bucket = f"trail-{self.name}"
        bucket_for_trail(self.bucket)
        self.create()
        assert ct("StartLogging", {"Name": self.name})[0] == 200

    def create(self, **extra):
        body = {"Name": self.name, "S3BucketName": self.bucket, "IsMultiRegionTrail": self.MULTI, **extra}
        code, answer = ct("CreateTrail", body)
        assert code == 200, answer
        self.arn = answer["TrailARN"]

    def tearDown(self):

        ct("DeleteTrail", {"Name": self.name})
        scheduler.flush()

    def flush(self):

        scheduler.flush()


NAME = re.compile(rf"^AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/(\d{{4}})/(\d{{2}})/(\d{{2}})/"
                  rf"{ACCOUNT}_CloudTrail_us-east-1_(\d{{8}}T\d{{4}}Z)_[A-Za-z0-9]{{16}}\.json\.gz$")


class LogFiles(Trailed):
    def test_an_event_is_delivered_after_the_delay_to_its_regions_log_file(self):
        marker = canary()
        assert log_files(self.bucket, marker) == {}, "not before the delay"
        self.flush()
        files = log_files(self.bucket, marker)
        assert len(files) == 1, objects(self.bucket).keys()
        key, doc = next(iter(files.items()))
        m = NAME.match(key)
        assert m is not None, key
        today = datetime.datetime.now(datetime.UTC)
        assert m is not None
        assert m.group(1, 2, 3) == (f"{today:%Y}", f"{today:%m}", f"{today:%d}")
        rec = next(r for r in doc["Records"] if marker in json.dumps(r))
        assert rec["eventName"] == "DescribeLogGroups"
        assert rec["eventSource"] == "logs.amazonaws.com"
        assert rec["awsRegion"] == REGION
        assert rec["requestParameters"] == {"logGroupNamePrefix": marker}
        assert rec["readOnly"] is True
        assert (rec["eventType"], rec["eventCategory"], rec["managementEvent"]) == ("AwsApiCall", "Management", True)
        assert rec["recipientAccountId"] == ACCOUNT
        assert rec["userIdentity"]["type"] == "IAMUser"
        assert rec["userIdentity"]["accessKeyId"] == "testing"
        assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", rec["eventTime"])
        # The object is the bucket owner's, written by CloudTrail, and GetTrailStatus says so.
        answer = status(self.name)
        assert "LatestDeliveryError" not in answer
        assert answer["LatestDeliveryTime"] > time.time() - 60
        assert re.search(r"Z$", answer["LatestDeliveryAttemptSucceeded"])
        assert re.search(r"Z$", answer["TimeLoggingStarted"])

    def test_the_delivery_thread_delivers_on_its_own(self):
        marker = canary()
        deadline = time.monotonic() + 5
        while not log_files(self.bucket, marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(log_files(self.bucket, marker)) == 1, "delivered after the transition, unflushed"

    def test_the_flush_endpoint_runs_what_is_queued(self):
        marker = canary()
        code, body = call("POST", "/assure-api/deliveries/flush")
        assert code == 200
        assert json.loads(body)["ran"] >= 1
        assert len(log_files(self.bucket, marker)) == 1

    def test_a_region_a_single_region_trail_does_not_cover_gets_nothing(self):
        marker = canary("eu-west-1")
        self.flush()
        assert log_files(self.bucket, marker) == {}
        assert not any("/eu-west-1/" in k for k in objects(self.bucket))

    def test_a_stopped_trail_records_nothing(self):
        assert ct("StopLogging", {"Name": self.name})[0] == 200
        self.flush()
        marker = canary()
        self.flush()
        assert log_files(self.bucket, marker) == {}
        assert status(self.name)["IsLogging"] is False
        assert re.search(r"Z$", status(self.name)["TimeLoggingStopped"])

    def test_write_only_selectors_skip_reads(self):
        code, body = ct("PutEventSelectors", {"TrailName": self.name, "EventSelectors": [{"ReadWriteType": "WriteOnly"}]})
        assert code == 200, body
        read, write = canary(), write_canary()
        self.flush()
        assert log_files(self.bucket, read) == {}, "a read under WriteOnly"
        files = log_files(self.bucket, write)
        assert len(files) == 1
        rec = next(r for f in files.values() for r in f["Records"] if write in json.dumps(r))
        assert rec["readOnly"] is False

    def test_advanced_selectors_of_management_reads(self):
        selectors = [{"Name": "reads", "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                                          {"Field": "readOnly", "Equals": ["true"]}]}]
        code, body = ct("PutEventSelectors", {"TrailName": self.name, "AdvancedEventSelectors": selectors})
        assert code == 200, body
        read, write = canary(), write_canary()
        self.flush()
        assert len(log_files(self.bucket, read)) == 1
        assert log_files(self.bucket, write) == {}, "a write under readOnly = true"

    def test_s3_object_operations_are_data_events(self):
        admin = auth("testing", "s3")
        marker = f"canary-{uuid.uuid4().hex[:12]}"
        assert call("PUT", f"/{self.bucket}/{marker}", admin, b"x")[0] == 200
        assert call("PUT", f"/{self.bucket}", admin, "<Tagging><TagSet><Tag><Key>k</Key><Value>"
                              f"{marker}</Value></Tag></TagSet></Tagging>", "tagging")[0] == 204
        self.flush()
        files = log_files(self.bucket, self.bucket)
        names = {r["eventName"] for f in files.values() for r in f["Records"]}
        assert "PutBucketTagging" in names
        assert "PutObject" not in names

    def test_a_global_service_event_reaches_only_trails_that_include_them(self):
        marker = f"canary-{uuid.uuid4().hex[:12]}"
        t.query_call("iam", "ListRoles", {"PathPrefix": f"/{marker}/"})
        self.flush()
        files = log_files(self.bucket, marker)
        assert len(files) == 1, "IncludeGlobalServiceEvents is true by default"
        assert all("/us-east-1/" in k for k in files)
        rec = next(r for f in files.values() for r in f["Records"] if marker in json.dumps(r))
        assert (rec["eventSource"], rec["awsRegion"]) == ("iam.amazonaws.com", "us-east-1")
        assert ct("UpdateTrail", {"Name": self.name, "IncludeGlobalServiceEvents": False})[0] == 200
        marker = f"canary-{uuid.uuid4().hex[:12]}"
        t.query_call("iam", "ListRoles", {"PathPrefix": f"/{marker}/"})
        self.flush()
        assert log_files(self.bucket, marker) == {}


class Refusals(Trailed):
    def test_a_bucket_policy_without_the_write_refuses_the_log_file(self):
        put_policy(self.bucket, trail_policy(self.bucket, write=False))
        marker = canary()
        # Reported at once (the next event is an attempt), and the log file is never written.
        assert status(self.name)["LatestDeliveryError"] == "AccessDenied"
        self.flush()
        assert log_files(self.bucket, marker) == {}
        assert status(self.name)["LatestDeliveryError"] == "AccessDenied"
        assert re.search(r"Z$", status(self.name)["LatestDeliveryAttemptTime"])
        # Restored: the error stays until a log file is delivered, then clears.
        put_policy(self.bucket, trail_policy(self.bucket))
        marker = canary()
        assert status(self.name).get("LatestDeliveryError") == "AccessDenied", "until a delivery"
        self.flush()
        assert len(log_files(self.bucket, marker)) == 1
        assert "LatestDeliveryError" not in status(self.name)

    def test_a_deleted_bucket_is_no_such_bucket(self):
        from moto.s3.models import s3_backends

        # The bucket goes (with its objects) behind CloudTrail's back.
        backend = s3_backends[ACCOUNT]["aws"]
        backend.buckets[self.bucket].keys.clear()
        backend.delete_bucket(self.bucket)
        canary()
        self.flush()
        assert status(self.name)["LatestDeliveryError"] == "NoSuchBucket"


KEY_ADMIN = {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Action": "kms:*", "Resource": "*"}
KEY_ENCRYPT = {"Sid": "CloudTrailEncrypt", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
               "Action": "kms:GenerateDataKey*", "Resource": "*"}


def key_policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


class Encrypted(Trailed):
    def create(self, **extra):
        code, body = jcall("TrentService.CreateKey", "kms", {"Policy": key_policy(KEY_ADMIN, KEY_ENCRYPT)})
        assert code == 200, body
        self.key = body["KeyMetadata"]["Arn"]
        super().create(KmsKeyId=self.key)

    def set_key_policy(self, *statements: dict) -> None:
        code, body = jcall("TrentService.PutKeyPolicy", "kms",
                           {"KeyId": self.key, "PolicyName": "default", "Policy": key_policy(*statements)})
        assert code == 200, body

    def test_log_files_are_encrypted_with_the_trails_key(self):
        marker = canary()
        self.flush()
        (key, _), = log_files(self.bucket, marker).items()
        code, _ = t.call("HEAD", f"/{self.bucket}/{key}", auth("testing", "s3"))
        assert code == 200
        from moto.s3.models import s3_backends

        headers = s3_backends[ACCOUNT]["aws"].buckets[self.bucket].keys[key].response_dict
        assert headers["x-amz-server-side-encryption"] == "aws:kms"
        assert headers["x-amz-server-side-encryption-aws-kms-key-id"] == self.key

    def test_a_key_policy_without_generate_data_key_refuses_the_log_file(self):
        self.set_key_policy(KEY_ADMIN)
        marker = canary()
        self.flush()
        assert log_files(self.bucket, marker) == {}
        assert status(self.name)["LatestDeliveryError"] == "AccessDenied"
        self.set_key_policy(KEY_ADMIN, KEY_ENCRYPT)
        marker = canary()
        self.flush()
        assert len(log_files(self.bucket, marker)) == 1
        assert "LatestDeliveryError" not in status(self.name)

    def test_a_disabled_key_refuses_the_log_file(self):
        key_id = self.key.rsplit("/", 1)[-1]  # moto's DisableKey takes the key's ID only
        assert jcall("TrentService.DisableKey", "kms", {"KeyId": key_id})[0] == 200
        marker = canary()
        self.flush()
        assert log_files(self.bucket, marker) == {}
        assert status(self.name)["LatestDeliveryError"] == "KMS.DisabledException"
        assert jcall("TrentService.EnableKey", "kms", {"KeyId": key_id})[0] == 200


class Digests(Trailed):
    def create(self, **extra):
        super().create(EnableLogFileValidation=True)

    def test_a_digest_lists_each_log_file_with_its_hash(self):
        marker = canary()
        self.flush()  # the log file, then the digest of its hour
        (log_key, _), = log_files(self.bucket, marker).items()
        digests = {k: json.loads(gzip.decompress(v)) for k, v in objects(self.bucket).items() if "/CloudTrail-Digest/" in k}
        assert len(digests) == 1, list(objects(self.bucket))
        key, doc = next(iter(digests.items()))
        assert re.search(rf"^AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/\d{{4}}/\d\d/\d\d/" \
                              rf"{ACCOUNT}_CloudTrail-Digest_us-east-1_{self.name}_us-east-1_\d{{8}}T\d{{6}}Z\.json\.gz$", key)
        entry = next(f for f in doc["logFiles"] if f["s3Object"] == log_key)
        raw = gzip.decompress(objects(self.bucket)[log_key])
        assert entry["hashValue"] == hashlib.sha256(raw).hexdigest()
        assert doc["digestS3Object"] == key
        assert doc["previousDigestS3Object"] is None, "the first digest starts the chain"
        assert "LatestDigestDeliveryTime" in status(self.name)


LOGS_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


class CloudWatchLogs(Trailed):
    def create(self, **extra):
        self.group = f"/trail/{self.name}"
        assert jcall("Logs_20140328.CreateLogGroup", "logs", {"logGroupName": self.group})[0] == 200
        group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{self.group}:*"
        self.role = f"trail-logs-{self.name}"
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{self.group}:log-stream:*"}]})
        role_arn = t.make_role(self.role, LOGS_TRUST, policy)
        super().create(CloudWatchLogsLogGroupArn=group_arn, CloudWatchLogsRoleArn=role_arn)

    def stream_events(self) -> list[str]:
        from moto.logs.models import logs_backends

        group = logs_backends[ACCOUNT][REGION].groups[self.group]
        stream = group.streams.get(f"{ACCOUNT}_CloudTrail_{REGION}")
        return [e.message for e in stream.events] if stream is not None else []

    def test_events_reach_the_log_group_and_a_refusal_is_reported(self):
        marker = canary()
        self.flush()
        assert any(marker in m for m in self.stream_events()), "the stream account_CloudTrail_region"
        event = json.loads(next(m for m in self.stream_events() if marker in m))
        assert event["eventName"] == "DescribeLogGroups"
        answer = status(self.name)
        assert "LatestCloudWatchLogsDeliveryTime" in answer
        assert "LatestCloudWatchLogsDeliveryError" not in answer
        # The role loses its permission: nothing more reaches the group; the S3 log file still goes.
        from moto.iam.models import iam_backends

        iam_backends[ACCOUNT]["aws"].delete_role_policy(self.role, "all")
        marker = canary()
        self.flush()
        assert not any(marker in m for m in self.stream_events())
        assert status(self.name)["LatestCloudWatchLogsDeliveryError"] == "AccessDeniedException"
        assert len(log_files(self.bucket, marker)) == 1

    def test_a_deleted_log_group_is_resource_not_found(self):
        assert jcall("Logs_20140328.DeleteLogGroup", "logs", {"logGroupName": self.group})[0] == 200
        canary()
        self.flush()
        assert status(self.name)["LatestCloudWatchLogsDeliveryError"] == "ResourceNotFoundException"


class ShadowTrails(Trailed):
    MULTI = True

    def test_a_multi_region_trail_answers_by_arn_from_every_region(self):
        for region in ("us-east-1", "eu-west-1", "ap-south-1"):
            answer = status(self.arn, region)
            assert answer["IsLogging"] is True, region
            code, body = ct("GetEventSelectors", {"TrailName": self.arn}, region)
            assert (code, body.get("TrailARN")) == (200, self.arn), body
            code, body = ct("GetTrail", {"Name": self.arn}, region)
            assert (code, body["Trail"]["HomeRegion"]) == (200, REGION), body
            code, body = ct("GetInsightSelectors", {"TrailName": self.arn}, region)
            assert (code, body.get("__type")) == (400, "InsightNotEnabledException"), body
        insights = [{"InsightType": "ApiCallRateInsight"}]
        assert ct("PutInsightSelectors", {"TrailName": self.name, "InsightSelectors": insights})[0] == 200
        code, body = ct("GetInsightSelectors", {"TrailName": self.arn}, "eu-west-1")
        assert (code, body["InsightSelectors"]) == (200, insights), body

    def test_a_name_outside_the_home_region_is_not_found(self):
        for operation, field in (("GetTrailStatus", "Name"), ("GetTrail", "Name"), ("GetEventSelectors", "TrailName"),
                                 ("GetInsightSelectors", "TrailName")):
            code, body = ct(operation, {field: self.name}, "eu-west-1")
            assert (code, body.get("__type")) == (400, "TrailNotFoundException"), operation

    def test_a_single_region_trails_arn_from_another_region_is_not_found(self):
        name = f"single-{uuid.uuid4().hex[:8]}"
        code, body = ct("CreateTrail", {"Name": name, "S3BucketName": self.bucket})
        assert code == 200, body
        try:
            assert status(body["TrailARN"])["IsLogging"] == False, "its own Region answers"
            code, answer = ct("GetTrailStatus", {"Name": body["TrailARN"]}, "eu-west-1")
            assert (code, answer.get("__type")) == (400, "TrailNotFoundException")
        finally:
            ct("DeleteTrail", {"Name": name})

    def test_every_region_delivers_under_its_own_folder(self):
        markers = {region: canary(region) for region in ("us-east-1", "eu-west-1")}
        self.flush()
        for region, marker in markers.items():
            (key, _), = log_files(self.bucket, marker).items()
            assert key.startswith(f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/"), key
            assert f"/{ACCOUNT}_CloudTrail_{region}_" in key


class OrganizationTrail(unittest.TestCase):
    """The management account's organization trail files a member's events under the organization's
    ID, and the member reads its status by ARN."""

    def setUp(self):
        from moto.organizations.models import organizations_backends


        scheduler.flush()
        if organizations_backends[ACCOUNT]["aws"].org is None:
            assert t.org("CreateOrganization", {"FeatureSet": "ALL"})[0] == 200
        backend = organizations_backends[ACCOUNT]["aws"]
        self.org_id = backend.org.id  # type: ignore[union-attr]  # made by setUpModule
        member = next((a.id for a in backend.accounts if a.name == "deliver-member"), None)
        if member is None:
            code, body = t.org("CreateAccount", {"Email": "deliver@example.com", "AccountName": "deliver-member"})
            member = json.loads(body)["CreateAccountStatus"]["AccountId"]
        self.member = member
        t.enable_trusted_access("cloudtrail.amazonaws.com")
        self.name = f"org-{uuid.uuid4().hex[:8]}"
        self.bucket = f"trail-{self.name}"
        bucket_for_trail(self.bucket)
        code, body = ct("CreateTrail", {"Name": self.name, "S3BucketName": self.bucket, "IsMultiRegionTrail": True,
                                        "IsOrganizationTrail": True})
        assert code == 200, body
        self.arn = body["TrailARN"]
        assert ct("StartLogging", {"Name": self.name})[0] == 200

    def tearDown(self):

        ct("DeleteTrail", {"Name": self.name})
        scheduler.flush()

    def test_a_members_events_are_filed_under_the_organization(self):
        key, token = t.assume(f"arn:aws:iam::{self.member}:role/OrganizationAccountAccessRole")
        marker = canary("eu-west-1", key=key, token=token)

        scheduler.flush()
        files = log_files(self.bucket, marker)
        assert len(files) == 1, list(objects(self.bucket))
        path, doc = next(iter(files.items()))
        assert path.startswith(f"AWSLogs/{self.org_id}/{self.member}/CloudTrail/eu-west-1/"), path
        rec = next(r for r in doc["Records"] if marker in json.dumps(r))
        assert rec["recipientAccountId"] == self.member
        identity = rec["userIdentity"]
        assert identity["type"] == "AssumedRole"
        assert identity["sessionContext"]["sessionIssuer"]["arn"] == \
                         f"arn:aws:iam::{self.member}:role/OrganizationAccountAccessRole"
        assert identity["arn"] == f"arn:aws:sts::{self.member}:assumed-role/OrganizationAccountAccessRole/test"
        # The management account's own events go under the organization too.
        marker = canary()
        scheduler.flush()
        (path, _), = log_files(self.bucket, marker).items()
        assert path.startswith(f"AWSLogs/{self.org_id}/{ACCOUNT}/CloudTrail/us-east-1/"), path
        # The member reads the trail's status by its ARN, from another Region too.
        answer = status(self.arn, "eu-west-1", key=key, token=token)
        assert answer["IsLogging"] is True
        assert "LatestDeliveryTime" in answer


if __name__ == "__main__":
    unittest.main()
