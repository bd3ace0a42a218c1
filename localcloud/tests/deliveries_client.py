"""Helpers of the tests split from test_deliver_services.py: Services acting on their own as their service principal (deliver_services.py): Config's snapshot"""

import http.server
import json
import time
import unittest
from typing import ClassVar
from urllib.parse import urlencode

from assure_local import principals
from assure_local.services import sns
from tests import authz_client
from tests.authz_client import ACCOUNT, auth, call, org, remember, tag

WAIT = 0.7  # the transition is set to 0.5 s


def setUpModule() -> None:
    import os

    os.environ.setdefault("ASSURE_IAM", "on")
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    from assure_local import extension

    extension.patch_moto()
    principals.bootstrap_admin()
    authz_client.APP = Client(extension.Extension(DomainDispatcherApplication(create_backend_app)))
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
    r = authz_client.APP.open(path, method="GET", headers=authz_client.sign("GET", path, "", {}, b"", "testing", "s3"))
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

    return organizations_backends[ACCOUNT]["aws"].org.id  # type: ignore[union-attr]  # made by setUpModule


class Received(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict]] = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        Received.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def cloudwatch(action: str, params: dict, region: str) -> tuple[int, str]:
    return query("monitoring", action, params, "2010-08-01", region=region)


if __name__ == "__main__":
    unittest.main()
