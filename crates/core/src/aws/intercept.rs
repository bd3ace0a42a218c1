//! The interceptors every client carries: the plan guard, the expected bucket owner, the call log.

//! Clients for every account and region, built once, and the mapping of SDK errors onto assure's
//! closed set of error names.

use std::io::Write;
use std::sync::Arc;

use assure_contract::{AccountId, ErrorName, StepError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Environment variable: a file to which every AWS request is appended as one JSON line
/// (`{"step","account","region","service","operation","mutating"}`). Tests and the benchmark count calls
/// with it; it holds no request parameters and no credentials.
pub const CALL_LOG_ENV: &str = "ASSURE_CALL_LOG";

/// Operation-name prefixes that only read. Every other operation counts as mutating.
const READ_PREFIXES: &[&str] = &["Get", "List", "Describe", "Head", "Lookup", "Search", "Check"];

/// Whether an AWS operation changes anything, judged by its name.
pub fn is_mutating(operation: &str) -> bool {
    // AssumeRole only exchanges credentials; it changes nothing in the account.
    operation != "AssumeRole" && !READ_PREFIXES.iter().any(|p| operation.starts_with(p))
}

/// In plan mode, refuses every mutating call before it is sent: plans are read-only by
/// construction, not by care.
#[derive(Debug, Clone)]
pub(super) struct PlanGuard;

impl Intercept for PlanGuard {
    fn name(&self) -> &'static str {
        "assure.PlanGuard"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match cfg.load::<Metadata>() {
            Some(meta) if is_mutating(meta.name()) => {
                Err(format!("plan mode refused the mutating call {}:{}", meta.service(), meta.name()).into())
            }
            _ => Ok(()),
        }
    }
}

/// Every S3 request to a bucket carries the account assure expects to own it
/// (`x-amz-expected-bucket-owner`, the header of every operation's `ExpectedBucketOwner`): assure
/// names its buckets after account ids, which are not secret, so another account could create one
/// first and be handed assure's checkpoints or logs. S3 refuses the request with 403 when the
/// bucket is another account's (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html).
/// Every bucket assure touches is one it owns in the account whose credentials it uses (the
/// checkpoint bucket in the pipeline's, the logging buckets in the logging account's).
#[derive(Debug, Clone)]
pub(super) struct ExpectedBucketOwner {
    pub(super) account: String,
}

/// The S3 operations that take no `ExpectedBucketOwner`: they name no existing bucket of one owner.
const WITHOUT_BUCKET_OWNER: &[&str] = &["CreateBucket", "ListBuckets", "ListDirectoryBuckets"];

impl Intercept for ExpectedBucketOwner {
    fn name(&self) -> &'static str {
        "assure.ExpectedBucketOwner"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Metadata>().is_some_and(|m| WITHOUT_BUCKET_OWNER.contains(&m.name())) {
            return Ok(());
        }
        ctx.request_mut().headers_mut().insert("x-amz-expected-bucket-owner", self.account.clone());
        Ok(())
    }
}

/// The refusal of a bucket assure names that another account owns: S3 answered 403 to a request
/// carrying `ExpectedBucketOwner` (or to a HEAD from the owner's own account, which only another
/// owner's bucket refuses). Nothing is ever written to it.
pub fn bucket_not_owned(bucket: &str, owner: &AccountId) -> StepError {
    StepError::new(
        ErrorName::Conflict,
        format!(
            "s3 bucket {bucket}: exists and belongs to an account other than {owner} (S3 refused the request with ExpectedBucketOwner={owner}); assure reads and writes only buckets of its own accounts, and names them after the account, so someone created this one first. Nothing was written to it. Ask its owner to delete it, or use another home region"
        ),
    )
}

/// Appends one line per HTTP attempt to the file named by [`CALL_LOG_ENV`], if set.
#[derive(Debug, Clone)]
pub(super) struct CallLog {
    /// The step making the calls ("" outside a step).
    pub(super) step: &'static str,
    pub(super) account: String,
    pub(super) region: String,
    pub(super) path: Option<Arc<std::path::PathBuf>>,
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "assure.CallLog"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(path), Some(meta)) = (&self.path, cfg.load::<Metadata>()) else {
            return Ok(());
        };
        let line = serde_json::json!({
            "step": self.step,
            "account": self.account,
            "region": self.region,
            "service": meta.service(),
            "operation": meta.name(),
            "mutating": is_mutating(meta.name()),
            // When the attempt left, in milliseconds since the epoch: where a step's time goes.
            "atMs": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
        });
        // One write of one line with O_APPEND: lines from concurrent processes do not interleave.
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path.as_path())?;
        f.write_all(format!("{line}\n").as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_operations_are_not_mutating() {
        for op in ["GetBucketPolicy", "ListTrails", "DescribeAccount", "HeadBucket", "AssumeRole"] {
            assert!(!is_mutating(op), "{op}");
        }
        for op in ["CreateBucket", "PutBucketPolicy", "StopLogging", "SendTaskSuccess"] {
            assert!(is_mutating(op), "{op}");
        }
    }
}
