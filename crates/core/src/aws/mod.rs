//! Clients for every account and region, built once, and the mapping of SDK errors onto assure's
//! closed set of error names.

mod errors;
mod facts;
mod intercept;
mod pacing;
mod propagation;

pub use errors::*;
pub use facts::*;
pub use intercept::*;
pub use pacing::*;
pub use propagation::*;

use intercept::{CallLog, ExpectedBucketOwner, PlanGuard};
use pacing::{organizations_pacer, Paced};

use std::collections::HashMap;
use std::sync::Arc;

use assure_contract::{AccountId, ErrorName, Region, StepError, MANAGEMENT_ROLE};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sts::config::Credentials;
use tokio::sync::Mutex;

/// The pipeline's account, when the caller already knows it (set by the worker for the step
/// binaries it runs, and by the template on Lambda): skips `sts:GetCallerIdentity`.
pub const PIPELINE_ACCOUNT_ENV: &str = "ASSURE_PIPELINE_ACCOUNT";
/// The SDK configuration for one account in one region, plus what every client needs.
#[derive(Clone, Debug)]
pub struct AccountConfig {
    pub account: AccountId,
    pub region: Region,
    sdk: SdkConfig,
    call_log: CallLog,
    path_style: bool,
    /// Plan mode: steps record what they would change and make no mutating call.
    pub plan: bool,
    /// Account-wide work already done in this task (see [`AccountConfig::account_wide`]); `None`
    /// outside a task, where every call does its own.
    shared: Option<Shared>,
}

/// The results of a task's account-wide work, by what and where.
type Shared = Arc<Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Result<String, StepError>>>>>>;

macro_rules! client {
    ($name:ident, $krate:ident) => {
        pub fn $name(&self) -> $krate::Client {
            let mut conf = $krate::config::Builder::from(&self.sdk).interceptor(self.call_log.clone());
            if self.plan {
                conf = conf.interceptor(PlanGuard);
            }
            $krate::Client::from_conf(conf.build())
        }
    };
}

impl AccountConfig {
    /// Account-wide work (an IAM role, a service-linked role, a delegated administrator, the
    /// logging key's ARN) that every region of a task would otherwise repeat and race for: within
    /// a task the first region to ask does it, the others wait for and share its result (and it
    /// records its changes once). Outside a task `work` simply runs.
    pub async fn account_wide<F>(&self, what: &str, work: F) -> Result<String, StepError>
    where
        F: std::future::Future<Output = Result<String, StepError>>,
    {
        let Some(cell) = self.shared_cell(what).await else { return work.await };
        cell.get_or_init(|| work).await.clone()
    }

    /// The task's cell for `what` in this account and mode; `None` outside a task.
    async fn shared_cell(&self, what: &str) -> Option<Arc<tokio::sync::OnceCell<Result<String, StepError>>>> {
        let key = format!("{}:{}:{what}", self.account, if self.plan { "plan" } else { "live" });
        Some(self.shared.as_ref()?.lock().await.entry(key).or_default().clone())
    }

    /// [`AccountConfig::account_wide`] for a read whose answer every part of the task shares (the
    /// fleet's watch: the logging and security accounts' SCPs, for every account it checks): a
    /// failure is not kept, so the next caller reads again, and one throttled answer does not fail
    /// every account of the watch.
    pub async fn account_wide_read<F>(&self, what: &str, work: F) -> Result<String, StepError>
    where
        F: std::future::Future<Output = Result<String, StepError>>,
    {
        let Some(cell) = self.shared_cell(&format!("read:{what}")).await else { return work.await };
        let kept = cell.get_or_try_init(|| async { work.await.map(Ok) }).await?;
        kept.clone()
    }

    client!(sts, aws_sdk_sts);

