//! Clients for every account and region, built once, and the mapping of SDK errors onto assure's
//! closed set of error names.

use std::collections::HashMap;
use std::fmt::Display;
use std::io::Write;
use std::sync::Arc;

use assure_contract::{AccountId, ErrorName, Region, StepError, MANAGEMENT_ROLE};
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_sts::config::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::Mutex;

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
struct PlanGuard;

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
struct ExpectedBucketOwner {
    account: String,
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
struct CallLog {
    /// The step making the calls ("" outside a step).
    step: &'static str,
    account: String,
    region: String,
    path: Option<Arc<std::path::PathBuf>>,
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

/// The pipeline's account, when the caller already knows it (set by the worker for the step
/// binaries it runs, and by the template on Lambda): skips `sts:GetCallerIdentity`.
pub const PIPELINE_ACCOUNT_ENV: &str = "ASSURE_PIPELINE_ACCOUNT";

/// The Organizations request budget for the whole organization, in requests per second. Unset (the
/// default): no pacing beyond the SDK's retries.
pub const ORGANIZATIONS_RPS_ENV: &str = "ASSURE_ORGANIZATIONS_RPS";
/// How many processes share that budget at once (the worker sets it for the step binaries it runs
/// to its bound on concurrent Organizations steps; 1 when unset). Not used with a pace file.
pub const ORGANIZATIONS_SHARE_ENV: &str = "ASSURE_ORGANIZATIONS_SHARE";
/// A file through which processes on one machine pace their Organizations requests together: the
/// whole budget is shared, each request taking the next free slot, so no process waits while the
/// budget goes unused and none can exceed it (the worker sets it for the step binaries it runs).
pub const ORGANIZATIONS_PACE_FILE_ENV: &str = "ASSURE_ORGANIZATIONS_PACE_FILE";

/// Spaces requests at least `interval` apart: across the whole process, or across every process
/// pacing through the same file.
#[derive(Debug)]
pub struct Pacer {
    interval: std::time::Duration,
    next: Mutex<tokio::time::Instant>,
    file: Option<std::path::PathBuf>,
}

impl Pacer {
    pub fn new(per_second: f64) -> Pacer {
        Pacer {
            interval: std::time::Duration::from_secs_f64(1.0 / per_second.max(0.01)),
            next: Mutex::new(tokio::time::Instant::now()),
            file: None,
        }
    }

    /// A pacer shared with every process pacing through `file` (made if missing).
    pub fn shared(per_second: f64, file: std::path::PathBuf) -> Pacer {
        Pacer { file: Some(file), ..Pacer::new(per_second) }
    }

    /// Waits for this request's turn.
    pub async fn wait(&self) {
        if let Some(file) = &self.file {
            let (file, interval) = (file.clone(), self.interval);
            let claimed = tokio::task::spawn_blocking(move || claim_slot(&file, interval)).await;
            match claimed.map_err(std::io::Error::other).and_then(|r| r) {
                Ok(wait) => return tokio::time::sleep(wait).await,
                Err(e) => tracing::warn!(error = %e, "the shared pace file failed; pacing this process alone"),
            }
        }
        let mut next = self.next.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = (*next).max(now) + self.interval;
    }
}

/// Takes the next free slot from the pace file (under an exclusive lock: the file holds the next
/// free slot's time, in seconds since the epoch) and answers how long to wait for it.
fn claim_slot(path: &std::path::Path, interval: std::time::Duration) -> std::io::Result<std::time::Duration> {
    use std::io::{Read, Seek, Write};
    let mut file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    file.lock()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let next: f64 = text.trim().parse().unwrap_or(0.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let slot = next.max(now);
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{:.6}", slot + interval.as_secs_f64())?;
    file.unlock()?;
    Ok(std::time::Duration::from_secs_f64(slot - now))
}

/// This process's Organizations pacer, from the environment (once).
fn organizations_pacer() -> Option<Arc<Pacer>> {
    static PACER: std::sync::OnceLock<Option<Arc<Pacer>>> = std::sync::OnceLock::new();
    PACER
        .get_or_init(|| {
            let budget: f64 = std::env::var(ORGANIZATIONS_RPS_ENV).ok()?.parse().ok().filter(|r: &f64| *r > 0.0)?;
            if let Some(file) = std::env::var_os(ORGANIZATIONS_PACE_FILE_ENV).filter(|f| !f.is_empty()) {
                return Some(Arc::new(Pacer::shared(budget, file.into())));
            }
            let share: f64 = std::env::var(ORGANIZATIONS_SHARE_ENV)
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|s: &f64| *s >= 1.0)
                .unwrap_or(1.0);
            Some(Arc::new(Pacer::new(budget / share)))
        })
        .clone()
}

/// An HTTP client whose every request (retries included) first waits for the pacer.
#[derive(Clone, Debug)]
struct Paced {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
    pacer: Arc<Pacer>,
}

impl Paced {
    fn client(pacer: Arc<Pacer>) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        use aws_smithy_http_client::tls;
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .build_https();
        aws_smithy_runtime_api::client::http::SharedHttpClient::new(Paced { inner, pacer })
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for Paced {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(PacedConnector {
            inner,
            pacer: self.pacer.clone(),
        })
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
    pacer: Arc<Pacer>,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for PacedConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let inner = self.inner.clone();
        let pacer = self.pacer.clone();
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            pacer.wait().await;
            inner.call(request).await
        })
    }
}

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
        let Some(shared) = &self.shared else { return work.await };
        let key = format!("{}:{}:{what}", self.account, if self.plan { "plan" } else { "live" });
        let cell = shared.lock().await.entry(key).or_default().clone();
        cell.get_or_init(|| work).await.clone()
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

