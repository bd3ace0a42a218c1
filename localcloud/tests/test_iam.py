"""The policy evaluator against AWS's documented policy evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
Each test breaks exactly one rule. Run from localcloud/: python -m pytest tests/test_iam.py (no moto needed)."""

import unittest
from typing import Any, ClassVar

from assure_local import aws_request
from assure_local.iam import Principal, Resource, condition_holds, decide

ALLOW_ALL = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
FULL_ACCESS_SCP = [ALLOW_ALL]


def role(policies, account="111111111111", name="worker"):
    return Principal(kind="role", account=account, arn=f"arn:aws:iam::{account}:role/{name}",
                     session_arn=f"arn:aws:sts::{account}:assumed-role/{name}/s", policies=policies)


def allow(action, resource="*", **extra):
    return {"Statement": [dict({"Effect": "Allow", "Action": action, "Resource": resource}, **extra)]}


class Identity(unittest.TestCase):
    def test_no_policy_is_an_implicit_deny(self):
        assert not decide(role([]), "s3:ListAllMyBuckets", Resource("*"), {}, None).allowed

    def test_an_allow_allows(self):
        assert decide(role([allow("s3:ListAllMyBuckets")]), "s3:ListAllMyBuckets", Resource("*"), {}, None).allowed

    def test_explicit_deny_wins_over_allow(self):
        p = role([ALLOW_ALL, {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}])
        d = decide(p, "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, None)
        assert not d.allowed
        assert "explicit deny" in d.reason

    def test_actions_match_case_insensitively_with_wildcards(self):
        p = role([allow("S3:Get*")])
        assert decide(p, "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, None).allowed
        assert not decide(p, "s3:PutObject", Resource("arn:aws:s3:::b/k"), {}, None).allowed

    def test_not_action_allows_everything_else(self):
        p = role([{"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}])
        assert decide(p, "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, None).allowed
        assert not decide(p, "iam:CreateRole", Resource("arn:aws:iam::111111111111:role/x"), {}, None).allowed

    def test_resource_wildcards_cross_slashes_and_colons(self):
        p = role([allow("logs:PutMetricFilter", "arn:aws:logs:*:111111111111:log-group:assure/*")])
        ok = decide(p, "logs:PutMetricFilter", Resource("arn:aws:logs:eu-west-1:111111111111:log-group:assure/cloudtrail"), {}, None)
        assert ok.allowed
        other = decide(p, "logs:PutMetricFilter", Resource("arn:aws:logs:eu-west-1:111111111111:log-group:other"), {}, None)
        assert not other.allowed

    def test_not_resource(self):
        p = role([{"Statement": [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}]}])
        assert decide(p, "s3:GetObject", Resource("arn:aws:s3:::open/k"), {}, None).allowed
        assert not decide(p, "s3:GetObject", Resource("arn:aws:s3:::secret/k"), {}, None).allowed

    def test_a_statement_scoped_to_an_arn_does_not_match_an_action_without_resources(self):
        # Actions with no resource type are authorized against "*" (policies.takes_resources).
        p = role([allow("states:SendTaskSuccess", "arn:aws:states:us-east-1:111111111111:stateMachine:m")])
        assert not decide(p, "states:SendTaskSuccess", Resource("*"), {}, None).allowed

    def test_policy_variables(self):
        p = role([allow("s3:GetObject", "arn:aws:s3:::home-${aws:PrincipalAccount}/*")])
        ctx = {"aws:PrincipalAccount": "111111111111"}
        assert decide(p, "s3:GetObject", Resource("arn:aws:s3:::home-111111111111/k"), ctx, None).allowed
        assert not decide(p, "s3:GetObject", Resource("arn:aws:s3:::home-222222222222/k"), ctx, None).allowed


class Conditions(unittest.TestCase):
    def test_string_equals_and_not_equals(self):
        ctx = {"aws:RequestTag/assure:managed": "true"}
        assert condition_holds("StringEquals", "aws:RequestTag/assure:managed", "true", ctx)
        assert not condition_holds("StringEquals", "aws:RequestTag/assure:managed", "True", ctx)
        assert not condition_holds("StringNotEquals", "aws:RequestTag/assure:managed", "true", ctx)

    def test_string_like(self):
        ctx = {"aws:PrincipalArn": "arn:aws:iam::1:role/assure-step-config"}
        assert condition_holds("StringLike", "aws:PrincipalArn", "*:role/assure-step-*", ctx)
        assert not condition_holds("StringNotLike", "aws:PrincipalArn", "*:role/assure-step-*", ctx)

    def test_arn_like_matches_part_by_part(self):
        ctx = {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/assure-step-config"}
        assert condition_holds("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/assure-step-*", ctx)
        assert not condition_holds("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/other", ctx)
        assert condition_holds("ArnNotLike", "aws:PrincipalArn", ["arn:aws:iam::*:role/other"], ctx)
        # A wildcard does not reach across the colons that separate an ARN's parts.
        assert not condition_holds("ArnLike", "aws:PrincipalArn", "arn:aws:iam:*", ctx)

    def test_bool(self):
        assert condition_holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": "false"})
        assert not condition_holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": "true"})

    def test_a_missing_key(self):
        # A positive operator over a missing key is false; a negated one is true; IfExists is true.
        assert not condition_holds("StringEquals", "aws:PrincipalOrgID", "o-1", {})
        assert condition_holds("StringNotEquals", "aws:PrincipalOrgID", "o-1", {})
        assert condition_holds("StringEqualsIfExists", "aws:PrincipalOrgID", "o-1", {})
        assert condition_holds("Null", "aws:PrincipalOrgID", "true", {})

    def test_several_values_are_or_and_keys_are_and(self):
        p = role([allow("iam:CreateServiceLinkedRole", "*", Condition={
            "StringEquals": {"iam:AWSServiceName": ["config.amazonaws.com", "guardduty.amazonaws.com"]},
            "Bool": {"aws:SecureTransport": "true"}})])
        ok = {"iam:AWSServiceName": "guardduty.amazonaws.com", "aws:SecureTransport": "true"}
        assert decide(p, "iam:CreateServiceLinkedRole", Resource("*"), ok, None).allowed
        assert not decide(p, "iam:CreateServiceLinkedRole", Resource("*"), dict(ok, **{"aws:SecureTransport": "false"}), None).allowed
        assert not decide(p, "iam:CreateServiceLinkedRole", Resource("*"), dict(ok, **{"iam:AWSServiceName": "ec2.amazonaws.com"}), None).allowed

    def test_an_allow_whose_condition_fails_is_no_allow_not_a_deny(self):
        p = role([allow("s3:*", "*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-other"}}), allow("s3:GetObject")])
        assert decide(p, "s3:GetObject", Resource("arn:aws:s3:::b/k"), {"aws:PrincipalOrgID": "o-1"}, None).allowed


class ServiceControlPolicies(unittest.TestCase):
    def test_an_scp_deny_beats_an_identity_allow(self):
        scp = {"Statement": [{"Effect": "Deny", "Action": "cloudtrail:StopLogging", "Resource": "*"}]}
        d = decide(role([ALLOW_ALL]), "cloudtrail:StopLogging", Resource("arn:aws:cloudtrail:us-east-1:111111111111:trail/t"), {},
                   [FULL_ACCESS_SCP, [ALLOW_ALL, scp]])
        assert not d.allowed
        assert "service control policy" in d.reason

    def test_every_level_must_allow(self):
        only_s3 = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        levels: list[list[Any]] = [FULL_ACCESS_SCP, [only_s3], FULL_ACCESS_SCP]
        assert decide(role([ALLOW_ALL]), "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, levels).allowed
        assert not decide(role([ALLOW_ALL]), "sqs:SendMessage", Resource("arn:aws:sqs:us-east-1:111111111111:q"), {}, levels).allowed

    def test_scps_grant_nothing(self):
        assert not decide(role([]), "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, [FULL_ACCESS_SCP]).allowed

    def test_the_resource_account_is_in_every_request(self):
        # "aws:ResourceAccount": the account that owns the resource
        # (reference_policies_condition-keys.html#condition-keys-resourceaccount): an SCP can spare
        # one account's roles.
        scp = {"Statement": [{"Effect": "Deny", "Action": "iam:TagRole", "Resource": "arn:aws:iam::*:role/assure-*",
                              "Condition": {"StringNotEquals": {"aws:ResourceAccount": "333333333333"}}}]}
        levels: list[list[Any]] = [[ALLOW_ALL, scp]]
        for account, expect in [("333333333333", True), ("444444444444", False)]:
            p = role([ALLOW_ALL], account=account, name="admin")
            res = Resource(f"arn:aws:iam::{account}:role/assure-step-x", account)
            assert decide(p, "iam:TagRole", res, {}, levels).allowed == expect, account

    def test_an_exemption_by_exact_role_arn(self):
        scp = {"Statement": [{"Effect": "Deny", "Action": "iam:*", "Resource": "arn:aws:iam::*:role/assure-*",
                              "Condition": {"ArnNotLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/AssureExecutionRole"]}}}]}
        levels: list[list[Any]] = [[ALLOW_ALL, scp]]
        res = Resource("arn:aws:iam::111111111111:role/assure-evil")
        assure = role([ALLOW_ALL], name="AssureExecutionRole")
        lookalike = role([ALLOW_ALL], name="AssureExecutionRoleX")
        for p, expect in [(assure, True), (lookalike, False)]:
            ctx = {"aws:PrincipalArn": p.arn}
            assert decide(p, "iam:CreateRole", res, ctx, levels).allowed == expect, p.arn


class ResourcePolicies(unittest.TestCase):
    BUCKET = "arn:aws:s3:::logs/AWSLogs/1/x"

    def bucket(self, statement):
        return Resource(self.BUCKET, "222222222222", {"Statement": [statement]}, "s3")

    def test_cross_account_needs_both_sides(self):
        grant = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "s3:PutObject", "Resource": "*"}
        caller = role([allow("s3:PutObject")])
        assert decide(caller, "s3:PutObject", self.bucket(grant), {}, None).allowed
        assert not decide(role([]), "s3:PutObject", self.bucket(grant), {}, None).allowed, "no identity policy"
        assert not decide(caller, "s3:PutObject", Resource(self.BUCKET, "222222222222", None, "s3"), {}, None).allowed, \
                         "no bucket policy"

    def test_same_account_either_side(self):
        grant = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:role/worker"}, "Action": "s3:PutObject", "Resource": "*"}
        caller = role([], account="222222222222")
        assert decide(caller, "s3:PutObject", self.bucket(grant), {}, None).allowed

    def test_a_resource_policy_deny_wins(self):
        deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        caller = role([ALLOW_ALL], account="222222222222")
        assert not decide(caller, "s3:PutObject", self.bucket(deny), {"aws:SecureTransport": "false"}, None).allowed
        assert decide(caller, "s3:PutObject", self.bucket(deny), {"aws:SecureTransport": "true"}, None).allowed

    def test_a_kms_key_needs_its_key_policy(self):
        key = "arn:aws:kms:us-east-1:111111111111:key/k"
        caller = role([ALLOW_ALL])
        no_delegation = Resource(key, "111111111111", {"Statement": []}, "kms")
        assert not decide(caller, "kms:Decrypt", no_delegation, {}, None).allowed
        delegated = Resource(key, "111111111111", {"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}]}, "kms")
        assert decide(caller, "kms:Decrypt", delegated, {}, None).allowed
        assert not decide(role([]), "kms:Decrypt", delegated, {}, None).allowed, "delegation leaves it to IAM"
        named = Resource(key, "111111111111", {"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": caller.arn}, "Action": "kms:CreateAlias", "Resource": "*"}]}, "kms")
        assert decide(role([]), "kms:CreateAlias", named, {}, None).allowed

    def test_a_trust_policy(self):
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "sts:AssumeRole",
                                "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/assure-step-*"}}}]}
        target = Resource("arn:aws:iam::222222222222:role/AssureExecutionRole", "222222222222", trust, "trust")
        step = role([allow("sts:AssumeRole")], name="assure-step-config")
        other = role([allow("sts:AssumeRole")], name="someone")
        assert decide(step, "sts:AssumeRole", target, {"aws:PrincipalArn": step.arn}, None).allowed
        assert not decide(other, "sts:AssumeRole", target, {"aws:PrincipalArn": other.arn}, None).allowed
        unpermitted = role([], name="assure-step-config")
        assert not decide(unpermitted, "sts:AssumeRole", target, {"aws:PrincipalArn": unpermitted.arn}, None).allowed, \
                         "cross-account: the caller's identity policy must allow too"

    def test_a_service_principal(self):
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        target = Resource("arn:aws:iam::111111111111:role/assure-step-config", None, trust, "trust")
        lam = Principal(kind="service", account="", arn="lambda.amazonaws.com")
        states = Principal(kind="service", account="", arn="states.amazonaws.com")
        assert decide(lam, "sts:AssumeRole", target, {}, None).allowed
        assert not decide(states, "sts:AssumeRole", target, {}, None).allowed



