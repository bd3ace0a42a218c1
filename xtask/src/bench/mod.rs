//! `cargo xtask bench`: onboarding measured on the local cloud, printed as one table.
//!
//! Every scenario gets its own local cloud (its own moto, worker and call log), stopped by PID at
//! the end. Numbers come from what the runs did: wall time from the command's start to its
//! summary, calls from the SDK call log every process writes (`ASSURE_CALL_LOG`), state transitions
//! from the execution histories, Organizations throttling from the local cloud's rate limiter, the
//! step binaries' peak memory from their own `VmHWM` (`ASSURE_STEP_STATS`).
//!
//! Options: `--latency-ms N` adds N ms to every call (AWS is not on loopback); `--accounts N` sizes
//! the bulk scenario (default 20; up to 1,000, the size of organization the bulk run is made for);
//! `--org-rps R` the emulated Organizations limit (default 5).
//!
//! Whatever `--latency-ms` says, two scenarios add 50 ms to every call (one account in 1 and in 17
//! regions): the goals that compare them are ratios from the same run, printed at the end.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::{assure, build_bins, run};

mod cloud;
mod measure;

use cloud::*;
use measure::*;

const FOUR: &str = "us-east-1,eu-west-1,us-west-2,eu-central-1";
/// The 17 regions enabled by default in an AWS account.
const SEVENTEEN: &str = "us-east-1,us-east-2,us-west-1,us-west-2,ca-central-1,eu-west-1,eu-west-2,eu-west-3,eu-central-1,eu-north-1,ap-south-1,ap-southeast-1,ap-southeast-2,ap-northeast-1,ap-northeast-2,ap-northeast-3,sa-east-1";

/// The 17, and 13 opt-in regions: the spec's "all regions" as an account with opt-ins has them.
const THIRTY: &str = "us-east-1,us-east-2,us-west-1,us-west-2,ca-central-1,eu-west-1,eu-west-2,eu-west-3,eu-central-1,eu-north-1,ap-south-1,ap-southeast-1,ap-southeast-2,ap-northeast-1,ap-northeast-2,ap-northeast-3,sa-east-1,af-south-1,ap-east-1,ap-south-2,ap-southeast-3,ap-southeast-4,ca-west-1,eu-central-2,eu-south-1,eu-south-2,il-central-1,me-central-1,me-south-1,mx-central-1";

/// The largest state allowed at 30 regions: an eighth of Step Functions' 256 KiB, so the state
/// stays far from `States.DataLimitExceeded` whatever the run.
const STATE_BOUND: u64 = 32 * 1024;

struct Options {
    latency_ms: u64,
    accounts: u32,
    org_rps: f64,
    /// Accounts at once in the bulk run (`assure onboard --concurrency`).
    concurrency: u32,
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options { latency_ms: 0, accounts: 20, org_rps: 5.0, concurrency: 8 };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value")).cloned();
        match a.as_str() {
            "--latency-ms" => o.latency_ms = value(a)?.parse().context("--latency-ms: a whole number of ms")?,
            "--accounts" => o.accounts = value(a)?.parse().context("--accounts: a number")?,
            "--org-rps" => o.org_rps = value(a)?.parse().context("--org-rps: requests per second")?,
            "--concurrency" => o.concurrency = value(a)?.parse().context("--concurrency: a number")?,
            other => {
                bail!("unknown option {other}; options: --latency-ms N, --accounts N, --org-rps R, --concurrency N")
            }
        }
    }
    if !(1..=1000).contains(&o.accounts) || o.org_rps <= 0.0 || !(1..=40).contains(&o.concurrency) {
        bail!("--accounts must be 1 to 1000, --org-rps above 0 and --concurrency 1 to 40");
    }
    Ok(o)
}

