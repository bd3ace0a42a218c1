"""CloudFormation, as the local cloud runs it: a stack's resources are made by calling the services'
own APIs, through the local cloud's front door, as the caller who asked for the stack (or as the
stack's service role), so IAM, KMS key policies and every service's own checks (rules.py) apply to a
template exactly as they apply to the same calls made directly. This is how CloudFormation's resource
handlers work on AWS ("CloudFormation uses your credentials to make calls on your behalf", or the
stack's role: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html).

moto's own CloudFormation builds resources straight in its models (no authorization, no service checks,
no failure events, no rollback, no SAM transform), so the operations below are answered here instead:
CreateStack, UpdateStack, DeleteStack, DescribeStacks, DescribeStackEvents, DescribeStackResource(s),
ListStackResources, ListStacks, GetTemplate.

- A stack operation runs in the background, as on AWS: CreateStack answers with the stack's ID while
  the stack is CREATE_IN_PROGRESS; callers poll DescribeStacks and DescribeStackEvents.
- Resources are made in dependency order (Ref, Fn::GetAtt, Fn::Sub, DependsOn), one at a time (see
  `provision`). A resource that fails fails the stack: CREATE_FAILED with the service's error as its reason,
  then a rollback that deletes what was made (ROLLBACK_COMPLETE), unless rollback is disabled.
- `Transform: AWS::Serverless-2016-10-31` runs aws-sam-translator (pinned in requirements.txt), the
  library AWS's transform is built from, and needs CAPABILITY_AUTO_EXPAND, as on AWS.
- IAM resources need CAPABILITY_IAM, named ones CAPABILITY_NAMED_IAM (InsufficientCapabilitiesException).
- Parameters are checked against their AllowedValues, AllowedPattern and MinValue/MaxValue, and the
  template's Rules are asserted, before anything is made (ValidationError).
- The resource types are those the pipeline's templates use (PROVIDERS); any other is refused when
  the stack is created ("Unrecognized resource types"), never skipped.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape

from assure_local import core, principals, provider_base
from assure_local.stack_model import (
    Caller,
    Resource,
    Scope,
    Stack,
    StackError,
    assert_rules,
    clients,
    failure,
    iso,
    needed_capabilities,
    now,
    parameter_values,
    parse_template,
    references,
    stack_or_error,
    transformed,
)
from assure_local.stack_store import STACKS, STACKS_LOCK, live

NS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


# ---------------------------------------------------------------------------------------------------
# The caller's clients


# ---------------------------------------------------------------------------------------------------
# Templates: parameters, conditions, intrinsic functions


# ---------------------------------------------------------------------------------------------------
# Stacks


def order(template: dict, scope: Scope) -> list[list[str]]:
    """The template's resources in waves: each wave depends only on earlier ones."""
    resources = {k: v for k, v in template["Resources"].items()
                 if "Condition" not in v or scope.condition(v["Condition"])}
    deps: dict[str, set[str]] = {}
    for name, spec in resources.items():
        depends = spec.get("DependsOn") or []
        named = references(spec.get("Properties") or {}) | set([depends] if isinstance(depends, str) else depends)
        for d in named:
            if d not in template["Resources"] and d not in scope.refs:
                raise StackError("ValidationError", f"Template format error: Unresolved resource dependencies [{d}] "
                                                    "in the Resources block of the template")
        deps[name] = {d for d in named if d in resources}
    waves: list[list[str]] = []
    done: set[str] = set()
    while len(done) < len(resources):
        wave = sorted(n for n in resources if n not in done and deps[n] <= done)
        if not wave:
            cycle = sorted(n for n in resources if n not in done)
            raise StackError("ValidationError", f"Circular dependency between resources: [{', '.join(cycle)}]")
        waves.append(wave)
        done |= set(wave)
    return waves


def run_create(stack: Stack, caller: Caller, on_failure: str) -> None:
    from assure_local import providers

    client = clients(caller, stack.region)
    scope = Scope(stack, stack.processed)
    try:
        waves = order(stack.processed, scope)
    except StackError as e:
        stack.stack_event("CREATE_FAILED", e.message)
        stack.done.set()
        return
    failed = provision(stack, waves, scope, client, providers)
    if failed is None:
        stack.outputs = outputs(stack, scope)
        stack.stack_event("CREATE_COMPLETE")
    elif on_failure == "DO_NOTHING" or stack.disable_rollback:
        stack.stack_event("CREATE_FAILED", failed)
    else:
        stack.stack_event("ROLLBACK_IN_PROGRESS", f"The following resource(s) failed to create: [{failed}]. "
                                                  "Rollback requested by user.")
        remove(stack, client, providers)
        if on_failure == "DELETE":
            stack.stack_event("DELETE_COMPLETE")
            stack.deleted = now()
        else:
            stack.stack_event("ROLLBACK_COMPLETE")
    stack.done.set()


