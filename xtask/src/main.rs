//! `cargo xtask demo | test`: the project's own commands, so a fresh clone needs nothing else.
//!
//! - `demo`: builds assure, starts the local cloud, seeds a demo organization, deploys the
//!   pipeline and onboards one brownfield account, then says where to look next.
//! - `test`: builds the binaries the end-to-end tests drive, prepares the local cloud's Python
//!   environment once, lints the CloudFormation templates (cfn-lint, checkov) and the local cloud's
//!   Python package (ruff, mypy: `localcloud/`), and runs the whole
//!   suite with cargo-nextest; then checks least privilege from the suite's authorization log
//!   (`coverage.rs`).
//! - `codegen`: writes the generated files (the CloudFormation templates under `infra/`).
//! - `bench`: onboarding measured on the local cloud (see `bench.rs`), printed as one table.
//! - `package`: the step binary as the one Lambda deployment package every function runs, for
//!   arm64 (cargo-lambda, zig), where the pipeline template's `CodeUri`s point; prints the time and
//!   the sizes.
//! - `lint-infra`: cfn-lint and checkov over the templates (also part of `test`).
//! - `least-privilege DIR`: the least-privilege check of `test` over authorization logs collected
//!   elsewhere (`coverage.rs`).

mod bench;
mod coverage;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        Some("codegen") => codegen(),
        Some("lint-infra") => lint_infra(),
        Some("bench") => bench::bench(&args[1..]),
        Some("package") => package(),
        // The least-privilege check over decision logs collected elsewhere (a directory of *.jsonl).
        Some("least-privilege") if args.len() == 2 => coverage::check(Path::new(&args[1])),
        _ => {
            eprintln!(
                "usage: cargo xtask demo | test [nextest args…] | bench [--latency-ms N] [--accounts N] [--org-rps R] [--concurrency N] | package | codegen | lint-infra | least-privilege DIR"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn build_bins() -> anyhow::Result<PathBuf> {
    eprintln!("==> building assure and the step binaries");
    run(cargo().args(["build", "--quiet", "--workspace", "--bins"]))?;
    Ok(target_dir().join("debug"))
}

fn assure(bin: &Path) -> Command {
    let mut c = Command::new(bin.join("assure"));
    c.current_dir(root());
    c
}

/// Starts (or finds) the local cloud, with `extra` in its environment (and its worker's); returns
/// the environment that points commands at it.
fn local_up(bin: &Path, extra: &[(String, String)]) -> anyhow::Result<Vec<(String, String)>> {
    let out = assure(bin)
        .args(["local", "up", "--output", "json"])
        .envs(extra.iter().map(|(k, v)| (k, v)))
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("assure local up failed");
    }
    let exports: serde_json::Value = serde_json::from_slice(&out.stdout).context("assure local up output")?;
    let mut env = extra.to_vec();
    for (k, v) in exports.as_object().into_iter().flatten() {
        env.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
    }
    Ok(env)
}

/// `assure` pointed at a local cloud by `env`; an ambient AWS profile or session token, which would
/// mix with the local cloud's keys, is removed (`env` may bring a session token of its own).
fn assure_at(bin: &Path, env: &[(String, String)]) -> Command {
    let mut c = assure(bin);
    c.env_remove("AWS_PROFILE").env_remove("AWS_SESSION_TOKEN").envs(env.iter().map(|(k, v)| (k, v)));
    c
}

fn demo() -> anyhow::Result<()> {
    let bin = build_bins()?;
    eprintln!("==> starting the local cloud (first time: creates a Python venv with moto)");
    let env = local_up(&bin, &[])?;
    let endpoint = env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| v.clone()).unwrap_or_default();
    eprintln!("==> seeding a demo organization with brownfield external accounts");
    let mut seed = assure_at(&bin, &env);
    seed.args(["local", "seed"]);
    let out = seed.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("assure local seed failed");
    }
    let ids: serde_json::Value = serde_json::from_slice(&out.stdout).context("seed output")?;
    println!("{}", serde_json::to_string_pretty(&ids)?);
    let s = |k: &str| ids[k].as_str().unwrap_or_default().to_owned();
    let target = ids["external"][0].as_str().unwrap_or_default().to_owned();
    let regions = "us-east-1,eu-west-1,us-west-2,eu-central-1";
    let security = s("security");
    eprintln!(
        "==> the management account's bootstrap stack (infra/management.template.json), for a pipeline in the security account {security}"
    );
    run(assure_at(&bin, &env).args(["bootstrap", "--pipeline-account", &security]))?;
    // From here on, as the security account's administrator, where the pipeline runs.
    let out = assure_at(&bin, &env).args(["local", "as", &security, "--output", "json"]).output()?;
    if !out.status.success() {
        bail!("assure local as {security} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).context("assure local as output")?;
    let mut env = env.clone();
    for (k, v) in keys.as_object().into_iter().flatten() {
        env.retain(|(have, _)| have != k);
        env.push((k.clone(), v.as_str().unwrap_or_default().to_owned()));
    }
    eprintln!("==> deploying the pipeline in {security}: the SAM template through CloudFormation (infra/assure.template.json)");
    run(assure_at(&bin, &env).args(["deploy", "--logging-account", &s("logging"), "--regions", regions]))?;
    eprintln!("==> onboarding brownfield account {target} in {regions}");
    let mut onboard = assure_at(&bin, &env);
    onboard.args(["onboard", &target]);
    let status = onboard.status()?;
    if status.success() {
        eprintln!("==> the fleet: every onboarded account, its baseline version and whether it holds");
        run(assure_at(&bin, &env).args(["fleet", "status"]))?;
    }
    println!();
    println!("Where to look next:");
    println!(
        "  eval \"$({} local up)\"        # point your shell at the local cloud ({endpoint})",
        bin.join("assure").display()
    );
    println!("  eval \"$(assure local as {security})\"   # act as the security account, where the pipeline runs");
    println!(
        "  assure onboard {}           # the other brownfield account",
        ids["external"][1].as_str().unwrap_or_default()
    );
    println!("  assure onboard {target}           # again: zero changes, the run is idempotent");
    println!("  assure verify {target}            # every control, read-only, with its CIS id");
    println!("  assure verify {target} --deliveries  # and a canary down every delivery path, found where it lands");
    println!(
        "  assure plan {}              # what onboarding the other account would change",
        ids["external"][1].as_str().unwrap_or_default()
    );
    println!(
        "  assure fleet check                     # verify every onboarded account now, as the daily schedule does"
    );
    println!("  assure runs list                       # every run, newest first");
    println!("  assure runs report RUN --out report.html   # the audit report (RUN: from runs list)");
    println!("  assure onboard --accounts-file FILE    # many accounts (assure local seed --accounts 20 makes more)");
    println!("  assure local down                      # stop the local cloud");
    if !status.success() {
        bail!("the onboarding run did not succeed");
    }
    Ok(())
}

fn codegen() -> anyhow::Result<()> {
    for (path, text) in assure_core::pipeline::infra::generated_files() {
        let full = root().join(path);
        let current = std::fs::read_to_string(&full).unwrap_or_default();
        if current != text {
            std::fs::write(&full, text).with_context(|| format!("writing {path}"))?;
            eprintln!("wrote {path}");
        }
    }
    Ok(())
}

/// The linters' venv, made once per pinned requirements file.
fn lint_venv() -> anyhow::Result<PathBuf> {
    tools_venv("lint", "infra/requirements-lint.txt")
}

/// A Python venv of tools, made once per pinned requirements file (`name` tells them apart).
fn tools_venv(name: &str, requirements: &str) -> anyhow::Result<PathBuf> {
    let path = root().join(requirements);
    let mut req = std::fs::read_to_string(&path)?;
    // A file it includes (`-r other.txt`, relative to it) is part of the pin.
    for included in req.clone().lines().filter_map(|l| l.trim().strip_prefix("-r ")) {
        let dir = path.parent().context("a requirements file's directory")?;
        req.push_str(&std::fs::read_to_string(dir.join(included.trim()))?);
    }
    let tag: u32 = req.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let venv = cache.join("assure").join(format!("{name}-venv-{tag:08x}"));
    if !venv.join(".complete").exists() {
        eprintln!("==> creating the {name} Python environment in {} (once)", venv.display());
        run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(root().join(requirements)))?;
        std::fs::write(venv.join(".complete"), "")?;
    }
    Ok(venv)
}

