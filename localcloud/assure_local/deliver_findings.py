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
   Both wait the local cloud's delay (scheduler.delay, the transition). New findings matching one of
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
     (services/firehose.py: put_batch_when_active and checked_put, rules.firehose_s3_refusal), concatenated
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
services/firehose.py's checked_put writes through `firehose_s3_write`.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from assure_local import core, iam, principals, scheduler
from assure_local.core import replace
from assure_local.events import _MUTEX, emit, install_events, iso
from assure_local.services import access_analyzer

_INSTALLED = {"done": False}


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
        scheduler.later(max(0.0, analyzer["_final"] - time.monotonic()), lambda: full_scan(acct, region, name))
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
        scheduler.later(max(0.0, analyzer["_final"] - time.monotonic()), lambda: full_scan(acct, region, name))


def changed(kind: str, account: str, arn: str) -> None:
    """A role's trust policy or a bucket's policy changed (or the resource was created or deleted):
    analyzed again after the delay."""
    with _MUTEX:
        PENDING.add((kind, account, arn))
        if _SCHEDULED["pending"]:
            return
        _SCHEDULED["pending"] = True
    scheduler.later(scheduler.delay(), analyze_pending)


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

    def __init__(self) -> None:
        init(self)
        SERVICE["analyzer"] = self

    create = cls.create_analyzer

    def create_analyzer(self, call):
        out = create(self, call)
        analyzer_created(call.account, call.region, call.body.get("analyzerName") or "")
        return out

    delete = cls.delete_analyzer

    def delete_analyzer(self, call, name):
        analyzer = self.analyzers.get((call.account, call.region), {}).get(name)
        out = delete(self, call, name)
        if analyzer is not None:
            FINDINGS.pop(analyzer["arn"], None)
        return out

    def analyzer_of(self, call, arn):
        m = re.match(r"^arn:aws:access-analyzer:([^:]+):(\d{12}):analyzer/(.+)$", arn or "")
        found = None
        if m and (m.group(2), m.group(1)) == (call.account, call.region):
            found = self.analyzers.get((call.account, call.region), {}).get(m.group(3))
        if found is None:
            raise ApiError(404, "ResourceNotFoundException", f"Analyzer {arn} not found", resourceId=str(arn),
                           resourceType="Analyzer")
        return found

    def listed(self, call):
        analyzer = analyzer_of(self, call, call.body.get("analyzerArn"))
        items = [f for f in FINDINGS.get(analyzer["arn"], {}).values() if matches(f, call.body.get("filter") or {})]
        sort = call.body.get("sort") or {}
        if sort.get("attributeName"):
            items.sort(key=lambda f: str(f.get(sort["attributeName"], "")), reverse=sort.get("orderBy") == "DESC")
        return items

    def list_findings(self, call, view=summary):
        return core.paged([view(f) for f in listed(self, call)], "findings", call.body.get("nextToken"),
                               call.body.get("maxResults"), 100)

    def list_findings_v2(self, call):
        return list_findings(self, call, summary_v2)

    def one(self, call, id):
        analyzer = analyzer_of(self, call, call.q("analyzerArn"))
        finding = FINDINGS.get(analyzer["arn"], {}).get(id)
        if finding is None:
            raise ApiError(404, "ResourceNotFoundException", f"Finding {id} not found", resourceId=id,
                           resourceType="Finding")
        return finding

    def get_finding(self, call, id):
        return {"finding": summary(one(self, call, id))}

    def get_finding_v2(self, call, id):
        finding = one(self, call, id)
        details = {k: finding[k] for k in ("action", "condition", "isPublic", "principal")}
        return dict(summary_v2(finding), findingDetails=[{"externalAccessDetails": details}])

    def update_findings(self, call):
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

    replace(cls, "__init__", __init__)
    replace(cls, "create_analyzer", create_analyzer)
    replace(cls, "delete_analyzer", delete_analyzer)
    replace(cls, "list_findings", list_findings)
    replace(cls, "list_findings_v2", list_findings_v2)
    replace(cls, "get_finding", get_finding)
    replace(cls, "get_finding_v2", get_finding_v2)
    replace(cls, "update_findings", update_findings)
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

    def created_role(self, *args, **kwargs):
        role = create_role(self, *args, **kwargs)
        changed("role", self.account_id, role.arn)
        return role

    update_trust = IAMBackend.update_assume_role_policy

    def updated_trust(self, role_name, *args, **kwargs):
        out = update_trust(self, role_name, *args, **kwargs)
        changed("role", self.account_id, self.get_role(role_name).arn)
        return out

    delete_role = IAMBackend.delete_role

    def deleted_role(self, role_name, *args, **kwargs):
        role = next((r for r in self.roles.values() if r.name == role_name), None)
        out = delete_role(self, role_name, *args, **kwargs)
        if role is not None:
            changed("role", self.account_id, role.arn)
        return out

    replace(IAMBackend, "create_role", created_role)
    replace(IAMBackend, "update_assume_role_policy", updated_trust)
    replace(IAMBackend, "delete_role", deleted_role)

    def on_bucket(method: str) -> None:
        original = getattr(S3Backend, method)

        def wrapped(self, bucket_name, *args, **kwargs):
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


# ---------------------------------------------------------------------------------------------------
# 4. Session Manager: managed instances, sessions and their logs


# ---------------------------------------------------------------------------------------------------


def install() -> None:
    """Installs the hooks (once): extension.patch_moto calls it."""
    if _INSTALLED["done"]:
        return
    _INSTALLED["done"] = True
    install_access_analyzer()
    install_resource_hooks()
    install_events()
