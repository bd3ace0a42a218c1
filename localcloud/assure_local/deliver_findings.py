"""Findings, events and session logs, sent on as AWS sends them.

1. IAM Access Analyzer generates findings. An external access analyzer (ACCOUNT or ORGANIZATION)
   analyzes the resource-based policies of its zone of trust and "generates a finding for each
   instance of a resource-based policy that grants access to a resource within your zone of trust to
   a principal that is not within your zone of trust"
   (https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-findings.html). Analyzed here:
   IAM roles' trust policies ("An IAM role is a global resource. If a role trust policy grants access
   to an external entity, IAM Access Analyzer generates a finding in each enabled Region":
   https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-resources.html#access-analyzer-iam-role)
   and S3 bucket policies (a finding in the bucket's Region only: analyzers analyze "the resource-based
   policies that are applied to AWS resources in the Region where you enabled IAM Access Analyzer",
   same page). AWS service principals are not reported ("Access Analyzer does not currently report
   findings from AWS service principals"), and where a condition is not understood a statement is
   reported ("it errs on the side of declaring a false positive finding"):
   https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-concepts.html.
   A new analyzer analyzes once it is ACTIVE; after a role or bucket policy changes, "It may take up
   to 30 minutes after a policy is modified for Access Analyzer to again analyze the resource and
   then update the finding"; a grant that goes away is RESOLVED, a grant that changes is a new ACTIVE
   finding (https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-findings-remediate.html).
   Both wait the local cloud's delay (deliver.delay, the transition). New findings matching one of
   the analyzer's archive rules are ARCHIVED (access-analyzer-archive-rules.html). Answered:
   ListFindings, GetFinding, ListFindingsV2, GetFindingV2, UpdateFindings.
2. Each new finding and each change of a finding's status is an event on the analyzer account's
   default event bus in the analyzer's Region, source `aws.access-analyzer`, detail-type
   `Access Analyzer Finding` ("IAM Access Analyzer sends an event to EventBridge for each generated
   finding, for a change to the status of an existing finding":
   https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-eventbridge.html, whose example
   gives the event's and the detail's fields).
3. EventBridge runs the bus's ENABLED rules (moto's rules and pattern matcher; moto ran disabled ones
   too) and invokes their targets, extending moto's `Rule.send_to_targets`:
   - an event bus (another Region or account): EventBridge assumes the target's role as
     events.amazonaws.com for the rule (aws:SourceArn the rule, aws:SourceAccount its account:
     https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html), and the role
     needs events:PutEvents on the bus, whose policy applies across accounts
     (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-region.html,
     eb-cross-account.html; "If a receiver account sets up a rule that sends events received from a
     sender account on to a third account, these events are not sent"). The event arrives unchanged
     and the receiving bus's rules run.
   - a Firehose stream: the role, likewise, with firehose:PutRecord on the stream, which must be
     ACTIVE; Firehose buffers the record and writes the batch after the delay as its own role
     (the extension's put_batch_when_active and checked_put, rules.firehose_s3_refusal), concatenated
     with no delimiter ("By default, Firehose concatenates data without any delimiters":
     https://docs.aws.amazon.com/firehose/latest/dev/basic-deliver.html), compressed and named as the
     stream says (`firehose_s3_write`).
   A target that cannot be invoked counts in AWS/Events FailedInvocations (dimension RuleName); a
   batch Firehose cannot write counts DeliveryToS3.Success 0 (checked_put)
   (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html,
   https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html).
4. Session Manager: managed instances registered with POST /assure-api/managed-instances (the local
   stand-in for an instance whose SSM Agent runs with a role), listed by DescribeInstanceInformation;
   StartSession, TerminateSession, DescribeSessions. The agent works as the instance's role, through
   authz's whole evaluation, following the account's preferences (the `SSM-SessionManagerRunShell`
   document): with s3EncryptionEnabled it reads the bucket's encryption before the session starts
   and fails the session when it cannot; when the session ends it uploads `PREFIX/SESSIONID.log`
   (amazon-ssm-agent, agent/session/shell/shell.go: `validate`, `finishLogging`). With a session data
   key (kmsKeyId), the client calls kms:GenerateDataKey as the user and the agent kms:Decrypt as the
   instance role (aws/session-manager-plugin src/encryption/encrypter.go;
   https://docs.aws.amazon.com/systems-manager/latest/userguide/session-preferences-enable-encryption.html):
   either refused, the session fails.

Hooks: extension.patch_moto calls `install()`; the extension's WSGI entry hands /assure-api/managed-
instances and the Session Manager operations to `answer`; ssm.ssm_start_session asks `connected`;
the extension's checked_put writes through `firehose_s3_write`.
"""

from __future__ import annotations

import copy
import datetime
import gzip
import io
import json
import re
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from assure_local import authz, aws_request, core, deliver, iam, policies, principals, resources, rules
from assure_local.core import INSTANCES
from assure_local.services import access_analyzer
from assure_local.ssm_agents import INSTANCE_ID, PING, agent, agent_refusal, instance_role, target_id

_INSTALLED = {"done": False}
_MUTEX = threading.Lock()


def iso(when: datetime.datetime | None = None, fraction: bool = True) -> str:
    when = when or datetime.datetime.now(datetime.UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] if fraction else when.strftime("%Y-%m-%dT%H:%M:%S")
    return text + "Z"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# 1. IAM Access Analyzer: findings


# The extension's AccessAnalyzer (its analyzers), recorded when it is made.
SERVICE: dict[str, Any] = {"analyzer": None}
# Analyzer ARN -> finding id -> finding (with the private "_key" of the grant it reports).
FINDINGS: dict[str, dict[str, dict]] = {}
# Resources changed since the last analysis: (kind, account, ARN).
PENDING: set[tuple[str, str, str]] = set()
_SCHEDULED = {"pending": False}

ROLE = "AWS::IAM::Role"
BUCKET = "AWS::S3::Bucket"
# What a role trust policy can grant (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html).
TRUST_ACTIONS = ["sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity", "sts:SetContext",
                 "sts:SetSourceIdentity", "sts:TagSession"]
# Condition keys that keep a grant to "*" inside a zone of trust, by what they name.
ORG_KEYS = {"aws:principalorgid", "aws:sourceorgid"}
ACCOUNT_KEYS = {"aws:principalaccount", "aws:sourceaccount", "aws:sourceowner"}
ARN_KEYS = {"aws:principalarn", "aws:sourcearn"}
POSITIVE_OPS = {"StringEquals", "StringLike", "StringEqualsIgnoreCase", "ArnEquals", "ArnLike"}


def analyzers() -> dict[tuple[str, str], dict[str, dict]]:
    svc = SERVICE["analyzer"]
    return svc.analyzers if svc is not None else {}


def zone(account: str, kind: str) -> tuple[set[str], str | None]:
    """The accounts of an analyzer's zone of trust, and its organization's ID for an ORGANIZATION one."""

    if kind.startswith("ORGANIZATION"):
        org = core.organization_of(account)
        if org is not None and org[1].org is not None:
            return {a.id for a in org[1].accounts} | {org[0]}, org[1].org.id
    return {account}, None


