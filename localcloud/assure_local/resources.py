"""What a request acts on: the resources (with their ARNs and policies) each operation is authorized against, as the Service Authorization Reference lists them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlparse

from assure_local import core, iam, stack_store
from assure_local.aws_request import PREFIX, Req, arn_account, p, task_policy_arn
from assure_local.iam import Principal, Resource
from assure_local.policies import (
    ANY_MEMBER,
    _roles,
    _users,
    effective_policy,
    resource_types,
    role_by_arn,
    takes_resources,
)
from assure_local.principals import ROOT_KEYS, root_arn
from assure_local.root_users import root_virtual_device


def kms_key(region: str, account: str, key_id: str | None) -> Resource | None:
    from moto.kms.models import kms_backends

    if not key_id:
        return None
    if key_id.startswith("arn:"):
        account = arn_account(key_id) or account
        region = key_id.split(":")[3] or region
    backend = kms_backends[account][region]
    try:
        key = backend.keys[backend.any_id_to_key_id(key_id)]
    except Exception:  # noqa: BLE001 - moto raises KeyError or its NotFoundException: no such key
        return None
    # kms:ResourceAliases: every alias of the key, for every operation on the key, however the
    # request names it; multivalued ("alias/assure-alarms"), missing when the key has none
    # (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases).
    context = {"kms:ResourceAliases": sorted(key.aliases)} if key.aliases else {}
    return Resource(key.arn, account, iam.parse(key.policy), "kms", context)


def s3_bucket(name: str, key: str | None = None) -> Resource:
    from moto.s3.models import s3_backends

    arn = f"arn:aws:s3:::{name}" + (f"/{key}" if key else "")
    owner = s3_backends.bucket_accounts.get(name)
    if owner is None:
        return Resource(arn, None, None, "s3")
    partition, account = owner
    bucket = s3_backends[account][partition].buckets.get(name)
    return Resource(arn, account, iam.parse(bucket.policy) if bucket is not None else None, "s3")


def sns_topic(arn: str) -> Resource:
    from moto.sns.models import sns_backends

    account, region = arn_account(arn), arn.split(":")[3] if arn.count(":") >= 5 else ""
    topic = None
    if account and region:
        topic = sns_backends[account][region].topics.get(arn)
    return Resource(arn, account, iam.parse(topic.policy) if topic is not None else None, "sns")


def event_bus(region: str, account: str, name: str) -> Resource:
    """An event bus, by name or ARN, with its resource policy (which admits other accounts)."""
    from moto.events.models import events_backends

    arn = name if name.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{name}"
    owner, where = arn_account(arn), arn.split(":")[3] if arn.count(":") >= 5 else region
    bus = None
    try:
        bus = events_backends[owner][where].event_buses.get(arn.rsplit("/", 1)[-1]) if owner else None
    except KeyError:  # not a Region
        bus = None
    policy = getattr(bus, "policy", None)
    return Resource(arn, owner, iam.parse(policy) if policy else None, "events")


def queue_arn(url: str, region: str) -> str:
    parts = urlparse(url).path.strip("/").split("/")
    if len(parts) >= 2:
        return f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}"
    return "*"


# S3: the IAM action of each request, by method and sub-resource
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html).
S3_BUCKET = {
    "policy": ("GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"),
    "logging": ("GetBucketLogging", "PutBucketLogging", None),
    "versioning": ("GetBucketVersioning", "PutBucketVersioning", None),
    "encryption": ("GetEncryptionConfiguration", "PutEncryptionConfiguration", "PutEncryptionConfiguration"),
    "lifecycle": ("GetLifecycleConfiguration", "PutLifecycleConfiguration", "PutLifecycleConfiguration"),
    "publicAccessBlock": ("GetBucketPublicAccessBlock", "PutBucketPublicAccessBlock", "PutBucketPublicAccessBlock"),
    "ownershipControls": ("GetBucketOwnershipControls", "PutBucketOwnershipControls", "PutBucketOwnershipControls"),
    "acl": ("GetBucketAcl", "PutBucketAcl", None),
    "tagging": ("GetBucketTagging", "PutBucketTagging", "PutBucketTagging"),
    "location": ("GetBucketLocation", None, None),
    "notification": ("GetBucketNotification", "PutBucketNotification", None),
    "policyStatus": ("GetBucketPolicyStatus", None, None),
    "object-lock": ("GetBucketObjectLockConfiguration", "PutBucketObjectLockConfiguration", None),
    "versions": ("ListBucketVersions", None, None),
    "uploads": ("ListBucketMultipartUploads", None, None),
    "cors": ("GetBucketCORS", "PutBucketCORS", "PutBucketCORS"),
    "website": ("GetBucketWebsite", "PutBucketWebsite", "DeleteBucketWebsite"),
    "replication": ("GetReplicationConfiguration", "PutReplicationConfiguration", "PutReplicationConfiguration"),
    "accelerate": ("GetAccelerateConfiguration", "PutAccelerateConfiguration", None),
    "requestPayment": ("GetBucketRequestPayment", "PutBucketRequestPayment", None),
}


def s3_checks(req: Req) -> list[tuple[str, Resource]]:
    path = unquote(req.path).lstrip("/")
    bucket, _, key = path.partition("/")
    query = req.query or {}
    m = req.method
    if not bucket:
        return [("s3:ListAllMyBuckets", Resource("*"))]
    if key:
        res = s3_bucket(bucket, key)
        # An operation on one version of an object is its own action, `…Version…`
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html,
        # "Object operations": DeleteObject with versionId is s3:DeleteObjectVersion, GetObject
        # s3:GetObjectVersion, the tagging and ACL operations s3:…ObjectVersionTagging/Acl).
        v = "Version" if "versionId" in query else ""
        if "tagging" in query:
            verb = {"GET": "Get", "DELETE": "Delete"}.get(m, "Put")
            return [(f"s3:{verb}Object{v}Tagging", res)]
        if "acl" in query:
            return [(f"s3:{'Get' if m == 'GET' else 'Put'}Object{v}Acl", res)]
        if "retention" in query:
            return [("s3:GetObjectRetention" if m == "GET" else "s3:PutObjectRetention", res)]
        if "legal-hold" in query:
            return [("s3:GetObjectLegalHold" if m == "GET" else "s3:PutObjectLegalHold", res)]
        if "attributes" in query:
            return [(f"s3:GetObject{v}Attributes", res)]
        if "restore" in query:
            return [("s3:RestoreObject", res)]
        if m in ("GET", "HEAD"):
            return [(f"s3:GetObject{v}", res)]
        if m == "DELETE" and "uploadId" not in query:
            return [(f"s3:DeleteObject{v}", res)]
        if m == "DELETE":
            return [("s3:AbortMultipartUpload", res)]
        checks = [("s3:PutObject", res)]
        source = (req.headers or {}).get("x-amz-copy-source")
        if source:
            sb, _, sk = unquote(source).lstrip("/").partition("/")
            checks.append(("s3:GetObject", s3_bucket(sb, sk.split("?")[0])))
        return checks
    res = s3_bucket(bucket)
    for sub, (get, put, delete) in S3_BUCKET.items():
        if sub in query:
            name = {"GET": get, "HEAD": get, "PUT": put, "POST": put, "DELETE": delete}.get(m)
            return [(f"s3:{name}", res)] if name else []
    if m == "PUT":
        # A bucket being created is the caller's own: only its identity's policies decide. A name
        # another account holds is S3's answer after that (409 BucketAlreadyExists), not a denial.
        res = Resource(f"arn:aws:s3:::{bucket}", None)
        checks = [("s3:CreateBucket", res)]
        # CreateBucket with Object Ownership needs s3:PutBucketOwnershipControls too
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html, "Permissions").
        if (req.headers or {}).get("x-amz-object-ownership"):
            checks.append(("s3:PutBucketOwnershipControls", res))
        return checks
    if m == "DELETE":
        return [("s3:DeleteBucket", res)]
    if m == "POST" and "delete" in query:
        return [("s3:DeleteObject", s3_bucket(bucket, "*"))]
    return [("s3:ListBucket", res)]


# Services whose resource is named by one request parameter: (its names, the ARN's resource part).
NAMED = {
    "events": (("Name", "Rule"), "rule/{}"),
    "firehose": (("DeliveryStreamName",), "deliverystream/{}"),
    "access-analyzer": (("analyzerName",), "analyzer/{}"),
    "guardduty": (("detectorId",), "detector/{}"),
}


def resources_for(req: Req, account: str, principal: Principal | None = None) -> list[tuple[str, Resource]]:
    """(action, resource) pairs a request needs, with resource policies where AWS consults them.
    `principal` (who asks) matters to IAM's operations on a user that omit UserName, which "defaults
    to the principal making the request" (e.g. https://docs.aws.amazon.com/IAM/latest/APIReference/API_DeleteLoginProfile.html)."""
    if req.service == "s3":
        return s3_checks(req)
    prefix = PREFIX.get(req.service, req.service)
    op, prm, region = req.operation, req.params, req.region
    action = f"{prefix}:{op}"

    def arn(service: str, rest: str, reg: str | None = None, acct: str | None = None) -> Resource:
        return Resource(f"arn:aws:{service}:{region if reg is None else reg}:{acct or account}:{rest}", acct or account)

    res: list[Resource] = []
    if prefix == "sts":
        if op in ("AssumeRole",):
            role_arn = p(prm, "RoleArn") or ""
            role = role_by_arn(role_arn)
            trust = iam.parse(role.assume_role_policy_document) if role is not None else None
            return [(action, Resource(role_arn, arn_account(role_arn), trust or {"Statement": []}, "trust"))]
        if op == "AssumeRoot":
            # sts:AssumeRoot on the member account's root user (resource type root-user,
            # arn:aws:iam::ACCOUNT:root), with sts:TaskPolicyArn
            # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html).
            # The caller's identity-based policy decides: the member's root user has no resource-based
            # policy to consult, so the resource is treated as the caller's own.
            target = str(p(prm, "TargetPrincipal") or "")
            target = arn_account(target) or target
            task = task_policy_arn(prm)
            ctx = {"sts:TaskPolicyArn": task} if task else {}
            return [(action, Resource(f"arn:aws:iam::{target}:root", None, context=ctx))]
        return []  # GetCallerIdentity and friends need no permission
    if prefix == "iam":

        name = p(prm, "RoleName")
        root_user = resource_arn(req, principal)
        if root_user is not None:
            # The root user's own credentials (root.py): its password, access keys, signing
            # certificates and MFA devices, on resource arn:aws:iam::ACCOUNT:root, which the root task
            # policies of centralized root access spare (NotResource arn:aws:iam::*:root).
            res = [Resource(root_user, account)]
        elif op == "CreateServiceLinkedRole":
            service = p(prm, "AWSServiceName") or ""
            res = [Resource(f"arn:aws:iam::{account}:role/aws-service-role/{service}/*", account)]
        elif name:
            role = next((r for r in _roles(account) if r.name == name), None)
            path = (p(prm, "Path") or "/") if role is None else role.path
            res = [Resource(f"arn:aws:iam::{account}:role{path}{name}", account)]
        elif p(prm, "UserName"):
            user_name = p(prm, "UserName")
            user = _users(account).get(user_name) if isinstance(user_name, str) else None
            path = (p(prm, "Path") or "/") if user is None else user.path
            res = [Resource(f"arn:aws:iam::{account}:user{path}{user_name}", account)]
        elif principal is not None and principal.kind == "user" and op in ROOT_USER_OPERATIONS:
            # An IAM user's request on itself.
            res = [Resource(principal.arn, account)]
        elif p(prm, "PolicyArn"):
            res = [Resource(p(prm, "PolicyArn"), account)]
    elif prefix == "kms":
        if op in ("CreateAlias", "UpdateAlias", "DeleteAlias"):
            # An alias operation needs the permission on the alias and on every key it affects: the key
            # it names (CreateAlias), the key it leaves and the one it goes to (UpdateAlias), the key
            # it leaves (DeleteAlias). On the alias no condition key applies ("You can't use condition
            # keys in a policy statement where the resource is an alias"); on a key,
            # kms:ResourceAliases holds that key's aliases before the change
            # (https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html).
            alias = p(prm, "AliasName") or ""
            out = [(action, arn("kms", alias))]
            keys = []
            if op != "CreateAlias":
                keys.append(kms_key(region, account, alias) if alias.startswith("alias/") else None)
            if op != "DeleteAlias":
                keys.append(kms_key(region, account, p(prm, "TargetKeyId")))
            seen = set()
            for key in keys:
                if key is not None and key.arn not in seen:
                    seen.add(key.arn)
                    out.append((action, key))
            return out
        key = kms_key(region, account, p(prm, "KeyId"))
        if p(prm, "KeyId") and key is None:
            # No such key or alias: KMS answers NotFoundException; there is nothing to authorize against.
            return []
        if key:
            res = [key]
        elif p(prm, "AliasName"):
            res = [arn("kms", p(prm, "AliasName"))]
    elif prefix == "lambda":
        res = lambda_resources(region, account, op, prm)
    elif prefix == "sqs":
        url = p(prm, "QueueUrl")
        if url:
            res = [Resource(queue_arn(url, region), account)]
        elif p(prm, "QueueName"):
            res = [arn("sqs", p(prm, "QueueName"))]
    elif prefix == "states":
        target = p(prm, "stateMachineArn", "executionArn")
        if target:
            res = [Resource(target, arn_account(target))]
        elif op == "CreateStateMachine":
            res = [arn("states", f"stateMachine:{p(prm, 'name')}")]
    elif prefix == "sns":
        topic = p(prm, "TopicArn")
        if op in SNS_SUBSCRIPTION_ON_TOPIC and isinstance(p(prm, "SubscriptionArn"), str):
            # A subscription's ARN is its topic's followed by `:ID`; changing or deleting it is
            # authorized on the topic, as AWS Control Tower's mandatory control on its notification
            # topic's subscriptions relies on (AWS-GR_SNS_SUBSCRIPTION_CHANGE_PROHIBITED, an SCP
            # denying sns:Subscribe and sns:Unsubscribe on arn:aws:sns:*:*:aws-controltower-SecurityNotifications:
            # https://docs.aws.amazon.com/controltower/latest/controlreference/mandatory-controls.html).
            # Only the subscription's or the topic's owner may do it (API_Unsubscribe), and the
            # topic's policy cannot grant it (sns-access-policy-language-api-permissions-reference):
            # no resource policy, no account to cross.
            sub = p(prm, "SubscriptionArn")
            parts = sub.split(":")
            topic_arn = ":".join(parts[:6]) if len(parts) >= 7 else sub
            return [(action, Resource(topic_arn, None))]
        if topic:
            res = [sns_topic(topic)]
        elif op == "CreateTopic":
            res = [sns_topic(f"arn:aws:sns:{region}:{account}:{p(prm, 'Name')}")]
    elif prefix == "cloudtrail":
        name = p(prm, "Name", "TrailName", "ResourceId")
        if isinstance(name, str) and name:
            res = [Resource(name, arn_account(name))] if name.startswith("arn:") else [arn("cloudtrail", f"trail/{name}")]
    elif prefix == "cloudwatch":
        names = p(prm, "AlarmNames") or ([p(prm, "AlarmName")] if p(prm, "AlarmName") else [])
        res = [arn("cloudwatch", f"alarm:{n}") for n in names]
    elif prefix == "ssm":
        if op == "StartSession":
            return [(action, r) for r in start_session_resources(region, account, prm)]
        if op in ("TerminateSession", "ResumeSession") and isinstance(p(prm, "SessionId"), str):
            # A session's ARN (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html, "session").
            return [(action, arn("ssm", f"session/{p(prm, 'SessionId')}"))]
        name = p(prm, "Name")
        types = resource_types(action)
        if isinstance(name, str) and name:
            if "document" in types:
                res = [ssm_document(region, account, name)]
            elif "parameter" in types:
                res = [arn("ssm", f"parameter/{name.lstrip('/')}")]
    elif prefix == "cloudformation":
        stack = cloudformation_stack(region, account, op, prm)
        if stack is not None:
            res = [stack]
    elif prefix == "organizations":
        res = organizations_resources(account, op, prm)
        if any(r.kind == "organizations" for r in res):
            # Another account of the organization: each resource, "*" too, is decided against the
            # organization's delegation policy.
            return [(action, r) for r in res]
    elif prefix == "guardduty" and op in GUARDDUTY_FILTER_OPERATIONS:
        # A filter is a resource of its own, under its detector
        # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonguardduty.html,
        # resource type `filter`: detector/ID/filter/NAME).
        detector, name = p(prm, "detectorId"), p(prm, "filterName", "name")
        if isinstance(detector, str) and isinstance(name, str) and detector and name:
            res = [arn("guardduty", f"detector/{detector}/filter/{name}")]
    elif prefix == "logs":
        res = logs_resources(action, region, account, prm)
    elif prefix == "events" and op == "PutEvents":
        # Authorized on each entry's event bus (resource type event-bus, required:
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoneventbridge.html);
        # an entry that names none goes to the default bus.
        entries = p(prm, "Entries")
        buses = {str(e.get("EventBusName") or "default") for e in entries if isinstance(e, dict)} \
            if isinstance(entries, list) else {"default"}
        res = [event_bus(region, account, b) for b in sorted(buses)]
    elif prefix in NAMED:
        params, pattern = NAMED[prefix]
        name = p(prm, *params)
        if isinstance(name, str) and name:
            res = [arn(prefix, pattern.format(name))]
    if takes_resources(action) is False or not res:
        res = [Resource("*", None)]
    return [(action, r) for r in res]


