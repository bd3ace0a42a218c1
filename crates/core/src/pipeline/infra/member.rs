//! The member role every onboarded account holds, deployed by a service-managed StackSet.

use assure_contract::DEFAULT_ROLE_NAME;
use serde_json::{json, Value};

use crate::controls::names;
use crate::pipeline::resources::OPERATOR_ROLE;

use super::*;

/// The role assure assumes in every member account (deploy it with a service-managed StackSet).
/// Scoped to the resources assure owns where the service allows it.
pub fn member_role_template() -> Value {
    let own = |service: &str, pattern: &str| {
        sub(&format!("arn:${{AWS::Partition}}:{service}:*:${{AWS::AccountId}}:{pattern}"))
    };
    let statements = json!([
        // Reads of what an account has. The listing calls take no resource, or (Config's
        // recorders, CloudWatch's alarms, GuardDuty's administrator and members) are authorized
        // against whatever the account holds, which assure must see whatever its names.
        {"Sid": "ReadSecuritySetup", "Effect": "Allow", "Resource": "*", "Action": [
            "cloudtrail:DescribeTrails", "cloudtrail:ListTrails", "cloudtrail:ListTags", "config:DescribeConfigurationRecorders", "config:DescribeConfigurationRecorderStatus",
            "config:DescribeDeliveryChannels", "config:DescribeDeliveryChannelStatus", "config:DescribeConfigurationAggregators", "guardduty:ListDetectors",
            "guardduty:GetAdministratorAccount", "guardduty:GetMembers", "guardduty:ListMembers", "guardduty:ListFilters",
            "guardduty:ListPublishingDestinations", "guardduty:DescribeOrganizationConfiguration", "logs:DescribeLogGroups",
            "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricStatistics", "organizations:DescribeOrganization",
            // Preflight: which Regions the account has enabled.
            "account:ListRegions",
            // Verify: the StackSet's execution roles, whose names the SCPs exempt; the root
            // user's credentials left (centralized root access).
            "iam:ListRoles", "iam:GetAccountSummary"]},
        // Reads of one resource by its name, wherever assure looks: trails homed in other accounts
        // (organization trails), buckets of the logging account.
        {"Sid": "ReadNamedResources", "Effect": "Allow", "Action": ["cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors", "cloudtrail:GetInsightSelectors", "cloudtrail:GetTrail"],
         "Resource": sub("arn:${AWS::Partition}:cloudtrail:*:*:trail/*")},
        {"Sid": "ReadBuckets", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:s3:::*"), "Action": [
            "s3:GetBucketLogging", "s3:GetBucketOwnershipControls", "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock",
            "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:ListBucket"]},
        {"Sid": "ReadOwnResources", "Effect": "Allow", "Resource": [
            own("guardduty", "detector/*"), own("access-analyzer", "analyzer/*"), own("ssm", "document/*"),
            own("logs", "log-group:*"), own("sns", "*"), sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"),
            own("kms", "key/*"), own("firehose", "deliverystream/*"), own("events", "rule/*")], "Action": [
            "guardduty:GetDetector", "access-analyzer:GetAnalyzer", "ssm:GetDocument", "logs:DescribeMetricFilters",
            "sns:GetTopicAttributes", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
            "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "firehose:DescribeDeliveryStream",
            "events:DescribeRule", "events:ListTargetsByRule", "guardduty:GetFilter"]},
        {"Sid": "AssureTrail", "Effect": "Allow", "Resource": own("cloudtrail", &format!("trail/{}", names::TRAIL)),
         "Action": ["cloudtrail:UpdateTrail"]},
        // The account's own trails retired (recorded whole, then deleted) or stopped, and recreated
        // or restarted by rollback.
        {"Sid": "OwnTrails", "Effect": "Allow", "Resource": own("cloudtrail", "trail/*"), "Action": [
            "cloudtrail:StopLogging", "cloudtrail:StartLogging", "cloudtrail:DeleteTrail", "cloudtrail:CreateTrail",
            "cloudtrail:PutEventSelectors", "cloudtrail:PutInsightSelectors", "cloudtrail:AddTags"]},
        {"Sid": "RemoveAlarms", "Effect": "Allow", "Resource": [
            own("cloudwatch", &format!("alarm:{}*", names::ALARM_PREFIX)), own("sns", names::ALARM_TOPIC),
            own("logs", &format!("log-group:{}*", names::TRAIL_LOG_GROUP))],
         "Action": ["cloudwatch:DeleteAlarms", "sns:DeleteTopic", "logs:DeleteMetricFilter"]},
        {"Sid": "TrailLogGroup", "Effect": "Allow", "Resource": own("logs", &format!("log-group:{}*", names::TRAIL_LOG_GROUP)),
         "Action": ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:PutMetricFilter"]},
        {"Sid": "Alarms", "Effect": "Allow", "Resource": own("cloudwatch", &format!("alarm:{}*", names::ALARM_PREFIX)), "Action": ["cloudwatch:PutMetricAlarm"]},
        {"Sid": "AlarmTopic", "Effect": "Allow", "Resource": own("sns", names::ALARM_TOPIC),
         "Action": ["sns:CreateTopic", "sns:SetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic"]},
        {"Sid": "AssureRoles", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/assure-*"),
         "Action": ["iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PassRole", "iam:DeleteRolePolicy", "iam:DeleteRole",
                    // A role of assure's name made before assure is taken over whole, and put
                    // back as it was by rollback.
                    "iam:DeleteRolePermissionsBoundary", "iam:DetachRolePolicy",
                    "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy"]},
        {"Sid": "ServiceLinkedRoles", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*"),
         "Action": ["iam:CreateServiceLinkedRole"],
         "Condition": {"StringEquals": {"iam:AWSServiceName": ["config.amazonaws.com", "access-analyzer.amazonaws.com", "guardduty.amazonaws.com"]}}},
        // Rollback restores an account's own Config recorder and recreates its own trails, with the
        // roles they had (a trail's CloudWatch Logs role).
        {"Sid": "RestoreOwnSetup", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"),
         "Action": ["iam:PassRole"], "Condition": {"StringEquals": {"iam:PassedToService": ["config.amazonaws.com", "cloudtrail.amazonaws.com"]}}},
        {"Sid": "PassServiceLinkedRoles", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*"),
         "Action": ["iam:PassRole"]},
        {"Sid": "Config", "Effect": "Allow", "Resource": "*", "Action": [
            "config:PutConfigurationRecorder", "config:PutDeliveryChannel", "config:StartConfigurationRecorder", "config:PutConfigurationAggregator",
            "config:StopConfigurationRecorder", "config:DeleteDeliveryChannel", "config:DeleteConfigurationRecorder"]},
        // Config checks an organization aggregator's delegated administrator with the caller's own
        // permission to list them (API_PutConfigurationAggregator, OrganizationAccessDeniedException).
        {"Sid": "ConfigOrganizationAggregator", "Effect": "Allow", "Resource": "*", "Action": ["organizations:ListDelegatedAdministrators"]},
        {"Sid": "GuardDuty", "Effect": "Allow", "Resource": "*", "Action": [
            "guardduty:CreateDetector", "guardduty:CreateMembers", "guardduty:DisassociateFromAdministratorAccount",
            "guardduty:DisassociateMembers", "guardduty:UpdateOrganizationConfiguration", "guardduty:CreatePublishingDestination",
            "guardduty:DeleteMembers"]},
        {"Sid": "GuardDutyDetector", "Effect": "Allow", "Resource": own("guardduty", "detector/*"), "Action": ["guardduty:UpdateDetector", "guardduty:UpdateFilter"]},
        {"Sid": "AccessAnalyzer", "Effect": "Allow", "Resource": own("access-analyzer", &format!("analyzer/{}", names::ANALYZER)),
         "Action": ["access-analyzer:CreateAnalyzer"]},
        {"Sid": "FindingsDelivery", "Effect": "Allow", "Resource": [
            own("firehose", &format!("deliverystream/{}", names::FINDINGS)), own("events", &format!("rule/{}", names::FINDINGS))],
         "Action": ["firehose:CreateDeliveryStream", "firehose:UpdateDestination", "events:PutRule", "events:PutTargets"]},
        {"Sid": "SessionPreferences", "Effect": "Allow", "Resource": own("ssm", "document/SSM-SessionManagerRunShell"),
         "Action": ["ssm:CreateDocument", "ssm:UpdateDocument", "ssm:UpdateDocumentDefaultVersion", "ssm:DeleteDocument"]},
        {"Sid": "LoggingBucket", "Effect": "Allow", "Resource": [
            sub("arn:${AWS::Partition}:s3:::assure-logs-${AWS::AccountId}-*"), sub("arn:${AWS::Partition}:s3:::assure-access-logs-${AWS::AccountId}-*")],
         "Action": ["s3:CreateBucket", "s3:PutBucketPolicy", "s3:PutBucketLogging", "s3:PutBucketOwnershipControls",
                    "s3:PutBucketPublicAccessBlock", "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration",
                    "s3:PutLifecycleConfiguration"]},
        {"Sid": "LoggingKey", "Effect": "Allow", "Resource": "*", "Action": ["kms:CreateKey"],
         "Condition": {"StringEquals": {"aws:RequestTag/assure:managed": "true"}}},
        // Tags given to CreateKey need kms:TagResource on every key of the account and Region
        // (https://docs.aws.amazon.com/kms/latest/developerguide/tag-permissions.html).
        {"Sid": "LoggingKeyTags", "Effect": "Allow", "Resource": own("kms", "key/*"), "Action": ["kms:TagResource"],
         "Condition": {"StringEquals": {"aws:RequestTag/assure:managed": "true"}}},
        // The key's own actions are granted by its key policy (controls::logging_bucket::key_policy);
        // CreateAlias needs the alias and the key (https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html).
        {"Sid": "LoggingKeyAlias", "Effect": "Allow",
         "Resource": [sub(&format!("arn:${{AWS::Partition}}:kms:*:${{AWS::AccountId}}:{}", assure_contract::RunInput::LOGGING_KEY_ALIAS)),
                      sub(&format!("arn:${{AWS::Partition}}:kms:*:${{AWS::AccountId}}:{}", names::ALARM_KEY_ALIAS)),
                      own("kms", "key/*")],
         "Action": ["kms:CreateAlias"]},
        // Proof of delivery (pipeline::deliveries): the canaries, in the onboarded account...
        {"Sid": "DeliveryCanaries", "Effect": "Allow", "Resource": "*",
         // CreateSampleFindings takes no resource-level permission (Service Authorization Reference).
         "Action": ["config:DeliverConfigSnapshot", "guardduty:CreateSampleFindings"]},
        // A session on an instance tagged assure:canary, started and ended at once.
        {"Sid": "DeliveryCanarySessionTargets", "Effect": "Allow",
         "Resource": [own("ec2", "instance/*"), own("ssm", "managed-instance/*")],
         "Action": ["ssm:StartSession"],
         "Condition": {"StringLike": {"ssm:resourceTag/assure:canary": "*"}}},
        {"Sid": "DeliveryCanarySessionDocument", "Effect": "Allow",
         "Resource": sub("arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:document/SSM-SessionManagerRunShell"),
         "Action": ["ssm:StartSession"]},
        {"Sid": "DeliveryCanarySessions", "Effect": "Allow", "Resource": own("ssm", "session/*"), "Action": ["ssm:TerminateSession"]},
        // The account's own session data key (the preferences' kmsKeyId, which onboarding keeps):
        // the client asks KMS for the session's data key, with the session in its encryption
        // context (Session Manager "Sample IAM policies": kms:GenerateDataKey for the user).
        {"Sid": "DeliveryCanarySessionKey", "Effect": "Allow", "Resource": own("kms", "key/*"),
         "Action": ["kms:GenerateDataKey"],
         "Condition": {"Null": {"kms:EncryptionContext:aws:ssm:SessionId": "false"}}},
        {"Sid": "DeliveryCanarySessionReads", "Effect": "Allow", "Resource": "*",
         "Action": ["ssm:DescribeInstanceInformation", "ssm:DescribeSessions"]},
        {"Sid": "DeliveryCanaryFindings", "Effect": "Allow", "Resource": own("guardduty", "detector/*"),
         "Action": ["guardduty:DescribePublishingDestination"]},
        {"Sid": "DeliveryCanaryAlarm", "Effect": "Allow",
         "Resource": own("cloudwatch", &format!("alarm:{}*", names::ALARM_PREFIX)),
         "Action": ["cloudwatch:SetAlarmState", "cloudwatch:DescribeAlarmHistory"]},
        // ...and where they arrive: the logging bucket's objects, read back through S3 with the
        // logging key (whose policy lets the account's principals use it, kms:ViaService S3).
        {"Sid": "DeliveredLogs", "Effect": "Allow",
         "Resource": sub("arn:${AWS::Partition}:s3:::assure-logs-${AWS::AccountId}-*/*"), "Action": ["s3:GetObject"]},
        {"Sid": "DeliveredLogsKey", "Effect": "Allow", "Resource": own("kms", "key/*"), "Action": ["kms:Decrypt"],
         "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}},
        // Rollback removes the alarm topic's key alias (the key's deletion its key policy grants).
        {"Sid": "RemoveAlarmKeyAlias", "Effect": "Allow",
         "Resource": [sub(&format!("arn:${{AWS::Partition}}:kms:*:${{AWS::AccountId}}:{}", names::ALARM_KEY_ALIAS)),
                      own("kms", "key/*")],
         "Action": ["kms:DeleteAlias"]}
    ]);
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "assure: the role assure assumes in a member account (deploy with a service-managed StackSet; generated by `cargo xtask codegen`)",
        "Parameters": {
            "PipelineAccount": {"Type": "String", "AllowedPattern": "^\\d{12}$", "Description": "the account the pipeline runs in"},
            "RoleName": {"Type": "String", "Default": DEFAULT_ROLE_NAME, "AllowedPattern": "^[\\w+=,.@-]{1,64}$"}
        },
        "Resources": {
            "ExecutionRole": {
                "Type": "AWS::IAM::Role",
                "Metadata": skip(&[
                    ("CKV_AWS_111", "Config, GuardDuty and the KMS key's creation take no resource-level constraint; the rest is scoped to assure's own resources"),
                    ("CKV_AWS_109", "iam:PutRolePolicy is limited to assure-* roles; the logging key's policy grants what the role does to the key"),
                    ("CKV_AWS_110", "iam:PassRole is limited to assure-* and service-linked roles"),
                    ("CKV_AWS_356", "the Config, GuardDuty and read actions listed support only Resource \"*\""),
                    ("CKV_AWS_108", "s3:GetBucket* reads bucket settings, not objects; verify needs them")
                ]),
                "Properties": {
                    "RoleName": reference("RoleName"),
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${PipelineAccount}:root")},
                        "Action": "sts:AssumeRole",
                        "Condition": {"ArnLike": {"aws:PrincipalArn": [
                            sub("arn:${AWS::Partition}:iam::${PipelineAccount}:role/assure-step-*"),
                            sub(&format!("arn:${{AWS::Partition}}:iam::${{PipelineAccount}}:role/{OPERATOR_ROLE}"))]}}}]},
                    "Policies": [{"PolicyName": "assure", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]
                }
            }
        },
        "Outputs": {"RoleArn": {"Value": getatt("ExecutionRole", "Arn")}}
    })
}
