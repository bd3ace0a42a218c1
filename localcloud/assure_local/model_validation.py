"""Every request checked against its service's API model (required members, types, lengths, ranges, enum values), refused with the protocol's validation error."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from assure_local.aws_request import Req
from assure_local.rules import Refusal

# Every request is checked against the service's API model, as AWS's front ends do before the
# service acts: required members, types, lengths, ranges and enum values, answered in AWS's wording
# ("1 validation error detected: Value 'x' at 'roleName' failed to satisfy constraint: Member must
# have length less than or equal to 64"). The models are botocore's, as installed with moto. Patterns
# are not checked (the models' are Java regular expressions).
# - JSON and Smithy RPC v2 CBOR (KMS, CloudTrail, Config, ...): ValidationException.
#   https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html
# - Query (IAM, STS, SNS, CloudWatch's query clients): ValidationError; the flattened members
#   (`Tags.member.1.Key`) are read back into the input's shape first.
#   https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html
# - REST-JSON: the members come from the path, the query string, the headers and the body, each as
#   the model places it. IAM Access Analyzer answers ValidationException
#   (https://docs.aws.amazon.com/access-analyzer/latest/APIReference/CommonErrors.html), GuardDuty
#   BadRequestException (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_CreateDetector.html,
#   Errors).
# S3 (REST-XML) is not checked this way: its front end answers bad input with errors of its own
# (InvalidArgument, MalformedXML), not with a generic validation error.
MODEL_NAMES = {"kms": "kms", "cloudtrail": "cloudtrail", "config": "config", "organizations": "organizations",
               "firehose": "firehose", "ssm": "ssm", "states": "stepfunctions", "logs": "logs", "events": "events",
               "sqs": "sqs", "monitoring": "cloudwatch", "iam": "iam", "sts": "sts", "sns": "sns",
               "guardduty": "guardduty", "access-analyzer": "accessanalyzer"}


# The validation error each REST-JSON service answers.
# Account Management: https://docs.aws.amazon.com/accounts/latest/reference/CommonErrors.html.
REST_VALIDATION = {"guardduty": "BadRequestException", "access-analyzer": "ValidationException",
                   "account": "ValidationException"}


_MODELS: dict[str, Any] = {}


def model_of(service: str) -> Any:
    if service not in _MODELS:
        import botocore.session

        _MODELS[service] = botocore.session.get_session().get_service_model(MODEL_NAMES[service])
    return _MODELS[service]


def violations(shape: Any, value: Any, path: str, out: list[str]) -> None:
    """AWS's wording of each constraint `value` breaks, at `path` (the member names, camelCase)."""
    t = shape.type_name
    if value is None:
        return
    meta = shape.metadata
    text = str(value) if len(str(value)) <= 80 else str(value)[:77] + "..."
    shown = f"'{text}'" if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "[object]"
    if t == "structure":
        if not isinstance(value, dict):
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a structure")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                out.append(f"Value null at '{(path + '.') if path else ''}{name[:1].lower() + name[1:]}' failed to "
                           "satisfy constraint: Member must not be null")
        for name, member in shape.members.items():
            if name in value:
                violations(member, value[name], f"{(path + '.') if path else ''}{name[:1].lower() + name[1:]}", out)
    elif t == "list":
        if not isinstance(value, list):
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a list")
            return
        if "min" in meta and len(value) < meta["min"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        for i, v in enumerate(value):
            violations(shape.member, v, f"{path}.{i + 1}.member", out)
    elif t == "map":
        if isinstance(value, dict):
            for k, v in value.items():
                violations(shape.value, v, f"{path}.{k}", out)
    elif t == "string":
        if not isinstance(value, str):
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a string")
            return
        if "min" in meta and len(value) < meta["min"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        if shape.enum and value not in shape.enum:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    elif t in ("integer", "long", "double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a number")
            return
        if "min" in meta and value < meta["min"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must have value less than or equal to {meta['max']}")
    elif t == "boolean" and not isinstance(value, bool):
        out.append(f"Value {shown} at '{path}' failed to satisfy constraint: Member must be a boolean")


def query_members(shape: Any, form: dict[str, str], prefix: str) -> Any:
    """A query-protocol input read back into `shape`: `Tags.member.1.Key=k` becomes
    {"Tags": [{"Key": "k"}]}. Scalars keep their text unless they parse as the shape's type, so a
    value that does not is reported as the model's type error."""
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = query_members(member, form, f"{prefix}.{key}" if prefix else key)
            if value is not None:
                out[name] = value
        return out if out or not prefix else None
    if t == "list":
        if form.get(prefix) == "":
            return []  # botocore sends an empty list as `Name=`
        flat = shape.serialization.get("flattened")
        item = prefix if flat else f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items: list = []
        i = 1
        while any(k == f"{item}.{i}" or k.startswith(f"{item}.{i}.") for k in form):
            items.append(query_members(shape.member, form, f"{item}.{i}"))
            i += 1
        return items or None
    if t == "map":
        entry = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        k_name = shape.key.serialization.get("name", "key")
        v_name = shape.value.serialization.get("name", "value")
        out, i = {}, 1
        while f"{entry}.{i}.{k_name}" in form:
            out[form[f"{entry}.{i}.{k_name}"]] = query_members(shape.value, form, f"{entry}.{i}.{v_name}")
            i += 1
        return out or None
    if prefix not in form:
        return None
    return scalar(shape, form[prefix])


def scalar(shape: Any, text: str) -> Any:
    """A member sent as text (a query member, a query-string or header member of a REST call) as the
    type its shape names, or the text itself when it is not one."""
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(text)
        if t in ("double", "float"):
            return float(text)
    except ValueError:
        return text
    if t == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def by_member_name(shape: Any, value: Any) -> Any:
    """A JSON body keyed by the members' wire names (GuardDuty's `detectorId` for `DetectorId`) keyed
    by the model's member names instead, all the way down, as `violations` reads it."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            if key in value:
                out[name] = by_member_name(member, value[key])
            elif name in value:
                out[name] = by_member_name(member, value[name])
        return out
    if t == "list" and isinstance(value, list):
        return [by_member_name(shape.member, v) for v in value]
    if t == "map" and isinstance(value, dict):
        return {k: by_member_name(shape.value, v) for k, v in value.items()}
    return value


def rest_members(shape: Any, req: Req) -> dict:
    """A REST call's input keyed by member name: the path's labels (aws_request.rest_operation put them
    beside the body's members), the query string's and the headers' members, and the body's, each
    where the model places it."""
    sent = req.params if isinstance(req.params, dict) else {}
    out = {}
    for name, member in shape.members.items():
        where, key = member.serialization.get("location"), member.serialization.get("name", name)
        if where == "querystring":
            values = (req.query or {}).get(key)
            if values and member.type_name == "list":
                out[name] = list(values)
            elif values:
                out[name] = scalar(member, values[0])
        elif where == "header":
            if key.lower() in (req.headers or {}):
                out[name] = scalar(member, (req.headers or {})[key.lower()])
        elif key in sent:
            out[name] = by_member_name(member, sent[key])
    return out


def api_model(req: Req, account: str, raw: bytes) -> Refusal | None:
    if req.service not in MODEL_NAMES or not req.operation:
        return None
    model = model_of(req.service)
    if req.operation not in model.operation_names:
        return None
    shape = model.operation_model(req.operation).input_shape
    if shape is None:
        return None
    code = "ValidationException"
    if (req.headers or {}).get("x-amz-target") or "/operation/" in (req.path or ""):
        params = by_member_name(shape, req.params)
    elif req.service in REST_VALIDATION:
        params, code = rest_members(shape, req), REST_VALIDATION[req.service]
    else:
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace"), keep_blank_values=True).items()}
        form.update({k: v[0] for k, v in (req.query or {}).items() if v})
        params, code = query_members(shape, form, ""), "ValidationError"
    if not isinstance(params, dict):
        return None
    found: list[str] = []
    violations(shape, params, "", found)
    if not found:
        return None
    n = len(found)
    message = f"{n} validation error{'s' if n > 1 else ''} detected: {'; '.join(found)}"
    if code == "BadRequestException":
        # GuardDuty's wording, with the model's findings after it.
        message = ("The request is rejected because an invalid or out-of-range value is specified as an "
                   f"input parameter. {message}")
    return Refusal(400, code, message)
