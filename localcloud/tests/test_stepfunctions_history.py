"""GetExecutionHistory in pages (services/stepfunctions.history_in_pages): at most maxResults events,
oldest or newest first, a nextToken while events remain, and InvalidToken for a token of another
request.

    VENV/bin/python -m pytest tests/test_stepfunctions_history.py
"""

import json
import time

from tests import deliveries_client
from tests.authz_client import make_role
from tests.deliveries_client import target

REGION = "us-east-1"

STATES = 5  # Pass states: 2 events each, plus the execution's start and end


def setup_module() -> None:
    deliveries_client.setUpModule()
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})


def teardown_module() -> None:
    """The tests after these find moto's default again: executions are not run."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": False}})


def sfn(operation: str, body: dict) -> tuple[int, dict]:
    return target("AWSStepFunctions", "states", operation, body, REGION, version="1.0")


def finished_execution(name: str = "history") -> str:
    """An execution of STATES Pass states, run to its end."""
    role = make_role("history-sfn", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    states = {f"S{i}": {"Type": "Pass", **({"Next": f"S{i + 1}"} if i + 1 < STATES else {"End": True})}
              for i in range(STATES)}
    status, made = sfn("CreateStateMachine", {"name": name, "roleArn": role,
                                              "definition": json.dumps({"StartAt": "S0", "States": states})})
    assert status == 200, made
    status, started = sfn("StartExecution", {"stateMachineArn": made["stateMachineArn"]})
    assert status == 200, started
    arn = started["executionArn"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, described = sfn("DescribeExecution", {"executionArn": arn})
        assert status == 200, described
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described
            return arn
        time.sleep(0.1)
    raise AssertionError("the execution did not finish in 20 s")


def pages(arn: str, **request) -> list[list[int]]:
    """The event ids of each page, following nextToken."""
    out, token = [], None
    while True:
        status, page = sfn("GetExecutionHistory", {"executionArn": arn, **request, **({"nextToken": token} if token else {})})
        assert status == 200, page
        out.append([e["id"] for e in page["events"]])
        token = page.get("nextToken")
        if token is None:
            return out


def test_history_is_paged_in_either_order_and_a_foreign_token_is_refused() -> None:
    arn = finished_execution()
    total = 2 + 2 * STATES
    everything = list(range(1, total + 1))
    assert pages(arn) == [everything]
    assert pages(arn, maxResults=0) == [everything]
    assert pages(arn, maxResults=5) == [everything[0:5], everything[5:10], everything[10:]]
    assert pages(arn, maxResults=6) == [everything[0:6], everything[6:]]
    newest = everything[::-1]
    assert pages(arn, maxResults=5, reverseOrder=True) == [newest[0:5], newest[5:10], newest[10:]]
    assert pages(arn, maxResults=1, reverseOrder=True)[0] == [total]

    status, first = sfn("GetExecutionHistory", {"executionArn": arn, "maxResults": 5})
    assert status == 200 and first["nextToken"], first
    other = finished_execution("history-other")
    # The token of the oldest-first order, asked for newest first; of another execution; and a token
    # that is not one.
    for execution, token, reverse in ((arn, first["nextToken"], True), (other, first["nextToken"], False),
                                      (arn, "not-a-token", False)):
        status, refused = sfn("GetExecutionHistory", {"executionArn": execution, "maxResults": 5,
                                                      "reverseOrder": reverse, "nextToken": token})
        assert status == 400 and refused["__type"].endswith("InvalidToken"), refused
    status, refused = sfn("GetExecutionHistory", {"executionArn": arn, "maxResults": 1001})
    assert status == 400 and refused["__type"].endswith("ValidationException"), refused
