"""Findings, events and session logs travelling as AWS sends them (deliver_findings.py): an
organization as assure leaves it (the security account administers IAM Access Analyzer, its findings
rules forward to the home Region's bus and a Firehose stream into the logging account's bucket; a
member account logs its sessions to that bucket), then each test breaks one thing. Requests go
through the extension's WSGI app in this process (test_authz's helpers sign them); deliveries are
flushed (scheduler.flush) rather than waited for.

Needs the local cloud's Python environment: from localcloud/,
    VENV/bin/python -m pytest tests/test_deliver_findings.py"""

import gzip
import json
import re
import time
import unittest
from typing import Any
from urllib.parse import urlencode

from assure_local import events as event_bus
from assure_local import scheduler
from tests import authz_client as base
from tests.authz_client import auth, call

HOME, OTHER = "us-east-1", "eu-west-1"
OUTSIDE = "999988887777"
ANALYZER = "assure-organization"
FINDINGS = "assure-access-analyzer-findings"
PRINCIPAL = "access-analyzer.amazonaws.com"
W: dict = {}  # the world: account IDs, credentials, ARNs


def setUpModule() -> None:
    if base.APP is None:
        base.setUpModule()
    base.limits("POST", {"transitionSeconds": 0.5, "iamPropagationSeconds": 0})
    build_world()


def tearDownModule() -> None:
    base.limits("DELETE")


# ---------------------------------------------------------------------------------------------------
# Requests as an account's administrator (a session of its OrganizationAccountAccessRole)


def headers(creds, service: str, region: str = HOME, **extra) -> dict:
    key, token = creds
    return dict(auth(key, service, region), **{"X-Amz-Security-Token": token}, **extra)


def rest(creds, method: str, service: str, path: str, body=None, region: str = HOME, query: str = ""):
    h = headers(creds, service, region, **{"Content-Type": "application/json"})
    status, text = call(method, path, h, json.dumps(body) if body is not None else b"", query)
    return status, json.loads(text or "{}")