/// Facts an earlier step of a run established, which a later step of the same run may take
/// instead of finding them again in the accounts: the logging key's ARN ([`LOGGING_KEY_FACT`]),
/// the roles the service-roles step ensured ([`role_fact`]). Read on demand, only by the steps
/// that need one. Verify never has them: it finds for itself.
pub trait Facts: Send + Sync {
    /// The fact `name`, if the run established it.
    fn get<'a>(
        &'a self,
        name: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<serde_json::Value>> + Send + 'a>>;
}

/// The logging key's ARN (a string), as the run's logging-bucket step ensured the key.
pub const LOGGING_KEY_FACT: &str = "loggingKeyArn";

/// The alarm endpoint of the deployment's settings (a string), whole: a run carries it with its
/// secret part left out ([`assure_contract::Notify::for_runs`]).
pub const NOTIFY_ENDPOINT_FACT: &str = "notifyEndpoint";

/// The fact naming a role the run's service-roles step ensured in `account`:
/// `{"arn": ARN, "made": true when the step created it}`.
pub fn role_fact(account: &AccountId, name: &str) -> String {
    format!("role/{account}/{name}")
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

    /// The fact `name` an earlier step of the run established, if known. None in plan mode: a
    /// plan reads what is there.
    pub async fn fact(&self, name: &str) -> Option<serde_json::Value> {
        match &self.facts {
            Some(f) if !self.base.plan => f.get(name).await,
            _ => None,
        }
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
    let mut out = Vec::with_capacity(doc.len());
    let b = doc.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&doc[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    serde_json::from_slice(&out).ok()
}

/// Error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "InternalException",
    "ConcurrentModificationException",
    "OperationAbortedException",
    "OperationAborted",
    "PriorRequestNotComplete",
];

/// How services refuse a role IAM has not yet propagated to them (IAM is eventually consistent:
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html): the code, and a
/// part of the message where the code alone also means other things.
const ROLE_PROPAGATING: &[(&str, &str)] = &[
    // CloudTrail CreateTrail/UpdateTrail with a CloudWatch Logs role created a moment ago.
    ("InvalidCloudWatchLogsRoleArnException", ""),
    // Firehose CreateDeliveryStream/UpdateDestination: "Firehose is unable to assume role …".
    ("InvalidArgumentException", "unable to assume role"),
];

/// Whether the service refused a role it cannot use yet, which a few seconds may cure.
pub fn role_propagating(code: &str, message: &str) -> bool {
    ROLE_PROPAGATING.iter().any(|(c, m)| *c == code && message.contains(m))
}

/// How long a call handed a new role keeps being retried while the service cannot use it yet.
const PROPAGATION_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `call` and, while the service refuses its role as not yet usable ([`role_propagating`]),
/// again every second for up to a minute; then returns its last answer. For calls that hand a
/// service a role the same step may just have created. IAM's changes take seconds to reach the
/// services (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency):
/// a retry sooner than a second mostly finds the role still missing, and a backoff that doubles
/// overshoots the moment it is usable by as long as it has waited (a refused attempt is cheap).
pub async fn while_role_propagates<T, E, F, Fut>(call: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    while_propagating(role_propagating, call).await
}

tokio::task_local! {
    /// The time the current step has spent waiting for AWS (see [`counting_waits`]).
    static WAITS: std::cell::RefCell<Waits>;
}

/// Wall time during which at least one wait for AWS was under way: waits that overlap (every
/// region's canary looked for at once) count once.
#[derive(Default)]
struct Waits {
    active: usize,
    since: Option<std::time::Instant>,
    total: f64,
}

/// Runs `work` and answers its output with the seconds it spent waiting for AWS inside it: for a
/// change it made to propagate ([`while_propagating`]), or for a delivery on its way
/// ([`wait_for_aws`]). These are waits AWS imposes, which the run's history shows apart from the
/// work (the step's checkpoint record, `waitedSeconds`).
pub async fn counting_waits<F: std::future::Future>(work: F) -> (F::Output, f64) {
    WAITS
        .scope(std::cell::RefCell::new(Waits::default()), async {
            let out = work.await;
            (out, WAITS.with(|w| w.borrow().total))
        })
        .await
}

