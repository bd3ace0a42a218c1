"""CloudFormation as the local cloud runs it (stacks.py, providers.py): stacks made through the
services' APIs as the caller, with CloudFormation's own checks and Lambda's checks of what a template
makes; StackSets, and Organizations' invitations and membership events (organizations.py). Each test breaks one thing and sees CloudFormation refuse it, or fail the resource and roll
back. The engine calls the local cloud over HTTP, as it does in the server, so the tests serve the
extension on a loopback port in this process (stopped at the end).

From localcloud/: VENV/bin/python -m pytest tests/test_stacks.py"""

from __future__ import annotations

import functools
import io
import json
import os
import threading
import time
import unittest
import zipfile
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from assure_local import core, principals, scheduler

SERVER = None
ENDPOINT = ""
REGION = "us-east-1"

TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def setUpModule() -> None:
    global SERVER, ENDPOINT
    os.environ.setdefault("ASSURE_IAM", "on")
    os.environ["ASSURE_IAM_PROPAGATION_SECONDS"] = "0"
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: object, **kw: object) -> None:
            pass  # no access line per request

    from assure_local import extension, rules

    extension.patch_moto()
    principals.bootstrap_admin()
    rules.PROPAGATION["seconds"] = 0
    SERVER = make_server("127.0.0.1", 0, extension.Extension(DomainDispatcherApplication(create_backend_app)),
                         threaded=True, request_handler=Quiet)
    port = SERVER.server_address[1]
    os.environ["MOTO_PORT"] = str(port)
    ENDPOINT = f"http://127.0.0.1:{port}"
    threading.Thread(target=SERVER.serve_forever, daemon=True).start()


def tearDownModule() -> None:
    if SERVER is not None:
        SERVER.shutdown()


def client(service: str, key: str = "testing", secret: str = "testing") -> Any:
    from botocore.config import Config

    return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1},
                                                                    s3={"addressing_style": "path"}))


def ended(cf: Any, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stack = cf.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} still {stack['StackStatus']}")
        time.sleep(0.1)


def failures(cf: Any, name: str) -> list[tuple[str, str]]:
    return [(e["LogicalResourceId"], e.get("ResourceStatusReason", ""))
            for e in cf.describe_stack_events(StackName=name)["StackEvents"]
            if e["ResourceStatus"].endswith("_FAILED")]


def refused(call: Callable[[], Any], code: str) -> str:
    try:
        call()
    except ClientError as e:
        assert e.response["Error"]["Code"] == code, e.response
        return e.response["Error"]["Message"]
    raise AssertionError(f"not refused: expected {code}")


def template(resources: dict, **more: object) -> str:
    return json.dumps({"Resources": resources, **more})


def queue(name: Any, **props: object) -> dict:
    return {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name, **props}}


def package(bucket: str) -> dict:
    s3 = client("s3")
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError:
        pass
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    s3.put_object(Bucket=bucket, Key="code.zip", Body=buf.getvalue())
    return {"S3Bucket": bucket, "S3Key": "code.zip"}


def function_stack(tag: str, queue_props: dict, role_actions: list[str]) -> str:
    """A function fed by a queue, as the pipeline's: the queue, the role, the function (900 s), the
    event source mapping."""
    return template({
        "Queue": queue(f"{tag}-q", **queue_props),
        "Role": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": TRUST_LAMBDA,
            "Policies": [{"PolicyName": "queue", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": role_actions, "Resource": {"Fn::GetAtt": ["Queue", "Arn"]}}]}}]}},
        "Function": {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": f"{tag}-fn", "Runtime": "provided.al2023", "Handler": "bootstrap", "Timeout": 900,
            "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": package(f"{tag}-code")}},
        "Mapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]}, "FunctionName": {"Ref": "Function"},
            "BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 2}}},
    })


RECEIVE = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]


