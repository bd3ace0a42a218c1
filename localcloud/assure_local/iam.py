"""IAM as AWS evaluates it, for the local cloud.

Every client request is authorized here before moto or the extension answers it, following the
documented policy evaluation logic:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- an explicit Deny in any applicable policy wins;
- the SCPs of the caller's account (the root, every OU above the account, the account) bound what any
  principal of a member account may do: each level needs an Allow, and a Deny at any level denies
  (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_evaluation.html);
  the management account and service-linked roles are not affected;
- within an account, an identity-based policy or a resource-based policy naming the principal allows;
- across accounts, both the caller's identity policy and the resource's policy must allow
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html);
- KMS: the key policy is required; it names the principal or delegates to the account (its root), and
  then the account's IAM policies decide
  (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html);
- sts:AssumeRole: the role's trust policy must allow the caller, and for a caller of another account
  its identity policy too (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html);
- a permissions boundary (a user's or a role's) and session policies (AssumeRole's Policy and
  PolicyArns) limit what identity-based policies grant: the identity-based permissions are what the
  identity policies, the boundary and the session policies all allow, and an explicit deny in any of
  them denies. A resource-based policy in the same account that names a user's ARN or a role
  session's ARN grants past them; one that names the role's ARN (or everyone) is still limited by the
  boundary and the session policies; one that names the account delegates to the identity-based
  permissions (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html);
- the root user of an account may do everything in it by identity (no IAM policy, no boundary), but
  SCPs bind it in a member account, and a centralized root session (sts:AssumeRoot) is limited to its
  task policy, which acts as a session policy
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user-privileged-task.html);
- an identity provider (sts:AssumeRoleWithWebIdentity, AssumeRoleWithSAML) and S3's anonymous user
  have no identity policy and no SCP: only the trust or bucket policy can allow them, by naming the
  provider ("Federated") or everyone ("*");
- condition keys the service documents for IAM policies only (kms:ResourceAliases) are missing when a
  resource policy is evaluated.

This module decides; `authz.py` works out, for each request, who asks, for which action, on which
resources and with which context keys.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Principal:
    """Who makes a request."""

    # "root", "user", "role" (an assumed-role session), "service" (a service principal), "federated"
    # (a web identity or SAML provider, signing in through sts:AssumeRoleWith*), "anonymous" (an
    # unsigned request, which only S3 serves)
    kind: str
    account: str
    # The ARN IAM conditions see as aws:PrincipalArn: the user, the role (not the session), the root.
    arn: str
    # The ARN that error messages name: for a role session, arn:aws:sts::A:assumed-role/R/S.
    session_arn: str = ""
    policies: list[dict] = field(default_factory=list)
    service_linked: bool = False
    org_id: str | None = None
    # The user's or role's permissions boundary (PutUserPermissionsBoundary, PutRolePermissionsBoundary):
    # None when it has none. It "sets the maximum permissions that an identity-based policy can grant"
    # and grants nothing itself
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
    boundary: dict | None = None
    # The session policies of a role session (AssumeRole's Policy and PolicyArns; a centralized root
    # session's task policy): None when the session was given none. "The resulting session's
    # permissions are the intersection of the role's identity-based policy and the session policies"
    # (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html, Policy, PolicyArns).
    session_policies: list[dict] | None = None
    # A session of the root user obtained with sts:AssumeRoot (centralized root access): its requests
    # carry aws:AssumedRoot = "true"
    # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-assumedroot).
    assumed_root: bool = False

    def shown(self) -> str:
        return self.session_arn or self.arn


def as_list(v: Any) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def parse(doc: Any) -> dict | None:
    if doc is None:
        return None
    if isinstance(doc, dict):
        return doc
    if isinstance(doc, (bytes, str)):
        text = doc.decode() if isinstance(doc, bytes) else doc
        if not text.strip():
            return None
        try:
            from urllib.parse import unquote

            if text.lstrip().startswith("%7B"):
                text = unquote(text)
            return json.loads(text)
        except ValueError:
            return None
    return None


def glob(pattern: str, value: str, case: bool = True) -> bool:
    """IAM's wildcards: `*` any run of characters (slashes and colons too), `?` one character."""
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern == value if case else pattern.lower() == value.lower()
    return _compiled(pattern, case).fullmatch(value) is not None