# SNS operations on a subscription that are authorized on its topic.
SNS_SUBSCRIPTION_ON_TOPIC = {"Unsubscribe", "SetSubscriptionAttributes"}


GUARDDUTY_FILTER_OPERATIONS = {"CreateFilter", "GetFilter", "UpdateFilter", "DeleteFilter"}


def logs_resources(action: str, region: str, account: str, prm: dict) -> list[Resource]:
    """CloudWatch Logs: a log group, `log-group:NAME`, or a log stream in it,
    `log-group:NAME:log-stream:STREAM`, as the action's resource type is
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html:
    PutMetricFilter, PutSubscriptionFilter and AssociateKmsKey are on the group, DeleteLogStream,
    CreateLogStream and PutLogEvents on the stream). Newer operations name the group by
    `logGroupIdentifier` or `resourceIdentifier`, a name or an ARN."""
    group = p(prm, "logGroupName", "logGroupIdentifier", "resourceIdentifier")
    if not isinstance(group, str) or not group:
        return []
    if group.startswith("arn:"):
        m = re.match(r"^arn:aws:logs:([^:]*):(\d{12}):log-group:([^:]+)", group)
        if not m:
            return []
        region, account, group = m.group(1), m.group(2), m.group(3)
    base = f"arn:aws:logs:{region}:{account}:log-group:{group}"
    types = resource_types(action)
    stream = p(prm, "logStreamName")
    if "log-stream" in types and "log-group" not in types and isinstance(stream, str) and stream:
        return [Resource(f"{base}:log-stream:{stream}", account)]
    return [Resource(base, account)]


