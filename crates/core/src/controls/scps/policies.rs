//! The service control policies themselves, as the run's options make them.

use assure_contract::RunInput;
use serde_json::{json, Value};

use crate::controls::names::{
    ALARM_KEY_ALIAS, ALARM_PREFIX, ALARM_TOPIC, ANALYZER, FINDINGS, MEMBER_STACK_SET, METRIC_NAMESPACE, SCP_ACCESS,
    SCP_LOG_ARCHIVE, SCP_PROTECT, SCP_ROOT, TRAIL, TRAIL_LOG_GROUP,
};

use super::*;

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