class SetOperators(unittest.TestCase):
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
    and its examples page (reference_policies_condition_examples-multi-valued-context-keys.html)."""

    def test_for_all_values_holds_when_the_key_is_missing_or_empty(self):
        # "The ForAllValues set operator also returns true if there are no context keys in the request."
        assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["a"], {})
        assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["a"], {"aws:TagKeys": []})
        assert condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["a", "b"], {"aws:TagKeys": ["a"]})
        assert not condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["a"], {"aws:TagKeys": ["a", "c"]})

    def test_for_any_value_fails_when_the_key_is_missing_or_empty(self):
        assert not condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["a"], {})
        assert not condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["a"], {"aws:TagKeys": []})
        assert condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["a"], {"aws:TagKeys": ["c", "a"]})
        assert condition_holds("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", ["a"], {})

    def test_for_all_values_with_a_negated_operator_tests_each_value(self):
        # The examples page's table for "ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}: a
        # request whose every tag key is key2:… matches; one with key1:… keys does not; none: matches.
        op, key = "ForAllValues:StringNotLike", "aws:TagKeys"
        assert not condition_holds(op, key, "key1*", {key: ["key1:legal"]})
        assert not condition_holds(op, key, "key1*", {key: ["key1:hr", "key1:personnel"]})
        assert condition_holds(op, key, "key1*", {key: ["key2:audit"]})
        assert condition_holds(op, key, "key1*", {})
        # Mixed: one value is like key1*, so not every value is "not like" it.
        assert not condition_holds(op, key, "key1*", {key: ["key1:legal", "key2:audit"]})

    def test_for_any_value_with_a_negated_operator_needs_one_value_outside_the_policy(self):
        op, key = "ForAnyValue:StringNotEquals", "kms:ResourceAliases"
        assert condition_holds(op, key, ["alias/a"], {key: ["alias/a", "alias/b"]})
        assert not condition_holds(op, key, ["alias/a"], {key: ["alias/a"]})
        assert not condition_holds(op, key, ["alias/a"], {})

    def test_an_scp_deny_on_a_key_with_an_alias(self):
        # The SCP shape assure attaches: deny unless the member role, when any alias of the key is the
        # protected one (kms:ResourceAliases, multivalued).
        scp = {"Statement": [{"Effect": "Deny", "Action": "kms:DisableKey", "Resource": "*", "Condition": {
            "ArnNotLike": {"aws:PrincipalARN": "arn:aws:iam::*:role/AssureExecutionRole"},
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/assure-alarms"}}}]}
        p = role([ALLOW_ALL], name="admin")
        key = Resource("arn:aws:kms:us-east-1:111111111111:key/k", "111111111111", {"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}]}, "kms")
        levels: list[list[Any]] = [[ALLOW_ALL, scp]]
        aliased = {"aws:PrincipalArn": p.arn, "kms:ResourceAliases": ["alias/other", "alias/assure-alarms"]}
        assert not decide(p, "kms:DisableKey", key, aliased, levels).allowed
        assert decide(p, "kms:DisableKey", key, {"aws:PrincipalArn": p.arn, "kms:ResourceAliases": ["alias/other"]}, levels).allowed
        assert decide(p, "kms:DisableKey", key, {"aws:PrincipalArn": p.arn}, levels).allowed, "a key without aliases"


class NullAndIdentityOnlyKeys(unittest.TestCase):
    def test_null_on_a_missing_or_empty_key(self):
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Null
        assert condition_holds("Null", "aws:AssumedRoot", "true", {})
        assert not condition_holds("Null", "aws:AssumedRoot", "false", {})
        assert not condition_holds("Null", "aws:AssumedRoot", "true", {"aws:AssumedRoot": "true"})
        assert condition_holds("Null", "aws:TagKeys", "true", {"aws:TagKeys": []}), "an empty value is null"

    def test_restrict_root_spares_centralized_root_sessions(self):
        # RestrictRoot as assure writes it: the root user's own credentials, not sts:AssumeRoot's
        # sessions, which carry aws:AssumedRoot.
        scp = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {
            "StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}, "Null": {"aws:AssumedRoot": "true"}}}]}
        root = Principal(kind="root", account="111111111111", arn="arn:aws:iam::111111111111:root")
        levels: list[list[Any]] = [[ALLOW_ALL, scp]]
        res = Resource("arn:aws:s3:::b", "111111111111", None, "s3")
        assert not decide(root, "s3:ListBucket", res, {"aws:PrincipalArn": root.arn}, levels).allowed
        assert decide(root, "s3:ListBucket", res, {"aws:PrincipalArn": root.arn, "aws:AssumedRoot": "true"}, levels).allowed

    def test_kms_resource_aliases_is_for_iam_policies_only(self):
        # "Policy type: IAM policies only": a key policy naming kms:ResourceAliases finds it missing.
        deny_in_key_policy = {"Effect": "Deny", "Principal": "*", "Action": "kms:DisableKey", "Resource": "*",
                              "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/x"}}}
        root = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}
        key = Resource("arn:aws:kms:us-east-1:111111111111:key/k", "111111111111", {"Statement": [root, deny_in_key_policy]}, "kms")
        ctx = {"kms:ResourceAliases": ["alias/x"]}
        assert decide(role([ALLOW_ALL]), "kms:DisableKey", key, ctx, None).allowed
        deny_in_iam = {"Statement": [dict(deny_in_key_policy, Principal=None)]}
        del deny_in_iam["Statement"][0]["Principal"]
        assert not decide(role([ALLOW_ALL, deny_in_iam]), "kms:DisableKey", key, ctx, None).allowed


class AnonymousAndFederated(unittest.TestCase):
    BUCKET = "arn:aws:s3:::open/k"
    ANONYMOUS = Principal(kind="anonymous", account="", arn="anonymous")

    def bucket(self, *statements):
        return Resource(self.BUCKET, "222222222222", {"Statement": list(statements)}, "s3")

    def test_the_anonymous_user_needs_a_grant_to_everyone(self):
        to_all = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::open/*"}
        to_all_aws = dict(to_all, Principal={"AWS": "*"})
        to_account = dict(to_all, Principal={"AWS": "arn:aws:iam::222222222222:root"})
        assert decide(self.ANONYMOUS, "s3:GetObject", self.bucket(to_all), {}, None).allowed
        assert decide(self.ANONYMOUS, "s3:GetObject", self.bucket(to_all_aws), {}, None).allowed
        assert not decide(self.ANONYMOUS, "s3:GetObject", self.bucket(to_account), {}, None).allowed
        assert not decide(self.ANONYMOUS, "s3:PutObject", self.bucket(to_all), {}, None).allowed, "another action"
        assert not decide(self.ANONYMOUS, "s3:GetObject", Resource(self.BUCKET, "222222222222", None, "s3"), {}, None).allowed
        deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
        assert not decide(self.ANONYMOUS, "s3:GetObject", self.bucket(to_all, deny), {}, None).allowed

    def test_an_identity_provider_is_admitted_by_name(self):
        provider = "arn:aws:iam::111111111111:oidc-provider/token.example.com"
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
                                "Condition": {"StringEquals": {"token.example.com:sub": "repo:ok"}}}]}
        target = Resource("arn:aws:iam::111111111111:role/ci", "111111111111", trust, "trust")
        idp = Principal(kind="federated", account="", arn=provider)
        other = Principal(kind="federated", account="", arn="arn:aws:iam::111111111111:oidc-provider/other.example.com")
        assert decide(idp, "sts:AssumeRoleWithWebIdentity", target, {"token.example.com:sub": "repo:ok"}, None).allowed
        assert not decide(idp, "sts:AssumeRoleWithWebIdentity", target, {"token.example.com:sub": "repo:evil"}, None).allowed
        assert not decide(other, "sts:AssumeRoleWithWebIdentity", target, {"token.example.com:sub": "repo:ok"}, None).allowed
        assert not decide(idp, "sts:AssumeRole", target, {"token.example.com:sub": "repo:ok"}, None).allowed


class PermissionsBoundaries(unittest.TestCase):
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html: the identity-based
    permissions are what both the identity policies and the boundary allow; a same-account resource-based
    policy naming a user's or a role session's ARN is not limited by it, one naming the role's ARN is."""

    ACCOUNT = "111111111111"
    S3_ONLY: ClassVar[dict] = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    OBJECT = "arn:aws:s3:::b/k"

    def bounded(self, policies, boundary=None, **kw):
        p = role(policies, **kw)
        p.boundary = self.S3_ONLY if boundary is None else boundary
        return p

    def bucket(self, principal, account=ACCOUNT):
        grant = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sqs:*", "Resource": "*"}
        return Resource(self.OBJECT, account, {"Statement": [grant]}, "s3")

    def test_the_boundary_limits_what_identity_policies_allow(self):
        p = self.bounded([ALLOW_ALL])
        assert decide(p, "s3:GetObject", Resource(self.OBJECT), {}, None).allowed
        d = decide(p, "iam:CreateUser", Resource("arn:aws:iam::111111111111:user/u"), {}, None)
        assert not d.allowed
        assert "no permissions boundary allows" in d.reason

    def test_the_boundary_grants_nothing_itself(self):
        d = decide(self.bounded([], boundary=ALLOW_ALL), "s3:GetObject", Resource(self.OBJECT), {}, None)
        assert not d.allowed
        assert "no identity-based policy allows" in d.reason

    def test_an_explicit_deny_in_the_boundary_denies(self):
        deny = {"Statement": [ALLOW_ALL["Statement"][0], {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]}
        d = decide(self.bounded([ALLOW_ALL], boundary=deny), "s3:DeleteObject", Resource(self.OBJECT), {}, None)
        assert not d.allowed
        assert "explicit deny in a permissions boundary" in d.reason

    def test_a_grant_to_the_session_is_not_limited(self):
        p = self.bounded([])
        assert decide(p, "sqs:SendMessage", self.bucket(p.session_arn), {}, None).allowed

    def test_a_grant_to_the_role_is_limited_by_the_boundary(self):
        p = self.bounded([])
        d = decide(p, "sqs:SendMessage", self.bucket(p.arn), {}, None)
        assert not d.allowed
        assert "no permissions boundary allows" in d.reason
        within = self.bounded([], boundary=ALLOW_ALL)
        assert decide(within, "sqs:SendMessage", self.bucket(within.arn), {}, None).allowed, \
                        "no identity policy is needed, only the boundary"
        assert not decide(p, "sqs:SendMessage", self.bucket("*"), {}, None).allowed, "a grant to everyone too"

    def test_a_grant_to_a_user_is_not_limited(self):
        user = Principal(kind="user", account=self.ACCOUNT, arn=f"arn:aws:iam::{self.ACCOUNT}:user/u", boundary=self.S3_ONLY)
        assert decide(user, "sqs:SendMessage", self.bucket(user.arn), {}, None).allowed
        assert not decide(user, "sqs:SendMessage", Resource(self.OBJECT), {}, None).allowed

    def test_a_grant_to_the_account_is_left_to_the_bounded_identity_policies(self):
        p = self.bounded([ALLOW_ALL])
        assert not decide(p, "sqs:SendMessage", self.bucket(f"arn:aws:iam::{self.ACCOUNT}:root"), {}, None).allowed

    def test_across_accounts_the_boundary_limits_even_a_grant_to_the_session(self):
        p = self.bounded([ALLOW_ALL])
        elsewhere = self.bucket(p.session_arn, account="222222222222")
        assert not decide(p, "sqs:SendMessage", elsewhere, {}, None).allowed
        assert decide(self.bounded([ALLOW_ALL], boundary=ALLOW_ALL), "sqs:SendMessage", elsewhere, {}, None).allowed

    def test_a_trust_policy_naming_the_role_is_limited_by_the_boundary(self):
        target = Resource(f"arn:aws:iam::{self.ACCOUNT}:role/next", self.ACCOUNT, {"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.ACCOUNT}:role/worker"}, "Action": "sts:AssumeRole"}]}, "trust")
        assert not decide(self.bounded([]), "sts:AssumeRole", target, {}, None).allowed
        assert decide(role([]), "sts:AssumeRole", target, {}, None).allowed, "unbounded: the trust alone"

    def test_not_principal_with_deny_denies_every_bounded_principal(self):
        # "The NotPrincipal element with a Deny effect will always deny any IAM principal that has a
        # permissions boundary policy attached, regardless of the values specified in the NotPrincipal element."
        p = self.bounded([ALLOW_ALL], boundary=ALLOW_ALL)
        policy = {"Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": p.arn}, "Action": "s3:*", "Resource": "*"}]}
        bucket = Resource(self.OBJECT, self.ACCOUNT, policy, "s3")
        assert not decide(p, "s3:GetObject", bucket, {}, None).allowed
        assert decide(role([ALLOW_ALL]), "s3:GetObject", bucket, {}, None).allowed, "the same role unbounded"


