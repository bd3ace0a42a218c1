//! Service control policies: the spec's mandatory set, attached to the account. They protect what
//! assure put in place, end to end: Config, GuardDuty (and its findings, from suppression), the
//! assure trail and its log group, the alarm chain (metric filters, metric data, alarms, topic,
//! subscriptions, the topic's key), assure's roles and the StackSet's, the member role's stack, the
//! service-linked roles the services act through, Session Manager logging (its preferences, and no
//! session under another document), the account's membership of the organization and its enabled
//! Regions; and restrict
//! the root user. They exempt only assure's member role (and, for the member role and its stack,
//! the StackSet that deploys them, whose role nobody in the account can make or assume).
//! assure's Lambdas run in the management account, which SCPs do not bind; none runs in a member
//! account.
//! Each policy stays under the 5,120-character limit; the five-policies-per-target quota is
//! checked before anything is attached.
//!
//! With `root_access = "centralized"` the step also removes the account's root credentials
//! ([`root`]).

pub mod root;

use assure_contract::{AccountId, ErrorName, Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_organizations::types::{PolicyType, PolicyTypeStatus};
use serde_json::{json, Value};

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::controls::kit::{evidence, Changes};
use crate::controls::names::{AGGREGATOR_ROLE, FINDINGS_EVENTS_ROLE, FINDINGS_ROLE, TRAIL_LOGS_ROLE};
use crate::controls::names::{
    ALARM_KEY_ALIAS, ALARM_PREFIX, ALARM_TOPIC, ANALYZER, FINDINGS, MEMBER_STACK_SET, METRIC_NAMESPACE, SCP_ACCESS,
    SCP_LOG_ARCHIVE, SCP_PROTECT, SCP_ROOT, TRAIL, TRAIL_LOG_GROUP,
};
use crate::controls::{Control, Fut, Organized, Report, StepCall, Undo};

/// AWS's limit on one policy's size.
pub const MAX_POLICY_CHARS: usize = 5120;
/// AWS's limit on SCPs attached to one target.
pub const MAX_POLICIES_PER_TARGET: usize = 5;

/// The principals the policies exempt: the member role, by its exact name, and no other. The
/// pipeline's own roles live in the management account, which no SCP binds; a pattern such as
/// `assure-*` would exempt any role an administrator of the account chose to name so.
pub fn exempt_principals(run: &RunInput) -> Vec<String> {
    vec![format!("arn:aws:iam::*:role/{}", run.role_name)]
}

/// The role a service-managed StackSet runs as in member accounts: it updates the member role's
/// stack (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-associate-stackset-with-org.html).
/// StackSets' service-linked role in the account makes it, and SCPs do not bind service-linked
/// roles; nobody else in the account may make, change or assume a role of this name
/// (`ProtectRoles`, `NoStackSetRole`), so nobody can take its exemption.
pub const STACKSET_EXECUTION_ROLE: &str = "arn:aws:iam::*:role/stacksets-exec-*";

/// The service roles the baseline makes (each control's [`crate::controls::Control::service_roles`]),
/// by name: protected by name in the security account, where the pipeline's own assure-* roles are.
pub const BASELINE_ROLES: &[&str] = &[TRAIL_LOGS_ROLE, FINDINGS_ROLE, FINDINGS_EVENTS_ROLE, AGGREGATOR_ROLE];

/// The service-linked roles the baseline's services act through in a member account: Config's
/// recorder, GuardDuty's detector, Access Analyzer's organization analyzer and the StackSet of the
/// member role (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html).
const SERVICE_LINKED_ROLES: &[&str] = &[
    "config.amazonaws.com",
    "guardduty.amazonaws.com",
    "access-analyzer.amazonaws.com",
    "member.org.stacksets.cloudformation.amazonaws.com",
];

/// The mandatory policies: (name, description, document). Every statement denies; each names the
/// Service Authorization Reference page its actions, resources and condition keys come from
/// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_SERVICE.html).
pub fn policies(run: &RunInput) -> Vec<(&'static str, &'static str, Value)> {
    let member = exempt_principals(run);
    let exempt = json!({"ArnNotLike": {"aws:PrincipalARN": member}});
    // The member role's stack and the role itself may also be changed by the StackSet that deploys it.
    let mut deployers = member.clone();
    deployers.push(STACKSET_EXECUTION_ROLE.to_owned());
    let exempt_deployers = json!({"ArnNotLike": {"aws:PrincipalARN": deployers}});
    let alarm_key = json!({"ArnNotLike": {"aws:PrincipalARN": member},
                           "ForAnyValue:StringEquals": {"kms:ResourceAliases": ALARM_KEY_ALIAS}});
    let role = |name: &str| format!("arn:aws:iam::*:role/{name}");
    let mut protected_roles = vec![role(&run.role_name), STACKSET_EXECUTION_ROLE.to_owned()];
    protected_roles.extend(BASELINE_ROLES.iter().map(|r| role(r)));
    let role_writes = json!([
        "iam:CreateRole",
        "iam:AttachRolePolicy",
        "iam:DeleteRole",
        "iam:DeleteRolePermissionsBoundary",
        "iam:DeleteRolePolicy",
        "iam:DetachRolePolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:PutRolePolicy",
        "iam:UpdateAssumeRolePolicy",
        "iam:UpdateRole",
        "iam:UpdateRoleDescription",
        "iam:TagRole",
        "iam:UntagRole"
    ]);
    let baseline = json!({
        "Version": "2012-10-17",
        "Statement": [
            // list_awsconfig: recorder, channel, retention and aggregator writes are on `*`.
            {"Sid": "ProtectConfig", "Effect": "Deny", "Resource": "*", "Condition": exempt,
             "Action": ["config:DeleteConfigurationRecorder", "config:DeleteDeliveryChannel", "config:DeleteRetentionConfiguration",
                        "config:PutConfigurationRecorder", "config:PutDeliveryChannel", "config:PutRetentionConfiguration",
                        "config:StopConfigurationRecorder", "config:DeleteConfigurationAggregator", "config:PutConfigurationAggregator",
                        "config:AssociateResourceTypes", "config:DisassociateResourceTypes"]},
            // list_amazonguardduty: a suppression rule (a filter whose action is ARCHIVE) hides
            // findings as surely as a stopped detector.
            {"Sid": "ProtectGuardDuty", "Effect": "Deny", "Resource": "*", "Condition": exempt,
             "Action": ["guardduty:AcceptAdministratorInvitation", "guardduty:AcceptInvitation", "guardduty:ArchiveFindings",
                        "guardduty:CreateFilter", "guardduty:UpdateFilter",
                        "guardduty:CreatePublishingDestination", "guardduty:DeleteDetector", "guardduty:DeleteInvitations",
                        "guardduty:DeleteMembers", "guardduty:DeletePublishingDestination", "guardduty:DisassociateFromAdministratorAccount",
                        "guardduty:DisassociateFromMasterAccount", "guardduty:DisassociateMembers", "guardduty:StopMonitoringMembers",
                        "guardduty:UpdateDetector", "guardduty:UpdatePublishingDestination"]},
            // list_awscloudtrail: trail writes are on the trail's ARN.
            {"Sid": "ProtectTrail", "Effect": "Deny", "Resource": format!("arn:aws:cloudtrail:*:*:trail/{TRAIL}"), "Condition": exempt,
             "Action": ["cloudtrail:DeleteTrail", "cloudtrail:PutEventSelectors", "cloudtrail:PutInsightSelectors",
                        "cloudtrail:StopLogging", "cloudtrail:UpdateTrail"]},
            // list_amazoncloudwatchlogs: on the log group (`log-group:NAME` and `log-group:NAME:*`);
            // a filter rewritten to another namespace or value, a key of the administrator's or a
            // masking policy blinds the alarms as surely as a deleted filter.
            {"Sid": "ProtectTrailLogs", "Effect": "Deny", "Resource": format!("arn:aws:logs:*:*:log-group:{TRAIL_LOG_GROUP}*"), "Condition": exempt,
             "Action": ["logs:DeleteLogGroup", "logs:DeleteLogStream", "logs:DeleteMetricFilter", "logs:PutMetricFilter",
                        "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey", "logs:DisassociateKmsKey",
                        "logs:PutDataProtectionPolicy"]},
            // list_amazoncloudwatch: alarm writes are on the alarm's ARN.
            {"Sid": "ProtectAlarms", "Effect": "Deny", "Resource": format!("arn:aws:cloudwatch:*:*:alarm:{ALARM_PREFIX}*"), "Condition": exempt,
             "Action": ["cloudwatch:DeleteAlarms", "cloudwatch:DisableAlarmActions", "cloudwatch:PutMetricAlarm", "cloudwatch:SetAlarmState"]},
            // list_amazoncloudwatch: PutMetricData is on `*` with `cloudwatch:namespace`. Negative
            // data in the alarms' namespace would keep `Sum >= 1` from ever firing; the metric
            // filters publish as CloudWatch Logs, which SCPs do not bind, and assure never does.
            {"Sid": "ProtectAlarmMetrics", "Effect": "Deny", "Resource": "*", "Action": "cloudwatch:PutMetricData",
             "Condition": {"StringLike": {"cloudwatch:namespace": format!("{METRIC_NAMESPACE}*")}}},
            // list_amazonsns: on the topic's ARN; a subscription's writes (Unsubscribe,
            // SetSubscriptionAttributes) on its topic's, whose ARN the subscription's extends.
            {"Sid": "ProtectAlarmTopic", "Effect": "Deny", "Condition": exempt,
             "Resource": [format!("arn:aws:sns:*:*:{ALARM_TOPIC}"), format!("arn:aws:sns:*:*:{ALARM_TOPIC}:*")],
             "Action": ["sns:DeleteTopic", "sns:SetTopicAttributes", "sns:AddPermission", "sns:RemovePermission",
                        "sns:Unsubscribe", "sns:SetSubscriptionAttributes", "sns:PutDataProtectionPolicy"]},
            // list_awskeymanagementservice: key operations carry `kms:ResourceAliases`; alias
            // operations are on the alias's ARN. A disabled key silences every alarm, the one for
            // disabled keys first.
            {"Sid": "ProtectAlarmKey", "Effect": "Deny", "Resource": "*", "Condition": alarm_key,
             "Action": ["kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKeyRotation",
                        "kms:DeleteImportedKeyMaterial", "kms:RevokeGrant"]},
            {"Sid": "ProtectAlarmKeyAlias", "Effect": "Deny", "Resource": format!("arn:aws:kms:*:*:{ALARM_KEY_ALIAS}"), "Condition": exempt,
             "Action": ["kms:DeleteAlias", "kms:UpdateAlias"]}
        ]
    });
    let access = json!({
        "Version": "2012-10-17",
        "Statement": [
            // list_awsidentityandaccessmanagementiam: role writes are on the role's ARN, whose `*`
            // also matches a path (`role/stacksets-exec-x/y`): assure's roles and the StackSet's,
            // so nobody can make a role that looks like either.
            {"Sid": "ProtectRoles", "Effect": "Deny", "Condition": exempt_deployers,
             "Resource": protected_roles, "Action": role_writes},
            // The security account runs the pipeline, whose own roles (assure-step-*,
            // assure-operator, …) its stack changes with its administrators' credentials
            // (`assure deploy`): there, only the roles above, by name; everywhere else every
            // assure-* role, so nobody makes one that looks like the pipeline's.
            {"Sid": "ProtectAssureRoles", "Effect": "Deny", "Resource": role("assure-*"), "Action": role_writes,
             "Condition": {"ArnNotLike": {"aws:PrincipalARN": deployers}, "StringNotEquals": {"aws:ResourceAccount": run.org.security.as_str()}}},
            // list_awssecuritytokenservice: AssumeRole is on the role; no principal of the account
            // is the StackSet (its service-linked role is not bound by SCPs).
            {"Sid": "NoStackSetRole", "Effect": "Deny", "Resource": STACKSET_EXECUTION_ROLE, "Condition": exempt_deployers,
             "Action": ["sts:AssumeRole", "iam:PassRole"]},
            {"Sid": "ProtectServiceRoles", "Effect": "Deny", "Condition": exempt, "Action": "iam:DeleteServiceLinkedRole",
             "Resource": SERVICE_LINKED_ROLES.iter().map(|s| format!("arn:aws:iam::*:role/aws-service-role/{s}/*")).collect::<Vec<_>>()},
            // list_awscloudformation: stack operations are on `stack/NAME/ID`.
            {"Sid": "ProtectStacks", "Effect": "Deny", "Resource": format!("arn:aws:cloudformation:*:*:stack/StackSet-{MEMBER_STACK_SET}-*"),
             "Condition": exempt_deployers,
             "Action": ["cloudformation:CreateStack", "cloudformation:DeleteStack", "cloudformation:UpdateStack",
                        "cloudformation:UpdateTerminationProtection", "cloudformation:SetStackPolicy",
                        "cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet", "cloudformation:ContinueUpdateRollback",
                        "cloudformation:CancelUpdateStack", "cloudformation:RollbackStack"]},
            // list_awssystemsmanager: the preferences document, and StartSession on its document
            // (and target): a session under another Session document, or SSH through
            // AWS-StartSSHSession, is a shell Session Manager does not log. Port forwarding
            // carries no shell.
            {"Sid": "ProtectSessionPreferences", "Effect": "Deny", "Resource": "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell", "Condition": exempt,
             "Action": ["ssm:CreateDocument", "ssm:DeleteDocument", "ssm:UpdateDocument", "ssm:UpdateDocumentDefaultVersion", "ssm:ModifyDocumentPermission"]},
            {"Sid": "LoggedSessionsOnly", "Effect": "Deny", "Action": "ssm:StartSession",
             "NotResource": ["arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell", "arn:aws:ssm:*::document/AWS-StartPortForwardingSession*",
                             "arn:aws:ec2:*:*:instance/*", "arn:aws:ssm:*:*:managed-instance/*", "arn:aws:ecs:*:*:task/*"]},
            // list_awsorganizations: leaving takes the account out of every SCP, GuardDuty and the
            // aggregator at once (https://docs.aws.amazon.com/organizations/latest/APIReference/API_LeaveOrganization.html).
            {"Sid": "StayInOrganization", "Effect": "Deny", "Resource": "*", "Action": "organizations:LeaveOrganization"},
            // list_awsaccountmanagement: an opt-in Region disabled takes every control assure put
            // there (detector, recorder, analyzer, session logging) with it; the policies are the
            // organization's, whatever Regions a run covers, so no Region may be disabled but by
            // the member role (https://docs.aws.amazon.com/accounts/latest/reference/API_DisableRegion.html).
            {"Sid": "KeepRegions", "Effect": "Deny", "Resource": "*", "Condition": exempt, "Action": "account:DisableRegion"}
        ]
    });
    // The root user's own credentials, not the short, task-scoped root sessions of centralized
    // root access (`sts:AssumeRoot`), which carry `aws:AssumedRoot` (AWS's sample,
    // aws-samples/service-control-policy-examples, "Privileged-access-controls").
    let root = json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "RestrictRoot", "Effect": "Deny", "Action": "*", "Resource": "*",
                       "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"},
                                     "Null": {"aws:AssumedRoot": "true"}}}]
    });
    // The logging and security accounts hold the trail's logs and the findings path: the logging
    // buckets, their key, and the findings' rules, stream and analyzer (list_amazons3,
    // list_awskeymanagementservice, list_amazoneventbridge, list_amazonkinesisfirehose,
    // list_awsidentityandaccessmanagementaccessanalyzer). Nothing there destroys, rewrites or
    // redirects what the services deliver; reading and the accounts' other buckets and rules are
    // untouched. Rollback never deletes logs, so no statement exempts their deletion.
    let buckets = ["arn:aws:s3:::assure-logs-*", "arn:aws:s3:::assure-access-logs-*"];
    let logging_key = json!({"ArnNotLike": {"aws:PrincipalARN": exempt_principals(run)},
                             "ForAnyValue:StringEquals": {"kms:ResourceAliases": RunInput::LOGGING_KEY_ALIAS}});
    let log_archive = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ProtectLogBuckets", "Effect": "Deny", "Resource": buckets, "Condition": exempt,
             "Action": ["s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:PutBucketAcl", "s3:PutLifecycleConfiguration",
                        "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration", "s3:PutBucketPublicAccessBlock",
                        "s3:PutBucketOwnershipControls", "s3:PutBucketLogging", "s3:PutReplicationConfiguration",
                        "s3:PutBucketObjectLockConfiguration"]},
            {"Sid": "KeepLogs", "Effect": "Deny", "Resource": buckets.map(|b| format!("{b}/*")),
             "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention"]},
            {"Sid": "ProtectLogKey", "Effect": "Deny", "Resource": "*", "Condition": logging_key,
             "Action": ["kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKeyRotation",
                        "kms:DeleteImportedKeyMaterial", "kms:RevokeGrant"]},
            {"Sid": "ProtectLogKeyAlias", "Effect": "Deny", "Resource": format!("arn:aws:kms:*:*:{}", RunInput::LOGGING_KEY_ALIAS),
             "Condition": exempt, "Action": ["kms:DeleteAlias", "kms:UpdateAlias"]},
            {"Sid": "ProtectFindingsPath", "Effect": "Deny", "Condition": exempt,
             "Resource": [format!("arn:aws:events:*:*:rule/{FINDINGS}"), format!("arn:aws:firehose:*:*:deliverystream/{FINDINGS}")],
             "Action": ["events:DeleteRule", "events:DisableRule", "events:PutRule", "events:PutTargets", "events:RemoveTargets",
                        "firehose:DeleteDeliveryStream", "firehose:UpdateDestination", "firehose:StopDeliveryStreamEncryption"]},
            {"Sid": "ProtectOrganizationAnalyzer", "Effect": "Deny", "Condition": exempt,
             "Resource": format!("arn:aws:access-analyzer:*:*:analyzer/{ANALYZER}*"),
             "Action": ["access-analyzer:DeleteAnalyzer", "access-analyzer:CreateArchiveRule", "access-analyzer:UpdateArchiveRule",
                        "access-analyzer:ApplyArchiveRule"]},
            {"Sid": "ProtectFindingsExport", "Effect": "Deny", "Resource": "*", "Condition": exempt,
             "Action": ["guardduty:DeleteDetector", "guardduty:DeletePublishingDestination", "guardduty:UpdatePublishingDestination",
                        "guardduty:DeleteMembers", "guardduty:DisassociateMembers", "guardduty:StopMonitoringMembers"]}
        ]
    });
    vec![
        (SCP_PROTECT, "assure: protects the security baseline from changes outside assure", baseline),
        (SCP_ACCESS, "assure: protects assure's roles, its stack, session logging and membership", access),
        (SCP_ROOT, "assure: restricts the use of root credentials", root),
        (
            SCP_LOG_ARCHIVE,
            "assure: protects the organization's logs and findings path in the logging and security accounts",
            log_archive,
        ),
    ]
}

