"""CloudFormation's model of a stack: its template (parsed, transformed, its parameters and intrinsic functions resolved in a Scope), its resources and events, and the callers it acts as."""

from __future__ import annotations

import datetime
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assure_local.stack_store import STACKS_LOCK, live

SAM = "AWS::Serverless-2016-10-31"


class StackError(Exception):
    """An answer of CloudFormation's API other than success."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class ResourceFailed(Exception):
    """A resource handler's failure: its reason is the stack event's ResourceStatusReason."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def iso(t: datetime.datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Caller:
    """Whose credentials the stack's calls carry: the caller's own, or a session of the stack's role."""

    access_key: str
    secret: str
    token: str | None


def clients(caller: Caller, region: str) -> Callable[[str], Any]:
    """boto3 clients of the local cloud's own endpoint, signed as `caller`, retrying throttling as
    CloudFormation's handlers do."""
    import boto3
    from botocore.config import Config
    from moto.settings import moto_server_port

    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = Typed(boto3.client(
                service, region_name=region, endpoint_url=f"http://localhost:{moto_server_port()}",
                aws_access_key_id=caller.access_key, aws_secret_access_key=caller.secret,
                aws_session_token=caller.token,
                config=Config(retries={"mode": "standard", "max_attempts": 6}, s3={"addressing_style": "path"},
                              connect_timeout=60, read_timeout=120)))
        return made[service]

    return client


class Typed:
    """A boto3 client whose calls take a template's values as CloudFormation passes them: a Ref to a
    Number parameter is the string "5", which the service's integer member takes as 5 (the resource
    schema's types), "true" a boolean, a number a string where the member is one."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        model = self.client.meta.service_model
        operation = next((op for op in model.operation_names
                          if self.client.meta.method_to_api_mapping.get(name) == op), None)
        if operation is None:
            return method
        shape = model.operation_model(operation).input_shape

        def call(**kw: Any) -> Any:
            return method(**coerce(shape, kw))

        return call


def coerce(shape: Any, value: Any) -> Any:
    if shape is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: coerce(shape.members.get(k), v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [coerce(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: coerce(shape.value, v) for k, v in value.items()}
    if kind in ("integer", "long") and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind in ("float", "double") and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if kind == "string" and isinstance(value, bool):
        return str(value).lower()
    return value


def failure(e: Exception) -> str:
    """A resource's failure as CloudFormation words it: the handler's message, then the service's."""
    from botocore.exceptions import ClientError

    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return (f"Resource handler returned message: \"{err.get('Message', '')}\" (Service: "
                f"{e.operation_name}, Status Code: {status}, Error Code: {err.get('Code')})")
    return str(e)


def parse_template(body: str) -> dict:
    try:
        doc = json.loads(body)
    except ValueError:
        import yaml

        try:
            doc = yaml.safe_load(body)
        except yaml.YAMLError as e:
            raise StackError("ValidationError", f"Template format error: YAML not well-formed. {e}") from None
    if not isinstance(doc, dict):
        raise StackError("ValidationError", "Template format error: JSON not well-formed.")
    if not isinstance(doc.get("Resources"), dict) or not doc["Resources"]:
        raise StackError("ValidationError", "Template format error: At least one Resources member must be defined.")
    return doc


