"""The root user's credentials of each account, as IAM shows them: its password (login profile),
access keys, signing certificates and MFA devices, so that centralized root access can be exercised
end to end (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user.html#id_root-user-access-management;
"Perform a privileged task on an AWS Organizations member account",
https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user-privileged-task.html).

State, per account (`ROOT_USERS`, made on first use, empty):
- password: the login profile's CreateDate, or None. Accounts made by Organizations CreateAccount have
  none, as accounts created with centralized root credentials management have no root credentials
  (AWS's older account-access article says Organizations sets an initial password nobody can
  retrieve; an account created before the feature may still have it). The seed (seed.py) gives its
  external accounts one, as a brownfield account that signed up on its own has.
- access keys: principals.ROOT_KEYS (key -> account) and moto's IAM backend `access_keys`, as
  /assure-api/root-credentials makes them; a key is the root user's while both hold it.
- signing certificates: id -> {CertificateId, CertificateBody, Status, UploadDate}.
- MFA devices: serial -> EnableDate. A serial that is an ARN (`arn:aws:iam::ACCOUNT:mfa/NAME`,
  by default `mfa/root-account-mfa-device`) is a virtual device, also listed by ListVirtualMFADevices
  (with the root user's ARN as its user) until DeleteVirtualMFADevice; any other serial is hardware.

IAM operations on the root user (moto's IamResponse methods, patched by `patch`). Only a request
without UserName, made by the root user (its access keys, principals.ROOT_KEYS) or a centralized root
session (sts:AssumeRoot, principals.ROOT_SESSIONS), acts on the root user; every other request (UserName
given, or an IAM user's or role's credentials) is moto's, unchanged. Authorization (resources.resources_for)
puts such a request on the root user, arn:aws:iam::ACCOUNT:root, which the root task policies' deny
statements spare (NotResource arn:aws:iam::*:root).
- GetLoginProfile, DeleteLoginProfile, CreateLoginProfile, DeactivateMFADevice: "When you make this
  request with root user credentials, you must use an AssumeRoot session to omit the user name"
  (API reference, UserName): the root user's own access keys get ValidationError (the error is ours:
  AWS documents the rule, not its error). No password: NoSuchEntity (404). CreateLoginProfile in a root
  session (task IAMCreateRootUserPassword) takes no Password ("This parameter must be omitted when you
  make the request with an AssumeRoot session"; given: ValidationError) and makes the login profile the
  root user recovers ("Allow password recovery"); one already there: EntityAlreadyExists (409).
- ListAccessKeys, DeleteAccessKey: the root user's keys. Deleting one removes it from principals.ROOT_KEYS
  and the backend, so it stops working (InvalidClientTokenId). A key that is not the root user's:
  NoSuchEntity.
- ListSigningCertificates, DeleteSigningCertificate; ListMFADevices, DeactivateMFADevice (the device is
  no longer the root user's; a virtual one stays in the account, unassigned); DeleteVirtualMFADevice of
  the root user's virtual device (DeleteConflict while it is still enabled: "You must deactivate a
  user's virtual MFA device before you can delete it"). Unknown serial or certificate: NoSuchEntity.
- GetUser: the root user (UserId the account, Arn arn:aws:iam::ACCOUNT:root).
- GetAccessKeyLastUsed of a root access key of the caller's account (never used: Region and
  ServiceName "N/A").
- GetAccountSummary, for any caller IAM allows: AccountAccessKeysPresent, AccountMFAEnabled,
  AccountSigningCertificatesPresent and AccountPasswordPresent (a key of SummaryKeyType in the API
  model, botocore 1.44; older copies of the API reference do not list it) are 1 when the root user has
  one, else 0.
The root user's entries carry no UserName (an assumption: the API references show no answer for the
root user, and it has no user name).

The local API (extension.Extension.root_credentials, /assure-api/root-credentials; `credentials_api`):
- POST {"account": ID}: a new root access key, {"AccessKeyId", "SecretAccessKey"} (as before).
- POST {"account": ID, "password": true|false, "mfaDevice": true|"SERIAL", "signingCertificate":
  true|"PEM", "accessKey": true|false}: seeds the root user's credentials (password true: a login
  profile if it has none; false: none; mfaDevice true: the virtual device
  arn:aws:iam::ID:mfa/root-account-mfa-device; signingCertificate true: a placeholder certificate;
  accessKey true: a new access key, whose secret the answer carries as AccessKeyId and
  SecretAccessKey). Answers the state, as GET does.
- GET ?account=ID: the state: {"account", "arn", "password": {"CreateDate"} or null, "accessKeys":
  [{"AccessKeyId", "Status", "CreateDate"}], "signingCertificates": [{"CertificateId", "Status",
  "UploadDate"}], "mfaDevices": [{"SerialNumber", "EnableDate", "Virtual"}]}.
"""