/// Sleeps `wait`, counted as a wait for AWS by [`counting_waits`] around it (if any).
pub async fn wait_for_aws(wait: std::time::Duration) {
    let _ = WAITS.try_with(|w| {
        let mut w = w.borrow_mut();
        if w.active == 0 {
            w.since = Some(std::time::Instant::now());
        }
        w.active += 1;
    });
    tokio::time::sleep(wait).await;
    let _ = WAITS.try_with(|w| {
        let mut w = w.borrow_mut();
        w.active = w.active.saturating_sub(1);
        if w.active == 0 {
            if let Some(since) = w.since.take() {
                w.total += since.elapsed().as_secs_f64();
            }
        }
    });
}

/// Runs `call` and, while the service refuses it in a way `transient` (code, message) says a
/// change made a moment ago will cure, again every second for up to a minute; then returns its
/// last answer.
pub async fn while_propagating<T, E, F, Fut>(
    transient: impl Fn(&str, &str) -> bool,
    mut call: F,
) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let started = std::time::Instant::now();
    let wait = std::time::Duration::from_secs(1);
    loop {
        match call().await {
            Err(SdkError::ServiceError(e))
                if transient(e.err().code().unwrap_or(""), e.err().message().unwrap_or(""))
                    && started.elapsed() + wait < PROPAGATION_WAIT =>
            {
                wait_for_aws(wait).await;
            }
            other => return other,
        }
    }
}

/// How a service refuses an account it does not yet know as its delegated administrator, or an
/// organization whose trusted access it has not yet learnt of, a moment after Organizations
/// registered or enabled it: the service learns of both through Organizations, not at once. Only
/// for a call the account may make once registered, right after the step has seen (or made) the
/// registration and trusted access in Organizations; a refusal that lasts a minute is reported as
/// it is.
pub fn registration_propagating(code: &str, message: &str) -> bool {
    matches!(code, "AccessDeniedException" | "OrganizationAccessDeniedException")
        || trusted_access_propagating(code, message)
}

/// How a service refuses a call that needs trusted access it has not yet learnt of: Access
/// Analyzer's `ValidationException` naming trusted access, IAM's `ServiceAccessNotEnabledException`.
pub fn trusted_access_propagating(code: &str, message: &str) -> bool {
    code == "ServiceAccessNotEnabledException"
        || (code == "ValidationException" && message.to_ascii_lowercase().contains("trusted access"))
}

/// Error codes that mean "you may not".
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthFailure",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
];

/// The error code of an SDK error, if the service sent one.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// The service's code and message of an SDK error, as one line.
pub fn error_message<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    match err {
        SdkError::ServiceError(e) => {
            format!("{}: {}", e.err().code().unwrap_or("?"), e.err().message().unwrap_or_default())
        }
        _ => "no answer from the service".to_owned(),
    }
}

/// Maps an SDK error to one of assure's error names, keeping the service's code and message.
pub fn classify<E>(err: &SdkError<E, HttpResponse>, what: &str) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or("");
            let server_error = service.raw().status().is_server_error();
            let name = if RETRYABLE_CODES.contains(&code) || server_error || role_propagating(code, message) {
                ErrorName::Retryable
            } else if DENIED_CODES.contains(&code) {
                ErrorName::AccessDenied
            } else if code.contains("LimitExceeded")
                || code.contains("Quota")
                // Organizations' limits: ConstraintViolationException with a *_LIMIT_EXCEEDED reason.
                || (code == "ConstraintViolationException" && message.contains("maximum"))
                || code.starts_with("MaxNumberOf")
                || code.starts_with("MaximumNumberOf")
            {
                ErrorName::QuotaExceeded
            } else {
                ErrorName::Internal
            };
            StepError::new(name, format!("{what}: {code}: {message}"))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            StepError::new(ErrorName::Retryable, format!("{what}: {}", chain(err)))
        }
        // A 5xx whose body is not the service's error shape (an overloaded front end answers 503
        // with no body) is as transient as one that is.
        SdkError::ResponseError(r) if r.raw().status().is_server_error() => {
            StepError::new(ErrorName::Retryable, format!("{what}: HTTP {}: {}", r.raw().status().as_u16(), chain(err)))
        }
        // Any other response that could not be read is not transient: retrying would read it again.
        _ => StepError::internal(format!("{what}: {}", chain(err))),
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut src = err.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// `.aws("s3:CreateBucket name")` turns an SDK result into a step result with a named error.
pub trait AwsResultExt<T> {
    fn aws(self, what: impl Display) -> Result<T, StepError>;
}