def active(analyzer: dict) -> bool:

    return analyzer["type"] in ("ACCOUNT", "ORGANIZATION") and not core.transitional(analyzer.get("_final"))


def covering(account: str) -> list[tuple[str, str, dict]]:
    """The external access analyzers whose zone of trust holds `account`: (account, Region, analyzer)."""
    out = []
    for (acct, region), named in list(analyzers().items()):
        for analyzer in list(named.values()):
            if analyzer["type"] not in ("ACCOUNT", "ORGANIZATION"):
                continue
            if account in zone(acct, analyzer["type"])[0]:
                out.append((acct, region, analyzer))
    return out


def account_of(value: str) -> str | None:
    """The account a policy's AWS principal names: an account ID, or any ARN of one."""
    if re.fullmatch(r"\d{12}", value):
        return value
    m = re.match(r"^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):", value)
    return m.group(1) if m else None


def condition_items(cond: Any) -> list[tuple[str, str, list]]:
    """(operator, key, values) of a Condition block."""
    out = []
    if isinstance(cond, dict):
        for op, block in cond.items():
            if isinstance(block, dict):
                for key, values in block.items():
                    out.append((str(op), str(key), [str(v) for v in iam.as_list(values)]))
    return out


def within(cond: Any, accounts: set[str], org_id: str | None) -> bool:
    """Whether a statement's conditions keep its grant inside the zone: a positive condition on the
    principal's (or the calling service's source's) organization, account or ARN naming only the
    zone's."""
    for op, key, values in condition_items(cond):
        base = op.split(":", 1)[-1]
        if base.endswith("IfExists") or base not in POSITIVE_OPS or not values:
            continue
        k = key.lower()
        if k in ORG_KEYS and org_id is not None and all(v == org_id for v in values):
            return True
        if k in ACCOUNT_KEYS and all(v in accounts for v in values):
            return True
        if k in ARN_KEYS and all((account_of(v) or "") in accounts for v in values):
            return True
    return False


def limits_accounts(cond: Any) -> bool:
    """Whether conditions name the principals' accounts or organization at all (then a grant to "*"
    is cross-account, not public)."""
    return any(key.lower() in ORG_KEYS | ACCOUNT_KEYS | ARN_KEYS for _, key, _ in condition_items(cond))


def flat_condition(cond: Any) -> dict:
    """A finding's `condition`: each condition key with the value the statement gives it."""
    return {key: values[0] if len(values) == 1 else ",".join(values) for _, key, values in condition_items(cond)}


def grants(doc: dict | None, resource: str, kind: str, accounts: set[str], org_id: str | None,
           public_blocked: bool = False) -> list[dict]:
    """The grants of a resource-based policy to principals outside the zone (`accounts`): one per
    statement and external principal (an AWS account or "*", an identity provider), with the
    finding's principal, action, condition and isPublic."""
    out = []
    for st in iam.statements(doc):
        if st.get("Effect") != "Allow" or "NotPrincipal" in st or "NotAction" in st:
            continue
        p = st.get("Principal")
        values = [("AWS", "*")] if p == "*" else [(kind_, str(v)) for kind_ in ("AWS", "Federated")
                                                   for v in iam.as_list(p.get(kind_))] if isinstance(p, dict) else []
        if not values:
            continue  # service principals: not reported
        cond = st.get("Condition")
        if within(cond, accounts, org_id):
            continue
        patterns = iam.as_list(st.get("Action"))
        if kind == ROLE:
            actions = [a for a in TRUST_ACTIONS if iam.action_matches(patterns, a)]
        else:
            actions = sorted(str(a) for a in patterns)
        if not actions:
            continue
        for kind_, value in values:
            if kind_ == "Federated":
                # An identity provider's users (a web identity or SAML federation) are outside any
                # zone of trust: reported, with the conditions that narrow them.
                public = False
            elif value == "*":
                public = not limits_accounts(cond)
                if public and public_blocked:
                    continue
            else:
                owner = account_of(value)
                if owner is None or owner in accounts:
                    continue
                public = False
            out.append({"resource": resource, "resourceType": kind, "principal": {kind_: value}, "action": actions,
                        "condition": flat_condition(cond), "isPublic": public})
    return out


def grant_key(g: dict) -> str:
    return json.dumps([g["resource"], g["principal"], g["action"], g["condition"]], sort_keys=True)


def role_resources(account: str, arn: str | None = None) -> dict[str, tuple[str, str, dict | None]]:
    """ARN -> (type, owner, trust policy) of the account's roles (or of the one `arn`; a role that no
    longer exists, with no policy)."""
    from moto.iam.models import iam_backends

    out: dict[str, tuple[str, str, dict | None]] = {}
    for role in list(iam_backends[account]["aws"].roles.values()):
        if arn is None or role.arn == arn:
            out[role.arn] = (ROLE, account, iam.parse(role.assume_role_policy_document))
    if arn is not None and arn not in out:
        out[arn] = (ROLE, account, None)
    return out


def bucket_resources(account: str, region: str, name: str | None = None) -> dict[str, tuple[str, str, dict | None]]:
    """ARN -> (type, owner, bucket policy) of the account's buckets in `region` (or the one `name`)."""
    from moto.s3.models import s3_backends

    out: dict[str, tuple[str, str, dict | None]] = {}
    backend = s3_backends[account]["aws"]
    for bucket in list(backend.buckets.values()):
        if (name is None or bucket.name == name) and getattr(bucket, "region_name", region) == region:
            out[f"arn:aws:s3:::{bucket.name}"] = (BUCKET, account, iam.parse(bucket.policy) if bucket.policy else None)
    if name is not None and f"arn:aws:s3:::{name}" not in out and name not in backend.buckets:
        out[f"arn:aws:s3:::{name}"] = (BUCKET, account, None)
    return out


def analyze(acct: str, region: str, analyzer: dict, resources: dict[str, tuple[str, str, dict | None]],
            full: bool) -> None:
    """Brings the analyzer's findings on `resources` (every resource of its zone when `full`) up to
    date: a new grant is a new finding, a grant that went away resolves its finding; each change is
    an event."""
    accounts, org_id = zone(acct, analyzer["type"])
    found: dict[str, dict] = {}
    for arn, (kind, owner, doc) in resources.items():
        if owner not in accounts:
            continue
        blocked = kind == BUCKET and principals.public_access_restricted(arn.split(":::", 1)[1])
        for g in grants(doc, arn, kind, accounts, org_id, blocked):
            found[grant_key(g)] = dict(g, resourceOwnerAccount=owner)
    store = FINDINGS.setdefault(analyzer["arn"], {})
    now = iso()
    live = {f["_key"]: f for f in store.values() if f["status"] in ("ACTIVE", "ARCHIVED")}
    for key, g in found.items():
        if key in live:
            live[key]["analyzedAt"] = now
            continue
        finding = dict(g, id=str(uuid.uuid4()), status="ACTIVE", createdAt=now, analyzedAt=now, updatedAt=now, _key=key)
        if archived_by_rule(acct, region, analyzer, finding):
            finding["status"] = "ARCHIVED"
        store[finding["id"]] = finding
        emit(acct, region, analyzer, finding)
    for key, finding in live.items():
        if key not in found and (full or finding["resource"] in resources):
            finding.update(status="RESOLVED", analyzedAt=now, updatedAt=now)
            emit(acct, region, analyzer, finding)