# Document names AWS reserves for its own documents: "You can't use the following strings as document
# name prefixes. These are reserved by AWS for use as document name prefixes: aws, amazon, amzn"
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateDocument.html, Name).
AWS_DOCUMENT_PREFIXES = ("aws", "amazon", "amzn")


# The document a session runs when StartSession names none: "If no document name is provided, a shell
# to the managed node is launched by default"; "The system automatically calls the
# SSM-SessionManagerRunShell session document"
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StartSession.html,
# https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-specify-session-document.html).
DEFAULT_SESSION_DOCUMENT = "SSM-SessionManagerRunShell"


def ssm_document(region: str, account: str, name: str) -> Resource:
    """A document's ARN: the account's own `arn:aws:ssm:REGION:ACCOUNT:document/NAME`, or AWS's, whose
    ARN has no account, `arn:aws:ssm:REGION::document/AWS-…`
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html,
    resource type `document`; AWS-owned documents in IAM policies:
    https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-restrict-access-quickstart.html)."""
    if name.startswith("arn:"):
        return Resource(name, arn_account(name))
    if name.lower().startswith(AWS_DOCUMENT_PREFIXES):
        return Resource(f"arn:aws:ssm:{region}::document/{name}", None)
    return Resource(f"arn:aws:ssm:{region}:{account}:document/{name}", account)