class Stacks(unittest.TestCase):
    def test_a_stack_is_made_through_the_apis_and_described(self) -> None:
        cf = client("cloudformation")
        body = template({"Q": queue({"Fn::Sub": "${Prefix}-made"}, VisibilityTimeout={"Ref": "Seconds"})},
                        Parameters={"Prefix": {"Type": "String"}, "Seconds": {"Type": "Number", "MinValue": 1}},
                        Outputs={"Url": {"Value": {"Ref": "Q"}}, "Arn": {"Value": {"Fn::GetAtt": ["Q", "Arn"]}}})
        cf.create_stack(StackName="made", TemplateBody=body, Parameters=[
            {"ParameterKey": "Prefix", "ParameterValue": "st"}, {"ParameterKey": "Seconds", "ParameterValue": "45"}])
        stack = ended(cf, "made")
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
        assert outputs["Arn"].endswith(":st-made"), outputs
        # Made through SQS's API: the queue is there, with the Number parameter's value as an integer.
        attrs = client("sqs").get_queue_attributes(QueueUrl=outputs["Url"], AttributeNames=["VisibilityTimeout"])
        assert attrs["Attributes"]["VisibilityTimeout"] == "45"
        resources = cf.list_stack_resources(StackName="made")["StackResourceSummaries"]
        assert [(r["LogicalResourceId"], r["ResourceStatus"]) for r in resources] == [("Q", "CREATE_COMPLETE")]
        assert refused(lambda: cf.create_stack(StackName="made", TemplateBody=body, Parameters=[
            {"ParameterKey": "Prefix", "ParameterValue": "x"}, {"ParameterKey": "Seconds", "ParameterValue": "5"}]),
            "AlreadyExistsException") == "Stack [made] already exists"
        # The same template and parameters: nothing to do.
        assert refused(lambda: cf.update_stack(StackName="made", UsePreviousTemplate=True, Parameters=[
            {"ParameterKey": "Prefix", "UsePreviousValue": True}, {"ParameterKey": "Seconds", "UsePreviousValue": True}]),
            "ValidationError") == "No updates are to be performed."
        # An update in place, then deletion.
        cf.update_stack(StackName="made", UsePreviousTemplate=True, Parameters=[
            {"ParameterKey": "Prefix", "UsePreviousValue": True}, {"ParameterKey": "Seconds", "ParameterValue": "60"}])
        assert ended(cf, "made")["StackStatus"] == "UPDATE_COMPLETE"
        attrs = client("sqs").get_queue_attributes(QueueUrl=outputs["Url"], AttributeNames=["VisibilityTimeout"])
        assert attrs["Attributes"]["VisibilityTimeout"] == "60"
        stack_id = stack["StackId"]
        cf.delete_stack(StackName="made")
        assert ended(cf, stack_id)["StackStatus"] == "DELETE_COMPLETE"
        assert refused(lambda: client("sqs").get_queue_url(QueueName="st-made"),
                                 "AWS.SimpleQueueService.NonExistentQueue") == "The specified queue does not exist."
        refused(lambda: cf.describe_stacks(StackName="made"), "ValidationError")

    def test_an_event_bus_policy_is_a_statement_of_the_bus_policy(self) -> None:
        # AWS::Events::EventBusPolicy (Action/Principal form): PutPermission, RemovePermission.
        cf, events = client("cloudformation"), client("events")
        body = template({"P": {"Type": "AWS::Events::EventBusPolicy", "Properties": {
            "StatementId": "from-other", "Action": "events:PutEvents", "Principal": "210987654321"}}})
        cf.create_stack(StackName="bus-policy", TemplateBody=body)
        assert ended(cf, "bus-policy")["StackStatus"] == "CREATE_COMPLETE"
        policy = json.loads(events.describe_event_bus()["Policy"])
        [statement] = [st for st in policy["Statement"] if st["Sid"] == "from-other"]
        assert statement["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
        assert statement["Action"] == "events:PutEvents"
        stack_id = cf.describe_stacks(StackName="bus-policy")["Stacks"][0]["StackId"]
        cf.delete_stack(StackName="bus-policy")
        assert ended(cf, stack_id)["StackStatus"] == "DELETE_COMPLETE"
        assert "from-other" not in (events.describe_event_bus().get("Policy") or "")

    def test_what_cloudformation_refuses_before_it_starts(self) -> None:
        cf = client("cloudformation")
        role = {"R": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "named", "AssumeRolePolicyDocument": TRUST_LAMBDA}}}
        assert refused(lambda: cf.create_stack(StackName="caps", TemplateBody=template(role)),
                                 "InsufficientCapabilitiesException") == "Requires capabilities : [CAPABILITY_NAMED_IAM]"
        assert refused(lambda: cf.create_stack(StackName="caps", TemplateBody=template(role),
                                                         Capabilities=["CAPABILITY_IAM"]),
                                 "InsufficientCapabilitiesException") == "Requires capabilities : [CAPABILITY_NAMED_IAM]"
        sam = json.dumps({"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Q": queue("sam-q")}})
        assert refused(lambda: cf.create_stack(StackName="sam", TemplateBody=sam), "InsufficientCapabilitiesException") == \
                         "Requires capabilities : [CAPABILITY_AUTO_EXPAND]"
        unknown = template({"X": {"Type": "AWS::EC2::VPC", "Properties": {}}})
        assert "Unrecognized resource types: [AWS::EC2::VPC]" in \
                      refused(lambda: cf.create_stack(StackName="unknown", TemplateBody=unknown), "ValidationError")
        params = template({"Q": queue("p-q")}, Parameters={"Mode": {"Type": "String", "AllowedValues": ["a", "b"]}})
        assert refused(lambda: cf.create_stack(StackName="params", TemplateBody=params), "ValidationError") == \
                         "Parameters: [Mode] must have values"
        assert refused(lambda: cf.create_stack(StackName="params", TemplateBody=params, Parameters=[
            {"ParameterKey": "Mode", "ParameterValue": "c"}]), "ValidationError") == "Parameter 'Mode' must be one of AllowedValues"
        ruled = template({"Q": queue("r-q")}, Rules={"OnlyA": {"Assertions": [{
            "Assert": {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]}, "AssertDescription": "eu-west-1 only"}]}})
        assert refused(lambda: cf.create_stack(StackName="ruled", TemplateBody=ruled), "ValidationError") == \
                         "eu-west-1 only"
        for name in ("caps", "sam", "unknown", "params", "ruled"):
            refused(functools.partial(cf.describe_stacks, StackName=name), "ValidationError")

    def test_a_resource_that_fails_rolls_the_stack_back_with_the_services_reason(self) -> None:
        cf = client("cloudformation")
        # The second queue's name is refused by SQS (too long): the first queue goes again.
        body = template({"Good": queue("rb-good"),
                         "Bad": {**queue("x" * 81), "DependsOn": "Good"}})
        cf.create_stack(StackName="rolled", TemplateBody=body)
        stack = ended(cf, "rolled")
        assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
        failed = failures(cf, "rolled")
        assert [f[0] for f in failed] == ["Bad"], failed
        assert "Resource handler returned message" in failed[0][1]
        assert "Service: CreateQueue" in failed[0][1]
        refused(lambda: client("sqs").get_queue_url(QueueName="rb-good"), "AWS.SimpleQueueService.NonExistentQueue")
        assert refused(lambda: cf.update_stack(StackName="rolled", TemplateBody=body), "ValidationError") == \
                         f"Stack:{stack['StackId']} is in ROLLBACK_COMPLETE state and can not be updated."
        cf.delete_stack(StackName="rolled")
        assert ended(cf, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"

    def test_the_stack_calls_as_its_caller_so_iam_decides(self) -> None:
        iam = client("iam")
        iam.create_user(UserName="stacker")
        iam.put_user_policy(UserName="stacker", PolicyName="only-stacks-and-queues", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["cloudformation:*", "sqs:*"],
                                                     "Resource": "*"}]}))
        key = iam.create_access_key(UserName="stacker")["AccessKey"]
        cf = client("cloudformation", key["AccessKeyId"], key["SecretAccessKey"])
        body = template({"Q": queue("caller-q"), "R": {"Type": "AWS::IAM::Role", "DependsOn": "Q", "Properties": {
            "AssumeRolePolicyDocument": TRUST_LAMBDA}}})
        cf.create_stack(StackName="as-caller", TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
        assert ended(cf, "as-caller")["StackStatus"] == "ROLLBACK_COMPLETE"
        failed = failures(cf, "as-caller")
        assert failed[0][0] == "R"
        assert "iam:CreateRole" in failed[0][1]
        assert "AccessDenied" in failed[0][1]
        refused(lambda: client("sqs").get_queue_url(QueueName="caller-q"), "AWS.SimpleQueueService.NonExistentQueue")


class LambdaChecks(unittest.TestCase):
    """Lambda's checks of an SQS event source mapping
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html)."""

    def test_a_queue_whose_visibility_timeout_is_below_the_functions_timeout_is_refused(self) -> None:
        cf = client("cloudformation")
        cf.create_stack(StackName="short-visibility", TemplateBody=function_stack("sv", {}, RECEIVE),
                        Capabilities=["CAPABILITY_IAM"])
        assert ended(cf, "short-visibility")["StackStatus"] == "ROLLBACK_COMPLETE"
        failed = failures(cf, "short-visibility")
        assert failed[0][0] == "Mapping", failed
        assert "Queue visibility timeout: 30 seconds is less than Function timeout: 900 seconds" in failed[0][1]
        assert "InvalidParameterValueException" in failed[0][1]
        # The queue's visibility raised to the function's timeout: the same stack is made.
        cf.delete_stack(StackName="short-visibility")
        cf.create_stack(StackName="long-visibility", TemplateBody=function_stack("lv", {"VisibilityTimeout": 900}, RECEIVE),
                        Capabilities=["CAPABILITY_IAM"])
        assert ended(cf, "long-visibility")["StackStatus"] == "CREATE_COMPLETE", failures(cf, "long-visibility")
        mappings = client("lambda").list_event_source_mappings(FunctionName="lv-fn")["EventSourceMappings"]
        assert [(m["BatchSize"], m["ScalingConfig"], m["FunctionResponseTypes"]) for m in mappings] == \
                         [(1, {"MaximumConcurrency": 2}, ["ReportBatchItemFailures"])]

    def test_a_role_that_may_not_receive_from_the_queue_is_refused(self) -> None:
        cf = client("cloudformation")
        cf.create_stack(StackName="no-receive", TemplateBody=function_stack(
            "nr", {"VisibilityTimeout": 900}, ["sqs:DeleteMessage", "sqs:GetQueueAttributes"]),
            Capabilities=["CAPABILITY_IAM"])
        assert ended(cf, "no-receive")["StackStatus"] == "ROLLBACK_COMPLETE"
        failed = failures(cf, "no-receive")
        assert failed[0][0] == "Mapping", failed
        assert "The provided execution role does not have permissions to call ReceiveMessage on SQS" in failed[0][1]

    def test_a_role_lambda_may_not_assume_is_refused(self) -> None:
        iam = client("iam")
        iam.create_role(RoleName="not-for-lambda", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}))
        message = refused(lambda: client("lambda").create_function(
            FunctionName="untrusted", Runtime="provided.al2023", Handler="bootstrap",
            Role="arn:aws:iam::123456789012:role/not-for-lambda", Code=package("untrusted-code")),
            "InvalidParameterValueException")
        assert message == "The role defined for the function cannot be assumed by Lambda."


