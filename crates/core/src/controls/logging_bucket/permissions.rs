//! What the logging bucket control's calls need granted.

use assure_contract::RunInput;
use serde_json::{json, Value};

use crate::controls::kit::permissions::*;
use crate::controls::Permissions;

pub(super) const PERMISSIONS: Permissions = Permissions::member(member);

/// In the logging account: the logging bucket, its access-log bucket and the logging key. Every
/// account's verify reads the buckets by their name.
fn member() -> Vec<Value> {
    let buckets = json!([
        sub("arn:${AWS::Partition}:s3:::assure-logs-${AWS::AccountId}-*"),
        sub("arn:${AWS::Partition}:s3:::assure-access-logs-${AWS::AccountId}-*"),
    ]);
    let mut statements = vec![
        // The bucket policy's aws:PrincipalOrgID.
        read_setup(&["organizations:DescribeOrganization"]),
        allow(
            "ReadBuckets",
            sub("arn:${AWS::Partition}:s3:::*"),
            &[
                "s3:GetBucketLogging",
                "s3:GetBucketOwnershipControls",
                "s3:GetBucketPolicy",
                "s3:GetBucketPublicAccessBlock",
                "s3:GetBucketVersioning",
                "s3:GetEncryptionConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:ListBucket",
            ],
        ),
        allow(
            "LoggingBucket",
            buckets,
            &[
                "s3:CreateBucket",
                "s3:PutBucketPolicy",
                "s3:PutBucketLogging",
                "s3:PutBucketOwnershipControls",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutBucketVersioning",
                "s3:PutEncryptionConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
        ),
        key_alias("LoggingKeyAlias", RunInput::LOGGING_KEY_ALIAS, &["kms:CreateAlias"]),
    ];
    statements.extend(keys());
    statements
}
