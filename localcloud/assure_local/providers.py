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
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Context:
    stack: Any  # stacks.Stack
    logical_id: str
    client: Callable[[str], Any]

    @property
    def region(self) -> str:
        return self.stack.region

    @property
    def account(self) -> str:
        return self.stack.account

    def name(self, limit: int, lower: bool = False) -> str:
        suffix = "".join(random.choices(string.ascii_uppercase + string.digits, k=12))
        base = f"{self.stack.name}-{self.logical_id}"[: limit - 13]
        name = f"{base}-{suffix}"
        return name.lower() if lower else name


def as_json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def retried(call: Callable[[], Any], transient: Callable[[Exception], bool]) -> Any:
    """`call`, again while it fails with what `transient` names (IAM's eventual consistency, which
    AWS's handlers wait out): for the local cloud's propagation delay and a few seconds more, after
    which the failure stands (a role that truly lacks the permission)."""
    from assure_local import rules

    deadline = time.monotonic() + rules.PROPAGATION["seconds"] + 5
    while True:
        try:
            return call()
        except Exception as e:
            if not transient(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def error_code(e: Exception) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Code", "")


def error_message(e: Exception) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Message", "")


def tags_list(tags: list | None, key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: t["Key"], value: t["Value"]} for t in tags or []]


class Provider:
    replace_on: tuple[str, ...] = ()

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        raise NotImplementedError

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        """An update in place (only called when no replacing property changed)."""
        self.delete(ctx, old)
        return self.create(ctx, props)

    def update(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        if any(old.properties.get(k) != props.get(k) for k in self.replace_on):
            # Replacement: the new one first, then the old one. A leftover is a cleanup failure on
            # AWS, not the update's, so a failed delete does not fail the update.
            made = self.create(ctx, props)
            try:
                self.delete(ctx, old)
            except Exception:  # noqa: BLE001
                pass
            return made
        return self.change(ctx, old, props)

    def delete(self, ctx: Context, resource: Any) -> None:
        raise NotImplementedError


def gone(e: Exception, *codes: str) -> bool:
    return error_code(e) in codes


# ---------------------------------------------------------------------------------------------------


SQS_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
                  "VisibilityTimeout", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
                  "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
                  "RedrivePolicy", "RedriveAllowPolicy")


class Queue(Provider):
    """AWS::SQS::Queue: Ref is the queue URL."""

    replace_on = ("QueueName", "FifoQueue")

    def attributes(self, props: dict) -> dict[str, str]:
        out = {}
        for k in SQS_ATTRIBUTES:
            if k in props:
                v = props[k]
                out[k] = as_json(v) if isinstance(v, (dict, list)) else str(v).lower() if isinstance(v, bool) else str(v)
        return out

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        name = props.get("QueueName") or ctx.name(80 - (5 if props.get("FifoQueue") else 0)) + (
            ".fifo" if props.get("FifoQueue") else "")
        kw: dict[str, Any] = {"QueueName": name, "Attributes": self.attributes(props)}
        if props.get("Tags"):
            kw["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        url = ctx.client("sqs").create_queue(**kw)["QueueUrl"]
        return url, {"Ref": url, "QueueUrl": url, "QueueName": name,
                     "Arn": f"arn:aws:sqs:{ctx.region}:{ctx.account}:{name}"}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        attrs = self.attributes(props)
        for k in SQS_ATTRIBUTES:
            if k in old.properties and k not in props and k not in ("FifoQueue",):
                attrs[k] = ""
        ctx.client("sqs").set_queue_attributes(QueueUrl=old.physical_id, Attributes=attrs)
        return old.physical_id, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("sqs").delete_queue(QueueUrl=resource.physical_id)
        except Exception as e:
            if not gone(e, "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise


class Role(Provider):
    """AWS::IAM::Role: Ref is the role name."""

    replace_on = ("RoleName", "Path")

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        iam = ctx.client("iam")
        name = props.get("RoleName") or ctx.name(64)
        kw: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": as_json(props["AssumeRolePolicyDocument"]),
                              "Path": props.get("Path", "/")}
        for k in ("Description", "MaxSessionDuration", "PermissionsBoundary"):
            if k in props:
                kw[k] = props[k]
        if props.get("Tags"):
            kw["Tags"] = tags_list(props["Tags"])
        role = iam.create_role(**kw)["Role"]
        self.policies(iam, name, {}, props)
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def policies(self, iam: Any, name: str, old: dict, props: dict) -> None:
        now = {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies") or []}
        before = {p["PolicyName"]: p["PolicyDocument"] for p in old.get("Policies") or []}
        for policy, doc in now.items():
            if before.get(policy) != doc:
                iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=as_json(doc))
        for policy in set(before) - set(now):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        attached, had = set(props.get("ManagedPolicyArns") or []), set(old.get("ManagedPolicyArns") or [])
        for arn in attached - had:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        for arn in had - attached:
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        iam = ctx.client("iam")
        name = old.physical_id
        if old.properties.get("AssumeRolePolicyDocument") != props["AssumeRolePolicyDocument"]:
            iam.update_assume_role_policy(RoleName=name, PolicyDocument=as_json(props["AssumeRolePolicyDocument"]))
        if old.properties.get("Description") != props.get("Description") or old.properties.get(
                "MaxSessionDuration") != props.get("MaxSessionDuration"):
            kw = {k: props[k] for k in ("Description", "MaxSessionDuration") if k in props}
            iam.update_role(RoleName=name, **kw)
        self.policies(iam, name, old.properties, props)
        return name, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        iam = ctx.client("iam")
        name = resource.physical_id
        try:
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy)
            for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
            iam.delete_role(RoleName=name)
        except Exception as e:
            if not gone(e, "NoSuchEntity"):
                raise


