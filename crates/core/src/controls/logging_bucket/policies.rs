//! The policies of the logging bucket, its access-log bucket and the logging key.

use serde_json::{json, Value};

use crate::controls::names::FINDINGS_ROLE;

use super::*;

/// `services` and GuardDuty's principals, the global one and each opt-in region's.
pub(super) fn delivering_services(services: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    out.extend(assure_contract::guardduty_principals());
    out
}

pub(super) fn deny_plain_http(bucket: &str) -> Value {
    json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    })
}

/// The logging bucket's policy: TLS only, and only the services that deliver logs, only for this
/// organization.
pub fn logging_bucket_policy(bucket: &str, org_id: &str, security: &str) -> Value {
    let arn = format!("arn:aws:s3:::{bucket}");
    let org = json!({"StringEquals": {"aws:SourceOrgID": org_id}});
    let services = delivering_services(&["cloudtrail.amazonaws.com", "config.amazonaws.com"]);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            deny_plain_http(bucket),
            {"Sid": "ServicesCheckBucket", "Effect": "Allow",
             "Principal": {"Service": services.clone()},
             "Action": ["s3:GetBucketAcl", "s3:ListBucket", "s3:GetBucketLocation"],
             "Resource": arn, "Condition": org},
            {"Sid": "ServicesDeliverLogs", "Effect": "Allow",
             "Principal": {"Service": services},
             "Action": "s3:PutObject",
             "Resource": [format!("{arn}/AWSLogs/*"), format!("{arn}/guardduty/*")],
             "Condition": org},
            // The findings role is named in a condition, not as the principal: S3 refuses a policy
            // naming a role that does not exist, and the access-analyzer step creates it later.
            {"Sid": "AccessAnalyzerFindings", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{security}:root")},
             "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket"],
             "Resource": [arn.clone(), format!("{arn}/access-analyzer/*")],
             "Condition": {
                 "StringEquals": {"aws:PrincipalOrgID": org_id},
                 "ArnEquals": {"aws:PrincipalArn": format!("arn:aws:iam::{security}:role/{FINDINGS_ROLE}")}}},
            // The agent checks the bucket's default encryption before it uploads, as the instance
            // (https://docs.aws.amazon.com/systems-manager/latest/userguide/getting-started-create-iam-instance-profile.html).
            {"Sid": "SessionManagerChecksEncryption", "Effect": "Allow",
             "Principal": {"AWS": "*"},
             "Action": "s3:GetEncryptionConfiguration",
             "Resource": arn.clone(),
             "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}},
            // Each account writes its sessions' logs under its own prefix only (the session-manager
            // step's `session-manager/ACCOUNT/REGION`): no account can forge or overwrite another's
            // (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
            {"Sid": "SessionManagerLogs", "Effect": "Allow",
             "Principal": {"AWS": "*"},
             "Action": "s3:PutObject",
             "Resource": format!("{arn}/session-manager/${{aws:PrincipalAccount}}/*"),
             "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}}
        ]
    })
}

/// The access-log bucket's policy: TLS only, and S3's log delivery for the logging bucket alone.
pub fn access_log_bucket_policy(bucket: &str, source_bucket: &str, account: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            deny_plain_http(bucket),
            {"Sid": "S3ServerAccessLogs", "Effect": "Allow",
             "Principal": {"Service": "logging.s3.amazonaws.com"},
             "Action": "s3:PutObject",
             "Resource": format!("arn:aws:s3:::{bucket}/{ACCESS_LOG_PREFIX}*"),
             "Condition": {
                 "ArnLike": {"aws:SourceArn": format!("arn:aws:s3:::{source_bucket}")},
                 "StringEquals": {"aws:SourceAccount": account}}}
        ]
    })
}

/// The KMS key policy: the logging account administers it; the log-delivering services of this
/// organization encrypt with it; principals of the organization use it only through S3 in the
/// bucket's region (`kms:ViaService`: their uploads to the logging bucket, such as session logs,
/// and reads the bucket policy grants), never to decrypt a ciphertext directly
/// (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
///
/// assure's member role is named in the policy for what it does to the key after creating it. An
/// IAM policy could only single the key out by its tag, and KMS documents that authorization by a
/// tag can lag its creation by minutes; the policy given to `CreateKey` applies at once
/// (https://docs.aws.amazon.com/kms/latest/developerguide/abac.html).
pub fn key_policy(account: &str, region: &str, org_id: &str, role_name: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministers", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "AssureMaintainsKey", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:role/{role_name}")},
             "Action": ["kms:CreateAlias", "kms:EnableKeyRotation", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion",
                        "kms:EnableKey", "kms:CancelKeyDeletion"],
             "Resource": "*"},
            // Decrypt too: the bucket uses an S3 Bucket Key, with which CloudTrail needs it
            // ("AWS KMS key policy for CloudTrail": "If you are using an existing S3 bucket with an
            // S3 Bucket Key, kms:Decrypt permissions are required"), and Config's delivery channel
            // page grants Config both (https://docs.aws.amazon.com/config/latest/developerguide/s3-kms-key-policy.html).
            {"Sid": "ServicesEncryptLogs", "Effect": "Allow",
             // No CloudWatch Logs principal: no log group uses this key (CloudWatch Logs would
             // call KMS as logs.REGION.amazonaws.com; "Encrypt log data in CloudWatch Logs using
             // AWS KMS", https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
             "Principal": {"Service": delivering_services(&["cloudtrail.amazonaws.com", "config.amazonaws.com"])},
             "Action": ["kms:GenerateDataKey*", "kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceOrgID": org_id}}},
            {"Sid": "OrganizationUsesKey", "Effect": "Allow",
             "Principal": {"AWS": "*"},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id, "kms:ViaService": format!("s3.{region}.amazonaws.com")}}}
        ]
    })
}