def start_session_resources(region: str, account: str, prm: dict) -> list[Resource]:
    """ssm:StartSession is authorized on the target (an EC2 instance, `instance/i-…`, or a hybrid
    managed node, `managed-instance/mi-…`) and on the session document, `SSM-SessionManagerRunShell`
    when the request names none
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html,
    StartSession: document, instance, managed-instance, task)."""
    out = []
    target = p(prm, "Target")
    if isinstance(target, str) and target:
        if target.startswith("arn:"):
            out.append(Resource(target, arn_account(target)))
        elif target.startswith("mi-"):
            out.append(Resource(f"arn:aws:ssm:{region}:{account}:managed-instance/{target}", account))
        else:
            out.append(Resource(f"arn:aws:ec2:{region}:{account}:instance/{target}", account))
    doc = p(prm, "DocumentName")
    out.append(ssm_document(region, account, doc if isinstance(doc, str) and doc else DEFAULT_SESSION_DOCUMENT))
    return out


def lambda_resources(region: str, account: str, op: str, prm: dict) -> list[Resource]:
    """The resources of a Lambda request
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awslambda.html): a
    function, `arn:aws:lambda:REGION:ACCOUNT:function:NAME` (FunctionName is a name, a partial or a
    full ARN, with or without a qualifier); an event source mapping,
    `arn:aws:lambda:REGION:ACCOUNT:event-source-mapping:UUID`. CreateEventSourceMapping and the List
    operations name no resource ("*")."""
    if op in ("GetEventSourceMapping", "UpdateEventSourceMapping", "DeleteEventSourceMapping"):
        uuid = p(prm, "UUID")
        return [Resource(f"arn:aws:lambda:{region}:{account}:event-source-mapping:{uuid}", account)] if uuid else []
    if op == "CreateEventSourceMapping" or op.startswith("List") and op != "ListTags":
        return []
    name = p(prm, "FunctionName") or p(prm, "Resource")
    if not isinstance(name, str) or not name:
        return []
    if name.startswith("arn:"):
        parts = name.split(":")
        return [Resource(":".join(parts[:7]), arn_account(name))]
    if ":" in name:  # ACCOUNT:function:NAME, or NAME:QUALIFIER
        parts = name.split(":")
        if len(parts) >= 3 and parts[1] == "function":
            return [Resource(f"arn:aws:lambda:{region}:{parts[0]}:function:{parts[2]}", parts[0])]
        name = parts[0]
    return [Resource(f"arn:aws:lambda:{region}:{account}:function:{name}", account)]