@functools.lru_cache(maxsize=8192)
def _compiled(pattern: str, case: bool) -> re.Pattern:
    """A pattern's regular expression, built once: every request is evaluated against the same few
    hundred statements, and building it each time was a tenth of the local cloud's time in a bulk run."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(rx, re.DOTALL if case else re.DOTALL | re.IGNORECASE)


def substitute(value: str, ctx: dict) -> str:
    """Policy variables such as ${aws:PrincipalAccount}."""

    def one(m: re.Match) -> str:
        key = m.group(1)
        v = lookup(ctx, key)
        return str(v[0]) if v else m.group(0)

    return re.sub(r"\$\{([^}]+)\}", one, value)


def lookup(ctx: dict, key: str) -> list | None:
    for k, v in ctx.items():
        if k.lower() == key.lower():
            return as_list(v)
    return None


def action_matches(patterns: list, action: str) -> bool:
    return any(glob(p, action, case=False) for p in patterns)


def resource_matches(patterns: list, resource: str, ctx: dict) -> bool:
    return any(glob(substitute(p, ctx), resource) for p in patterns)


def arn_like(pattern: str, value: str) -> bool:
    # ArnLike compares each of the six colon-separated parts; a wildcard does not cross a colon in the
    # first five (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN).
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != 6 or len(v) != 6:
        return False
    return all(glob(a, b) for a, b in zip(p, v, strict=False))


def truthy(v: Any) -> str:
    return str(v).lower()


OPERATORS = {
    "StringEquals": lambda c, p: c == p,
    "StringNotEquals": lambda c, p: c == p,
    "StringEqualsIgnoreCase": lambda c, p: c.lower() == p.lower(),
    "StringNotEqualsIgnoreCase": lambda c, p: c.lower() == p.lower(),
    "StringLike": lambda c, p: glob(p, c),
    "StringNotLike": lambda c, p: glob(p, c),
    "ArnEquals": lambda c, p: c == p,
    "ArnNotEquals": lambda c, p: c == p,
    "ArnLike": lambda c, p: arn_like(p, c),
    "ArnNotLike": lambda c, p: arn_like(p, c),
    "Bool": lambda c, p: truthy(c) == truthy(p),
    "NumericEquals": lambda c, p: float(c) == float(p),
    "NumericLessThan": lambda c, p: float(c) < float(p),
    "NumericLessThanEquals": lambda c, p: float(c) <= float(p),
    "NumericGreaterThan": lambda c, p: float(c) > float(p),
    "NumericGreaterThanEquals": lambda c, p: float(c) >= float(p),
}
NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


class UnsupportedCondition(Exception):
    pass


# Context keys that only identity-based policies (and SCPs, which bound them) see: "Policy type: IAM
# policies only" (kms:ResourceAliases,
# https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases).
# A key policy naming one finds it missing.
IDENTITY_ONLY_KEYS = {"kms:resourcealiases"}


def for_resource_policies(ctx: dict) -> dict:
    return {k: v for k, v in ctx.items() if k.lower() not in IDENTITY_ONLY_KEYS}


def null_value(actual: list | None) -> bool:
    """A key that is missing, or whose value is empty (an empty string or an empty set of values),
    counts as null: "You can prevent missing context keys or context keys with empty values from
    evaluating to true by including a Null condition operator in your policy with a value of false"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html)."""
    return actual is None or all(v is None or v == "" for v in actual)


def condition_holds(op: str, key: str, expected: Any, ctx: dict) -> bool:
    """One condition operator over one key, as documented in the condition operators reference
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
    and, for the set operators, "Single-valued vs. multivalued context keys"
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html):
    - ForAllValues: every value in the request matches (an operator and its negation are applied to
      each value on its own); true as well when the key is missing or its set is empty.
    - ForAnyValue: at least one value in the request matches; false when the key is missing or empty.
    A negated operator matches a value that matches none of the policy's values, so
    `ForAllValues:StringNotEquals` holds when no value of the request is one of the policy's, and
    `ForAnyValue:StringNotEquals` when some value of the request is not one of them."""
    quantifier = None
    if ":" in op and op.split(":", 1)[0] in ("ForAnyValue", "ForAllValues"):
        quantifier, op = op.split(":", 1)
    if_exists = op.endswith("IfExists")
    if if_exists:
        op = op[: -len("IfExists")]
    actual = lookup(ctx, key)
    if op == "Null":
        # Null: true means the key must be absent (or empty); false that it must be present.
        return null_value(actual) == (truthy(as_list(expected)[0]) == "true")
    if op not in OPERATORS:
        raise UnsupportedCondition(op)
    test = OPERATORS[op]
    wanted = [substitute(str(w), ctx) if isinstance(w, str) else w for w in as_list(expected)]
    negated = op in NEGATED

    def matches(value: Any) -> bool:
        """The operator over one value of the request: a positive operator matches a value equal to
        (like, ...) any of the policy's values, a negated one a value that matches none of them."""
        found = any(test(str(value), str(w)) for w in wanted)
        return not found if negated else found

    if quantifier == "ForAllValues":
        return all(matches(a) for a in actual or [])
    if quantifier == "ForAnyValue":
        if actual is None:
            return if_exists
        return any(matches(a) for a in actual)
    if actual is None:
        # A missing key matches nothing; a negated operator over a missing key is true; IfExists is true.
        return if_exists or negated
    if negated:
        return all(matches(a) for a in actual)
    return any(matches(a) for a in actual)