def archived_by_rule(acct: str, region: str, analyzer: dict, finding: dict) -> bool:
    svc = SERVICE["analyzer"]
    rules_ = svc.rules.get((acct, region, analyzer["name"]), {}) if svc is not None else {}
    return any(matches(finding, r.get("filter") or {}) for r in rules_.values() if r.get("filter"))


def full_scan(acct: str, region: str, name: str) -> None:
    """An analyzer's first analysis, once it is ACTIVE: every role and bucket of its zone."""
    analyzer = analyzers().get((acct, region), {}).get(name)
    if analyzer is None:
        return

    if core.transitional(analyzer.get("_final")):
        deliver.later(max(0.0, analyzer["_final"] - time.monotonic()), lambda: full_scan(acct, region, name))
        return
    if not active(analyzer):
        return
    resources: dict[str, tuple[str, str, dict | None]] = {}
    for account in sorted(zone(acct, analyzer["type"])[0]):
        resources.update(role_resources(account))
        resources.update(bucket_resources(account, region))
    analyze(acct, region, analyzer, resources, full=True)


def analyzer_created(acct: str, region: str, name: str) -> None:
    analyzer = analyzers().get((acct, region), {}).get(name)
    if analyzer is not None:
        deliver.later(max(0.0, analyzer["_final"] - time.monotonic()), lambda: full_scan(acct, region, name))


def changed(kind: str, account: str, arn: str) -> None:
    """A role's trust policy or a bucket's policy changed (or the resource was created or deleted):
    analyzed again after the delay."""
    with _MUTEX:
        PENDING.add((kind, account, arn))
        if _SCHEDULED["pending"]:
            return
        _SCHEDULED["pending"] = True
    deliver.later(deliver.delay(), analyze_pending)


def analyze_pending() -> None:
    with _MUTEX:
        pending = sorted(PENDING)
        PENDING.clear()
        _SCHEDULED["pending"] = False
    for kind, account, arn in pending:
        for acct, region, analyzer in covering(account):
            if not active(analyzer):
                continue  # its first analysis is still to come
            if kind == "role":
                resources = role_resources(account, arn)
            else:
                resources = bucket_resources(account, region, arn.split(":::", 1)[1])
            analyze(acct, region, analyzer, resources, full=False)


# Filters (ListFindings, archive rules): https://docs.aws.amazon.com/access-analyzer/latest/APIReference/API_Criterion.html,
# keys: https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-filter-keys.html.
def field(finding: dict, key: str) -> list[str] | None:
    if "." in key:
        head, _, tail = key.partition(".")
        value = (finding.get(head) or {}).get(tail) if isinstance(finding.get(head), dict) else None
    else:
        value = finding.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return ["true" if value else "false"]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def matches(finding: dict, criteria: dict) -> bool:
    for key, c in criteria.items():
        values = field(finding, key)
        if "exists" in c and bool(values) != bool(c["exists"]):
            return False
        if c.get("eq") and not (values and any(v in c["eq"] for v in values)):
            return False
        if c.get("neq") and values and any(v in c["neq"] for v in values):
            return False
        if c.get("contains") and not (values and any(x in v for v in values for x in c["contains"])):
            return False
    return True


SUMMARY = ("id", "principal", "action", "resource", "isPublic", "resourceType", "condition", "createdAt",
           "analyzedAt", "updatedAt", "status", "resourceOwnerAccount")


def summary(finding: dict) -> dict:
    return {k: finding[k] for k in SUMMARY if k in finding}


def summary_v2(finding: dict) -> dict:
    out = {k: finding[k] for k in ("analyzedAt", "createdAt", "id", "resource", "resourceOwnerAccount",
                                   "resourceType", "status", "updatedAt")}
    out["findingType"] = "ExternalAccess"
    return out


def install_access_analyzer() -> None:
    """The AccessAnalyzer's findings operations, and its analyzers' first analysis."""

    cls = access_analyzer.AccessAnalyzer
    ApiError = core.ApiError
    init = cls.__init__

    def __init__(self) -> None:  # type: ignore[no-untyped-def]
        init(self)
        SERVICE["analyzer"] = self

    create = cls.create_analyzer

    def create_analyzer(self, call):  # type: ignore[no-untyped-def]
        out = create(self, call)
        analyzer_created(call.account, call.region, call.body.get("analyzerName") or "")
        return out

    delete = cls.delete_analyzer

    def delete_analyzer(self, call, name):  # type: ignore[no-untyped-def]
        analyzer = self.analyzers.get((call.account, call.region), {}).get(name)
        out = delete(self, call, name)
        if analyzer is not None:
            FINDINGS.pop(analyzer["arn"], None)
        return out

    def analyzer_of(self, call, arn):  # type: ignore[no-untyped-def]
        m = re.match(r"^arn:aws:access-analyzer:([^:]+):(\d{12}):analyzer/(.+)$", arn or "")
        found = None
        if m and (m.group(2), m.group(1)) == (call.account, call.region):
            found = self.analyzers.get((call.account, call.region), {}).get(m.group(3))
        if found is None:
            raise ApiError(404, "ResourceNotFoundException", f"Analyzer {arn} not found", resourceId=str(arn),
                           resourceType="Analyzer")
        return found

    def listed(self, call):  # type: ignore[no-untyped-def]
        analyzer = analyzer_of(self, call, call.body.get("analyzerArn"))
        items = [f for f in FINDINGS.get(analyzer["arn"], {}).values() if matches(f, call.body.get("filter") or {})]
        sort = call.body.get("sort") or {}
        if sort.get("attributeName"):
            items.sort(key=lambda f: str(f.get(sort["attributeName"], "")), reverse=sort.get("orderBy") == "DESC")
        return items

    def list_findings(self, call, view=summary):  # type: ignore[no-untyped-def]
        return core.paged([view(f) for f in listed(self, call)], "findings", call.body.get("nextToken"),
                               call.body.get("maxResults"), 100)

    def list_findings_v2(self, call):  # type: ignore[no-untyped-def]
        return list_findings(self, call, summary_v2)

    def one(self, call, id):  # type: ignore[no-untyped-def]
        analyzer = analyzer_of(self, call, call.q("analyzerArn"))
        finding = FINDINGS.get(analyzer["arn"], {}).get(id)
        if finding is None:
            raise ApiError(404, "ResourceNotFoundException", f"Finding {id} not found", resourceId=id,
                           resourceType="Finding")
        return finding

    def get_finding(self, call, id):  # type: ignore[no-untyped-def]
        return {"finding": summary(one(self, call, id))}

    def get_finding_v2(self, call, id):  # type: ignore[no-untyped-def]
        finding = one(self, call, id)
        details = {k: finding[k] for k in ("action", "condition", "isPublic", "principal")}
        return dict(summary_v2(finding), findingDetails=[{"externalAccessDetails": details}])

    def update_findings(self, call):  # type: ignore[no-untyped-def]
        # "Updates the status for the specified findings": ARCHIVED or ACTIVE, by ids or resource
        # (https://docs.aws.amazon.com/access-analyzer/latest/APIReference/API_UpdateFindings.html).
        analyzer = analyzer_of(self, call, call.body.get("analyzerArn"))
        status = call.body.get("status")
        if status not in ("ARCHIVED", "ACTIVE"):
            raise access_analyzer.AccessAnalyzer.validation("status is not valid", "status")
        ids, resource = call.body.get("ids") or [], call.body.get("resourceArn")
        store = FINDINGS.get(analyzer["arn"], {})
        for finding in store.values():
            if (finding["id"] in ids or finding["resource"] == resource) and finding["status"] in ("ACTIVE", "ARCHIVED") \
                    and finding["status"] != status:
                finding.update(status=status, updatedAt=iso())
                emit(call.account, call.region, analyzer, finding)
        return {}

    cls.__init__ = __init__
    cls.create_analyzer = create_analyzer
    cls.delete_analyzer = delete_analyzer
    cls.list_findings = list_findings
    cls.list_findings_v2 = list_findings_v2
    cls.get_finding = get_finding
    cls.get_finding_v2 = get_finding_v2
    cls.update_findings = update_findings
    cls.routes = list(cls.routes) + [
        ("POST", r"/finding", "list_findings"),
        ("PUT", r"/finding", "update_findings"),
        ("GET", r"/finding/(?P<id>[^/]+)", "get_finding"),
        ("POST", r"/findingv2", "list_findings_v2"),
        ("GET", r"/findingv2/(?P<id>[^/]+)", "get_finding_v2"),
    ]