def eventually(check: Callable[[], Any], timeout: float = 15) -> Any:
    """`check()`'s first truthy value, asked every 0.1 s for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def session(account: str) -> dict:
    creds = client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                                      RoleSessionName="test")["Credentials"]
    return creds


class StackSets(unittest.TestCase):
    """Service-managed StackSets (stacksets.py): how the member role reaches the organization."""

    def test_a_service_managed_stack_set_reaches_every_account_but_the_management_account(self) -> None:
        from assure_local import stacksets

        org = client("organizations")
        try:
            org.create_organization(FeatureSet="ALL")
        except ClientError:
            pass
        cf = client("cloudformation")
        body = template({"Q": queue({"Fn::Sub": "ss-${AWS::AccountId}"})})
        create = lambda: cf.create_stack_set(
            StackSetName="everywhere", TemplateBody=body, PermissionModel="SERVICE_MANAGED",
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False})
        enabled = {s["ServicePrincipal"] for s in org.list_aws_service_access_for_organization()["EnabledServicePrincipals"]}
        if stacksets.SERVICE not in enabled:
            assert refused(create, "ValidationError") == \
                             "You must enable organizations access to operate a service managed stack set"
            org.enable_aws_service_access(ServicePrincipal=stacksets.SERVICE)
        member = org.create_account(AccountName="ss-member", Email="ss-member@example.com")["CreateAccountStatus"]["AccountId"]
        creds = session(member)
        as_member = boto3.client("cloudformation", endpoint_url=ENDPOINT, region_name=REGION,
                                 aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                 aws_session_token=creds["SessionToken"])
        assert refused(lambda: as_member.create_stack_set(
            StackSetName="mine", TemplateBody=body, PermissionModel="SERVICE_MANAGED",
            AutoDeployment={"Enabled": True, "RetainStacksOnAccountRemoval": False}), "ValidationError") == \
            "You must be the master or delegated admin account of an organization before operating a SERVICE_MANAGED stack set"

        def made() -> bool:
            try:
                create()
                return True
            except ClientError as e:
                if "enable organizations access" in str(e):
                    return False  # trusted access reaches StackSets a moment later
                raise
        assert eventually(made)
        root = org.list_roots()["Roots"][0]["Id"]
        op = cf.create_stack_instances(StackSetName="everywhere", Regions=[REGION],
                                       DeploymentTargets={"OrganizationalUnitIds": [root]})["OperationId"]
        def finished() -> str | None:
            s = cf.describe_stack_set_operation(StackSetName="everywhere", OperationId=op)["StackSetOperation"]["Status"]
            return s if s != "RUNNING" else None

        status = eventually(finished)
        assert status == "SUCCEEDED"
        instances = {i["Account"]: i for i in cf.list_stack_instances(StackSetName="everywhere")["Summaries"]}
        assert instances[member]["Status"] == "CURRENT"
        assert "123456789012" not in instances, "StackSets does not deploy to the management account"
        sqs = boto3.client("sqs", endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                           aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
        assert sqs.get_queue_url(QueueName=f"ss-{member}")["QueueUrl"]

        # Automatic deployment: an account that joins later gets its instance, after StackSets' delay.
        stacksets.DELAY_SECONDS["seconds"] = 0.5
        later = org.create_account(AccountName="ss-later", Email="ss-later@example.com")["CreateAccountStatus"]["AccountId"]
        first = {i["Account"]: i for i in cf.list_stack_instances(StackSetName="everywhere")["Summaries"]}
        assert first.get(later, {}).get("Status") != "CURRENT", "not at once"
        current = eventually(lambda: any(i["Account"] == later and i["Status"] == "CURRENT"
                                         for i in cf.list_stack_instances(StackSetName="everywhere")["Summaries"]))
        assert current



def owner(account: str) -> dict:
    """Keys of the owner of an account outside any organization (/assure-api/account-owner)."""
    import urllib.request

    req = urllib.request.Request(f"{ENDPOINT}/assure-api/account-owner", method="POST",
                                 data=json.dumps({"account": account}).encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        keys = json.loads(r.read())
    return {"AccessKeyId": keys["AccessKeyId"], "SecretAccessKey": keys["SecretAccessKey"], "SessionToken": None}


def as_creds(service: str, creds: dict) -> Any:
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds.get("SessionToken"))


class Membership(unittest.TestCase):
    """Invitations and the membership events (organizations.py), and EventBridge's state machine
    targets (events.invoke_states): how an account that joins reaches a state machine."""

    def test_an_invited_account_joins_and_the_management_account_hears_of_every_join(self) -> None:

        core.TRANSITION["seconds"] = 0.5
        org = client("organizations")
        try:
            org.create_organization(FeatureSet="ALL")
        except ClientError:
            pass
        # A state machine the management account's rule starts for every membership event.
        iam = client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]}
        sfn = client("stepfunctions")
        states_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
                                                                "Action": "sts:AssumeRole"}]}
        machine_role = iam.create_role(RoleName="joins-machine", AssumeRolePolicyDocument=json.dumps(states_trust))["Role"]["Arn"]
        machine = sfn.create_state_machine(name="joins", roleArn=machine_role, definition=json.dumps(
            {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        for name, allowed in (("joins-start", True), ("joins-no-start", False)):
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
            if allowed:
                iam.put_role_policy(RoleName=name, PolicyName="start", PolicyDocument=json.dumps({
                    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "states:StartExecution", "Resource": machine}]}))
        # Earlier tests' membership events still on their way (CloudTrail's delay) would reach the
        # rule too: it is made once they have arrived.

        pending = [due for due, _, _ in list(scheduler._QUEUE) if due < time.monotonic() + 30]
        if pending:
            time.sleep(max(0.0, max(pending) - time.monotonic()) + 0.5)
        events = client("events")
        events.put_rule(Name="joins", EventPattern=json.dumps({
            "source": ["aws.organizations"], "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {"eventName": ["CreateAccountResult", "AccountJoinedOrganization"]}}))
        events.put_targets(Rule="joins", Targets=[
            {"Id": "ok", "Arn": machine, "RoleArn": "arn:aws:iam::123456789012:role/joins-start"},
            {"Id": "denied", "Arn": machine, "RoleArn": "arn:aws:iam::123456789012:role/joins-no-start"}])

        # An account outside any organization is invited; only it may answer.
        outsider = "210987654321"
        keys = owner(outsider)
        handshake = org.invite_account_to_organization(Target={"Id": outsider, "Type": "ACCOUNT"})["Handshake"]
        assert (handshake["Action"], handshake["State"]) == ("INVITE", "OPEN")
        refused(lambda: org.invite_account_to_organization(Target={"Id": outsider, "Type": "ACCOUNT"}),
                "DuplicateHandshakeException")
        theirs = as_creds("organizations", keys)
        assert [h["Id"] for h in theirs.list_handshakes_for_account()["Handshakes"]] == [handshake["Id"]]
        created = org.create_account(AccountName="joins-created", Email="joins-created@example.com")["CreateAccountStatus"]["AccountId"]
        member = as_creds("organizations", session(created))
        refused(lambda: member.accept_handshake(HandshakeId=handshake["Id"]), "AccessDeniedException")
        refused(lambda: member.invite_account_to_organization(Target={"Id": "210987654322", "Type": "ACCOUNT"}),
                "AccessDeniedException")
        accepted = theirs.accept_handshake(HandshakeId=handshake["Id"])["Handshake"]
        assert accepted["State"] == "ACCEPTED"
        refused(lambda: theirs.accept_handshake(HandshakeId=handshake["Id"]), "InvalidHandshakeTransitionException")
        joined = org.describe_account(AccountId=outsider)["Account"]
        assert (joined["JoinedMethod"], joined["Status"]) == ("INVITED", "ACTIVE")
        refused(lambda: org.invite_account_to_organization(Target={"Id": outsider, "Type": "ACCOUNT"}),
                "DuplicateAccountException")
        refused(lambda: client("sts").assume_role(RoleArn=f"arn:aws:iam::{outsider}:role/OrganizationAccountAccessRole",
                                                  RoleSessionName="test"), "AccessDenied")

        # The management account hears of both joins, after CloudTrail's delay; the role without
        # states:StartExecution starts nothing.
        def inputs() -> list[dict] | None:
            found = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
                     for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
            return found if len(found) >= 3 else None
        seen = eventually(inputs, timeout=20) or []
        time.sleep(1)
        assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 3, "one per event, one role"
        by_name = sorted((e["detail"]["eventName"], e["detail"]["serviceEventDetails"].get("joinedMethod", "")) for e in seen)
        assert by_name == [("AccountJoinedOrganization", "Created"), ("AccountJoinedOrganization", "Invited"),
                                   ("CreateAccountResult", "")]
        result = next(e for e in seen if e["detail"]["eventName"] == "CreateAccountResult")
        assert result["detail"]["serviceEventDetails"]["createAccountStatus"]["accountId"] == created
        assert (result["account"], result["region"], result["detail"]["eventType"]) == \
                         ("123456789012", "us-east-1", "AwsServiceEvent")
        failed = client("cloudwatch").get_metric_statistics(
            Namespace="AWS/Events", MetricName="FailedInvocations", Dimensions=[{"Name": "RuleName", "Value": "joins"}],
            StartTime=time.time() - 600, EndTime=time.time() + 60, Period=60, Statistics=["Sum"])["Datapoints"]
        assert sum(d["Sum"] for d in failed) == 3


class Delegation(unittest.TestCase):
    """What an organization's other accounts may call (organizations.py): the management account's
    calls never, the organization's reads as a service's delegated administrator, and what the
    resource-based delegation policy (made by CloudFormation) delegates."""

    def test_a_member_may_do_only_what_the_organization_delegates_to_it(self) -> None:
        org = client("organizations")
        try:
            org.create_organization(FeatureSet="ALL")
        except ClientError:
            pass
        member = org.create_account(AccountName="dl-member", Email="dl-member@example.com")["CreateAccountStatus"]["AccountId"]
        theirs = as_creds("organizations", session(member))
        assert theirs.describe_organization()["Organization"]["MasterAccountId"] == "123456789012"
        nothing = "You don't have permissions to access this resource."
        assert refused(lambda: theirs.list_accounts(), "AccessDeniedException") == nothing
        scp = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}]})
        create = lambda kind: theirs.create_policy(
            Name=f"dl-{kind}-{time.monotonic_ns()}", Description="d", Type=kind, Content=scp)
        refused(lambda: create("SERVICE_CONTROL_POLICY"), "AccessDeniedException")

        # A service's delegated administrator reads the organization, and changes nothing.
        org.enable_aws_service_access(ServicePrincipal="config.amazonaws.com")
        org.register_delegated_administrator(AccountId=member, ServicePrincipal="config.amazonaws.com")
        assert member in [a["Id"] for a in theirs.list_accounts()["Accounts"]]
        assert member in [a["Id"] for a in theirs.list_delegated_administrators()["DelegatedAdministrators"]]
        refused(lambda: create("SERVICE_CONTROL_POLICY"), "AccessDeniedException")
        for call in (lambda: theirs.enable_aws_service_access(ServicePrincipal="guardduty.amazonaws.com"),
                     lambda: theirs.register_delegated_administrator(AccountId=member, ServicePrincipal="guardduty.amazonaws.com"),
                     lambda: theirs.create_account(AccountName="x", Email="x@example.com"),
                     lambda: theirs.put_resource_policy(Content=json.dumps({"Statement": []}))):
            assert refused(call, "AccessDeniedException") == nothing

        # The management account delegates SCP management, as AWS's example does, with CloudFormation.
        root = f"arn:aws:iam::{member}:root"
        org_id = org.describe_organization()["Organization"]["Id"]
        content = {"Version": "2012-10-17", "Statement": [
            {"Sid": "Navigate", "Effect": "Allow", "Principal": {"AWS": root}, "Resource": "*",
             "Action": ["organizations:DescribeOrganization", "organizations:ListRoots", "organizations:ListAccounts"]},
            {"Sid": "ReadScps", "Effect": "Allow", "Principal": {"AWS": root}, "Resource": "*",
             "Action": ["organizations:DescribePolicy", "organizations:ListPolicies", "organizations:ListPoliciesForTarget"],
             "Condition": {"StringLikeIfExists": {"organizations:PolicyType": "SERVICE_CONTROL_POLICY"}}},
            {"Sid": "ManageScps", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": ["organizations:CreatePolicy", "organizations:DescribePolicy", "organizations:UpdatePolicy"],
             "Resource": [f"arn:aws:organizations::123456789012:policy/{org_id}/service_control_policy/*",
                          "arn:aws:organizations::aws:policy/service_control_policy/*"]}]}
        cf = client("cloudformation")
        cf.create_stack(StackName="delegation", TemplateBody=template(
            {"Delegation": {"Type": "AWS::Organizations::ResourcePolicy", "Properties": {"Content": content}}}))
        assert ended(cf, "delegation")["StackStatus"] == "CREATE_COMPLETE", failures(cf, "delegation")
        made = create("SERVICE_CONTROL_POLICY")["Policy"]["PolicySummary"]
        assert made["Type"] == "SERVICE_CONTROL_POLICY"
        assert theirs.describe_policy(PolicyId=made["Id"])["Policy"]["PolicySummary"]["Id"] == made["Id"]
        assert json.loads(theirs.describe_resource_policy()["ResourcePolicy"]["Content"]) == content
        refused(lambda: create("TAG_POLICY"), "AccessDeniedException")
        refused(lambda: theirs.attach_policy(PolicyId=made["Id"], TargetId=member), "AccessDeniedException")
        refused(lambda: theirs.register_delegated_administrator(AccountId=member, ServicePrincipal="guardduty.amazonaws.com"),
                "AccessDeniedException")

        # Deleting the stack takes the delegation back.
        cf.delete_stack(StackName="delegation")
        eventually(lambda: not [s for s in cf.list_stacks()["StackSummaries"]
                                if s["StackName"] == "delegation" and s["StackStatus"] != "DELETE_COMPLETE"])
        refused(lambda: org.describe_resource_policy(), "ResourcePolicyNotFoundException")
        refused(lambda: create("SERVICE_CONTROL_POLICY"), "AccessDeniedException")

if __name__ == "__main__":
    unittest.main()