/// The local cloud's development venv: its pinned runtime (moto) with pytest, ruff and mypy.
fn localcloud_dev_venv() -> anyhow::Result<PathBuf> {
    tools_venv("localcloud-dev", "localcloud/requirements-dev.txt")
}

/// ruff and mypy over the local cloud's package and its tests (configured in
/// `localcloud/pyproject.toml`): no finding.
fn lint_localcloud() -> anyhow::Result<()> {
    let venv = localcloud_dev_venv()?;
    let dir = root().join("localcloud");
    eprintln!("==> ruff check (localcloud)");
    run(Command::new(venv.join("bin/ruff")).args(["check", "--no-cache", "."]).current_dir(&dir))?;
    eprintln!("==> mypy (localcloud)");
    run(Command::new(venv.join("bin/mypy")).current_dir(&dir))
}

/// The Lambda deployment package: `cargo lambda build --release --arm64` of the step binary, into
/// `target/lambda/assure-step/bootstrap` in the clone (where `infra/assure.template.json`'s
/// `CodeUri`s point, whatever `CARGO_TARGET_DIR` says), then zipped as `aws cloudformation package`
/// will upload it, to report the size Lambda sees. Every step's function deploys this one package.
fn package() -> anyhow::Result<()> {
    let venv = tools_venv("package", "infra/requirements-package.txt")?;
    let path = format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let lambda_dir = root().join("target/lambda");
    eprintln!("==> cargo lambda build --release --arm64 (a cold release build of the SDK takes a while)");
    let started = std::time::Instant::now();
    run(cargo()
        .args(["lambda", "build", "--release", "--arm64", "--bins", "--package", "assure-steps", "--lambda-dir"])
        .arg(&lambda_dir)
        .env("PATH", &path))?;
    let took = started.elapsed();
    let dir = lambda_dir.join(assure_core::contract::STEP_BINARY);
    let bootstrap = dir.join("bootstrap");
    if !bootstrap.exists() {
        bail!("cargo lambda wrote no {} package", bootstrap.display());
    }
    let zip = std::env::temp_dir().join(format!("assure-package-{}.zip", std::process::id()));
    let _ = std::fs::remove_file(&zip);
    run(Command::new(venv.join("bin/python"))
        .args(["-m", "zipfile", "-c"])
        .arg(&zip)
        .arg(&bootstrap)
        .stdout(Stdio::null()))?;
    let (raw, zipped) = (std::fs::metadata(&bootstrap)?.len(), std::fs::metadata(&zip)?.len());
    std::fs::remove_file(&zip)?;
    let functions = assure_core::contract::StepName::ALL.len();
    println!("{:<32} {:>12} {:>12}", "package", "bootstrap", "zipped");
    println!("{:<32} {:>9.1} MB {:>9.1} MB", assure_core::contract::STEP_BINARY, raw as f64 / 1e6, zipped as f64 / 1e6);
    println!("one package for all {functions} functions (each configured with its step: ASSURE_STEP)");
    println!("built in {:.0} s, into {}", took.as_secs_f64(), lambda_dir.display());
    Ok(())
}