impl<T, E> AwsResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn aws(self, what: impl Display) -> Result<T, StepError> {
        self.map_err(|e| classify(&e, &what.to_string()))
    }
}

#[cfg(test)]
mod tests {
    /// Two processes pacing through one file take turns: each request's slot is one interval after
    /// the last one taken, whoever took it.
    #[test]
    fn a_pace_file_gives_each_request_the_next_free_slot() {
        let dir = std::env::temp_dir().join(format!("assure-pace-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pace");
        let second = std::time::Duration::from_secs(1);
        let waits: Vec<f64> = (0..4).map(|_| super::claim_slot(&file, second).unwrap().as_secs_f64()).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        for (i, w) in waits.iter().enumerate() {
            assert!((w - i as f64).abs() < 0.5, "request {i} waits {w:.2} s, not about {i} s: {waits:?}");
        }
    }

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

    use super::*;

    #[test]
    fn iam_policies_are_decoded() {
        assert_eq!(decode_policy("%7B%22a%22%3A1%7D"), Some(serde_json::json!({"a": 1})));
        assert_eq!(decode_policy("{\"a\":1}"), Some(serde_json::json!({"a": 1})));
    }

    /// A service's answer, as the SDK hands it over.
    fn answer(
        status: u16,
        code: &str,
    ) -> SdkError<aws_sdk_cloudtrail::operation::create_trail::CreateTrailError, HttpResponse> {
        answer_saying(status, code, "m")
    }

    fn answer_saying(
        status: u16,
        code: &str,
        message: &str,
    ) -> SdkError<aws_sdk_cloudtrail::operation::create_trail::CreateTrailError, HttpResponse> {
        let meta = aws_smithy_types::error::ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("a status"),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(aws_sdk_cloudtrail::operation::create_trail::CreateTrailError::generic(meta), raw)
    }

    #[test]
    fn service_error_codes_are_named_by_what_the_caller_can_do() {
        for (status, code, name) in [
            (400, "ThrottlingException", ErrorName::Retryable),
            (500, "InvalidParameterValue", ErrorName::Retryable),
            (403, "AccessDenied", ErrorName::AccessDenied),
            (400, "LimitExceededException", ErrorName::QuotaExceeded),
            (400, "MaxNumberOfConfigRulesExceededException", ErrorName::QuotaExceeded),
            // CloudTrail's five trails per region: https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html
            (400, "MaximumNumberOfTrailsExceededException", ErrorName::QuotaExceeded),
            (400, "InvalidParameterValue", ErrorName::Internal),
        ] {
            let err = classify(&answer(status, code), "cloudtrail:CreateTrail");
            assert_eq!(err.name, name, "{status} {code}");
            assert_eq!(err.message, format!("cloudtrail:CreateTrail: {code}: m"));
        }
    }

    #[test]
    fn a_role_not_yet_propagated_is_retryable_and_other_invalid_arguments_are_not() {
        let firehose = "Firehose is unable to assume role arn:aws:iam::1:role/r. Please check the role provided.";
        for (code, message, name) in [
            ("InvalidCloudWatchLogsRoleArnException", "Access denied.", ErrorName::Retryable),
            ("InvalidArgumentException", firehose, ErrorName::Retryable),
            ("InvalidArgumentException", "Prefix is not valid", ErrorName::Internal),
        ] {
            assert_eq!(classify(&answer_saying(400, code, message), "x").name, name, "{code}: {message}");
        }
    }

    #[tokio::test]
    async fn waits_for_aws_are_counted_once_when_they_overlap_and_not_outside_a_count() {
        let ms = std::time::Duration::from_millis;
        let ((), waited) = counting_waits(async {
            wait_for_aws(ms(300)).await;
            // Two at once: 600 ms of waiting, not 1,200.
            futures::join!(wait_for_aws(ms(600)), wait_for_aws(ms(600)));
            // Work that is not waiting for AWS does not count.
            tokio::time::sleep(ms(600)).await;
        })
        .await;
        // A sleep never ends early; the upper bound leaves room for a loaded machine, and is below
        // both the sum of the waits (1.5 s) and the whole (1.5 s).
        assert!((0.9..1.4).contains(&waited), "waited {waited}");
        // Outside a count, a wait is only a sleep.
        wait_for_aws(ms(10)).await;
    }

    #[tokio::test]
    async fn a_call_is_retried_while_its_role_propagates_and_not_for_other_errors() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let out = while_role_propagates(|| async {
            match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 | 1 => Err(answer(400, "InvalidCloudWatchLogsRoleArnException")),
                _ => Ok("created"),
            }
        })
        .await;
        assert_eq!(out.ok(), Some("created"));
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let out: Result<(), _> = while_role_propagates(|| async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(answer(400, "TrailAlreadyExistsException"))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "not retried");
    }

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