/// Whether a policy is attached to the onboarded account (else only to the logging and security
/// accounts).
pub fn on_target(name: &str) -> bool {
    name != SCP_LOG_ARCHIVE
}

/// Whether a policy is attached to the logging and security accounts: their part of the baseline,
/// and assure's roles, stack and membership there.
pub fn on_log_archive(name: &str) -> bool {
    name == SCP_LOG_ARCHIVE || name == SCP_ACCESS
}

/// The service control policies attached to `account`: (name, id).
pub(crate) async fn attached_scps(
    orgs: &aws_sdk_organizations::Client,
    account: &assure_contract::AccountId,
) -> Result<Vec<(String, String)>, StepError> {
    let mut out = Vec::new();
    let mut pages = orgs
        .list_policies_for_target()
        .target_id(account.as_str())
        .filter(PolicyType::ServiceControlPolicy)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for p in page.aws("organizations:ListPoliciesForTarget")?.policies() {
            out.push((p.name().unwrap_or_default().to_owned(), p.id().unwrap_or_default().to_owned()));
        }
    }
    Ok(out)
}

/// [`attached_scps`] read once per task: preflight checks the quota with it and records it.
pub(crate) async fn attached_once(
    mgmt: &crate::aws::AccountConfig,
    account: &assure_contract::AccountId,
) -> Result<Vec<(String, String)>, StepError> {
    let read = async {
        let list = attached_scps(&mgmt.organizations(), account).await?;
        serde_json::to_string(&list).map_err(|e| StepError::internal(e.to_string()))
    };
    let text = mgmt.account_wide(&format!("attached-scps/{account}"), read).await?;
    serde_json::from_str(&text).map_err(|e| StepError::internal(e.to_string()))
}