def conditions_hold(block: dict | None, ctx: dict) -> bool:
    for op, pairs in (block or {}).items():
        for key, expected in pairs.items():
            if not condition_holds(op, key, expected, ctx):
                return False
    return True


# How a resource-based policy statement names the principal, which decides what else must allow:
# DIRECT: the principal itself (an IAM user's ARN, a role session's ARN, the root user by its
#   account, a service, an identity provider, the anonymous user): "Within the same account,
#   resource-based policies that grant permissions to an IAM user ARN ... are not limited by an
#   implicit deny in an identity-based policy or permissions boundary", and those that "grant
#   permissions to an IAM role session ARN grant permissions directly to the assumed role session ...
#   not limited by an implicit deny in an identity-based policy, a permissions boundary, or session
#   policy" (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html,
#   "Resource-based policies"; https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html).
# ENTITY: the role's ARN: "Resource-based policies that grant permissions to an IAM role ARN are
#   limited by an implicit deny in a permissions boundary or session policy" (same page); no identity
#   policy is needed. A grant to everyone ("*", or NotPrincipal's "everyone but") names no principal
#   directly, so it is limited the same way (the documented exemption is for a user's or a session's
#   ARN only).
# ACCOUNT: the account (its ID or its root ARN): a delegation, the account's identity-based
#   permissions decide (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts).
DIRECT, ENTITY, ACCOUNT = "direct", "entity", "account"


def naming(stmt: dict, principal: Principal) -> str | None:
    """How `stmt` names `principal` (DIRECT, ENTITY, ACCOUNT), or None when it does not."""
    if "NotPrincipal" in stmt:
        if stmt.get("Effect") == "Deny" and principal.boundary is not None:
            # "The NotPrincipal element with a Deny effect will always deny any IAM principal that
            # has a permissions boundary policy attached, regardless of the values specified in the
            # NotPrincipal element" (access_policies_boundaries.html, "Important").
            return ENTITY
        named = naming({"Principal": stmt["NotPrincipal"]}, principal)
        return None if named else ENTITY
    p = stmt.get("Principal")
    if p == "*":
        return DIRECT if principal.kind in ("service", "federated", "anonymous") else ENTITY
    if not isinstance(p, dict):
        return None
    if principal.kind == "service":
        return DIRECT if any(s == principal.arn for s in as_list(p.get("Service"))) else None
    if principal.kind == "federated":
        return DIRECT if any(f == principal.arn for f in as_list(p.get("Federated"))) else None
    if principal.kind == "anonymous":
        # Only "*" (or {"AWS": "*"}) names everyone, anonymous users included
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-anonymous).
        return DIRECT if "*" in as_list(p.get("AWS")) else None
    found = None
    for value in as_list(p.get("AWS")):
        if value == "*":
            kind = ENTITY
        elif value in (principal.account, f"arn:aws:iam::{principal.account}:root"):
            # The root user is the account. A centralized root session (sts:AssumeRoot) acts as the
            # root user but only within its task policy, so a grant to the account stays limited
            # by it (an assumption: AWS documents no resource-policy exemption for these sessions).
            kind = ACCOUNT if principal.kind != "root" else (ENTITY if principal.assumed_root else DIRECT)
        elif principal.session_arn and value == principal.session_arn:
            kind = DIRECT
        elif value == principal.arn:
            kind = DIRECT if principal.kind == "user" else ENTITY
        else:
            continue
        # The most direct naming wins: a statement naming both the session and the account grants
        # to the session.
        order = (DIRECT, ENTITY, ACCOUNT)
        if found is None or order.index(kind) < order.index(found):
            found = kind
    return found


def principal_matches(stmt: dict, principal: Principal) -> tuple[bool, bool]:
    """Whether a resource policy statement names the principal: (matches, only through its account).

    Naming the account (its root ARN or its id) delegates to the account: its IAM policies decide."""
    kind = naming(stmt, principal)
    return kind is not None, kind == ACCOUNT


