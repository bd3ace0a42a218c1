//! Test harness for assure's end-to-end tests: a local cloud per test, started and stopped by PID
//! through the real `assure` binary, plus helpers to drive the CLI and to count AWS calls.
//!
//! The binaries are found in `ASSURE_BIN_DIR` (set by `cargo xtask test`), or beside the test
//! executable's `deps/` directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod followed;
mod wait;

pub use followed::Followed;
pub use wait::{eventually, eventually_async, eventually_every, settled};

/// The organization's management account on the local cloud (moto's default account), whose key
/// `testing` the local cloud starts with.
pub const MANAGEMENT_ACCOUNT: &str = "123456789012";

/// The mutating calls of verify's delivery canaries.
pub use assure_core::pipeline::deliveries::CANARY_CALLS;

/// One request to the local cloud's own API; returns the body (bounded: a test never waits for
/// ever on the local cloud).
pub fn http(endpoint: &str, method: &str, path: &str, body: &str) -> String {
    let answer =
        assure_core::local::http::request_blocking(endpoint, method, path, body, std::time::Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("the local cloud answers: {e}"));
    String::from_utf8_lossy(&answer.body).into_owned()
}

/// Where the `assure` and `assure-step` binaries are.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ASSURE_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target/debug").to_path_buf()
}

/// Runs the local cloud's Python tests (`localcloud/tests/`, pytest, moto in the test's process)
/// named by `args` (test files, `-k` expressions), with the development venv's python that
/// `cargo xtask test` makes from `localcloud/requirements-dev.txt` and names in
/// `ASSURE_LOCAL_DEV_PYTHON`. Panics, with pytest's report, unless they all pass.
pub fn localcloud_pytest(args: &[&str]) {
    let python = std::env::var_os("ASSURE_LOCAL_DEV_PYTHON").expect(
        "ASSURE_LOCAL_DEV_PYTHON: the python of a venv with localcloud/requirements-dev.txt (cargo xtask test sets it)",
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../localcloud");
    let out = std::process::Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("running pytest");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" passed") && !text.contains(" failed"), "{text}");
}

/// A running local cloud with its worker, private to one test. Stopped (by PID) on drop.
pub struct LocalCloud {
    pub dir: tempdir::TempDir,
    pub endpoint: String,
    /// Once deployed: the account the pipeline runs in (the security account) and its
    /// administrator's keys, which `assure` commands then use, as an operator there would.
    pipeline: std::sync::Mutex<Option<(String, Value)>>,
}

mod tempdir {
    use std::path::{Path, PathBuf};