    /// Organizations, the API that throttles first at scale: paced to this process's share of the
    /// organization's budget when one is set (see [`ORGANIZATIONS_RPS_ENV`]).
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        let mut conf = aws_sdk_organizations::config::Builder::from(&self.sdk).interceptor(self.call_log.clone());
        // Standard retry, not adaptive: adaptive mode's client-side rate limiter starts with no
        // measured rate, so a process's first throttling answer holds its next request for up to
        // 20 s (measured: see ARCHITECTURE.md). The pacer keeps assure's own requests within the
        // budget; standard retry with backoff covers the organization's other callers.
        if self.plan {
            conf = conf.interceptor(PlanGuard);
        }
        if let Some(pacer) = organizations_pacer() {
            conf = conf.http_client(Paced::client(pacer));
        }
        aws_sdk_organizations::Client::from_conf(conf.build())
    }

    client!(sqs, aws_sdk_sqs);
    client!(sfn, aws_sdk_sfn);
    client!(kms, aws_sdk_kms);
    client!(iam, aws_sdk_iam);
    client!(guardduty, aws_sdk_guardduty);
    client!(cloudtrail, aws_sdk_cloudtrail);
    client!(config, aws_sdk_config);
    client!(ssm, aws_sdk_ssm);
    client!(accessanalyzer, aws_sdk_accessanalyzer);
    client!(logs, aws_sdk_cloudwatchlogs);
    client!(cloudwatch, aws_sdk_cloudwatch);
    client!(sns, aws_sdk_sns);
    client!(eventbridge, aws_sdk_eventbridge);
    client!(firehose, aws_sdk_firehose);
    client!(account_management, aws_sdk_account);
    client!(cloudformation, aws_sdk_cloudformation);
    client!(lambda, aws_sdk_lambda);

    pub fn s3(&self) -> aws_sdk_s3::Client {
        // An endpoint override (the local cloud, a test server) has no per-bucket host names.
        let mut conf = aws_sdk_s3::config::Builder::from(&self.sdk)
            .interceptor(self.call_log.clone())
            .interceptor(ExpectedBucketOwner { account: self.account.to_string() })
            .force_path_style(self.path_style);
        if self.plan {
            conf = conf.interceptor(PlanGuard);
        }
        aws_sdk_s3::Client::from_conf(conf.build())
    }

    /// The same account and region with other credentials (a role's session).
    pub fn with_credentials(&self, creds: &SessionCredentials) -> AccountConfig {
        let provider = Credentials::new(
            &creds.access_key_id,
            &creds.secret_access_key,
            creds.session_token.clone(),
            None,
            "assure-session",
        );
        let mut next = self.clone();
        next.sdk = self
            .sdk
            .to_builder()
            .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(provider))
            .build();
        next
    }

    /// The same account in another region.
    pub fn in_region(&self, region: &Region) -> AccountConfig {
        let mut next = self.clone();
        next.sdk = self.sdk.to_builder().region(aws_config::Region::new(region.as_str().to_owned())).build();
        next.region = region.clone();
        next.call_log.region = region.to_string();
        next
    }
}

/// Temporary credentials of a role session.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub session_token: Option<String>,
}

/// Builds and caches the configurations of every account assure acts in. The pipeline's own
/// account uses the ambient credentials; every other account is reached by `sts:AssumeRole`.
pub struct Aws {
    base: AccountConfig,
    role_name: String,
    assumed: Mutex<HashMap<AccountId, AccountConfig>>,
    /// A role of the pipeline account to assume first (see [`Aws::through`]).
    hop: Option<String>,
    hopped: Mutex<Option<AccountConfig>>,
    /// What earlier steps of the task's run established (see [`Facts`]).
    facts: Option<Arc<dyn Facts>>,
}

impl Aws {
    /// Loads the ambient configuration (profile, region, `AWS_ENDPOINT_URL`) and identifies the caller.
    pub async fn load(profile: Option<&str>, region: Option<&str>) -> Result<Aws, StepError> {
        Aws::from_sdk_config(Aws::load_config(profile, region).await).await
    }

