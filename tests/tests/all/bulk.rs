//! Bulk onboarding on the local cloud, under an emulated Organizations rate limit: a file of
//! accounts and an OU, one account's failure contained, zero throttle failures, the organization's
//! part done once per bulk run.

use assure_e2e::LocalCloud;
use serde_json::{json, Value};

const RPS: &str = "5";

#[tokio::test(flavor = "multi_thread")]
async fn many_accounts_onboard_under_the_organizations_limit_and_a_failure_stays_with_its_account() {
    let cloud = LocalCloud::start_with(&[("ASSURE_ORGANIZATIONS_RPS", RPS)]);
    let ids = cloud.seed_accounts_and_deploy(5, "us-east-1,eu-west-1");
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let accounts: Vec<&str> = ids["external"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();

    // A bad file is refused before anything starts, naming the line.
    let bad = cloud.dir.path().join("bad.txt");
    std::fs::write(&bad, format!("{}\n12345  # typo\n", accounts[0])).unwrap();
    cloud.reset_calls();
    let (code, _, err) = cloud.run(&["onboard", "--accounts-file", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.txt:2: account id \"12345\" is not valid"), "{err}");
    assert!(cloud.calls().iter().all(|c| c["operation"] != "StartExecution"), "nothing started");

    // Three accounts from a file, two at once, Organizations limited to 5 requests a second; the
    // first alarms step to run is denied once, so exactly one account fails.
    cloud.limits(json!({"limits": [{"service": "organizations", "rps": 5}]}));
    cloud.faults(
        json!([{"service": "logs", "operation": "PutMetricFilter", "error": "AccessDenied", "rate": 1.0, "count": 1}]),
    );
    let file = cloud.dir.path().join("accounts.txt");
    std::fs::write(&file, format!("# imported in November\n{}\n{}\n{}\n", accounts[0], accounts[1], accounts[2]))
        .unwrap();
    cloud.reset_calls();
    let (code, out, err) =
        cloud.run(&["onboard", "--accounts-file", file.to_str().unwrap(), "--concurrency", "2", "--output", "json"]);
    cloud.faults(json!([]));
    assert_eq!(code, 1, "one account failed:\n{out}\n{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    let results = summary["accounts"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    let failed: Vec<&Value> = results.iter().filter(|r| r["status"] != "SUCCEEDED").collect();
    assert_eq!(failed.len(), 1, "{results:?}");
    assert!(failed[0]["error"].as_str().unwrap().contains("Assure.AccessDenied"), "{:?}", failed[0]);
    for r in results.iter().filter(|r| r["status"] == "SUCCEEDED") {
        assert_eq!(r["controls"], 63, "{r}");
        assert_eq!(r["controlsPassed"], 63, "{r}");
    }
    // Each account is its own run, listed and retriable on its own.
    let (code, out, _) = cloud.run(&["runs", "list", "--status", "failed", "--output", "json"]);
    assert_eq!(code, 0);
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["runId"], failed[0]["runId"]);
    let calls = cloud.calls();
    organization_work_once(&calls, 3);
    // The accounts went to the checkpoint bucket, not into the execution's input: the Distributed
    // Map read them there and wrote its results beside them.
    let bulk = summary["bulkId"].as_str().unwrap();
    let s3 = aws_sdk_s3::Client::new(&cloud.pipeline_config().await);
    let bucket = &format!("assure-checkpoints-{}-us-east-1", cloud.pipeline_account());
    let object = |key: String| {
        let s3 = s3.clone();
        async move {
            let out = s3.get_object().bucket(bucket).key(&key).send().await.unwrap_or_else(|e| panic!("{key}: {e:?}"));
            serde_json::from_slice::<Value>(&out.body.collect().await.unwrap().into_bytes()).unwrap()
        }
    };
    let listed = object(assure_core::pipeline::bulk::accounts_key(bulk)).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    let sfn = aws_sdk_sfn::Client::new(&cloud.pipeline_config().await);
    let execution =
        sfn.describe_execution().execution_arn(summary["executionArn"].as_str().unwrap()).send().await.unwrap();
    let input: Value = serde_json::from_str(execution.input().unwrap()).unwrap();
    assert!(
        input.get("runs").is_none() && !input.to_string().contains(accounts[2]),
        "the accounts are not in it: {input}"
    );
    let outputs = s3.list_objects_v2().bucket(bucket).prefix(format!("runs/{bulk}/results/")).send().await.unwrap();
    let manifest = outputs.contents().iter().filter_map(|o| o.key()).find(|k| k.ends_with("/manifest.json"));
    let manifest = object(manifest.expect("the Map's ResultWriter manifest").to_owned()).await;
    let files = manifest["ResultFiles"]["SUCCEEDED"].as_array().unwrap();
    let written = object(files[0]["Key"].as_str().unwrap().to_owned()).await;
    assert_eq!(written.as_array().map(Vec::len), Some(3), "one result per account: {written}");

    // The whole OU, three at once: the held account and the two new ones onboard; the two done
    // before only re-check (no mutating call to their configuration).
    let ou = s("importedOu");
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["onboard", "--ou", &ou, "--concurrency", "3", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["succeeded"], 5, "{summary}");
    organization_work_once(&cloud.calls(), 5);
    let onboarded_before: Vec<&str> =
        results.iter().filter(|r| r["status"] == "SUCCEEDED").map(|r| r["account"].as_str().unwrap()).collect();
    for r in summary["accounts"].as_array().unwrap() {
        if onboarded_before.contains(&r["account"].as_str().unwrap()) {
            assert_eq!(r["changes"], 0, "already onboarded: {r}");
        }
    }

    // Zero throttle failures: throttled answers (if any) were retried inside the steps, and no task
    // failed for throttling in any run.
    let counters = cloud.limit_counters();
    eprintln!("Organizations limiter: {counters}");
    assert!(counters["allowed"]["organizations"].as_u64().unwrap() > 0);
    for r in summary["accounts"].as_array().unwrap().iter().chain(results) {
        let (code, out, _) = cloud.run(&["runs", "history", r["runId"].as_str().unwrap(), "--output", "json"]);
        assert_eq!(code, 0);
        let timeline: Vec<Value> = serde_json::from_str(&out).unwrap();
        for e in timeline.iter().filter(|e| e["event"] == "TaskFailed") {
            let detail = e["detail"].as_str().unwrap();
            assert!(!detail.contains("TooManyRequests") && !detail.contains("Throttl"), "a throttle failure: {e}");
        }
    }
}

/// The organization-wide setup happens in the bulk run's organization step alone, and each
/// account's run makes at most 8 calls to Organizations (the accounts' calls: not the CLI's, not the
/// organization step's): its membership, its attached SCPs (read by preflight and by the scps step),
/// attaching the three policies, verify's listing; one more where a failed run lists them again.
fn organization_work_once(calls: &[Value], accounts: usize) {
    for op in ["CreatePolicy", "UpdatePolicy", "RegisterDelegatedAdministrator", "EnableOrganizationAdminAccount"] {
        let outside: Vec<&Value> =
            calls.iter().filter(|c| c["operation"] == op && c["step"] != "organization").collect();
        assert!(outside.is_empty(), "{op} outside the organization step: {outside:?}");
    }
    let org = |step: &str| calls.iter().filter(|c| c["service"] == "Organizations" && c["step"] == step).count();
    let total = calls.iter().filter(|c| c["service"] == "Organizations").count();
    let per_account = total - org("organization") - org("");
    eprintln!(
        "Organizations calls: {total}; the CLI {}, the organization step {}, the {accounts} accounts' runs {per_account}",
        org(""),
        org("organization")
    );
    assert!(org("organization") > 0, "the organization step ran");
    assert!(per_account <= 8 * accounts, "{per_account} Organizations calls for {accounts} accounts");
}

/// Seconds since the epoch of an RFC 3339 time (the history's and the checkpoints').
fn seconds(at: &str) -> f64 {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// Tasks wait in the queue behind the functions' concurrency for many times the liveness window
/// (extensions every 0.2 s: a held message not extended for 1 s comes back), as they do in a bulk
/// run at concurrency 40 against a `StepConcurrency` of 5. Step Functions counts a Task's heartbeat
/// from when the message is sent; the message's visibility counts from when a worker holds it.
/// Every account onboards, no task times out, and no step runs twice.
#[tokio::test(flavor = "multi_thread")]
async fn tasks_waiting_in_the_queue_far_longer_than_the_liveness_window_neither_time_out_nor_run_twice() {
    // The local cloud's own delays, not the harness's shorter ones: the steps take long enough
    // that tasks queue behind them for many liveness windows (asserted below).
    let cloud = LocalCloud::start_with(&[
        ("ASSURE_HEARTBEAT_SECONDS", "0.2"),
        ("ASSURE_WORKER_CONCURRENCY", "2"),
        ("ASSURE_WORKER_ORG_CONCURRENCY", "1"),
        ("ASSURE_TRANSITION_SECONDS", "2"),
        ("ASSURE_IAM_PROPAGATION_SECONDS", "3"),
    ]);
    let ids = cloud.seed_accounts_and_deploy(3, "us-east-1,eu-west-1");
    let accounts: Vec<&str> = ids["external"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let file = cloud.dir.path().join("accounts.txt");
    std::fs::write(&file, accounts.join("\n")).unwrap();
    let (code, out, err) =
        cloud.run(&["onboard", "--accounts-file", file.to_str().unwrap(), "--concurrency", "3", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["succeeded"], 3, "{summary}");

    let s3 = aws_sdk_s3::Client::new(&cloud.pipeline_config().await);
    let bucket = &format!("assure-checkpoints-{}-us-east-1", cloud.pipeline_account());
    let mut longest_wait = 0.0_f64;
    for r in summary["accounts"].as_array().unwrap() {
        let run = r["runId"].as_str().unwrap();
        let (code, out, _) = cloud.run(&["runs", "history", run, "--output", "json"]);
        assert_eq!(code, 0);
        let timeline: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert!(!timeline.iter().any(|e| e["event"] == "TaskTimedOut"), "{run}: a task timed out");
        let scheduled: Vec<&Value> = timeline.iter().filter(|e| e["event"] == "TaskScheduled").collect();
        assert!(scheduled.len() >= 10, "{run}: {scheduled:?}");
        for e in &scheduled {
            if e["step"] == "verify" && e["attempt"] != 1 {
                // Verify is scheduled again by the state machine's Retry after it failed
                // Assure.Retryable (controls AWS is still making, canaries on their way), and only so.
                let retryable = timeline.iter().any(|f| {
                    f["event"] == "TaskFailed"
                        && f["step"] == "verify"
                        && f["detail"].as_str().unwrap_or_default().starts_with("Assure.Retryable")
                });
                assert!(retryable, "{run}: verify was scheduled again without failing Retryable: {e}");
                continue;
            }
            assert_eq!(e["attempt"], 1, "{run}: a task was scheduled again: {e}");
            // A regional step's one task covers every region, each under its own checkpoint.
            let regions: Vec<&str> = match e["region"].as_str().unwrap() {
                "all regions" => vec!["us-east-1", "eu-west-1"],
                one => vec![one],
            };
            for region in regions {
                // When a worker took the task up: its checkpoint's start.
                let key = format!("runs/{run}/{}/{region}.json", e["step"].as_str().unwrap());
                let body = s3.get_object().bucket(bucket).key(&key).send().await.unwrap().body.collect().await.unwrap();
                let rec: Value = serde_json::from_slice(&body.into_bytes()).unwrap();
                assert_eq!(rec["status"], "completed", "{key}: {rec}");
                // Verify is tried again while the run's delivery canaries are on their way
                // (Assure.Retryable, by the state machine): that is not a message taken for dead.
                if e["step"] != "verify" {
                    assert_eq!(rec["attempt"], 1, "{key}: the step ran twice (its message was taken for dead)");
                }
                let wait = seconds(rec["startedAt"].as_str().unwrap()) - seconds(e["at"].as_str().unwrap());
                longest_wait = longest_wait.max(wait);
            }
        }
    }
    eprintln!("longest queue wait: {longest_wait:.1} s");
    assert!(longest_wait > 3.0, "the tasks hardly waited ({longest_wait:.1} s); the test proves nothing");
    let log = std::fs::read_to_string(cloud.dir.path().join("worker.log")).unwrap_or_default();
    assert!(!log.contains("taking over") && !log.contains("came back"), "a waiting message was taken for dead");
}

/// The organization step, first and once: when it fails no account starts; a retried attempt takes
/// its own checkpoint over; a policy someone weakened since is put back to assure's content, once
/// for every account of the bulk run.
#[tokio::test(flavor = "multi_thread")]
async fn the_organization_step_runs_before_any_account_and_puts_the_organization_back() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_accounts_and_deploy(2, "us-east-1");
    let accounts: Vec<&str> = ids["external"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let file = cloud.dir.path().join("accounts.txt");
    std::fs::write(&file, accounts.join("\n")).unwrap();
    let bulk = || cloud.run(&["onboard", "--accounts-file", file.to_str().unwrap(), "--output", "json"]);
    let only_org_step = |rule: Value| {
        let mut rule = rule;
        rule["caller"] = json!("assure-step-organization");
        cloud.faults(json!([rule]));
    };

    // Denied in the organization step: the bulk run fails before any account's run starts.
    only_org_step(
        json!({"service": "organizations", "operation": "CreatePolicy", "error": "AccessDenied", "count": 1}),
    );
    let (code, out, err) = bulk();
    assert_ne!(code, 0, "{out}\n{err}");
    let (code, out, _) = cloud.run(&["runs", "list", "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap(), Vec::<Value>::new(), "no account's run started");

    // Throttled for longer than the SDK's own attempts (6, or 8 for Organizations on Lambda), so
    // the task fails retryable: Step Functions retries it, and the new attempt takes over the
    // step's checkpoint; then every account onboards.
    only_org_step(json!({"service": "organizations", "operation": "ListPolicies", "error": "throttle", "count": 9}));
    let (code, out, err) = bulk();
    cloud.faults(json!([]));
    assert_eq!(code, 0, "{out}\n{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["succeeded"], 2, "{summary}");
    let reads =
        cloud.calls().into_iter().filter(|c| c["operation"] == "GetObject" && c["step"] == "organization").count();
    assert!(reads > 0, "the retried organization task read the checkpoint its first attempt left");

    // Someone weakens a policy: the next bulk run's organization step puts it back, once.
    let orgs = aws_sdk_organizations::Client::new(&cloud.sdk_config().await);
    let listed = orgs
        .list_policies()
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let scp = listed.policies().iter().find(|p| p.name().is_some_and(|n| n.starts_with("assure-"))).unwrap();
    let content = |id: &str| {
        let orgs = orgs.clone();
        let id = id.to_owned();
        async move {
            let out = orgs.describe_policy().policy_id(id).send().await.unwrap();
            serde_json::from_str::<Value>(out.policy().and_then(|p| p.content()).unwrap()).unwrap()
        }
    };
    let before = content(scp.id().unwrap()).await;
    let mut weaker = before.clone();
    weaker["Statement"].as_array_mut().unwrap().truncate(1);
    orgs.update_policy().policy_id(scp.id().unwrap()).content(weaker.to_string()).send().await.unwrap();
    cloud.reset_calls();
    let (code, out, err) = bulk();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(content(scp.id().unwrap()).await, before, "the policy is assure's again");
    let updates: Vec<Value> = cloud.calls().into_iter().filter(|c| c["operation"] == "UpdatePolicy").collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["step"], "organization");

    // Centralized root access: the organization step enables it once, each account's run removes
    // its root user's password.
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&[
        "onboard",
        "--accounts-file",
        file.to_str().unwrap(),
        "--root-access",
        "centralized",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let enabled: Vec<Value> = cloud
        .calls()
        .into_iter()
        .filter(|c| c["operation"].as_str().is_some_and(|o| o.starts_with("EnableOrganizationsRoot")))
        .collect();
    assert_eq!(enabled.len(), 2, "{enabled:?}");
    assert!(enabled.iter().all(|c| c["step"] == "organization"), "{enabled:?}");
    for account in &accounts {
        let state = cloud.root_user(account);
        assert!(state["password"].is_null(), "{account}: {state}");
    }
}