    /// A directory removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let p = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            // A failed test keeps its cloud's logs (cloud.log, worker.log, calls.jsonl) to read.
            if std::thread::panicking() {
                eprintln!("kept {} for its logs", self.0.display());
                return;
            }
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl LocalCloud {
    /// Starts a fresh local cloud and worker; every AWS call the worker's steps make is logged.
    pub fn start() -> LocalCloud {
        LocalCloud::start_with(&[])
    }

    /// Starts one whose worker (and its step binaries) also get `env`.
    ///
    /// Its services act on their own after the shortest transition the local cloud allows (0.5 s,
    /// where a user's local cloud waits 2 s), and a new role is unusable to services for 1 s (3 s
    /// for a user's): a delivery, a detector becoming an administrator, a stream becoming active,
    /// a role becoming usable still come later than the call that caused them, so every test still
    /// goes through the waits AWS imposes, shorter. A test that needs longer sets its own
    /// (`limits({"transitionSeconds": N, "iamPropagationSeconds": N})`) or passes
    /// `ASSURE_TRANSITION_SECONDS` or `ASSURE_IAM_PROPAGATION_SECONDS` in `env`.
    pub fn start_with(env: &[(&str, &str)]) -> LocalCloud {
        let dir = tempdir::TempDir::new("assure-e2e");
        let out = Command::new(bin_dir().join("assure"))
            .args(["local", "up", "--output", "json"])
            .env("ASSURE_TRANSITION_SECONDS", "0.5")
            .env("ASSURE_IAM_PROPAGATION_SECONDS", "1")
            .envs(env.iter().copied())
            .env("ASSURE_LOCAL_DIR", dir.path())
            .env("ASSURE_CALL_LOG", dir.path().join("calls.jsonl"))
            .env("ASSURE_LOG", "info")
            .output()
            .expect("run assure local up (build the binaries first: cargo xtask test does)");
        assert!(out.status.success(), "assure local up failed: {}", String::from_utf8_lossy(&out.stderr));
        let env: Value = serde_json::from_slice(&out.stdout).expect("local up prints JSON");
        let endpoint = env["AWS_ENDPOINT_URL"].as_str().expect("endpoint").to_owned();
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
        LocalCloud { dir, endpoint, pipeline: Default::default() }
    }

    /// The `assure` command, pointed at this cloud, logging its AWS calls: as the pipeline
    /// account's administrator once the pipeline is deployed, the management account's before.
    pub fn assure(&self) -> Command {
        let mut c = self.as_management();
        if let Some((_, keys)) = &*self.pipeline.lock().unwrap() {
            c.env("AWS_ACCESS_KEY_ID", keys["AWS_ACCESS_KEY_ID"].as_str().unwrap())
                .env("AWS_SECRET_ACCESS_KEY", keys["AWS_SECRET_ACCESS_KEY"].as_str().unwrap())
                .env("AWS_SESSION_TOKEN", keys["AWS_SESSION_TOKEN"].as_str().unwrap_or_default());
        }
        c
    }

    /// The `assure` command as the management account's administrator (its key `testing`).
    pub fn as_management(&self) -> Command {
        let mut c = Command::new(bin_dir().join("assure"));
        c.env("ASSURE_LOCAL_DIR", self.dir.path())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("ASSURE_CALL_LOG", self.calls_path())
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        c
    }

    /// Runs `assure ARGS` as the management account's administrator.
    pub fn run_as_management(&self, args: &[&str]) -> (i32, String, String) {
        outcome(self.as_management().args(args))
    }

    /// The account the pipeline is deployed in (the seeded security account), once deployed.
    pub fn pipeline_account(&self) -> String {
        self.pipeline.lock().unwrap().as_ref().map(|(a, _)| a.clone()).expect("the pipeline is deployed")
    }

    /// The deployment as the README makes it: the management account's bootstrap stack for a
    /// pipeline in `pipeline`, then `assure` as that account's administrator from then on.
    pub fn bootstrap(&self, pipeline: &str) {
        let (code, _, err) = self.run_as_management(&["bootstrap", "--pipeline-account", pipeline]);
        assert_eq!(code, 0, "bootstrap failed: {err}");
        let (code, out, err) = self.run_as_management(&["local", "as", pipeline, "--output", "json"]);
        assert_eq!(code, 0, "local as failed: {err}");
        let keys: Value = serde_json::from_str(&out).expect("local as prints JSON");
        *self.pipeline.lock().unwrap() = Some((pipeline.to_owned(), keys));
    }

    /// Runs `assure ARGS`; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        outcome(self.assure().args(args))
    }

    /// Seeds the demo organization; returns the ids JSON.
    pub fn seed(&self) -> Value {
        self.seed_accounts(2)
    }

    /// Seeds the demo organization with `n` external accounts, and bootstraps its management
    /// account for a pipeline in its security account ([`LocalCloud::bootstrap`]).
    pub fn seed_accounts(&self, n: u32) -> Value {
        let (code, out, err) = self.run_as_management(&["local", "seed", "--accounts", &n.to_string()]);
        assert_eq!(code, 0, "seed failed: {err}");
        let ids: Value = serde_json::from_str(&out).expect("seed prints JSON");
        self.bootstrap(ids["security"].as_str().unwrap());
        ids
    }

    /// Seeds and deploys with `regions`; returns the seed ids.
    pub fn seed_and_deploy(&self, regions: &str) -> Value {
        self.seed_accounts_and_deploy(2, regions)
    }

    /// Seeds `accounts` external accounts and deploys with `regions`; returns the seed ids.
    pub fn seed_accounts_and_deploy(&self, accounts: u32, regions: &str) -> Value {
        // Opt-in Regions are disabled in every account until enabled, as on AWS.
        let (code, out, err) =
            self.run_as_management(&["local", "seed", "--accounts", &accounts.to_string(), "--regions", regions]);
        assert_eq!(code, 0, "seed failed: {err}");
        let ids: Value = serde_json::from_str(&out).expect("seed prints JSON");
        self.bootstrap(ids["security"].as_str().unwrap());
        let (code, _, err) =
            self.run(&["deploy", "--logging-account", ids["logging"].as_str().unwrap(), "--regions", regions]);
        assert_eq!(code, 0, "deploy failed: {err}");
        ids
    }

