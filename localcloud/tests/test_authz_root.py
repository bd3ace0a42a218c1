"""What each request is authorized against, and the requests refused before any policy is read (continued: RootUser, RootUserCredentials)."""

import json
import unittest

from assure_local import core, principals
from assure_local import resources as authz_resources
from assure_local.services import identity
from tests import authz_client
from tests.authz_client import (
    ACCOUNT,
    REGION,
    TRUST_ACCOUNT,
    assume,
    auth,
    call,
    code,
    enable_trusted_access,
    make_role,
    org,
    query_call,
    remember,
    req,
    root_credentials,
    root_state,
    root_user,
    tag,
)


def setUpModule() -> None:
    authz_client.setUpModule()


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
            _status, body = org("CreateAccount", {"Email": "root-test@example.com", "AccountName": "root-test-member"})
            member = json.loads(body)["CreateAccountStatus"]["AccountId"]
        cls.MEMBER = member
        root = next(x for x in backend.ou if getattr(x, "type", "") == "ROOT")
        if not any(t.get("Type") == "SERVICE_CONTROL_POLICY" and t.get("Status") == "ENABLED" for t in getattr(root, "policy_types", [])):
            assert org("EnablePolicyType", {"RootId": root.id, "PolicyType": "SERVICE_CONTROL_POLICY"})[0] == 200

    def test_root_credentials(self):
        key = root_credentials(ACCOUNT)
        status, body = query_call("sts", "GetCallerIdentity", {}, key)
        assert tag("Arn", body) == f"arn:aws:iam::{ACCOUNT}:root"
        assert query_call("iam", "ListRoles", {}, key)[0] == 200, "no IAM policy needed"
        status, body = query_call("sts", "AssumeRole", {"RoleArn": make_role("root-target", TRUST_ACCOUNT), "RoleSessionName": "root"}, key)
        assert status == 403
        assert "Roles may not be assumed by root accounts" in body
        assert call("POST", "/assure-api/root-credentials", {}, json.dumps({"account": "12"}))[0] == 400

    def test_the_request_context_of_the_root_user(self):
        from assure_local import authz

        key = root_credentials(ACCOUNT)
        who = principals.principal_for(key, None)
        assert who is not None
        ctx = authz.request_context(req("s3", ""), who)
        assert (ctx["aws:PrincipalArn"], ctx["aws:PrincipalType"]) == (f"arn:aws:iam::{ACCOUNT}:root", "Account")
        assert "aws:AssumedRoot" not in ctx

    def test_scps_bind_a_member_root_never_the_management_root(self):
        deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "sqs:*", "Resource": "*",
                                                        "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}}]}
        status, body = org("CreatePolicy", {"Name": "root-test-deny", "Type": "SERVICE_CONTROL_POLICY", "Description": "t",
                                            "Content": json.dumps(deny)})
        if status == 200:
            policy = json.loads(body)["Policy"]["PolicySummary"]["Id"]
            assert org("AttachPolicy", {"PolicyId": policy, "TargetId": self.MEMBER})[0] == 200
        status, body = query_call("sqs", "ListQueues", {}, root_credentials(self.MEMBER))
        assert status == 403
        assert "service control policy" in body
        assert query_call("sqs", "ListQueues", {}, root_credentials(ACCOUNT))[0] == 200

    def test_centralized_root_access(self):

        task = "arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy"

        def assume_root(target=None, policy=task, key="testing"):
            return query_call("sts", "AssumeRoot", {"TargetPrincipal": target or self.MEMBER, "TaskPolicyArn.arn": policy}, key)

        identity.ROOT_FEATURES.clear()
        # The organization's features: IAM's trusted access first, the management account only.
        status, body = query_call("iam", "EnableOrganizationsRootSessions", {})
        if "<Code>ServiceAccessNotEnabledException</Code>" in body:
            # IAM learns of it a moment later: ServiceAccessNotEnabledException until then.
            assert org("EnableAWSServiceAccess", {"ServicePrincipal": "iam.amazonaws.com"})[0] == 200
            status, body = query_call("iam", "ListOrganizationsFeatures", {})
            assert "<Code>ServiceAccessNotEnabledException</Code>" in body, "trusted access is not final at once"
            enable_trusted_access("iam.amazonaws.com")
        status, body = query_call("iam", "ListOrganizationsFeatures", {})
        assert "<EnabledFeatures/>" in body.replace("<EnabledFeatures></EnabledFeatures>", "<EnabledFeatures/>")
        status, body = assume_root()
        assert status == 403, "root sessions not enabled"
        member_admin = assume(f"arn:aws:iam::{self.MEMBER}:role/OrganizationAccountAccessRole")
        status, body = query_call("iam", "EnableOrganizationsRootSessions", {}, *member_admin)
        assert "<Code>CallerIsNotManagementAccountException</Code>" in body
        status, body = query_call("iam", "EnableOrganizationsRootSessions", {})
        assert status == 200, body
        assert "<member>RootSessions</member>" in body
        # AssumeRoot's parameters, and who may call it.
        assert "<Code>ValidationError</Code>" in assume_root(policy="arn:aws:iam::aws:policy/AdministratorAccess")[1]
        assert "<Code>ValidationError</Code>" in assume_root(target=ACCOUNT)[1], "the management account is no member"
        assert assume_root(key=root_credentials(ACCOUNT))[0] == 403, "root credentials cannot call it"
        status, body = assume_root()
        assert status == 200, body
        key, token = tag("AccessKeyId", body), tag("SessionToken", body)
        remember(body)
        # The session is the member's root user, with aws:AssumedRoot, within its task policy.
        assert tag("Arn", query_call("sts", "GetCallerIdentity", {}, key, token)[1]) == f"arn:aws:iam::{self.MEMBER}:root"
        from assure_local import authz

        who = principals.principal_for(key, token)
        assert who is not None
        ctx = authz.request_context(req("s3", ""), who)
        assert ctx["aws:AssumedRoot"] == "true"
        s3 = dict(auth(key, "s3"), **{"X-Amz-Security-Token": token})
        member_s3 = dict(auth(member_admin[0], "s3"), **{"X-Amz-Security-Token": member_admin[1]})
        assert call("PUT", "/root-test-locked", member_s3)[0] == 200
        lock = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                                                        "Resource": ["arn:aws:s3:::root-test-locked", "arn:aws:s3:::root-test-locked/*"]}]}
        assert call("PUT", "/root-test-locked", member_s3, json.dumps(lock), "policy")[0] < 300
        assert call("GET", "/root-test-locked", member_s3, query="policy")[0] == 403, "locked out"
        status, body = call("GET", "/root-test-locked", s3, query="location")
        assert status == 403, "the task policy allows only the bucket policy's actions"
        assert "session policy" in body
        assert call("DELETE", "/root-test-locked", s3, query="policy")[0] == 204, "the root session unlocks it"
        assert call("GET", "/root-test-locked", member_s3, query="location")[0] == 200
        assert query_call("sts", "GetCallerIdentity", {}, key, "wrong")[0] == 403, "its token is needed"


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
        assert (state["password"], state["accessKeys"], state["signingCertificates"], state["mfaDevices"]) == \
                         (None, [], [], [])
        audit = self.session("IAMAuditRootUserCredentials")
        assert code(self.iam("GetLoginProfile", audit)) == (404, "NoSuchEntity")
        for action, member in (("ListAccessKeys", "AccessKeyMetadata"), ("ListSigningCertificates", "Certificates"),
                               ("ListMFADevices", "MFADevices")):
            status, body = self.iam(action, audit)
            assert status == 200, body
            assert "<member>" not in body, action
            assert member in body

    def test_a_delete_session_deletes_each_root_credential(self):
        seeded = root_user(self.member, password=True, mfaDevice=True, signingCertificate=True, accessKey=True)
        root_key = seeded["AccessKeyId"]
        assert code(query_call("sts", "GetCallerIdentity", {}, root_key)) == (200, "")
        s = self.session("IAMDeleteRootUserCredentials")
        # The password (aws iam get-login-profile / delete-login-profile, no --user-name).
        status, body = self.iam("GetLoginProfile", s)
        assert status == 200, body
        assert "<CreateDate>" in body
        assert "<UserName>" not in body
        assert code(self.iam("DeleteLoginProfile", s)) == (200, "")
        assert code(self.iam("GetLoginProfile", s)) == (404, "NoSuchEntity")
        assert code(self.iam("DeleteLoginProfile", s)) == (404, "NoSuchEntity")
        # The access key: listed, deleted, then refused as a key AWS does not know.
        status, body = self.iam("ListAccessKeys", s)
        assert f"<AccessKeyId>{root_key}</AccessKeyId>" in body
        assert body.count("<AccessKeyId>") == 1, "the session's own key is no access key of the root user"
        assert code(self.iam("DeleteAccessKey", s, AccessKeyId=root_key)) == (200, "")
        assert code(query_call("sts", "GetCallerIdentity", {}, root_key)) == (403, "InvalidClientTokenId")
        assert "<AccessKeyId>" not in self.iam("ListAccessKeys", s)[1]
        assert code(self.iam("DeleteAccessKey", s, AccessKeyId=root_key)) == (404, "NoSuchEntity")
        # The signing certificate.
        cert = seeded["signingCertificates"][0]["CertificateId"]
        assert f"<CertificateId>{cert}</CertificateId>" in self.iam("ListSigningCertificates", s)[1]
        assert code(self.iam("DeleteSigningCertificate", s, CertificateId=cert)) == (200, "")
        assert "<CertificateId>" not in self.iam("ListSigningCertificates", s)[1]
        assert code(self.iam("DeleteSigningCertificate", s, CertificateId=cert)) == (404, "NoSuchEntity")
        # The MFA device: deactivated, then (a virtual one) deleted.
        serial = f"arn:aws:iam::{self.member}:mfa/root-account-mfa-device"
        assert f"<SerialNumber>{serial}</SerialNumber>" in self.iam("ListMFADevices", s)[1]
        assert code(self.iam("DeleteVirtualMFADevice", s, SerialNumber=serial)) == (409, "DeleteConflict"), \
                         "an enabled device is deactivated first"
        assert code(self.iam("DeactivateMFADevice", s, SerialNumber=serial)) == (200, "")
        assert "<SerialNumber>" not in self.iam("ListMFADevices", s)[1]
        assert code(self.iam("DeactivateMFADevice", s, SerialNumber=serial)) == (404, "NoSuchEntity")
        admin = assume(f"arn:aws:iam::{self.member}:role/OrganizationAccountAccessRole")
        assert serial in self.iam("ListVirtualMFADevices", admin)[1], "deactivated, it stays in the account"
        assert code(self.iam("DeleteVirtualMFADevice", s, SerialNumber=serial)) == (200, "")
        assert serial not in self.iam("ListVirtualMFADevices", admin)[1]
        state = root_state(self.member)
        assert (state["password"], state["accessKeys"], state["signingCertificates"], state["mfaDevices"]) == \
                         (None, [], [], [])

    def test_the_task_is_the_root_users_only(self):
        from moto.iam.models import iam_backends

        root_user(self.member, password=True)
        iam = iam_backends[self.member]["aws"]
        iam.create_user(region_name=REGION, user_name="console-user", path="/", tags=[])
        iam.create_login_profile("console-user", "Passw0rd!Passw0rd")
        s = self.session("IAMDeleteRootUserCredentials")
        status, body = self.iam("DeleteLoginProfile", s, UserName="console-user")
        assert status == 403
        assert f"iam:DeleteLoginProfile on resource: arn:aws:iam::{self.member}:user/console-user " \
                      "with an explicit deny in a session policy" in body
        assert code(self.iam("ListRoles", s)) == (403, "AccessDenied"), "nothing but the task's actions"
        assert iam.get_login_profile("console-user") is not None

    def test_an_audit_session_reads_and_deletes_nothing(self):
        seeded = root_user(self.member, password=True, accessKey=True, signingCertificate=True, mfaDevice=True)
        audit = self.session("IAMAuditRootUserCredentials")
        assert code(self.iam("GetLoginProfile", audit)) == (200, "")
        assert seeded["AccessKeyId"] in self.iam("ListAccessKeys", audit)[1]
        assert "<ServiceName>N/A</ServiceName>" in self.iam("GetAccessKeyLastUsed", audit, AccessKeyId=seeded["AccessKeyId"])[1]
        assert f"<Arn>arn:aws:iam::{self.member}:root</Arn>" in self.iam("GetUser", audit)[1]
        for action, params in (("DeleteLoginProfile", {}), ("DeleteAccessKey", {"AccessKeyId": seeded["AccessKeyId"]}),
                               ("DeleteSigningCertificate", {"CertificateId": seeded["signingCertificates"][0]["CertificateId"]}),
                               ("DeactivateMFADevice", {"SerialNumber": seeded["mfaDevices"][0]["SerialNumber"]})):
            status, body = self.iam(action, audit, **params)
            assert status == 403, action
            assert f"iam:{action} on resource: arn:aws:iam::{self.member}:root with an explicit deny in a session policy" in body
        state = root_state(self.member)
        assert (bool(state["password"]), len(state["accessKeys"]), len(state["signingCertificates"]),
                          len(state["mfaDevices"])) == (True, 1, 1, 1)

    def test_a_password_recovery_session_creates_the_login_profile_without_a_password(self):
        s = self.session("IAMCreateRootUserPassword")
        assert code(self.iam("CreateLoginProfile", s, Password="Passw0rd!Passw0rd")) == (400, "ValidationError"), \
                         "an AssumeRoot session omits Password"
        assert code(self.iam("CreateLoginProfile", s)) == (200, "")
        assert code(self.iam("GetLoginProfile", s)) == (200, "")
        assert code(self.iam("CreateLoginProfile", s)) == (409, "EntityAlreadyExists")
        assert code(self.iam("DeleteLoginProfile", s)) == (403, "AccessDenied"), "not this task's"
        assert root_state(self.member)["password"] is not None

    def test_the_root_users_own_keys_need_a_session_to_omit_the_user_name_for_its_password(self):
        key = root_user(self.member, password=True, accessKey=True)["AccessKeyId"]
        assert code(query_call("iam", "GetLoginProfile", {}, key)) == (400, "ValidationError")
        assert code(query_call("iam", "DeleteLoginProfile", {}, key)) == (400, "ValidationError")
        assert key in query_call("iam", "ListAccessKeys", {}, key)[1], "its access keys it manages itself"
        assert root_state(self.member)["password"] is not None

    def test_a_role_omitting_the_user_name_does_not_touch_the_root_user(self):
        key = root_user(self.member, password=True, accessKey=True)["AccessKeyId"]
        admin = assume(f"arn:aws:iam::{self.member}:role/OrganizationAccountAccessRole")
        assert self.iam("DeleteLoginProfile", admin)[0] != 200
        assert key not in self.iam("ListAccessKeys", admin)[1]
        assert self.iam("DeleteAccessKey", admin, AccessKeyId=key)[0] != 200
        state = root_state(self.member)
        assert state["password"] is not None
        assert [k["AccessKeyId"] for k in state["accessKeys"]] == [key]

    def test_the_request_is_on_the_root_user_only_for_the_root_user(self):
        from assure_local.iam import Principal

        root = Principal(kind="root", account=self.member, arn=f"arn:aws:iam::{self.member}:root")
        user = Principal(kind="user", account=self.member, arn=f"arn:aws:iam::{self.member}:user/ops/alice")
        role = Principal(kind="role", account=self.member, arn=f"arn:aws:iam::{self.member}:role/admin")

        def on(principal, operation, **params):
            return [r.arn for _, r in authz_resources.resources_for(req("iam", operation, **params), self.member, principal)]

        for op in ("GetLoginProfile", "DeleteLoginProfile", "ListAccessKeys", "DeactivateMFADevice", "GetUser"):
            assert on(root, op) == [f"arn:aws:iam::{self.member}:root"], op
            assert on(user, op) == [user.arn], f"{op}: the user making the request"
            assert on(role, op) == ["*"], op
            assert on(root, op, UserName="bob") == [f"arn:aws:iam::{self.member}:user/bob"], op

    def test_the_account_summary_shows_the_root_users_credentials(self):
        admin = assume(f"arn:aws:iam::{self.member}:role/OrganizationAccountAccessRole")
        keys = ("AccountAccessKeysPresent", "AccountMFAEnabled", "AccountSigningCertificatesPresent", "AccountPasswordPresent")

        def summary():
            status, body = self.iam("GetAccountSummary", admin)
            assert status == 200, body
            return tuple(int(tag("value", body.split(f"<key>{k}</key>", 1)[1])) for k in keys)

        assert summary() == (0, 0, 0, 0)
        root_user(self.member, password=True, accessKey=True, signingCertificate=True, mfaDevice="GAHT12345678")
        assert summary() == (1, 1, 1, 1)
        assert "GAHT12345678" not in self.iam("ListVirtualMFADevices", admin)[1], "a hardware device"
        audit = self.session("IAMAuditRootUserCredentials")
        assert code(self.iam("GetAccountSummary", audit)) == (200, "")
        root_user(self.member, password=False)
        assert summary()[3] == 0

    def test_the_seed_api_checks_what_it_is_given(self):
        assert call("GET", "/assure-api/root-credentials", query="account=12")[0] == 400
        for doc in ({"account": self.member, "passwd": True}, {"account": self.member, "password": "yes"},
                    {"account": self.member, "mfaDevice": "arn:aws:iam::111111111111:mfa/root-account-mfa-device"}):
            assert call("POST", "/assure-api/root-credentials", {}, json.dumps(doc))[0] == 400, doc
        legacy = root_user(self.member)
        assert set(legacy) == {"AccessKeyId", "SecretAccessKey"}, "a bare POST answers as it always did"