/// The organization's service control policies: name → id.
async fn policies_by_name(
    orgs: &aws_sdk_organizations::Client,
) -> Result<std::collections::BTreeMap<String, String>, StepError> {
    let mut out = std::collections::BTreeMap::new();
    let mut pages = orgs.list_policies().filter(PolicyType::ServiceControlPolicy).into_paginator().send();
    while let Some(page) = pages.next().await {
        for p in page.aws("organizations:ListPolicies")?.policies() {
            out.insert(p.name().unwrap_or_default().to_owned(), p.id().unwrap_or_default().to_owned());
        }
    }
    Ok(out)
}

/// AWS's limit of SCPs attached to one target, counted with the ones assure would attach to
/// `account` (`wanted`: a policy's name → whether it goes there)
/// (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html).
fn within_quota(
    run: &RunInput,
    account: &AccountId,
    wanted: fn(&str) -> bool,
    attached: &[(String, String)],
) -> Result<(), StepError> {
    let missing = policies(run).iter().filter(|(n, _, _)| wanted(n) && !attached.iter().any(|(a, _)| a == n)).count();
    if attached.len() + missing > MAX_POLICIES_PER_TARGET {
        return Err(StepError::new(ErrorName::QuotaExceeded, format!(
            "account {account} has {} service control policies attached ({}); attaching {missing} more would pass AWS's limit of {MAX_POLICIES_PER_TARGET} per target: detach or merge one first",
            attached.len(), attached.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "))));
    }
    Ok(())
}

/// The quota is knowable before the first change: a run it would stop at its last step is refused
/// by preflight instead.
///
/// So is a root without service control policies enabled: AttachPolicy refuses every SCP there
/// (PolicyTypeNotEnabledException,
/// https://docs.aws.amazon.com/organizations/latest/APIReference/API_AttachPolicy.html). Enabling
/// the type changes every account of the organization, so assure does not do it on its own.
async fn preflight(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    let organization = aws.organization(&run.org.management, &run.home_region);
    if run.organization.is_none() {
        root_enables_scps(&organization.organizations()).await?;
    }
    within_quota(run, &run.account, on_target, &attached_once(&organization, &run.account).await?)
}

/// The organization's root has service control policies enabled; a bulk run checks it once, in
/// its organization step.
async fn root_enables_scps(orgs: &aws_sdk_organizations::Client) -> Result<(), StepError> {
    let roots = orgs.list_roots().send().await.aws("organizations:ListRoots")?;
    for root in roots.roots() {
        let enabled = root.policy_types().iter().any(|t| {
            t.r#type() == Some(&PolicyType::ServiceControlPolicy) && t.status() == Some(&PolicyTypeStatus::Enabled)
        });
        if !enabled {
            let id = root.id().unwrap_or("?");
            return Err(StepError::new(
                ErrorName::Conflict,
                format!(
                    "scps: service control policies are not enabled in the organization's root {id}, so none can be attached; only the management account can enable them, for the whole organization (organizations:EnablePolicyType --root-id {id} --policy-type SERVICE_CONTROL_POLICY)"
                ),
            ));
        }
    }
    Ok(())
}

/// The policies exist with assure's content, created or updated as needed: name → id (empty in a
/// plan that would create it).
async fn ensure_policies(
    orgs: &aws_sdk_organizations::Client,
    run: &RunInput,
    changes: &mut Changes,
) -> Result<std::collections::BTreeMap<String, String>, StepError> {
    let existing = policies_by_name(orgs).await?;
    let mut ids = std::collections::BTreeMap::new();
    for (name, description, doc) in &policies(run) {
        let text = doc.to_string();
        if text.len() > MAX_POLICY_CHARS {
            return Err(StepError::internal(format!(
                "policy {name} is {} characters, over AWS's {MAX_POLICY_CHARS}",
                text.len()
            )));
        }
        let id = match existing.get(*name) {
            Some(id) => {
                let current = orgs
                    .describe_policy()
                    .policy_id(id)
                    .send()
                    .await
                    .aws(format!("organizations:DescribePolicy {name}"))?;
                let content: Option<Value> =
                    current.policy().and_then(|p| p.content()).and_then(|c| serde_json::from_str(c).ok());
                if content.as_ref() != Some(doc) {
                    if changes.live() {
                        orgs.update_policy()
                            .policy_id(id)
                            .content(&text)
                            .send()
                            .await
                            .aws(format!("organizations:UpdatePolicy {name}"))?;
                    }
                    changes.push(format!("organizations:policy/{name}"), "update", json!(content), doc.clone());
                }
                id.clone()
            }
            None if !changes.live() => {
                changes.push(format!("organizations:policy/{name}"), "create", Value::Null, doc.clone());
                String::new()
            }
            None => {
                let res = orgs
                    .create_policy()
                    .name(*name)
                    .description(*description)
                    .r#type(PolicyType::ServiceControlPolicy)
                    .content(&text)
                    .send()
                    .await;
                match res {
                    Ok(out) => {
                        changes.push(format!("organizations:policy/{name}"), "create", Value::Null, doc.clone());
                        out.policy()
                            .and_then(|p| p.policy_summary())
                            .and_then(|s| s.id())
                            .unwrap_or_default()
                            .to_owned()
                    }
                    // Another account's run created it a moment ago: the policies are
                    // organization-wide and the same for every run, so use that one.
                    Err(e) if error_code(&e) == Some("DuplicatePolicyException") => {
                        policies_by_name(orgs).await?.remove(*name).ok_or_else(|| {
                            StepError::new(
                                ErrorName::Conflict,
                                format!("organizations:CreatePolicy {name}: exists, but is not listed yet"),
                            )
                        })?
                    }
                    Err(e) => return Err(e).aws(format!("organizations:CreatePolicy {name}")),
                }
            }
        };
        ids.insert((*name).to_owned(), id);
    }
    Ok(ids)
}

/// The policies' ids a bulk run's organization step recorded, after checking their content.
fn organized_ids(run: &RunInput) -> Option<std::collections::BTreeMap<String, String>> {
    let policies = run.organization.as_ref()?.get("scps")?.get("policies")?.as_object()?;
    Some(policies.iter().filter_map(|(n, id)| Some((n.clone(), id.as_str()?.to_owned()))).collect())
}

pub async fn apply(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let region = &run.home_region;
    let organization = aws.organization(&run.org.management, region);
    let orgs = organization.organizations();
    let mut changes = Changes::new(&organization);

    let attached = attached_scps(&orgs, &run.account).await?;
    within_quota(run, &run.account, on_target, &attached)?;
    let ids = match organized_ids(run) {
        Some(ids) => ids,
        None => ensure_policies(&orgs, run, &mut changes).await?,
    };
    attach(&orgs, run, &run.account, on_target, &attached, &ids, &mut changes).await?;
    // A bulk run's organization step attached the logging and security accounts' part, and
    // enabled centralized root access, once.
    if run.organization.is_none() {
        attach_log_archive(&orgs, run, &ids, &mut changes).await?;
        if root::wanted(run) {
            root::organize(&aws.management(&run.org.management, region).await?, &mut changes).await?;
        }
    }
    let had = match root::wanted(run) {
        true => {
            let mgmt = aws.management(&run.org.management, region).await?;
            root::remove_credentials(&mgmt, &run.account, &mut changes).await?
        }
        false => Value::Null,
    };
    let snapshot = json!({
        "attached": attached.iter().map(|(n, i)| json!({"name": n, "id": i})).collect::<Vec<_>>(),
        "root": had,
    });
    Ok(changes.output(StepName::Scps, region, "service control policies", snapshot))
}

/// The logging and security accounts (one, if they are the same).
fn log_archive_accounts(run: &RunInput) -> Vec<&AccountId> {
    let mut out = vec![&run.org.logging, &run.org.security];
    out.dedup();
    out
}

/// The logging and security accounts' policies attached to each, within the quota.
async fn attach_log_archive(
    orgs: &aws_sdk_organizations::Client,
    run: &RunInput,
    ids: &std::collections::BTreeMap<String, String>,
    changes: &mut Changes,
) -> Result<(), StepError> {
    for account in log_archive_accounts(run) {
        let attached = attached_scps(orgs, account).await?;
        within_quota(run, account, on_log_archive, &attached)?;
        attach(orgs, run, account, on_log_archive, &attached, ids, changes).await?;
    }
    Ok(())
}

/// The policies `wanted` on `account` attached, those already there (`attached`) left alone.
async fn attach(
    orgs: &aws_sdk_organizations::Client,
    run: &RunInput,
    account: &AccountId,
    wanted: fn(&str) -> bool,
    attached: &[(String, String)],
    ids: &std::collections::BTreeMap<String, String>,
    changes: &mut Changes,
) -> Result<(), StepError> {
    for (name, _, _) in policies(run).iter().filter(|(n, _, _)| wanted(n)) {
        if attached.iter().any(|(n, _)| n == name) {
            continue;
        }
        let id = ids.get(*name).cloned().unwrap_or_default();
        if changes.live() {
            if id.is_empty() {
                return Err(StepError::new(
                    ErrorName::Conflict,
                    format!("scps: the bulk run's organization step recorded no policy {name}"),
                ));
            }
            match orgs.attach_policy().policy_id(&id).target_id(account.as_str()).send().await {
                Ok(_) => {}
                // Attached between the listing and now: what this step wanted.
                Err(e) if error_code(&e) == Some("DuplicatePolicyAttachmentException") => {}
                Err(e) => return Err(e).aws(format!("organizations:AttachPolicy {name} {account}")),
            }
        }
        changes.push(format!("organizations:policy/{name}/target/{account}"), "attach", json!(false), json!(true));
    }
    Ok(())
}

/// Evidence: each policy attached where it belongs (the account; the logging and security
/// accounts) with assure's content.
pub async fn evidence_for(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let organization = aws.organization(&run.org.management, &run.home_region);
    let orgs = organization.organizations();
    // In a bulk run, the organization step read every policy's content a moment before the
    // accounts' runs began, once for all of them (Organizations throttles first): here the policy
    // attached must be the very one it checked.
    let organized = organized_ids(run);
    let checked = match organized {
        Some(_) => "the policy whose content the bulk run's organization step checked",
        None => "content as assure wrote it",
    };
    let mut targets = vec![(&run.account, on_target as fn(&str) -> bool)];
    // The logging and security accounts' policies are a bulk run's organization step's, checked
    // there once; a run of its own attaches and checks them itself.
    if organized.is_none() {
        targets.extend(log_archive_accounts(run).into_iter().map(|a| (a, on_log_archive as fn(&str) -> bool)));
    }
    // A policy's content, read once however many accounts it is attached to.
    let mut content: std::collections::BTreeMap<String, Option<Value>> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for (account, wanted) in targets {
        let attached: std::collections::BTreeMap<String, String> =
            attached_scps(&orgs, account).await?.into_iter().collect();
        for (name, _, doc) in policies(run).into_iter().filter(|(n, _, _)| wanted(n)) {
            let ok = match (attached.get(name), &organized) {
                (Some(id), Some(ids)) => ids.get(name) == Some(id),
                (Some(id), None) => {
                    if !content.contains_key(id) {
                        let read = orgs
                            .describe_policy()
                            .policy_id(id)
                            .send()
                            .await
                            .aws(format!("organizations:DescribePolicy {name}"))?
                            .policy()
                            .and_then(|p| p.content())
                            .and_then(|c| serde_json::from_str::<Value>(c).ok());
                        content.insert(id.clone(), read);
                    }
                    content[id].as_ref() == Some(&doc)
                }
                (None, _) => false,
            };
            let control = match name {
                SCP_ROOT => "scps.restrict-root",
                _ if account != &run.account => "scps.log-archive",
                _ => "scps.attached",
            };
            out.push(evidence(
                &organization,
                control,
                format!("organizations:policy/{name} on {account}"),
                ok,
                format!("attached: {}, {checked}: {ok}", attached.contains_key(name)),
            ));
        }
    }
    if root::wanted(run) {
        let target = aws.account(&run.account, &run.home_region).await?;
        let mgmt = aws.management(&run.org.management, &run.home_region).await?;
        out.extend(root::evidence_for(&mgmt, &target, organized.is_some()).await?);
    }
    Ok(out)
}

/// The SCP control: the mandatory service control policies, attached to the account.
pub struct Scps;

impl Control for Scps {
    fn name(&self) -> &'static str {
        "scps"
    }

    fn steps(&self) -> &'static [StepName] {
        &[StepName::Scps]
    }

    fn preflight<'a>(&'a self, aws: &'a Aws, run: &'a RunInput) -> Fut<'a, ()> {
        Box::pin(preflight(aws, run))
    }

    /// The policies themselves, with assure's content; their ids are the facts.
    fn organize<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, _: &'a Region) -> Fut<'a, Organized> {
        Box::pin(async move {
            let organization = aws.organization(&run.org.management, &run.home_region);
            let orgs = organization.organizations();
            root_enables_scps(&orgs).await?;
            let mut changes = Changes::new(&organization);
            let ids = ensure_policies(&orgs, run, &mut changes).await?;
            attach_log_archive(&orgs, run, &ids, &mut changes).await?;
            if root::wanted(run) {
                root::organize(&aws.management(&run.org.management, &run.home_region).await?, &mut changes).await?;
            }
            Ok(Organized { changes: changes.list, facts: json!({"policies": ids}) })
        })
    }

    fn apply<'a>(&'a self, call: StepCall<'a>) -> Fut<'a, StepOutput> {
        let StepCall { aws, run, .. } = call;
        Box::pin(apply(aws, run))
    }

    fn evidence<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, _: &'a Region) -> Fut<'a, Vec<Evidence>> {
        Box::pin(evidence_for(aws, run))
    }

    fn compensate<'a>(&'a self, undo: &'a Undo<'a>, region: &'a Region, report: &'a mut Report) -> Fut<'a, ()> {
        Box::pin(compensate(undo, region, report))
    }
}

/// assure's policies detached from the account; the policies stay for the organization's other accounts.
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let run = undo.run;
    let orgs = undo.aws.organization(&run.org.management, region).organizations();
    for (name, id) in attached_scps(&orgs, &run.account).await? {
        if [SCP_PROTECT, SCP_ACCESS, SCP_ROOT].contains(&name.as_str()) {
            orgs.detach_policy()
                .policy_id(&id)
                .target_id(run.account.as_str())
                .send()
                .await
                .aws("organizations:DetachPolicy")?;
            report.restored.push(format!("scps: detached {name} from {}", run.account));
        }
    }
    if let Some(had) = undo.snapshot(StepName::Scps, region).map(|s| &s["root"]).filter(|h| !h.is_null()) {
        let mgmt = undo.aws.management(&run.org.management, region).await?;
        root::compensate(&mgmt, &run.account, region, had, report).await?;
    }
    Ok(())
}