class LogGroup(Provider):
    """AWS::Logs::LogGroup: Ref is the log group's name; Arn ends in `:*`."""

    replace_on = ("LogGroupName",)

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        logs = ctx.client("logs")
        name = props.get("LogGroupName") or ctx.name(512)
        kw: dict[str, Any] = {"logGroupName": name}
        if props.get("KmsKeyId"):
            kw["kmsKeyId"] = props["KmsKeyId"]
        if props.get("Tags"):
            kw["tags"] = {t["Key"]: t["Value"] for t in props["Tags"]}
        logs.create_log_group(**kw)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        return name, {"Arn": f"arn:aws:logs:{ctx.region}:{ctx.account}:log-group:{name}:*"}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        logs = ctx.client("logs")
        name = old.physical_id
        if props.get("KmsKeyId") != old.properties.get("KmsKeyId"):
            if props.get("KmsKeyId"):
                logs.associate_kms_key(logGroupName=name, kmsKeyId=props["KmsKeyId"])
            else:
                logs.disassociate_kms_key(logGroupName=name)
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
        elif "RetentionInDays" in old.properties:
            logs.delete_retention_policy(logGroupName=name)
        return name, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("logs").delete_log_group(logGroupName=resource.physical_id)
        except Exception as e:
            if not gone(e, "ResourceNotFoundException"):
                raise


class Key(Provider):
    """AWS::KMS::Key: Ref is the key ID."""

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        kms = ctx.client("kms")
        kw: dict[str, Any] = {"Policy": as_json(props["KeyPolicy"])} if "KeyPolicy" in props else {}
        for k in ("Description", "KeyUsage", "KeySpec", "MultiRegion"):
            if k in props:
                kw[k] = props[k]
        if props.get("Tags"):
            kw["Tags"] = tags_list(props["Tags"], "TagKey", "TagValue")
        meta = kms.create_key(**kw)["KeyMetadata"]
        self.settings(kms, meta["KeyId"], {}, props)
        return meta["KeyId"], {"Arn": meta["Arn"], "KeyId": meta["KeyId"]}

    def settings(self, kms: Any, key: str, old: dict, props: dict) -> None:
        if bool(props.get("EnableKeyRotation")) != bool(old.get("EnableKeyRotation")):
            (kms.enable_key_rotation if props.get("EnableKeyRotation") else kms.disable_key_rotation)(KeyId=key)
        if props.get("Enabled", True) is False and old.get("Enabled", True) is not False:
            kms.disable_key(KeyId=key)
        elif props.get("Enabled", True) is not False and old.get("Enabled", True) is False:
            kms.enable_key(KeyId=key)

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        kms = ctx.client("kms")
        key = old.physical_id
        if "KeyPolicy" in props and props["KeyPolicy"] != old.properties.get("KeyPolicy"):
            kms.put_key_policy(KeyId=key, PolicyName="default", Policy=as_json(props["KeyPolicy"]))
        if props.get("Description") != old.properties.get("Description"):
            kms.update_key_description(KeyId=key, Description=props.get("Description", ""))
        self.settings(kms, key, old.properties, props)
        return key, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        days = int(resource.properties.get("PendingWindowInDays", 30))
        try:
            ctx.client("kms").schedule_key_deletion(KeyId=resource.physical_id, PendingWindowInDays=days)
        except Exception as e:
            if not gone(e, "NotFoundException", "KMSInvalidStateException"):
                raise


class Alias(Provider):
    """AWS::KMS::Alias: Ref is the alias name."""

    replace_on = ("AliasName",)

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        ctx.client("kms").create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        return props["AliasName"], {}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        ctx.client("kms").update_alias(AliasName=old.physical_id, TargetKeyId=props["TargetKeyId"])
        return old.physical_id, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("kms").delete_alias(AliasName=resource.physical_id)
        except Exception as e:
            if not gone(e, "NotFoundException"):
                raise


