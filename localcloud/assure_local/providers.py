"""CloudFormation's resource handlers for the types the pipeline's templates use: each turns a
resource's properties into the service's API calls, made as the stack's caller through the local
cloud's front door (stacks.py), as AWS's handlers do. Properties follow the resource type reference
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-template-resource-type-ref.html);
each handler returns the resource's physical ID and its Fn::GetAtt attributes (with "Ref" where Ref
returns something other than the physical ID).

Names a template leaves out are generated as CloudFormation generates them: STACK-LOGICALID-SUFFIX,
cut to the service's limit. A property change that AWS documents as "Replacement" makes a new
resource and deletes the old one once the update succeeds; others update in place.
"""

from __future__ import annotations

import json
from typing import Any

from assure_local.provider_base import Context, Provider, as_json, gone, iam_not_yet, retried, tags_list
from assure_local.providers_data import Alias, Bucket, BucketPolicy, Key, LogGroup, OrganizationsResourcePolicy, Queue, Role

# ---------------------------------------------------------------------------------------------------


class Function(Provider):
    """AWS::Lambda::Function: Ref is the function's name."""

    replace_on = ("FunctionName",)

    def configuration(self, props: dict) -> dict:
        kw: dict[str, Any] = {}
        for k in ("Role", "Handler", "Runtime", "Timeout", "MemorySize", "Description", "Environment",
                  "LoggingConfig", "TracingConfig", "Layers", "EphemeralStorage", "DeadLetterConfig"):
            if k in props:
                kw[k] = props[k]
        if "KmsKeyArn" in props:
            kw["KMSKeyArn"] = props["KmsKeyArn"]
        return kw

    def code(self, props: dict) -> dict:
        code = props["Code"]
        if "ZipFile" in code:
            import io
            import zipfile

            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("index.py", code["ZipFile"])
            return {"ZipFile": buf.getvalue()}
        return {k: code[k] for k in ("S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri") if k in code}

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        lam = ctx.client("lambda")
        name = props.get("FunctionName") or ctx.name(64)
        kw = {"FunctionName": name, "Code": self.code(props), **self.configuration(props)}
        if "Architectures" in props:
            kw["Architectures"] = props["Architectures"]
        if props.get("Tags"):
            kw["Tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        made = retried(lambda: lam.create_function(**kw), iam_not_yet)
        if "ReservedConcurrentExecutions" in props:
            lam.put_function_concurrency(FunctionName=name,
                                         ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"]))
        return name, {"Arn": made["FunctionArn"]}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        lam = ctx.client("lambda")
        name = old.physical_id
        if props.get("Code") != old.properties.get("Code") or props.get("Architectures") != old.properties.get(
                "Architectures"):
            code = self.code(props)
            if "Architectures" in props:
                code["Architectures"] = props["Architectures"]
            lam.update_function_code(FunctionName=name, **code)
        config = self.configuration(props)
        if config != self.configuration(old.properties):
            retried(lambda: lam.update_function_configuration(FunctionName=name, **config), iam_not_yet)
        return name, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("lambda").delete_function(FunctionName=resource.physical_id)
        except Exception as e:
            if not gone(e, "ResourceNotFoundException"):
                raise


class EventSourceMapping(Provider):
    """AWS::Lambda::EventSourceMapping: Ref is the mapping's UUID."""

    replace_on = ("EventSourceArn", "StartingPosition")

    def settings(self, props: dict) -> dict:
        kw: dict[str, Any] = {}
        for k in ("BatchSize", "Enabled", "FunctionResponseTypes", "ScalingConfig", "MaximumBatchingWindowInSeconds",
                  "FilterCriteria"):
            if k in props:
                kw[k] = props[k]
        return kw

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        lam = ctx.client("lambda")
        kw = {"EventSourceArn": props["EventSourceArn"], "FunctionName": props["FunctionName"], **self.settings(props)}
        if "StartingPosition" in props:
            kw["StartingPosition"] = props["StartingPosition"]
        made = retried(lambda: lam.create_event_source_mapping(**kw), iam_not_yet)
        arn = made.get("EventSourceMappingArn") or (
            f"arn:aws:lambda:{ctx.region}:{ctx.account}:event-source-mapping:{made['UUID']}")
        return made["UUID"], {"Id": made["UUID"], "EventSourceMappingArn": arn}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        kw = {"FunctionName": props["FunctionName"], **self.settings(props)}
        retried(lambda: ctx.client("lambda").update_event_source_mapping(UUID=old.physical_id, **kw), iam_not_yet)
        return old.physical_id, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("lambda").delete_event_source_mapping(UUID=resource.physical_id)
        except Exception as e:
            if not gone(e, "ResourceNotFoundException"):
                raise


class StateMachine(Provider):
    """AWS::StepFunctions::StateMachine: Ref is the state machine's ARN. The definition comes from
    Definition, DefinitionString or DefinitionS3Location (read as the caller), with
    DefinitionSubstitutions' `${Name}` replaced."""

    replace_on = ("StateMachineName", "StateMachineType")

    def definition(self, ctx: Context, props: dict) -> str:
        if "Definition" in props:
            text = json.dumps(props["Definition"])
        elif "DefinitionString" in props:
            text = props["DefinitionString"]
        else:
            where = props["DefinitionS3Location"]
            kw = {"Bucket": where["Bucket"], "Key": where["Key"]}
            if "Version" in where:
                kw["VersionId"] = where["Version"]
            text = ctx.client("s3").get_object(**kw)["Body"].read().decode()
        for k, v in (props.get("DefinitionSubstitutions") or {}).items():
            text = text.replace("${" + k + "}", str(v))
        return text

    def settings(self, props: dict) -> dict:
        kw: dict[str, Any] = {}
        logging = props.get("LoggingConfiguration")
        if logging:
            kw["loggingConfiguration"] = {
                "level": logging.get("Level", "OFF"), "includeExecutionData": bool(logging.get("IncludeExecutionData")),
                "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                                 for d in logging.get("Destinations", [])]}
        if "TracingConfiguration" in props:
            kw["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
        return kw

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        name = props.get("StateMachineName") or ctx.name(80)
        kw: dict[str, Any] = {"name": name, "definition": self.definition(ctx, props), "roleArn": props["RoleArn"],
                              "type": props.get("StateMachineType", "STANDARD"), **self.settings(props)}
        if props.get("Tags"):
            kw["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in props["Tags"]]
        arn = ctx.client("stepfunctions").create_state_machine(**kw)["stateMachineArn"]
        return arn, {"Arn": arn, "Name": name}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        ctx.client("stepfunctions").update_state_machine(
            stateMachineArn=old.physical_id, definition=self.definition(ctx, props), roleArn=props["RoleArn"],
            **self.settings(props))
        return old.physical_id, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        ctx.client("stepfunctions").delete_state_machine(stateMachineArn=resource.physical_id)


class Rule(Provider):
    """AWS::Events::Rule: Ref is the rule's name (on the default bus)."""

    replace_on = ("Name", "EventBusName")

    def put(self, ctx: Context, name: str, props: dict) -> str:
        events = ctx.client("events")
        kw: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            kw["EventPattern"] = as_json(props["EventPattern"])
        for k in ("ScheduleExpression", "Description", "EventBusName", "RoleArn"):
            if k in props:
                kw[k] = props[k]
        arn = events.put_rule(**kw)["RuleArn"]
        targets = props.get("Targets") or []
        if targets:
            events.put_targets(Rule=name, Targets=targets, **(
                {"EventBusName": props["EventBusName"]} if "EventBusName" in props else {}))
        return arn

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        name = props.get("Name") or ctx.name(64)
        return name, {"Arn": self.put(ctx, name, props)}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        removed = {t["Id"] for t in old.properties.get("Targets") or []} - {t["Id"] for t in props.get("Targets") or []}
        if removed:
            ctx.client("events").remove_targets(Rule=old.physical_id, Ids=sorted(removed))
        return old.physical_id, {"Arn": self.put(ctx, old.physical_id, props)}

    def delete(self, ctx: Context, resource: Any) -> None:
        events = ctx.client("events")
        try:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=resource.physical_id).get("Targets", [])]
            if ids:
                events.remove_targets(Rule=resource.physical_id, Ids=ids)
            events.delete_rule(Name=resource.physical_id)
        except Exception as e:
            if not gone(e, "ResourceNotFoundException"):
                raise


class EventBusPolicy(Provider):
    """AWS::Events::EventBusPolicy, in its Action/Principal form: a statement of the bus's
    resource-based policy; Ref is the StatementId
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-events-eventbuspolicy.html)."""

    replace_on = ("StatementId", "EventBusName")

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        if "Statement" in props:
            raise ValueError("EventBusPolicy: the local cloud makes the Action/Principal form only")
        kw: dict[str, Any] = {"StatementId": props["StatementId"], "Action": props["Action"],
                              "Principal": str(props["Principal"])}
        if "EventBusName" in props:
            kw["EventBusName"] = props["EventBusName"]
        if "Condition" in props:
            kw["Condition"] = props["Condition"]
        ctx.client("events").put_permission(**kw)
        return props["StatementId"], {}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        return self.create(ctx, props)

    def delete(self, ctx: Context, resource: Any) -> None:
        kw: dict[str, Any] = {"StatementId": resource.physical_id}
        if "EventBusName" in resource.properties:
            kw["EventBusName"] = resource.properties["EventBusName"]
        try:
            ctx.client("events").remove_permission(**kw)
        except Exception as e:
            if not gone(e, "ResourceNotFoundException"):
                raise


class Topic(Provider):
    """AWS::SNS::Topic: Ref is the topic's ARN."""

    replace_on = ("TopicName", "FifoTopic")

    def attributes(self, props: dict) -> dict[str, str]:
        out = {}
        for k in ("DisplayName", "KmsMasterKeyId", "Policy", "FifoTopic", "ContentBasedDeduplication"):
            if k in props:
                v = props[k]
                out[k] = as_json(v) if isinstance(v, (dict, list)) else str(v).lower() if isinstance(v, bool) else str(v)
        return out

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        name = props.get("TopicName") or ctx.name(256 - (5 if props.get("FifoTopic") else 0)) + (
            ".fifo" if props.get("FifoTopic") else "")
        kw: dict[str, Any] = {"Name": name, "Attributes": self.attributes(props)}
        if props.get("Tags"):
            kw["Tags"] = tags_list(props["Tags"])
        arn = ctx.client("sns").create_topic(**kw)["TopicArn"]
        for sub in props.get("Subscription") or []:
            ctx.client("sns").subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"])
        return arn, {"TopicArn": arn, "TopicName": name}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        for k, v in self.attributes(props).items():
            if k != "FifoTopic" and self.attributes(old.properties).get(k) != v:
                ctx.client("sns").set_topic_attributes(TopicArn=old.physical_id, AttributeName=k, AttributeValue=v)
        return old.physical_id, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        ctx.client("sns").delete_topic(TopicArn=resource.physical_id)


class Subscription(Provider):
    """AWS::SNS::Subscription: Ref is the subscription's ARN; a new topic, protocol or endpoint is a
    new subscription (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sns-subscription.html)."""

    replace_on = ("TopicArn", "Protocol", "Endpoint", "Region")

    ATTRIBUTES = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")

    def attributes(self, props: dict) -> dict[str, str]:
        return {k: as_json(props[k]) if isinstance(props[k], (dict, list)) else str(props[k]).lower()
                if isinstance(props[k], bool) else str(props[k]) for k in self.ATTRIBUTES if k in props}

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        kw: dict[str, Any] = {"TopicArn": props["TopicArn"], "Protocol": props["Protocol"], "ReturnSubscriptionArn": True}
        if "Endpoint" in props:
            kw["Endpoint"] = props["Endpoint"]
        if self.attributes(props):
            kw["Attributes"] = self.attributes(props)
        arn = ctx.client("sns").subscribe(**kw)["SubscriptionArn"]
        return arn, {"Arn": arn}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        for k, v in self.attributes(props).items():
            if self.attributes(old.properties).get(k) != v:
                ctx.client("sns").set_subscription_attributes(SubscriptionArn=old.physical_id, AttributeName=k,
                                                              AttributeValue=v)
        return old.physical_id, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("sns").unsubscribe(SubscriptionArn=resource.physical_id)
        except Exception as e:
            if not gone(e, "NotFound", "NotFoundException"):
                raise


class TopicPolicy(Provider):
    """AWS::SNS::TopicPolicy: the policy of each of its topics; deleting it puts back SNS's default
    policy, the owner's account only (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sns-topicpolicy.html)."""

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        for topic in props["Topics"]:
            ctx.client("sns").set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                                                   AttributeValue=as_json(props["PolicyDocument"]))
        return ctx.name(256), {}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        for topic in set(old.properties.get("Topics") or []) - set(props["Topics"]):
            self.reset(ctx, topic)
        self.create(ctx, props)
        return old.physical_id, old.attributes

    def reset(self, ctx: Context, topic: str) -> None:
        owner = topic.split(":")[4]
        default = {"Version": "2008-10-17", "Id": "__default_policy_ID", "Statement": [{
            "Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
                       "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": topic, "Condition": {"StringEquals": {"AWS:SourceOwner": owner}}}]}
        try:
            ctx.client("sns").set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(default))
        except Exception as e:
            if not gone(e, "NotFound", "NotFoundException"):
                raise

    def delete(self, ctx: Context, resource: Any) -> None:
        for topic in resource.properties.get("Topics") or []:
            self.reset(ctx, topic)


PROVIDERS: dict[str, Provider] = {
    "AWS::SQS::Queue": Queue(),
    "AWS::IAM::Role": Role(),
    "AWS::Logs::LogGroup": LogGroup(),
    "AWS::KMS::Key": Key(),
    "AWS::KMS::Alias": Alias(),
    "AWS::S3::Bucket": Bucket(),
    "AWS::S3::BucketPolicy": BucketPolicy(),
    "AWS::Lambda::Function": Function(),
    "AWS::Lambda::EventSourceMapping": EventSourceMapping(),
    "AWS::StepFunctions::StateMachine": StateMachine(),
    "AWS::Events::Rule": Rule(),
    "AWS::Events::EventBusPolicy": EventBusPolicy(),
    "AWS::SNS::Topic": Topic(),
    "AWS::SNS::Subscription": Subscription(),
    "AWS::SNS::TopicPolicy": TopicPolicy(),
    "AWS::Organizations::ResourcePolicy": OrganizationsResourcePolicy(),
}
