//! The shared logging bucket in the logging account: a customer-managed KMS key with rotation, the
//! bucket with all four Block Public Access flags, BucketOwnerEnforced, versioning, SSE-KMS by
//! default, access logging to a second bucket, a lifecycle that archives and never expires, and a
//! policy that denies plain HTTP and admits only the log-delivering service principals of this
//! organization (`aws:SourceOrgID`).
//!
//! Created once and shared by every account; no account's rollback tears it down. Every aspect is
//! read first and written only if it differs.

use assure_contract::{Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketLoggingStatus,
    BucketVersioningStatus, CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    LoggingEnabled, NoncurrentVersionTransition, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Transition, TransitionStorageClass,
    VersioningConfiguration,
};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt, LOGGING_KEY_FACT};
use crate::controls::kit::{ensure_key, read_key, Changes};
use crate::controls::names::FINDINGS_ROLE;
use crate::controls::{Control, Fut, Organized, Report, StepCall, Undo};

/// Prefix of the logging bucket's own access logs in the access-log bucket.
const ACCESS_LOG_PREFIX: &str = "assure-logs/";

/// What assure finds of one bucket.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BucketState {
    pub exists: bool,
    pub public_access_block: Option<[bool; 4]>,
    pub ownership: Option<String>,
    pub versioning: Option<String>,
    /// (algorithm, KMS key id or ARN, bucket key enabled)
    pub encryption: Option<(String, Option<String>, bool)>,
    /// (target bucket, prefix)
    pub logging: Option<(String, String)>,
    pub lifecycle: Value,
    pub policy: Option<Value>,
}

impl BucketState {
    fn to_json(&self) -> Value {
        json!({
            "exists": self.exists,
            "publicAccessBlock": self.public_access_block,
            "ownership": self.ownership,
            "versioning": self.versioning,
            "encryption": self.encryption,
            "logging": self.logging,
            "lifecycle": self.lifecycle,
            "policy": self.policy,
        })
    }
}

/// The ids of enabled lifecycle rules that delete objects: an expiration of current or noncurrent
/// versions (in [`lifecycle_json`]'s form).
fn expiring_rules(lifecycle: &Value) -> Vec<String> {
    lifecycle
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == "Enabled" && (r["expiration"] == true || r["noncurrentExpiration"] == true))
        .map(|r| r["id"].as_str().unwrap_or("(no id)").to_owned())
        .collect()
}

/// Reads everything assure manages on `bucket`. A missing bucket is `exists: false`; a bucket that
/// exists but belongs to someone else is `Assure.Conflict`.
pub async fn read_bucket(acct: &AccountConfig, bucket: &str) -> Result<BucketState, StepError> {
    let s3 = acct.s3();
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => {}
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => return Ok(BucketState::default()),
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => {
            return Err(crate::aws::bucket_not_owned(bucket, &acct.account))
        }
        Err(e) => return Err(e).aws(format!("s3:HeadBucket {bucket}")),
    }
    // The bucket's settings are independent reads: asked at once.
    let pab = async {
        match s3.get_public_access_block().bucket(bucket).send().await {
            Ok(out) => Ok(out.public_access_block_configuration().map(|c| {
                [
                    c.block_public_acls().unwrap_or(false),
                    c.ignore_public_acls().unwrap_or(false),
                    c.block_public_policy().unwrap_or(false),
                    c.restrict_public_buckets().unwrap_or(false),
                ]
            })),
            Err(e) if error_code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => Ok(None),
            Err(e) => Err(e).aws(format!("s3:GetPublicAccessBlock {bucket}")),
        }
    };
    let ownership = async {
        match s3.get_bucket_ownership_controls().bucket(bucket).send().await {
            Ok(out) => Ok(out
                .ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| r.object_ownership().as_str().to_owned())),
            Err(e) if error_code(&e) == Some("OwnershipControlsNotFoundError") => Ok(None),
            Err(e) => Err(e).aws(format!("s3:GetBucketOwnershipControls {bucket}")),
        }
    };
    let versioning = async {
        let v =
            s3.get_bucket_versioning().bucket(bucket).send().await.aws(format!("s3:GetBucketVersioning {bucket}"))?;
        Ok(v.status().map(|s| s.as_str().to_owned()))
    };
    let encryption = async {
        match s3.get_bucket_encryption().bucket(bucket).send().await {
            Ok(out) => Ok(out.server_side_encryption_configuration().and_then(|c| c.rules().first()).and_then(|r| {
                r.apply_server_side_encryption_by_default().map(|d| {
                    (
                        d.sse_algorithm().as_str().to_owned(),
                        d.kms_master_key_id().map(str::to_owned),
                        r.bucket_key_enabled().unwrap_or(false),
                    )
                })
            })),
            Err(e) if error_code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => Ok(None),
            Err(e) => Err(e).aws(format!("s3:GetBucketEncryption {bucket}")),
        }
    };
    let logging = async {
        let l = s3.get_bucket_logging().bucket(bucket).send().await.aws(format!("s3:GetBucketLogging {bucket}"))?;
        Ok(l.logging_enabled().map(|l| (l.target_bucket().to_owned(), l.target_prefix().to_owned())))
    };
    let lifecycle = async {
        match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
            Ok(out) => Ok(lifecycle_json(out.rules())),
            Err(e) if error_code(&e) == Some("NoSuchLifecycleConfiguration") => Ok(Value::Null),
            Err(e) => Err(e).aws(format!("s3:GetBucketLifecycleConfiguration {bucket}")),
        }
    };
    let policy = async {
        match s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(out) => Ok(out.policy().and_then(|p| serde_json::from_str(p).ok())),
            Err(e) if error_code(&e) == Some("NoSuchBucketPolicy") => Ok(None),
            Err(e) => Err(e).aws(format!("s3:GetBucketPolicy {bucket}")),
        }
    };
    let (public_access_block, ownership, versioning, encryption, logging, lifecycle, policy) =
        futures::try_join!(pab, ownership, versioning, encryption, logging, lifecycle, policy)?;
    let st = BucketState {
        exists: true,
        public_access_block,
        ownership,
        versioning,
        encryption,
        logging,
        lifecycle,
        policy,
    };
    Ok(st)
}

