"""The local cloud: moto's server plus assure's extension, bound to 127.0.0.1.

moto (pinned in requirements.txt) emulates most of AWS. The extension (extension.py) is a WSGI layer in
front of it that answers the operations moto lacks (GuardDuty membership, organization configuration and
publishing destinations; IAM Access Analyzer) and passes every other request through unchanged.

Usage: python -m assure_local.server --port-file FILE [--host 127.0.0.1] [--port 0]

The server binds first, then writes the port it got to FILE, so a caller asking for port 0 never races
another process for a free port.
"""

import argparse
import gc
import os
import signal
import sys
import threading
import time


def serve_faster() -> None:
    """moto finds a request's service by listing its own package directory (about 150 `isdir` calls)
    on every request; the list never changes while the server runs, so it is read once. With
    werkzeug's access line per request (see `refusals_only`), a fifth of the samples in a profile of
    a bulk run, whose pace the server sets on two cores."""
    import functools

    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    # Likewise a response class's method names, which moto gathers with `inspect.getmembers` on
    # every request (a twentieth of the samples); the classes are complete once the extension has
    # patched them, before the server starts.
    responses.method_names_from_class = functools.lru_cache(maxsize=None)(responses.method_names_from_class)
    # And a state machine's definition, which moto's interpreter parsed again (with ANTLR, in Python)
    # at the start of every execution: a bulk run starts one per account. The parsed program holds no
    # state of a run (that lives in each execution's environment, as it already does for the
    # iterations of one Map), so executions of one definition share it. Invalid definitions raise,
    # and are not cached.
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from assure_local.core import replace

    replace(AmazonStateLanguageParser, "parse", staticmethod(functools.lru_cache(maxsize=64)(AmazonStateLanguageParser.parse)))
    # And every JSONPath a state reads its input with, for which jsonpath_ng built a new parser
    # (yacc tables included) each time. A parsed path is immutable.
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    json_path.parse = functools.lru_cache(maxsize=4096)(json_path.parse)
    result_path.parse = functools.lru_cache(maxsize=4096)(result_path.parse)
    remember_key_owners()


def remember_key_owners() -> None:
    """moto finds the account of a request's access key by searching every account's IAM (each
    partition of each), two to four times a request: a cost that grew with the organization, to a
    twentieth of the server's time at 20 accounts. Where a key was found is remembered, and checked
    on every use (a deleted key is searched for again, and not found); unknown keys are not
    remembered, since they may be made later. Keys never move between accounts. (The extension and
    moto look the function up in its module at each call, so replacing it there reaches them all.)"""
    from moto.iam import models

    search = models.get_account_id_from
    owners: dict[str, tuple[str, str]] = {}

    def get_account_id_from(access_key: str) -> str:
        found = owners.get(access_key)
        if found is not None and access_key in models.iam_backends[found[0]][found[1]].access_keys:
            return found[0]
        account = search(access_key)
        for partition in models.PARTITION_NAMES:
            if access_key in models.iam_backends[account][partition].access_keys:
                owners[access_key] = (account, partition)
                break
        return account

    models.get_account_id_from = get_account_id_from


def refusals_only(handler: type) -> type:
    """`handler` writing access lines only for refusals and errors (status 400 and above)."""

    class Handler(handler):
        def log_request(self, code: object = "-", size: object = "-") -> None:
            try:
                status = int(getattr(code, "value", code))  # type: ignore[call-overload]
            except (TypeError, ValueError):
                status = 0
            if status == 0 or status >= 400:
                super().log_request(code, size)

    return Handler


def collect_in_the_background(every: float = 10.0) -> None:
    """Python's cyclic garbage collector, run every `every` seconds by a thread of its own instead of
    after every few hundred allocations. moto's state and the models it loads are hundreds of
    thousands of objects, which the automatic collections walked again and again. Measured over
    three runs each of up, seed, deploy and two onboardings, the server's CPU time was:
    - 9.2 s with the automatic collections;
    - 7.2 s with this;
    - 7.7 s collecting only the young generations every 10 s and the rest every minute;
    - 6.9 s with no collection at all, but 30% more memory.
    What the server loaded to start is frozen, never walked again; what requests leave behind is
    collected within `every` seconds, so memory stays bounded however long the server runs."""
    gc.collect()  # what starting left behind, before the rest is frozen
    gc.freeze()

    def collect() -> None:
        while True:
            time.sleep(every)
            # A full walk costs a busy server's heap about 0.4 s: an idle server, which made next
            # to nothing since the last one (the count is what was made and not freed), skips it.
            if gc.get_count()[0] >= 10_000:
                gc.collect()

    threading.Thread(target=collect, daemon=True, name="assure-gc").start()


def main() -> None:
    # No automatic collection from here on (collect_in_the_background): starting up, it walked the
    # modules being imported for nothing, a third of the start's time.
    gc.disable()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to bind {args.host}: the local cloud binds the loopback interface only")

    from moto.moto_api._internal.models import moto_api_backend
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from assure_local import extension, schedules

    extension.patch_moto()
    schedules.start()

    from assure_local import principals

    principals.bootstrap_admin()
    serve_faster()
    moto_app = DomainDispatcherApplication(create_backend_app)
    app = extension.Extension(moto_app)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=refusals_only(MotoRequestHandler))
    port = server.server_address[1]
    # moto's Step Functions interpreter calls SQS through its own server; it finds it by MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, args.port_file)
    print(f"local cloud listening on http://{args.host}:{port}", flush=True)
    collect_in_the_background()
    server.serve_forever()


if __name__ == "__main__":
    main()
