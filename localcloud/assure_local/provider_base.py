"""What CloudFormation's resource providers share: the context a provider acts in (the caller's clients), and the errors and retries of the calls they make."""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Context:
    stack: Any  # stack_model.Stack
    logical_id: str
    client: Callable[[str], Any]

    @property
    def region(self) -> str:
        return self.stack.region

    @property
    def account(self) -> str:
        return self.stack.account

    def name(self, limit: int, lower: bool = False) -> str:
        suffix = "".join(random.choices(string.ascii_uppercase + string.digits, k=12))
        base = f"{self.stack.name}-{self.logical_id}"[: limit - 13]
        name = f"{base}-{suffix}"
        return name.lower() if lower else name


def as_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def retried(call: Callable[[], Any], transient: Callable[[Exception], bool]) -> Any:
    """`call`, again while it fails with what `transient` names (IAM's eventual consistency, which
    AWS's handlers wait out): for the local cloud's propagation delay and a few seconds more, after
    which the failure stands (a role that truly lacks the permission)."""
    from assure_local import rules

    deadline = time.monotonic() + rules.PROPAGATION["seconds"] + 5
    while True:
        try:
            return call()
        except Exception as e:
            if not transient(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def error_code(e: Exception) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Code", "")


def error_message(e: Exception) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Message", "")


def tags_list(tags: list | None, key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: t["Key"], value: t["Value"]} for t in tags or []]


class Provider:
    replace_on: tuple[str, ...] = ()

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        raise NotImplementedError

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        """An update in place (only called when no replacing property changed)."""
        self.delete(ctx, old)
        return self.create(ctx, props)

    def update(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        if any(old.properties.get(k) != props.get(k) for k in self.replace_on):
            # Replacement: the new one first, then the old one. A leftover is a cleanup failure on
            # AWS, not the update's, so a failed delete does not fail the update.
            made = self.create(ctx, props)
            try:
                self.delete(ctx, old)
            except Exception:  # noqa: BLE001, S110 - the old resource is gone already: nothing to clean up
                pass
            return made
        return self.change(ctx, old, props)

    def delete(self, ctx: Context, resource: Any) -> None:
        raise NotImplementedError


def gone(e: Exception, *codes: str) -> bool:
    return error_code(e) in codes


def iam_not_yet(e: Exception) -> bool:
    """Lambda's answers while IAM has not propagated a role made a moment ago, which CloudFormation's
    Lambda handlers wait out."""
    message = error_message(e)
    return error_code(e) == "InvalidParameterValueException" and (
        "cannot be assumed by Lambda" in message or "execution role does not have permissions" in message)