def lifecycle_rule(rule: dict) -> dict:
    """An AWS::S3::Bucket Rule as S3's PutBucketLifecycleConfiguration takes it."""
    out: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])}
    elif "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    transitions = rule.get("Transitions") or ([rule["Transition"]] if "Transition" in rule else [])
    if transitions:
        out["Transitions"] = [{"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
                              for t in transitions]
    return out


class Bucket(Provider):
    """AWS::S3::Bucket: Ref is the bucket name. Deleting a bucket that holds objects fails, as on AWS."""

    replace_on = ("BucketName",)

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        s3 = ctx.client("s3")
        name = props.get("BucketName") or ctx.name(63, lower=True)
        kw: dict[str, Any] = {"Bucket": name}
        if ctx.region != "us-east-1":
            kw["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        if "ObjectLockEnabled" in props:
            kw["ObjectLockEnabledForBucket"] = bool(props["ObjectLockEnabled"])
        s3.create_bucket(**kw)
        try:
            self.configure(s3, name, {}, props)
        except Exception:
            s3.delete_bucket(Bucket=name)
            raise
        domain = f"{name}.s3.amazonaws.com"
        return name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": domain,
                      "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com"}

    def configure(self, s3: Any, name: str, old: dict, props: dict) -> None:
        def changed(k: str) -> bool:
            return props.get(k) != old.get(k)

        if changed("OwnershipControls") and "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if changed("PublicAccessBlockConfiguration"):
            if "PublicAccessBlockConfiguration" in props:
                s3.put_public_access_block(Bucket=name,
                                           PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
            else:
                s3.delete_public_access_block(Bucket=name)
        if changed("BucketEncryption") and "BucketEncryption" in props:
            rules = []
            for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
                rule: dict[str, Any] = {}
                if "ServerSideEncryptionByDefault" in r:
                    rule["ApplyServerSideEncryptionByDefault"] = r["ServerSideEncryptionByDefault"]
                if "BucketKeyEnabled" in r:
                    rule["BucketKeyEnabled"] = bool(r["BucketKeyEnabled"])
                rules.append(rule)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if changed("VersioningConfiguration") and "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={
                "Status": props["VersioningConfiguration"]["Status"]})
        if changed("LifecycleConfiguration"):
            if "LifecycleConfiguration" in props:
                s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={
                    "Rules": [lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]})
            else:
                s3.delete_bucket_lifecycle(Bucket=name)
        if changed("Tags"):
            if props.get("Tags"):
                s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags_list(props["Tags"])})
            else:
                s3.delete_bucket_tagging(Bucket=name)
        if changed("LoggingConfiguration") and "LoggingConfiguration" in props:
            logging = props["LoggingConfiguration"]
            status = {"LoggingEnabled": {"TargetBucket": logging["DestinationBucketName"],
                                         "TargetPrefix": logging.get("LogFilePrefix", "")}}
            s3.put_bucket_logging(Bucket=name, BucketLoggingStatus=status)

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        self.configure(ctx.client("s3"), old.physical_id, old.properties, props)
        return old.physical_id, old.attributes

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("s3").delete_bucket(Bucket=resource.physical_id)
        except Exception as e:
            if not gone(e, "NoSuchBucket"):
                raise


class BucketPolicy(Provider):
    """AWS::S3::BucketPolicy: Ref is the bucket's name."""

    replace_on = ("Bucket",)

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        ctx.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=as_json(props["PolicyDocument"]))
        return props["Bucket"], {}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        return self.create(ctx, props)

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("s3").delete_bucket_policy(Bucket=resource.physical_id)
        except Exception as e:
            if not gone(e, "NoSuchBucket", "NoSuchBucketPolicy"):
                raise


class OrganizationsResourcePolicy(Provider):
    """AWS::Organizations::ResourcePolicy: the organization's resource-based delegation policy, made
    in the management account; Ref is its Id, Fn::GetAtt Arn and Id
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-organizations-resourcepolicy.html)."""

    def create(self, ctx: Context, props: dict) -> tuple[str, dict]:
        out = ctx.client("organizations").put_resource_policy(Content=as_json(props["Content"]))
        summary = out["ResourcePolicy"]["ResourcePolicySummary"]
        return summary["Id"], {"Arn": summary["Arn"], "Id": summary["Id"]}

    def change(self, ctx: Context, old: Any, props: dict) -> tuple[str, dict]:
        return self.create(ctx, props)

    def delete(self, ctx: Context, resource: Any) -> None:
        try:
            ctx.client("organizations").delete_resource_policy()
        except Exception as e:
            if not gone(e, "ResourcePolicyNotFoundException"):
                raise


def iam_not_yet(e: Exception) -> bool:
    """Lambda's answers while IAM has not propagated a role made a moment ago, which CloudFormation's
    Lambda handlers wait out."""
    message = error_message(e)
    return error_code(e) == "InvalidParameterValueException" and (
        "cannot be assumed by Lambda" in message or "execution role does not have permissions" in message)


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
    "AWS::Organizations::ResourcePolicy": OrganizationsResourcePolicy(),
}
