"""The root users of the local cloud's accounts: who they are and their MFA devices (root.py serves them)."""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field
from typing import Any

ROOT_LOCK = threading.RLock()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class RootUser:
    account: str
    created: datetime.datetime = field(default_factory=now)
    password: datetime.datetime | None = None
    certificates: dict[str, dict] = field(default_factory=dict)
    mfa: dict[str, datetime.datetime] = field(default_factory=dict)
    # The virtual devices it has had enabled: deactivated, one is still the root user's to delete
    # (DeleteVirtualMFADevice is in the IAMDeleteRootUserCredentials task).
    virtual_devices: set[str] = field(default_factory=set)


ROOT_USERS: dict[str, RootUser] = {}


def user(account: str) -> RootUser:
    with ROOT_LOCK:
        found = ROOT_USERS.get(account)
        if found is None:
            found = ROOT_USERS[account] = RootUser(account)
        return found


def backend(account: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


def root_virtual_device(account: str, serial: str) -> bool:
    """Whether `serial` is a virtual device of the root user of `account` that is still in the account
    (enabled, or deactivated and not yet deleted)."""
    return serial in user(account).virtual_devices and serial in backend(account).virtual_mfa_devices