def statements(doc: dict | None) -> list[dict]:
    return [s for s in as_list((doc or {}).get("Statement")) if isinstance(s, dict)]


def stmt_applies(stmt: dict, action: str, resource: str, ctx: dict, with_resource: bool = True) -> bool:
    if "Action" in stmt and not action_matches(as_list(stmt["Action"]), action):
        return False
    if "NotAction" in stmt and action_matches(as_list(stmt["NotAction"]), action):
        return False
    if with_resource:
        if "Resource" in stmt and not resource_matches(as_list(stmt["Resource"]), resource, ctx):
            return False
        if "NotResource" in stmt and resource_matches(as_list(stmt["NotResource"]), resource, ctx):
            return False
    return conditions_hold(stmt.get("Condition"), ctx)


def identity_effects(policies: Iterable[dict], action: str, resource: str, ctx: dict) -> tuple[bool, bool]:
    """(some statement allows, some statement denies)."""
    allow = deny = False
    for doc in policies:
        for s in statements(doc):
            if stmt_applies(s, action, resource, ctx):
                if s.get("Effect") == "Deny":
                    deny = True
                elif s.get("Effect") == "Allow":
                    allow = True
    return allow, deny


@dataclass
class Grants:
    """What a resource-based policy says of one request: which namings allow it, and whether it denies."""

    direct: bool = False
    entity: bool = False
    account: bool = False
    deny: bool = False

    def any(self) -> bool:
        return self.direct or self.entity or self.account


def resource_grants(doc: dict | None, principal: Principal, action: str, resource: str, ctx: dict,
                    with_resource: bool = True) -> Grants:
    g = Grants()
    for s in statements(doc):
        kind = naming(s, principal)
        if kind is None or not stmt_applies(s, action, resource, ctx, with_resource):
            continue
        if s.get("Effect") == "Deny":
            g.deny = True
        elif s.get("Effect") == "Allow":
            setattr(g, kind, True)
    return g


def resource_effects(doc: dict | None, principal: Principal, action: str, resource: str, ctx: dict,
                     with_resource: bool = True) -> tuple[bool, bool, bool]:
    """(allows the principal itself, allows its account (delegation), denies)."""
    g = resource_grants(doc, principal, action, resource, ctx, with_resource)
    return g.direct or g.entity, g.account, g.deny


@dataclass
class Resource:
    arn: str
    account: str | None = None  # the owning account; None when the ARN names none (and then: the caller's)
    policy: dict | None = None  # its resource-based policy, if the service has one
    kind: str = ""  # "kms", "trust", "s3", "sns", or "" (no resource policy)
    # Context keys the service sends for this resource (a KMS key's kms:ResourceAliases).
    context: dict = field(default_factory=dict)


@dataclass
class Decision:
    allowed: bool
    reason: str = ""


# "To ensure that bucket owners don't inadvertently lock themselves out of their own buckets, the root
# principal in a bucket owner's AWS account can perform the GetBucketPolicy, PutBucketPolicy, and
# DeleteBucketPolicy API actions, even if their bucket policy explicitly denies the root principal's
# access. Bucket owner root principals can only be blocked from performing these API actions by VPC
# endpoint policies and AWS Organizations policies"
# (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html; what the root task policy
# S3UnlockBucketPolicy is for).
ROOT_BUCKET_POLICY_ACTIONS = {"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"}