    /// The ambient configuration [`Aws::load`] starts from; a process serving many tasks loads it
    /// once.
    pub async fn load_config(profile: Option<&str>, region: Option<&str>) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_owned()));
        }
        // Throttling is the commonest failure at scale: more attempts than the SDK's three, with
        // backoff, before a step reports Assure.Retryable to the state machine.
        loader = loader.retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6));
        loader.load().await
    }

    /// Builds from an explicit configuration (tests point this at wiremock).
    pub async fn from_sdk_config(sdk: SdkConfig) -> Result<Aws, StepError> {
        let region: Region = sdk
            .region()
            .map(|r| r.to_string())
            .ok_or_else(|| {
                StepError::invalid_input(
                    "no AWS region is set: pass --region or set AWS_REGION (or a region in your profile)",
                )
            })?
            .parse()?;
        let path_style = sdk.endpoint_url().is_some();
        let call_log = CallLog {
            step: "",
            account: String::new(),
            region: region.to_string(),
            path: std::env::var_os(CALL_LOG_ENV).map(|p| Arc::new(p.into())),
        };
        let mut probe = AccountConfig {
            account: "000000000000".parse()?,
            region,
            sdk,
            call_log,
            path_style,
            plan: false,
            shared: None,
        };
        // A step binary is told its account by whoever runs it (the worker, which asked STS once
        // with the same credentials; on Lambda, the template), saving a call per task.
        let told = std::env::var(PIPELINE_ACCOUNT_ENV).ok().and_then(|a| a.parse::<AccountId>().ok());
        let account: AccountId = match told {
            Some(a) => a,
            None => {
                let who = probe.sts().get_caller_identity().send().await.aws("sts:GetCallerIdentity")?;
                who.account().unwrap_or_default().parse()?
            }
        };
        probe.call_log.account = account.to_string();
        probe.account = account;
        Ok(Aws {
            base: probe,
            role_name: String::new(),
            assumed: Mutex::new(HashMap::new()),
            hop: None,
            hopped: Mutex::new(None),
            facts: None,
        })
    }

    /// Plan mode: every account configuration refuses mutating calls; steps only record what they
    /// would change.
    pub fn planning(mut self) -> Aws {
        self.base.plan = true;
        self
    }

    /// A plan-mode copy of this connection (same credentials and role, its own role cache).
    pub fn planning_copy(&self) -> Aws {
        let mut base = self.base.clone();
        base.plan = true;
        Aws {
            base,
            role_name: self.role_name.clone(),
            assumed: Mutex::new(HashMap::new()),
            hop: self.hop.clone(),
            hopped: Mutex::new(None),
            facts: self.facts.clone(),
        }
    }

    /// Labels every logged call with the step making it.
    pub fn with_step(mut self, step: &'static str) -> Aws {
        self.base.call_log.step = step;
        self
    }

    /// One task's connection: account-wide work is done once and shared by its regions
    /// ([`AccountConfig::account_wide`]).
    pub fn for_task(mut self) -> Aws {
        self.base.shared = Some(Arc::default());
        self
    }

    /// Where the task's steps find what earlier steps of the run established.
    pub fn with_facts(mut self, facts: Arc<dyn Facts>) -> Aws {
        self.facts = Some(facts);
        self
    }

    /// The role assumed in other accounts.
    pub fn with_role(mut self, role_name: &str) -> Aws {
        self.role_name = role_name.to_owned();
        self
    }

    /// The pipeline's own account, in the configured region.
    pub fn pipeline(&self) -> &AccountConfig {
        &self.base
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.sdk.endpoint_url()
    }

    /// `account` in `region` through the member role, assumed once and reused: the pipeline's own
    /// account too, which is a member like any other (only the pipeline's plumbing, queues,
    /// executions and checkpoints, is the ambient credentials': [`Aws::pipeline`]). The
    /// organization's management account has no member role: see [`Aws::management`] and
    /// [`Aws::organization`].
    pub async fn account(&self, account: &AccountId, region: &Region) -> Result<AccountConfig, StepError> {
        if self.role_name.is_empty() {
            return Err(StepError::internal("no role name configured for cross-account access"));
        }
        let role = self.role_name.clone();
        self.assumed_in(account, &role, region).await
    }

    /// The management account `management` in `region`, for what only it may do (trusted access,
    /// delegated administrators, the GuardDuty administrator, centralized root access): the role
    /// [`MANAGEMENT_ROLE`] of its bootstrap stack, which trusts the pipeline's roles that need it.
    /// The ambient credentials when the caller is the management account itself.
    pub async fn management(&self, management: &AccountId, region: &Region) -> Result<AccountConfig, StepError> {
        if *management == self.base.account {
            return Ok(self.base.in_region(region));
        }
        self.assumed_in(management, MANAGEMENT_ROLE, region).await
    }

    /// The organization of management account `management`, for what its delegation policy lets
    /// the pipeline's account do itself (read the organization, manage its SCPs): the ambient
    /// credentials, since Organizations acts on the caller's organization. Calls are logged under
    /// the management account, where the organization's resources are.
    pub fn organization(&self, management: &AccountId, region: &Region) -> AccountConfig {
        let mut cfg = self.base.in_region(region);
        cfg.account = management.clone();
        cfg.call_log.account = management.to_string();
        cfg
    }

    async fn assumed_in(&self, account: &AccountId, role: &str, region: &Region) -> Result<AccountConfig, StepError> {
        let mut cache = self.assumed.lock().await;
        if let Some(found) = cache.get(account) {
            // A session cached before `planning()` was made live: the mode is this connection's.
            let mut cfg = found.in_region(region);
            cfg.plan = self.base.plan;
            return Ok(cfg);
        }
        let from = match &self.hop {
            None => self.base.clone(),
            Some(hop) => {
                let mut hopped = self.hopped.lock().await;
                match &*hopped {
                    Some(h) => h.clone(),
                    None => {
                        let arn = format!("arn:aws:iam::{}:role/{hop}", self.base.account);
                        let h = assume(&self.base, &arn, &self.base.account).await.map_err(|e| {
                            StepError::new(
                                e.name,
                                format!(
                                    "{} (operator commands reach member accounts through the role {hop}, which `assure deploy` creates; the caller needs sts:AssumeRole on it)",
                                    e.message
                                ),
                            )
                        })?;
                        *hopped = Some(h.clone());
                        h
                    }
                }
            }
        };
        let arn = format!("arn:aws:iam::{account}:role/{role}");
        let mut cfg = assume(&from, &arn, account).await.map_err(|e| match role {
            MANAGEMENT_ROLE if e.name == ErrorName::AccessDenied => StepError::new(
                e.name,
                format!(
                    "{} (the management account's calls go through the role {MANAGEMENT_ROLE} of its bootstrap stack: run `assure bootstrap --pipeline-account {}` there)",
                    e.message, self.base.account
                ),
            ),
            _ => e,
        })?;
        cfg.plan = self.base.plan;
        cache.insert(account.clone(), cfg.clone());
        Ok(cfg.in_region(region))
    }

    /// Operator commands: reach other accounts through the role `hop` of the pipeline account
    /// (the member role trusts it beside the step roles).
    pub fn through(mut self, hop: &str) -> Aws {
        self.hop = Some(hop.to_owned());
        self
    }
}

