"""AWS Step Functions: moto's interpreter made to run tasks as AWS runs them (as the execution role, callbacks, Distributed Map's results, Lambda's pollers)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from assure_local.core import (
    SERVICE_KEYS,
    replace,
)
from assure_local.principals import service_session


def run_tasks_as_the_execution_role() -> None:
    """moto's Step Functions interpreter calls SQS and Step Functions through the local cloud's own
    endpoint with the fixed key "ak". AWS makes those calls as the state machine's execution role
    (https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html), so the
    role's policy, the queue's KMS key and the trust policy's admission of states.amazonaws.com all
    count. Here every client the interpreter makes for a task uses a session of that role."""
    import importlib
    import os
    import pkgutil

    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port
    from moto.stepfunctions import parser
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    sessions: dict[str, Any] = {}
    clients: dict[tuple[str, str, str], Any] = {}
    clients_lock = threading.Lock()

    def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", None)
        # With IAM enforcement off too: moto's own key acts in its default account, and a state
        # machine's tasks act in the state machine's.
        if not role_arn:
            return original(region, service, state_credentials)
        with clients_lock:
            found = clients.get((role_arn, region, service))
            if found is not None:
                return found
            session = sessions.get(role_arn)
            if session is None:
                session = sessions[role_arn] = service_session("states.amazonaws.com", role_arn, "states")
                SERVICE_KEYS.add(session.access_key_id)
            # One client per role, region and service, made once: building a boto3 client was a
            # twentieth of the server's time in a bulk run. Clients are thread-safe; making them is not.
            client = clients[(role_arn, region, service)] = boto3.client(
                service, region_name=region, endpoint_url=f"http://localhost:{moto_server_port()}",
                aws_access_key_id=session.access_key_id, aws_secret_access_key=session.secret_access_key,
                aws_session_token=session.session_token,
                config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                              connect_timeout=60, read_timeout=60))
            return client

    root = os.path.dirname(parser.__file__)
    for info in pkgutil.walk_packages([root], prefix="moto.stepfunctions.parser."):
        path = os.path.join(root, *info.name.split(".")[3:]) + ".py"
        if info.ispkg or not os.path.exists(path) or "boto_client_for" not in Path(path).read_text():
            continue
        module = importlib.import_module(info.name)
        if getattr(module, "boto_client_for", None) is original:
            replace(module, "boto_client_for", client_for)
    boto_client.boto_client_for = client_for


def a_retried_callback_task_is_a_new_task() -> None:
    """Step Functions: each attempt of a `.waitForTaskToken` Task state is a task of its own, with its
    own token; once an attempt has its answer (or times out), its task is closed, and a later
    SendTaskSuccess, SendTaskFailure or SendTaskHeartbeat with its token is refused `TaskTimedOut`
    ("The task token has either expired or the task associated with the token has already been
    closed", https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html).

    moto's interpreter makes the token once, when the state is entered, and keeps its answer: a
    retried attempt sent the same token again and at once read the failure that ended the attempt
    before it, so the retries ran out in seconds while the step's worker was still working."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_task,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

    task = callback_task.StateTaskServiceCallback

    def endpoint_of(env):
        token = (env.states.context_object.context_object_data.get("Task") or {}).get("Token")
        return env.callback_pool_manager.get(token) if token else None

    execute = task._eval_execution

    def eval_execution(self, env):
        endpoint = endpoint_of(env)
        if endpoint is not None and endpoint.consumer_error is not None:
            # The attempt before this one closed its task: this attempt gets a token of its own.
            env.callback_pool_manager.add(env.states.context_object.update_task_token())
        return execute(self, env)

    replace(task, "_eval_execution", eval_execution)

    integrate = task._eval_integration_pattern

    def eval_integration_pattern(self, env, *args, **kwargs):
        try:
            return integrate(self, env, *args, **kwargs)
        finally:
            endpoint = endpoint_of(env)
            if endpoint is not None and endpoint.consumer_error is None:
                endpoint.report(CallbackConsumerTimeout())

    replace(task, "_eval_integration_pattern", eval_integration_pattern)

    # An answer to a closed task. moto tests the exception it caught instead of its cause, so
    # every such answer became TaskDoesNotExist, and that, built without a message, an HTTP 500.
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackPoolManager

    def closed(manager: Any, callback_id: str) -> bool:
        endpoint = manager.get(callback_id)
        return endpoint is not None and endpoint.consumer_error is not None

    def timed_out() -> AWSError:
        return AWSError("The task token has either expired or the task associated with the token has "
                        "already been closed.", "TaskTimedOut", 400)

    notify, heartbeat = CallbackPoolManager.notify, CallbackPoolManager.heartbeat

    def notify_open(self, callback_id, outcome):
        if closed(self, callback_id):
            raise timed_out()
        return notify(self, callback_id, outcome)

    def heartbeat_open(self, callback_id):
        if closed(self, callback_id):
            raise timed_out()
        return heartbeat(self, callback_id)

    replace(CallbackPoolManager, "notify", notify_open)
    replace(CallbackPoolManager, "heartbeat", heartbeat_open)


def lambdas_pollers_are_the_workers() -> None:
    """moto's SQS hands every message sent to a queue with a Lambda event source mapping straight to
    moto's own Lambda (which needs Docker): it receives the message first, so its receive count
    grows and it comes back to the real poller as if a worker had died. Lambda's pollers are the
    worker's (`assure worker` plays Lambda for the stack's mappings); moto's queues keep no mapping
    of their own."""
    from moto.sqs.models import Queue

    replace(Queue, "lambda_event_source_mappings", property(lambda self: {}, lambda self, value: None))


def distributed_map_results_are_written() -> None:
    """A Distributed Map's ResultWriter: moto writes the manifest with no result files ("TODO"). Step
    Functions writes the child executions' results as JSON arrays, SUCCEEDED_0.json, FAILED_0.json,
    …, under PREFIX/MAP_RUN_ID/, and lists them in manifest.json beside them
    (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html), as the
    state machine's role (s3:PutObject, and the bucket key's kms:GenerateDataKey). Its Parameters are
    read against the Map state's input."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )

    Eval = resource_eval_s3.ResourceEvalS3

    def handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        results = env.stack.pop()
        s3 = Eval._get_s3_client(resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all().pop()
        run_id = record.map_run_arn.split(":")[-1]
        prefix = parameters.get("Prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        items = results if isinstance(results, list) else []
        files: dict[str, list] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        if items:
            body = json.dumps([{"Output": json.dumps(item), "OutputDetails": {"Included": True},
                                "Status": "SUCCEEDED"} for item in items]).encode()
            key = f"{prefix}{run_id}/SUCCEEDED_0.json"
            s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=body)
            files["SUCCEEDED"].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn, "ResultFiles": files}
        key = f"{prefix}{run_id}/manifest.json"
        s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(manifest, indent=2).encode())
        env.stack.append({"MapRunArn": record.map_run_arn,
                          "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key}})

    replace(Eval, "_handle_put_object", staticmethod(handle_put_object))

    # ResultWriter's Parameters read the Map state's input, as ItemReader's do; moto evaluated them
    # against the results instead, so `"Prefix.$": "$.bulk.bulkId"` failed the execution.
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.result_writer_decl import (
        ResultWriter,
    )

    def eval_body(self: Any, env: Any) -> None:
        import copy

        env.stack.append(copy.deepcopy(env.states.get_input()))
        self.parargs.eval(env=env)
        parameters = env.stack.pop()
        env.stack.pop()
        env.stack.append(parameters)
        self.resource_eval.eval_resource(env=env)

    replace(ResultWriter, "_eval_body", eval_body)


def recorded_events(backend: Any, arn: str) -> list:
    """An execution's events as recorded, not copied: moto's `get_execution_history` deep-copies the
    whole history on every call, which a page then mostly throws away (the page alone is copied).
    Events are appended under the event manager's lock, each with the next id. (A Distributed Map
    gives each iteration an event manager of its own while it runs, as moto already did; the bulk
    state machine's history is not followed page by page.)"""
    execution = backend.describe_execution(arn)
    if not hasattr(execution, "exec_worker"):  # the backend that does not run executions
        return list(backend.get_execution_history(arn)["events"])
    env = getattr(execution.exec_worker, "env", None)
    if env is None:  # listed, not started yet: no event so far (moto's own answer failed here)
        return []
    with env.event_manager._mutex:
        return list(env.event_manager._history_event_list)


def history_in_pages() -> None:
    """GetExecutionHistory as AWS pages it: at most `maxResults` events (100 by default or for 0),
    the newest first with `reverseOrder`, and a `nextToken` while events remain; a token of another
    execution or order is refused with InvalidToken
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html).
    moto answered every event at once whatever was asked, so a client reading only the newest events
    was never tested, and copying and serialising the whole history again on every poll cost the
    server 1.0 s of its 9.7 s in one onboarding (25 polls)."""
    import base64
    import copy

    from moto.core.responses import ActionResult
    from moto.stepfunctions import responses as sfn
    from moto.stepfunctions.exceptions import InvalidToken

    def get_execution_history(self):
        arn = self._get_param("executionArn")
        size = self._get_param("maxResults") or 100
        reverse = bool(self._get_param("reverseOrder"))
        events = recorded_events(self.stepfunction_backend, arn)
        # Event ids run 1, 2, … in order; a token names the id the next page starts from, so events
        # added between pages neither repeat nor go missing.
        start = len(events) if reverse else 1
        if token := self._get_param("nextToken"):
            try:
                of, order, start = json.loads(base64.b64decode(token))
            except (ValueError, TypeError):
                raise InvalidToken() from None
            if of != arn or order != reverse or not isinstance(start, int):
                raise InvalidToken()
        if reverse:
            page = [events[i - 1] for i in range(min(start, len(events)), max(start - size, 0), -1)]
            after = start - size
            more = after >= 1
        else:
            page = events[max(start, 1) - 1:start - 1 + size]
            after = start + size
            more = after <= len(events)
        out: dict[str, Any] = {"events": copy.deepcopy(page)}
        if more:
            out["nextToken"] = base64.b64encode(json.dumps([arn, reverse, after]).encode()).decode()
        return ActionResult(out)

    replace(sfn.StepFunctionResponse, "get_execution_history", get_execution_history)


def patch_moto() -> None:
    """Step Functions: SendTaskFailure's cause, callbacks, tasks as the execution role, startExecution.sync:2."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions import responses as sfn

    def send_task_failure(self):
        token, error, cause = self._get_param("taskToken"), self._get_param("error"), self._get_param("cause")
        backend = self.stepfunction_backend
        try:
            backend.send_task_failure(token, error=error, cause=cause)
        except TypeError:  # the non-executing backend takes no cause
            backend.send_task_failure(token, error=error)
        return EmptyResult()

    replace(sfn.StepFunctionResponse, "send_task_failure", send_task_failure)
    history_in_pages()
    a_retried_callback_task_is_a_new_task()
    run_tasks_as_the_execution_role()

    # Step Functions: the `states:startExecution.sync:2` integration (the bulk state machine's child
    # executions). moto's port of the interpreter left out the step that turns the ASL's PascalCase
    # parameters into the API's camelCase ones and the answer back, so every call failed with
    # KeyError 'StateMachineArn'. Done here, as AWS does: parameters in, answer out, dates as epoch
    # seconds.
    import datetime as _dt

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_sfn as sfn_task,
    )

    task = sfn_task.StateTaskServiceSfn
    normalise_parameters = task._normalise_parameters

    def camel_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        normalise_parameters(self, parameters, boto_service_name, service_action_name)
        for key in list(parameters):
            parameters[key[:1].lower() + key[1:]] = parameters.pop(key)

    def pascal_response(self, response, boto_service_name=None, service_action_name=None):
        if not isinstance(response, dict):
            return
        for key in list(response):
            value = response.pop(key)
            if isinstance(value, _dt.datetime):
                value = value.timestamp()
            response[key[:1].upper() + key[1:]] = value

    replace(task, "_normalise_parameters", camel_parameters)
    replace(task, "_normalise_response", pascal_response)