def decide(principal: Principal, action: str, res: Resource, ctx: dict, scps: list[list[dict]] | None) -> Decision:
    """One action on one resource. `scps`: the SCPs at each level above the caller's account (root
    first, the account last), or None when SCPs do not apply to this principal.

    The order is the documented one (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html):
    an explicit deny in any policy (identity-based, permissions boundary, session, SCP, resource-based),
    then the SCPs' allows, then the resource-based policy, then the identity-based policies limited by
    the permissions boundary and the session policies."""
    owner_account = res.account or principal.account
    if owner_account and "aws:ResourceAccount" not in ctx:
        # "aws:ResourceAccount: ... the account ID of the resource owner", in every request
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceaccount).
        ctx = dict(ctx, **{"aws:ResourceAccount": owner_account})
    rctx = for_resource_policies(ctx)
    if principal.kind in ("service", "federated", "anonymous"):
        # No identity policy and no SCP: only the resource's policy can allow. Service principals and
        # identity providers are checked against trust policies here; an anonymous request (S3's)
        # against the bucket policy, which must name "*"
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html).
        direct, _, deny = resource_effects(res.policy, principal, action, res.arn, rctx,
                                           with_resource=principal.kind == "anonymous")
        if deny or not direct:
            return Decision(False, f"the {res.kind or 'resource'} policy does not allow {principal.arn}")
        return Decision(True)
    owner = res.account or principal.account
    cross = owner != principal.account
    root = principal.kind == "root"

    # 1. Explicit denies: identity policies, the permissions boundary, the session policies, SCPs, the
    #    resource policy. "An explicit deny in any of these policies overrides the allow"
    #    (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html).
    id_allow, id_deny = identity_effects(principal.policies, action, res.arn, ctx)
    if id_deny:
        return Decision(False, "with an explicit deny in an identity-based policy")
    # No boundary: nothing limits (allows everything); likewise no session policy.
    bound_allow, bound_deny = (True, False) if principal.boundary is None else \
        identity_effects([principal.boundary], action, res.arn, ctx)
    if bound_deny:
        return Decision(False, "with an explicit deny in a permissions boundary")
    session_allow, session_deny = (True, False) if principal.session_policies is None else \
        identity_effects(principal.session_policies, action, res.arn, ctx)
    if session_deny:
        return Decision(False, "with an explicit deny in a session policy")
    if principal.assumed_root:
        # A centralized root session is the root user, who may do everything in the account, within
        # its task policy; AWS's task policies only deny (every action but the task's), so it is their
        # denies that limit the session
        # (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user-privileged-task.html).
        session_allow = True
    if scps is not None:
        for level in scps:
            allow, deny = identity_effects(level, action, res.arn, ctx)
            if deny:
                return Decision(False, "with an explicit deny in a service control policy")
            if not allow:
                return Decision(False, "because no service control policy allows the " + action + " action")
    g = resource_grants(res.policy, principal, action, res.arn, rctx, with_resource=res.kind != "trust")
    if g.deny and not (root and not cross and res.kind == "s3" and action in ROOT_BUCKET_POLICY_ACTIONS):
        return Decision(False, "with an explicit deny in a resource-based policy")
    if root and not cross:
        # The root user of the account: every action on its own resources by identity (no IAM policy,
        # and a root user has no permissions boundary), except where a KMS key policy does not
        # delegate to the account; a centralized root session stays within its task policy (its
        # session policy).
        if res.kind == "kms" and not g.any():
            return Decision(False, "because the key policy does not allow the account")
        id_allow = True

    # 2. What limits a grant: the boundary and the session policies limit the identity-based
    #    permissions and a resource-based grant to the role's ARN, not one to the user or the session
    #    itself (see `naming`).
    limits = bound_allow and session_allow
    identity = id_allow and limits
    resource = g.direct or (g.entity and limits)

    def no_identity() -> Decision:
        if not id_allow:
            return Decision(False, "because no identity-based policy allows the " + action + " action")
        if not bound_allow:
            return Decision(False, "because no permissions boundary allows the " + action + " action")
        return Decision(False, "because no session policy allows the " + action + " action")

    def limited() -> Decision:
        # A grant to the role's ARN that the boundary or the session policies do not allow.
        return no_identity() if id_allow or not g.entity else Decision(
            False, "because no permissions boundary allows the " + action + " action" if not bound_allow
            else "because no session policy allows the " + action + " action")

    if res.kind == "kms":
        # The key policy is required: it names the principal (then the key policy alone allows), or
        # delegates to the account (then IAM policies must allow too)
        # (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html).
        if not g.any():
            return Decision(False, "because no key policy allows the " + action + " action")
        if cross:
            # A key of another account: "Cross-account access requires permissions in the key policy of
            # the KMS key and in an IAM policy in the external user's account"; "Neither the key policy
            # nor the IAM policy alone is sufficient"
            # (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
            return Decision(True) if identity else no_identity()
        if resource or (g.account and identity):
            return Decision(True)
        return limited() if g.entity and not g.account else no_identity()
    if res.kind == "trust":
        if not g.any():
            return Decision(False, "because the role's trust policy does not allow it")
        if (cross or not resource) and not identity:
            return limited() if g.entity and not g.account and not cross else no_identity()
        return Decision(True)
    if cross:
        if not identity:
            return no_identity()
        if res.kind and not g.any():
            return Decision(False, "because no resource-based policy allows the " + action + " action")
        if not res.kind:
            return Decision(False, "because the resource belongs to another account")
        return Decision(True)
    if identity or resource:
        return Decision(True)
    return limited() if g.entity else no_identity()
