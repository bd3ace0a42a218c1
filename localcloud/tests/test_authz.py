"""What each request is authorized against, and the requests refused before any policy is read
(authz.py, extension.py, rules.py), each test breaking one rule, against moto in this process (no
server, no network): requests go through the extension's WSGI app as the server runs it.

Needs the local cloud's Python environment (moto, pinned): from localcloud/,
    VENV/bin/python -m pytest tests/test_authz.py
where VENV is a venv with requirements-dev.txt installed (`cargo xtask test` makes one:
~/.cache/assure/localcloud-dev-venv-…). test_iam.py (the evaluator alone) needs no moto."""

import base64
import json
import time
import unittest
import uuid
from typing import Any

from assure_local import principals, stack_model, stack_store
from assure_local import resources as authz_resources
from tests import authz_client
from tests.authz_client import (
    ACCOUNT,
    ALL,
    IAM_READS,
    REGION,
    SECRETS,
    TRUST_ACCOUNT,
    assume,
    auth,
    call,
    json_call,
    make_role,
    managed,
    presign,
    query_call,
    req,
    resources,
    service_credentials,
    service_trust,
)


def setUpModule() -> None:
    authz_client.setUpModule()


class KmsAliases(unittest.TestCase):
    """kms:ResourceAliases on every operation on a key; alias operations on the alias and every key
    they affect (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases,
    https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html)."""

    guarded: Any  # moto's KMS keys, made by setUpClass
    plain: Any

    @classmethod
    def setUpClass(cls):
        from moto.kms.models import kms_backends

        backend = kms_backends[ACCOUNT][REGION]
        cls.guarded = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "guarded", None)
        backend.create_alias(cls.guarded.id, "alias/test-guarded")
        backend.create_alias(cls.guarded.id, "alias/test-second")
        cls.plain = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "plain", None)

    def checks(self, operation: str, **params):

        return authz_resources.resources_for(req("kms", operation, **params), ACCOUNT)

    def test_a_key_operation_carries_every_alias_of_the_key_however_it_is_named(self):
        for key_id in (self.guarded.id, self.guarded.arn, "alias/test-guarded"):
            [(_, res)] = self.checks("DisableKey", KeyId=key_id)
            assert res.arn == self.guarded.arn
            assert res.context == {"kms:ResourceAliases": ["alias/test-guarded", "alias/test-second"]}
        [(_, res)] = self.checks("ScheduleKeyDeletion", KeyId=self.plain.id)
        assert res.context == {}, "a key without aliases: the key is missing"

    def test_alias_operations_are_authorized_on_the_alias_and_the_keys_they_touch(self):
        alias = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/test-guarded"
        deleted = self.checks("DeleteAlias", AliasName="alias/test-guarded")
        assert [r.arn for _, r in deleted] == [alias, self.guarded.arn]
        assert deleted[0][1].context == {}, "no condition key applies to the alias"
        assert "alias/test-guarded" in deleted[1][1].context["kms:ResourceAliases"]
        updated = self.checks("UpdateAlias", AliasName="alias/test-guarded", TargetKeyId=self.plain.id)
        assert [r.arn for _, r in updated] == [alias, self.guarded.arn, self.plain.arn]
        created = self.checks("CreateAlias", AliasName="alias/test-new", TargetKeyId=self.plain.id)
        assert [r.arn for _, r in created] == [f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/test-new", self.plain.arn]


class RequestContext(unittest.TestCase):
    def test_put_metric_data_sends_its_namespace(self):
        from assure_local import authz
        from assure_local.iam import Principal

        p = Principal(kind="user", account=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:user/u")
        ctx = authz.request_context(req("monitoring", "PutMetricData", Namespace="Assure/CISBenchmark", MetricData=[]), p)
        assert ctx["cloudwatch:namespace"] == "Assure/CISBenchmark"
        assert "cloudwatch:namespace" not in authz.request_context(req("monitoring", "DescribeAlarms"), p)

    def test_an_anonymous_request_has_no_principal_arn(self):
        from assure_local import authz

        ctx = authz.request_context(req("s3", ""), principals.ANONYMOUS)
        assert "aws:PrincipalArn" not in ctx
        assert ctx["aws:PrincipalType"] == "Anonymous"


class Resources(unittest.TestCase):
    def test_start_session_is_authorized_on_its_target_and_its_document(self):
        # list_awssystemsmanager: StartSession on document, instance, managed-instance.
        assert resources("ssm", "StartSession", Target="i-0123456789abcdef0") == [
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0",
            f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/SSM-SessionManagerRunShell"]
        assert resources("ssm", "StartSession", Target="mi-0123456789abcdef0", DocumentName="AWS-StartSSHSession") == [
            f"arn:aws:ssm:{REGION}:{ACCOUNT}:managed-instance/mi-0123456789abcdef0",
            f"arn:aws:ssm:{REGION}::document/AWS-StartSSHSession"]
        assert resources("ssm", "StartSession", Target="i-1", DocumentName="NoLog")[1] == \
                         f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/NoLog"

    def test_aws_owned_documents_have_no_account(self):
        assert resources("ssm", "GetDocument", Name="AWS-RunShellScript") == \
                         [f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript"]
        assert resources("ssm", "UpdateDocument", Name="SSM-SessionManagerRunShell") == \
                         [f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/SSM-SessionManagerRunShell"]
        assert resources("ssm", "GetParameter", Name="/app/x") == [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/x"]

    def test_stack_operations_are_authorized_on_the_stack(self):
        # list_awscloudformation: stack/NAME/ID; a stack not made yet: stack/NAME/*.

        stack = stack_model.Stack(ACCOUNT, REGION, "test-stack")
        stack.status = "CREATE_COMPLETE"
        stack_store.STACKS.setdefault((ACCOUNT, REGION), {})[stack.stack_id] = stack
        assert stack.stack_id.startswith(f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/test-stack/")
        for op in ("UpdateStack", "DeleteStack", "UpdateTerminationProtection", "SetStackPolicy", "CreateChangeSet",
                   "ContinueUpdateRollback", "CancelUpdateStack", "RollbackStack", "DescribeStacks"):
            assert resources("cloudformation", op, StackName="test-stack") == [stack.stack_id], op
        assert resources("cloudformation", "CreateStack", StackName="test-stack") == \
                         [f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/test-stack/*"]
        assert resources("cloudformation", "CreateChangeSet", StackName="new-stack", ChangeSetName="c") == \
                         [f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/new-stack/*"]
        assert resources("cloudformation", "ListStacks") == ["*"]

    def test_a_subscription_is_authorized_on_its_topic(self):
        topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms"
        for op in ("Unsubscribe", "SetSubscriptionAttributes"):
            assert resources("sns", op, SubscriptionArn=f"{topic}:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0") == [topic], op

    def test_a_guardduty_filter_is_its_own_resource(self):
        base = f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/d1"
        assert resources("guardduty", "CreateFilter", detectorId="d1", name="quiet") == [f"{base}/filter/quiet"]
        for op in ("UpdateFilter", "DeleteFilter", "GetFilter"):
            assert resources("guardduty", op, detectorId="d1", filterName="quiet") == [f"{base}/filter/quiet"], op
        assert resources("guardduty", "UpdateDetector", detectorId="d1") == [base]

    def test_log_stream_operations_are_on_the_stream(self):
        group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:assure/cloudtrail"
        assert resources("logs", "DeleteLogStream", logGroupName="assure/cloudtrail", logStreamName="s") == \
                         [f"{group}:log-stream:s"]
        for op in ("PutMetricFilter", "PutSubscriptionFilter", "DeleteMetricFilter"):
            assert resources("logs", op, logGroupName="assure/cloudtrail", filterName="f") == [group], op
        assert resources("logs", "AssociateKmsKey", resourceIdentifier=f"{group}:*") == [group]


class S3ObjectActions(unittest.TestCase):
    def test_an_operation_on_one_version_is_its_own_action(self):
        # using-with-s3-policy-actions: "Object operations".
        from assure_local.aws_request import Req
        from assure_local.resources import s3_checks

        def action(method: str, query: dict) -> str:
            req = Req(service="s3", region=REGION, method=method, path="/b/logs/x.gz", query=query, params={}, operation="")
            return s3_checks(req)[0][0]

        assert action("DELETE", {}) == "s3:DeleteObject"
        assert action("DELETE", {"versionId": ["v1"]}) == "s3:DeleteObjectVersion"
        assert action("GET", {"versionId": ["v1"]}) == "s3:GetObjectVersion"
        assert action("DELETE", {"tagging": [""]}) == "s3:DeleteObjectTagging"
        assert action("PUT", {"tagging": [""], "versionId": ["v1"]}) == "s3:PutObjectVersionTagging"
        assert action("PUT", {"retention": [""]}) == "s3:PutObjectRetention"
        assert action("PUT", {"legal-hold": [""]}) == "s3:PutObjectLegalHold"
        assert action("DELETE", {"uploadId": ["u"]}) == "s3:AbortMultipartUpload"


class Unsigned(unittest.TestCase):
    """An unsigned request: MissingAuthenticationToken, but S3's anonymous user and STS's identity
    providers (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html)."""

    def test_query_json_and_rest_json_requests_want_a_signature(self):
        status, body = query_call("sts", "GetCallerIdentity", {}, signed=False)
        assert status == 403
        assert "<Code>MissingAuthenticationToken</Code>" in body
        status, body = json_call("TrentService.ListKeys", "kms", {}, signed=False)
        assert (status, json.loads(body)["__type"]) == (400, "MissingAuthenticationTokenException")
        status, body = call("GET", "/detector")
        assert (status, json.loads(body)["__type"]) == (403, "MissingAuthenticationTokenException")

    def test_the_local_clouds_own_endpoints_stay_open(self):
        assert call("GET", "/assure-api/health") == (200, '{"ok": true}')
        assert call("POST", "/moto-api/recorder/start-recording")[0] == 200
        call("POST", "/moto-api/recorder/stop-recording")

    def test_s3_serves_the_anonymous_user_what_a_bucket_policy_grants_everyone(self):
        admin = auth("testing", "s3")
        assert call("PUT", "/anon-test", admin)[0] == 200
        assert call("PUT", "/anon-test/k", admin, b"hi")[0] == 200
        status, body = call("GET", "/anon-test/k")
        assert status == 403
        assert "<Code>AccessDenied</Code>" in body
        assert call("PUT", "/anon-other")[0] == 403, "the anonymous user creates no bucket"
        assert call("GET", "/")[0] == 403
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::anon-test/*"}]}
        assert call("PUT", "/anon-test", admin, json.dumps(policy), "policy")[0] < 300
        assert call("GET", "/anon-test/k") == (200, "hi")
        assert call("PUT", "/anon-test/k2", {}, b"x")[0] == 403, "the grant is GetObject only"
        block = ("<PublicAccessBlockConfiguration><RestrictPublicBuckets>true</RestrictPublicBuckets>"
                 "</PublicAccessBlockConfiguration>")
        assert call("PUT", "/anon-test", admin, block, "publicAccessBlock")[0] == 200
        assert call("GET", "/anon-test/k")[0] == 403, "Block Public Access restricts public buckets"
        assert call("GET", "/no-such-bucket-anon/k")[0] == 404

    def test_a_presigned_url_is_authorized_as_its_signer(self):
        admin = auth("testing", "s3")
        call("PUT", "/presigned-test", admin)
        call("PUT", "/presigned-test/k", admin, b"hi")
        assert call("GET", "/presigned-test/k", query=presign("/presigned-test/k")) == (200, "hi")
        status, body = call("GET", "/presigned-test/k", query=presign("/presigned-test/k", "AKIAUNKNOWNKEY000000"))
        assert status == 403
        assert "InvalidAccessKeyId" in body

    def test_web_identity_is_checked_against_the_provider_and_the_trust_policy(self):
        from moto.iam.models import iam_backends

        iam = iam_backends[ACCOUNT]["aws"]
        iam.create_open_id_connect_provider("https://idp.example.com", ["0" * 40], ["sts.amazonaws.com"], [])
        provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example.com"
        iam.create_role("wif-test", json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
             "Condition": {"StringEquals": {"idp.example.com:sub": "ok"}}}]}), "/", None, "", [], None)

        def token(issuer="https://idp.example.com", aud="sts.amazonaws.com", sub="ok", exp=600):
            part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
            return f"{part({'alg': 'RS256'})}.{part({'iss': issuer, 'aud': aud, 'sub': sub, 'exp': int(time.time()) + exp})}.c2ln"

        def assume(t, role="wif-test"):
            status, body = query_call("sts", "AssumeRoleWithWebIdentity", {
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "RoleSessionName": "sess", "WebIdentityToken": t}, signed=False)
            return status, body

        assert assume(token())[0] == 200
        for bad, code in [(token(sub="evil"), "AccessDenied"), (token(issuer="https://other.example.com"), "InvalidIdentityToken"),
                          (token(aud="someone-else"), "InvalidIdentityToken"), (token(exp=-600), "ExpiredTokenException"),
                          ("not-a-jwt", "InvalidIdentityToken")]:
            _status, body = assume(bad)
            assert f"<Code>{code}</Code>" in body, bad
        assert "<Code>AccessDenied</Code>" in assume(token(), role="OrganizationAccountAccessRole")[1]


class Credentials(unittest.TestCase):
    def session(self):
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        iam = iam_backends[ACCOUNT]["aws"]
        if "token-test" not in [r.name for r in iam.roles.values()]:
            iam.create_role("token-test", json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}),
                "/", None, "", [], None)
            iam.put_role_policy("token-test", "all", json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        s = sts_backends[ACCOUNT]["aws"].assume_role(
            region_name=REGION, role_session_name="s", role_arn=f"arn:aws:iam::{ACCOUNT}:role/token-test",
            policy=None, duration=3600, external_id=None)  # type: ignore[arg-type]  # moto's annotation says str; it takes None
        SECRETS[s.access_key_id] = s.secret_access_key
        return s

    def test_a_session_key_needs_its_session_token(self):
        s = self.session()
        assert query_call("sts", "GetCallerIdentity", {}, s.access_key_id, s.session_token)[0] == 200
        for token in (None, "another"):
            status, body = query_call("sts", "GetCallerIdentity", {}, s.access_key_id, token)
            assert status == 403, token
            assert "<Code>InvalidClientTokenId</Code>" in body
            assert "The security token included in the request is invalid" in body

    def test_motos_internal_key_is_unknown_while_iam_is_enforced(self):
        status, body = query_call("sts", "GetCallerIdentity", {}, "ak")
        assert status == 403
        assert "InvalidClientTokenId" in body


class ServiceChecks(unittest.TestCase):
    def test_the_expected_bucket_owner_must_own_the_bucket(self):
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html
        admin = auth("testing", "s3")
        call("PUT", "/owner-test", admin)
        assert call("PUT", "/owner-test/k", dict(admin, **{"x-amz-expected-bucket-owner": ACCOUNT}), b"hi")[0] == 200
        for headers in ({"x-amz-expected-bucket-owner": "111111111111"},):
            status, body = call("GET", "/owner-test/k", dict(admin, **headers))
            assert status == 403
            assert "<Code>AccessDenied</Code>" in body
        status, _ = call("GET", "/owner-test", dict(admin, **{"x-amz-expected-bucket-owner": "111111111111"}), query="versioning")
        assert status == 403, "bucket operations too"
        copy = {"x-amz-copy-source": "/owner-test/k", "x-amz-source-expected-bucket-owner": "111111111111"}
        assert call("PUT", "/owner-test/k2", dict(admin, **copy))[0] == 403, "a copy's source"
        status, body = call("GET", "/owner-test/k", dict(admin, **{"x-amz-expected-bucket-owner": "me"}))
        assert status == 400
        assert "InvalidBucketOwnerAWSAccountID" in body

    def test_start_session_is_authorized_then_finds_no_connected_target(self):
        headers = dict(auth("testing", "ssm"), **{"Content-Type": "application/x-amz-json-1.1",
                                                  "X-Amz-Target": "AmazonSSM.StartSession"})
        status, body = call("POST", "/", headers, json.dumps({"Target": "i-0123456789abcdef0"}))
        assert (status, json.loads(body)["__type"]) == (400, "TargetNotConnected")
        status, body = call("POST", "/", headers, json.dumps({"Target": "i-0123456789abcdef0", "DocumentName": "Missing"}))
        assert (status, json.loads(body)["__type"]) == (400, "InvalidDocument")
        status, body = call("POST", "/", headers, json.dumps({"Target": "i-0123456789abcdef0",
                                                              "DocumentName": "AWS-StartPortForwardingSession"}))
        assert json.loads(body)["__type"] == "TargetNotConnected", "AWS's own documents exist"


class LogGroupKeys(unittest.TestCase):
    """CreateLogGroup and AssociateKmsKey with a key: CloudWatch Logs uses it as its service principal,
    under the encryption context aws:logs:arn, and sends no aws:SourceAccount (logs.logs_kms_key)."""

    def key(self, statement: dict) -> str:
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
            dict({"Effect": "Allow", "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
                  "Action": ["kms:GenerateDataKey*", "kms:Decrypt*", "kms:Encrypt*", "kms:Describe*"],
                  "Resource": "*"}, **statement)]}
        status, text = json_call("TrentService.CreateKey", "kms", {"Policy": json.dumps(policy)})
        assert status == 200, text
        return json.loads(text)["KeyMetadata"]["Arn"]

    def create(self, name: str, key: str) -> tuple[int, dict]:
        status, text = json_call("Logs_20140328.CreateLogGroup", "logs", {"logGroupName": name, "kmsKeyId": key})
        return status, json.loads(text) if text else {}

    def test_the_key_policy_must_admit_cloudwatch_logs_for_the_log_group(self):
        group = f"/t/keyed-{uuid.uuid4().hex[:8]}"
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
        documented = self.key({"Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:*"}}})
        assert self.create(group, documented)[0] == 200
        # Keyed on a source key CloudWatch Logs does not send: refused, naming the log group.
        source = self.key({"Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})
        status, body = self.create(group + "-source", source)
        assert (status, body.get("__type")) == (400, "InvalidParameterException"), body
        assert f"not allowed to be used with Arn '{arn}-source'" in body.get("message", "")
        # Another log group's context: refused; a key that does not exist: refused alike.
        other = self.key({"Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arn + "-other"}}})
        assert self.create(group + "-mine", other)[0] == 400
        assert self.create(group + "-none", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{uuid.uuid4()}")[0] == 400
        # AssociateKmsKey is held to the same.
        status, text = json_call("Logs_20140328.AssociateKmsKey", "logs", {"logGroupName": group, "kmsKeyId": source})
        assert status == 400, text
        status, text = json_call("Logs_20140328.AssociateKmsKey", "logs", {"logGroupName": group, "kmsKeyId": documented})
        assert status == 200, text


class PermissionsBoundaryRequests(unittest.TestCase):
    """A user's or role's permissions boundary limits every request it signs
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html)."""

    def test_a_role_boundary_limits_its_sessions(self):
        role = make_role("bounded-role", TRUST_ACCOUNT)
        boundary = managed("iam-reads", IAM_READS)
        assert query_call("iam", "PutRolePermissionsBoundary", {"RoleName": "bounded-role", "PermissionsBoundary": boundary})[0] == 200
        key, token = assume(role)
        assert query_call("iam", "ListRoles", {}, key, token)[0] == 200
        status, body = query_call("sqs", "ListQueues", {}, key, token)
        assert status == 403
        assert "because no permissions boundary allows the sqs:ListQueues action" in body
        assert query_call("iam", "DeleteRolePermissionsBoundary", {"RoleName": "bounded-role"})[0] == 200
        assert query_call("sqs", "ListQueues", {}, key, token)[0] == 200, "the boundary gone, the session is whole"

    def test_a_user_boundary(self):
        from moto.iam.models import iam_backends

        backend = iam_backends[ACCOUNT]["aws"]
        boundary = managed("iam-reads", IAM_READS)
        assert query_call("iam", "CreateUser", {"UserName": "bounded-user", "PermissionsBoundary": boundary})[0] == 200
        backend.put_user_policy("bounded-user", "all", ALL)
        made = backend.create_access_key("bounded-user")
        key, SECRETS[made.access_key_id] = made.access_key_id, made.secret_access_key
        status, body = query_call("iam", "GetUser", {"UserName": "bounded-user"})
        assert f"<PermissionsBoundaryArn>{boundary}</PermissionsBoundaryArn>" in body
        status, body = query_call("sqs", "ListQueues", {}, key)
        assert status == 403
        assert "no permissions boundary allows" in body
        assert query_call("iam", "DeleteUserPermissionsBoundary", {"UserName": "bounded-user"})[0] == 200
        assert query_call("sqs", "ListQueues", {}, key)[0] == 200
        assert query_call("iam", "PutUserPermissionsBoundary", {"UserName": "bounded-user", "PermissionsBoundary": boundary})[0] == 200
        assert query_call("sqs", "ListQueues", {}, key)[0] == 403
        status, body = query_call("iam", "PutUserPermissionsBoundary", {"UserName": "no-such-user", "PermissionsBoundary": boundary})
        assert "<Code>NoSuchEntity</Code>" in body

    def test_delegated_user_creation_is_held_to_a_boundary(self):
        # iam:PermissionsBoundary, as the boundaries page's delegation example uses it.
        from moto.iam.models import iam_backends

        boundary = managed("iam-reads", IAM_READS)
        policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*",
                                                                    "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}}}]})
        key, token = assume(make_role("user-admin", TRUST_ACCOUNT, policy))
        status, body = query_call("iam", "CreateUser", {"UserName": "unbounded-hire"}, key, token)
        assert status == 403, body
        status, body = query_call("iam", "CreateUser", {"UserName": "bounded-hire", "PermissionsBoundary": boundary}, key, token)
        assert status == 200, body
        assert getattr(iam_backends[ACCOUNT]["aws"].users["bounded-hire"], "permissions_boundary_arn", None) == boundary


class SessionPolicyRequests(unittest.TestCase):
    """AssumeRole's Policy and PolicyArns: the session gets the intersection
    (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html)."""

    def test_inline_and_managed_session_policies_limit_the_session(self):
        role = make_role("session-policy-role", TRUST_ACCOUNT)
        reads = managed("iam-reads", IAM_READS)
        sqs_only = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]})
        key, token = assume(role, Policy=sqs_only)
        assert query_call("sqs", "ListQueues", {}, key, token)[0] == 200
        status, body = query_call("iam", "ListRoles", {}, key, token)
        assert status == 403
        assert "because no session policy allows the iam:ListRoles action" in body
        key, token = assume(role, **{"PolicyArns.member.1.arn": reads})
        assert query_call("iam", "ListRoles", {}, key, token)[0] == 200
        assert query_call("sqs", "ListQueues", {}, key, token)[0] == 403
        key, token = assume(role, Policy=sqs_only, **{"PolicyArns.member.1.arn": reads})
        assert query_call("iam", "ListRoles", {}, key, token)[0] == 200, "the session policies together"
        assert query_call("sqs", "ListQueues", {}, key, token)[0] == 200
        key, token = assume(role)
        assert query_call("sts", "GetCallerIdentity", {}, key, token)[0] == 200
        assert query_call("s3", "", {}, key, token)[0] == 200, "no session policy: the role's permissions"


class ServicePrincipalContext(unittest.TestCase):
    """What a service sends when it assumes a role for one of its resources (principals.SERVICE_SOURCE_KEYS):
    CloudTrail, EventBridge and Config aws:SourceArn and aws:SourceAccount, Firehose sts:ExternalId only."""

    TRAIL = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/main"
    RULE = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/forward"
    AGGREGATOR = f"arn:aws:config:{REGION}:{ACCOUNT}:config-aggregator/config-aggregator-abc"
    STREAM = f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/findings"

    def test_a_caller_naming_no_source_gets_what_it_always_got(self):
        role = make_role("svc-account-only", service_trust("lambda.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
        assert service_credentials("lambda.amazonaws.com", role) == 200
        role = make_role("svc-source-arn", service_trust("cloudtrail.amazonaws.com", {"ArnEquals": {"aws:SourceArn": self.TRAIL}}))
        assert service_credentials("cloudtrail.amazonaws.com", role) == 403, "no source named, no aws:SourceArn"

    def test_cloudtrail_eventbridge_and_config_send_the_source_arn_and_account(self):
        for service, source, other in [("cloudtrail.amazonaws.com", self.TRAIL, self.TRAIL + "-other"),
                                       ("events.amazonaws.com", self.RULE, self.RULE + "-other"),
                                       ("config.amazonaws.com", self.AGGREGATOR, self.AGGREGATOR + "x")]:
            condition = {"ArnEquals": {"aws:SourceArn": source}, "StringEquals": {"aws:SourceAccount": ACCOUNT}}
            role = make_role(f"svc-{service.split('.')[0]}", service_trust(service, condition))
            assert service_credentials(service, role, source) == 200, service
            assert service_credentials(service, role, other) == 403, f"{service}: another resource"

    def test_firehose_sends_the_external_id_not_the_source_keys(self):
        by_account = make_role("svc-firehose-account", service_trust("firehose.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
        by_arn = make_role("svc-firehose-arn", service_trust("firehose.amazonaws.com", {"ArnLike": {"aws:SourceArn": self.STREAM}}))
        by_external_id = make_role("svc-firehose-external", service_trust("firehose.amazonaws.com", {"StringEquals": {"sts:ExternalId": ACCOUNT}}))
        assert service_credentials("firehose.amazonaws.com", by_account, self.STREAM) == 403
        assert service_credentials("firehose.amazonaws.com", by_arn, self.STREAM) == 403
        assert service_credentials("firehose.amazonaws.com", by_external_id, self.STREAM) == 200

    def test_a_service_documenting_no_keys_sends_none(self):
        role = make_role("svc-lambda-account", service_trust("lambda.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
        assert service_credentials("lambda.amazonaws.com", role, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f") == 403
        assert call("POST", "/assure-api/service-credentials", {}, json.dumps(
            {"service": "lambda.amazonaws.com", "roleArn": role, "sourceArn": "not-an-arn"}))[0] == 400

    def test_the_services_own_checks_name_what_acts(self):
        # CreateTrail's CloudWatch Logs role and CreateDeliveryStream's role (rules.unusable_role) are
        # assumed for the trail and the stream.
        from assure_local import rules

        rules.PROPAGATION["seconds"] = 0
        condition = {"ArnEquals": {"aws:SourceArn": self.TRAIL}}
        role = make_role("svc-trail-logs", service_trust("cloudtrail.amazonaws.com", condition))
        assert rules.unusable_role("cloudtrail.amazonaws.com", role, self.TRAIL) is None
        assert "does not admit" in (rules.unusable_role("cloudtrail.amazonaws.com", role, self.TRAIL + "-other") or "")
        stream_role = make_role("svc-firehose-account", service_trust("firehose.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
        assert rules.unusable_role("firehose.amazonaws.com", stream_role, self.STREAM) is not None
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Firehose_20150804.CreateDeliveryStream"}
        status, body = call("POST", "/", dict(auth("testing", "firehose"), **headers), json.dumps({
            "DeliveryStreamName": "findings", "ExtendedS3DestinationConfiguration": {
                "RoleARN": stream_role, "BucketARN": "arn:aws:s3:::nowhere"}}))
        assert status == 400
        assert "Firehose is unable to assume role" in body