/// The lifecycle assure sets: archive, never expire (nothing is lost).
fn lifecycle_rules() -> Vec<LifecycleRule> {
    let rule = LifecycleRule::builder()
        .id("assure-archive")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .transitions(Transition::builder().days(90).storage_class(TransitionStorageClass::StandardIa).build())
        .transitions(Transition::builder().days(365).storage_class(TransitionStorageClass::Glacier).build())
        .noncurrent_version_transitions(
            NoncurrentVersionTransition::builder()
                .noncurrent_days(30)
                .storage_class(TransitionStorageClass::Glacier)
                .build(),
        )
        .abort_incomplete_multipart_upload(AbortIncompleteMultipartUpload::builder().days_after_initiation(7).build())
        .build()
        .expect("lifecycle rule has its required fields");
    vec![rule]
}

/// A comparable form of lifecycle rules: the fields assure sets, nothing else.
fn lifecycle_json(rules: &[LifecycleRule]) -> Value {
    Value::Array(
        rules
            .iter()
            .map(|r| {
                json!({
                    "id": r.id(),
                    "status": r.status().as_str(),
                    "transitions": r.transitions().iter()
                        .map(|t| json!([t.days(), t.storage_class().map(|c| c.as_str())])).collect::<Vec<_>>(),
                    "noncurrent": r.noncurrent_version_transitions().iter()
                        .map(|t| json!([t.noncurrent_days(), t.storage_class().map(|c| c.as_str())])).collect::<Vec<_>>(),
                    "abortDays": r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()),
                    "expiration": r.expiration().is_some(),
                    "noncurrentExpiration": r.noncurrent_version_expiration().is_some(),
                })
            })
            .collect(),
    )
}

/// `services` and GuardDuty's principals, the global one and each opt-in region's.
fn delivering_services(services: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    out.extend(assure_contract::guardduty_principals());
    out
}