def install_resource_hooks() -> None:
    """What Access Analyzer watches: roles created, deleted or given a new trust policy; bucket
    policies put or deleted, buckets deleted, Block Public Access changed."""
    from moto.iam.models import IAMBackend
    from moto.s3.models import S3Backend

    create_role = IAMBackend.create_role

    def created_role(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        role = create_role(self, *args, **kwargs)
        changed("role", self.account_id, role.arn)
        return role

    update_trust = IAMBackend.update_assume_role_policy

    def updated_trust(self, role_name, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = update_trust(self, role_name, *args, **kwargs)
        changed("role", self.account_id, self.get_role(role_name).arn)
        return out

    delete_role = IAMBackend.delete_role

    def deleted_role(self, role_name, *args, **kwargs):  # type: ignore[no-untyped-def]
        role = next((r for r in self.roles.values() if r.name == role_name), None)
        out = delete_role(self, role_name, *args, **kwargs)
        if role is not None:
            changed("role", self.account_id, role.arn)
        return out

    IAMBackend.create_role = created_role
    IAMBackend.update_assume_role_policy = updated_trust
    IAMBackend.delete_role = deleted_role

    def on_bucket(method: str) -> None:
        original = getattr(S3Backend, method)

        def wrapped(self, bucket_name, *args, **kwargs):  # type: ignore[no-untyped-def]
            from moto.s3.models import s3_backends

            owner = s3_backends.bucket_accounts.get(bucket_name)  # before a deletion forgets it
            out = original(self, bucket_name, *args, **kwargs)
            changed("bucket", owner[1] if owner else self.account_id, f"arn:aws:s3:::{bucket_name}")
            return out

        setattr(S3Backend, method, wrapped)

    for method in ("put_bucket_policy", "delete_bucket_policy", "delete_bucket", "put_public_access_block",
                   "delete_public_access_block"):
        on_bucket(method)


# ---------------------------------------------------------------------------------------------------
# 2 and 3. Events: Access Analyzer's, and EventBridge's rules and targets


# Events that reached a bus: (account, Region, bus, event), the newest last (for tests and debugging).
RECEIVED: list[tuple[str, str, str, dict]] = []
_ROUTE = threading.local()
MAX_HOPS = 5


def emit(acct: str, region: str, analyzer: dict, finding: dict) -> None:
    """The finding's event on the analyzer account's default bus in its Region."""
    detail = {"version": "1.0", "id": finding["id"], "status": finding["status"],
              "resourceType": finding["resourceType"], "resource": finding["resource"],
              "createdAt": finding["createdAt"], "analyzedAt": finding["analyzedAt"], "updatedAt": finding["updatedAt"],
              "accountId": finding["resourceOwnerAccount"], "region": region, "principal": finding["principal"],
              "action": finding["action"], "condition": finding["condition"], "isPublic": finding["isPublic"],
              "isDeleted": False}
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Access Analyzer Finding",
             "source": "aws.access-analyzer", "account": acct, "time": iso(fraction=False), "region": region,
             "resources": [analyzer["arn"]], "detail": detail}
    to_bus(acct, region, "default", event, sender=acct)


def to_bus(account: str, region: str, bus_name: str, event: dict, sender: str) -> None:
    """`event` arriving on a bus: each of its rules runs."""
    from moto.events.models import events_backends

    bus = events_backends[account][region].event_buses.get(bus_name)
    if bus is None:
        return
    RECEIVED.append((account, region, bus_name, event))
    del RECEIVED[:-500]
    outer = getattr(_ROUTE, "stack", [])
    _ROUTE.stack = outer + [sender]
    try:
        for rule in list(bus.rules.values()):
            rule.send_to_targets(event)
    finally:
        _ROUTE.stack = outer


def aws_event(event: dict) -> dict:
    """The event as AWS sends it to a target: `time` ISO 8601 (moto's own PutEvents keeps epoch
    seconds, and an `ingestion-time` of its own)."""
    event = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(event.get("time"), (int, float)):
        event["time"] = iso(datetime.datetime.fromtimestamp(event["time"], datetime.UTC), fraction=False)
    return event


def moto_event(event: dict) -> dict:
    """The event as moto's own targets (logs, SQS) expect it: `time` in epoch seconds."""
    if isinstance(event.get("time"), str):
        when = datetime.datetime.strptime(event["time"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
        event = dict(event, time=when.timestamp())
    if "ingestion-time" not in event:
        event = dict(event, **{"ingestion-time": time.time()})
    return event


def metric(account: str, region: str, namespace: str, name: str, dims: list[dict], value: float = 1.0) -> None:
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[account][region].put_metric_data(
        namespace, [{"MetricName": name, "Value": value, "Unit": "Count", "Dimensions": dims}])


def failed(rule: Any, target: dict, why: str) -> None:
    """A target EventBridge could not invoke: AWS/Events FailedInvocations for the rule
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html)."""
    metric(rule.account_id, rule.region_name, "AWS/Events", "FailedInvocations",
           [{"Name": "RuleName", "Value": rule.name}])
    log(f"events rule {rule.arn}: target {target.get('Id')} ({target.get('Arn')}) not invoked: {why}")


def role_session(role_arn: str, session: str) -> Any:
    role = policies.role_by_arn(role_arn)
    owner = role_arn.split(":")[4]
    return principals.role_principal(role, f"arn:aws:sts::{owner}:assumed-role/{role.name}/{session}")


def role_refusal(rule: Any, target: dict) -> tuple[str | None, Any]:
    """(why EventBridge cannot act as the target's role for the rule, the role's session)."""
    role_arn = target.get("RoleArn")
    if not role_arn:
        return "the target has no role (RoleArn)", None
    why = rules.unusable_role("events.amazonaws.com", role_arn, rule.arn)
    if why is not None:
        return f"EventBridge cannot assume {role_arn}: {why}", None
    return None, role_session(role_arn, uuid.uuid4().hex[:16])


def invoke_bus(rule: Any, target: dict, event: dict) -> None:
    from moto.events.models import events_backends

    m = re.match(r"^arn:aws:events:([^:]+):(\d{12}):event-bus/(.+)$", target["Arn"])
    if m is None:
        return failed(rule, target, "not an event bus ARN")
    region, account, name = m.groups()
    stack = getattr(_ROUTE, "stack", [])
    if len(stack) >= MAX_HOPS:
        return failed(rule, target, "the event has crossed too many buses")
    received_from = stack[-1] if stack else rule.account_id
    if received_from != rule.account_id and account not in (rule.account_id, received_from):
        # Events received from another account are not sent on to a third (eb-cross-account.html);
        # an account's own events go to any account whose bus admits them.
        return
    try:
        bus = events_backends[account][region].event_buses.get(name)
    except KeyError:  # not a Region
        bus = None
    if bus is None:
        return failed(rule, target, f"event bus {target['Arn']} does not exist")
    if policies.enabled():
        if target.get("RoleArn"):
            why, principal = role_refusal(rule, target)
            if why is None:
                req = aws_request.Req("events", "PutEvents", {}, region)
                ctx = authz.request_context(req, principal)
                res = iam.Resource(bus.arn, account, iam.parse(bus.policy), "events")
                decision = iam.decide(principal, "events:PutEvents", res, ctx, policies.scp_levels(principal))
                # Logged as every request's decision is: the role's use, for the least-privilege check.
                policies.record(principal, "events:PutEvents", bus.arn, decision.allowed)
                if not decision.allowed:
                    why = (f"{principal.shown()} is not authorized to perform: events:PutEvents on resource: "
                           f"{bus.arn} {decision.reason}")
        elif region != rule.region_name:
            why = "a target event bus in another Region takes a role (RoleArn)"
        else:
            # Same Region, another account, no role: the receiving bus's policy must admit the sender.
            sender = iam.Principal(kind="root", account=rule.account_id, arn=f"arn:aws:iam::{rule.account_id}:root")
            direct, delegated, deny = iam.resource_effects(iam.parse(bus.policy), sender, "events:PutEvents", bus.arn,
                                                           {"aws:PrincipalAccount": rule.account_id})
            why = None if account == rule.account_id or ((direct or delegated) and not deny) else \
                f"the policy of {bus.arn} does not admit account {rule.account_id}"
        if why is not None:
            return failed(rule, target, why)
    to_bus(account, region, name, copy.deepcopy(event), sender=rule.account_id)


def invoke_states(rule: Any, target: dict, event: dict) -> None:
    """A state machine target: EventBridge starts an execution, named at random, with the target's
    input, as the target's role (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html;
    the role needs states:StartExecution, eb-use-identity-based.html). The start goes through the local
    cloud's front door signed as the role's session, so IAM and the state machine's own checks apply;
    on a thread of its own, since a delivery holds the extension's lock."""

    m = re.match(r"^arn:aws:states:([^:]+):(\d{12}):stateMachine:(.+)$", target["Arn"])
    if m is None:
        return failed(rule, target, "not a state machine ARN")
    region = m.group(1)
    try:
        data = target_input(target, event).decode()
    except Exception as e:  # an InputTransformer that does not produce JSON moto can read
        return failed(rule, target, f"the target's input could not be made: {e}")
    role_arn = target.get("RoleArn")
    if not role_arn:
        return failed(rule, target, "the target has no role (RoleArn)")
    try:
        session = principals.service_session("events.amazonaws.com", role_arn, uuid.uuid4().hex[:16], rule.arn)
    except core.ApiError as e:
        return failed(rule, target, f"EventBridge cannot assume {role_arn}: {e.message}")

    def start() -> None:
        from assure_local import stacks

        caller = stacks.Caller(session.access_key_id, session.secret_access_key, session.session_token)
        try:
            stacks.clients(caller, region)("stepfunctions").start_execution(
                stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=data)
        except Exception as e:  # refused (IAM, a missing machine, bad input): FailedInvocations
            with core.LOCK:
                failed(rule, target, str(e))

    threading.Thread(target=start, name="assure-events-states", daemon=True).start()


# Records Firehose holds before it writes them: (account, Region, stream) -> data of each record.
BUFFERS: dict[tuple[str, str, str], list[bytes]] = {}


def target_input(target: dict, event: dict) -> bytes:
    """What EventBridge sends a target: the event, or the target's Input, or its InputTransformer's
    output (moto's template parser)."""
    if target.get("Input"):
        return str(target["Input"]).encode()
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.models import EventTemplateParser

        out = EventTemplateParser.parse(input_template=transformer.get("InputTemplate"),
                                        input_paths_map=transformer.get("InputPathsMap", {}),
                                        event=dict(event, **{"ingestion-time": time.time()}))
        return (out if isinstance(out, str) else json.dumps(out, separators=(",", ":"))).encode()
    return json.dumps(event, separators=(",", ":")).encode()


def invoke_firehose(rule: Any, target: dict, event: dict) -> None:
    from moto.firehose.models import firehose_backends


    m = re.match(r"^arn:aws:firehose:([^:]+):(\d{12}):deliverystream/(.+)$", target["Arn"])
    if m is None:
        return failed(rule, target, "not a delivery stream ARN")
    region, account, name = m.groups()
    if policies.enabled():
        why, principal = role_refusal(rule, target)
        if why is None and principal.account != account:
            why = f"the stream {target['Arn']} is in another account than the role"
        if why is None:
            denial = authz.authorize(principal, aws_request.Req("firehose", "PutRecord", {"DeliveryStreamName": name}, region))
            if denial is not None:
                why = denial.message
        if why is not None:
            return failed(rule, target, why)
    stream = firehose_backends[account][region].delivery_streams.get(name)
    if stream is None:
        return failed(rule, target, f"ResourceNotFoundException: Firehose {name} not found")
    if core.transitional(core.STREAMS_CREATING.get(stream.delivery_stream_arn)):
        return failed(rule, target, f"ResourceNotFoundException: Firehose {name} is not ACTIVE")
    try:
        data = target_input(target, event)
    except Exception as e:  # an InputTransformer that does not produce JSON moto can read
        return failed(rule, target, f"the target's input could not be made: {e}")
    key = (account, region, name)
    with _MUTEX:
        first = key not in BUFFERS
        BUFFERS.setdefault(key, []).append(data)
    if first:
        # Firehose buffers records (BufferingHints, 300 s by default for S3) before it writes them.
        deliver.later(deliver.delay(), lambda: flush_stream(key))


def flush_stream(key: tuple[str, str, str]) -> None:
    """The stream's buffered records, written as one batch as the stream's role (the extension's
    PutRecordBatch path: put_batch_when_active, then checked_put)."""
    from moto.firehose.models import firehose_backends

    with _MUTEX:
        records = BUFFERS.pop(key, [])
    if not records:
        return
    account, region, name = key
    try:
        firehose_backends[account][region].put_record_batch(name, [{"Data": r} for r in records])
    except Exception as e:  # the stream went away, or is no longer ACTIVE: the records are lost
        log(f"firehose {name} ({account}, {region}): {len(records)} buffered record(s) not delivered: {e}")


def firehose_s3_write(backend: Any, name: str, version_id: str, dest: dict, records: list[dict]) -> list[dict]:
    """Writes a batch to the stream's S3 destination as Firehose names and encodes it: the records
    concatenated (a newline after each with the AppendDelimiterToRecord processor), compressed as
    CompressionFormat says with its file extension (GZIP `.gz`, ZIP `.zip`), or the stream's
    FileExtension, under `PREFIX` + `YYYY/MM/dd/HH/` + `STREAM-VERSION-YYYY-MM-dd-HH-MM-SS-UUID`
    (https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html; moto's name), SSE-KMS with
    the stream's key when it has one. Called by the extension's checked_put once the write is allowed."""
    delimiter = any(p.get("Type") == "AppendDelimiterToRecord"
                    for p in ((dest.get("ProcessingConfiguration") or {}).get("Processors") or []))
    data = b"".join(bytes(r["Data"]) + (b"\n" if delimiter else b"") for r in records)
    compression = dest.get("CompressionFormat") or "UNCOMPRESSED"
    extension_ = ""
    if compression == "GZIP":
        data, extension_ = gzip.compress(data), ".gz"
    elif compression == "ZIP":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, data)
        data, extension_ = buf.getvalue(), ".zip"
    extension_ = dest.get("FileExtension") or extension_
    key = backend._format_s3_object_path(name, version_id, dest.get("Prefix", "")) + extension_
    kms = ((dest.get("EncryptionConfiguration") or {}).get("KMSEncryptionConfig") or {}).get("AWSKMSKeyARN")
    bucket = dest["BucketARN"].split(":")[-1]
    deliver.put_object(bucket, key, data, kms, "application/octet-stream")
    return [{"RecordId": str(uuid.uuid4())} for _ in records]


def install_events() -> None:
    """moto's Rule.send_to_targets, extended: disabled rules match nothing; event bus, Firehose and
    Step Functions targets are invoked as EventBridge invokes them (above); moto's own targets (CloudWatch Logs, SQS,
    archives, API destinations) as moto did."""
    from moto.events import models as ev

    original = ev.Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):  # type: ignore[no-untyped-def]
        # "A rule can be ENABLED or DISABLED ... a disabled rule doesn't match any events"
        # (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_DisableRule.html: "When you
        # disable a rule, incoming events don't trigger it").
        if self.state != "ENABLED" or not self.event_pattern.matches_event(original_event):
            return
        event = aws_event(original_event)
        for target in list(self.targets):
            arn = str(target.get("Arn", ""))
            service, resource = arn.split(":")[2] if arn.count(":") >= 5 else "", arn.split(":", 5)[-1]
            metric(self.account_id, self.region_name, "AWS/Events", "Invocations",
                   [{"Name": "RuleName", "Value": self.name}])
            if service == "events" and resource.startswith("event-bus/"):
                invoke_bus(self, target, event)
            elif service == "firehose":
                invoke_firehose(self, target, event)
            elif service == "states":
                invoke_states(self, target, event)
            else:
                only = copy.copy(self)
                only.targets = [target]
                try:
                    original(only, moto_event(original_event), transform_input)
                except NotImplementedError:
                    failed(self, target, "the local cloud does not invoke this kind of target")

    ev.Rule.send_to_targets = send_to_targets


# ---------------------------------------------------------------------------------------------------
# 4. Session Manager: managed instances, sessions and their logs


# Session ID -> the session (with private _account, _region, _prefs fields).
SESSIONS: dict[str, dict] = {}
PREFERENCES = "SSM-SessionManagerRunShell"
# Sessions that log nothing: "Logging isn't available for Session Manager sessions that connect
# through port forwarding or SSH" (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-logging.html).
UNLOGGED = ("AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost", "AWS-StartSSHSession")


def information(inst: dict) -> dict:
    """An instance as DescribeInstanceInformation lists it
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html)."""
    online = agent_refusal(inst, PING) is None
    hybrid = inst["instanceId"].startswith("mi-")
    out = {"InstanceId": inst["instanceId"], "PingStatus": "Online" if online else "ConnectionLost",
           "LastPingDateTime": time.time() if online else inst["registered"], "AgentVersion": "3.3.1142.0",
           "IsLatestVersion": True, "PlatformType": "Linux", "PlatformName": inst.get("platformName", "Amazon Linux"),
           "PlatformVersion": inst.get("platformVersion", "2023"), "IamRole": inst["roleName"],
           "ResourceType": "ManagedInstance" if hybrid else "EC2Instance",
           "ComputerName": inst.get("computerName", f"{inst['instanceId']}.local"), "IPAddress": "10.0.0.10",
           "AssociationStatus": "Success", "SourceId": inst["instanceId"],
           "SourceType": "AWS::SSM::ManagedInstance" if hybrid else "AWS::EC2::Instance"}
    if hybrid:
        out["RegistrationDate"] = inst["registered"]
    return out


def preferences(account: str, region: str, document: str) -> dict:
    """The inputs a session runs with: the account's SSM-SessionManagerRunShell preferences for a shell
    (no DocumentName, or that document), a Session document of the account's own its own inputs,
    nothing for port forwarding and SSH."""
    from moto.ssm.models import ssm_backends

    if document in UNLOGGED:
        return {}
    name = document if not document.lower().startswith(resources.AWS_DOCUMENT_PREFIXES) else PREFERENCES
    docs = ssm_backends[account][region]._documents.get(name)
    if docs is None:
        return {}
    try:
        content = docs.get_default_version().content
        doc = content if isinstance(content, dict) else json.loads(content)
    except (ValueError, TypeError):
        return {}
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    return dict(inputs) if isinstance(inputs, dict) else {}


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def bucket_region(bucket: str) -> str | None:
    from moto.s3.models import s3_backends

    owner = s3_backends.bucket_accounts.get(bucket)
    if owner is None:
        return None
    found = s3_backends[owner[1]][owner[0]].buckets.get(bucket)
    return getattr(found, "region_name", None) if found is not None else None


def session_failure(session: dict, inst: dict, caller: Any) -> str | None:
    """Why the session fails as it starts, or None: the session data key (kmsKeyId) the user's client
    cannot kms:GenerateDataKey with or the agent cannot kms:Decrypt with; or, with
    s3EncryptionEnabled, the bucket's encryption the agent cannot read ("Couldn't start the session
    because we are unable to validate encryption on Amazon S3 bucket")."""
    prefs = session["_prefs"]
    region = session["_region"]
    key_id = str(prefs.get("kmsKeyId") or "")
    if key_id and policies.enabled():
        key = resources.kms_key(region, session["_account"], key_id)
        if key is None:
            return f"KMSEncryption failed: key {key_id} does not exist"
        # The client asks for the data key with the session's encryption context, and the agent
        # decrypts it with the same (the Session Manager plugin's and agent's KMSEncryption handshake).
        context = {"aws:ssm:SessionId": session["SessionId"], "aws:ssm:TargetId": session["Target"]}
        for who, principal, action in (("client", caller, "GenerateDataKey"), ("instance", agent(inst), "Decrypt")):
            if principal is None:
                continue
            params = {"KeyId": key.arn, "EncryptionContext": context}
            denial = authz.authorize(principal, aws_request.Req("kms", action, params, key.arn.split(":")[3]))
            if denial is not None:
                return f"KMSEncryption failed on {who}: AccessDeniedException: {denial.message}"
    bucket = str(prefs.get("s3BucketName") or "")
    if bucket and truthy(prefs.get("s3EncryptionEnabled")):
        where = bucket_region(bucket)
        if where is None:
            return ("Couldn't start the session because we are unable to validate encryption on Amazon S3 bucket. "
                    f"Error: NoSuchBucket: The specified bucket does not exist ({bucket})")
        if policies.enabled():
            req = aws_request.Req("s3", "GetBucketEncryption", {}, where, "GET", f"/{bucket}", {"encryption": [""]}, {})
            denial = authz.authorize(agent(inst), req)
            if denial is not None:
                return ("Couldn't start the session because we are unable to validate encryption on Amazon S3 bucket. "
                        f"Error: AccessDenied: {denial.message}")
        # A bucket with no encryption configuration of its own is encrypted with SSE-S3: "By default,
        # all buckets have a default encryption configuration that uses server-side encryption with
        # Amazon S3 managed keys (SSE-S3)" (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketEncryption.html),
        # so no bucket fails the agent's check for want of encryption.
    return None


def s3_path(prefix: str, name: str) -> str:
    """The agent's fileutil.BuildS3Path: the prefix and the name joined by one slash."""
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def upload_log(session_id: str) -> None:
    """The agent uploads the session's log as the instance role when the session ends
    (`finishLogging`: `PREFIX/SESSIONID.log`, Content-Type text/plain, the bucket's default
    encryption). A refused upload is only in the agent's own log on AWS; here it is also the session's
    Details. The session's OutputUrl names the object either way, as the agent reports it."""
    session = SESSIONS.get(session_id)
    inst = INSTANCES.get((session["_account"], session["_region"], session["Target"])) if session else None
    if session is None:
        return
    prefs = session["_prefs"]
    bucket = str(prefs.get("s3BucketName") or "")
    if not bucket:
        return
    key = s3_path(str(prefs.get("s3KeyPrefix") or ""), f"{session_id}.log")
    where = bucket_region(bucket)
    why = None
    if where is None:
        why = f"NoSuchBucket: The specified bucket does not exist ({bucket})"
    elif inst is None:
        why = "the instance is no longer registered"
    elif policies.enabled():
        req = aws_request.Req("s3", "PutObject", {}, where, "PUT", f"/{bucket}/{key}", {}, {"content-type": "text/plain"})
        role = instance_role(inst)
        denial = authz.authorize(agent(inst), req) if role is not None else None
        if role is None:
            why = f"role {inst['roleName']} does not exist"
        elif denial is not None:
            why = f"AccessDenied: {denial.message}"
    session["OutputUrl"] = {"S3OutputUrl": f"https://s3.{where or session['_region']}.amazonaws.com/{bucket}/{key}",
                            "CloudWatchOutputUrl": ""}
    if why is not None:
        session["Details"] = f"Failed to upload session log to s3://{bucket}/{key}: {why}"
        log(f"session {session_id}: {session['Details']}")
        return
    started = datetime.datetime.fromtimestamp(session["StartDate"], datetime.UTC)
    text = (f"Script started on {started:%Y-%m-%d %H:%M:%S+0000}\n"
            f"[session {session_id} on {session['Target']} by {session['Owner']}]\n"
            f"sh-5.2$ exit\nexit\n").encode()
    deliver.put_object(bucket, key, text, None, "text/plain")


def ssm_error(start_response: Callable, code: str, message: str, status: int = 400) -> list[bytes]:

    return core.respond(start_response, status, {"__type": code, "message": message}, error=code)


def caller_of(environ: dict, cred: Any) -> Any:

    return principals.principal_for(cred.key, core.session_token(environ))


def start_session(account: str, region: str, body: dict, caller: Any) -> dict:
    """StartSession, once authorized and validated (ssm.ssm_start_session found the target
    connected): the session, its ID `NAME-RANDOM` (the caller's user or role session name)."""
    target = target_id(str(body.get("Target") or ""))
    inst = INSTANCES[(account, region, target)]
    name = "root"
    if caller is not None and caller.kind == "role":
        name = caller.session_arn.rsplit("/", 1)[-1]
    elif caller is not None and caller.kind == "user":
        name = caller.arn.rsplit("/", 1)[-1]
    session_id = f"{name}-{uuid.uuid4().hex[:17]}"
    document = str(body.get("DocumentName") or PREFERENCES)
    session = {"SessionId": session_id, "Target": target, "Status": "Connected", "StartDate": time.time(),
               "DocumentName": document, "Owner": caller.shown() if caller is not None else f"arn:aws:iam::{account}:root",
               "MaxSessionDuration": "", "AccessType": "Standard", "_account": account, "_region": region,
               "_prefs": preferences(account, region, document)}
    if body.get("Reason"):
        session["Reason"] = str(body["Reason"])
    SESSIONS[session_id] = session
    why = session_failure(session, inst, caller)
    if why is not None:
        session.update(Status="Failed", EndDate=time.time(), Details=why)
        log(f"session {session_id}: {why}")
    return {"SessionId": session_id, "TokenValue": uuid.uuid4().hex + uuid.uuid4().hex,
            "StreamUrl": f"wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{session_id}?role=publish_subscribe"}


def terminate_session(account: str, region: str, body: dict) -> dict:
    """TerminateSession: the session ends; the agent then uploads its log (after the delay)."""
    session_id = str(body.get("SessionId") or "")
    session = SESSIONS.get(session_id)
    if session is not None and (session["_account"], session["_region"]) == (account, region) \
            and session["Status"] in ("Connected", "Connecting", "Disconnected"):
        session.update(Status="Terminated", EndDate=time.time())
        deliver.later(deliver.delay(), lambda: upload_log(session_id))
    return {"SessionId": session_id}


ACTIVE_STATES = ("Connected", "Connecting", "Disconnected", "Terminating")


def describe_sessions(account: str, region: str, body: dict) -> dict:
    """DescribeSessions: State Active (Connected, Connecting, Disconnected, Terminating) or History
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeSessions.html)."""
    state = body.get("State")
    if state not in ("Active", "History"):
        raise ValueError("State must be Active or History")
    items = []
    for s in SESSIONS.values():
        if (s["_account"], s["_region"]) != (account, region):
            continue
        if (s["Status"] in ACTIVE_STATES) != (state == "Active"):
            continue
        ok = True
        for f in body.get("Filters") or []:
            key, value = f.get("key"), str(f.get("value", ""))
            if key == "InvokedAfter":
                ok = ok and s["StartDate"] >= parse_date(value)
            elif key == "InvokedBefore":
                ok = ok and s["StartDate"] <= parse_date(value)
            elif key in ("Target", "Owner", "Status", "SessionId", "AccessType"):
                ok = ok and str(s.get(key, "")) == value
        if ok:
            items.append({k: v for k, v in s.items() if not k.startswith("_") and v != ""})
    items.sort(key=lambda s: -s["StartDate"])

    return core.paged(items, "Sessions", body.get("NextToken"), body.get("MaxResults"), 20, "NextToken")


def parse_date(value: str) -> float:
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float(value)


def describe_instance_information(account: str, region: str, body: dict) -> dict:
    wanted: dict[str, list[str]] = {}
    for f in body.get("Filters") or []:
        wanted[str(f.get("Key"))] = [str(v) for v in f.get("Values") or []]
    for f in body.get("InstanceInformationFilterList") or []:
        wanted[str(f.get("key"))] = [str(v) for v in f.get("valueSet") or []]
    fields = {"InstanceIds": "InstanceId", "PingStatus": "PingStatus", "ResourceType": "ResourceType",
              "IamRole": "IamRole", "PlatformTypes": "PlatformType", "AgentVersion": "AgentVersion",
              "AssociationStatus": "AssociationStatus"}
    # Filters by tag: "tag-key" (any of the keys) and "tag:KEY" (any of the values)
    # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformationStringFilter.html).
    def tagged(inst: dict, key: str, values: list[str]) -> bool | None:
        tags = inst.get("tags") or {}
        if key == "tag-key":
            return any(v in tags for v in values)
        if key.startswith("tag:"):
            return tags.get(key[4:]) in values
        return None

    items = []
    for (acct, reg, _), inst in sorted(INSTANCES.items()):
        if (acct, reg) != (account, region):
            continue
        info = information(inst)
        if all(str(info.get(fields.get(k, k), "")) in v if tagged(inst, k, v) is None else tagged(inst, k, v)
               for k, v in wanted.items() if v):
            items.append(info)

    return core.paged(items, "InstanceInformationList", body.get("NextToken"), body.get("MaxResults"), 50,
                           "NextToken")


SSM_OPERATIONS = {"StartSession", "TerminateSession", "DescribeSessions", "DescribeInstanceInformation"}


def answer(environ: dict, start_response: Callable, cred: Any) -> list[bytes] | None:
    """The extension's hook: /assure-api/managed-instances, and the Session Manager operations (once
    authorized and validated), or None for anything else."""

    if environ.get("PATH_INFO") == "/assure-api/managed-instances":
        return managed_instances_api(environ, start_response)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if cred is None or cred.service != "ssm" or not target.startswith("AmazonSSM."):
        return None
    operation = target.split(".", 1)[1]
    if operation not in SSM_OPERATIONS:
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return ssm_error(start_response, "ValidationException", "The request body is not JSON.")
    from moto.iam.models import get_account_id_from

    account, region = get_account_id_from(cred.key), cred.region
    with core.LOCK:
        try:
            if operation == "StartSession":
                out = start_session(account, region, body, caller_of(environ, cred))
            elif operation == "TerminateSession":
                out = terminate_session(account, region, body)
            elif operation == "DescribeSessions":
                out = describe_sessions(account, region, body)
            else:
                out = describe_instance_information(account, region, body)
        except ValueError as e:
            return ssm_error(start_response, "ValidationException", str(e))
        except KeyError:
            return ssm_error(start_response, "TargetNotConnected", f"{body.get('Target')} is not connected.")
    return core.respond(start_response, 200, out)


def managed_instances_api(environ: dict, start_response: Callable) -> list[bytes]:
    """POST {"account", "region", "instanceId" (i-… or mi-…), "roleName"}: registers a managed instance
    whose SSM Agent runs with that role of the account (the local cloud's stand-in for an instance with
    an instance profile, or a hybrid activation); GET ?account=&region=: the registrations; DELETE
    ?account=&region=&instanceId=: deregisters one. Local only, like /assure-api/account-owner."""
    from moto.iam.models import iam_backends


    respond = core.respond
    method = environ.get("REQUEST_METHOD", "GET")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return respond(start_response, 400, {"message": "a JSON object"}, error="ValidationError")
    doc = {**query, **doc}
    account, region = str(doc.get("account", "")), str(doc.get("region", ""))
    with core.LOCK:
        if method == "GET":
            items = [dict(i) for (a, r, _), i in sorted(INSTANCES.items())
                     if (not account or a == account) and (not region or r == region)]
            return respond(start_response, 200, {"instances": items})
        instance_id = str(doc.get("instanceId", ""))
        if not re.fullmatch(r"\d{12}", account) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region) \
                or not INSTANCE_ID.fullmatch(instance_id):
            return respond(start_response, 400, {"message": "account: 12 digits; region: a Region; instanceId: i-… or mi-…"},
                           error="ValidationError")
        if method == "DELETE":
            found = INSTANCES.pop((account, region, instance_id), None)
            return respond(start_response, 200 if found else 404, {"deleted": found is not None},
                           error=None if found else "NotFound")
        if method != "POST":
            return respond(start_response, 400, {"message": "GET, POST or DELETE"}, error="ValidationError")
        role = str(doc.get("roleName", ""))
        if not any(r.name == role for r in iam_backends[account]["aws"].roles.values()):
            return respond(start_response, 404, {"message": f"no role {role} in account {account}"}, error="NoSuchEntity")
        inst = {"account": account, "region": region, "instanceId": instance_id, "roleName": role,
                "registered": time.time()}
        for k in ("platformName", "platformVersion", "computerName"):
            if doc.get(k):
                inst[k] = str(doc[k])
        # The instance's tags, which DescribeInstanceInformation's tag filters read.
        tags = doc.get("tags") or {}
        if not isinstance(tags, dict):
            return respond(start_response, 400, {"message": "tags: an object of key to value"}, error="ValidationError")
        inst["tags"] = {str(k): str(v) for k, v in tags.items()}
        INSTANCES[(account, region, instance_id)] = inst
        return respond(start_response, 200, dict(inst, pingStatus=information(inst)["PingStatus"]))


# ---------------------------------------------------------------------------------------------------


def install() -> None:
    """Installs the hooks (once): extension.patch_moto calls it."""
    if _INSTALLED["done"]:
        return
    _INSTALLED["done"] = True
    install_access_analyzer()
    install_resource_hooks()
    install_events()