/// cfn-lint and checkov over the templates, and over the pipeline template as CloudFormation deploys
/// it (packaged, through the SAM transform: `infra/lint/transform.py`), where Lambda's own rules
/// apply to the event source mappings the transform makes: zero findings, or a suppression
/// justified inline.
fn lint_infra() -> anyhow::Result<()> {
    let venv = lint_venv()?;
    let mut templates: Vec<PathBuf> =
        assure_core::pipeline::infra::generated_files().iter().map(|(p, _)| root().join(p)).collect();
    let dir = std::env::temp_dir().join(format!("assure-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let transformed = dir.join("assure.transformed.json");
    eprintln!("==> the SAM transform of infra/assure.template.json");
    run(Command::new(venv.join("bin/python"))
        .arg(root().join("infra/lint/transform.py"))
        .arg(root().join("infra/assure.template.json"))
        .arg(&transformed))?;
    templates.push(transformed);
    let linted = lint_templates(&venv, &templates);
    std::fs::remove_dir_all(&dir)?;
    linted?;
    eprintln!("==> parliament");
    lint_policies(&venv)?;
    lint_localcloud()
}

fn lint_templates(venv: &Path, templates: &[PathBuf]) -> anyhow::Result<()> {
    eprintln!("==> cfn-lint");
    run(Command::new(venv.join("bin/cfn-lint")).args(templates))?;
    eprintln!("==> checkov");
    let mut checkov = Command::new(venv.join("bin/checkov"));
    checkov.args(["--framework", "cloudformation", "--compact", "--quiet", "--skip-download"]);
    for t in templates {
        checkov.arg("-f").arg(t);
    }
    run(&mut checkov)
}

/// parliament over every role's policies as a deployment resolves them (example accounts), with the
/// reviewed findings and their reasons in `infra/lint/policies.py`.
fn lint_policies(venv: &Path) -> anyhow::Result<()> {
    let deployed = assure_core::pipeline::infra::Deployed {
        account: "111111111111",
        region: "us-east-1",
        member_role: assure_contract::DEFAULT_ROLE_NAME,
        checkpoint_bucket: "assure-checkpoints-111111111111-us-east-1",
        pipeline_key: "arn:aws:kms:us-east-1:111111111111:key/0c9f2b6e-5a8d-4c1e-9f3a-2b7d6e8c1a40",
        security_account: "333333333333",
        management_account: "222222222222",
    };
    let mut roles = deployed.pipeline_roles().map_err(anyhow::Error::msg)?;
    roles.push(deployed.member_role("444444444444").map_err(anyhow::Error::msg)?);
    roles.extend(deployed.management_roles().map_err(anyhow::Error::msg)?);
    let items: Vec<serde_json::Value> = roles
        .iter()
        .flat_map(|r| {
            r.policies.iter().map(|(name, doc)| serde_json::json!({"role": r.name, "policy": name, "document": doc}))
        })
        .collect();
    let mut child = Command::new(venv.join("bin/python"))
        .arg(root().join("infra/lint/policies.py"))
        .stdin(Stdio::piped())
        .spawn()
        .context("running infra/lint/policies.py")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("parliament's stdin")?;
        stdin.write_all(serde_json::to_string(&items)?.as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("parliament: findings not reviewed in infra/lint/policies.py (above)");
    }
    Ok(())
}

/// The report tests render HTML in Debian's headless Chromium: installed here when missing (as
/// root, from Debian's packages), or named as the one thing to install.
fn ensure_chromium() -> anyhow::Result<()> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    let root_user = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !root_user {
        bail!("the report tests need Debian's chromium package: run `sudo apt-get install -y chromium`, then again");
    }
    eprintln!("==> installing Debian's chromium package (once; the report tests render HTML with it)");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive"))
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    let bin = build_bins()?;
    eprintln!("==> preparing the local cloud's Python environment");
    run(assure(&bin).args(["local", "install"]))?;
    ensure_chromium()?;
    lint_infra()?;
    eprintln!("==> running the test suite");
    let mut nextest = cargo();
    nextest.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    if std::env::var_os("CI").is_some() {
        nextest.args(["--profile", "ci"]);
    }
    // The AWS CLI: the independent client the tests check the local cloud with.
    let cli = tools_venv("awscli", "infra/requirements-awscli.txt")?.join("bin/aws");
    // The local cloud's own tests (pytest) run from its development venv.
    let dev_python = localcloud_dev_venv()?.join("bin/python");
    nextest
        .args(extra)
        .env("ASSURE_BIN_DIR", &bin)
        .env("ASSURE_AWS_CLI", cli)
        .env("ASSURE_LOCAL_DEV_PYTHON", dev_python);
    // The whole suite: every local cloud's authorization decisions, collected for the
    // least-privilege check (a filtered run proves nothing about what is unused).
    let decisions = target_dir().join("authz-decisions");
    let whole = extra.is_empty();
    if whole {
        let _ = std::fs::remove_dir_all(&decisions);
        std::fs::create_dir_all(&decisions)?;
        nextest.env("ASSURE_AUTHZ_COLLECT", &decisions);
    }
    run(&mut nextest)?;
    if whole {
        eprintln!("==> least privilege: the roles' policies against what the suite used");
        coverage::check(&decisions)?;
    }
    Ok(())
}
