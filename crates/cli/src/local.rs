//! `assure local …`: the local cloud's lifecycle. The cloud (moto plus assure's extension, the
//! Python package `localcloud/assure_local/`, embedded in this binary) runs from a Python venv this command creates, bound to
//! 127.0.0.1 on a free port; a step worker runs beside it. Both are background processes whose
//! PIDs live in the state directory, and `down` stops exactly those PIDs.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;

const REQUIREMENTS: &str = include_str!("../../../localcloud/requirements.txt");

/// Environment variable: the state directory (default `$HOME/.cache/assure/local`).
pub(crate) const STATE_DIR_ENV: &str = "ASSURE_LOCAL_DIR";
/// Environment variable: the venv directory (default `$HOME/.cache/assure/venv-<hash of requirements>`).
pub(crate) const VENV_ENV: &str = "ASSURE_VENV";

/// The member role's template, written beside the seed, which creates the role from it in every
/// account as the StackSet does on AWS.
const MEMBER_TEMPLATE: &str = "member-role.template.json";

/// The region the local cloud is used with. Its bootstrap key `testing` is the management account's
/// administrator user `local-admin` (localcloud/assure_local/authz.py); other keys must be issued by it.
const REGION: &str = "us-east-1";

#[derive(Subcommand)]
pub(crate) enum LocalCommand {
    /// Start the local cloud and a step worker in the background (idempotent) and print `export`
    /// lines for it. Use: eval "$(assure local up)"
    ///
    /// IAM is enforced as AWS enforces it (identity, trust, resource and service control policies);
    /// `--no-iam` turns that off, for debugging only: a run that passes without it proves nothing.
    Up {
        /// Allow every request (debugging only).
        #[arg(long)]
        no_iam: bool,
    },
    /// Create a demo organization: management, logging, security and external accounts with a
    /// brownfield setup, in the OU `Imported`. Prints the account ids as JSON. Idempotent.
    ///
    /// Opt-in Regions are disabled in every account, as on AWS: `--regions` enables those a run
    /// will cover in every account of the organization.
    ///
    /// Example: assure local seed --accounts 20 --regions us-east-1,eu-south-1
    Seed {
        /// How many external accounts.
        #[arg(long, default_value_t = 2)]
        accounts: u32,
        /// Regions to enable in every account (comma-separated; opt-in ones are disabled until
        /// enabled).
        #[arg(long, value_delimiter = ',')]
        regions: Vec<String>,
    },
    /// Print `export` lines that act as the administrator of ACCOUNT, an account of the local
    /// organization: the session of its OrganizationAccountAccessRole, assumed with the management
    /// account's key (as an administrator signs in to a member account on AWS), for an hour. The
    /// management account itself gets its own key back.
    ///
    /// Example: eval "$(assure local as 222222222222)"   # then: assure deploy …
    As {
        /// The account, 12 digits.
        account: String,
    },
    /// Stop the local cloud and its worker (by their recorded PIDs).
    Down,
    /// Show whether the local cloud is running, and its endpoint.
    Status,
    /// Create the Python venv with the pinned moto (done by `up` when missing).
    Install,
}

fn cache_home() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("assure")
}

pub(crate) fn state_dir() -> PathBuf {
    std::env::var_os(STATE_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| cache_home().join("local"))
}

fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os(VENV_ENV) {
        return PathBuf::from(v);
    }
    // A new pin gets a new venv; an old one is never half-upgraded.
    let tag: u32 = REQUIREMENTS.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    cache_home().join(format!("venv-{tag:08x}"))
}

