"""What each request is authorized against, and the requests refused before any policy is read
(authz.py, extension.py, rules.py), each test breaking one rule, against moto in this process (no
server, no network): requests go through the extension's WSGI app as the server runs it.

Needs the local cloud's Python environment (moto, pinned): from infra/local,
    VENV/bin/python -m unittest -v test_authz
where VENV is the venv `assure local up` made (~/.cache/assure/venv-…) or any venv with
requirements.txt installed. test_iam.py (the evaluator alone) needs no moto."""

import base64
import json
import time
import unittest
import uuid

from assure_local import aws_request, core, knobs, principals, stack_model, stack_store
from assure_local import resources as authz_resources
from assure_local.services import identity

ACCOUNT = "123456789012"  # moto's default account: the bootstrap administrator's (access key "testing")
REGION = "us-east-1"
APP = None


def setUpModule() -> None:
    global APP
    import os

    os.environ.setdefault("ASSURE_IAM", "on")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    from assure_local import extension

    extension.patch_moto()
    principals.bootstrap_admin()
    APP = Client(extension.Extension(DomainDispatcherApplication(create_backend_app)))


# The secret access key of each access key the tests sign with: the bootstrap administrator's, and
# each one a test is given (AssumeRole's, root credentials', a user's new key).
SECRETS = {"testing": "testing"}
# A pseudo-header asking `call` to sign the request it sends, once it knows the whole request.
SIGN_AS = "X-Test-Sign-As"


def auth(key: str, service: str, region: str = REGION, secret: str | None = None, **options) -> dict:
    """Headers asking `call` to sign its request with Signature Version 4 (botocore's signers, as the
    AWS CLI signs) as `key`, with its secret (SECRETS) or `secret`. `options`: `when` (a datetime to
    sign at), `unsigned_payload` (S3's UNSIGNED-PAYLOAD)."""
    return {SIGN_AS: (key, service, region, secret, options)}


def sign(method: str, path: str, query: str, headers: dict, data: bytes | str, key: str, service: str,
         region: str = REGION, secret: str | None = None, options: dict | None = None) -> dict:
    """`headers` with botocore's Signature Version 4 of the request (the werkzeug client's host is
    `localhost`)."""
    from unittest import mock

    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials

    options = options or {}
    url = "http://localhost" + path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=data)
    if options.get("unsigned_payload"):
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    creds = Credentials(key, secret or SECRETS.get(key, "no-secret-known"))
    signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(creds, service, region)
    if options.get("when") is not None:
        with mock.patch("botocore.auth.get_current_datetime", return_value=options["when"]):
            signer.add_auth(request)
    else:
        signer.add_auth(request)
    return dict(request.headers.items())


def presign(path: str, key: str = "testing", expires: int = 3600, secret: str | None = None, when=None) -> str:
    """The query string of an S3 presigned GET of `path` (botocore's S3SigV4QueryAuth, as `aws s3
    presign` makes it)."""
    from unittest import mock

    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url="http://localhost" + path)
    signer = S3SigV4QueryAuth(Credentials(key, secret or SECRETS.get(key, "no-secret-known")), "s3", REGION,
                              expires=expires)
    if when is not None:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    else:
        signer.add_auth(request)
    return request.url.split("?", 1)[1]


def call(method: str, path: str = "/", headers: dict | None = None, data: bytes | str = b"", query: str = ""):
    """The app's answer (status, body) to a request; `path` as it goes on the wire (percent-encoded),
    signed when `headers` come from `auth`."""
    headers = dict(headers or {})
    signer = headers.pop(SIGN_AS, None)
    if signer is not None:
        headers = sign(method, path, query, headers, data, *signer)
    r = APP.open(path, method=method, headers=headers, data=data, query_string=query)
    return r.status_code, r.get_data(as_text=True)


def remember(body: str) -> None:
    """Keeps the secret of the credentials in an STS or /assure-api answer."""
    import re

    key = re.search(r'(?:<AccessKeyId>|"AccessKeyId": ")([^<"]+)', body)
    secret = re.search(r'(?:<SecretAccessKey>|"SecretAccessKey": ")([^<"]+)', body)
    if key and secret:
        SECRETS[key.group(1)] = secret.group(1)


def query_call(service: str, action: str, params: dict, key: str = "testing", token: str | None = None, signed: bool = True):
    from urllib.parse import urlencode

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers.update(auth(key, service))
    if token is not None:
        headers["X-Amz-Security-Token"] = token
    return call("POST", "/", headers, urlencode(dict(params, Action=action, Version="2011-06-15")))


def json_call(target: str, service: str, body: dict, key: str = "testing", signed: bool = True):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    if signed:
        headers.update(auth(key, service))
    return call("POST", "/", headers, json.dumps(body))


def req(service: str, operation: str, **params):

    return aws_request.Req(service, operation, params, REGION)


def resources(service: str, operation: str, account: str = ACCOUNT, **params) -> list[str]:

    return [r.arn for _, r in authz_resources.resources_for(req(service, operation, **params), account)]