def parameter_values(template: dict, given: dict[str, str], previous: dict[str, str] | None = None) -> dict[str, str]:
    """The stack's parameter values, checked as CloudFormation checks them
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html)."""
    declared = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise StackError("ValidationError", f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    values: dict[str, str] = {}
    missing = []
    for name, spec in declared.items():
        if name in given:
            value = given[name]
        elif previous is not None and name in previous:
            value = previous[name]
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            missing.append(name)
            continue
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise StackError("ValidationError", f"Parameter '{name}' must be one of AllowedValues")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and spec.get("Type", "String") == "String" and not re.fullmatch(pattern, value):
            raise StackError("ValidationError", f"Parameter '{name}' must match pattern {pattern}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise StackError("ValidationError", f"Parameter '{name}' must be a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise StackError("ValidationError",
                                 f"Parameter '{name}' must be a number not less than {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise StackError("ValidationError",
                                 f"Parameter '{name}' must be a number not greater than {spec['MaxValue']}")
        values[name] = value
    if missing:
        raise StackError("ValidationError", f"Parameters: [{', '.join(missing)}] must have values")
    return values


class Scope:
    """What a template's intrinsic functions resolve against: parameters, pseudo parameters,
    conditions, and the resources made so far."""

    def __init__(self, stack: Stack, template: dict) -> None:
        self.stack, self.template = stack, template
        self.refs: dict[str, Any] = {
            "AWS::AccountId": stack.account, "AWS::Region": stack.region, "AWS::Partition": "aws",
            "AWS::StackName": stack.name, "AWS::StackId": stack.stack_id, "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        self.refs.update(stack.parameters)
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise StackError("ValidationError", f"Template format error: Unresolved condition: {name}")
            self.conditions[name] = bool(self.resolve(spec))
        return self.conditions[name]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attr = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.stack.attribute(name, self.resolve(attr))
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                return self.resolve(sep).join(str(x) for x in self.resolve(items))
            if key == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if key == "Fn::Split":
                sep, text = self.resolve(arg)
                return text.split(sep)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg)[0]
            if key == "Fn::And":
                return all(self.resolve(arg))
            if key == "Fn::Or":
                return any(self.resolve(arg))
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Contains":
                items, value = self.resolve(arg)
                return value in items
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg), separators=(",", ":"))
            if key == "Fn::Base64":
                import base64

                return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        out = {}
        for k, v in node.items():
            value = self.resolve(v)
            if value is not NO_VALUE:
                out[k] = value
        return out

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.refs:
            return self.refs[name]
        return self.stack.reference(name)

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def one(m: re.Match) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(variables[inner])
            if "." in inner and not inner.startswith("AWS::"):
                name, attr = inner.split(".", 1)
                return str(self.stack.attribute(name, attr))
            value = self.ref(inner)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)


NO_VALUE = object()