def provision(stack: Stack, waves: list[list[str]], scope: Scope, client: Callable, providers: Any,
              previous: dict[str, Resource] | None = None) -> str | None:
    """Makes (or, with `previous`, updates) each wave's resources at once; the logical IDs that
    failed, or None."""

    def one(name: str) -> str | None:
        spec = stack.processed["Resources"][name]
        kind = spec["Type"]
        old = (previous or {}).get(name)
        try:
            props = scope.resolve(spec.get("Properties") or {})
        except StackError as e:
            stack.event(name, "", kind, "CREATE_FAILED", e.message)
            return name
        if old is not None and old.kind == kind and old.properties == props:
            with STACKS_LOCK:
                stack.resources[name] = old
            return None
        provider = providers.PROVIDERS[kind]
        res = Resource(name, kind, properties=props)
        verb = "UPDATE" if old is not None and old.kind == kind else "CREATE"
        with STACKS_LOCK:
            stack.resources[name] = res
        res.status = f"{verb}_IN_PROGRESS"
        stack.event(name, (old.physical_id or "") if verb == "UPDATE" and old else "", kind, res.status)
        ctx = provider_base.Context(stack, name, client)
        try:
            if verb == "UPDATE":
                replaced = provider.update(ctx, old, props)
                res.physical_id, res.attributes = replaced
            else:
                res.physical_id, res.attributes = provider.create(ctx, props)
        except Exception as e:  # noqa: BLE001 - any handler failure fails the resource, as on AWS
            res.status, res.reason = f"{verb}_FAILED", failure(e)
            if verb == "UPDATE" and old is not None:
                with STACKS_LOCK:
                    stack.resources[name] = old
            stack.event(name, res.physical_id or "", kind, res.status, res.reason)
            return name
        res.attributes.setdefault("Ref", res.physical_id)
        res.status, res.updated = f"{verb}_COMPLETE", now()
        stack.event(name, res.physical_id or "", kind, res.status)
        return None

    # One resource at a time: AWS makes a wave's resources at once, but moto's backends walk their
    # live dictionaries unguarded, and two requests that make and list the same kind of thing at
    # once can fail one of them with an HTTP 500. The order of waves, which is what a template
    # relies on, is kept.
    with ThreadPoolExecutor(max_workers=1) as pool:
        for wave in waves:
            failed = [n for n in pool.map(one, wave) if n is not None]
            if failed:
                return ", ".join(failed)
    return None


def remove(stack: Stack, client: Callable, providers: Any, only: set[str] | None = None) -> bool:
    """Deletes the stack's resources (or those named in `only`) in reverse dependency order; whether
    all went."""
    made = [r for r in stack.resources.values() if r.physical_id and r.status != "DELETE_COMPLETE"
            and (only is None or r.logical_id in only)]
    depends: dict[str, set[str]] = {}
    for r in made:
        spec = (stack.processed.get("Resources") or {}).get(r.logical_id) or {}
        d = spec.get("DependsOn") or []
        depends[r.logical_id] = references(spec.get("Properties") or {}) | set([d] if isinstance(d, str) else d)
    ok = True
    pending = {r.logical_id: r for r in made}
    while pending:
        # Those nothing still pending depends on go first.
        wave = [r for n, r in pending.items() if not any(n in depends[m] for m in pending if m != n)]
        if not wave:
            wave = list(pending.values())
        for r in wave:
            pending.pop(r.logical_id)
            spec = (stack.processed.get("Resources") or {}).get(r.logical_id) or {}
            if spec.get("DeletionPolicy") == "Retain":
                r.status = "DELETE_SKIPPED"
                stack.event(r.logical_id, r.physical_id or "", r.kind, r.status)
                continue
            r.status = "DELETE_IN_PROGRESS"
            stack.event(r.logical_id, r.physical_id or "", r.kind, r.status)
            try:
                providers.PROVIDERS[r.kind].delete(provider_base.Context(stack, r.logical_id, client), r)
            except Exception as e:  # noqa: BLE001
                r.status, r.reason = "DELETE_FAILED", failure(e)
                stack.event(r.logical_id, r.physical_id or "", r.kind, r.status, r.reason)
                ok = False
                continue
            r.status = "DELETE_COMPLETE"
            stack.event(r.logical_id, r.physical_id or "", r.kind, r.status)
    return ok


