"""parliament (https://github.com/duo-labs/parliament, BSD-3) over every identity policy assure's
templates generate, resolved as a deployment resolves them.

Input (stdin): [{"role": ..., "policy": ..., "document": {...}}, ...] from `cargo xtask lint-infra`.
A finding passes only when REVIEWED holds it, with its reason: of the roles matched and of that issue,
the reviews naming its actions cover every one of them. A review that matches no finding is stale and
fails too, so the list shrinks as the policies improve.
"""

import fnmatch
import json
import sys

from parliament import analyze_policy_string

# (role pattern, parliament issue, actions the review covers, why the finding stands).
REVIEWED = [
    ("AssureExecutionRole", "RESOURCE_STAR",
     {"config:DescribeConfigurationRecorders", "config:DescribeConfigurationRecorderStatus", "cloudwatch:DescribeAlarms"},
     "listing calls: assure must find every Config recorder and every alarm an account has, whatever their names "
     "(the take-over of existing setups), and AWS authorizes a listing against each resource it returns"),
    ("AssureExecutionRole", "RESOURCE_STAR",
     {"config:DeleteConfigurationRecorder", "config:StartConfigurationRecorder", "config:StopConfigurationRecorder",
      "config:PutConfigurationAggregator"},
     "a recorder's and an aggregator's ARN end in an ID AWS assigns (configuration-recorder/NAME/ID, "
     "config-aggregator/ID), unknown when the template is deployed; the account's own recorder, whatever its name, is "
     "what the Config step takes over and rollback restores"),
    ("AssureExecutionRole", "RESOURCE_POLICY_PRIVILEGE_ESCALATION", {"s3:PutBucketPolicy", "s3:PutLifecycleConfiguration"},
     "the logging-bucket step exists to write the logging buckets' policy and lifecycle; only the buckets named "
     "assure-logs-ACCOUNT-* and assure-access-logs-ACCOUNT-*, and after onboarding the protection SCP denies these "
     "changes to every principal but assure's own role"),
    ("assure-management", "RESOURCE_STAR",
     {"organizations:DescribeAccount", "organizations:DescribeOrganizationalUnit", "organizations:RegisterDelegatedAdministrator"},
     "the management account's one role for assure makes the security account GuardDuty's delegated administrator: "
     "GuardDuty calls these with the caller's permissions while it serves EnableOrganizationAdminAccount, and its guide "
     "(https://docs.aws.amazon.com/guardduty/latest/ug/organizations_permissions.html) grants them on \"*\" without "
     "saying which resources it authorizes against; Access Analyzer's and Config's registrations are the same call. "
     "Only the pipeline's roles that need the role may assume it (its trust names them)"),
    ("assure-step-preflight", "RESOURCE_MISMATCH", {"states:DescribeExecution"},
     "DescribeExecution takes a standard execution (execution*) or an Express one (express*) "
     "(https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html); parliament "
     "checks only the express format, and the onboarding machine is a standard one: the resource is its executions"),
    ("assure-step-join", "RESOURCE_MISMATCH", {"states:DescribeExecution"},
     "the join step reads the account's run lock as preflight does: is the onboarding execution holding it still "
     "running? A standard execution, as for assure-step-preflight; parliament checks only the express format"),
    ("assure-step-watch", "RESOURCE_MISMATCH", {"states:DescribeExecution"},
     "the watch step takes an account's run lock for a repair run as the join step does: is the onboarding "
     "execution holding it still running? A standard execution, as for assure-step-preflight; parliament checks "
     "only the express format"),
    ("assure-bulk-states", "RESOURCE_MISMATCH", {"states:DescribeExecution"},
     "the Distributed Map's child workflow executions are standard executions of the bulk machine, "
     "execution:assure-bulk/LABEL:ID (https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html); "
     "parliament checks only the express format"),
]


def actions_of(finding) -> set[str]:
    detail = finding.detail
    if isinstance(detail, list):
        return {d if isinstance(d, str) else d.get("action", "") for d in detail}
    text = str(detail)
    return {a for _, _, acts, _ in REVIEWED for a in acts if a in text}


def main() -> int:
    policies = json.load(sys.stdin)
    used = [False] * len(REVIEWED)
    unreviewed = []
    total = 0
    for item in policies:
        result = analyze_policy_string(json.dumps(item["document"]), include_community_auditors=False)
        for f in result.findings:
            total += 1
            acts = actions_of(f)
            # A finding passes when the reviews of its role and issue cover every action it names
            # between them: the generator joins statements on the same resources, so one finding
            # can span what several reviews say of different actions.
            reviews = [i for i, (role, issue, _, _) in enumerate(REVIEWED)
                       if fnmatch.fnmatch(item["role"], role) and f.issue == issue]
            covering = [i for i in reviews if acts & REVIEWED[i][2]]
            hit = bool(acts) and acts <= set().union(*(REVIEWED[i][2] for i in covering))
            if hit:
                for i in covering:
                    used[i] = True
            if not hit:
                unreviewed.append(f"{item['role']} ({item['policy']}): {f.issue} {json.dumps(f.detail)}")
    stale = [f"{r} {issue} {sorted(acts)}" for (r, issue, acts, _), u in zip(REVIEWED, used) if not u]
    print(f"parliament: {len(policies)} policies, {total} findings, {total - len(unreviewed)} reviewed "
          f"(infra/lint/policies.py), {len(unreviewed)} not")
    for line in unreviewed:
        print(f"  finding: {line}")
    for line in stale:
        print(f"  stale review (no such finding now): {line}")
    return 1 if unreviewed or stale else 0


if __name__ == "__main__":
    sys.exit(main())