def references(node: Any) -> set[str]:
    """The logical IDs a resource's definition names (Ref, Fn::GetAtt, Fn::Sub's ${X} and ${X.Attr})."""
    found: set[str] = set()
    if isinstance(node, list):
        for x in node:
            found |= references(x)
    elif isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v.split(".", 1)[0] if isinstance(v, str) else v[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found |= {m.split(".", 1)[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if not isinstance(v, str):
                    found |= references(v[1])
            else:
                found |= references(v)
    return found


def transformed(template: dict, parameters: dict[str, str], stack: Stack) -> dict:
    """The template after its transforms: the SAM transform, as AWS runs it."""
    transforms = template.get("Transform")
    names = transforms if isinstance(transforms, list) else [transforms] if transforms else []
    if not names:
        return template
    for name in names:
        if name != SAM:
            raise StackError("ValidationError", f"Template format error: Unsupported transform: {name}")
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", stack.region)
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict:
            return {}

    try:
        return transform(json.loads(json.dumps(template)), parameters, NoManagedPolicies())
    except InvalidDocumentException as e:
        causes = " ".join(str(c) for c in e.causes)
        raise StackError("ValidationError", f"Transform {SAM} failed with: {causes}") from None


IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group", "AWS::IAM::Policy",
             "AWS::IAM::ManagedPolicy", "AWS::IAM::InstanceProfile", "AWS::IAM::AccessKey")


NAMED_IAM = {"AWS::IAM::Role": "RoleName", "AWS::IAM::User": "UserName", "AWS::IAM::Group": "GroupName",
             "AWS::IAM::ManagedPolicy": "ManagedPolicyName", "AWS::IAM::InstanceProfile": "InstanceProfileName"}


def needed_capabilities(template: dict) -> list[str]:
    """CAPABILITY_IAM for IAM resources, CAPABILITY_NAMED_IAM for named ones
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html)."""
    needed: list[str] = []
    for resource in template["Resources"].values():
        kind = resource.get("Type")
        if kind in IAM_TYPES:
            named = NAMED_IAM.get(kind) in (resource.get("Properties") or {})
            need = "CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM"
            if need not in needed:
                needed.append(need)
    return ["CAPABILITY_NAMED_IAM"] if "CAPABILITY_NAMED_IAM" in needed else needed


def assert_rules(template: dict, scope: Scope) -> None:
    """The template's Rules: each assertion whose rule applies must hold
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/rules-section-structure.html)."""
    for name, rule in (template.get("Rules") or {}).items():
        applies = rule.get("RuleCondition")
        if applies is not None and not scope.resolve(applies):
            continue
        for assertion in rule.get("Assertions", []):
            if not scope.resolve(assertion["Assert"]):
                raise StackError("ValidationError", assertion.get("AssertDescription") or f"Template rule {name} failed")


@dataclass
class Resource:
    logical_id: str
    kind: str
    status: str = ""
    reason: str | None = None
    physical_id: str | None = None
    attributes: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)
    updated: datetime.datetime = field(default_factory=now)


@dataclass
class Event:
    stack: Stack
    logical_id: str
    physical_id: str
    kind: str
    status: str
    reason: str | None
    at: datetime.datetime = field(default_factory=now)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class Stack:
    def __init__(self, account: str, region: str, name: str) -> None:
        self.account, self.region, self.name = account, region, name
        self.stack_id = f"arn:aws:cloudformation:{region}:{account}:stack/{name}/{uuid.uuid4()}"
        self.status = "CREATE_IN_PROGRESS"
        self.reason: str | None = None
        self.created = now()
        self.updated: datetime.datetime | None = None
        self.deleted: datetime.datetime | None = None
        self.body = ""
        self.template: dict = {}
        self.processed: dict = {}
        self.parameters: dict[str, str] = {}
        self.capabilities: list[str] = []
        self.tags: list[dict] = []
        self.role_arn: str | None = None
        self.disable_rollback = False
        self.description: str | None = None
        self.outputs: list[dict] = []
        self.resources: dict[str, Resource] = {}
        self.events: list[Event] = []
        self.done = threading.Event()

    def no_echo(self, name: str) -> bool:
        """Whether parameter `name` is NoEcho: its value is never shown."""
        spec = (self.template.get("Parameters") or {}).get(name) or {}
        return str(spec.get("NoEcho", "false")).lower() == "true"

    def event(self, logical_id: str, physical_id: str, kind: str, status: str, reason: str | None = None) -> None:
        with STACKS_LOCK:
            self.events.append(Event(self, logical_id, physical_id, kind, status, reason))

    def stack_event(self, status: str, reason: str | None = None) -> None:
        with STACKS_LOCK:
            self.status, self.reason = status, reason
        self.event(self.name, self.stack_id, "AWS::CloudFormation::Stack", status, reason)

    def reference(self, name: str) -> Any:
        found = self.resources.get(name)
        if found is None or found.physical_id is None:
            raise StackError("ValidationError", f"Template format error: Unresolved resource dependencies [{name}] "
                                                "in the Resources block of the template")
        return found.attributes.get("Ref", found.physical_id)

    def attribute(self, name: str, attr: str) -> Any:
        found = self.resources.get(name)
        if found is None or attr not in found.attributes:
            raise StackError("ValidationError", f"Template error: resource {name} does not support attribute "
                                                f"type {attr} in Fn::GetAtt")
        return found.attributes[attr]


def stack_or_error(account: str, region: str, name_or_id: str) -> Stack:
    stack = live(account, region, name_or_id)
    if stack is None:
        raise StackError("ValidationError", f"Stack with id {name_or_id} does not exist")
    return stack