def outputs(stack: Stack, scope: Scope) -> list[dict]:
    out = []
    for key, spec in (stack.processed.get("Outputs") or {}).items():
        if "Condition" in spec and not scope.condition(spec["Condition"]):
            continue
        item = {"OutputKey": key, "OutputValue": str(scope.resolve(spec["Value"]))}
        if spec.get("Description"):
            item["Description"] = spec["Description"]
        out.append(item)
    return out


def run_update(stack: Stack, caller: Caller, previous_resources: dict[str, Resource], previous: dict) -> None:
    from assure_local import providers

    client = clients(caller, stack.region)
    scope = Scope(stack, stack.processed)
    try:
        waves = order(stack.processed, scope)
    except StackError as e:
        stack.stack_event("UPDATE_ROLLBACK_COMPLETE", e.message)
        stack.done.set()
        return
    stack.resources = {}
    failed = provision(stack, waves, scope, client, providers, previous_resources)
    if failed is None:
        gone = {n for n in previous_resources if n not in stack.resources}
        stack.stack_event("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        kept = stack.resources
        stack.resources = {**kept, **{n: previous_resources[n] for n in gone}}
        processed, stack.processed = stack.processed, previous
        remove(stack, client, providers, gone)
        stack.processed = processed
        stack.resources = kept
        stack.outputs = outputs(stack, scope)
        stack.stack_event("UPDATE_COMPLETE")
    else:
        # Back to what was: resources made by this update go, changed ones are set back.
        stack.stack_event("UPDATE_ROLLBACK_IN_PROGRESS", f"The following resource(s) failed to update: [{failed}].")
        added = {n for n in stack.resources if n not in previous_resources}
        remove(stack, client, providers, added)
        stack.processed, stack.resources = previous, dict(previous_resources)
        back = Scope(stack, previous)
        provision(stack, order(previous, back), back, client, providers, previous_resources)
        stack.stack_event("UPDATE_ROLLBACK_COMPLETE")
    stack.done.set()


def run_delete(stack: Stack, caller: Caller) -> None:
    from assure_local import providers

    if remove(stack, clients(caller, stack.region), providers):
        stack.deleted = now()
        stack.stack_event("DELETE_COMPLETE")
    else:
        stack.stack_event("DELETE_FAILED", "The following resource(s) failed to delete: [" + ", ".join(
            r.logical_id for r in stack.resources.values() if r.status == "DELETE_FAILED") + "].")
    stack.done.set()


# ---------------------------------------------------------------------------------------------------
# The API


def members(form: dict[str, str], prefix: str) -> list[dict[str, str] | str]:
    """`Parameters.member.1.ParameterKey=k` as [{"ParameterKey": "k"}], `Capabilities.member.1=X` as ["X"]."""
    found: dict[int, Any] = {}
    for key, value in form.items():
        m = re.fullmatch(re.escape(prefix) + r"\.member\.(\d+)(?:\.(.+))?", key)
        if not m:
            continue
        index = int(m.group(1))
        if m.group(2) is None:
            found[index] = value
        else:
            found.setdefault(index, {})[m.group(2)] = value
    return [found[i] for i in sorted(found)]


def template_of(form: dict[str, str], caller: Caller, region: str) -> str:
    body, url = form.get("TemplateBody"), form.get("TemplateURL")
    if bool(body) == bool(url):
        raise StackError("ValidationError", "Specify exactly one of TemplateBody or TemplateURL")
    if body:
        if len(body.encode()) > 51_200:
            raise StackError("ValidationError", "1 validation error detected: Value at 'templateBody' failed to "
                                                "satisfy constraint: Member must have length less than or equal to 51200")
        return body
    parsed = urlparse(url or "")
    host = parsed.hostname or ""
    if parsed.scheme != "https" or ".amazonaws.com" not in host or ".s3" not in "." + host:
        raise StackError("ValidationError", "TemplateURL must be a supported URL.")
    path = parsed.path.lstrip("/")
    bucket, key = (host.split(".s3")[0], path) if not host.startswith("s3") else tuple(path.split("/", 1))
    from botocore.exceptions import ClientError

    try:
        got = clients(caller, region)("s3").get_object(Bucket=bucket, Key=key)
    except ClientError as e:
        raise StackError("ValidationError", f"S3 error: {e.response['Error'].get('Message', 'Access Denied')}") from None
    data = got["Body"].read()
    if len(data) > 1_000_000:
        raise StackError("ValidationError", "Template may not exceed 1000000 bytes in size.")
    return data.decode()


def prepare(stack: Stack, form: dict[str, str], caller: Caller, previous: Stack | None = None) -> None:
    """Reads, transforms and checks the template and parameters of a create or update: everything
    CloudFormation refuses before it starts."""
    if previous is not None and form.get("UsePreviousTemplate") == "true":
        body = previous.body
    else:
        body = template_of(form, caller, stack.region)
    template = parse_template(body)
    given: dict[str, str] = {}
    keep: dict[str, str] = {}
    for item in members(form, "Parameters"):
        if not isinstance(item, dict) or "ParameterKey" not in item:
            continue
        if item.get("UsePreviousValue") == "true" and previous is not None:
            keep[item["ParameterKey"]] = previous.parameters.get(item["ParameterKey"], "")
        elif "ParameterValue" in item:
            given[item["ParameterKey"]] = item["ParameterValue"]
    stack.parameters = parameter_values(template, {**keep, **given})
    capabilities = [c for c in members(form, "Capabilities") if isinstance(c, str)]
    if template.get("Transform") and "CAPABILITY_AUTO_EXPAND" not in capabilities:
        raise StackError("InsufficientCapabilitiesException", "Requires capabilities : [CAPABILITY_AUTO_EXPAND]")
    processed = transformed(template, stack.parameters, stack)
    for need in needed_capabilities(processed):
        if need not in capabilities and not (need == "CAPABILITY_IAM" and "CAPABILITY_NAMED_IAM" in capabilities):
            raise StackError("InsufficientCapabilitiesException", f"Requires capabilities : [{need}]")
    from assure_local import providers

    unknown = sorted({r.get("Type", "") for r in processed["Resources"].values()} - set(providers.PROVIDERS))
    if unknown:
        raise StackError("ValidationError",
                         f"Template format error: Unrecognized resource types: [{', '.join(unknown)}]")
    stack.body, stack.template, stack.processed = body, template, processed
    stack.capabilities = capabilities
    stack.description = template.get("Description")
    scope = Scope(stack, processed)
    assert_rules(processed, scope)
    order(processed, scope)
    tags = members(form, "Tags")
    if tags or previous is None:
        stack.tags = [t for t in tags if isinstance(t, dict)]
    stack.disable_rollback = form.get("DisableRollback") == "true"


def as_caller(form: dict[str, str], caller: Caller, account: str) -> Caller:
    """The stack's service role, when one is given: CloudFormation assumes it
    (its trust policy must admit cloudformation.amazonaws.com) and makes every call as it."""
    role = form.get("RoleARN")
    if not role:
        return caller

    try:
        session = principals.service_session("cloudformation.amazonaws.com", role, "AWSCloudFormation")
    except core.ApiError as e:
        raise StackError("ValidationError", f"Role {role} is invalid or cannot be assumed: {e.message}") from None
    return Caller(session.access_key_id, session.secret_access_key, session.session_token)


def start(target: Callable, *args: Any) -> None:
    threading.Thread(target=target, args=args, daemon=True, name="cloudformation").start()


def create_stack(account: str, region: str, form: dict[str, str], caller: Caller) -> dict:
    name = form.get("StackName", "")
    if not re.fullmatch(r"[a-zA-Z][-a-zA-Z0-9]{0,127}", name):
        raise StackError("ValidationError", f"1 validation error detected: Value '{name}' at 'stackName' failed to "
                                            "satisfy constraint: Member must satisfy regular expression pattern: "
                                            "[a-zA-Z][-a-zA-Z0-9]*")
    with STACKS_LOCK:
        if live(account, region, name) is not None:
            raise StackError("AlreadyExistsException", f"Stack [{name}] already exists")
        stack = Stack(account, region, name)
    prepare(stack, form, caller)
    stack.role_arn = form.get("RoleARN")
    acting = as_caller(form, caller, account)
    with STACKS_LOCK:
        if live(account, region, name) is not None:
            raise StackError("AlreadyExistsException", f"Stack [{name}] already exists")
        STACKS.setdefault((account, region), {})[stack.stack_id] = stack
    stack.stack_event("CREATE_IN_PROGRESS", "User Initiated")
    start(run_create, stack, acting, form.get("OnFailure", "ROLLBACK"))
    return {"StackId": stack.stack_id}


IN_PROGRESS = re.compile(r".*_IN_PROGRESS$")


def update_stack(account: str, region: str, form: dict[str, str], caller: Caller) -> dict:
    stack = stack_or_error(account, region, form.get("StackName", ""))
    if IN_PROGRESS.match(stack.status):
        raise StackError("ValidationError", f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")
    if stack.status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED"):
        raise StackError("ValidationError", f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")
    draft = Stack(account, region, stack.name)
    draft.stack_id = stack.stack_id
    prepare(draft, form, caller, stack)
    if draft.processed == stack.processed and draft.parameters == stack.parameters and draft.tags == stack.tags:
        raise StackError("ValidationError", "No updates are to be performed.")
    acting = as_caller(form, caller, account)
    previous_resources, previous = dict(stack.resources), stack.processed
    with STACKS_LOCK:
        stack.body, stack.template, stack.processed = draft.body, draft.template, draft.processed
        stack.parameters, stack.capabilities, stack.tags = draft.parameters, draft.capabilities, draft.tags
        stack.description, stack.updated = draft.description, now()
        stack.done = threading.Event()
    stack.stack_event("UPDATE_IN_PROGRESS", "User Initiated")
    start(run_update, stack, acting, previous_resources, previous)
    return {"StackId": stack.stack_id}


def delete_stack(account: str, region: str, form: dict[str, str], caller: Caller) -> dict:
    stack = live(account, region, form.get("StackName", ""))
    if stack is None or stack.status == "DELETE_COMPLETE":
        return {}
    if stack.status == "DELETE_IN_PROGRESS":
        return {}
    if IN_PROGRESS.match(stack.status):
        raise StackError("ValidationError", f"Stack [{stack.name}] cannot be deleted while in status {stack.status}")
    acting = as_caller({"RoleARN": stack.role_arn} if stack.role_arn else {}, caller, account)
    stack.done = threading.Event()
    stack.stack_event("DELETE_IN_PROGRESS", "User Initiated")
    start(run_delete, stack, acting)
    return {}


def describe(stack: Stack) -> dict:
    out: dict[str, Any] = {
        "StackId": stack.stack_id, "StackName": stack.name, "CreationTime": iso(stack.created),
        "StackStatus": stack.status, "DisableRollback": str(stack.disable_rollback).lower(),
        # A NoEcho parameter's value is never shown (AWS shows asterisks).
        "Parameters": [{"ParameterKey": k, "ParameterValue": "****" if stack.no_echo(k) else v}
                       for k, v in stack.parameters.items()],
        "Capabilities": stack.capabilities, "Tags": stack.tags, "Outputs": stack.outputs,
        "NotificationARNs": [], "EnableTerminationProtection": "false",
    }
    if stack.reason:
        out["StackStatusReason"] = stack.reason
    if stack.description:
        out["Description"] = stack.description
    if stack.updated:
        out["LastUpdatedTime"] = iso(stack.updated)
    if stack.deleted:
        out["DeletionTime"] = iso(stack.deleted)
    if stack.role_arn:
        out["RoleARN"] = stack.role_arn
    return out


def resource_out(stack: Stack, r: Resource, detail: bool) -> dict:
    out = {"LogicalResourceId": r.logical_id, "PhysicalResourceId": r.physical_id or "", "ResourceType": r.kind,
           "ResourceStatus": r.status, ("LastUpdatedTimestamp" if detail else "Timestamp"): iso(r.updated)}
    if r.reason:
        out["ResourceStatusReason"] = r.reason
    if detail:
        out.update({"StackId": stack.stack_id, "StackName": stack.name})
    return out


def answer(op: str, account: str, region: str, form: dict[str, str], caller: Caller) -> dict | None:
    """The result of CloudFormation operation `op` on stacks, or None for operations this module does
    not answer (StackSets' are stacksets.py's: its `answer_cloudformation` tries them first)."""
    if op == "CreateStack":
        return create_stack(account, region, form, caller)
    if op == "UpdateStack":
        return update_stack(account, region, form, caller)
    if op == "DeleteStack":
        return delete_stack(account, region, form, caller)
    if op in ("CreateChangeSet", "ExecuteChangeSet", "DescribeChangeSet", "ListChangeSets", "DeleteChangeSet"):
        raise StackError("ValidationError", f"{op}: the local cloud makes stacks with CreateStack and UpdateStack "
                                            "only (change sets are not emulated)")
    with STACKS_LOCK:
        if op == "DescribeStacks":
            name = form.get("StackName")
            if name:
                return {"Stacks": [describe(stack_or_error(account, region, name))]}
            return {"Stacks": [describe(s) for s in STACKS.get((account, region), {}).values()
                               if s.status != "DELETE_COMPLETE"]}
        if op == "ListStacks":
            wanted = [s for s in members(form, "StackStatusFilter") if isinstance(s, str)]
            return {"StackSummaries": [
                {k: v for k, v in describe(s).items() if k in ("StackId", "StackName", "CreationTime", "StackStatus",
                                                               "LastUpdatedTime", "DeletionTime", "StackStatusReason")}
                | ({"TemplateDescription": s.description} if s.description else {})
                for s in STACKS.get((account, region), {}).values() if not wanted or s.status in wanted]}
        if op == "DescribeStackEvents":
            stack = stack_or_error(account, region, form.get("StackName", ""))
            return {"StackEvents": [
                {"StackId": stack.stack_id, "EventId": e.event_id, "StackName": stack.name,
                 "LogicalResourceId": e.logical_id, "PhysicalResourceId": e.physical_id, "ResourceType": e.kind,
                 "Timestamp": iso(e.at), "ResourceStatus": e.status}
                | ({"ResourceStatusReason": e.reason} if e.reason else {})
                for e in reversed(stack.events)]}
        if op == "ListStackResources":
            stack = stack_or_error(account, region, form.get("StackName", ""))
            return {"StackResourceSummaries": [
                {k if k != "Timestamp" else "LastUpdatedTimestamp": v for k, v in resource_out(stack, r, False).items()}
                for r in stack.resources.values()]}
        if op == "DescribeStackResources":
            stack = stack_or_error(account, region, form.get("StackName", ""))
            wanted_id = form.get("LogicalResourceId")
            return {"StackResources": [
                {k if k != "LastUpdatedTimestamp" else "Timestamp": v for k, v in resource_out(stack, r, True).items()}
                for r in stack.resources.values() if not wanted_id or r.logical_id == wanted_id]}
        if op == "DescribeStackResource":
            stack = stack_or_error(account, region, form.get("StackName", ""))
            r = stack.resources.get(form.get("LogicalResourceId", ""))
            if r is None:
                raise StackError("ValidationError", f"Resource {form.get('LogicalResourceId')} does not exist for "
                                                    f"stack {stack.name}")
            return {"StackResourceDetail": resource_out(stack, r, True)}
        if op == "GetTemplate":
            stack = stack_or_error(account, region, form.get("StackName", ""))
            processed = form.get("TemplateStage") == "Processed"
            body = json.dumps(stack.processed) if processed else stack.body
            return {"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]}
    return None


def xml(node: Any, name: str) -> str:
    if node is None:
        return ""
    if isinstance(node, dict):
        inner = "".join(xml(v, k) for k, v in node.items())
    elif isinstance(node, list):
        inner = "".join(xml(v, "member") for v in node)
    else:
        inner = escape(str(node))
    return f"<{name}>{inner}</{name}>"


def respond(op: str, result: dict) -> bytes:
    request_id = str(uuid.uuid4())
    return (f'<{op}Response xmlns="{NS}">{xml(result, op + "Result")}'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>").encode()


def error_body(e: StackError) -> bytes:
    return (f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{escape(e.code)}</Code>'
            f"<Message>{escape(e.message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            ).encode()


def handle(environ: dict, start_response: Callable, raw: bytes, account: str, region: str,
           caller: Caller, answerer: Callable[..., dict | None] = answer) -> list[bytes] | None:
    """Answers a CloudFormation request (query protocol) with `answerer` (`answer`'s signature), or
    None to leave it to moto."""
    form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    op = form.get("Action", "")
    try:
        result = answerer(op, account, region, form, caller)
    except StackError as e:
        body = error_body(e)
        start_response(f"{e.status} Bad Request", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
        return [body]
    if result is None:
        return None
    body = respond(op, result)
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
    return [body]


def wait(stack_id: str, timeout: float = 300) -> Stack | None:
    """The stack, once its current operation ended (the tests' and the seed's own use)."""
    for stacks in STACKS.values():
        if stack_id in stacks:
            stacks[stack_id].done.wait(timeout)
            return stacks[stack_id]
    return None