/// Sessions this process assumed, by (the caller's access key, role ARN), with when they expire. A
/// step function's process serves task after task (a bulk run's thousands): each task would
/// otherwise assume the security and logging accounts' roles again.
type Sessions = std::sync::Mutex<HashMap<(String, String), (SessionCredentials, std::time::SystemTime)>>;

fn sessions() -> &'static Sessions {
    static SESSIONS: std::sync::OnceLock<Sessions> = std::sync::OnceLock::new();
    SESSIONS.get_or_init(Default::default)
}

/// A cached session is reused while it has this long left: a step runs for 15 minutes at most.
const SESSION_MARGIN: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// `from`'s session of the role `arn` in `account`: assumed once per process and caller, while it
/// lasts.
async fn assume(from: &AccountConfig, arn: &str, account: &AccountId) -> Result<AccountConfig, StepError> {
    use aws_sdk_sts::config::ProvideCredentials;
    let caller = match from.sdk.credentials_provider() {
        Some(p) => p.provide_credentials().await.ok().map(|c| c.access_key_id().to_owned()),
        None => None,
    };
    let key = caller.map(|c| (c, arn.to_owned()));
    let cached = key.as_ref().and_then(|k| {
        let found = sessions().lock().ok()?.get(k).cloned()?;
        (found.1 > std::time::SystemTime::now() + SESSION_MARGIN).then_some(found.0)
    });
    let creds = match cached {
        Some(c) => c,
        None => {
            let (creds, expires) = assume_now(from, arn).await?;
            if let (Some(k), Ok(mut all)) = (key, sessions().lock()) {
                all.insert(k, (creds.clone(), expires));
            }
            creds
        }
    };
    let mut cfg = from.with_credentials(&creds);
    cfg.account = account.clone();
    cfg.call_log.account = account.to_string();
    Ok(cfg)
}

