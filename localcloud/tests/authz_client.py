"""Helpers of the tests split from test_authz.py: What each request is authorized against, and the requests refused before any policy is read"""

import json
import time
import unittest
from typing import Any

from assure_local import aws_request, core, principals
from assure_local import resources as authz_resources

ACCOUNT = "123456789012"  # moto's default account: the bootstrap administrator's (access key "testing")


REGION = "us-east-1"


APP: Any = None  # werkzeug's test Client, made by setUpModule


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


FORM = "application/x-www-form-urlencoded; charset=utf-8"


WHO_AM_I = "Action=GetCallerIdentity&Version=2011-06-15"


def minutes_ago(minutes: float):
    import datetime

    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=minutes)


def bad_signatures() -> int:
    return json.loads(call("GET", "/assure-api/iam")[1])["badSignatures"]


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


if __name__ == "__main__":
    unittest.main()