class KmsAliases(unittest.TestCase):
    """kms:ResourceAliases on every operation on a key; alias operations on the alias and every key
    they affect (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases,
    https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html)."""

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
            self.assertEqual(res.arn, self.guarded.arn)
            self.assertEqual(res.context, {"kms:ResourceAliases": ["alias/test-guarded", "alias/test-second"]})
        [(_, res)] = self.checks("ScheduleKeyDeletion", KeyId=self.plain.id)
        self.assertEqual(res.context, {}, "a key without aliases: the key is missing")

    def test_alias_operations_are_authorized_on_the_alias_and_the_keys_they_touch(self):
        alias = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/test-guarded"
        deleted = self.checks("DeleteAlias", AliasName="alias/test-guarded")
        self.assertEqual([r.arn for _, r in deleted], [alias, self.guarded.arn])
        self.assertEqual(deleted[0][1].context, {}, "no condition key applies to the alias")
        self.assertIn("alias/test-guarded", deleted[1][1].context["kms:ResourceAliases"])
        updated = self.checks("UpdateAlias", AliasName="alias/test-guarded", TargetKeyId=self.plain.id)
        self.assertEqual([r.arn for _, r in updated], [alias, self.guarded.arn, self.plain.arn])
        created = self.checks("CreateAlias", AliasName="alias/test-new", TargetKeyId=self.plain.id)
        self.assertEqual([r.arn for _, r in created], [f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/test-new", self.plain.arn])


class RequestContext(unittest.TestCase):
    def test_put_metric_data_sends_its_namespace(self):
        from assure_local import authz
        from assure_local.iam import Principal

        p = Principal(kind="user", account=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:user/u")
        ctx = authz.request_context(req("monitoring", "PutMetricData", Namespace="Assure/CISBenchmark", MetricData=[]), p)
        self.assertEqual(ctx["cloudwatch:namespace"], "Assure/CISBenchmark")
        self.assertNotIn("cloudwatch:namespace", authz.request_context(req("monitoring", "DescribeAlarms"), p))

    def test_an_anonymous_request_has_no_principal_arn(self):
        from assure_local import authz

        ctx = authz.request_context(req("s3", ""), principals.ANONYMOUS)
        self.assertNotIn("aws:PrincipalArn", ctx)
        self.assertEqual(ctx["aws:PrincipalType"], "Anonymous")


class Resources(unittest.TestCase):
    def test_start_session_is_authorized_on_its_target_and_its_document(self):
        # list_awssystemsmanager: StartSession on document, instance, managed-instance.
        self.assertEqual(resources("ssm", "StartSession", Target="i-0123456789abcdef0"), [
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0",
            f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/SSM-SessionManagerRunShell"])
        self.assertEqual(resources("ssm", "StartSession", Target="mi-0123456789abcdef0", DocumentName="AWS-StartSSHSession"), [
            f"arn:aws:ssm:{REGION}:{ACCOUNT}:managed-instance/mi-0123456789abcdef0",
            f"arn:aws:ssm:{REGION}::document/AWS-StartSSHSession"])
        self.assertEqual(resources("ssm", "StartSession", Target="i-1", DocumentName="NoLog")[1],
                         f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/NoLog")

    def test_aws_owned_documents_have_no_account(self):
        self.assertEqual(resources("ssm", "GetDocument", Name="AWS-RunShellScript"),
                         [f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript"])
        self.assertEqual(resources("ssm", "UpdateDocument", Name="SSM-SessionManagerRunShell"),
                         [f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/SSM-SessionManagerRunShell"])
        self.assertEqual(resources("ssm", "GetParameter", Name="/app/x"), [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/x"])

    def test_stack_operations_are_authorized_on_the_stack(self):
        # list_awscloudformation: stack/NAME/ID; a stack not made yet: stack/NAME/*.

        stack = stack_model.Stack(ACCOUNT, REGION, "test-stack")
        stack.status = "CREATE_COMPLETE"
        stack_store.STACKS.setdefault((ACCOUNT, REGION), {})[stack.stack_id] = stack
        self.assertTrue(stack.stack_id.startswith(f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/test-stack/"))
        for op in ("UpdateStack", "DeleteStack", "UpdateTerminationProtection", "SetStackPolicy", "CreateChangeSet",
                   "ContinueUpdateRollback", "CancelUpdateStack", "RollbackStack", "DescribeStacks"):
            self.assertEqual(resources("cloudformation", op, StackName="test-stack"), [stack.stack_id], op)
        self.assertEqual(resources("cloudformation", "CreateStack", StackName="test-stack"),
                         [f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/test-stack/*"])
        self.assertEqual(resources("cloudformation", "CreateChangeSet", StackName="new-stack", ChangeSetName="c"),
                         [f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/new-stack/*"])
        self.assertEqual(resources("cloudformation", "ListStacks"), ["*"])

    def test_a_subscription_is_authorized_on_its_topic(self):
        topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms"
        for op in ("Unsubscribe", "SetSubscriptionAttributes"):
            self.assertEqual(resources("sns", op, SubscriptionArn=f"{topic}:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), [topic], op)

    def test_a_guardduty_filter_is_its_own_resource(self):
        base = f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/d1"
        self.assertEqual(resources("guardduty", "CreateFilter", detectorId="d1", name="quiet"), [f"{base}/filter/quiet"])
        for op in ("UpdateFilter", "DeleteFilter", "GetFilter"):
            self.assertEqual(resources("guardduty", op, detectorId="d1", filterName="quiet"), [f"{base}/filter/quiet"], op)
        self.assertEqual(resources("guardduty", "UpdateDetector", detectorId="d1"), [base])

    def test_log_stream_operations_are_on_the_stream(self):
        group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:assure/cloudtrail"
        self.assertEqual(resources("logs", "DeleteLogStream", logGroupName="assure/cloudtrail", logStreamName="s"),
                         [f"{group}:log-stream:s"])
        for op in ("PutMetricFilter", "PutSubscriptionFilter", "DeleteMetricFilter"):
            self.assertEqual(resources("logs", op, logGroupName="assure/cloudtrail", filterName="f"), [group], op)
        self.assertEqual(resources("logs", "AssociateKmsKey", resourceIdentifier=f"{group}:*"), [group])


class S3ObjectActions(unittest.TestCase):
    def test_an_operation_on_one_version_is_its_own_action(self):
        # using-with-s3-policy-actions: "Object operations".
        from assure_local.aws_request import Req
        from assure_local.resources import s3_checks

        def action(method: str, query: dict) -> str:
            req = Req(service="s3", region=REGION, method=method, path="/b/logs/x.gz", query=query, params={}, operation="")
            return s3_checks(req)[0][0]

        self.assertEqual(action("DELETE", {}), "s3:DeleteObject")
        self.assertEqual(action("DELETE", {"versionId": ["v1"]}), "s3:DeleteObjectVersion")
        self.assertEqual(action("GET", {"versionId": ["v1"]}), "s3:GetObjectVersion")
        self.assertEqual(action("DELETE", {"tagging": [""]}), "s3:DeleteObjectTagging")
        self.assertEqual(action("PUT", {"tagging": [""], "versionId": ["v1"]}), "s3:PutObjectVersionTagging")
        self.assertEqual(action("PUT", {"retention": [""]}), "s3:PutObjectRetention")
        self.assertEqual(action("PUT", {"legal-hold": [""]}), "s3:PutObjectLegalHold")
        self.assertEqual(action("DELETE", {"uploadId": ["u"]}), "s3:AbortMultipartUpload")


class Unsigned(unittest.TestCase):
    """An unsigned request: MissingAuthenticationToken, but S3's anonymous user and STS's identity
    providers (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html)."""

    def test_query_json_and_rest_json_requests_want_a_signature(self):
        status, body = query_call("sts", "GetCallerIdentity", {}, signed=False)
        self.assertEqual(status, 403)
        self.assertIn("<Code>MissingAuthenticationToken</Code>", body)
        status, body = json_call("TrentService.ListKeys", "kms", {}, signed=False)
        self.assertEqual((status, json.loads(body)["__type"]), (400, "MissingAuthenticationTokenException"))
        status, body = call("GET", "/detector")
        self.assertEqual((status, json.loads(body)["__type"]), (403, "MissingAuthenticationTokenException"))

    def test_the_local_clouds_own_endpoints_stay_open(self):
        self.assertEqual(call("GET", "/assure-api/health"), (200, '{"ok": true}'))
        self.assertEqual(call("POST", "/moto-api/recorder/start-recording")[0], 200)
        call("POST", "/moto-api/recorder/stop-recording")

    def test_s3_serves_the_anonymous_user_what_a_bucket_policy_grants_everyone(self):
        admin = auth("testing", "s3")
        self.assertEqual(call("PUT", "/anon-test", admin)[0], 200)
        self.assertEqual(call("PUT", "/anon-test/k", admin, b"hi")[0], 200)
        status, body = call("GET", "/anon-test/k")
        self.assertEqual(status, 403)
        self.assertIn("<Code>AccessDenied</Code>", body)
        self.assertEqual(call("PUT", "/anon-other")[0], 403, "the anonymous user creates no bucket")
        self.assertEqual(call("GET", "/")[0], 403)
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::anon-test/*"}]}
        self.assertLess(call("PUT", "/anon-test", admin, json.dumps(policy), "policy")[0], 300)
        self.assertEqual(call("GET", "/anon-test/k"), (200, "hi"))
        self.assertEqual(call("PUT", "/anon-test/k2", {}, b"x")[0], 403, "the grant is GetObject only")
        block = ("<PublicAccessBlockConfiguration><RestrictPublicBuckets>true</RestrictPublicBuckets>"
                 "</PublicAccessBlockConfiguration>")
        self.assertEqual(call("PUT", "/anon-test", admin, block, "publicAccessBlock")[0], 200)
        self.assertEqual(call("GET", "/anon-test/k")[0], 403, "Block Public Access restricts public buckets")
        self.assertEqual(call("GET", "/no-such-bucket-anon/k")[0], 404)

    def test_a_presigned_url_is_authorized_as_its_signer(self):
        admin = auth("testing", "s3")
        call("PUT", "/presigned-test", admin)
        call("PUT", "/presigned-test/k", admin, b"hi")
        self.assertEqual(call("GET", "/presigned-test/k", query=presign("/presigned-test/k")), (200, "hi"))
        status, body = call("GET", "/presigned-test/k", query=presign("/presigned-test/k", "AKIAUNKNOWNKEY000000"))
        self.assertEqual(status, 403)
        self.assertIn("InvalidAccessKeyId", body)

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

        self.assertEqual(assume(token())[0], 200)
        for bad, code in [(token(sub="evil"), "AccessDenied"), (token(issuer="https://other.example.com"), "InvalidIdentityToken"),
                          (token(aud="someone-else"), "InvalidIdentityToken"), (token(exp=-600), "ExpiredTokenException"),
                          ("not-a-jwt", "InvalidIdentityToken")]:
            status, body = assume(bad)
            self.assertIn(f"<Code>{code}</Code>", body, bad)
        self.assertIn("<Code>AccessDenied</Code>", assume(token(), role="OrganizationAccountAccessRole")[1])


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
            policy=None, duration=3600, external_id=None)
        SECRETS[s.access_key_id] = s.secret_access_key
        return s

    def test_a_session_key_needs_its_session_token(self):
        s = self.session()
        self.assertEqual(query_call("sts", "GetCallerIdentity", {}, s.access_key_id, s.session_token)[0], 200)
        for token in (None, "another"):
            status, body = query_call("sts", "GetCallerIdentity", {}, s.access_key_id, token)
            self.assertEqual(status, 403, token)
            self.assertIn("<Code>InvalidClientTokenId</Code>", body)
            self.assertIn("The security token included in the request is invalid", body)

    def test_motos_internal_key_is_unknown_while_iam_is_enforced(self):
        status, body = query_call("sts", "GetCallerIdentity", {}, "ak")
        self.assertEqual(status, 403)
        self.assertIn("InvalidClientTokenId", body)


class ServiceChecks(unittest.TestCase):
    def test_the_expected_bucket_owner_must_own_the_bucket(self):
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html
        admin = auth("testing", "s3")
        call("PUT", "/owner-test", admin)
        self.assertEqual(call("PUT", "/owner-test/k", dict(admin, **{"x-amz-expected-bucket-owner": ACCOUNT}), b"hi")[0], 200)
        for headers in ({"x-amz-expected-bucket-owner": "111111111111"},):
            status, body = call("GET", "/owner-test/k", dict(admin, **headers))
            self.assertEqual(status, 403)
            self.assertIn("<Code>AccessDenied</Code>", body)
        status, _ = call("GET", "/owner-test", dict(admin, **{"x-amz-expected-bucket-owner": "111111111111"}), query="versioning")
        self.assertEqual(status, 403, "bucket operations too")
        copy = {"x-amz-copy-source": "/owner-test/k", "x-amz-source-expected-bucket-owner": "111111111111"}
        self.assertEqual(call("PUT", "/owner-test/k2", dict(admin, **copy))[0], 403, "a copy's source")
        status, body = call("GET", "/owner-test/k", dict(admin, **{"x-amz-expected-bucket-owner": "me"}))
        self.assertEqual(status, 400)
        self.assertIn("InvalidBucketOwnerAWSAccountID", body)

    def test_start_session_is_authorized_then_finds_no_connected_target(self):
        headers = dict(auth("testing", "ssm"), **{"Content-Type": "application/x-amz-json-1.1",
                                                  "X-Amz-Target": "AmazonSSM.StartSession"})
        status, body = call("POST", "/", headers, json.dumps({"Target": "i-0123456789abcdef0"}))
        self.assertEqual((status, json.loads(body)["__type"]), (400, "TargetNotConnected"))
        status, body = call("POST", "/", headers, json.dumps({"Target": "i-0123456789abcdef0", "DocumentName": "Missing"}))
        self.assertEqual((status, json.loads(body)["__type"]), (400, "InvalidDocument"))
        status, body = call("POST", "/", headers, json.dumps({"Target": "i-0123456789abcdef0",
                                                              "DocumentName": "AWS-StartPortForwardingSession"}))
        self.assertEqual(json.loads(body)["__type"], "TargetNotConnected", "AWS's own documents exist")


ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def tag(name: str, body: str) -> str:
    import re

    m = re.search(f"<{name}>(.*?)</{name}>", body, re.DOTALL)
    assert m, body
    return m.group(1)


def make_role(name: str, trust: dict, policy: str = ALL, account: str = ACCOUNT) -> str:
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    if not any(r.name == name for r in backend.roles.values()):
        backend.create_role(name, json.dumps(trust), "/", None, "", [], None)
        backend.put_role_policy(name, "all", policy)
    return f"arn:aws:iam::{account}:role/{name}"


TRUST_ACCOUNT = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}


def assume(role_arn: str, **extra) -> tuple[str, str]:
    status, body = query_call("sts", "AssumeRole", dict({"RoleArn": role_arn, "RoleSessionName": "test"}, **extra))
    assert status == 200, body
    remember(body)
    return tag("AccessKeyId", body), tag("SessionToken", body)


def managed(name: str, doc: dict) -> str:
    from moto.iam.models import iam_backends

    arn = f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    if arn not in iam_backends[ACCOUNT]["aws"].managed_policies:
        status, body = query_call("iam", "CreatePolicy", {"PolicyName": name, "PolicyDocument": json.dumps(doc)})
        assert status == 200, body
    return arn


IAM_READS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:List*", "iam:Get*"], "Resource": "*"}]}


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
        self.assertEqual(status, 200, text)
        return json.loads(text)["KeyMetadata"]["Arn"]

    def create(self, name: str, key: str) -> tuple[int, dict]:
        status, text = json_call("Logs_20140328.CreateLogGroup", "logs", {"logGroupName": name, "kmsKeyId": key})
        return status, json.loads(text) if text else {}

    def test_the_key_policy_must_admit_cloudwatch_logs_for_the_log_group(self):
        group = f"/t/keyed-{uuid.uuid4().hex[:8]}"
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
        documented = self.key({"Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:*"}}})
        self.assertEqual(self.create(group, documented)[0], 200)
        # Keyed on a source key CloudWatch Logs does not send: refused, naming the log group.
        source = self.key({"Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})
        status, body = self.create(group + "-source", source)
        self.assertEqual((status, body.get("__type")), (400, "InvalidParameterException"), body)
        self.assertIn(f"not allowed to be used with Arn '{arn}-source'", body.get("message", ""))
        # Another log group's context: refused; a key that does not exist: refused alike.
        other = self.key({"Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arn + "-other"}}})
        self.assertEqual(self.create(group + "-mine", other)[0], 400)
        self.assertEqual(self.create(group + "-none", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{uuid.uuid4()}")[0], 400)
        # AssociateKmsKey is held to the same.
        status, text = json_call("Logs_20140328.AssociateKmsKey", "logs", {"logGroupName": group, "kmsKeyId": source})
        self.assertEqual(status, 400, text)
        status, text = json_call("Logs_20140328.AssociateKmsKey", "logs", {"logGroupName": group, "kmsKeyId": documented})
        self.assertEqual(status, 200, text)


class PermissionsBoundaryRequests(unittest.TestCase):
    """A user's or role's permissions boundary limits every request it signs
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html)."""

    def test_a_role_boundary_limits_its_sessions(self):
        role = make_role("bounded-role", TRUST_ACCOUNT)
        boundary = managed("iam-reads", IAM_READS)
        self.assertEqual(query_call("iam", "PutRolePermissionsBoundary", {"RoleName": "bounded-role", "PermissionsBoundary": boundary})[0], 200)
        key, token = assume(role)
        self.assertEqual(query_call("iam", "ListRoles", {}, key, token)[0], 200)
        status, body = query_call("sqs", "ListQueues", {}, key, token)
        self.assertEqual(status, 403)
        self.assertIn("because no permissions boundary allows the sqs:ListQueues action", body)
        self.assertEqual(query_call("iam", "DeleteRolePermissionsBoundary", {"RoleName": "bounded-role"})[0], 200)
        self.assertEqual(query_call("sqs", "ListQueues", {}, key, token)[0], 200, "the boundary gone, the session is whole")

    def test_a_user_boundary(self):
        from moto.iam.models import iam_backends

        backend = iam_backends[ACCOUNT]["aws"]
        boundary = managed("iam-reads", IAM_READS)
        self.assertEqual(query_call("iam", "CreateUser", {"UserName": "bounded-user", "PermissionsBoundary": boundary})[0], 200)
        backend.put_user_policy("bounded-user", "all", ALL)
        made = backend.create_access_key("bounded-user")
        key, SECRETS[made.access_key_id] = made.access_key_id, made.secret_access_key
        status, body = query_call("iam", "GetUser", {"UserName": "bounded-user"})
        self.assertIn(f"<PermissionsBoundaryArn>{boundary}</PermissionsBoundaryArn>", body)
        status, body = query_call("sqs", "ListQueues", {}, key)
        self.assertEqual(status, 403)
        self.assertIn("no permissions boundary allows", body)
        self.assertEqual(query_call("iam", "DeleteUserPermissionsBoundary", {"UserName": "bounded-user"})[0], 200)
        self.assertEqual(query_call("sqs", "ListQueues", {}, key)[0], 200)
        self.assertEqual(query_call("iam", "PutUserPermissionsBoundary", {"UserName": "bounded-user", "PermissionsBoundary": boundary})[0], 200)
        self.assertEqual(query_call("sqs", "ListQueues", {}, key)[0], 403)
        status, body = query_call("iam", "PutUserPermissionsBoundary", {"UserName": "no-such-user", "PermissionsBoundary": boundary})
        self.assertIn("<Code>NoSuchEntity</Code>", body)

    def test_delegated_user_creation_is_held_to_a_boundary(self):
        # iam:PermissionsBoundary, as the boundaries page's delegation example uses it.
        from moto.iam.models import iam_backends

        boundary = managed("iam-reads", IAM_READS)
        policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*",
                                                                    "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}}}]})
        key, token = assume(make_role("user-admin", TRUST_ACCOUNT, policy))
        status, body = query_call("iam", "CreateUser", {"UserName": "unbounded-hire"}, key, token)
        self.assertEqual(status, 403, body)
        status, body = query_call("iam", "CreateUser", {"UserName": "bounded-hire", "PermissionsBoundary": boundary}, key, token)
        self.assertEqual(status, 200, body)
        self.assertEqual(iam_backends[ACCOUNT]["aws"].users["bounded-hire"].permissions_boundary_arn, boundary)


class SessionPolicyRequests(unittest.TestCase):
    """AssumeRole's Policy and PolicyArns: the session gets the intersection
    (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html)."""

    def test_inline_and_managed_session_policies_limit_the_session(self):
        role = make_role("session-policy-role", TRUST_ACCOUNT)
        reads = managed("iam-reads", IAM_READS)
        sqs_only = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]})
        key, token = assume(role, Policy=sqs_only)
        self.assertEqual(query_call("sqs", "ListQueues", {}, key, token)[0], 200)
        status, body = query_call("iam", "ListRoles", {}, key, token)
        self.assertEqual(status, 403)
        self.assertIn("because no session policy allows the iam:ListRoles action", body)
        key, token = assume(role, **{"PolicyArns.member.1.arn": reads})
        self.assertEqual(query_call("iam", "ListRoles", {}, key, token)[0], 200)
        self.assertEqual(query_call("sqs", "ListQueues", {}, key, token)[0], 403)
        key, token = assume(role, Policy=sqs_only, **{"PolicyArns.member.1.arn": reads})
        self.assertEqual(query_call("iam", "ListRoles", {}, key, token)[0], 200, "the session policies together")
        self.assertEqual(query_call("sqs", "ListQueues", {}, key, token)[0], 200)
        key, token = assume(role)
        self.assertEqual(query_call("sts", "GetCallerIdentity", {}, key, token)[0], 200)
        self.assertEqual(query_call("s3", "", {}, key, token)[0], 200, "no session policy: the role's permissions")


def service_credentials(service: str, role_arn: str, source: str | None = None) -> int:
    doc = {"service": service, "roleArn": role_arn}
    if source is not None:
        doc["sourceArn"] = source
    return call("POST", "/assure-api/service-credentials", {}, json.dumps(doc))[0]


def service_trust(service: str, condition: dict | None = None) -> dict:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


class ServicePrincipalContext(unittest.TestCase):
    """What a service sends when it assumes a role for one of its resources (principals.SERVICE_SOURCE_KEYS):
    CloudTrail, EventBridge and Config aws:SourceArn and aws:SourceAccount, Firehose sts:ExternalId only."""

    TRAIL = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/main"
    RULE = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/forward"
    AGGREGATOR = f"arn:aws:config:{REGION}:{ACCOUNT}:config-aggregator/config-aggregator-abc"
    STREAM = f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/findings"

    def test_a_caller_naming_no_source_gets_what_it_always_got(self):
        role = make_role("svc-account-only", service_trust("lambda.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
        self.assertEqual(service_credentials("lambda.amazonaws.com", role), 200)
        role = make_role("svc-source-arn", service_trust("cloudtrail.amazonaws.com", {"ArnEquals": {"aws:SourceArn": self.TRAIL}}))
        self.assertEqual(service_credentials("cloudtrail.amazonaws.com", role), 403, "no source named, no aws:SourceArn")

    def test_cloudtrail_eventbridge_and_config_send_the_source_arn_and_account(self):
        for service, source, other in [("cloudtrail.amazonaws.com", self.TRAIL, self.TRAIL + "-other"),
                                       ("events.amazonaws.com", self.RULE, self.RULE + "-other"),
                                       ("config.amazonaws.com", self.AGGREGATOR, self.AGGREGATOR + "x")]:
            condition = {"ArnEquals": {"aws:SourceArn": source}, "StringEquals": {"aws:SourceAccount": ACCOUNT}}
            role = make_role(f"svc-{service.split('.')[0]}", service_trust(service, condition))
            self.assertEqual(service_credentials(service, role, source), 200, service)
            self.assertEqual(service_credentials(service, role, other), 403, f"{service}: another resource")

    def test_firehose_sends_the_external_id_not_the_source_keys(self):
        by_account = make_role("svc-firehose-account", service_trust("firehose.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
        by_arn = make_role("svc-firehose-arn", service_trust("firehose.amazonaws.com", {"ArnLike": {"aws:SourceArn": self.STREAM}}))
        by_external_id = make_role("svc-firehose-external", service_trust("firehose.amazonaws.com", {"StringEquals": {"sts:ExternalId": ACCOUNT}}))
        self.assertEqual(service_credentials("firehose.amazonaws.com", by_account, self.STREAM), 403)
        self.assertEqual(service_credentials("firehose.amazonaws.com", by_arn, self.STREAM), 403)
        self.assertEqual(service_credentials("firehose.amazonaws.com", by_external_id, self.STREAM), 200)

    def test_a_service_documenting_no_keys_sends_none(self):
        role = make_role("svc-lambda-account", service_trust("lambda.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
        self.assertEqual(service_credentials("lambda.amazonaws.com", role, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:f"), 403)
        self.assertEqual(call("POST", "/assure-api/service-credentials", {}, json.dumps(
            {"service": "lambda.amazonaws.com", "roleArn": role, "sourceArn": "not-an-arn"}))[0], 400)

    def test_the_services_own_checks_name_what_acts(self):
        # CreateTrail's CloudWatch Logs role and CreateDeliveryStream's role (rules.unusable_role) are
        # assumed for the trail and the stream.
        from assure_local import rules

        rules.PROPAGATION["seconds"] = 0
        condition = {"ArnEquals": {"aws:SourceArn": self.TRAIL}}
        role = make_role("svc-trail-logs", service_trust("cloudtrail.amazonaws.com", condition))
        self.assertIsNone(rules.unusable_role("cloudtrail.amazonaws.com", role, self.TRAIL))
        self.assertIn("does not admit", rules.unusable_role("cloudtrail.amazonaws.com", role, self.TRAIL + "-other"))
        stream_role = make_role("svc-firehose-account", service_trust("firehose.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
        self.assertIsNotNone(rules.unusable_role("firehose.amazonaws.com", stream_role, self.STREAM))
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Firehose_20150804.CreateDeliveryStream"}
        status, body = call("POST", "/", dict(auth("testing", "firehose"), **headers), json.dumps({
            "DeliveryStreamName": "findings", "ExtendedS3DestinationConfiguration": {
                "RoleARN": stream_role, "BucketARN": "arn:aws:s3:::nowhere"}}))
        self.assertEqual(status, 400)
        self.assertIn("Firehose is unable to assume role", body)


def org(target: str, body: dict, key: str = "testing", token: str | None = None):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"AWSOrganizationsV20161128.{target}"}
    headers.update(auth(key, "organizations"))
    if token:
        headers["X-Amz-Security-Token"] = token
    return call("POST", "/", headers, json.dumps(body))


def enable_trusted_access(principal: str) -> None:
    """Trusted access for `principal`, waited for until the service has learnt of it (the local
    cloud's transition: core.TRUSTED)."""

    assert org("EnableAWSServiceAccess", {"ServicePrincipal": principal})[0] == 200
    deadline = time.monotonic() + 20
    while not core.trusted_access(ACCOUNT, principal):
        assert time.monotonic() < deadline, f"{principal}: trusted access still in its transition"
        time.sleep(0.1)


def root_credentials(account: str) -> str:
    status, body = call("POST", "/assure-api/root-credentials", {}, json.dumps({"account": account}))
    assert status == 200, body
    remember(body)
    return json.loads(body)["AccessKeyId"]


class RootUser(unittest.TestCase):
    """The root user of every account (/assure-api/root-credentials) and centralized root access
    (sts:AssumeRoot). The organization is made once: this account manages it, MEMBER is in it."""

    MEMBER = ""

    @classmethod
    def setUpClass(cls):
        from moto.organizations.models import organizations_backends

        if organizations_backends[ACCOUNT]["aws"].org is None:
            assert org("CreateOrganization", {"FeatureSet": "ALL"})[0] == 200
        backend = organizations_backends[ACCOUNT]["aws"]
        member = next((a.id for a in backend.accounts if a.name == "root-test-member"), None)
        if member is None:
            status, body = org("CreateAccount", {"Email": "root-test@example.com", "AccountName": "root-test-member"})
            member = json.loads(body)["CreateAccountStatus"]["AccountId"]
        cls.MEMBER = member
        root = next(x for x in backend.ou if getattr(x, "type", "") == "ROOT")
        if not any(t.get("Type") == "SERVICE_CONTROL_POLICY" and t.get("Status") == "ENABLED" for t in root.policy_types):
            assert org("EnablePolicyType", {"RootId": root.id, "PolicyType": "SERVICE_CONTROL_POLICY"})[0] == 200

    def test_root_credentials(self):
        key = root_credentials(ACCOUNT)
        status, body = query_call("sts", "GetCallerIdentity", {}, key)
        self.assertEqual(tag("Arn", body), f"arn:aws:iam::{ACCOUNT}:root")
        self.assertEqual(query_call("iam", "ListRoles", {}, key)[0], 200, "no IAM policy needed")
        status, body = query_call("sts", "AssumeRole", {"RoleArn": make_role("root-target", TRUST_ACCOUNT), "RoleSessionName": "root"}, key)
        self.assertEqual(status, 403)
        self.assertIn("Roles may not be assumed by root accounts", body)
        self.assertEqual(call("POST", "/assure-api/root-credentials", {}, json.dumps({"account": "12"}))[0], 400)

    def test_the_request_context_of_the_root_user(self):
        from assure_local import authz

        key = root_credentials(ACCOUNT)
        ctx = authz.request_context(req("s3", ""), principals.principal_for(key, None))
        self.assertEqual((ctx["aws:PrincipalArn"], ctx["aws:PrincipalType"]), (f"arn:aws:iam::{ACCOUNT}:root", "Account"))
        self.assertNotIn("aws:AssumedRoot", ctx)

    def test_scps_bind_a_member_root_never_the_management_root(self):
        deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "sqs:*", "Resource": "*",
                                                        "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}}]}
        status, body = org("CreatePolicy", {"Name": "root-test-deny", "Type": "SERVICE_CONTROL_POLICY", "Description": "t",
                                            "Content": json.dumps(deny)})
        if status == 200:
            policy = json.loads(body)["Policy"]["PolicySummary"]["Id"]
            self.assertEqual(org("AttachPolicy", {"PolicyId": policy, "TargetId": self.MEMBER})[0], 200)
        status, body = query_call("sqs", "ListQueues", {}, root_credentials(self.MEMBER))
        self.assertEqual(status, 403)
        self.assertIn("service control policy", body)
        self.assertEqual(query_call("sqs", "ListQueues", {}, root_credentials(ACCOUNT))[0], 200)

    def test_centralized_root_access(self):

        task = "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy"

        def assume_root(target=None, policy=task, key="testing"):
            return query_call("sts", "AssumeRoot", {"TargetPrincipal": target or self.MEMBER, "TaskPolicyArn.arn": policy}, key)

        identity.ROOT_FEATURES.clear()
        # The organization's features: IAM's trusted access first, the management account only.
        status, body = query_call("iam", "EnableOrganizationsRootSessions", {})
        if "<Code>ServiceAccessNotEnabledException</Code>" in body:
            # IAM learns of it a moment later: ServiceAccessNotEnabledException until then.
            self.assertEqual(org("EnableAWSServiceAccess", {"ServicePrincipal": "iam.amazonaws.com"})[0], 200)
            status, body = query_call("iam", "ListOrganizationsFeatures", {})
            self.assertIn("<Code>ServiceAccessNotEnabledException</Code>", body, "trusted access is not final at once")
            enable_trusted_access("iam.amazonaws.com")
        status, body = query_call("iam", "ListOrganizationsFeatures", {})
        self.assertIn("<EnabledFeatures/>", body.replace("<EnabledFeatures></EnabledFeatures>", "<EnabledFeatures/>"))
        status, body = assume_root()
        self.assertEqual(status, 403, "root sessions not enabled")
        member_admin = assume(f"arn:aws:iam::{self.MEMBER}:role/OrganizationAccountAccessRole")
        status, body = query_call("iam", "EnableOrganizationsRootSessions", {}, *member_admin)
        self.assertIn("<Code>CallerIsNotManagementAccountException</Code>", body)
        status, body = query_call("iam", "EnableOrganizationsRootSessions", {})
        self.assertEqual(status, 200, body)
        self.assertIn("<member>RootSessions</member>", body)
        # AssumeRoot's parameters, and who may call it.
        self.assertIn("<Code>ValidationError</Code>", assume_root(policy="arn:aws:iam::aws:policy/AdministratorAccess")[1])
        self.assertIn("<Code>ValidationError</Code>", assume_root(target=ACCOUNT)[1], "the management account is no member")
        self.assertEqual(assume_root(key=root_credentials(ACCOUNT))[0], 403, "root credentials cannot call it")
        status, body = assume_root()
        self.assertEqual(status, 200, body)
        key, token = tag("AccessKeyId", body), tag("SessionToken", body)
        remember(body)
        # The session is the member's root user, with aws:AssumedRoot, within its task policy.
        self.assertEqual(tag("Arn", query_call("sts", "GetCallerIdentity", {}, key, token)[1]), f"arn:aws:iam::{self.MEMBER}:root")
        from assure_local import authz

        ctx = authz.request_context(req("s3", ""), principals.principal_for(key, token))
        self.assertEqual(ctx["aws:AssumedRoot"], "true")
        s3 = dict(auth(key, "s3"), **{"X-Amz-Security-Token": token})
        member_s3 = dict(auth(member_admin[0], "s3"), **{"X-Amz-Security-Token": member_admin[1]})
        self.assertEqual(call("PUT", "/root-test-locked", member_s3)[0], 200)
        lock = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                                        "Resource": ["arn:aws:s3:::root-test-locked", "arn:aws:s3:::root-test-locked/*"]}]}
        self.assertLess(call("PUT", "/root-test-locked", member_s3, json.dumps(lock), "policy")[0], 300)
        self.assertEqual(call("GET", "/root-test-locked", member_s3, query="policy")[0], 403, "locked out")
        status, body = call("GET", "/root-test-locked", s3, query="location")
        self.assertEqual(status, 403, "the task policy allows only the bucket policy's actions")
        self.assertIn("session policy", body)
        self.assertEqual(call("DELETE", "/root-test-locked", s3, query="policy")[0], 204, "the root session unlocks it")
        self.assertEqual(call("GET", "/root-test-locked", member_s3, query="location")[0], 200)
        self.assertEqual(query_call("sts", "GetCallerIdentity", {}, key, "wrong")[0], 403, "its token is needed")


def root_user(account: str, **fields) -> dict:
    """POST /assure-api/root-credentials with `fields` (password, mfaDevice, signingCertificate,
    accessKey): the root user's credentials after it (root.py)."""
    status, body = call("POST", "/assure-api/root-credentials", {}, json.dumps(dict(fields, account=account)))
    assert status == 200, body
    remember(body)
    return json.loads(body)


def root_state(account: str) -> dict:
    status, body = call("GET", "/assure-api/root-credentials", query=f"account={account}")
    assert status == 200, body
    return json.loads(body)


def code(answer: tuple[int, str]) -> tuple[int, str]:
    """(status, error code) of an IAM or STS answer in the query protocol; the code is "" on success."""
    import re

    m = re.search(r"<Code>(.*?)</Code>", answer[1])
    return answer[0], m.group(1) if m else ""


class RootUserCredentials(unittest.TestCase):
    """The root user's credentials as IAM shows them (root.py), and centralized root access's tasks on
    them (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user-privileged-task.html): each
    test gives a new member account's root user its credentials, then breaks one rule. This account
    manages the organization (as in RootUser)."""

    TASKS = "arn:aws:iam::aws:policy/root-task/"

    def setUp(self):
        from moto.organizations.models import organizations_backends


        if organizations_backends[ACCOUNT]["aws"].org is None:
            assert org("CreateOrganization", {"FeatureSet": "ALL"})[0] == 200
        status, body = org("CreateAccount", {"Email": f"{self._testMethodName[:40]}@example.com",
                                             "AccountName": self._testMethodName[:50]})
        assert status == 200, body
        self.member = json.loads(body)["CreateAccountStatus"]["AccountId"]
        if not core.trusted_access(ACCOUNT, "iam.amazonaws.com"):
            enable_trusted_access("iam.amazonaws.com")
        for feature in ("EnableOrganizationsRootCredentialsManagement", "EnableOrganizationsRootSessions"):
            assert query_call("iam", feature, {})[0] == 200

    def session(self, task: str) -> tuple[str, str]:
        """A centralized root session in the member account, scoped to root task policy `task`."""
        status, body = query_call("sts", "AssumeRoot", {"TargetPrincipal": self.member, "TaskPolicyArn.arn": self.TASKS + task})
        assert status == 200, body
        remember(body)
        return tag("AccessKeyId", body), tag("SessionToken", body)

    def iam(self, action: str, creds: tuple, **params) -> tuple[int, str]:
        return query_call("iam", action, params, *creds)

    def test_an_organizations_account_has_no_root_credentials(self):
        state = root_state(self.member)
        self.assertEqual((state["password"], state["accessKeys"], state["signingCertificates"], state["mfaDevices"]),
                         (None, [], [], []))
        audit = self.session("IAMAuditRootUserCredentials")
        self.assertEqual(code(self.iam("GetLoginProfile", audit)), (404, "NoSuchEntity"))
        for action, member in (("ListAccessKeys", "AccessKeyMetadata"), ("ListSigningCertificates", "Certificates"),
                               ("ListMFADevices", "MFADevices")):
            status, body = self.iam(action, audit)
            self.assertEqual(status, 200, body)
            self.assertNotIn("<member>", body, action)
            self.assertIn(member, body)

    def test_a_delete_session_deletes_each_root_credential(self):
        seeded = root_user(self.member, password=True, mfaDevice=True, signingCertificate=True, accessKey=True)
        root_key = seeded["AccessKeyId"]
        self.assertEqual(code(query_call("sts", "GetCallerIdentity", {}, root_key)), (200, ""))
        s = self.session("IAMDeleteRootUserCredentials")
        # The password (aws iam get-login-profile / delete-login-profile, no --user-name).
        status, body = self.iam("GetLoginProfile", s)
        self.assertEqual(status, 200, body)
        self.assertIn("<CreateDate>", body)
        self.assertNotIn("<UserName>", body)
        self.assertEqual(code(self.iam("DeleteLoginProfile", s)), (200, ""))
        self.assertEqual(code(self.iam("GetLoginProfile", s)), (404, "NoSuchEntity"))
        self.assertEqual(code(self.iam("DeleteLoginProfile", s)), (404, "NoSuchEntity"))
        # The access key: listed, deleted, then refused as a key AWS does not know.
        status, body = self.iam("ListAccessKeys", s)
        self.assertIn(f"<AccessKeyId>{root_key}</AccessKeyId>", body)
        self.assertEqual(body.count("<AccessKeyId>"), 1, "the session's own key is no access key of the root user")
        self.assertEqual(code(self.iam("DeleteAccessKey", s, AccessKeyId=root_key)), (200, ""))
        self.assertEqual(code(query_call("sts", "GetCallerIdentity", {}, root_key)), (403, "InvalidClientTokenId"))
        self.assertNotIn("<AccessKeyId>", self.iam("ListAccessKeys", s)[1])
        self.assertEqual(code(self.iam("DeleteAccessKey", s, AccessKeyId=root_key)), (404, "NoSuchEntity"))
        # The signing certificate.
        cert = seeded["signingCertificates"][0]["CertificateId"]
        self.assertIn(f"<CertificateId>{cert}</CertificateId>", self.iam("ListSigningCertificates", s)[1])
        self.assertEqual(code(self.iam("DeleteSigningCertificate", s, CertificateId=cert)), (200, ""))
        self.assertNotIn("<CertificateId>", self.iam("ListSigningCertificates", s)[1])
        self.assertEqual(code(self.iam("DeleteSigningCertificate", s, CertificateId=cert)), (404, "NoSuchEntity"))
        # The MFA device: deactivated, then (a virtual one) deleted.
        serial = f"arn:aws:iam::{self.member}:mfa/root-account-mfa-device"
        self.assertIn(f"<SerialNumber>{serial}</SerialNumber>", self.iam("ListMFADevices", s)[1])
        self.assertEqual(code(self.iam("DeleteVirtualMFADevice", s, SerialNumber=serial)), (409, "DeleteConflict"),
                         "an enabled device is deactivated first")
        self.assertEqual(code(self.iam("DeactivateMFADevice", s, SerialNumber=serial)), (200, ""))
        self.assertNotIn("<SerialNumber>", self.iam("ListMFADevices", s)[1])
        self.assertEqual(code(self.iam("DeactivateMFADevice", s, SerialNumber=serial)), (404, "NoSuchEntity"))
        admin = assume(f"arn:aws:iam::{self.member}:role/OrganizationAccountAccessRole")
        self.assertIn(serial, self.iam("ListVirtualMFADevices", admin)[1], "deactivated, it stays in the account")
        self.assertEqual(code(self.iam("DeleteVirtualMFADevice", s, SerialNumber=serial)), (200, ""))
        self.assertNotIn(serial, self.iam("ListVirtualMFADevices", admin)[1])
        state = root_state(self.member)
        self.assertEqual((state["password"], state["accessKeys"], state["signingCertificates"], state["mfaDevices"]),
                         (None, [], [], []))

    def test_the_task_is_the_root_users_only(self):
        from moto.iam.models import iam_backends

        root_user(self.member, password=True)
        iam = iam_backends[self.member]["aws"]
        iam.create_user(region_name=REGION, user_name="console-user", path="/", tags=[])
        iam.create_login_profile("console-user", "Passw0rd!Passw0rd")
        s = self.session("IAMDeleteRootUserCredentials")
        status, body = self.iam("DeleteLoginProfile", s, UserName="console-user")
        self.assertEqual(status, 403)
        self.assertIn(f"iam:DeleteLoginProfile on resource: arn:aws:iam::{self.member}:user/console-user "
                      "with an explicit deny in a session policy", body)
        self.assertEqual(code(self.iam("ListRoles", s)), (403, "AccessDenied"), "nothing but the task's actions")
        self.assertIsNotNone(iam.get_login_profile("console-user"))

    def test_an_audit_session_reads_and_deletes_nothing(self):
        seeded = root_user(self.member, password=True, accessKey=True, signingCertificate=True, mfaDevice=True)
        audit = self.session("IAMAuditRootUserCredentials")
        self.assertEqual(code(self.iam("GetLoginProfile", audit)), (200, ""))
        self.assertIn(seeded["AccessKeyId"], self.iam("ListAccessKeys", audit)[1])
        self.assertIn("<ServiceName>N/A</ServiceName>", self.iam("GetAccessKeyLastUsed", audit, AccessKeyId=seeded["AccessKeyId"])[1])
        self.assertIn(f"<Arn>arn:aws:iam::{self.member}:root</Arn>", self.iam("GetUser", audit)[1])
        for action, params in (("DeleteLoginProfile", {}), ("DeleteAccessKey", {"AccessKeyId": seeded["AccessKeyId"]}),
                               ("DeleteSigningCertificate", {"CertificateId": seeded["signingCertificates"][0]["CertificateId"]}),
                               ("DeactivateMFADevice", {"SerialNumber": seeded["mfaDevices"][0]["SerialNumber"]})):
            status, body = self.iam(action, audit, **params)
            self.assertEqual(status, 403, action)
            self.assertIn(f"iam:{action} on resource: arn:aws:iam::{self.member}:root with an explicit deny in a session policy", body)
        state = root_state(self.member)
        self.assertEqual((bool(state["password"]), len(state["accessKeys"]), len(state["signingCertificates"]),
                          len(state["mfaDevices"])), (True, 1, 1, 1))

    def test_a_password_recovery_session_creates_the_login_profile_without_a_password(self):
        s = self.session("IAMCreateRootUserPassword")
        self.assertEqual(code(self.iam("CreateLoginProfile", s, Password="Passw0rd!Passw0rd")), (400, "ValidationError"),
                         "an AssumeRoot session omits Password")
        self.assertEqual(code(self.iam("CreateLoginProfile", s)), (200, ""))
        self.assertEqual(code(self.iam("GetLoginProfile", s)), (200, ""))
        self.assertEqual(code(self.iam("CreateLoginProfile", s)), (409, "EntityAlreadyExists"))
        self.assertEqual(code(self.iam("DeleteLoginProfile", s)), (403, "AccessDenied"), "not this task's")
        self.assertIsNotNone(root_state(self.member)["password"])

    def test_the_root_users_own_keys_need_a_session_to_omit_the_user_name_for_its_password(self):
        key = root_user(self.member, password=True, accessKey=True)["AccessKeyId"]
        self.assertEqual(code(query_call("iam", "GetLoginProfile", {}, key)), (400, "ValidationError"))
        self.assertEqual(code(query_call("iam", "DeleteLoginProfile", {}, key)), (400, "ValidationError"))
        self.assertIn(key, query_call("iam", "ListAccessKeys", {}, key)[1], "its access keys it manages itself")
        self.assertIsNotNone(root_state(self.member)["password"])

    def test_a_role_omitting_the_user_name_does_not_touch_the_root_user(self):
        key = root_user(self.member, password=True, accessKey=True)["AccessKeyId"]
        admin = assume(f"arn:aws:iam::{self.member}:role/OrganizationAccountAccessRole")
        self.assertNotEqual(self.iam("DeleteLoginProfile", admin)[0], 200)
        self.assertNotIn(key, self.iam("ListAccessKeys", admin)[1])
        self.assertNotEqual(self.iam("DeleteAccessKey", admin, AccessKeyId=key)[0], 200)
        state = root_state(self.member)
        self.assertIsNotNone(state["password"])
        self.assertEqual([k["AccessKeyId"] for k in state["accessKeys"]], [key])

    def test_the_request_is_on_the_root_user_only_for_the_root_user(self):
        from assure_local.iam import Principal

        root = Principal(kind="root", account=self.member, arn=f"arn:aws:iam::{self.member}:root")
        user = Principal(kind="user", account=self.member, arn=f"arn:aws:iam::{self.member}:user/ops/alice")
        role = Principal(kind="role", account=self.member, arn=f"arn:aws:iam::{self.member}:role/admin")

        def on(principal, operation, **params):
            return [r.arn for _, r in authz_resources.resources_for(req("iam", operation, **params), self.member, principal)]

        for op in ("GetLoginProfile", "DeleteLoginProfile", "ListAccessKeys", "DeactivateMFADevice", "GetUser"):
            self.assertEqual(on(root, op), [f"arn:aws:iam::{self.member}:root"], op)
            self.assertEqual(on(user, op), [user.arn], f"{op}: the user making the request")
            self.assertEqual(on(role, op), ["*"], op)
            self.assertEqual(on(root, op, UserName="bob"), [f"arn:aws:iam::{self.member}:user/bob"], op)

    def test_the_account_summary_shows_the_root_users_credentials(self):
        admin = assume(f"arn:aws:iam::{self.member}:role/OrganizationAccountAccessRole")
        keys = ("AccountAccessKeysPresent", "AccountMFAEnabled", "AccountSigningCertificatesPresent", "AccountPasswordPresent")

        def summary():
            status, body = self.iam("GetAccountSummary", admin)
            self.assertEqual(status, 200, body)
            return tuple(int(tag("value", body.split(f"<key>{k}</key>", 1)[1])) for k in keys)

        self.assertEqual(summary(), (0, 0, 0, 0))
        root_user(self.member, password=True, accessKey=True, signingCertificate=True, mfaDevice="GAHT12345678")
        self.assertEqual(summary(), (1, 1, 1, 1))
        self.assertNotIn("GAHT12345678", self.iam("ListVirtualMFADevices", admin)[1], "a hardware device")
        audit = self.session("IAMAuditRootUserCredentials")
        self.assertEqual(code(self.iam("GetAccountSummary", audit)), (200, ""))
        root_user(self.member, password=False)
        self.assertEqual(summary()[3], 0)

    def test_the_seed_api_checks_what_it_is_given(self):
        self.assertEqual(call("GET", "/assure-api/root-credentials", query="account=12")[0], 400)
        for doc in ({"account": self.member, "passwd": True}, {"account": self.member, "password": "yes"},
                    {"account": self.member, "mfaDevice": "arn:aws:iam::111111111111:mfa/root-account-mfa-device"}):
            self.assertEqual(call("POST", "/assure-api/root-credentials", {}, json.dumps(doc))[0], 400, doc)
        legacy = root_user(self.member)
        self.assertEqual(set(legacy), {"AccessKeyId", "SecretAccessKey"}, "a bare POST answers as it always did")


FORM = "application/x-www-form-urlencoded; charset=utf-8"
WHO_AM_I = "Action=GetCallerIdentity&Version=2011-06-15"


def minutes_ago(minutes: float):
    import datetime

    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=minutes)


def bad_signatures() -> int:
    return json.loads(call("GET", "/assure-api/iam")[1])["badSignatures"]


class Signatures(unittest.TestCase):
    """Every signed request's signature is verified against its access key's secret, as AWS verifies
    it (sigv4.py: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html,
    https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html,
    https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html). Requests are signed
    by botocore's signers, as the AWS CLI signs them; each test breaks one part of the signature."""

    @classmethod
    def setUpClass(cls):
        admin = auth("testing", "s3")
        call("PUT", "/sig-test", admin)
        call("PUT", "/sig-test/k", admin, b"hi")

    def test_a_wrong_secret_is_refused_in_each_protocols_shape(self):
        before = bad_signatures()
        self.assertEqual(call("POST", "/", dict(auth("testing", "sts"), **{"Content-Type": FORM}), WHO_AM_I)[0], 200)
        status, body = call("POST", "/", dict(auth("testing", "sts", secret="wrong"), **{"Content-Type": FORM}), WHO_AM_I)
        self.assertEqual(status, 403)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        self.assertIn("The request signature we calculated does not match the signature you provided. Check your AWS "
                      "Secret Access Key and signing method. Consult the service documentation for details.", body)
        self.assertIn("The Canonical String for this request should have been", body)
        status, body = call("GET", "/sig-test/k", auth("testing", "s3", secret="wrong"))
        self.assertEqual(status, 403)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        self.assertIn("<StringToSign>AWS4-HMAC-SHA256\n", body)
        kms = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"}
        self.assertEqual(call("POST", "/", dict(auth("testing", "kms"), **kms), "{}")[0], 200)
        status, body = call("POST", "/", dict(auth("testing", "kms", secret="wrong"), **kms), "{}")
        self.assertEqual((status, json.loads(body)["__type"]), (400, "InvalidSignatureException"))
        self.assertEqual(bad_signatures(), before + 3)

    def test_a_session_signs_with_its_own_secret(self):
        key, token = assume(make_role("sig-session", TRUST_ACCOUNT))
        headers = {"Content-Type": FORM, "X-Amz-Security-Token": token}
        self.assertEqual(call("POST", "/", dict(auth(key, "sts"), **headers), WHO_AM_I)[0], 200)
        status, body = call("POST", "/", dict(auth(key, "sts", secret="testing"), **headers), WHO_AM_I)
        self.assertEqual(status, 403, "the administrator's secret is not the session's")
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)

    def test_a_service_session_is_verified_too(self):
        from assure_local import core

        role = make_role("sig-service", service_trust("states.amazonaws.com"))
        session = principals.service_session("states.amazonaws.com", role, "states")
        core.SERVICE_KEYS.add(session.access_key_id)
        SECRETS[session.access_key_id] = session.secret_access_key
        headers = {"Content-Type": FORM, "X-Amz-Security-Token": session.session_token}
        self.assertEqual(call("POST", "/", dict(auth(session.access_key_id, "sqs"), **headers), "Action=ListQueues")[0], 200)
        status, body = call("POST", "/", dict(auth(session.access_key_id, "sqs", secret="wrong"), **headers),
                            "Action=ListQueues")
        self.assertEqual(status, 403)
        self.assertIn("SignatureDoesNotMatch", body)

    def test_a_body_changed_after_signing_is_refused(self):
        headers = sign("POST", "/", "", {"Content-Type": FORM}, WHO_AM_I, "testing", "sts")
        self.assertEqual(call("POST", "/", headers, WHO_AM_I)[0], 200)
        status, body = call("POST", "/", headers, WHO_AM_I.replace("2011-06-15", "2011-06-16"))
        self.assertEqual(status, 403)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        # S3 signs the body's hash in x-amz-content-sha256, and checks the body against it.
        headers = sign("PUT", "/sig-test/tampered", "", {}, b"original", "testing", "s3")
        status, body = call("PUT", "/sig-test/tampered", headers, b"tampered")
        self.assertEqual(status, 400)
        self.assertIn("<Code>XAmzContentSHA256Mismatch</Code>", body)
        self.assertEqual(call("GET", "/sig-test/tampered", auth("testing", "s3"))[0], 404, "nothing was written")

    def test_a_signed_header_changed_after_signing_is_refused(self):
        headers = sign("POST", "/", "", {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"},
                       "{}", "testing", "kms")
        self.assertIn("x-amz-target", headers["Authorization"])
        self.assertEqual(call("POST", "/", dict(headers, **{"X-Unsigned": "anything"}), "{}")[0], 200,
                         "a header the signature does not name may change")
        status, body = call("POST", "/", dict(headers, **{"X-Amz-Target": "TrentService.ListAliases"}), "{}")
        self.assertEqual((status, json.loads(body)["__type"]), (400, "InvalidSignatureException"))
        headers = sign("GET", "/sig-test/k", "", {"x-amz-expected-bucket-owner": ACCOUNT}, b"", "testing", "s3")
        self.assertEqual(call("GET", "/sig-test/k", headers), (200, "hi"))
        status, body = call("GET", "/sig-test/k", dict(headers, **{"x-amz-expected-bucket-owner": "111111111111"}))
        self.assertEqual(status, 403)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)

    def test_a_request_signed_twenty_minutes_ago_is_refused(self):
        status, body = call("GET", "/sig-test/k", auth("testing", "s3", when=minutes_ago(20)))
        self.assertEqual(status, 403)
        self.assertIn("<Code>RequestTimeTooSkewed</Code>", body)
        self.assertIn("<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>", body)
        status, body = call("POST", "/", dict(auth("testing", "sts", when=minutes_ago(20)), **{"Content-Type": FORM}), WHO_AM_I)
        self.assertEqual(status, 403)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        self.assertIn("Signature expired: ", body)
        status, body = call("POST", "/", dict(auth("testing", "sts", when=minutes_ago(-20)), **{"Content-Type": FORM}), WHO_AM_I)
        self.assertIn("Signature not yet current: ", body, "twenty minutes ahead")
        self.assertEqual(call("GET", "/sig-test/k", auth("testing", "s3", when=minutes_ago(10))), (200, "hi"),
                         "within fifteen minutes")

    def test_presigned_urls(self):
        self.assertEqual(call("GET", "/sig-test/k", query=presign("/sig-test/k")), (200, "hi"))
        status, body = call("GET", "/sig-test/k", query=presign("/sig-test/k", secret="wrong"))
        self.assertEqual(status, 403)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)
        good = presign("/sig-test/k")
        forged = good[:-6] + ("000000" if not good.endswith("000000") else "111111")
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", call("GET", "/sig-test/k", query=forged)[1])
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", call("GET", "/sig-test/other", query=good)[1],
                      "a URL signs one object")
        status, body = call("GET", "/sig-test/k", query=presign("/sig-test/k", expires=60, when=minutes_ago(2)))
        self.assertEqual(status, 403)
        self.assertIn("<Code>AccessDenied</Code><Message>Request has expired</Message>", body)
        status, body = call("GET", "/sig-test/k", query=presign("/sig-test/k", expires=604801))
        self.assertEqual(status, 400)
        self.assertIn("<Code>AuthorizationQueryParametersError</Code>", body)

    def test_an_unsigned_payload_is_allowed(self):
        headers = sign("PUT", "/sig-test/unsigned", "", {}, b"free", "testing", "s3", options={"unsigned_payload": True})
        self.assertEqual(headers["X-Amz-Content-SHA256"], "UNSIGNED-PAYLOAD")
        self.assertEqual(call("PUT", "/sig-test/unsigned", headers, b"free")[0], 200)
        self.assertEqual(call("GET", "/sig-test/unsigned", auth("testing", "s3")), (200, "free"))

    def test_a_path_with_characters_that_need_encoding(self):
        from urllib.parse import quote

        path = "/sig-test/" + quote("a b/c+d=e", safe="/~")
        self.assertEqual(path, "/sig-test/a%20b/c%2Bd%3De")
        self.assertEqual(call("PUT", path, auth("testing", "s3"), b"odd")[0], 200)
        self.assertEqual(call("GET", path, auth("testing", "s3")), (200, "odd"))
        self.assertEqual(call("GET", path, query=presign(path)), (200, "odd"))
        status, body = call("GET", "/sig-test", auth("testing", "s3"), query="list-type=2&prefix=a%20b%2F")
        self.assertEqual(status, 200)
        self.assertIn("<Key>a b/c+d=e</Key>", body)
        # Elsewhere the path is encoded twice in the canonical request (an analyzer's name with a colon).
        status, body = call("GET", "/analyzer/a%3Ab", auth("testing", "access-analyzer"))
        self.assertNotIn("Signature", body)
        status, body = call("GET", "/analyzer/a%3Ab", auth("testing", "access-analyzer", secret="wrong"))
        self.assertEqual((status, json.loads(body)["__type"]), (403, "InvalidSignatureException"))
        self.assertIn("\nGET\n/analyzer/a%253Ab\n", "\n" + json.loads(body)["message"].split("'")[1])

    def test_a_streaming_upload_is_verified_by_its_seed_signature(self):
        # The seed signature covers x-amz-content-sha256 as given (sigv4-streaming.html); the chunks'
        # own signatures are not checked. botocore's plain SigV4Auth signs the header's value as given.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from werkzeug.test import EnvironBuilder

        from assure_local import sigv4

        body = b"5;chunk-signature=00\r\nhello\r\n0;chunk-signature=00\r\n\r\n"
        headers = {"X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "Content-Encoding": "aws-chunked",
                   "X-Amz-Decoded-Content-Length": "5"}

        def environ(secret: str) -> dict:
            request = AWSRequest(method="PUT", url="http://localhost/sig-test/streamed", headers=dict(headers), data=body)
            SigV4Auth(Credentials("testing", secret), "s3", REGION).add_auth(request)
            return EnvironBuilder("/sig-test/streamed", method="PUT", headers=dict(request.headers.items()),
                                  data=body).get_environ()

        self.assertIsNone(sigv4.verify(environ("testing"), body, "testing"))
        self.assertEqual(sigv4.verify(environ("wrong"), body, "testing").kind, "signature")

    def test_s3_signature_version_2(self):
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html
        from botocore.auth import HmacV1Auth, HmacV1QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        def signed(secret: str) -> dict:
            request = AWSRequest(method="GET", url="http://localhost/sig-test/k")
            HmacV1Auth(Credentials("testing", secret)).add_auth(request)
            return dict(request.headers.items())

        self.assertEqual(call("GET", "/sig-test/k", signed("testing")), (200, "hi"))
        status, body = call("GET", "/sig-test/k", signed("wrong"))
        self.assertEqual(status, 403)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", body)

        def presigned(expires: int) -> str:
            request = AWSRequest(method="GET", url="http://localhost/sig-test/k")
            HmacV1QueryAuth(Credentials("testing", "testing"), expires=expires).add_auth(request)
            return request.url.split("?", 1)[1]

        self.assertEqual(call("GET", "/sig-test/k", query=presigned(60)), (200, "hi"))
        self.assertIn("Request has expired", call("GET", "/sig-test/k", query=presigned(-60))[1])



def limits(method: str, doc: dict | None = None) -> dict:
    status, body = call(method, "/assure-api/limits", {}, json.dumps(doc) if doc is not None else b"")
    assert status == 200, body
    return json.loads(body)


def rest(method: str, service: str, path: str, body: dict | None = None, region: str = REGION):
    """A REST-JSON request (GuardDuty, IAM Access Analyzer) signed as the administrator."""
    headers = dict(auth("testing", service, region), **{"Content-Type": "application/json"})
    status, text = call(method, path, headers, json.dumps(body) if body is not None else b"")
    return status, json.loads(text or "{}")


def firehose(operation: str, body: dict):
    status, text = json_call(f"Firehose_20150804.{operation}", "firehose", body)
    return status, json.loads(text or "{}")


class Transitions(unittest.TestCase):
    """What is created is not final at once (core.TRANSITION): an analyzer is CREATING, then ACTIVE
    (https://docs.aws.amazon.com/access-analyzer/latest/APIReference/API_AnalyzerSummary.html); a
    Firehose stream CREATING, then ACTIVE, taking data only then
    (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html); a GuardDuty
    publishing destination PENDING_VERIFICATION, then what GuardDuty finds
    (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Destination.html). The tests shorten
    the transition to its minimum, 0.5 s, and wait 0.7 s."""

    WAIT = 0.7

    def setUp(self):
        from assure_local import rules

        self.propagation = rules.PROPAGATION["seconds"]
        limits("POST", {"transitionSeconds": 0.5, "iamPropagationSeconds": 0})

    def tearDown(self):
        # The transition back to its default, IAM's propagation delay as it was.
        limits("POST", {"iamPropagationSeconds": self.propagation})

    def test_the_setting_has_a_minimum_and_a_default(self):

        self.assertEqual(limits("GET")["transitionSeconds"], 0.5)
        self.assertEqual(limits("POST", {"transitionSeconds": 0})["transitionSeconds"], 0.5, "none may turn it off")
        self.assertEqual(limits("POST", {"transitionSeconds": -3})["transitionSeconds"], 0.5)
        self.assertEqual(limits("POST", {"transitionSeconds": 1.5})["transitionSeconds"], 1.5)
        self.assertEqual(limits("POST", {})["transitionSeconds"], knobs.DEFAULT_TRANSITION, "unnamed: the default")
        self.assertEqual(limits("POST", {"transitionSeconds": 0.75})["transitionSeconds"], 0.75)
        self.assertEqual(limits("DELETE")["transitionSeconds"], knobs.DEFAULT_TRANSITION, "DELETE: the default")
        self.assertGreaterEqual(knobs.DEFAULT_TRANSITION, core.MIN_TRANSITION)
        # Set to 0, a new analyzer is still CREATING at first.
        limits("POST", {"transitionSeconds": 0})
        self.assertEqual(rest("PUT", "access-analyzer", "/analyzer", {"analyzerName": "t-zero", "type": "ACCOUNT"})[0], 200)
        self.assertEqual(rest("GET", "access-analyzer", "/analyzer/t-zero")[1]["analyzer"]["status"], "CREATING")
        self.assertEqual(rest("DELETE", "access-analyzer", "/analyzer/t-zero")[0], 200, "DeleteAnalyzer names no refusal")

    def test_an_analyzer_is_creating_then_active(self):
        status, body = rest("PUT", "access-analyzer", "/analyzer", {"analyzerName": "t-analyzer", "type": "ACCOUNT"})
        self.assertEqual(status, 200, body)
        statuses = lambda: (rest("GET", "access-analyzer", "/analyzer/t-analyzer")[1]["analyzer"]["status"],
                            [a["status"] for a in rest("GET", "access-analyzer", "/analyzer")[1]["analyzers"]
                             if a["name"] == "t-analyzer"])
        self.assertEqual(statuses(), ("CREATING", ["CREATING"]), "GetAnalyzer and ListAnalyzers agree")
        # The API reference names no refusal while CREATING: an archive rule is taken.
        status, body = rest("PUT", "access-analyzer", "/analyzer/t-analyzer/archive-rule",
                            {"ruleName": "r", "filter": {"isPublic": {"eq": ["false"]}}})
        self.assertEqual(status, 200, body)
        time.sleep(self.WAIT)
        self.assertEqual(statuses(), ("ACTIVE", ["ACTIVE"]))
        limits("POST", {"transitionSeconds": 5, "iamPropagationSeconds": 0})
        self.assertEqual(statuses(), ("ACTIVE", ["ACTIVE"]), "a later setting never turns a final status back")
        self.assertEqual(rest("DELETE", "access-analyzer", "/analyzer/t-analyzer")[0], 200)

    def test_a_firehose_stream_is_creating_then_active_and_takes_data_only_then(self):
        role = make_role("t-firehose", service_trust("firehose.amazonaws.com", {"StringEquals": {"sts:ExternalId": ACCOUNT}}))
        admin = auth("testing", "s3")
        self.assertEqual(call("PUT", "/t-firehose-bucket", admin)[0], 200)
        status, body = firehose("CreateDeliveryStream", {
            "DeliveryStreamName": "t-stream", "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {"RoleARN": role, "BucketARN": "arn:aws:s3:::t-firehose-bucket"}})
        self.assertEqual(status, 200, body)
        describe = lambda: firehose("DescribeDeliveryStream", {"DeliveryStreamName": "t-stream"})[1][
            "DeliveryStreamDescription"]["DeliveryStreamStatus"]
        objects = lambda: call("GET", "/t-firehose-bucket", admin, query="list-type=2")[1].count("<Key>")
        record = {"Data": base64.b64encode(b"{}").decode()}
        self.assertEqual(describe(), "CREATING")
        for operation, body in (("PutRecord", {"DeliveryStreamName": "t-stream", "Record": record}),
                                ("PutRecordBatch", {"DeliveryStreamName": "t-stream", "Records": [record]})):
            status, answer = firehose(operation, body)
            self.assertEqual((status, answer.get("__type")), (400, "ResourceNotFoundException"), operation)
        status, answer = firehose("DeleteDeliveryStream", {"DeliveryStreamName": "t-stream"})
        self.assertEqual((status, answer.get("__type")), (400, "ResourceInUseException"), "a CREATING stream stays")
        logs = lambda target, body: json_call(f"Logs_20140328.{target}", "logs", body)
        self.assertEqual(logs("CreateLogGroup", {"logGroupName": "t-group"})[0], 200)
        subscription = {"logGroupName": "t-group", "filterName": "all", "filterPattern": "",
                        "destinationArn": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/t-stream", "roleArn": role}
        status, text = logs("PutSubscriptionFilter", subscription)
        self.assertEqual((status, json.loads(text).get("__type")), (400, "InvalidParameterException"),
                         "CloudWatch Logs' test message cannot be delivered")
        self.assertEqual(objects(), 0, "a CREATING stream delivers nothing")

        time.sleep(self.WAIT)
        self.assertEqual(describe(), "ACTIVE")
        status, body = firehose("PutRecord", {"DeliveryStreamName": "t-stream", "Record": record})
        self.assertEqual(status, 200, body)
        self.assertEqual(objects(), 1, "an ACTIVE stream delivers")
        self.assertEqual(logs("PutSubscriptionFilter", subscription)[0], 200)
        self.assertEqual(firehose("DeleteDeliveryStream", {"DeliveryStreamName": "t-stream"})[0], 200)

    def test_a_publishing_destination_is_pending_verification_then_publishing(self):
        region = "eu-west-3"
        status, body = rest("POST", "guardduty", "/detector", {"enable": True}, region)
        self.assertEqual(status, 200, body)
        detector = body["detectorId"]
        service = {"Service": "guardduty.amazonaws.com"}
        bucket_policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": service, "Action": ["s3:PutObject", "s3:GetBucketLocation"],
             "Resource": ["arn:aws:s3:::t-findings", "arn:aws:s3:::t-findings/*"]}]}
        admin = auth("testing", "s3")
        self.assertEqual(call("PUT", "/t-findings", admin)[0], 200)
        self.assertEqual(call("PUT", "/t-findings", admin, json.dumps(bucket_policy), query="policy")[0], 200)
        key_policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": service, "Action": "kms:GenerateDataKey", "Resource": "*"}]}
        headers = dict(auth("testing", "kms", region), **{"Content-Type": "application/x-amz-json-1.1",
                                                         "X-Amz-Target": "TrentService.CreateKey"})
        status, text = call("POST", "/", headers, json.dumps({"Policy": json.dumps(key_policy)}))
        self.assertEqual(status, 200, text)
        key = json.loads(text)["KeyMetadata"]["Arn"]
        status, body = rest("POST", "guardduty", f"/detector/{detector}/publishingDestination", {
            "destinationType": "S3",
            "destinationProperties": {"destinationArn": "arn:aws:s3:::t-findings/guardduty", "kmsKeyArn": key}}, region)
        self.assertEqual(status, 200, body)
        destination = body["destinationId"]

        def statuses():
            listed = rest("GET", "guardduty", f"/detector/{detector}/publishingDestination", region=region)[1]
            described = rest("GET", "guardduty", f"/detector/{detector}/publishingDestination/{destination}", region=region)[1]
            return [d["status"] for d in listed["destinations"]], described["status"], described["publishingFailureStartTimestamp"]

        self.assertEqual(statuses(), (["PENDING_VERIFICATION"], "PENDING_VERIFICATION", 0),
                         "List and Describe agree; nothing has failed yet")
        time.sleep(self.WAIT)
        self.assertEqual(statuses(), (["PUBLISHING"], "PUBLISHING", 0))
        # Once verified, the status is what GuardDuty finds: a bucket policy that refuses it.
        self.assertEqual(call("DELETE", "/t-findings", admin, query="policy")[0], 204)
        self.assertEqual(statuses()[1], "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY")
        self.assertEqual(rest("DELETE", "guardduty", f"/detector/{detector}/publishingDestination/{destination}",
                              region=region)[0], 200)


if __name__ == "__main__":
    unittest.main()