def jsonrpc(creds, target: str, service: str, body: dict, region: str = HOME):
    h = headers(creds, service, region, **{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    status, text = call("POST", "/", h, json.dumps(body))
    return status, json.loads(text or "{}")


def iam(creds, action: str, **params):
    h = headers(creds, "iam", **{"Content-Type": "application/x-www-form-urlencoded"})
    return call("POST", "/", h, urlencode(dict(params, Action=action, Version="2010-05-08")))


def ok(answer, what: str = ""):
    assert answer[0] < 300, f"{what}: {answer}"
    return answer[1]


def events(creds, operation: str, body: dict, region: str = HOME):
    return ok(jsonrpc(creds, f"AWSEvents.{operation}", "events", body, region), operation)


def ssm(creds, operation: str, body: dict, region: str = HOME):
    return jsonrpc(creds, f"AmazonSSM.{operation}", "ssm", body, region)


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def eventually(check, what: str, timeout: float = 20.0):
    """`check()`'s first true value, flushing the queued deliveries between tries."""

    deadline = time.monotonic() + timeout
    while True:
        scheduler.flush()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------------
# The world, as the access-analyzer, logging-bucket and session-manager steps leave it


def account(name: str) -> str:
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[base.ACCOUNT]["aws"]
    found = next((a.id for a in backend.accounts if a.name == name), None)
    if found is None:
        found = json.loads(ok(base.org("CreateAccount", {"Email": f"{name}@example.com", "AccountName": name})))[
            "CreateAccountStatus"]["AccountId"]
    return found


def delivery_policy(bucket: str, key: str, put: bool = True) -> str:
    actions = ["s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket"] + (["s3:PutObject"] if put else [])
    return doc({"Effect": "Allow", "Action": actions,
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/access-analyzer/*"]},
               {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key})


def forward_policy(security: str, put_events: bool = True) -> str:
    statements = [{"Effect": "Allow", "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
                   "Resource": f"arn:aws:firehose:{HOME}:{security}:deliverystream/{FINDINGS}"}]
    if put_events:
        statements.append({"Effect": "Allow", "Action": "events:PutEvents",
                           "Resource": f"arn:aws:events:{HOME}:{security}:event-bus/default"})
    return doc(*statements)


def instance_policy(member: str, bucket: str, key: str, put: bool = True, encryption: bool = True,
                    kms: bool = True) -> str:
    statements = [{"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": key}] if kms else []
    if put:
        statements.append({"Effect": "Allow", "Action": "s3:PutObject",
                           "Resource": f"arn:aws:s3:::{bucket}/session-manager/{member}/*"})
    if encryption:
        statements.append({"Effect": "Allow", "Action": "s3:GetEncryptionConfiguration", "Resource": f"arn:aws:s3:::{bucket}"})
    return doc(*statements)


def session_preferences(member: str, bucket: str, key_id: str = "") -> str:
    return json.dumps({"schemaVersion": "1.0", "description": "test", "sessionType": "Standard_Stream", "inputs": {
        "s3BucketName": bucket, "s3KeyPrefix": f"session-manager/{member}/{HOME}", "s3EncryptionEnabled": True,
        "cloudWatchLogGroupName": "", "cloudWatchEncryptionEnabled": True, "cloudWatchStreamingEnabled": False,
        "kmsKeyId": key_id, "runAsEnabled": False, "runAsDefaultUser": "", "idleSessionTimeout": "20"}})


def build_world() -> None:
    from moto.organizations.models import organizations_backends

    if organizations_backends[base.ACCOUNT]["aws"].org is None:
        ok(base.org("CreateOrganization", {"FeatureSet": "ALL"}))
    org_id = organizations_backends[base.ACCOUNT]["aws"].org.id  # type: ignore[union-attr]  # made by setUpModule
    security, logging, member = account("df-security"), account("df-logging"), account("df-member")
    ok(base.org("EnableAWSServiceAccess", {"ServicePrincipal": PRINCIPAL}))
    status, body = base.org("RegisterDelegatedAdministrator", {"AccountId": security, "ServicePrincipal": PRINCIPAL})
    assert status == 200 or "AccountAlreadyRegistered" in body, body
    sec = base.assume(f"arn:aws:iam::{security}:role/OrganizationAccountAccessRole")
    log = base.assume(f"arn:aws:iam::{logging}:role/OrganizationAccountAccessRole")
    mem = base.assume(f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole")

    # The logging account: its key (logging_bucket.rs key_policy) and bucket (logging_bucket_policy).
    key_policy = doc(
        {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{logging}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "OrganizationUsesKey", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id, "kms:ViaService": f"s3.{HOME}.amazonaws.com"}}})
    key = ok(jsonrpc(log, "TrentService.CreateKey", "kms", {"Policy": key_policy}), "CreateKey")["KeyMetadata"]["Arn"]
    bucket = f"df-logs-{logging}-{HOME}"
    s3 = headers(log, "s3")
    ok(call("PUT", f"/{bucket}", s3), "CreateBucket")
    encryption = ("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>"
                  f"<SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>{key}</KMSMasterKeyID>"
                  "</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule>"
                  "</ServerSideEncryptionConfiguration>")
    ok(call("PUT", f"/{bucket}", s3, encryption, query="encryption"), "PutBucketEncryption")
    arn = f"arn:aws:s3:::{bucket}"
    policy = doc(
        {"Sid": "AccessAnalyzerFindings", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{security}:root"},
         "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket"],
         "Resource": [arn, f"{arn}/access-analyzer/*"],
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id},
                       "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{security}:role/assure-findings-delivery"}}},
        {"Sid": "SessionManagerChecksEncryption", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": "s3:GetEncryptionConfiguration", "Resource": arn,
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}},
        {"Sid": "SessionManagerLogs", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:PutObject",
         "Resource": f"{arn}/session-manager/${{aws:PrincipalAccount}}/*",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}})
    ok(call("PUT", f"/{bucket}", s3, policy, query="policy"), "PutBucketPolicy")

    # The security account: the findings roles (controls/access_analyzer/mod.rs findings_role, events_role).
    firehose_trust = doc({"Effect": "Allow", "Principal": {"Service": "firehose.amazonaws.com"}, "Action": "sts:AssumeRole",
                          "Condition": {"StringEquals": {"sts:ExternalId": security}}})
    events_trust = doc({"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": security},
                                      "ArnLike": {"aws:SourceArn": f"arn:aws:events:*:{security}:rule/{FINDINGS}"}}})
    for name, trust, policy_name, policy in (("assure-findings-delivery", firehose_trust, "deliver", delivery_policy(bucket, key)),
                                             ("assure-findings-events", events_trust, "forward", forward_policy(security))):
        iam(sec, "CreateRole", RoleName=name, AssumeRolePolicyDocument=trust)
        ok(iam(sec, "PutRolePolicy", RoleName=name, PolicyName=policy_name, PolicyDocument=policy), "PutRolePolicy")
    stream = f"arn:aws:firehose:{HOME}:{security}:deliverystream/{FINDINGS}"
    status, body = jsonrpc(sec, "Firehose_20150804.CreateDeliveryStream", "firehose", {
        "DeliveryStreamName": FINDINGS, "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": f"arn:aws:iam::{security}:role/assure-findings-delivery", "BucketARN": arn,
            "Prefix": "access-analyzer/", "CompressionFormat": "GZIP",
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": key}}}})
    assert status == 200 or body.get("__type") == "ResourceInUseException", body
    time.sleep(0.7)  # the delegated administrator reaches Access Analyzer
    pattern = json.dumps({"source": ["aws.access-analyzer"], "detail-type": ["Access Analyzer Finding"]})
    events_role = f"arn:aws:iam::{security}:role/assure-findings-events"
    for region, target in ((HOME, {"Id": "firehose", "Arn": stream, "RoleArn": events_role}),
                           (OTHER, {"Id": "home-region", "Arn": f"arn:aws:events:{HOME}:{security}:event-bus/default",
                                    "RoleArn": events_role})):
        status, body = rest(sec, "PUT", "access-analyzer", "/analyzer", {"analyzerName": ANALYZER, "type": "ORGANIZATION"}, region)
        assert status == 200 or status == 409, body
        events(sec, "PutRule", {"Name": FINDINGS, "EventPattern": pattern}, region)
        events(sec, "PutTargets", {"Rule": FINDINGS, "Targets": [target]}, region)

    # The member account: its Session Manager preferences (controls/session_manager/mod.rs preferences) and a
    # managed instance whose role has what the README documents for instance roles.
    status, body = ssm(mem, "CreateDocument", {"Name": "SSM-SessionManagerRunShell", "DocumentType": "Session",
                                               "DocumentFormat": "JSON", "Content": session_preferences(member, bucket)})
    assert status == 200 or body.get("__type") == "DocumentAlreadyExists", body
    ec2_trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    core = doc({"Effect": "Allow", "Action": ["ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel",
                                             "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
                                             "ssmmessages:OpenDataChannel"], "Resource": "*"})
    iam(mem, "CreateRole", RoleName="df-instance", AssumeRolePolicyDocument=ec2_trust)
    ok(iam(mem, "PutRolePolicy", RoleName="df-instance", PolicyName="core", PolicyDocument=core))
    ok(iam(mem, "PutRolePolicy", RoleName="df-instance", PolicyName="logs",
           PolicyDocument=instance_policy(member, bucket, key)))
    instance = "i-0df0000000000001a"
    ok(call("POST", "/assure-api/managed-instances", {}, json.dumps(
        {"account": member, "region": HOME, "instanceId": instance, "roleName": "df-instance"})), "register")
    W.update(security=security, logging=logging, member=member, sec=sec, log=log, mem=mem, key=key, bucket=bucket,
             stream=stream, org_id=org_id, instance=instance, core=core)
    W["analyzers"] = {r: f"arn:aws:access-analyzer:{r}:{security}:analyzer/{ANALYZER}" for r in (HOME, OTHER)}
    eventually(lambda: all(rest(sec, "GET", "access-analyzer", f"/analyzer/{ANALYZER}", region=r)[1]["analyzer"]["status"]
                           == "ACTIVE" for r in (HOME, OTHER)), "the analyzers are ACTIVE")
    eventually(lambda: jsonrpc(sec, "Firehose_20150804.DescribeDeliveryStream", "firehose", {"DeliveryStreamName": FINDINGS})[1][
        "DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE", "the stream is ACTIVE")


# ---------------------------------------------------------------------------------------------------
# What arrived


def outside_role(name: str) -> str:
    """A role of the member account trusting an account outside the organization."""
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDE}:root"}, "Action": "sts:AssumeRole"})
    body = ok(iam(W["mem"], "CreateRole", RoleName=name, AssumeRolePolicyDocument=trust), "CreateRole")
    return base.tag("Arn", body)


def findings(region: str, resource: str) -> list[dict]:
    status, body = rest(W["sec"], "POST", "access-analyzer", "/finding",
                        {"analyzerArn": W["analyzers"][region], "filter": {"resource": {"eq": [resource]}}}, region)
    assert status == 200, body
    return body["findings"]


def finding(region: str, resource: str, status: str = "ACTIVE") -> dict | None:
    return next((f for f in findings(region, resource) if f["status"] == status), None)


def objects(prefix: str) -> dict[str, Any]:
    from moto.s3.models import s3_backends

    keys = s3_backends[W["logging"]]["aws"].buckets[W["bucket"]].keys
    return {k: keys[k] for k in list(keys.keys()) if k.startswith(prefix)}


def delivered_events() -> list[dict]:
    """Every event in the findings objects (Firehose concatenates records with no delimiter)."""
    out = []
    decoder = json.JSONDecoder()
    for obj in objects("access-analyzer/").values():
        text = gzip.decompress(obj.value).decode()
        at = 0
        while at < len(text):
            event, at = decoder.raw_decode(text, at)
            out.append(event)
    return out


def delivered(finding_id: str, status: str | None = None) -> dict | None:
    return next((e for e in delivered_events() if e["detail"]["id"] == finding_id
                 and (status is None or e["detail"]["status"] == status)), None)


def metric_values(account: str, region: str, namespace: str, name: str, dimension: tuple[str, str]) -> list[float]:
    from moto.cloudwatch.models import cloudwatch_backends

    return [getattr(m, "value", 0.0) for m in cloudwatch_backends[account][region].get_all_metrics()
            if m.namespace == namespace and m.name == name
            and any((d.name, d.value) == dimension for d in m.dimensions)]


def received(finding_id: str, region: str) -> list[dict]:

    return [e for (a, r, b, e) in list(event_bus.RECEIVED)
            if (a, r, b) == (W["security"], HOME, "default") and e["detail"]["id"] == finding_id
            and e["detail"]["region"] == region]


# ---------------------------------------------------------------------------------------------------


class FindingsTravel(unittest.TestCase):
    def test_a_role_trusting_an_outside_account_reaches_the_logging_bucket(self):
        role = outside_role("df-outside-travels")
        home = eventually(lambda: finding(HOME, role), "a finding in the home Region")
        other = eventually(lambda: finding(OTHER, role), "a finding in the other Region: IAM is global")
        assert (home["resourceType"], home["resourceOwnerAccount"], home["principal"], home["action"],
                          home["condition"], home["isPublic"]) == \
                         ("AWS::IAM::Role", W["member"], {"AWS": f"arn:aws:iam::{OUTSIDE}:root"}, ["sts:AssumeRole"], {},
                          False)
        status, body = rest(W["sec"], "GET", "access-analyzer", f"/finding/{home['id']}",
                            query=urlencode({"analyzerArn": W["analyzers"][HOME]}))
        assert (status, body["finding"]["id"]) == (200, home["id"])
        # The events: the home Region's own, and the other Region's forwarded to the home bus.
        assert received(home["id"], HOME), "the finding's event on the home bus"
        assert received(other["id"], OTHER), "the other Region's event forwarded to the home bus"
        event = eventually(lambda: delivered(home["id"]), "the home finding in the logging bucket")
        assert (event["source"], event["detail-type"], event["account"], event["region"], event["resources"]) == \
                         ("aws.access-analyzer", "Access Analyzer Finding", W["security"], HOME, [W["analyzers"][HOME]])
        assert {k: event["detail"][k] for k in ("status", "resource", "accountId", "region")} == \
                         {"status": "ACTIVE", "resource": role, "accountId": W["member"], "region": HOME}
        eventually(lambda: delivered(other["id"]), "the other Region's finding in the logging bucket")
        # Firehose's object: its name, its compression, the stream's key.
        names = [k for k, o in objects("access-analyzer/").items() if home["id"] in gzip.decompress(o.value).decode()]
        assert names
        assert re.search(r"^access-analyzer/\d{4}/\d{2}/\d{2}/\d{2}/" + FINDINGS + \
                         r"-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}\.gz$", names[0])
        assert objects("access-analyzer/")[names[0]].kms_key_id == W["key"]

    def test_a_disabled_forwarding_rule_forwards_nothing(self):
        events(W["sec"], "DisableRule", {"Name": FINDINGS}, OTHER)
        try:
            role = outside_role("df-outside-disabled")
            home = eventually(lambda: finding(HOME, role), "a finding in the home Region")
            other = eventually(lambda: finding(OTHER, role), "a finding in the other Region")
            eventually(lambda: delivered(home["id"]), "the home finding delivered")
            assert received(other["id"], OTHER) == [], "nothing forwarded"
            assert delivered(other["id"]) is None, "the other Region's finding is not in the bucket"
        finally:
            events(W["sec"], "EnableRule", {"Name": FINDINGS}, OTHER)

    def test_an_events_role_without_put_events_fails_the_forward(self):
        dims = ("RuleName", FINDINGS)
        before = len(metric_values(W["security"], OTHER, "AWS/Events", "FailedInvocations", dims))
        ok(iam(W["sec"], "PutRolePolicy", RoleName="assure-findings-events", PolicyName="forward",
               PolicyDocument=forward_policy(W["security"], put_events=False)))
        try:
            role = outside_role("df-outside-no-put-events")
            home = eventually(lambda: finding(HOME, role), "a finding in the home Region")
            other = eventually(lambda: finding(OTHER, role), "a finding in the other Region")
            eventually(lambda: delivered(home["id"]), "the home finding still delivered")
            failures = metric_values(W["security"], OTHER, "AWS/Events", "FailedInvocations", dims)
            assert len(failures) > before, "FailedInvocations for the forwarding rule"
            assert received(other["id"], OTHER) == []
            assert delivered(other["id"]) is None
        finally:
            ok(iam(W["sec"], "PutRolePolicy", RoleName="assure-findings-events", PolicyName="forward",
                   PolicyDocument=forward_policy(W["security"])))

    def test_a_firehose_role_that_may_not_put_objects_delivers_nothing(self):
        dims = ("DeliveryStreamName", FINDINGS)
        before = len(metric_values(W["security"], HOME, "AWS/Firehose", "DeliveryToS3.Success", dims))
        ok(iam(W["sec"], "PutRolePolicy", RoleName="assure-findings-delivery", PolicyName="deliver",
               PolicyDocument=delivery_policy(W["bucket"], W["key"], put=False)))
        try:
            role = outside_role("df-outside-no-put-object")
            home = eventually(lambda: finding(HOME, role), "a finding in the home Region")
            assert received(home["id"], HOME)
            values = eventually(lambda: metric_values(W["security"], HOME, "AWS/Firehose", "DeliveryToS3.Success",
                                                      dims)[before:], "Firehose's attempt reported")
            assert 0.0 in values, "DeliveryToS3.Success 0: the write was refused"
            assert delivered(home["id"]) is None, "no object holds the finding"
        finally:
            ok(iam(W["sec"], "PutRolePolicy", RoleName="assure-findings-delivery", PolicyName="deliver",
                   PolicyDocument=delivery_policy(W["bucket"], W["key"])))

    def test_deleting_the_role_resolves_its_finding(self):
        role = outside_role("df-outside-deleted")
        home = eventually(lambda: finding(HOME, role), "a finding")
        ok(iam(W["mem"], "DeleteRole", RoleName="df-outside-deleted"))
        resolved = eventually(lambda: finding(HOME, role, "RESOLVED"), "the finding RESOLVED")
        assert resolved["id"] == home["id"]
        assert finding(HOME, role) is None, "no ACTIVE finding left"
        eventually(lambda: delivered(home["id"], "RESOLVED"), "the RESOLVED event in the bucket")

    def test_a_grant_inside_the_organization_is_no_finding(self):
        trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{W['security']}:root"}, "Action": "sts:AssumeRole"},
                    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                     "Condition": {"StringEquals": {"aws:PrincipalOrgID": W["org_id"]}}})
        role = base.tag("Arn", ok(iam(W["mem"], "CreateRole", RoleName="df-inside", AssumeRolePolicyDocument=trust)))
        marker = outside_role("df-outside-marker")
        eventually(lambda: finding(HOME, marker), "the change after it analyzed")
        assert findings(HOME, role) == []


class FederatedFindings(unittest.TestCase):
    def test_a_role_trusting_an_identity_provider_is_a_finding(self):
        body = ok(iam(W["mem"], "CreateOpenIDConnectProvider", Url="https://token.actions.githubusercontent.com",
                      **{"ClientIDList.member.1": "sts.amazonaws.com", "ThumbprintList.member.1": "a" * 40}))
        provider = base.tag("OpenIDConnectProviderArn", body)
        trust = doc({"Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
                     "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:example/*"}}})
        role = base.tag("Arn", ok(iam(W["mem"], "CreateRole", RoleName="df-federated", AssumeRolePolicyDocument=trust)))
        found = eventually(lambda: finding(HOME, role), "a finding for the federated role")
        assert (found["principal"], found["action"], found["condition"]) == \
                         ({"Federated": provider}, ["sts:AssumeRoleWithWebIdentity"],
                          {"token.actions.githubusercontent.com:sub": "repo:example/*"})


class Timing(unittest.TestCase):
    def test_a_finding_waits_for_the_analysis_delay(self):
        # Nothing flushed: the delivery thread analyzes the change after the transition (0.5 s here).
        role = outside_role("df-outside-waits")
        assert findings(HOME, role) == [], "not analyzed at once"
        deadline = time.monotonic() + 20
        while finding(HOME, role) is None:
            assert time.monotonic() < deadline, "analyzed after the delay"
            time.sleep(0.1)


class BucketFindings(unittest.TestCase):
    def test_a_bucket_shared_outside_is_a_finding_in_its_region_only(self):
        bucket = f"df-shared-{W['member']}"
        s3 = headers(W["mem"], "s3")
        ok(call("PUT", f"/{bucket}", s3), "CreateBucket")
        policy = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OUTSIDE}:root"}, "Action": "s3:GetObject",
                      "Resource": f"arn:aws:s3:::{bucket}/*"})
        ok(call("PUT", f"/{bucket}", s3, policy, query="policy"), "PutBucketPolicy")
        shared = eventually(lambda: finding(HOME, f"arn:aws:s3:::{bucket}"), "a finding for the bucket")
        assert (shared["resourceType"], shared["action"], shared["isPublic"]) == \
                         ("AWS::S3::Bucket", ["s3:GetObject"], False)
        assert findings(OTHER, f"arn:aws:s3:::{bucket}") == [], "a bucket is in one Region"
        ok(call("DELETE", f"/{bucket}", s3, query="policy"), "DeleteBucketPolicy")
        eventually(lambda: finding(HOME, f"arn:aws:s3:::{bucket}", "RESOLVED"), "resolved with the policy gone")


class SessionLogs(unittest.TestCase):
    def session(self) -> str:
        status, body = ssm(W["mem"], "StartSession", {"Target": W["instance"]})
        assert status == 200, body
        assert body["SessionId"].startswith("test-"), "named for the caller's role session"
        return body["SessionId"]

    def described(self, session_id: str, state: str) -> Any:
        status, body = ssm(W["mem"], "DescribeSessions", {"State": state})
        assert status == 200, body
        return next((s for s in body["Sessions"] if s["SessionId"] == session_id), None)

    def log_key(self, session_id: str) -> str:
        return f"session-manager/{W['member']}/{HOME}/{session_id}.log"

    def set_logs_policy(self, **kwargs) -> None:
        ok(iam(W["mem"], "PutRolePolicy", RoleName="df-instance", PolicyName="logs",
               PolicyDocument=instance_policy(W["member"], W["bucket"], W["key"], **kwargs)))

    def test_the_instance_is_managed_and_online(self):
        status, body = ssm(W["mem"], "DescribeInstanceInformation", {})
        assert status == 200, body
        info = next(i for i in body["InstanceInformationList"] if i["InstanceId"] == W["instance"])
        assert (info["PingStatus"], info["ResourceType"], info["IamRole"]) == ("Online", "EC2Instance", "df-instance")

    def test_tag_filters_select_the_tagged_instances(self):
        tagged = "i-0df0000000000004d"
        ok(call("POST", "/assure-api/managed-instances", {}, json.dumps(
            {"account": W["member"], "region": HOME, "instanceId": tagged, "roleName": "df-instance",
             "tags": {"assure:canary": "true"}})), "register")
        try:
            for filters in ([{"Key": "tag-key", "Values": ["assure:canary"]}],
                            [{"Key": "tag:assure:canary", "Values": ["true"]}]):
                status, body = ssm(W["mem"], "DescribeInstanceInformation", {"Filters": filters})
                assert status == 200, body
                assert [i["InstanceId"] for i in body["InstanceInformationList"]] == [tagged], filters
            status, body = ssm(W["mem"], "DescribeInstanceInformation",
                               {"Filters": [{"Key": "tag:assure:canary", "Values": ["false"]}]})
            assert body["InstanceInformationList"] == []
        finally:
            call("DELETE", "/assure-api/managed-instances", {},
                 query=f"account={W['member']}&region={HOME}&instanceId={tagged}")

    def test_a_session_log_reaches_the_logging_bucket(self):
        session_id = self.session()
        assert self.described(session_id, "Active")["Status"] == "Connected"
        assert ssm(W["mem"], "TerminateSession", {"SessionId": session_id})[1] == {"SessionId": session_id}
        key = self.log_key(session_id)
        obj = eventually(lambda: objects(key).get(key), "the session log")
        assert obj.kms_key_id == W["key"], "encrypted by the bucket's default, the logging key"
        assert session_id in obj.value.decode()
        history = self.described(session_id, "History")
        assert history["Status"] == "Terminated"
        assert history["OutputUrl"]["S3OutputUrl"].endswith(f"/{W['bucket']}/{key}")
        assert "Details" not in history

    def test_an_instance_role_that_may_not_put_objects_writes_no_log(self):
        self.set_logs_policy(put=False)
        try:
            session_id = self.session()
            ssm(W["mem"], "TerminateSession", {"SessionId": session_id})
            history = eventually(lambda: (self.described(session_id, "History") or {}).get("Details"), "the upload tried")
            assert "s3:PutObject" in history
            assert objects(self.log_key(session_id)) == {}
        finally:
            self.set_logs_policy()

    def test_an_instance_role_that_may_not_use_the_logging_key_writes_no_log(self):
        # The key is another account's: its policy admits the organization through S3, and the role's
        # own policy must allow the key too (key-policy-modifying-external-accounts.html).
        self.set_logs_policy(kms=False)
        try:
            session_id = self.session()
            ssm(W["mem"], "TerminateSession", {"SessionId": session_id})
            details = eventually(lambda: (self.described(session_id, "History") or {}).get("Details"), "the upload tried")
            assert "kms:GenerateDataKey" in details
            assert objects(self.log_key(session_id)) == {}
        finally:
            self.set_logs_policy()

    def test_an_instance_role_that_cannot_read_the_bucket_encryption_fails_the_session(self):
        self.set_logs_policy(encryption=False)
        try:
            session_id = self.session()
            history = self.described(session_id, "History")
            assert history["Status"] == "Failed"
            assert "unable to validate encryption" in history["Details"]
            assert self.described(session_id, "Active") is None
            ssm(W["mem"], "TerminateSession", {"SessionId": session_id})

            scheduler.flush()
            assert objects(self.log_key(session_id)) == {}
        finally:
            self.set_logs_policy()

    def test_a_session_data_key_nobody_may_use_fails_the_session(self):
        only_admin = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{W['member']}:root"},
                          "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy"], "Resource": "*"})
        key = ok(jsonrpc(W["mem"], "TrentService.CreateKey", "kms", {"Policy": only_admin}))["KeyMetadata"]["Arn"]
        status, body = ssm(W["mem"], "UpdateDocument", {"Name": "SSM-SessionManagerRunShell", "DocumentVersion": "$LATEST",
                                                        "Content": session_preferences(W["member"], W["bucket"], key)})
        assert status == 200, body
        version = body["DocumentDescription"]["DocumentVersion"]
        ok(ssm(W["mem"], "UpdateDocumentDefaultVersion", {"Name": "SSM-SessionManagerRunShell", "DocumentVersion": version}))
        try:
            history = self.described(self.session(), "History")
            assert history["Status"] == "Failed"
            assert "kms:GenerateDataKey" in history["Details"]
        finally:
            ok(ssm(W["mem"], "UpdateDocumentDefaultVersion", {"Name": "SSM-SessionManagerRunShell", "DocumentVersion": "1"}))

    def test_an_instance_without_a_control_channel_is_not_connected(self):
        ec2_trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
        iam(W["mem"], "CreateRole", RoleName="df-instance-pings-only", AssumeRolePolicyDocument=ec2_trust)
        ok(iam(W["mem"], "PutRolePolicy", RoleName="df-instance-pings-only", PolicyName="core", PolicyDocument=doc(
            {"Effect": "Allow", "Action": "ssm:UpdateInstanceInformation", "Resource": "*"})))
        ok(call("POST", "/assure-api/managed-instances", {}, json.dumps(
            {"account": W["member"], "region": HOME, "instanceId": "i-0df0000000000002b", "roleName": "df-instance-pings-only"})))
        status, body = ssm(W["mem"], "StartSession", {"Target": "i-0df0000000000002b"})
        assert (status, body.get("__type")) == (400, "TargetNotConnected")

    def test_the_registration_endpoint_checks_what_it_registers(self):
        bad = {"account": W["member"], "region": HOME, "instanceId": "vm-1", "roleName": "df-instance"}
        assert call("POST", "/assure-api/managed-instances", {}, json.dumps(bad))[0] == 400
        missing = dict(bad, instanceId="i-0df0000000000003c", roleName="no-such-role")
        assert call("POST", "/assure-api/managed-instances", {}, json.dumps(missing))[0] == 404
        _status, body = call("GET", "/assure-api/managed-instances", query=f"account={W['member']}")
        assert W["instance"] in [i["instanceId"] for i in json.loads(body)["instances"]]


if __name__ == "__main__":
    unittest.main()