pub(crate) async fn run(cmd: LocalCommand, json: bool) -> anyhow::Result<ExitCode> {
    let dir = state_dir();
    match cmd {
        LocalCommand::Install => {
            let py = ensure_venv()?;
            eprintln!("venv ready: {}", py.display());
        }
        LocalCommand::Up { no_iam } => {
            let endpoint = up(&dir, no_iam).await?;
            print_exports(&endpoint, json);
        }
        LocalCommand::Seed { accounts, regions } => {
            if !(1..=1000).contains(&accounts) {
                bail!("--accounts: {accounts} is out of range (1 to 1000)");
            }
            let regions: Vec<String> =
                crate::global::parse_regions(&regions)?.iter().map(|r| r.as_str().to_owned()).collect();
            let Some(endpoint) = running_endpoint(&dir).await else {
                bail!("the local cloud is not running: start it with `eval \"$(assure local up)\"`");
            };
            let py = ensure_venv()?;
            write_files(&dir)?;
            let out = std::process::Command::new(&py)
                .args(["-m", "assure_local.seed"])
                .env("PYTHONPATH", dir.join(PACKAGE_ROOT))
                .arg("--endpoint")
                .arg(&endpoint)
                .arg("--accounts")
                .arg(accounts.to_string())
                .arg("--member-template")
                .arg(dir.join(MEMBER_TEMPLATE))
                .arg("--regions")
                .arg(regions.join(","))
                .stderr(Stdio::inherit())
                .output()
                .context("running assure_local.seed")?;
            if !out.status.success() {
                bail!("seeding failed ({})", out.status);
            }
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        LocalCommand::As { account } => {
            let account: assure_contract::AccountId =
                account.parse().map_err(|e: assure_contract::StepError| anyhow::anyhow!("ACCOUNT: {}", e.message))?;
            let Some(endpoint) = running_endpoint(&dir).await else {
                bail!("the local cloud is not running: start it with `eval \"$(assure local up)\"`");
            };
            let keys = administrator_of(&endpoint, &account).await?;
            print_exports_with(&endpoint, json, &keys);
        }
        LocalCommand::Down => {
            let mut stopped = 0;
            for name in ["worker", "cloud"] {
                if let Some(pid) = read_pid(&dir, name) {
                    if stop_pid(pid) {
                        stopped += 1;
                    }
                    let _ = std::fs::remove_file(dir.join(format!("{name}.pid")));
                }
            }
            let _ = std::fs::remove_file(dir.join("port"));
            eprintln!("stopped {stopped} process(es)");
        }
        LocalCommand::Status => match running_endpoint(&dir).await {
            Some(endpoint) => {
                if json {
                    println!("{}", serde_json::json!({"running": true, "endpoint": endpoint, "stateDir": dir}));
                } else {
                    println!("running at {endpoint} (state in {})", dir.display());
                }
            }
            None => {
                if json {
                    println!("{}", serde_json::json!({"running": false, "stateDir": dir}));
                } else {
                    println!("not running");
                }
                return Ok(ExitCode::FAILURE);
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// Access keys: (key id, secret, session token).
type Keys = (String, String, Option<String>);

/// The management account's bootstrap key.
fn management_keys() -> Keys {
    ("testing".into(), "testing".into(), None)
}

/// The administrator of `account`: the management account's key, or the session of the account's
/// OrganizationAccountAccessRole assumed with it.
async fn administrator_of(endpoint: &str, account: &assure_contract::AccountId) -> anyhow::Result<Keys> {
    let (id, secret, _) = management_keys();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(id, secret, None, None, "local"))
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&conf);
    let me = sts.get_caller_identity().send().await.context("sts:GetCallerIdentity")?;
    if me.account() == Some(account.as_str()) {
        return Ok(management_keys());
    }
    let arn = format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole");
    let out = sts
        .assume_role()
        .role_arn(&arn)
        .role_session_name("assure-local-admin")
        .duration_seconds(3600)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("sts:AssumeRole {arn}: {}", aws_sdk_sts::error::DisplayErrorContext(&e)))?;
    let c = out.credentials().context("sts:AssumeRole returned no credentials")?;
    Ok((c.access_key_id().to_owned(), c.secret_access_key().to_owned(), Some(c.session_token().to_owned())))
}

fn print_exports(endpoint: &str, json: bool) {
    print_exports_with(endpoint, json, &management_keys())
}

fn print_exports_with(endpoint: &str, json: bool, (id, secret, token): &Keys) {
    if json {
        let mut env = serde_json::json!({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": secret});
        if let Some(t) = token {
            env["AWS_SESSION_TOKEN"] = serde_json::json!(t);
        }
        println!("{env}");
        return;
    }
    println!("export AWS_ENDPOINT_URL={endpoint}");
    println!("export AWS_REGION={REGION}");
    // The AWS CLI v1 reads AWS_DEFAULT_REGION.
    println!("export AWS_DEFAULT_REGION={REGION}");
    println!("export AWS_ACCESS_KEY_ID={id}");
    println!("export AWS_SECRET_ACCESS_KEY={secret}");
    match token {
        Some(t) => {
            println!("export AWS_SESSION_TOKEN={t}");
            println!("unset AWS_PROFILE");
        }
        None => println!("unset AWS_PROFILE AWS_SESSION_TOKEN"),
    }
}

// The local cloud's modules, embedded at build time: every module of `localcloud/assure_local/`
// (build.rs lists them; a unit test holds the list to the directory).
include!(concat!(env!("OUT_DIR"), "/local_modules.rs"));

/// The directory under the state directory the package is written to: the server and the seed run
/// with it as their `PYTHONPATH` (`python -m assure_local.server`).
const PACKAGE_ROOT: &str = "python";

fn write_files(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let member = serde_json::to_string_pretty(&assure_core::pipeline::infra::member_role_template())?;
    std::fs::write(dir.join(MEMBER_TEMPLATE), member).with_context(|| format!("writing {MEMBER_TEMPLATE}"))?;
    let root = dir.join(PACKAGE_ROOT);
    for (name, text) in MODULES.iter().copied() {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        // Unchanged modules are left as they are: a running server may be reading them.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text).with_context(|| format!("writing {name}"))?;
        }
    }
    remove_stale(&root, &root)
}

/// Removes the modules under `dir` that this binary does not embed (left by an older version).
fn remove_stale(root: &Path, dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            remove_stale(root, &path)?;
        } else if path.extension().is_some_and(|e| e == "py") {
            let name = path.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
            if !MODULES.iter().any(|(n, _)| *n == name) {
                std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Creates the venv with the pinned requirements, once. A lock file keeps concurrent callers
/// (parallel tests) from installing twice.
fn ensure_venv() -> anyhow::Result<PathBuf> {
    let venv = venv_dir();
    let py = venv.join("bin/python");
    let done = venv.join(".assure-complete");
    if done.exists() {
        return Ok(py);
    }
    let parent = venv.parent().context("venv has no parent")?;
    std::fs::create_dir_all(parent)?;
    let lock_path = parent.join(format!("{}.lock", venv.file_name().and_then(|n| n.to_str()).unwrap_or("venv")));
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    lock.lock().context("locking the venv")?;
    if done.exists() {
        return Ok(py);
    }
    eprintln!("creating the local cloud's Python environment in {} (once)…", venv.display());
    let python = std::env::var("ASSURE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let status = std::process::Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .with_context(|| format!("running {python} -m venv (is Python 3.9+ installed?)"))?;
    if !status.success() {
        bail!("{python} -m venv failed ({status})");
    }
    let req = venv.join("requirements.txt");
    std::fs::write(&req, REQUIREMENTS)?;
    let status = std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&req)
        .stdout(Stdio::null())
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install -r {} failed ({status})", req.display());
    }
    std::fs::write(&done, "")?;
    Ok(py)
}

fn read_pid(dir: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(dir.join(format!("{name}.pid"))).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

/// SIGTERM, then SIGKILL after 5 s. True if the process was running.
fn stop_pid(pid: u32) -> bool {
    if !alive(pid) {
        return false;
    }
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    true
}

async fn healthy(endpoint: &str) -> bool {
    let probe =
        assure_core::local::http::request(endpoint, "GET", "/assure-api/health", "", Duration::from_secs(5)).await;
    probe.is_ok_and(|a| a.status == 200 && String::from_utf8_lossy(&a.body).contains("\"ok\": true"))
}

async fn running_endpoint(dir: &Path) -> Option<String> {
    let pid = read_pid(dir, "cloud")?;
    if !alive(pid) {
        return None;
    }
    let port = std::fs::read_to_string(dir.join("port")).ok()?;
    let endpoint = format!("http://127.0.0.1:{}", port.trim());
    healthy(&endpoint).await.then_some(endpoint)
}

fn spawn_background(cmd: &mut std::process::Command, log: &Path) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    // A process group of its own: the terminal's Ctrl-C does not reach it; `down` stops it.
    let child = cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0).spawn()?;
    Ok(child.id())
}

async fn up(dir: &Path, no_iam: bool) -> anyhow::Result<String> {
    write_files(dir)?;
    let endpoint = match running_endpoint(dir).await {
        Some(e) => e,
        None => {
            if let Some(pid) = read_pid(dir, "cloud") {
                stop_pid(pid);
            }
            let py = ensure_venv()?;
            let port_file = dir.join("port");
            let _ = std::fs::remove_file(&port_file);
            let pid = spawn_background(
                std::process::Command::new(&py)
                    .args(["-m", "assure_local.server"])
                    .env("PYTHONPATH", dir.join(PACKAGE_ROOT))
                    .arg("--port-file")
                    .arg(&port_file)
                    .env(
                        "ASSURE_IAM",
                        if no_iam { "off".into() } else { std::env::var("ASSURE_IAM").unwrap_or_else(|_| "on".into()) },
                    )
                    .env("ASSURE_AUTHZ_LOG", dir.join("authz.jsonl"))
                    .current_dir(dir),
                &dir.join("cloud.log"),
            )
            .context("starting the local cloud")?;
            std::fs::write(dir.join("cloud.pid"), pid.to_string())?;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(e) = running_endpoint(dir).await {
                    break e;
                }
                if !alive(pid) || Instant::now() > deadline {
                    let log = std::fs::read_to_string(dir.join("cloud.log")).unwrap_or_default();
                    bail!("the local cloud did not start; its log ({}):\n{log}", dir.join("cloud.log").display());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let worker_alive = read_pid(dir, "worker").is_some_and(alive);
    if !worker_alive {
        let exe = std::env::current_exe().context("locating this binary")?;
        let pid = spawn_background(
            std::process::Command::new(exe)
                .arg("worker")
                .env("AWS_ENDPOINT_URL", &endpoint)
                .env("AWS_REGION", REGION)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_SESSION_TOKEN")
                .env("ASSURE_LOG", std::env::var("ASSURE_LOG").unwrap_or_else(|_| "info".into())),
            &dir.join("worker.log"),
        )
        .context("starting the worker")?;
        std::fs::write(dir.join("worker.pid"), pid.to_string())?;
    }
    eprintln!("local cloud at {endpoint}; logs in {}", dir.display());
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    /// Every module of the package, in every subpackage, must be embedded: one left out would be
    /// missing from every local cloud.
    #[test]
    fn every_module_of_the_local_cloud_is_embedded() {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "__pycache__") {
                        assert!(path.join("__init__.py").exists(), "{} is not a package", path.display());
                        walk(root, &path, out);
                    }
                } else if path.extension().is_some_and(|e| e == "py") {
                    out.push(path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../localcloud");
        let mut found = Vec::new();
        walk(&root, &root.join("assure_local"), &mut found);
        found.sort();
        let mut embedded: Vec<String> = super::MODULES.iter().map(|(n, _)| (*n).to_owned()).collect();
        embedded.sort();
        assert_eq!(found, embedded);
        for module in ["assure_local/__init__.py", "assure_local/server.py", "assure_local/seed.py"] {
            assert!(embedded.iter().any(|n| n == module), "{module}");
        }
    }
}
