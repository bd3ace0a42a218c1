//! Bulk onboarding on the local cloud, under an emulated Organizations rate limit: a file of
//! accounts and an OU, one account's failure contained, zero throttle failures.

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
        assert_eq!(r["controls"], 53, "{r}");
        assert_eq!(r["controlsPassed"], 53, "{r}");
    }
    // Each account is its own run, listed and retriable on its own.
    let (code, out, _) = cloud.run(&["runs", "list", "--status", "failed", "--output", "json"]);
    assert_eq!(code, 0);
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["runId"], failed[0]["runId"]);
    let org_calls = cloud.calls().iter().filter(|c| c["service"] == "Organizations").count();
    assert!(org_calls > 0);

    // The whole OU, three at once: the held account and the two new ones onboard; the two done
    // before only re-check (no mutating call to their configuration).
    let ou = s("importedOu");
    let (code, out, err) = cloud.run(&["onboard", "--ou", &ou, "--concurrency", "3", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["succeeded"], 5, "{summary}");
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