    pub fn calls_path(&self) -> PathBuf {
        self.dir.path().join("calls.jsonl")
    }

    /// Every AWS call logged so far (by the CLI, the worker and the step binaries).
    pub fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.calls_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The local cloud's own record of what it authorized, one decision per line (principal,
    /// account, action, resource, allowed): a count of calls that is not assure's call log.
    pub fn decisions(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("authz.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Actions the local cloud authorized after the first `from` decisions that change an
    /// account's configuration: every action but reads (Get, List, Describe, Head), sessions,
    /// and the pipeline's own plumbing (its queues, executions, their keys, the checkpoint bucket).
    /// What AWS services do on their own meanwhile is not a change anyone made: a delivery by a
    /// service principal, or by a session of a role assure hands to a service (Firehose writing
    /// findings as `assure-findings-delivery`, say) or of a service-linked role.
    pub fn mutating_decisions_since(&self, from: usize) -> Vec<String> {
        use assure_core::controls::names::{AGGREGATOR_ROLE, FINDINGS_EVENTS_ROLE, FINDINGS_ROLE, TRAIL_LOGS_ROLE};
        let read = ["Get", "List", "Describe", "Head", "Lookup"];
        let by_a_service = |principal: &str| {
            // A session's ARN (`…:assumed-role/NAME/SESSION`), or a role as the decision log names
            // its sessions (`…:role/PATH/NAME`, a service-linked role's path included).
            let role = match principal.split_once(":assumed-role/") {
                Some((_, rest)) => rest.split('/').next(),
                None => principal.split_once(":role/").and_then(|(_, rest)| rest.rsplit('/').next()),
            }
            .unwrap_or_default();
            principal.ends_with(".amazonaws.com")
                || [AGGREGATOR_ROLE, FINDINGS_EVENTS_ROLE, FINDINGS_ROLE, TRAIL_LOGS_ROLE].contains(&role)
                || role.starts_with("AWSServiceRoleFor")
        };
        self.decisions()
            .into_iter()
            .skip(from)
            .filter(|d| d["allowed"] == true)
            .filter(|d| !by_a_service(d["principal"].as_str().unwrap_or_default()))
            .filter_map(|d| {
                let action = d["action"].as_str()?.to_owned();
                let resource = d["resource"].as_str().unwrap_or_default();
                let (service, verb) = action.split_once(':')?;
                let plumbing = matches!(service, "sqs" | "states" | "sts")
                    || (service == "kms" && (verb == "Decrypt" || verb.starts_with("GenerateDataKey")))
                    || resource.contains(":::assure-checkpoints-");
                (!plumbing && !read.iter().any(|r| verb.starts_with(r))).then(|| format!("{action} {resource}"))
            })
            .collect()
    }

    /// Forgets the calls logged so far.
    pub fn reset_calls(&self) {
        let _ = std::fs::remove_file(self.calls_path());
    }

    /// Mutating calls that change an account's configuration: everything mutating except the
    /// pipeline's own plumbing (Step Functions, SQS, and the checkpoint records it writes to S3 in
    /// its own account) and verify's delivery canaries, which leave no configuration behind (a
    /// snapshot, a sample finding, an alarm test put back to OK, a role made and deleted; see
    /// `pipeline::deliveries`).
    pub fn configuration_changes(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|c| c["mutating"] == true)
            .filter(|c| !matches!(c["service"].as_str(), Some("sfn" | "SFN" | "sqs" | "SQS")))
            .filter(|c| {
                let pipeline = self.pipeline.lock().unwrap().as_ref().map(|(a, _)| a.clone()).unwrap_or_default();
                !(c["service"] == "S3" && c["operation"] == "PutObject" && c["account"] == pipeline.as_str())
            })
            .filter(|c| !(c["step"] == "verify" && CANARY_CALLS.contains(&c["operation"].as_str().unwrap_or(""))))
            .collect()
    }

    /// Sets the local cloud's rate limits and latency (see localcloud/assure_local/knobs.py); returns its
    /// counters.
    pub fn limits(&self, doc: Value) -> Value {
        serde_json::from_str(&http(&self.endpoint, "POST", "/assure-api/limits", &doc.to_string()))
            .expect("limits JSON")
    }

    /// The root user's credentials in `account` (`/assure-api/root-credentials`, localcloud/assure_local/root.py):
    /// its password, access keys, signing certificates and MFA devices.
    pub fn root_user(&self, account: &str) -> Value {
        let text = http(&self.endpoint, "GET", &format!("/assure-api/root-credentials?account={account}"), "");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// The rate limiter's counters.
    pub fn limit_counters(&self) -> Value {
        serde_json::from_str(&http(&self.endpoint, "GET", "/assure-api/limits", "")).expect("limits JSON")
    }

    /// Sets the local cloud's fault injection rules (see localcloud/assure_local/knobs.py); `[]` clears them.
    pub fn faults(&self, rules: Value) {
        let body = serde_json::json!({ "rules": rules }).to_string();
        let method = if rules.as_array().is_some_and(|r| r.is_empty()) { "DELETE" } else { "POST" };
        http(&self.endpoint, method, "/assure-api/faults", &body);
    }

    /// An SDK configuration for this cloud, as the management account's administrator.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await
    }

    /// An SDK configuration acting as `account` in `region` with what assure may do there: the
    /// member role, reached through the operator role as the CLI reaches it (SCPs exempt it). Before
    /// a deployment (no operator role yet), the account's administrator: Organizations'
    /// `OrganizationAccountAccessRole` in an account of the organization, the account's owner outside it.
    pub async fn sdk_config_as(&self, account: &str, region: &str) -> aws_config::SdkConfig {
        let Some(pipeline) = self.pipeline.lock().unwrap().as_ref().map(|(a, _)| a.clone()) else {
            return self.admin_config_as(account, region).await;
        };
        let base = self.pipeline_config().await;
        let operator = format!("arn:aws:iam::{pipeline}:role/assure-operator");
        if let Ok(hop) = assume(&base, &operator).await {
            let hopped = self.config_with(hop, "us-east-1").await;
            let member = format!("arn:aws:iam::{account}:role/AssureExecutionRole");
            if let Ok(c) = assume(&hopped, &member).await {
                return self.config_with(c, region).await;
            }
        }
        self.admin_config_as(account, region).await
    }

    /// An SDK configuration acting as the administrator of `account` (see [`LocalCloud::sdk_config_as`]):
    /// a principal that is not assure's, bound by the SCPs assure attaches.
    pub async fn admin_config_as(&self, account: &str, region: &str) -> aws_config::SdkConfig {
        let base = self.sdk_config().await;
        let admin = format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole");
        match assume(&base, &admin).await {
            Ok(c) => self.config_with(c, region).await,
            Err(_) => {
                let body = serde_json::json!({ "account": account }).to_string();
                let keys: Value =
                    serde_json::from_str(&http(&self.endpoint, "POST", "/assure-api/account-owner", &body))
                        .expect("account-owner JSON");
                let c = aws_sdk_sts::config::Credentials::new(
                    keys["AccessKeyId"].as_str().expect("key"),
                    keys["SecretAccessKey"].as_str().expect("secret"),
                    None,
                    None,
                    "test",
                );
                self.config_with(c, region).await
            }
        }
    }

    /// An SDK configuration as the pipeline's role of `step`, as Lambda gives it to the step's
    /// function (the local cloud answers for the service).
    pub async fn step_config(&self, step: assure_contract::StepName) -> aws_config::SdkConfig {
        let role = format!(
            "arn:aws:iam::{}:role/{}",
            self.pipeline_account(),
            assure_core::pipeline::resources::step_role_name(step)
        );
        let creds =
            assure_core::local::event_sources::function_credentials(&self.endpoint, &role, &step.function_name())
                .await
                .unwrap_or_else(|e| panic!("{role}'s credentials: {e}"));
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                creds.access_key_id,
                creds.secret_access_key,
                creds.session_token,
                None,
                "step",
            ))
            .load()
            .await
    }

    /// An SDK configuration as the pipeline account's administrator (the keys `assure` uses).
    pub async fn pipeline_config(&self) -> aws_config::SdkConfig {
        let keys = self.pipeline.lock().unwrap().as_ref().map(|(_, k)| k.clone()).expect("the pipeline is deployed");
        let c = aws_sdk_sts::config::Credentials::new(
            keys["AWS_ACCESS_KEY_ID"].as_str().unwrap(),
            keys["AWS_SECRET_ACCESS_KEY"].as_str().unwrap(),
            keys["AWS_SESSION_TOKEN"].as_str().map(str::to_owned),
            None,
            "test",
        );
        self.config_with(c, "us-east-1").await
    }

    async fn config_with(&self, c: aws_sdk_sts::config::Credentials, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(c)
            .load()
            .await
    }
}