fn deny_plain_http(bucket: &str) -> Value {
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

pub(crate) async fn organization_id(acct: &AccountConfig) -> Result<String, StepError> {
    let org = acct.organizations().describe_organization().send().await.aws("organizations:DescribeOrganization")?;
    org.organization()
        .and_then(|o| o.id())
        .map(str::to_owned)
        .ok_or_else(|| StepError::internal("organizations:DescribeOrganization returned no organization id"))
}

/// Puts the key and both buckets in place.
pub async fn apply(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let region = &run.home_region;
    let acct = aws.account(&run.org.logging, region).await?;
    let org_id = organization_id(&acct).await?;
    let mut changes = Changes::new(&acct);
    let policy = key_policy(acct.account.as_str(), region.as_str(), &org_id, &run.role_name);
    let description = "assure: encrypts the organization's security logs";
    let key = ensure_key(&acct, RunInput::LOGGING_KEY_ALIAS, description, policy, &mut changes).await?;

    let access_logs = run.access_log_bucket();
    let bucket = run.logging_bucket();
    let access_before = read_bucket(&acct, &access_logs).await?;
    ensure_bucket(&acct, &access_logs, &access_before, None, None, &mut changes).await?;
    // The access-log bucket must admit S3's log delivery before the logging bucket names it.
    let access_policy = access_log_bucket_policy(&access_logs, &bucket, acct.account.as_str());
    ensure_policy(&acct, &access_logs, access_before.policy.as_ref(), &access_policy, &mut changes).await?;
    let before = read_bucket(&acct, &bucket).await?;
    ensure_bucket(&acct, &bucket, &before, Some(&key.arn), Some(&access_logs), &mut changes).await?;
    let policy = logging_bucket_policy(&bucket, &org_id, run.org.security.as_str());
    ensure_policy(&acct, &bucket, before.policy.as_ref(), &policy, &mut changes).await?;

    let n = changes.list.len();
    Ok(StepOutput {
        step: StepName::LoggingBucket,
        region: region.clone(),
        summary: if n == 0 {
            format!("s3://{bucket} and its key were already in place")
        } else {
            format!("s3://{bucket}: {n} change(s)")
        },
        changes: changes.list,
        evidence: vec![],
        // The key's ARN too: the run's later steps hand it to the services from here
        // (`kit::logging_key_to_use`) instead of looking it up again in the logging account.
        snapshot: json!({"bucket": before.to_json(), "accessLogBucket": access_before.to_json(),
                         LOGGING_KEY_FACT: key.arn}),
    })
}

async fn ensure_bucket(
    acct: &AccountConfig,
    bucket: &str,
    st: &BucketState,
    kms_key: Option<&str>,
    access_logs: Option<&str>,
    changes: &mut Changes,
) -> Result<(), StepError> {
    let s3 = acct.s3();
    let res = |what: &str| format!("s3:{bucket}/{what}");
    if !st.exists && changes.live() {
        let mut create = s3.create_bucket().bucket(bucket);
        if acct.region.as_str() != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(acct.region.as_str()))
                    .build(),
            );
        }
        match create.object_ownership(ObjectOwnership::BucketOwnerEnforced).send().await {
            Ok(_) => {}
            // Another account's run created the organization's bucket a moment ago.
            Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => {}
            Err(e) => return Err(e).aws(format!("s3:CreateBucket {bucket}")),
        }
    }
    if !st.exists {
        changes.push(format!("s3:{bucket}"), "create", Value::Null, json!({"region": acct.region}));
    }
    if st.public_access_block != Some([true; 4]) {
        if changes.live() {
            s3.put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(
                    PublicAccessBlockConfiguration::builder()
                        .block_public_acls(true)
                        .ignore_public_acls(true)
                        .block_public_policy(true)
                        .restrict_public_buckets(true)
                        .build(),
                )
                .send()
                .await
                .aws(format!("s3:PutPublicAccessBlock {bucket}"))?;
        }
        changes.push(
            res("publicAccessBlock"),
            "update",
            json!(st.public_access_block),
            json!([true, true, true, true]),
        );
    }
    if st.ownership.as_deref() != Some("BucketOwnerEnforced") && st.exists {
        if changes.live() {
            s3.put_bucket_ownership_controls()
                .bucket(bucket)
                .ownership_controls(
                    OwnershipControls::builder()
                        .rules(
                            OwnershipControlsRule::builder()
                                .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                                .build()
                                .map_err(build_err)?,
                        )
                        .build()
                        .map_err(build_err)?,
                )
                .send()
                .await
                .aws(format!("s3:PutBucketOwnershipControls {bucket}"))?;
        }
        changes.push(res("ownership"), "update", json!(st.ownership), json!("BucketOwnerEnforced"));
    }
    if st.versioning.as_deref() != Some("Enabled") {
        if changes.live() {
            s3.put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
                )
                .send()
                .await
                .aws(format!("s3:PutBucketVersioning {bucket}"))?;
        }
        changes.push(res("versioning"), "update", json!(st.versioning), json!("Enabled"));
    }
    let want_enc = match kms_key {
        Some(k) => ("aws:kms".to_owned(), Some(k.to_owned()), true),
        None => ("AES256".to_owned(), None, false),
    };
    if st.encryption.as_ref() != Some(&want_enc) {
        let mut default =
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::from(want_enc.0.as_str()));
        if let Some(k) = &want_enc.1 {
            default = default.kms_master_key_id(k);
        }
        if changes.live() {
            s3.put_bucket_encryption()
                .bucket(bucket)
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder()
                        .rules(
                            ServerSideEncryptionRule::builder()
                                .apply_server_side_encryption_by_default(default.build().map_err(build_err)?)
                                .bucket_key_enabled(want_enc.2)
                                .build(),
                        )
                        .build()
                        .map_err(build_err)?,
                )
                .send()
                .await
                .aws(format!("s3:PutBucketEncryption {bucket}"))?;
        }
        changes.push(res("encryption"), "update", json!(st.encryption), json!(want_enc));
    }
    if let Some(target) = access_logs {
        let want = (target.to_owned(), ACCESS_LOG_PREFIX.to_owned());
        if st.logging.as_ref() != Some(&want) {
            if changes.live() {
                s3.put_bucket_logging()
                    .bucket(bucket)
                    .bucket_logging_status(
                        BucketLoggingStatus::builder()
                            .logging_enabled(
                                LoggingEnabled::builder()
                                    .target_bucket(target)
                                    .target_prefix(ACCESS_LOG_PREFIX)
                                    .build()
                                    .map_err(build_err)?,
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .aws(format!("s3:PutBucketLogging {bucket}"))?;
            }
            changes.push(res("logging"), "update", json!(st.logging), json!(want));
        }
    }
    let rules = lifecycle_rules();
    if st.lifecycle != lifecycle_json(&rules) {
        if changes.live() {
            s3.put_bucket_lifecycle_configuration()
                .bucket(bucket)
                .lifecycle_configuration(
                    BucketLifecycleConfiguration::builder()
                        .set_rules(Some(rules.clone()))
                        .build()
                        .map_err(build_err)?,
                )
                .send()
                .await
                .aws(format!("s3:PutBucketLifecycleConfiguration {bucket}"))?;
        }
        changes.push(res("lifecycle"), "update", st.lifecycle.clone(), lifecycle_json(&rules));
    }
    Ok(())
}

async fn ensure_policy(
    acct: &AccountConfig,
    bucket: &str,
    current: Option<&Value>,
    policy: &Value,
    changes: &mut Changes,
) -> Result<(), StepError> {
    if current != Some(policy) {
        if changes.live() {
            acct.s3()
                .put_bucket_policy()
                .bucket(bucket)
                .policy(policy.to_string())
                .send()
                .await
                .aws(format!("s3:PutBucketPolicy {bucket}"))?;
        }
        changes.push(format!("s3:{bucket}/policy"), "update", json!(current), policy.clone());
    }
    Ok(())
}

fn build_err(e: aws_sdk_s3::error::BuildError) -> StepError {
    StepError::internal(format!("building an S3 request: {e}"))
}

/// Evidence for the logging bucket's controls, read-only.
pub async fn evidence(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let region = &run.home_region;
    let acct = aws.account(&run.org.logging, region).await?;
    let bucket = run.logging_bucket();
    let (st, key) = futures::try_join!(read_bucket(&acct, &bucket), read_key(&acct, RunInput::LOGGING_KEY_ALIAS))?;
    let ev = |control: &str, passed: bool, detail: String| {
        Evidence::new(control, acct.account.clone(), region.clone(), format!("arn:aws:s3:::{bucket}"), passed, detail)
    };
    let policy = st.policy.clone().unwrap_or(Value::Null);
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let tls_only =
        statements.iter().any(|s| s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == "false");
    let allows_public = statements.iter().any(|s| {
        s["Effect"] == "Allow" && s["Principal"] == json!({"AWS": "*"}) && s["Condition"].is_null()
            || s["Effect"] == "Allow" && s["Principal"] == "*" && s["Condition"].is_null()
    });
    let org_scoped = statements.iter().filter(|s| s["Effect"] == "Allow").all(|s| {
        s["Condition"]["StringEquals"]["aws:SourceOrgID"].is_string()
            || s["Condition"]["StringEquals"]["aws:PrincipalOrgID"].is_string()
    }) && !statements.is_empty();
    let mut out = vec![
        ev(
            "logging.bucket-not-public",
            st.exists && st.public_access_block == Some([true; 4]) && !allows_public,
            format!(
                "exists: {}, block public access: {:?}, public allow statement: {allows_public}",
                st.exists, st.public_access_block
            ),
        ),
        ev(
            "logging.bucket-encrypted",
            matches!(&st.encryption, Some((alg, Some(k), _)) if alg == "aws:kms" && key.as_ref().is_some_and(|key| *k == key.arn || *k == key.key_id)),
            format!("default encryption: {:?}", st.encryption),
        ),
        ev(
            "logging.bucket-access-logging",
            st.logging.as_ref().is_some_and(|(t, _)| *t == run.access_log_bucket()),
            format!("access logging: {:?}", st.logging),
        ),
        ev("logging.bucket-tls-only", tls_only, format!("deny on aws:SecureTransport=false: {tls_only}")),
        ev(
            "logging.bucket-versioned",
            st.versioning.as_deref() == Some("Enabled"),
            format!("versioning: {:?}", st.versioning),
        ),
        ev(
            "logging.bucket-org-scoped",
            org_scoped,
            format!("every allow statement scoped to the organization: {org_scoped}"),
        ),
    ];
    // Logs kept, not only stored: no lifecycle rule expires them (assure's archives only), and
    // their key is enabled (a key disabled or pending deletion makes every log unreadable) with the
    // policy assure wrote.
    let expiring = expiring_rules(&st.lifecycle);
    out.push(ev(
        "logging.bucket-retained",
        st.exists && expiring.is_empty() && st.lifecycle == lifecycle_json(&lifecycle_rules()),
        if expiring.is_empty() {
            format!("lifecycle: {}", st.lifecycle)
        } else {
            format!("lifecycle rules that delete logs: {}", expiring.join(", "))
        },
    ));
    let org_id = organization_id(&acct).await.ok();
    let key_problems: Vec<String> = match &key {
        None => vec!["no key".to_owned()],
        Some(k) => {
            let mut p = Vec::new();
            if !k.rotation {
                p.push("rotation off".to_owned());
            }
            if k.state != "Enabled" {
                p.push(format!("the key is {}", k.state));
            }
            if org_id.is_some_and(|o| {
                k.policy.as_ref() != Some(&key_policy(acct.account.as_str(), acct.region.as_str(), &o, &run.role_name))
            }) {
                p.push("its policy is not assure's".to_owned());
            }
            p
        }
    };
    out.push(Evidence {
        resource: key.as_ref().map_or_else(|| RunInput::LOGGING_KEY_ALIAS.to_owned(), |k| k.arn.clone()),
        ..ev(
            "logging.key-rotation",
            key_problems.is_empty(),
            if key_problems.is_empty() {
                "rotation on, enabled, with assure's policy".to_owned()
            } else {
                key_problems.join("; ")
            },
        )
    });
    Ok(out)
}

/// The logging bucket control: the shared bucket, its access-log bucket and the logging key.
pub struct LoggingBucket;

impl Control for LoggingBucket {
    fn name(&self) -> &'static str {
        "logging-bucket"
    }

    fn steps(&self) -> &'static [StepName] {
        &[StepName::LoggingBucket]
    }

    /// The whole control is the organization's: one bucket and key for every account.
    fn organize<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, _: &'a Region) -> Fut<'a, Organized> {
        Box::pin(async move {
            let out = apply(aws, run).await?;
            // The accounts' steps hand the key to the services from here (`kit::logging_key_to_use`).
            let facts = json!({LOGGING_KEY_FACT: out.snapshot[LOGGING_KEY_FACT]});
            Ok(Organized { changes: out.changes, facts })
        })
    }

    fn apply<'a>(&'a self, call: StepCall<'a>) -> Fut<'a, StepOutput> {
        let StepCall { aws, run, .. } = call;
        Box::pin(async move {
            if run.organization.is_some() {
                // A bulk run's organization step put it in place for all its accounts; verify checks it.
                return Ok(StepOutput {
                    step: StepName::LoggingBucket,
                    region: run.home_region.clone(),
                    summary: format!("{}: put in place by the bulk run's organization step", run.logging_bucket()),
                    changes: vec![],
                    evidence: vec![],
                    snapshot: Value::Null,
                });
            }
            apply(aws, run).await
        })
    }

    fn evidence<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, _: &'a Region) -> Fut<'a, Vec<Evidence>> {
        Box::pin(evidence(aws, run))
    }

    /// Shared by every account of the organization: no account's rollback tears it down.
    fn compensate<'a>(&'a self, _: &'a Undo<'a>, _: &'a Region, _: &'a mut Report) -> Fut<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}