/// A new session of `arn` and when it expires.
async fn assume_now(from: &AccountConfig, arn: &str) -> Result<(SessionCredentials, std::time::SystemTime), StepError> {
    let out = from
        .sts()
        .assume_role()
        .role_arn(arn)
        .role_session_name("assure")
        .send()
        .await
        .aws(format!("sts:AssumeRole {arn}"))?;
    let c = out
        .credentials()
        .ok_or_else(|| StepError::internal(format!("sts:AssumeRole {arn} returned no credentials")))?;
    let creds = SessionCredentials {
        access_key_id: c.access_key_id().to_owned(),
        secret_access_key: c.secret_access_key().to_owned(),
        session_token: Some(c.session_token().to_owned()),
    };
    let expires = std::time::SystemTime::try_from(*c.expiration()).unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    Ok((creds, expires))
}

/// An IAM policy document as IAM returns it (URL-encoded JSON), parsed.
pub fn decode_policy(doc: &str) -> Option<serde_json::Value> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(doc).collect();
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn account_wide_work_runs_once_per_task_and_every_time_outside_one() {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(BehaviorVersion::latest())
            .build();
        std::env::set_var(PIPELINE_ACCOUNT_ENV, "123456789012");
        let aws = Aws::from_sdk_config(sdk).await.unwrap();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let work = || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<_, StepError>("arn".to_owned())
        };
        let outside = aws.pipeline().clone();
        outside.account_wide("role/x", work()).await.unwrap();
        outside.account_wide("role/x", work()).await.unwrap();
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2, "outside a task nothing is shared");
        let task = aws.for_task();
        let regions: Vec<AccountConfig> = ["us-east-1", "eu-west-1", "ap-south-1"]
            .iter()
            .map(|r| task.pipeline().in_region(&r.parse().unwrap()))
            .collect();
        let all = futures::future::join_all(regions.iter().map(|c| c.account_wide("role/x", work()))).await;
        assert!(all.iter().all(|r| r.as_deref() == Ok("arn")), "{all:?}");
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3, "a task's regions share one run");
        let mut plan = task.pipeline().clone();
        plan.plan = true;
        plan.account_wide("role/x", work()).await.unwrap();
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 4, "a plan does not reuse live work");
    }

    #[tokio::test]
    async fn a_shared_read_keeps_its_answer_but_not_a_failure() {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(BehaviorVersion::latest())
            .build();
        std::env::set_var(PIPELINE_ACCOUNT_ENV, "123456789012");
        let task = Aws::from_sdk_config(sdk).await.unwrap().for_task();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let read = |fail: bool| {
            let runs = &runs;
            async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if fail {
                    Err(StepError::new(assure_contract::ErrorName::Retryable, "throttled"))
                } else {
                    Ok("policies".to_owned())
                }
            }
        };
        let p = task.pipeline();
        assert!(p.account_wide_read("scps", read(true)).await.is_err());
        assert_eq!(p.account_wide_read("scps", read(false)).await.unwrap(), "policies", "a failure is read again");
        assert_eq!(p.account_wide_read("scps", read(true)).await.unwrap(), "policies", "an answer is kept");
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn iam_policies_are_decoded() {
        assert_eq!(decode_policy("%7B%22a%22%3A1%7D"), Some(serde_json::json!({"a": 1})));
        assert_eq!(decode_policy("{\"a\":1}"), Some(serde_json::json!({"a": 1})));
    }
}