import datetime
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from assure_local import aws_request, principals
from assure_local.core import replace
from assure_local.root_users import ROOT_LOCK, backend, now, root_virtual_device, user

# The default serial number of the root user's virtual MFA device.
ROOT_MFA_NAME = "root-account-mfa-device"


def access_keys(account: str) -> list:
    """The root user's access keys (moto AccessKey objects, user_name None)."""
    keys = backend(account).access_keys
    return [keys[k] for k, a in list(principals.ROOT_KEYS.items()) if a == account and k in keys]


def virtual(serial: str) -> bool:
    return serial.startswith("arn:") and ":mfa/" in serial


def create_access_key(account: str) -> Any:
    from moto.iam.models import AccessKey

    from assure_local.core import LOCK as EXTENSION_LOCK

    with EXTENSION_LOCK:
        key = AccessKey(user_name=None, prefix="AKIA", account_id=account)  # type: ignore[abstract]  # moto's own AccessKey, made as moto makes it
        backend(account).access_keys[key.physical_resource_id] = key
        principals.ROOT_KEYS[key.access_key_id] = account
    return key


def remove_access_key(account: str, key_id: str) -> bool:
    """Deletes root access key `key_id` of `account`; False when it is not one."""
    from assure_local.core import LOCK as EXTENSION_LOCK

    with EXTENSION_LOCK:
        if principals.ROOT_KEYS.get(key_id) != account:
            return False
        principals.ROOT_KEYS.pop(key_id, None)
        return backend(account).access_keys.pop(key_id, None) is not None


def add_mfa(account: str, serial: str) -> None:
    from moto.iam.models import VirtualMfaDevice

    root = user(account)
    with ROOT_LOCK:
        if serial in root.mfa:
            return
        enabled = now()
        root.mfa[serial] = enabled
        if virtual(serial):
            root.virtual_devices.add(serial)
            devices = backend(account).virtual_mfa_devices
            device = devices.get(serial)
            if device is None:
                device = VirtualMfaDevice(account, "us-east-1", "/" + serial.split(":mfa/", 1)[1])
                device.serial_number = serial
                devices[serial] = device
            device.enable_date = enabled
            # ListVirtualMFADevices' User: the root user, as GetUser answers it.
            device.user = {"UserId": account, "Arn": principals.root_arn(account), "CreateDate": root.created}
            device.user_attribute = None


def deactivate_mfa(account: str, serial: str) -> bool:
    root = user(account)
    with ROOT_LOCK:
        if root.mfa.pop(serial, None) is None:
            return False
        device = backend(account).virtual_mfa_devices.get(serial)
        if device is not None:
            device.enable_date = None
            device.user = None
            device.user_attribute = None
        return True


def add_certificate(account: str, body: str | None = None) -> dict:
    root = user(account)
    alphabet = string.ascii_uppercase + string.digits
    cert_id = "".join(secrets.choice(alphabet) for _ in range(32))
    body = body or ("-----BEGIN CERTIFICATE-----\n" + "".join(secrets.choice(string.ascii_letters) for _ in range(64))
                    + "\n-----END CERTIFICATE-----")
    cert = {"CertificateId": cert_id, "CertificateBody": body, "Status": "Active", "UploadDate": now()}
    with ROOT_LOCK:
        root.certificates[cert_id] = cert
    return cert


