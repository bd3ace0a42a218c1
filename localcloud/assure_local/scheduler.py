"""The delivery thread: what services do later (after the local cloud's delay: core.TRANSITION), run in order on one thread holding core.LOCK, and the S3 writes they make."""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from assure_local import core

_CV = threading.Condition()


_QUEUE: list[tuple[float, int, Callable[[], Any]]] = []


_SEQ = itertools.count()


_THREAD: threading.Thread | None = None


# Deliveries taken from the queue (by the delivery thread or a flush) and not finished.
_RUNNING = {"count": 0}


# How long one flush waits, in all, for deliveries other threads are running.
RUNNING_WAIT_SECONDS = 30.0


# A delivery may queue another (a log file, then its digest): flush runs that many rounds at most.
FLUSH_ROUNDS = 8


def delay() -> float:
    """How long a delivery waits: the local cloud's transition (core.TRANSITION), AWS's "within
    about 5 minutes" (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/how-cloudtrail-works.html)."""

    return float(core.TRANSITION["seconds"])


def later(seconds: float, fn: Callable[[], Any]) -> None:
    """Runs `fn` once, `seconds` from now, on the delivery thread (started on first use), holding
    core.LOCK."""
    global _THREAD
    with _CV:
        heapq.heappush(_QUEUE, (time.monotonic() + max(0.0, float(seconds)), next(_SEQ), fn))
        if _THREAD is None:
            _THREAD = threading.Thread(target=_loop, name="assure-deliveries", daemon=True)
            _THREAD.start()
        _CV.notify()


def _loop() -> None:
    while True:
        with _CV:
            while not _QUEUE or _QUEUE[0][0] > time.monotonic():
                _CV.wait(None if not _QUEUE else max(0.0, _QUEUE[0][0] - time.monotonic()))
            fn = heapq.heappop(_QUEUE)[2]
            _RUNNING["count"] += 1
        try:
            _run(fn)
        finally:
            _finished()


def _finished() -> None:
    """A delivery taken from the queue has run: whoever waits for running ones looks again."""
    with _CV:
        _RUNNING["count"] -= 1
        _CV.notify_all()


def _run(fn: Callable[[], Any]) -> None:
    from assure_local.core import LOCK

    try:
        with LOCK:
            fn()
    except Exception:  # noqa: BLE001 - a failed delivery must not stop the thread, nor the request that flushed it
        print(f"delivery {getattr(fn, '__name__', fn)!r} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)


def flush() -> int:
    """Runs every queued delivery now, in the order they were due, and those they queue; how many ran.
    A delivery another thread is running (the delivery thread, or another flush) is waited for
    first: once flush returns, nothing that was due is still on its way (an alarm's action half
    published, say). Not when the caller holds core.LOCK, which that delivery needs to finish: then
    it is said on stderr, as is a wait that outlasts RUNNING_WAIT_SECONDS."""
    ran = 0
    owns_lock = getattr(core.LOCK, "_is_owned", lambda: False)()
    deadline = time.monotonic() + RUNNING_WAIT_SECONDS
    for _ in range(FLUSH_ROUNDS):
        with _CV:
            while _RUNNING["count"] and not owns_lock and time.monotonic() < deadline:
                _CV.wait(0.05)
            if _RUNNING["count"]:
                why = "the caller holds the lock it needs" if owns_lock else f"still running after {RUNNING_WAIT_SECONDS} s"
                print(f"flush: not waiting for {_RUNNING['count']} running delivery(ies): {why}", file=sys.stderr, flush=True)
            jobs = [heapq.heappop(_QUEUE)[2] for _ in range(len(_QUEUE))]
            _RUNNING["count"] += len(jobs)
        if not jobs:
            break
        for fn in jobs:
            try:
                _run(fn)
            finally:
                _finished()
            ran += 1
    return ran


def queued() -> int:
    with _CV:
        return len(_QUEUE)


def put_object(bucket: str, key: str, body: bytes, kms_key_arn: str | None, content_type: str,
               metadata: dict | None = None) -> Any:
    """Stores `body` at `key` of `bucket` as a delivering service does: in the bucket owner's account
    (the services write with the bucket-owner-full-control ACL, so the owner owns the object:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html), SSE-KMS with
    `kms_key_arn` when given (HeadObject then reports x-amz-server-side-encryption aws:kms and the
    key's ARN in x-amz-server-side-encryption-aws-kms-key-id:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html), else the bucket's
    default encryption. The caller has checked that the service may write it. moto's FakeKey."""
    from moto.s3.models import get_canned_acl, s3_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        raise KeyError(f"no bucket {bucket}")
    partition, account = owner
    backend = s3_backends[account][partition]
    encryption = "aws:kms" if kms_key_arn else None
    obj = backend.put_object(bucket, key, body, encryption=encryption, kms_key_id=kms_key_arn or None)
    obj.set_metadata({"Content-Type": content_type, **(metadata or {})})
    obj.set_acl(get_canned_acl("bucket-owner-full-control"))
    return obj
