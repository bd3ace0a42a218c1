//! The shared logging bucket in the logging account: a customer-managed KMS key with rotation, the
//! bucket with all four Block Public Access flags, BucketOwnerEnforced, versioning, SSE-KMS by
//! default, access logging to a second bucket, a lifecycle that archives and never expires, and a
//! policy that denies plain HTTP and admits only the log-delivering service principals of this
//! organization (`aws:SourceOrgID`).
//!
//! Created once and shared by every account; no account's rollback tears it down. Every aspect is
//! read first and written only if it differs.

use assure_contract::{RunInput, StepError, StepName, StepOutput};
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
use crate::controls::kit::{ensure_key, Changes};
use crate::controls::{Ahead, Control, Organized};

pub mod catalogue;
mod evidence;
mod permissions;
mod policies;

pub use evidence::*;
pub use policies::*;

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

/// The logging bucket control: the shared bucket, its access-log bucket and the logging key. The
/// whole control is the organization's: one bucket and key for every account, which no account's
/// rollback tears down.
pub const CONTROL: Control = Control {
    name: "logging-bucket",
    steps: &[StepName::LoggingBucket],
    catalogue: catalogue::ENTRIES,
    snapshot: None,
    permissions: permissions::PERMISSIONS,
    ahead: Ahead { organize: |aws, run, _| Box::pin(organize(aws, run)), ..Ahead::NOTHING },
    apply: |call| Box::pin(apply_unless_organized(call.aws, call.run)),
    evidence: |aws, run, _| Box::pin(evidence(aws, run)),
    compensate: |_, _, _| Box::pin(async { Ok(()) }),
};

/// The bucket and key for every account of the organization, for a bulk run's organization step.
async fn organize(aws: &Aws, run: &RunInput) -> Result<Organized, StepError> {
    let out = apply(aws, run).await?;
    let logging_key_arn = out.snapshot[LOGGING_KEY_FACT]
        .as_str()
        .ok_or_else(|| StepError::internal("the logging bucket step recorded no logging key"))?
        .to_owned();
    Organized::with(out.changes, &crate::controls::kit::LoggingKeyFacts { logging_key_arn })
}

/// The step: what [`apply`] does, unless a bulk run's organization step put it in place for all
/// its accounts (verify checks it).
async fn apply_unless_organized(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    if run.organization.is_some() {
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
}