def iso(t: datetime.datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def state(account: str) -> dict:
    root = user(account)
    with ROOT_LOCK:
        return {
            "account": account,
            "arn": principals.root_arn(account),
            "password": {"CreateDate": iso(root.password)} if root.password else None,
            "accessKeys": [{"AccessKeyId": k.access_key_id, "Status": k.status, "CreateDate": iso(k.create_date)}
                           for k in access_keys(account)],
            "signingCertificates": [{"CertificateId": c["CertificateId"], "Status": c["Status"],
                                     "UploadDate": iso(c["UploadDate"])} for c in root.certificates.values()],
            "mfaDevices": [{"SerialNumber": s, "EnableDate": iso(t), "Virtual": virtual(s)}
                           for s, t in root.mfa.items()],
        }


def credentials_api(method: str, query: dict, doc: dict) -> tuple[int, dict]:
    """/assure-api/root-credentials (see the module's docstring): (status, body)."""
    account = str((query.get("account") or [""])[0] if method == "GET" else doc.get("account", ""))
    if not re.fullmatch(r"\d{12}", account):
        return 400, {"message": "account: 12 digits"}
    if method == "GET":
        return 200, state(account)
    fields = {"password", "mfaDevice", "signingCertificate", "accessKey"}
    unknown = set(doc) - fields - {"account"}
    if unknown:
        return 400, {"message": f"unknown fields: {', '.join(sorted(unknown))}"}
    if not set(doc) & fields:
        # As before: a new root access key.
        key = create_access_key(account)
        return 200, {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}
    password, mfa, cert = doc.get("password"), doc.get("mfaDevice"), doc.get("signingCertificate")
    make_key = doc.get("accessKey")
    if password is not None and not isinstance(password, bool):
        return 400, {"message": "password: true or false"}
    if make_key is not None and not isinstance(make_key, bool):
        return 400, {"message": "accessKey: true or false"}
    if mfa is not None and not (mfa is True or (isinstance(mfa, str) and re.fullmatch(r"[\w+=/:,.@-]{9,256}", mfa))):
        return 400, {"message": "mfaDevice: true or a serial number (9 to 256 characters: a virtual device's "
                                "ARN, or a hardware device's serial)"}
    if mfa is not None and isinstance(mfa, str) and virtual(mfa) and aws_request.arn_account(mfa) != account:
        return 400, {"message": f"mfaDevice: a virtual device's ARN in account {account}"}
    if cert is not None and not (cert is True or isinstance(cert, str) and cert.strip()):
        return 400, {"message": "signingCertificate: true or a PEM body"}
    root = user(account)
    with ROOT_LOCK:
        if password is True and root.password is None:
            root.password = now()
        elif password is False:
            root.password = None
    if mfa is not None:
        add_mfa(account, f"arn:aws:iam::{account}:mfa/{ROOT_MFA_NAME}" if mfa is True else mfa)
    if cert is not None:
        add_certificate(account, None if cert is True else cert)
    key = create_access_key(account) if make_key else None
    out = state(account)
    if key is not None:
        out.update({"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key})
    return 200, out


# ---------------------------------------------------------------------------------------------------
# IAM


@dataclass
class Caller:
    """The root user making a request: its account, and whether through a centralized root session."""

    account: str
    session: bool


def root_caller(response: Any) -> Caller | None:
    key = response.get_access_key()
    account = principals.ROOT_KEYS.get(key)
    if account is not None:
        return Caller(account, False)
    session = principals.ROOT_SESSIONS.get(key)
    if session is not None:
        return Caller(session.account, True)
    return None


SESSION_ONLY = frozenset({"GetLoginProfile", "DeleteLoginProfile", "CreateLoginProfile", "DeactivateMFADevice"})


def errors() -> Any:
    from moto.iam import exceptions

    return exceptions


def session_needed(op: str) -> Exception:
    return errors().ValidationError(
        f"{op}: to omit UserName with root user credentials, you must use an AssumeRoot session.")


def get_login_profile(self: Any, caller: Caller) -> Any:
    from moto.core.responses import ActionResult

    root = user(caller.account)
    if root.password is None:
        raise errors().NotFoundException("Login Profile for the root user cannot be found.")
    return ActionResult({"LoginProfile": {"CreateDate": root.password}})


def delete_login_profile(self: Any, caller: Caller) -> Any:
    from moto.core.responses import EmptyResult

    root = user(caller.account)
    with ROOT_LOCK:
        if root.password is None:
            raise errors().NotFoundException("Login Profile for the root user cannot be found.")
        root.password = None
    return EmptyResult()


def create_login_profile(self: Any, caller: Caller) -> Any:
    from moto.core.responses import ActionResult

    if self._get_param("Password") is not None:
        raise errors().ValidationError("Password must be omitted when you make the request with an AssumeRoot session.")
    root = user(caller.account)
    with ROOT_LOCK:
        if root.password is not None:
            raise errors().EntityAlreadyExists("Login Profile for the root user already exists.")
        root.password = now()
        created = root.password
    return ActionResult({"LoginProfile": {"CreateDate": created}})


def list_access_keys(self: Any, caller: Caller) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"AccessKeyMetadata": access_keys(caller.account), "IsTruncated": False})


def delete_access_key(self: Any, caller: Caller) -> Any:
    from moto.core.responses import EmptyResult

    key_id = str(self._get_param("AccessKeyId") or "")
    if not remove_access_key(caller.account, key_id):
        raise errors().NotFoundException(f"The Access Key with id {key_id} cannot be found.")
    return EmptyResult()


def list_signing_certificates(self: Any, caller: Caller) -> Any:
    from moto.core.responses import ActionResult

    root = user(caller.account)
    with ROOT_LOCK:
        certs = [dict(c) for c in root.certificates.values()]
    return ActionResult({"Certificates": certs, "IsTruncated": False})


def delete_signing_certificate(self: Any, caller: Caller) -> Any:
    from moto.core.responses import EmptyResult

    cert_id = str(self._get_param("CertificateId") or "")
    root = user(caller.account)
    with ROOT_LOCK:
        if root.certificates.pop(cert_id, None) is None:
            raise errors().NotFoundException(f"The Certificate with id {cert_id} cannot be found.")
    return EmptyResult()


def list_mfa_devices(self: Any, caller: Caller) -> Any:
    from moto.core.responses import ActionResult

    root = user(caller.account)
    with ROOT_LOCK:
        devices = [{"SerialNumber": s, "EnableDate": t} for s, t in root.mfa.items()]
    return ActionResult({"MFADevices": devices, "IsTruncated": False})


def deactivate_mfa_device(self: Any, caller: Caller) -> Any:
    from moto.core.responses import EmptyResult

    serial = str(self._get_param("SerialNumber") or "")
    if not deactivate_mfa(caller.account, serial):
        raise errors().NotFoundException(f"MFA Device with serial number {serial} does not exist.")
    return EmptyResult()


def get_user(self: Any, caller: Caller) -> Any:
    from moto.core.responses import ActionResult

    root = user(caller.account)
    return ActionResult({"User": {"UserId": caller.account, "Arn": principals.root_arn(caller.account),
                                  "CreateDate": root.created}})


HANDLERS: dict[str, Callable] = {
    "get_login_profile": get_login_profile,
    "delete_login_profile": delete_login_profile,
    "create_login_profile": create_login_profile,
    "list_access_keys": list_access_keys,
    "delete_access_key": delete_access_key,
    "list_signing_certificates": list_signing_certificates,
    "delete_signing_certificate": delete_signing_certificate,
    "list_mfa_devices": list_mfa_devices,
    "deactivate_mfa_device": deactivate_mfa_device,
    "get_user": get_user,
}


def on_root_user(name: str, handler: Callable, original: Callable) -> Callable:
    """IamResponse method `name`: `handler` when the root user omits UserName, else moto's."""
    op = "".join(w.capitalize() for w in name.split("_")).replace("Mfa", "MFA")

    def method(self):
        caller = root_caller(self)
        if caller is None or self._get_param("UserName"):
            return original(self)
        if op in SESSION_ONLY and not caller.session:
            raise session_needed(op)
        return handler(self, caller)

    method.__name__ = name
    return method


def patch() -> None:
    """IAM's operations on the root user, over moto's (see the module's docstring)."""
    from moto.core.responses import ActionResult, EmptyResult

    # The root user is a resource type of its own in IAM policies (root-user,
    # arn:aws:iam::ACCOUNT:root: sts:AssumeRoot, and the root task policies' NotResource;
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html),
    # which moto's policy validator does not list among the IAM resource paths it accepts.
    from moto.iam import policy_validation, responses

    paths = policy_validation.VALID_RESOURCE_PATH_STARTING_VALUES["iam"]["values"]
    if "root" not in paths:
        paths.append("root")

    cls = responses.IamResponse
    for name, handler in HANDLERS.items():
        setattr(cls, name, on_root_user(name, handler, getattr(cls, name)))

    moto_delete_virtual = cls.delete_virtual_mfa_device

    def delete_virtual_mfa_device(self):
        caller = root_caller(self)
        serial = str(self._get_param("SerialNumber") or "")
        if caller is None or not root_virtual_device(caller.account, serial):
            return moto_delete_virtual(self)
        root = user(caller.account)
        with ROOT_LOCK:
            if serial in root.mfa:
                raise errors().DeleteConflictException("MFA Device is still in use: deactivate it first.")
            backend(caller.account).virtual_mfa_devices.pop(serial, None)
            root.virtual_devices.discard(serial)
        return EmptyResult()

    moto_last_used = cls.get_access_key_last_used

    def get_access_key_last_used(self):
        key_id = str(self._get_param("AccessKeyId") or "")
        account = principals.ROOT_KEYS.get(key_id)
        if account is None or account != self.current_account or key_id not in backend(account).access_keys:
            return moto_last_used(self)
        used = backend(account).access_keys[key_id].last_used
        last = ({"LastUsedDate": used.timestamp, "Region": used.region, "ServiceName": used.service} if used
                else {"Region": "N/A", "ServiceName": "N/A"})
        return ActionResult({"AccessKeyLastUsed": last})

    moto_summary = cls.get_account_summary

    def get_account_summary(self):
        result = moto_summary(self)
        account = self.current_account
        root = user(account)
        with ROOT_LOCK:
            present = {
                "AccountAccessKeysPresent": bool(access_keys(account)),
                "AccountMFAEnabled": bool(root.mfa),
                "AccountSigningCertificatesPresent": bool(root.certificates),
                "AccountPasswordPresent": root.password is not None,
            }
        cast(dict, result.result)["SummaryMap"].update({k: int(v) for k, v in present.items()})
        return result

    replace(cls, "delete_virtual_mfa_device", delete_virtual_mfa_device)
    replace(cls, "get_access_key_last_used", get_access_key_last_used)
    replace(cls, "get_account_summary", get_account_summary)
