//! Resuming after failure, on the local cloud: a terminal failure holds the run; `assure runs
//! retry` completes it with only the failed and later steps acting; throttling on every call does
//! not stop a run or duplicate anything.

use std::collections::BTreeSet;

use assure_e2e::{Followed, LocalCloud};
use serde_json::{json, Value};

pub(crate) mod rollback;

const REGIONS: &str = "us-east-1,eu-west-1,us-west-2,eu-central-1";

/// The report's colours for completed and failed cells (`report.rs`'s CSS).
const GREEN: [u8; 3] = [0x2d, 0xa4, 0x4e];
const RED: [u8; 3] = [0xcf, 0x22, 0x2e];

/// The table with this id in a rendered DOM.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!(r#"<table id="{id}">"#)).unwrap_or_else(|| panic!("no table {id}"));
    let end = dom[start..].find("</table>").expect("the table ends") + start;
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_run_resumes_and_only_the_failed_and_later_steps_act() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let target = ids["external"][0].as_str().unwrap();

    // A terminal failure in the middle: the first of the alarms step's metric filters to arrive is
    // denied once. (A step of the home region only, so one record fails.)
    cloud.faults(
        json!([{"service": "logs", "operation": "PutMetricFilter", "error": "AccessDenied", "rate": 1.0, "count": 1}]),
    );
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "held", "--output", "json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let held = Followed::of(&out);
    assert_eq!((held.status(), held.error()), ("FAILED", "Assure.AccessDenied"), "{out}");
    let first = cloud.configuration_changes();
    cloud.faults(json!([]));

    // The checkpoints hold what was done: completed steps, and the failed one.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&cloud.pipeline_config().await).force_path_style(true).build(),
    );
    let listed = s3
        .list_objects_v2()
        .bucket(format!("assure-checkpoints-{}-us-east-1", cloud.pipeline_account()))
        .prefix("runs/held/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&"runs/held/logging-bucket/us-east-1.json"), "{keys:?}");
    let mut failed = Vec::new();
    let mut completed = BTreeSet::new();
    for k in &keys {
        let body = s3
            .get_object()
            .bucket(format!("assure-checkpoints-{}-us-east-1", cloud.pipeline_account()))
            .key(*k)
            .send()
            .await
            .unwrap();
        let rec: Value = serde_json::from_slice(&body.body.collect().await.unwrap().into_bytes()).unwrap();
        let text = rec.to_string();
        assert!(!text.contains("SecretAccessKey") && !text.contains("\"taskToken\""), "no credentials in {k}");
        if rec["status"] == "failed" {
            failed.push(format!("{}/{}", rec["step"].as_str().unwrap(), rec["region"].as_str().unwrap()));
        }
        if rec["status"] == "completed" {
            completed.insert((rec["step"].as_str().unwrap().to_owned(), rec["region"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(failed.len(), 1, "one failed step: {failed:?}");
    assert_eq!(failed[0], "alarms/us-east-1", "{failed:?}");

    // The auditor's view of the held run: the failed cell is red, the completed ones green.
    let report = cloud.dir.path().join("held-failed.html");
    let (code, _, err) = cloud.run(&["runs", "report", "held", "--out", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let page = assure_e2e::render(&report, 1280, 1600);
    let matrix = section(&page.dom, "matrix");
    assert!(matrix.contains(r#"<td class="cell failed">failed"#), "the failed alarms cell: {matrix}");
    assert!(page.count(RED) > 2_000, "the failed cell is visibly red: {} red pixels", page.count(RED));
    assert!(page.count(GREEN) > 20_000, "completed cells are visibly green: {} green pixels", page.count(GREEN));

    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["runs", "retry", "held", "--output", "json"]);
    assert_eq!(code, 0, "retry failed:\n{out}\n{err}");
    let retried = Followed::of(&out);
    assert_eq!((retried.status(), retried.verified(false)), ("SUCCEEDED", (92, 92)), "{out}");
    let retry = cloud.configuration_changes();
    let acting: BTreeSet<&str> = retry.iter().filter_map(|c| c["step"].as_str()).collect();
    // The alarms step runs beside the other controls' steps: those that had not finished when it
    // failed (their branches were stopped) act in the retry, and only they, each only in the
    // regions it had not finished.
    let again: Vec<(&str, &str)> = retry
        .iter()
        .filter_map(|c| Some((c["step"].as_str()?, c["region"].as_str()?)))
        .filter(|(step, region)| completed.contains(&(step.to_string(), region.to_string())))
        .collect();
    assert!(again.is_empty(), "steps completed before the failure acted again: {again:?} (completed {completed:?})");
    let steps: BTreeSet<&str> = completed.iter().map(|(step, _)| step.as_str()).collect();
    assert!(steps.contains("discover") && steps.contains("logging-bucket"), "{completed:?}");
    assert!(acting.contains("alarms"), "the failed step acted: {acting:?}");
    // The SCPs are attached beside the failed step: in the first run or in the retry, once.
    assert_ne!(steps.contains("scps"), acting.contains("scps"), "the SCPs: {acting:?} (completed {completed:?})");
    eprintln!("mutating calls: first run {} (held), retry {}, by step {:?}", first.len(), retry.len(), acting);

    // The run, as the audit commands show it: two executions, the latest succeeded; per step and
    // region the attempts, with the failed step's second attempt.
    let (code, out, err) = cloud.run(&["runs", "list", "--account", target, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let runs: Value = serde_json::from_str(&out).unwrap();
    let held = runs.as_array().unwrap().iter().find(|r| r["runId"] == "held").expect("the run is listed");
    assert_eq!(held["executions"], 2);
    assert_eq!(held["status"], "SUCCEEDED");
    let (code, out, err) = cloud.run(&["runs", "show", "held"]);
    assert_eq!(code, 0, "{err}");
    let failed_region = failed[0].split('/').nth(1).unwrap();
    let row = out.lines().find(|l| l.starts_with("alarms ") && l.contains(failed_region)).expect("an alarms row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[2], "completed", "{row}");
    assert_eq!(cols[3], "2", "the failed step's second attempt: {row}");
    let (_, out, _) = cloud.run(&["runs", "list", "--status", "failed", "--output", "json"]);
    assert_eq!(out.trim(), "[]", "no run is failed any more");

    let (_, out, _) = cloud.run(&["runs", "list", "--since", "1h", "--output", "json"]);
    assert!(out.contains("\"held\""), "started within the hour: {out}");
    let (_, out, _) = cloud.run(&["runs", "list", "--since", "2099-01-01", "--output", "json"]);
    assert_eq!(out.trim(), "[]", "nothing started in 2099");
    let (code, _, err) = cloud.run(&["runs", "list", "--since", "yesterday"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--since"), "the bad flag is named: {err}");

    // The timeline: both executions, the failed attempt with its error, the second attempt in the
    // retry, every state entered also exited, the changes with before and after values.
    let (code, out, err) = cloud.run(&["runs", "history", "held", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let timeline: Vec<Value> = serde_json::from_str(&out).unwrap();
    let is = |e: &Value, event: &str, step: &str| e["event"] == event && e["step"] == step;
    let failed_attempt = timeline.iter().find(|e| is(e, "TaskFailed", "alarms")).expect("the failed attempt");
    assert_eq!(failed_attempt["execution"], "held");
    assert_eq!(failed_attempt["attempt"], 1);
    assert!(failed_attempt["detail"].as_str().unwrap().contains("Assure.AccessDenied"), "{failed_attempt}");
    let second = timeline.iter().find(|e| is(e, "TaskSucceeded", "alarms")).expect("the second attempt");
    assert_eq!(second["execution"], "held-retry-1");
    assert_eq!(second["attempt"], 2);
    // Every state entered is exited, but a Fail state, which ends the execution, and states inside
    // the Parallel whose branch failed: the failed state has no Catch of its own, and the sibling
    // branches still running are stopped (which of them still ran is a race). Apply itself is
    // exited, through its Catch.
    let in_apply = ["CloudTrail", "StopCloudTrail", "Alarms", "StopGuardDuty", "GuardDuty"]
        .into_iter()
        .chain(["Config", "AccessAnalyzer", "SessionManager", "Scps"])
        .collect::<Vec<_>>();
    for (execution, failed) in [("held", true), ("held-retry-1", false)] {
        let mut states: Vec<&str> = Vec::new();
        let mut exits: Vec<&str> = Vec::new();
        for e in timeline.iter().filter(|e| e["execution"] == execution) {
            let state = e["state"].as_str().unwrap_or("");
            match e["event"].as_str().unwrap() {
                "StateEntered" => states.push(state),
                // Events of one millisecond may come in either order: exits are matched after.
                "StateExited" => exits.push(state),
                _ => {}
            }
        }
        for state in exits {
            let i = states.iter().position(|s| *s == state).expect("exited a state it entered");
            states.remove(i);
        }
        if failed {
            assert_eq!(states.last(), Some(&"Failed"), "{execution}: ends in Failed: {states:?}");
            assert!(states.contains(&"Alarms"), "{execution}: the failed state: {states:?}");
            let stray: Vec<&&str> = states.iter().filter(|s| **s != "Failed" && !in_apply.contains(s)).collect();
            assert!(stray.is_empty(), "{execution}: states outside the failed Parallel never exited: {stray:?}");
        } else {
            assert!(states.is_empty(), "{execution}: states entered and never exited: {states:?}");
        }
    }
    for execution in ["held", "held-retry-1"] {
        let entered = timeline.iter().filter(|e| e["event"] == "StateEntered" && e["execution"] == execution).count();
        assert!(entered >= 15, "{execution}'s states are in the timeline: {entered}");
    }
    // The alarms step writes its filters concurrently: which of them the denial hit, and which
    // others the first attempt made before it failed, is a race. Its second attempt creates at
    // least the denied one.
    let change = timeline
        .iter()
        .find(|e| e["event"] == "Change" && e["step"] == "alarms" && e["change"]["before"].is_null())
        .expect("a change of the alarms step creating what the first attempt could not");
    assert!(change["change"]["before"].is_null() && change["change"]["after"].is_object(), "{change}");
    let at: Vec<&str> = timeline.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // The report, in its three forms.
    let (code, out, err) = cloud.run(&["runs", "report", "held", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let audit: Value = serde_json::from_str(&out).unwrap();
    let controls = audit["controls"].as_array().unwrap();
    // The controls, and the proof of each delivery path in each region (deliveries.*).
    let proofs = controls.iter().filter(|c| c["control"].as_str().unwrap().starts_with("deliveries.")).count();
    assert_eq!(controls.len() - proofs, 92);
    assert!(proofs >= 17, "4 regions × 4 paths and the alarm: {proofs}");
    assert!(controls.iter().all(|c| c["passed"] == true && c["verifiedAt"].is_string() && c["spec"] != ""));
    let trail = controls.iter().find(|c| c["control"] == "cloudtrail.all-regions").unwrap();
    assert_eq!(trail["cis"], serde_json::json!({"v7.0.0": "4.1", "v3.0.0": "3.1", "v1.4.0": "3.1"}));
    assert_eq!(trail["spec"], "CloudTrail is enabled in all regions");
    let (code, out, _) = cloud.run(&["runs", "report", "held", "--format", "md"]);
    assert_eq!(code, 0);
    assert!(out.contains("| alarms | completed ×2"), "the retried step's two attempts: {out}");
    assert!(
        out.contains(
            "| `cloudtrail.all-regions` | CloudTrail is enabled in all regions | 4.1 (v3.0.0 3.1, v1.4.0 3.1) |"
        ),
        "{out}"
    );
    let report = cloud.dir.path().join("held.html");
    let (code, _, err) = cloud.run(&["runs", "report", "held", "--out", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("92/92 controls"), "{err}");
    let page = assure_e2e::render(&report, 1280, 1600);
    let matrix = section(&page.dom, "matrix");
    assert_eq!(matrix.matches("<tr>").count(), 15, "a header and 14 steps: {matrix}");
    assert_eq!(matrix.matches(r#"class="cell completed""#).count(), 8 + 6 * 4, "{matrix}");
    assert!(!matrix.contains("cell failed"), "{matrix}");
    assert!(page.count(GREEN) > 40_000, "the matrix is visible in green: {} green pixels", page.count(GREEN));
    assert_eq!(
        section(&page.dom, "evidence").matches("<tr>").count(),
        93 + proofs,
        "92 controls, the deliveries proven and a header"
    );
    assert!(page.dom.contains(r#"<span id="status" class="badge SUCCEEDED">SUCCEEDED</span>"#));

    for cmd in ["history", "report", "show"] {
        let (code, _, err) = cloud.run(&["runs", cmd, "no-such-run"]);
        assert_eq!(code, 2, "runs {cmd}: {err}");
        assert!(err.contains("run no-such-run: no such run"), "runs {cmd}: {err}");
    }

    // A run that succeeded has nothing to retry.
    let (code, _, err) = cloud.run(&["runs", "retry", "held"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing to retry"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn onboarding_succeeds_under_throttling_on_every_call_without_duplicates() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let target = ids["external"][0].as_str().unwrap();
    cloud.faults(json!([{"service": "*", "operation": "*", "error": "throttle", "rate": 0.2, "count": 100000}]));
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "throttled", "--output", "json"]);
    let fired: Value =
        serde_json::from_str(&assure_e2e::http(&cloud.endpoint, "GET", "/assure-api/faults", "")).unwrap();
    cloud.faults(json!([]));
    assert_eq!(code, 0, "onboard under throttling failed:\n{out}\n{err}");
    assert_eq!(Followed::of(&out).verified(false), (92, 92), "{out}");
    let injected = fired["rules"][0]["fired"].as_u64().unwrap();
    assert!(injected > 50, "throttling was injected: {injected}");
    eprintln!("{injected} calls throttled");

    // No duplicates: one of each thing assure creates.
    for region in REGIONS.split(',') {
        let conf = cloud.sdk_config_as(target, region).await;
        let recs = aws_sdk_config::Client::new(&conf).describe_configuration_recorders().send().await.unwrap();
        assert_eq!(recs.configuration_recorders().len(), 1, "{region}");
        let dets = aws_sdk_guardduty::Client::new(&conf).list_detectors().send().await.unwrap();
        assert_eq!(dets.detector_ids().len(), 1, "{region}");
        // The test looks as the account's administrator: listing analyzers is not assure's need.
        let sec = cloud.admin_config_as(ids["security"].as_str().unwrap(), region).await;
        let analyzers = aws_sdk_accessanalyzer::Client::new(&sec).list_analyzers().send().await.unwrap();
        assert_eq!(analyzers.analyzers().len(), 1, "{region}");
    }
    let use1 = cloud.sdk_config_as(target, "us-east-1").await;
    let trails = aws_sdk_cloudtrail::Client::new(&use1).describe_trails().send().await.unwrap();
    assert_eq!(trails.trail_list().iter().filter(|t| t.name() == Some("assure-trail")).count(), 1);
    let orgs = aws_sdk_organizations::Client::new(&cloud.sdk_config().await);
    let pols = orgs
        .list_policies_for_target()
        .target_id(target)
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = pols.policies().iter().filter_map(|p| p.name()).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("assure-")).count(), 3, "{names:?}");
    let all = orgs
        .list_policies()
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    assert_eq!(all.policies().iter().filter(|p| p.name().is_some_and(|n| n.starts_with("assure-"))).count(), 4);
}

/// PIDs of the step binary's processes for `step` (its function's `ASSURE_STEP`) started by this
/// cloud's worker.
fn step_pids(cloud: &LocalCloud, step: &str) -> Vec<u32> {
    let marker = format!("ASSURE_LOCAL_DIR={}", cloud.dir.path().display());
    let configured = format!("ASSURE_STEP={step}");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let program = cmd.split(|b| *b == 0).next().unwrap_or_default();
        if !String::from_utf8_lossy(program).ends_with(&format!("/{}", assure_core::contract::STEP_BINARY)) {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        if vars.contains(&marker.as_bytes()) && vars.contains(&configured.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_step_does_not_stop_the_run() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1,eu-west-1");
    let target = ids["external"][0].as_str().unwrap().to_owned();
    let onboard = cloud
        .assure()
        .args(["onboard", &target, "--run-id", "killed"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) for the alarms step to start, then kill it with SIGKILL, by its PID.
    let killed = assure_e2e::eventually_every(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(5),
        "the alarms step started",
        || step_pids(&cloud, "alarms").first().copied().ok_or_else(|| "no alarms step process".to_owned()),
    );
    let status = std::process::Command::new("kill").args(["-9", &killed.to_string()]).status().unwrap();
    assert!(status.success());
    let out = onboard.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the run did not survive killing {killed}:\n{stdout}\n{stderr}");
    assert!(stdout.contains("SUCCEEDED"), "{stdout}");
    assert!(stderr.contains("✓ alarms"), "the alarms step completed after the kill:\n{stderr}");

    // No duplicates: one alarm and one filter per filter assure keeps (the benchmark's and the
    // scanners'), one topic.
    let kept = assure_core::controls::alarms::all_filters().count();
    let conf = cloud.sdk_config_as(&target, "us-east-1").await;
    let alarms =
        aws_sdk_cloudwatch::Client::new(&conf).describe_alarms().alarm_name_prefix("assure-").send().await.unwrap();
    assert_eq!(alarms.metric_alarms().len(), kept);
    let filters = aws_sdk_cloudwatchlogs::Client::new(&conf)
        .describe_metric_filters()
        .log_group_name("assure/cloudtrail")
        .send()
        .await
        .unwrap();
    assert_eq!(filters.metric_filters().len(), kept);
}

/// A retry started while a step of the failed execution still runs: the session-manager step is
/// denied (the Apply stage fails, and with it the execution) while the config step's worker waits
/// on a slow call. The retry's config task must wait for that worker, whose claim it renews, and
/// take its result, not run the step a second time beside it.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_waits_for_a_step_the_failed_execution_still_runs() {
    let cloud = LocalCloud::start_with(&[("ASSURE_HEARTBEAT_SECONDS", "0.2")]);
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    // Only these steps make these calls (the seed's account has Session Manager's preferences
    // document in us-east-1, so the step updates it).
    cloud.faults(json!([
        {"service": "config", "operation": "PutConfigurationRecorder", "error": "delay", "delayMs": 12000, "count": 1},
        {"service": "ssm", "operation": "UpdateDocument", "error": "AccessDenied", "count": 1}
    ]));
    // The local cloud's own record of what it authorized (the seed's writes are in it too).
    let puts = |cloud: &LocalCloud| {
        cloud
            .decisions()
            .iter()
            .filter(|d| d["action"] == "config:PutConfigurationRecorder" && d["account"] == target)
            .count()
    };
    let seeded = puts(&cloud);
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "overlap", "--output", "json"]);
    cloud.faults(json!([]));
    assert_eq!(code, 1, "{out}\n{err}");
    let overlap = Followed::of(&out);
    assert_eq!((overlap.status(), overlap.error()), ("FAILED", "Assure.AccessDenied"), "{out}");
    assert_eq!(puts(&cloud), seeded, "the config step's call was still held when the execution failed");

    let (code, out, err) = cloud.run(&["runs", "retry", "overlap", "--output", "json"]);
    assert_eq!(code, 0, "retry failed:\n{out}\n{err}");
    assert_eq!(Followed::of(&out).status(), "SUCCEEDED", "{out}");
    // The first attempt's record stands (a takeover would be attempt 2, and the held call, landing
    // later, a second write).
    let (code, out, err) = cloud.run(&["runs", "show", "overlap"]);
    assert_eq!(code, 0, "{err}");
    let row = out.lines().find(|l| l.starts_with("config ")).unwrap_or_else(|| panic!("a config row:\n{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cols[2], cols[3]), ("completed", "1"), "one attempt of config: {row}");
    assert_eq!(puts(&cloud), seeded + 1, "the config step wrote once, in the failed execution's worker");
    let log = std::fs::read_to_string(cloud.dir.path().join("worker.log")).unwrap_or_default();
    assert!(log.contains("running in another worker; waiting for it"), "the retry's worker waited");
}

/// A step whose workers can never answer (every `SendTaskSuccess` of the alarms step's role gets a
/// 5xx): SQS delivers the message again each time its holder lets it go, five times, then moves it
/// to the dead-letter queue, whose consumer fails the task with `Assure.Internal` naming the queue.
/// The run ends then, not at the task's one-hour timeout; a retry, with the answers going through,
/// resumes from the checkpoint the step wrote.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_no_worker_can_answer_fails_from_the_dead_letter_queue() {
    let cloud = LocalCloud::start_with(&[("ASSURE_HEARTBEAT_SECONDS", "0.2")]);
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    cloud.faults(json!([{"service": "states", "operation": "SendTaskSuccess", "error": "5xx", "rate": 1.0,
                         "count": 1000, "caller": "assure-step-alarms"}]));
    let started = std::time::Instant::now();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "dead", "--output", "json"]);
    let took = started.elapsed();
    cloud.faults(json!([]));
    assert_eq!(code, 1, "{out}\n{err}");
    let dead = Followed::of(&out);
    let failed = dead.events.iter().find(|e| e["event"] == "stepFailed" && e["step"] == "alarms");
    let failed = failed.unwrap_or_else(|| panic!("alarms did not fail:\n{out}"));
    assert_eq!(failed["error"], "Assure.Internal", "{failed}");
    assert!(failed["cause"].as_str().unwrap_or_default().contains("assure-alarms-dlq"), "{failed}");
    assert!(took < std::time::Duration::from_secs(600), "the run waited {took:?}");
    let log = std::fs::read_to_string(cloud.dir.path().join("worker.log")).unwrap_or_default();
    assert!(log.contains("came back"), "the message was delivered again before it reached the dead-letter queue");

    let (code, out, err) = cloud.run(&["runs", "retry", "dead", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(Followed::of(&out).status(), "SUCCEEDED", "{out}");
}

/// The service-roles step failing (its session in the account refused) fails the run in the
/// Prepare stage, naming the step and the error, before any control's step acts; the retry
/// resumes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_service_roles_step_stops_the_run_before_the_controls_and_the_retry_resumes() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    cloud.faults(json!([{"service": "sts", "operation": "AssumeRole", "error": "AccessDenied", "rate": 1.0,
                         "count": 1000, "caller": "assure-step-service-roles"}]));
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "roles", "--output", "json"]);
    cloud.faults(json!([]));
    assert_eq!(code, 1, "{out}\n{err}");
    let roles = Followed::of(&out);
    let failed = roles.events.iter().find(|e| e["event"] == "stepFailed" && e["step"] == "service-roles");
    let failed = failed.unwrap_or_else(|| panic!("no failure:\n{out}"));
    assert_eq!(failed["error"], "Assure.AccessDenied", "{failed}");
    assert!(failed["cause"].as_str().unwrap_or_default().contains("sts:AssumeRole"), "{failed}");
    for step in ["cloudtrail", "access-analyzer", "config", "scps"] {
        assert!(!roles.started(step), "{step} started after the Prepare stage failed:\n{out}");
    }
    let (code, out, err) = cloud.run(&["runs", "retry", "roles", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(Followed::of(&out).status(), "SUCCEEDED", "{out}");
}

/// A step's first attempt starts from what the run's discover read instead of reading again; when
/// the account changed since (here: onboarded by another run), the step's write is refused and the
/// step runs once more reading everything, and completes without changing anything.
#[tokio::test(flavor = "multi_thread")]
async fn a_step_starting_from_what_discover_read_reads_again_when_the_account_changed_since() {
    use assure_contract::{RunInput, StepName, TaskMessage};
    use assure_core::pipeline::worker::{handle_message, Outcome};

    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let target = ids["external"][0].as_str().unwrap();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "seen"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // A second run whose discover "read" the account as it was before the first run: no
    // preferences document, no detector.
    let base = cloud.pipeline_config().await;
    let sfn = aws_sdk_sfn::Client::new(&base);
    let exec = sfn
        .describe_execution()
        .execution_arn(format!(
            "arn:aws:states:us-east-1:{}:execution:assure-onboarding:seen",
            cloud.pipeline_account()
        ))
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(exec.input().unwrap()).unwrap();
    let mut run: RunInput = serde_json::from_value(input["run"].clone()).unwrap();
    run.run_id = "stale".parse().unwrap();
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&base).force_path_style(true).build());
    let bucket = &format!("assure-checkpoints-{}-us-east-1", cloud.pipeline_account());
    let seen = s3.get_object().bucket(bucket).key("before/seen.json").send().await.expect("discover kept what it read");
    let mut before: Value = serde_json::from_slice(&seen.body.collect().await.unwrap().into_bytes()).unwrap();
    // The regions the seed left empty (the others hold its brownfield setup, which the first run
    // took over: their stale view would only have the step write what is there already).
    let empty = ["us-west-2", "eu-central-1"];
    before.as_object_mut().unwrap().retain(|region, _| empty.contains(&region.as_str()));
    for region in empty {
        assert!(before[region]["sessionManager"].is_null(), "no preferences in {region}: {before}");
        assert_eq!(before[region]["guardduty"], json!([]), "no detector in {region}: {before}");
    }
    s3.put_object()
        .bucket(bucket)
        .key("before/stale.json")
        .body(before.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    // As in any run, its logging-bucket step ran before (the steps take the logging key from it).
    s3.copy_object()
        .bucket(bucket)
        .copy_source(format!("{bucket}/runs/seen/logging-bucket/us-east-1.json"))
        .key("runs/stale/logging-bucket/us-east-1.json")
        .send()
        .await
        .unwrap();

    let decided = cloud.decisions().len();
    for step in [StepName::SessionManager, StepName::GuardDuty] {
        // As the step's function: its role's session, as Lambda gets it.
        let aws = assure_core::aws::Aws::from_sdk_config(cloud.step_config(step).await).await.unwrap();
        let task = TaskMessage {
            task_token: format!("not-a-task-{}", step.as_str()),
            step,
            region: run.home_region.clone(),
            run: run.clone(),
            execution: None,
            event: None,
        };
        let body = serde_json::to_string(&task).unwrap();
        let outcome = handle_message(aws, &body, Some(step), None).await.expect("answered");
        // Nobody waits for this made-up task; what counts is its checkpoint.
        assert_eq!(outcome, Outcome::Abandoned, "{step}");
        for region in REGIONS.split(',') {
            let key = format!("runs/stale/{}/{region}.json", step.as_str());
            let rec = s3.get_object().bucket(bucket).key(&key).send().await.unwrap();
            let rec: Value = serde_json::from_slice(&rec.body.collect().await.unwrap().into_bytes()).unwrap();
            assert_eq!(rec["status"], "completed", "{key}: {rec}");
            assert_eq!(rec["output"]["changes"], json!([]), "{key}: nothing to change: {rec}");
        }
    }
    // It did start from what discover read: it tried to create what was there already.
    let tried: Vec<String> = cloud.decisions()[decided..]
        .iter()
        .filter(|d| d["account"] == target)
        .filter_map(|d| d["action"].as_str().map(str::to_owned))
        .collect();
    for action in ["ssm:CreateDocument", "guardduty:CreateDetector"] {
        assert!(tried.iter().any(|a| a == action), "{action} not tried: {tried:?}");
    }
    assert!(
        cloud
            .mutating_decisions_since(decided)
            .iter()
            .all(|d| d.starts_with("ssm:CreateDocument") || d.starts_with("guardduty:CreateDetector")),
        "only the refused creates: {:?}",
        cloud.mutating_decisions_since(decided)
    );
}