/// Runs an `assure` command; returns (exit code, stdout, stderr).
fn outcome(cmd: &mut Command) -> (i32, String, String) {
    let out: Output = cmd.output().expect("run assure");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `conf`'s session of the role `arn`.
async fn assume(conf: &aws_config::SdkConfig, arn: &str) -> Result<aws_sdk_sts::config::Credentials, String> {
    let c = aws_sdk_sts::Client::new(conf)
        .assume_role()
        .role_arn(arn)
        .role_session_name("assure-test")
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?
        .credentials
        .ok_or("no credentials")?;
    Ok(aws_sdk_sts::config::Credentials::new(c.access_key_id, c.secret_access_key, Some(c.session_token), None, "test"))
}

impl Drop for LocalCloud {
    fn drop(&mut self) {
        let _ = Command::new(bin_dir().join("assure"))
            .args(["local", "down"])
            .env("ASSURE_LOCAL_DIR", self.dir.path())
            .output();
        // `cargo xtask test` checks least privilege from every cloud's authorization decisions.
        if let Some(collect) = std::env::var_os("ASSURE_AUTHZ_COLLECT") {
            let log = self.dir.path().join("authz.jsonl");
            let name = format!(
                "{}-{}.jsonl",
                std::process::id(),
                self.dir.path().file_name().unwrap_or_default().to_string_lossy()
            );
            if log.exists() {
                let _ = std::fs::copy(&log, std::path::Path::new(&collect).join(name));
            }
        }
    }
}

/// A page as headless Chromium renders it: the DOM after parsing, and a screenshot.
pub struct Rendered {
    pub dom: String,
    /// RGBA pixels of the screenshot, row by row.
    pub pixels: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Rendered {
    /// How many pixels have exactly this colour.
    pub fn count(&self, rgb: [u8; 3]) -> usize {
        self.pixels.chunks_exact(4).filter(|p| p[..3] == rgb).count()
    }
}

/// Renders a local HTML file in Debian's headless Chromium (`cargo xtask test` installs it), with
/// the network closed: the page must be self-contained. Each run has its own profile directory.
pub fn render(page: &Path, width: u32, height: u32) -> Rendered {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(chromium.exists(), "/usr/bin/chromium is missing: `cargo xtask test` installs Debian's chromium package");
    let work = tempdir::TempDir::new("assure-chromium");
    let shot = work.path().join("page.png");
    let url = format!("file://{}", page.display());
    let base = |c: &mut Command| {
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            // Anything fetched from the network would fail: the report must not need it.
            "--proxy-server=127.0.0.1:9",
        ])
        .arg(format!("--user-data-dir={}", work.path().join("profile").display()))
        .arg(format!("--window-size={width},{height}"));
    };
    let mut c = Command::new(chromium);
    base(&mut c);
    let out = c.arg("--dump-dom").arg(&url).output().expect("run chromium");
    assert!(out.status.success(), "chromium --dump-dom failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut c = Command::new(chromium);
    base(&mut c);
    let out = c.arg(format!("--screenshot={}", shot.display())).arg(&url).output().expect("run chromium");
    assert!(out.status.success(), "chromium --screenshot failed: {}", String::from_utf8_lossy(&out.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).expect("the screenshot")));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG's size")];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    buf.truncate(info.buffer_size());
    let pixels = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        other => panic!("unexpected screenshot colour type {other:?}"),
    };
    Rendered { dom, pixels, width: info.width, height: info.height }
}
