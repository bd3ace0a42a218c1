"""AWS Lambda: a function's role and its SQS event source mappings."""

from __future__ import annotations

from typing import Any

from assure_local import policies
from assure_local.aws_request import Req, p
from assure_local.rules import Refusal, role_allows, unusable_role


def lambda_role(req: Req, account: str, raw: bytes) -> Refusal | None:
    """CreateFunction and UpdateFunctionConfiguration with a role: Lambda assumes it, so it must exist,
    be propagated, and trust lambda.amazonaws.com; otherwise InvalidParameterValueException "The role
    defined for the function cannot be assumed by Lambda." (API_CreateFunction, Errors;
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html)."""
    if req.service != "lambda" or req.operation not in ("CreateFunction", "UpdateFunctionConfiguration"):
        return None
    role = p(req.params, "Role")
    if not isinstance(role, str) or not role:
        return None
    if unusable_role("lambda.amazonaws.com", role) is None:
        return None
    return Refusal(400, "InvalidParameterValueException", "The role defined for the function cannot be assumed by Lambda.")


def lambda_function(region: str, account: str, name: str) -> Any:
    from moto.awslambda.models import lambda_backends

    try:
        return lambda_backends[account][region].get_function(name)
    except Exception:  # noqa: BLE001 - moto's not-found
        return None


def lambda_sqs_mapping(req: Req, account: str, raw: bytes) -> Refusal | None:
    """An event source mapping of an SQS queue (CreateEventSourceMapping, and UpdateEventSourceMapping
    naming another function), as Lambda checks it before it polls
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html):
    - the queue's visibility timeout must be at least the function's timeout ("Queue visibility
      timeout: 30 seconds is less than Function timeout: 900 seconds"; the page recommends six times);
    - the function's execution role must allow sqs:ReceiveMessage, sqs:DeleteMessage and
      sqs:GetQueueAttributes on the queue ("The provided execution role does not have permissions to
      call ReceiveMessage on SQS"; "Execution role permissions" on the same page).
    Both InvalidParameterValueException."""
    if req.service != "lambda" or req.operation not in ("CreateEventSourceMapping", "UpdateEventSourceMapping"):
        return None
    source = p(req.params, "EventSourceArn")
    function_name = p(req.params, "FunctionName")
    if req.operation == "UpdateEventSourceMapping":
        from moto.awslambda.models import lambda_backends

        uuid = (req.path or "").rstrip("/").rsplit("/", 1)[-1]
        mapping = lambda_backends[account][req.region].get_event_source_mapping(uuid)
        if mapping is None:
            return None
        source = mapping.event_source_arn
        function_name = function_name or mapping.function_arn
    if not isinstance(source, str) or ":sqs:" not in source or not isinstance(function_name, str):
        return None
    function = lambda_function(req.region, account, function_name)
    if function is None:
        return None
    from moto.sqs.models import sqs_backends

    _, _, _, q_region, q_account, q_name = source.split(":", 5)
    queue = sqs_backends[q_account][q_region].queues.get(q_name)
    if queue is None:
        return None
    visibility, timeout = int(queue.visibility_timeout), int(function.timeout)  # type: ignore[attr-defined]  # moto sets the queue's attributes at run time
    if visibility < timeout:
        return Refusal(400, "InvalidParameterValueException",
                       f"Queue visibility timeout: {visibility} seconds is less than Function timeout: {timeout} seconds")
    for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"):
        if policies.role_by_arn(function.role) is None or not role_allows(function.role, f"sqs:{action}", source):
            return Refusal(400, "InvalidParameterValueException",
                           f"The provided execution role does not have permissions to call {action} on SQS")
    return None