pub(crate) fn bench(args: &[String]) -> anyhow::Result<()> {
    let o = options(args)?;
    let bin = build_bins()?;
    run(assure(&bin).args(["local", "install"]))?;
    let latency = json!({"limits": [], "latencyMs": o.latency_ms});
    let mut rows = Vec::new();
    let mut stats = Vec::new();
    let started = Instant::now();

    // One account, four regions: onboard, re-run, then a failure held and retried.
    eprintln!("==> 1 account × 4 regions: onboard, re-run, held run and retry");
    let cloud = Cloud::start(&bin, "four", &[])?;
    let ids = cloud.seed_and_deploy(2, FOUR)?;
    cloud.api("POST", "/assure-api/limits", &latency)?;
    let (a, b) = (ids["external"][0].as_str().unwrap_or_default(), ids["external"][1].as_str().unwrap_or_default());
    cloud.reset_calls();
    let (secs, code, _) = cloud.timed(&["onboard", a, "--run-id", "bench-first"])?;
    ensure(code, "the first onboarding")?;
    let first_calls = cloud.count(&cloud.calls());
    let detail = first_calls.by_operation.clone();
    let served =
        |c: &Calls, secs: f64| (c.account_mutating + c.canaries + c.account_read + c.plumbing) as f64 / secs.max(0.001);
    rows.push(Row {
        scenario: "onboard 1 account × 4 regions".into(),
        seconds: secs,
        transitions: Some(cloud.transitions("bench-first")?),
        note: format!(
            "{} Organizations calls; IAM enforced, {:.0} calls/s served",
            first_calls.organizations,
            served(&first_calls, secs)
        ),
        calls: first_calls,
    });
    // The same onboarding with the local cloud's IAM enforcement off: what authorization costs.
    {
        let open = Cloud::start(&bin, "four-no-iam", &[("ASSURE_IAM", "off".to_owned())])?;
        let ids = open.seed_and_deploy(1, FOUR)?;
        open.api("POST", "/assure-api/limits", &latency)?;
        open.reset_calls();
        let target = ids["external"][0].as_str().unwrap_or_default();
        let (secs, code, _) = open.timed(&["onboard", target, "--run-id", "bench-no-iam"])?;
        ensure(code, "the onboarding without IAM enforcement")?;
        let calls = open.count(&open.calls());
        rows.push(Row {
            scenario: "onboard 1 account × 4 regions, IAM enforcement off".into(),
            seconds: secs,
            transitions: Some(open.transitions("bench-no-iam")?),
            note: format!("debugging mode, for comparison: {:.0} calls/s served", served(&calls, secs)),
            calls,
        });
        stats.extend(open.step_stats());
    }
    // Proof of delivery, on demand: a canary down every path in the four regions, found where it
    // lands; then an onboarding whose Verify state proves it (the time to proven delivery).
    cloud.reset_calls();
    let (secs, code, out) = cloud.timed(&["verify", a, "--deliveries", "--wait", "120", "--output", "json"])?;
    ensure(code, "verify --deliveries")?;
    let proofs: Vec<Value> = serde_json::from_str::<Value>(&out)?["evidence"]
        .as_array()
        .map(|e| {
            e.iter().filter(|e| e["control"].as_str().is_some_and(|c| c.starts_with("deliveries."))).cloned().collect()
        })
        .unwrap_or_default();
    let took = |e: &Value| e["tookSeconds"].as_f64();
    let slowest = proofs
        .iter()
        .filter_map(|e| took(e).map(|t| (t, e["control"].as_str().unwrap_or_default().to_owned())))
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    rows.push(Row {
        scenario: "prove delivery, 1 account × 4 regions (verify --deliveries)".into(),
        seconds: secs,
        transitions: None,
        note: format!("{} paths proven; slowest {} at {:.1} s after the canary", proofs.len(), slowest.1, slowest.0),
        calls: cloud.count(&cloud.calls()),
    });
    cloud.reset_calls();
    let (secs, code, _) =
        cloud.timed(&["onboard", a, "--run-id", "bench-proven", "--full", "--prove-deliveries", "true"])?;
    ensure(code, "the onboarding that proves delivery")?;
    let timeline = cloud.json(&["runs", "history", "bench-proven", "--output", "json"])?;
    rows.push(Row {
        scenario: "onboard again (--full) and prove delivery in its Verify state".into(),
        seconds: secs,
        transitions: Some(cloud.transitions("bench-proven")?),
        note: format!("time to proven delivery; Verify waited {:.1} s between attempts", retry_waits(&timeline)),
        calls: cloud.count(&cloud.calls()),
    });
    cloud.reset_calls();
    let (secs, code, _) = cloud.timed(&["onboard", a, "--run-id", "bench-again"])?;
    ensure(code, "the re-run")?;
    rows.push(Row {
        scenario: "re-run, same account (idempotent)".into(),
        seconds: secs,
        transitions: Some(cloud.transitions("bench-again")?),
        calls: cloud.count(&cloud.calls()),
        note: "must be 0 mutating".into(),
    });
    cloud.api(
        "POST",
        "/assure-api/faults",
        &json!({"rules": [{"service": "logs", "operation": "PutMetricFilter", "error": "AccessDenied", "rate": 1.0, "count": 1}]}),
    )?;
    cloud.reset_calls();
    let (secs, code, _) = cloud.timed(&["onboard", b, "--run-id", "bench-held"])?;
    if code != 1 {
        bail!("the held run should fail (exit 1), it exited {code}");
    }
    cloud.api("DELETE", "/assure-api/faults", &json!({}))?;
    rows.push(Row {
        scenario: "held run (alarms denied once)".into(),
        seconds: secs,
        transitions: None,
        calls: cloud.count(&cloud.calls()),
        note: "stops at alarms, keeps the rest".into(),
    });
    cloud.reset_calls();
    let (secs, code, _) = cloud.timed(&["runs", "retry", "bench-held"])?;
    ensure(code, "the retry")?;
    let retry = cloud.count(&cloud.calls());
    rows.push(Row {
        scenario: "retry after failure".into(),
        seconds: secs,
        transitions: Some(cloud.transitions("bench-held")?),
        note: "transitions: both executions".into(),
        calls: retry,
    });
    stats.extend(cloud.step_stats());
    drop(cloud);

    // One account, seventeen regions.
    eprintln!("==> 1 account × 17 regions");
    let cloud = Cloud::start(&bin, "seventeen", &[])?;
    let ids = cloud.seed_and_deploy(1, SEVENTEEN)?;
    cloud.api("POST", "/assure-api/limits", &latency)?;
    let a = ids["external"][0].as_str().unwrap_or_default();
    cloud.reset_calls();
    let (secs, code, _) = cloud.timed(&["onboard", a, "--run-id", "bench-17"])?;
    ensure(code, "the 17-region onboarding")?;
    let logged = cloud.calls();
    let calls = cloud.count(&logged);
    let first_17 = (calls.account_mutating + calls.canaries + calls.account_read, calls.plumbing);
    // Of the calls to the accounts, those to the onboarded account itself; the rest go to the
    // organization's accounts (management, security, logging) for the organization's part.
    let first_17_target =
        logged.iter().filter(|c| !is_plumbing(c, &cloud.pipeline.borrow()) && c["account"] == a).count();
    cloud.reset_calls();
    let (again_secs, code, _) = cloud.timed(&["onboard", a, "--run-id", "bench-17-again"])?;
    ensure(code, "the 17-region re-run")?;
    let again = cloud.count(&cloud.calls());
    let again_17 =
        (again.account_mutating + again.canaries + again.account_read + again.plumbing, again.account_mutating);
    rows.push(Row {
        scenario: "onboard 1 account × 17 regions".into(),
        seconds: secs,
        transitions: Some(cloud.transitions("bench-17")?),
        note: format!(
            "{} Organizations calls; largest state {} bytes",
            calls.organizations,
            cloud.largest_state("bench-17")?
        ),
        calls,
    });
    rows.push(Row {
        scenario: "re-run, 1 account × 17 regions".into(),
        seconds: again_secs,
        transitions: Some(cloud.transitions("bench-17-again")?),
        note: "must be 0 mutating".into(),
        calls: again,
    });
    stats.extend(cloud.step_stats());
    drop(cloud);

    // The same onboarding with 50 ms added to every call, in 1 region and in 17.
    eprintln!("==> 1 account × 1 and × 17 regions, 50 ms per call");
    let slow = json!({"limits": [], "latencyMs": 50});
    let mut slow_walls = Vec::new();
    let mut chain = Chain::default();
    let mut waits_17 = (0.0, 0.0);
    for (name, regions) in [("slow-1", "us-east-1"), ("slow-17", SEVENTEEN)] {
        let cloud = Cloud::start(&bin, name, &[])?;
        let ids = cloud.seed_and_deploy(1, regions)?;
        cloud.api("POST", "/assure-api/limits", &slow)?;
        let a = ids["external"][0].as_str().unwrap_or_default();
        let run = format!("bench-{name}");
        let (secs, code, _) = cloud.timed(&["onboard", a, "--run-id", &run])?;
        ensure(code, &format!("the onboarding with 50 ms per call ({name})"))?;
        let timeline = cloud.json(&["runs", "history", &run, "--output", "json"])?;
        chain = longest_chain(&timeline)?;
        let n = regions.split(',').count();
        let waited = retry_waits(&timeline);
        rows.push(Row {
            scenario: format!("onboard 1 account × {n} region(s), 50 ms per call"),
            seconds: secs,
            transitions: Some(cloud.transitions(&run)?),
            note: format!(
                "execution {:.1} s; longest chain of in-step durations {:.1} s; waits AWS imposes: {waited:.1} s between Verify's attempts (resources CREATING, deliveries on their way) and {:.1} s inside the steps of that chain (changes propagating), so {:.1} s without them",
                chain.execution,
                chain.longest,
                chain.in_step_waits,
                secs - waited - chain.in_step_waits
            ),
            calls: cloud.count(&cloud.calls()),
        });
        slow_walls.push(secs);
        waits_17 = (waited, chain.in_step_waits);
        stats.extend(cloud.step_stats());
    }

    // One account, thirty regions, opt-in ones included: the state stays small.
    eprintln!("==> 1 account × 30 regions");
    let cloud = Cloud::start(&bin, "thirty", &[])?;
    let ids = cloud.seed_and_deploy(1, THIRTY)?;
    cloud.api("POST", "/assure-api/limits", &latency)?;
    let a = ids["external"][0].as_str().unwrap_or_default();
    cloud.reset_calls();
    let (secs, code, _) = cloud.timed(&["onboard", a, "--run-id", "bench-30"])?;
    ensure(code, "the 30-region onboarding")?;
    let largest_30 = cloud.largest_state("bench-30")?;
    let calls = cloud.count(&cloud.calls());
    rows.push(Row {
        scenario: "onboard 1 account × 30 regions (13 opt-in)".into(),
        seconds: secs,
        transitions: Some(cloud.transitions("bench-30")?),
        note: format!("largest state {largest_30} bytes (bound {STATE_BOUND})"),
        calls,
    });
    stats.extend(cloud.step_stats());
    drop(cloud);
    if largest_30 >= STATE_BOUND {
        bail!("the 30-region run's largest state is {largest_30} bytes, over the {STATE_BOUND}-byte bound");
    }

    // Bulk, under the emulated Organizations limit.
    eprintln!(
        "==> bulk: {} accounts × 4 regions, {} at once, Organizations limited to {} requests/s",
        o.accounts, o.concurrency, o.org_rps
    );
    // At 6 Organizations calls in a run of some seconds, an account uses a fraction of a request a
    // second: a bulk run reaches Organizations' bound only with several accounts at once (the CLI's
    // default of 4 is the gentle choice). The local worker plays Lambda, whose step functions take
    // 5 invocations each on AWS (StepConcurrency): it runs two steps per account at once here.
    let cloud = Cloud::start(
        &bin,
        "bulk",
        &[
            ("ASSURE_ORGANIZATIONS_RPS", o.org_rps.to_string()),
            ("ASSURE_WORKER_CONCURRENCY", (2 * o.concurrency).to_string()),
        ],
    )?;
    let ids = cloud.seed_and_deploy(o.accounts, FOUR)?;
    let file = cloud.dir.join("accounts.txt");
    let list: Vec<&str> = ids["external"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    std::fs::write(&file, list.join("\n"))?;
    cloud.api(
        "POST",
        "/assure-api/limits",
        &json!({"limits": [{"service": "organizations", "rps": o.org_rps}], "latencyMs": o.latency_ms}),
    )?;
    cloud.reset_calls();
    let concurrency = o.concurrency.to_string();
    let (secs, code, out) = cloud.timed(&[
        "onboard",
        "--accounts-file",
        file.to_str().unwrap_or_default(),
        "--concurrency",
        &concurrency,
        "--output",
        "json",
    ])?;
    let summary: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    let limiter = cloud.api("GET", "/assure-api/limits", &json!({}))?;
    let log = cloud.calls();
    // Organizations calls made once for the whole bulk run: the CLI's checks (no step) and the
    // organization step's; the rest are the accounts' own runs.
    let once = log
        .iter()
        .filter(|c| c["service"] == "Organizations" && (c["step"] == "" || c["step"] == "organization"))
        .count();
    let calls = cloud.count(&log);
    let throttled = limiter["throttled"]["organizations"].as_u64().unwrap_or(0);
    let mut throttle_failures = 0;
    let mut timeouts = 0;
    let mut transitions = 0;
    for acct in summary["accounts"].as_array().into_iter().flatten() {
        let run = acct["runId"].as_str().unwrap_or_default();
        let timeline = cloud.json(&["runs", "history", run, "--output", "json"])?;
        for e in timeline.as_array().into_iter().flatten() {
            let detail = e["detail"].as_str().unwrap_or("");
            if e["event"] == "TaskFailed" && (detail.contains("Throttl") || detail.contains("TooManyRequests")) {
                throttle_failures += 1;
            }
            if e["event"] == "StateEntered" {
                transitions += 1;
            }
            if e["event"] == "TaskTimedOut" || (e["event"] == "TaskFailed" && detail.starts_with("States.Timeout")) {
                timeouts += 1;
            }
        }
    }
    let bound = calls.organizations as f64 / o.org_rps;
    let org_per_account = (calls.organizations - once) as f64 / f64::from(o.accounts);
    let setup: Vec<String> = ORG_WIDE_SETUP
        .iter()
        .map(|(service, op)| {
            let n = calls.by_operation.get(&(service.to_string(), op.to_string())).map_or(0, |c| c.0);
            format!("{op} {n}")
        })
        .collect();
    let ok = summary["succeeded"].as_u64().unwrap_or(0);
    rows.push(Row {
        scenario: format!("bulk {} accounts × 4 regions, {} at once, Organizations ≤ {} rps", o.accounts, o.concurrency, o.org_rps),
        seconds: secs,
        transitions: Some(transitions),
        note: format!(
            "{ok}/{} succeeded; lower bound {bound:.1} s ({} Organizations calls / {} rps), {:.2}× it; {throttled} throttled answers retried, {throttle_failures} throttle failures",
            o.accounts, calls.organizations, o.org_rps, secs / bound
        ),
        calls,
    });
    let bulk = Bulk {
        accounts: o.accounts,
        seconds: secs,
        org_per_account,
        org_once: once,
        of_bound: secs / bound,
        timeouts,
        failures: o.accounts as u64 - ok,
        setup: setup.join(", "),
        org_rps: o.org_rps,
    };
    stats.extend(cloud.step_stats());
    let bulk_ok = code == 0 && throttle_failures == 0;

    // The fleet's scheduled verify over the accounts just onboarded: what one watch costs.
    eprintln!("==> the fleet's scheduled verify: {} accounts", o.accounts);
    cloud.reset_calls();
    let (watch_secs, code, out) = cloud.timed(&["fleet", "check", "--output", "json"])?;
    let watched: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    let checked = watched["checks"].as_array().map_or(0, Vec::len);
    if watched["status"] != "SUCCEEDED" || checked != o.accounts as usize {
        bail!("the watch checked {checked} of {} accounts (exit {code}): {out}", o.accounts);
    }
    let calls = cloud.count(&cloud.calls());
    let per = |n: usize| n as f64 / f64::from(o.accounts);
    rows.push(Row {
        scenario: format!("scheduled verify of {} accounts × 4 regions (fleet check)", o.accounts),
        seconds: watch_secs,
        transitions: None,
        note: format!(
            "{:.2} s, {:.1} calls ({:.2} to Organizations) per account; must be 0 mutating",
            watch_secs / f64::from(o.accounts),
            per(calls.account_mutating + calls.canaries + calls.account_read + calls.plumbing),
            per(calls.organizations)
        ),
        calls,
    });
    drop(cloud);

    // The step binary: start (exec to exit of --version) and peak memory during the runs above.
    eprintln!("==> the step binary");
    let mut starts = Vec::new();
    let step_bin = bin.join(assure_core::contract::STEP_BINARY);
    for _ in 0..5 * assure_core::contract::StepName::ALL.len() {
        let t = Instant::now();
        let st = Command::new(&step_bin).arg("--version").stdout(Stdio::null()).status()?;
        if !st.success() {
            bail!("{} --version failed", step_bin.display());
        }
        starts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut peak: BTreeMap<String, u64> = BTreeMap::new();
    let mut secs_by_step: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in &stats {
        let step = s["step"].as_str().unwrap_or("?").to_owned();
        let kib = s["peakKiB"].as_u64().unwrap_or(0);
        let e = peak.entry(step.clone()).or_default();
        *e = (*e).max(kib);
        secs_by_step.entry(step).or_default().push(s["seconds"].as_f64().unwrap_or(0.0));
    }

    println!();
    println!(
        "assure bench: local cloud (moto 5.2.5 + extension), dev-profile binaries, {} ms added per call, {} cores; {:.0} s in all",
        o.latency_ms,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        started.elapsed().as_secs_f64()
    );
    println!();
    println!("| scenario | wall s | account calls, mutating | account calls, read | pipeline calls | state transitions | notes |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        print_row(r);
    }
    println!();
    println!(
        "Calls to the accounts by service and operation, first onboarding of 1 account × 4 regions (mutating/read):"
    );
    println!();
    let mut by_service: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((service, op), (m, r)) in &detail {
        by_service.entry(service).or_default().push(format!("{op} {m}/{r}"));
    }
    for (service, ops) in by_service {
        println!("- {service}: {}", ops.join(", "));
    }
    println!();
    let all: Vec<f64> = stats.iter().filter_map(|s| s["peakKiB"].as_f64()).collect();
    println!(
        "Step binaries: start (exec to exit, `--version`) median {:.1} ms, max {:.1} ms over {} runs; peak resident memory during real steps median {:.1} MiB, max {:.1} MiB over {} step runs",
        median(starts.clone()),
        starts.iter().cloned().fold(0.0, f64::max),
        starts.len(),
        median(all.clone()) / 1024.0,
        all.iter().cloned().fold(0.0, f64::max) / 1024.0,
        all.len()
    );
    println!();
    println!("| step | runs | median s | peak MiB |");
    println!("|---|---:|---:|---:|");
    for (step, v) in &secs_by_step {
        println!("| {step} | {} | {:.2} | {:.1} |", v.len(), median(v.clone()), peak[step] as f64 / 1024.0);
    }
    println!();
    goals(
        &Goals {
            slow_walls,
            chain: (chain.execution, chain.longest),
            waits_17,
            first_17,
            first_17_target,
            again_17,
            first_17_total: first_17.0 + first_17.1,
        },
        &bulk,
    );
    if !bulk_ok {
        bail!("the bulk scenario did not finish cleanly (exit {code}, {throttle_failures} throttle failures)");
    }
    Ok(())
}

fn ensure(code: i32, what: &str) -> anyhow::Result<()> {
    if code != 0 {
        bail!("{what} failed (exit {code})");
    }
    Ok(())
}

/// Organization-wide setup, as (service, operation) in the call log: done once per bulk run, not
/// once per account (per region where the service is regional).
const ORG_WIDE_SETUP: &[(&str, &str)] = &[
    ("Organizations", "EnableAWSServiceAccess"),
    ("Organizations", "RegisterDelegatedAdministrator"),
    ("Organizations", "CreatePolicy"),
    ("GuardDuty", "EnableOrganizationAdminAccount"),
    ("GuardDuty", "UpdateOrganizationConfiguration"),
];

struct Bulk {
    accounts: u32,
    seconds: f64,
    /// Organizations calls per account, in the accounts' own runs.
    org_per_account: f64,
    /// Organizations calls once per bulk run: the CLI's checks and the organization step.
    org_once: usize,
    of_bound: f64,
    timeouts: u64,
    failures: u64,
    setup: String,
    org_rps: f64,
}

/// The 17-region onboarding at 50 ms per call before the local cloud had AWS's timeline
/// (transitions, deliveries), in seconds on this machine.
const BASELINE_17: f64 = 7.3;