def cloudformation_stack(region: str, account: str, op: str, prm: dict) -> Resource | None:
    """The stack a CloudFormation request acts on, `arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID`
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscloudformation.html,
    resource type `stack`), named by StackName (a name or the stack's ARN) or, for the change set
    operations, by the change set's stack. A stack that does not exist yet (CreateStack, a
    CreateChangeSet that creates one) has no ID: `stack/NAME/*`."""
    from moto.cloudformation.models import cloudformation_backends

    name = p(prm, "StackName")
    change_set = p(prm, "ChangeSetName")
    backend = cloudformation_backends[account][region]
    if not (isinstance(name, str) and name) and isinstance(change_set, str) and change_set:
        found = backend.change_sets.get(change_set) or next(
            (c for c in backend.change_sets.values() if c.change_set_name == change_set), None)
        return Resource(found.stack_id, account) if found is not None else None
    if not isinstance(name, str) or not name:
        return None
    if name.startswith("arn:"):
        return Resource(name, arn_account(name))
    if op != "CreateStack":

        stack_id = stack_store.found(region, account, name)
        if stack_id is not None:
            return Resource(stack_id, account)
    return Resource(f"arn:aws:cloudformation:{region}:{account}:stack/{name}/*", account)


def organizations_resources(account: str, op: str, prm: dict) -> list[Resource]:
    """The ARNs IAM authorizes an Organizations request against
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html):
    account/o-ID/ACCOUNT, ou/o-ID/ou-…, root/o-ID/r-…, policy/o-ID/TYPE/p-… (AWS managed policies:
    arn:aws:organizations::aws:policy/TYPE/p-…), all under the management account. An action with
    several resource types (AttachPolicy: the policy and its target) needs each."""

    org = core.organization_of(account)
    if org is None or org[1].org is None:
        return []
    mgmt, backend = org
    org_id = backend.org.id
    base = f"arn:aws:organizations::{mgmt}:"

    def target(t: str) -> str:
        if t.startswith("ou-"):
            return f"{base}ou/{org_id}/{t}"
        if t.startswith("r-"):
            return f"{base}root/{org_id}/{t}"
        return f"{base}account/{org_id}/{t}"

    def policy(pid: str) -> str:
        found = next((pol for pol in backend.policies if pol.id == pid), None)
        kind = {"SERVICE_CONTROL_POLICY": "service_control_policy", "TAG_POLICY": "tag_policy",
                "BACKUP_POLICY": "backup_policy", "AISERVICES_OPT_OUT_POLICY": "aiservices_opt_out_policy"}.get(
            getattr(found, "type", "SERVICE_CONTROL_POLICY"), "service_control_policy")
        if getattr(found, "aws_managed", False) or pid == "p-FullAWSAccess":
            return f"arn:aws:organizations::aws:policy/{kind}/{pid}"
        return f"{base}policy/{org_id}/{kind}/{pid}"

    arns: list[str] = []
    if p(prm, "PolicyId"):
        arns.append(policy(p(prm, "PolicyId")))
    if p(prm, "TargetId"):
        arns.append(target(p(prm, "TargetId")))
    if op in ("DescribeAccount", "RegisterDelegatedAdministrator", "DeregisterDelegatedAdministrator") and p(prm, "AccountId"):
        arns.append(target(p(prm, "AccountId")))
    if op == "DescribeOrganizationalUnit" and p(prm, "OrganizationalUnitId"):
        arns.append(target(p(prm, "OrganizationalUnitId")))
    if account == mgmt:
        return [Resource(a, mgmt) for a in arns]
    # Another account of the organization acts on the management account's organization: allowed
    # only as its effective delegation policy says (organizations.py), for each resource, or for "*"
    # when the call names none; a new policy is its type's policies (the delegation policy's own
    # example names service_control_policy/* for CreatePolicy,
    # https://docs.aws.amazon.com/organizations/latest/userguide/security_iam_resource-based-policy-examples.html).

    if op in ANY_MEMBER:
        return []
    if op == "CreatePolicy":
        arns.append(f"{base}policy/{org_id}/{str(p(prm, 'Type') or 'SERVICE_CONTROL_POLICY').lower()}/*")
    doc = effective_policy(mgmt)
    return [Resource(a, mgmt, doc, "organizations") for a in arns or ["*"]]


# The operations that act on the root user when its credentials omit UserName, and those of them that
# need a centralized root session to omit it (API reference, UserName).
ROOT_USER_OPERATIONS = frozenset({
    "GetLoginProfile", "DeleteLoginProfile", "CreateLoginProfile", "ListAccessKeys", "DeleteAccessKey",
    "ListSigningCertificates", "DeleteSigningCertificate", "ListMFADevices", "DeactivateMFADevice", "GetUser",
})


def resource_arn(req: Any, principal: Any) -> str | None:
    """The root user's ARN when `req` (IAM) acts on it (see the module's docstring), else None: for
    resources_for. The root user's principal only: an IAM user's or role's request without
    UserName is not the root user's."""
    if principal is None or principal.kind != "root":
        return None
    account, op = principal.account, req.operation
    if op in ROOT_USER_OPERATIONS and not p(req.params, "UserName"):
        return root_arn(account)
    if op == "GetAccessKeyLastUsed" and ROOT_KEYS.get(str(p(req.params, "AccessKeyId") or "")) == account:
        return root_arn(account)
    if op == "DeleteVirtualMFADevice" and root_virtual_device(account, str(p(req.params, "SerialNumber") or "")):
        return root_arn(account)
    return None
