"""CloudFormation's stacks as the local cloud keeps them, by account and Region (stacks.py makes them;
authz names a stack's ARN from them)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: stacks.py imports this module
    from assure_local.stack_model import Stack


STACKS_LOCK = threading.RLock()


# (account, region) -> stack ID -> stack; deleted stacks stay, DELETE_COMPLETE, findable by ID.
STACKS: dict[tuple[str, str], dict[str, Stack]] = {}


def live(account: str, region: str, name_or_id: str) -> Stack | None:
    stacks = STACKS.get((account, region), {})
    if name_or_id in stacks:
        return stacks[name_or_id]
    return next((s for s in stacks.values() if s.name == name_or_id and s.status != "DELETE_COMPLETE"), None)


def found(region: str, account: str, name: str) -> str | None:
    """The ID of the live stack `name` (authz names a stack's ARN with it)."""
    with STACKS_LOCK:
        stack = live(account, region, name)
        return stack.stack_id if stack else None
