"""The policy evaluator against AWS's documented policy evaluation logic
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
Each test breaks exactly one rule. Run: python -m unittest test_iam (no moto needed)."""

import unittest

from iam import Principal, Resource, condition_holds, decide

ALLOW_ALL = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
FULL_ACCESS_SCP = [ALLOW_ALL]


def role(policies, account="111111111111", name="worker"):
    return Principal(kind="role", account=account, arn=f"arn:aws:iam::{account}:role/{name}",
                     session_arn=f"arn:aws:sts::{account}:assumed-role/{name}/s", policies=policies)


def allow(action, resource="*", **extra):
    return {"Statement": [dict({"Effect": "Allow", "Action": action, "Resource": resource}, **extra)]}


class Identity(unittest.TestCase):
    def test_no_policy_is_an_implicit_deny(self):
        self.assertFalse(decide(role([]), "s3:ListAllMyBuckets", Resource("*"), {}, None).allowed)

    def test_an_allow_allows(self):
        self.assertTrue(decide(role([allow("s3:ListAllMyBuckets")]), "s3:ListAllMyBuckets", Resource("*"), {}, None).allowed)

    def test_explicit_deny_wins_over_allow(self):
        p = role([ALLOW_ALL, {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}])
        d = decide(p, "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, None)
        self.assertFalse(d.allowed)
        self.assertIn("explicit deny", d.reason)

    def test_actions_match_case_insensitively_with_wildcards(self):
        p = role([allow("S3:Get*")])
        self.assertTrue(decide(p, "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, None).allowed)
        self.assertFalse(decide(p, "s3:PutObject", Resource("arn:aws:s3:::b/k"), {}, None).allowed)

    def test_not_action_allows_everything_else(self):
        p = role([{"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}])
        self.assertTrue(decide(p, "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, None).allowed)
        self.assertFalse(decide(p, "iam:CreateRole", Resource("arn:aws:iam::111111111111:role/x"), {}, None).allowed)

    def test_resource_wildcards_cross_slashes_and_colons(self):
        p = role([allow("logs:PutMetricFilter", "arn:aws:logs:*:111111111111:log-group:assure/*")])
        ok = decide(p, "logs:PutMetricFilter", Resource("arn:aws:logs:eu-west-1:111111111111:log-group:assure/cloudtrail"), {}, None)
        self.assertTrue(ok.allowed)
        other = decide(p, "logs:PutMetricFilter", Resource("arn:aws:logs:eu-west-1:111111111111:log-group:other"), {}, None)
        self.assertFalse(other.allowed)

    def test_not_resource(self):
        p = role([{"Statement": [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}]}])
        self.assertTrue(decide(p, "s3:GetObject", Resource("arn:aws:s3:::open/k"), {}, None).allowed)
        self.assertFalse(decide(p, "s3:GetObject", Resource("arn:aws:s3:::secret/k"), {}, None).allowed)

    def test_a_statement_scoped_to_an_arn_does_not_match_an_action_without_resources(self):
        # Actions with no resource type are authorized against "*" (authz.takes_resources).
        p = role([allow("states:SendTaskSuccess", "arn:aws:states:us-east-1:111111111111:stateMachine:m")])
        self.assertFalse(decide(p, "states:SendTaskSuccess", Resource("*"), {}, None).allowed)

    def test_policy_variables(self):
        p = role([allow("s3:GetObject", "arn:aws:s3:::home-${aws:PrincipalAccount}/*")])
        ctx = {"aws:PrincipalAccount": "111111111111"}
        self.assertTrue(decide(p, "s3:GetObject", Resource("arn:aws:s3:::home-111111111111/k"), ctx, None).allowed)
        self.assertFalse(decide(p, "s3:GetObject", Resource("arn:aws:s3:::home-222222222222/k"), ctx, None).allowed)


class Conditions(unittest.TestCase):
    def test_string_equals_and_not_equals(self):
        ctx = {"aws:RequestTag/assure:managed": "true"}
        self.assertTrue(condition_holds("StringEquals", "aws:RequestTag/assure:managed", "true", ctx))
        self.assertFalse(condition_holds("StringEquals", "aws:RequestTag/assure:managed", "True", ctx))
        self.assertFalse(condition_holds("StringNotEquals", "aws:RequestTag/assure:managed", "true", ctx))

    def test_string_like(self):
        ctx = {"aws:PrincipalArn": "arn:aws:iam::1:role/assure-step-config"}
        self.assertTrue(condition_holds("StringLike", "aws:PrincipalArn", "*:role/assure-step-*", ctx))
        self.assertFalse(condition_holds("StringNotLike", "aws:PrincipalArn", "*:role/assure-step-*", ctx))

    def test_arn_like_matches_part_by_part(self):
        ctx = {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/assure-step-config"}
        self.assertTrue(condition_holds("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/assure-step-*", ctx))
        self.assertFalse(condition_holds("ArnLike", "aws:PrincipalArn", "arn:aws:iam::*:role/other", ctx))
        self.assertTrue(condition_holds("ArnNotLike", "aws:PrincipalArn", ["arn:aws:iam::*:role/other"], ctx))
        # A wildcard does not reach across the colons that separate an ARN's parts.
        self.assertFalse(condition_holds("ArnLike", "aws:PrincipalArn", "arn:aws:iam:*", ctx))

    def test_bool(self):
        self.assertTrue(condition_holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": "false"}))
        self.assertFalse(condition_holds("Bool", "aws:SecureTransport", "false", {"aws:SecureTransport": "true"}))

    def test_a_missing_key(self):
        # A positive operator over a missing key is false; a negated one is true; IfExists is true.
        self.assertFalse(condition_holds("StringEquals", "aws:PrincipalOrgID", "o-1", {}))
        self.assertTrue(condition_holds("StringNotEquals", "aws:PrincipalOrgID", "o-1", {}))
        self.assertTrue(condition_holds("StringEqualsIfExists", "aws:PrincipalOrgID", "o-1", {}))
        self.assertTrue(condition_holds("Null", "aws:PrincipalOrgID", "true", {}))

    def test_several_values_are_or_and_keys_are_and(self):
        p = role([allow("iam:CreateServiceLinkedRole", "*", Condition={
            "StringEquals": {"iam:AWSServiceName": ["config.amazonaws.com", "guardduty.amazonaws.com"]},
            "Bool": {"aws:SecureTransport": "true"}})])
        ok = {"iam:AWSServiceName": "guardduty.amazonaws.com", "aws:SecureTransport": "true"}
        self.assertTrue(decide(p, "iam:CreateServiceLinkedRole", Resource("*"), ok, None).allowed)
        self.assertFalse(decide(p, "iam:CreateServiceLinkedRole", Resource("*"), dict(ok, **{"aws:SecureTransport": "false"}), None).allowed)
        self.assertFalse(decide(p, "iam:CreateServiceLinkedRole", Resource("*"), dict(ok, **{"iam:AWSServiceName": "ec2.amazonaws.com"}), None).allowed)

    def test_an_allow_whose_condition_fails_is_no_allow_not_a_deny(self):
        p = role([allow("s3:*", "*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-other"}}), allow("s3:GetObject")])
        self.assertTrue(decide(p, "s3:GetObject", Resource("arn:aws:s3:::b/k"), {"aws:PrincipalOrgID": "o-1"}, None).allowed)


class ServiceControlPolicies(unittest.TestCase):
    def test_an_scp_deny_beats_an_identity_allow(self):
        scp = {"Statement": [{"Effect": "Deny", "Action": "cloudtrail:StopLogging", "Resource": "*"}]}
        d = decide(role([ALLOW_ALL]), "cloudtrail:StopLogging", Resource("arn:aws:cloudtrail:us-east-1:111111111111:trail/t"), {},
                   [FULL_ACCESS_SCP, [ALLOW_ALL, scp]])
        self.assertFalse(d.allowed)
        self.assertIn("service control policy", d.reason)

    def test_every_level_must_allow(self):
        only_s3 = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        levels = [FULL_ACCESS_SCP, [only_s3], FULL_ACCESS_SCP]
        self.assertTrue(decide(role([ALLOW_ALL]), "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, levels).allowed)
        self.assertFalse(decide(role([ALLOW_ALL]), "sqs:SendMessage", Resource("arn:aws:sqs:us-east-1:111111111111:q"), {}, levels).allowed)

    def test_scps_grant_nothing(self):
        self.assertFalse(decide(role([]), "s3:GetObject", Resource("arn:aws:s3:::b/k"), {}, [FULL_ACCESS_SCP]).allowed)

    def test_an_exemption_by_exact_role_arn(self):
        scp = {"Statement": [{"Effect": "Deny", "Action": "iam:*", "Resource": "arn:aws:iam::*:role/assure-*",
                              "Condition": {"ArnNotLike": {"aws:PrincipalARN": ["arn:aws:iam::*:role/AssureExecutionRole"]}}}]}
        levels = [[ALLOW_ALL, scp]]
        res = Resource("arn:aws:iam::111111111111:role/assure-evil")
        assure = role([ALLOW_ALL], name="AssureExecutionRole")
        lookalike = role([ALLOW_ALL], name="AssureExecutionRoleX")
        for p, expect in [(assure, True), (lookalike, False)]:
            ctx = {"aws:PrincipalArn": p.arn}
            self.assertEqual(decide(p, "iam:CreateRole", res, ctx, levels).allowed, expect, p.arn)


class ResourcePolicies(unittest.TestCase):
    BUCKET = "arn:aws:s3:::logs/AWSLogs/1/x"

    def bucket(self, statement):
        return Resource(self.BUCKET, "222222222222", {"Statement": [statement]}, "s3")

    def test_cross_account_needs_both_sides(self):
        grant = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "s3:PutObject", "Resource": "*"}
        caller = role([allow("s3:PutObject")])
        self.assertTrue(decide(caller, "s3:PutObject", self.bucket(grant), {}, None).allowed)
        self.assertFalse(decide(role([]), "s3:PutObject", self.bucket(grant), {}, None).allowed, "no identity policy")
        self.assertFalse(decide(caller, "s3:PutObject", Resource(self.BUCKET, "222222222222", None, "s3"), {}, None).allowed,
                         "no bucket policy")

    def test_same_account_either_side(self):
        grant = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:role/worker"}, "Action": "s3:PutObject", "Resource": "*"}
        caller = role([], account="222222222222")
        self.assertTrue(decide(caller, "s3:PutObject", self.bucket(grant), {}, None).allowed)

    def test_a_resource_policy_deny_wins(self):
        deny = {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        caller = role([ALLOW_ALL], account="222222222222")
        self.assertFalse(decide(caller, "s3:PutObject", self.bucket(deny), {"aws:SecureTransport": "false"}, None).allowed)
        self.assertTrue(decide(caller, "s3:PutObject", self.bucket(deny), {"aws:SecureTransport": "true"}, None).allowed)

    def test_a_kms_key_needs_its_key_policy(self):
        key = "arn:aws:kms:us-east-1:111111111111:key/k"
        caller = role([ALLOW_ALL])
        no_delegation = Resource(key, "111111111111", {"Statement": []}, "kms")
        self.assertFalse(decide(caller, "kms:Decrypt", no_delegation, {}, None).allowed)
        delegated = Resource(key, "111111111111", {"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}]}, "kms")
        self.assertTrue(decide(caller, "kms:Decrypt", delegated, {}, None).allowed)
        self.assertFalse(decide(role([]), "kms:Decrypt", delegated, {}, None).allowed, "delegation leaves it to IAM")
        named = Resource(key, "111111111111", {"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": caller.arn}, "Action": "kms:CreateAlias", "Resource": "*"}]}, "kms")
        self.assertTrue(decide(role([]), "kms:CreateAlias", named, {}, None).allowed)

    def test_a_trust_policy(self):
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "sts:AssumeRole",
                                "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/assure-step-*"}}}]}
        target = Resource("arn:aws:iam::222222222222:role/AssureExecutionRole", "222222222222", trust, "trust")
        step = role([allow("sts:AssumeRole")], name="assure-step-config")
        other = role([allow("sts:AssumeRole")], name="someone")
        self.assertTrue(decide(step, "sts:AssumeRole", target, {"aws:PrincipalArn": step.arn}, None).allowed)
        self.assertFalse(decide(other, "sts:AssumeRole", target, {"aws:PrincipalArn": other.arn}, None).allowed)
        unpermitted = role([], name="assure-step-config")
        self.assertFalse(decide(unpermitted, "sts:AssumeRole", target, {"aws:PrincipalArn": unpermitted.arn}, None).allowed,
                         "cross-account: the caller's identity policy must allow too")

    def test_a_service_principal(self):
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        target = Resource("arn:aws:iam::111111111111:role/assure-step-config", None, trust, "trust")
        lam = Principal(kind="service", account="", arn="lambda.amazonaws.com")
        states = Principal(kind="service", account="", arn="states.amazonaws.com")
        self.assertTrue(decide(lam, "sts:AssumeRole", target, {}, None).allowed)
        self.assertFalse(decide(states, "sts:AssumeRole", target, {}, None).allowed)


if __name__ == "__main__":
    unittest.main()


class PassRole(unittest.TestCase):
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html: handing a role to
    a service needs iam:PassRole on it, with iam:PassedToService naming the service."""

    def test_a_role_in_the_request_needs_pass_role_to_that_service(self):
        import authz

        logs_role = "arn:aws:iam::111111111111:role/assure-cloudtrail-logs"
        req = authz.Req("cloudtrail", "CreateTrail", {"Name": "t", "CloudWatchLogsRoleArn": logs_role}, "us-east-1")
        [(action, res, ctx)] = authz.passed_roles(req, "111111111111")
        self.assertEqual((action, res.arn, ctx), ("iam:PassRole", logs_role, {"iam:PassedToService": "cloudtrail.amazonaws.com"}))
        scoped = role([allow("iam:PassRole", "arn:aws:iam::111111111111:role/*",
                             Condition={"StringEquals": {"iam:PassedToService": "config.amazonaws.com"}})])
        self.assertFalse(decide(scoped, action, res, ctx, None).allowed, "passing to CloudTrail is not passing to Config")
        self.assertTrue(decide(role([allow("iam:PassRole", logs_role)]), action, res, ctx, None).allowed)

    def test_nested_and_listed_roles_are_found(self):
        import authz

        req = authz.Req("events", "PutTargets", {"Rule": "r", "Targets": [{"Id": "a", "RoleArn": "arn:aws:iam::1:role/x"},
                                                                          {"Id": "b"}]}, "us-east-1")
        self.assertEqual([r.arn for _, r, _ in authz.passed_roles(req, "1")], ["arn:aws:iam::1:role/x"])
        none = authz.Req("cloudtrail", "CreateTrail", {"Name": "t"}, "us-east-1")
        self.assertEqual(authz.passed_roles(none, "1"), [])
