"""The delivery thread (scheduler.py): what a service does later runs there, and flush runs it now.

    VENV/bin/python -m pytest tests/test_scheduler.py
"""

import threading
import time

from assure_local import scheduler


def test_flush_returns_only_once_the_delivery_the_thread_is_running_has_finished():
    # A delivery the thread took just before a flush (an alarm's action, say, half published) is
    # part of what was due: flush must not return while it runs.
    started, finished = threading.Event(), threading.Event()

    def slow_delivery() -> None:
        started.set()
        time.sleep(0.5)
        finished.set()

    scheduler.later(0, slow_delivery)
    assert started.wait(5), "the delivery thread took the delivery"
    scheduler.flush()
    assert finished.is_set(), "flush returned while the delivery thread was still running one"


def test_flush_runs_what_is_queued_in_order_and_what_it_queues():
    ran: list[str] = []

    def first() -> None:
        ran.append("first")
        scheduler.later(60, lambda: ran.append("queued by first"))

    scheduler.later(60, first)
    scheduler.later(120, lambda: ran.append("second"))
    assert scheduler.flush() == 3
    assert ran == ["first", "second", "queued by first"]
    assert scheduler.queued() == 0
