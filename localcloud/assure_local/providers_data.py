"""CloudFormation's resource providers for data and identity: SQS queues, IAM roles, log groups, KMS keys and aliases, S3 buckets and their policies, Organizations' resource policy."""

from __future__ import annotations

from typing import Any

from assure_local.provider_base import Context, Provider, as_json, gone, tags_list

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