class SessionPolicies(unittest.TestCase):
    """Session policies (AssumeRole's Policy and PolicyArns): "The resulting session's permissions are the
    intersection of the role's identity-based policy and the session policies"
    (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies.html#policies_session)."""

    OBJECT = "arn:aws:s3:::b/k"

    def session(self, policies, session_policies):
        p = role(policies)
        p.session_policies = session_policies
        return p

    def test_the_session_gets_the_intersection(self):
        p = self.session([allow("s3:*")], [allow(["s3:GetObject", "sqs:*"])])
        assert decide(p, "s3:GetObject", Resource(self.OBJECT), {}, None).allowed
        d = decide(p, "s3:PutObject", Resource(self.OBJECT), {}, None)
        assert not d.allowed
        assert "no session policy allows" in d.reason
        assert not decide(p, "sqs:SendMessage", Resource("arn:aws:sqs:us-east-1:111111111111:q"), {}, None).allowed, \
                         "a session policy grants nothing the role does not"

    def test_several_session_policies_allow_together(self):
        p = self.session([ALLOW_ALL], [allow("s3:GetObject"), allow("s3:PutObject")])
        assert decide(p, "s3:PutObject", Resource(self.OBJECT), {}, None).allowed

    def test_an_explicit_deny_in_a_session_policy_denies(self):
        p = self.session([ALLOW_ALL], [{"Statement": [ALLOW_ALL["Statement"][0],
                                                       {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"}]}])
        d = decide(p, "s3:PutObject", Resource(self.OBJECT), {}, None)
        assert not d.allowed
        assert "explicit deny in a session policy" in d.reason

    def test_a_grant_to_the_session_passes_the_session_policy_one_to_the_role_does_not(self):
        p = self.session([], [allow("s3:GetObject")])
        for named, expect in [(p.session_arn, True), (p.arn, False)]:
            bucket = Resource(self.OBJECT, "111111111111", {"Statement": [
                {"Effect": "Allow", "Principal": {"AWS": named}, "Action": "s3:PutObject", "Resource": "*"}]}, "s3")
            assert decide(p, "s3:PutObject", bucket, {}, None).allowed == expect, named


class RootUser(unittest.TestCase):
    """The root user: every action in its own account without a policy, except where a key policy does
    not let the account in; bound by its member account's SCPs (id_root-user.html; orgs_manage_policies_scps.html:
    SCPs "affect ... the root user")."""

    ACCOUNT = "111111111111"
    ROOT = Principal(kind="root", account=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root")

    def test_root_needs_no_policy_in_its_account(self):
        assert decide(self.ROOT, "iam:CreateUser", Resource(f"arn:aws:iam::{self.ACCOUNT}:user/u"), {}, None).allowed
        assert not decide(self.ROOT, "s3:GetObject", Resource("arn:aws:s3:::b/k", "222222222222", None, "s3"), {}, None).allowed, \
                         "another account's resource"

    def test_scps_bind_a_member_accounts_root(self):
        deny = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
                               "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}}]}
        ctx = {"aws:PrincipalArn": self.ROOT.arn}
        d = decide(self.ROOT, "s3:ListBucket", Resource("arn:aws:s3:::b", self.ACCOUNT), ctx, [[ALLOW_ALL, deny]])
        assert not d.allowed
        assert "service control policy" in d.reason
        assert decide(self.ROOT, "s3:ListBucket", Resource("arn:aws:s3:::b", self.ACCOUNT), ctx, None).allowed, \
                        "the management account: no SCP applies (policies.scp_levels answers None)"

    def test_a_centralized_root_session_is_held_to_its_task_policy(self):
        from assure_local.policies import ROOT_TASK_POLICIES

        task = ROOT_TASK_POLICIES["arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy"]
        session = Principal(kind="root", account=self.ACCOUNT, arn=self.ROOT.arn, session_policies=[task], assumed_root=True)
        ctx = {"aws:PrincipalArn": self.ROOT.arn, "aws:AssumedRoot": "true"}
        bucket = Resource("arn:aws:s3:::locked", self.ACCOUNT, None, "s3")
        assert decide(session, "s3:DeleteBucketPolicy", bucket, ctx, None).allowed
        d = decide(session, "s3:GetObject", Resource("arn:aws:s3:::locked/k", self.ACCOUNT, None, "s3"), ctx, None)
        assert not d.allowed
        assert "session policy" in d.reason
        assert decide(self.ROOT, "s3:GetObject", Resource("arn:aws:s3:::locked/k", self.ACCOUNT, None, "s3"), ctx, None).allowed, \
                        "the root user's own credentials are not so held"

    def test_the_bucket_owners_root_may_always_manage_the_bucket_policy(self):
        # API_PutBucketPolicy: the owner's root "can perform the GetBucketPolicy, PutBucketPolicy, and
        # DeleteBucketPolicy API actions, even if their bucket policy explicitly denies the root principal's access".
        locked = Resource("arn:aws:s3:::locked", self.ACCOUNT, {"Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}]}, "s3")
        assert decide(self.ROOT, "s3:DeleteBucketPolicy", locked, {}, None).allowed
        assert not decide(self.ROOT, "s3:ListBucket", locked, {}, None).allowed, "only the policy's own actions"
        assert not decide(role([ALLOW_ALL]), "s3:DeleteBucketPolicy", locked, {}, None).allowed, "only the root"
        outsider = Principal(kind="root", account="222222222222", arn="arn:aws:iam::222222222222:root")
        assert not decide(outsider, "s3:DeleteBucketPolicy", locked, {}, None).allowed, "only the owner's root"
        scp = [[ALLOW_ALL, {"Statement": [{"Effect": "Deny", "Action": "s3:DeleteBucketPolicy", "Resource": "*"}]}]]
        assert not decide(self.ROOT, "s3:DeleteBucketPolicy", locked, {}, scp).allowed, "SCPs still bind it"


if __name__ == "__main__":
    unittest.main()


class PassRole(unittest.TestCase):
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html: handing a role to
    a service needs iam:PassRole on it, with iam:PassedToService naming the service."""

    def test_a_role_in_the_request_needs_pass_role_to_that_service(self):
        from assure_local import authz

        logs_role = "arn:aws:iam::111111111111:role/assure-cloudtrail-logs"
        req = aws_request.Req("cloudtrail", "CreateTrail", {"Name": "t", "CloudWatchLogsRoleArn": logs_role}, "us-east-1")
        [(action, res, ctx)] = authz.passed_roles(req, "111111111111")
        assert (action, res.arn, ctx) == ("iam:PassRole", logs_role, {"iam:PassedToService": "cloudtrail.amazonaws.com"})
        scoped = role([allow("iam:PassRole", "arn:aws:iam::111111111111:role/*",
                             Condition={"StringEquals": {"iam:PassedToService": "config.amazonaws.com"}})])
        assert not decide(scoped, action, res, ctx, None).allowed, "passing to CloudTrail is not passing to Config"
        assert decide(role([allow("iam:PassRole", logs_role)]), action, res, ctx, None).allowed

    def test_nested_and_listed_roles_are_found(self):
        from assure_local import authz

        req = aws_request.Req("events", "PutTargets", {"Rule": "r", "Targets": [{"Id": "a", "RoleArn": "arn:aws:iam::1:role/x"},
                                                                          {"Id": "b"}]}, "us-east-1")
        assert [r.arn for _, r, _ in authz.passed_roles(req, "1")] == ["arn:aws:iam::1:role/x"]
        none = aws_request.Req("cloudtrail", "CreateTrail", {"Name": "t"}, "us-east-1")
        assert authz.passed_roles(none, "1") == []
