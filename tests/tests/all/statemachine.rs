//! The state machine definitions, checked offline: every Task dispatches to a step that has a
//! binary, every error name is from the closed set, every wait and retry is bounded, every
//! placeholder is one the deployment substitutes.

use std::collections::{BTreeSet, HashSet};

use assure_contract::{ErrorName, StepName, STEP_BINARY};
use assure_core::pipeline::resources::{placeholder, ONBOARDING_ASL};
use serde_json::Value;

fn definition() -> Value {
    serde_json::from_str(ONBOARDING_ASL).expect("onboarding.asl.json is JSON")
}

/// Every state of a definition, nested Map processors included: (name, state).
/// The bulk machine's bound on one account's onboarding (its child execution's TimeoutSeconds).
fn bulk_child_timeout() -> u64 {
    let def: Value = serde_json::from_str(assure_core::pipeline::resources::BULK_ASL).expect("bulk.asl.json is JSON");
    def["States"]["Accounts"]["ItemProcessor"]["States"]["Onboard"]["TimeoutSeconds"].as_u64().expect("child timeout")
}

fn states(def: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, st) in def["States"].as_object().expect("States") {
        out.push((name.clone(), st.clone()));
        for inner in ["ItemProcessor", "Iterator"] {
            if st[inner].is_object() {
                out.extend(states(&st[inner]));
            }
        }
        for b in st["Branches"].as_array().into_iter().flatten() {
            out.extend(states(b));
        }
    }
    out
}

#[test]
fn every_task_dispatches_to_a_step_the_step_binary_runs() {
    let cargo = include_str!("../../../steps/Cargo.toml");
    assert!(cargo.contains(&format!("name = \"{STEP_BINARY}\"")), "the one step binary");
    let template = assure_core::pipeline::infra::pipeline_template();
    // The function that reads a step's queue runs the step binary configured with that step.
    let runs = |s: StepName| {
        let f = template["Resources"]
            .as_object()
            .unwrap()
            .values()
            .find(|r| r["Properties"]["FunctionName"] == s.function_name())
            .unwrap_or_else(|| panic!("no function {}", s.function_name()));
        f["Properties"]["Environment"]["Variables"]["ASSURE_STEP"] == s.as_str()
            && f["Properties"]["CodeUri"] == format!("../target/lambda/{STEP_BINARY}/")
    };
    let mut seen = BTreeSet::new();
    for (name, st) in states(&definition()) {
        if st["Type"] != "Task" {
            continue;
        }
        assert_eq!(st["Resource"], "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "{name}");
        let body = &st["Parameters"]["MessageBody"];
        assert_eq!(body["taskToken.$"], "$$.Task.Token", "{name} passes the task token");
        let step = body["step"].as_str().unwrap_or_else(|| panic!("{name} names its step"));
        let step = StepName::parse(step).unwrap_or_else(|| panic!("{name}: unknown step {step}"));
        assert!(runs(step), "{name}: no function runs {}", step.as_str());
        assert_eq!(st["Parameters"]["QueueUrl"], format!("${{{}}}", placeholder(step)), "{name}");
        assert!(body["run.$"].is_string() && body["region.$"].is_string(), "{name} passes run and region");
        seen.insert(step);
    }
    assert_eq!(
        seen,
        StepName::ALL.into_iter().filter(|s| s.account_run()).collect(),
        "every step of an account's run is dispatched somewhere"
    );
    assert!(StepName::ALL.into_iter().all(runs), "every step, the bulk machine's too, has its function");
}

#[test]
fn every_error_name_is_known() {
    let known: HashSet<&str> = ErrorName::ALL.iter().map(|e| e.as_str()).collect();
    for (name, st) in states(&definition()) {
        for key in ["Retry", "Catch"] {
            for rule in st[key].as_array().into_iter().flatten() {
                for e in rule["ErrorEquals"].as_array().expect("ErrorEquals") {
                    let e = e.as_str().unwrap();
                    assert!(known.contains(e) || e.starts_with("States."), "{name}.{key}: unknown error name {e}");
                }
            }
        }
    }
}

#[test]
fn every_wait_and_retry_is_bounded() {
    for (name, st) in states(&definition()) {
        if st["Type"] == "Task" {
            // A heartbeat counts from when the message is sent, queue wait included: in a bulk run
            // tasks would time out before a worker saw them. Liveness is the message's visibility.
            assert!(
                st.get("HeartbeatSeconds").is_none() && st.get("HeartbeatSecondsPath").is_none(),
                "{name}: no HeartbeatSeconds (it counts the time in the queue)"
            );
            let to = st["TimeoutSeconds"].as_u64().unwrap_or_else(|| panic!("{name}: TimeoutSeconds"));
            // Above the function's 900 s (a task may wait in the queue, then run), within the bulk
            // run's bound on one account's whole onboarding.
            assert!((900..=bulk_child_timeout()).contains(&to), "{name}: TimeoutSeconds {to}");
        }
        for r in st["Retry"].as_array().into_iter().flatten() {
            let n = r["MaxAttempts"].as_u64().unwrap_or_else(|| panic!("{name}: MaxAttempts"));
            assert!((1..=10).contains(&n), "{name}: MaxAttempts {n}");
            assert_eq!(r["JitterStrategy"], "FULL", "{name}: retries use jitter");
            assert!(
                !r["ErrorEquals"].as_array().unwrap().iter().any(|e| e == "States.ALL"),
                "{name}: never retry everything"
            );
        }
        if st["Type"] == "Map" {
            assert!(st["MaxConcurrency"].as_u64().is_some_and(|c| c > 0), "{name}: bounded MaxConcurrency");
        }
        assert!(st["Type"] != "Wait", "{name}: waiting belongs in the worker, not in Wait loops");
    }
}

#[test]
fn the_state_graph_has_no_cycles_and_every_failure_is_caught() {
    let def = definition();
    let top = def["States"].as_object().unwrap();
    // Depth-first from StartAt; a back edge would be an unbounded loop.
    fn visit(name: &str, top: &serde_json::Map<String, Value>, path: &mut Vec<String>) {
        assert!(!path.contains(&name.to_owned()), "cycle through {name}: {path:?}");
        path.push(name.to_owned());
        let st = &top[name];
        let mut next: Vec<String> = st["Next"].as_str().map(|s| vec![s.to_owned()]).unwrap_or_default();
        for c in st["Catch"].as_array().into_iter().flatten() {
            next.push(c["Next"].as_str().unwrap().to_owned());
        }
        for n in next {
            visit(&n, top, path);
        }
        path.pop();
    }
    visit(def["StartAt"].as_str().unwrap(), top, &mut Vec::new());
    for (name, st) in top {
        if matches!(st["Type"].as_str(), Some("Task" | "Map" | "Parallel")) {
            let catches_all = st["Catch"].as_array().is_some_and(|c| {
                c.iter().any(|r| r["ErrorEquals"].as_array().unwrap().iter().any(|e| e == "States.ALL"))
            });
            assert!(catches_all, "{name}: a terminal failure must reach the failure policy");
        }
    }
}

#[test]
fn every_placeholder_is_a_step_queue() {
    let expected: BTreeSet<String> =
        StepName::ALL.iter().filter(|s| s.account_run()).map(|s| format!("${{{}}}", placeholder(*s))).collect();
    let mut found = BTreeSet::new();
    let mut rest = ONBOARDING_ASL;
    while let Some(i) = rest.find("${") {
        let end = rest[i..].find('}').expect("closed placeholder") + i;
        found.insert(rest[i..=end].to_owned());
        rest = &rest[end..];
    }
    assert_eq!(found, expected);
}

/// The bulk state machine: first the organization step's task, whose facts join every account's
/// run; then a bounded Map over accounts whose one Task starts a child onboarding execution and waits
/// for it; a child's failure is caught inside the iteration, so the others go on.
#[test]
fn the_bulk_machine_is_bounded_and_contains_each_failure() {
    let def: Value = serde_json::from_str(assure_core::pipeline::resources::BULK_ASL).expect("bulk.asl.json is JSON");
    let first = &def["States"][def["StartAt"].as_str().unwrap()];
    assert_eq!(first["Parameters"]["MessageBody"]["step"], "organization");
    assert_eq!(first["Parameters"]["QueueUrl"], format!("${{{}}}", placeholder(StepName::Organization)));
    assert_eq!(first["ResultPath"], "$.organized");
    assert!(first["Catch"].is_null(), "no account starts when the organization's part failed");
    let map = &def["States"][first["Next"].as_str().unwrap()];
    assert_eq!(map["Type"], "Map");
    assert_eq!(map["ItemSelector"]["run.$"], "States.JsonMerge($$.Map.Item.Value, $.organized, false)");
    assert_eq!(map["MaxConcurrencyPath"], "$.bulk.concurrency", "concurrency is the caller's, and bounded by the CLI");
    let known: HashSet<&str> = ErrorName::ALL.iter().map(|e| e.as_str()).collect();
    let mut tasks = 0;
    for (name, st) in states(&def) {
        assert!(st["Type"] != "Wait", "{name}");
        for rule in st["Catch"].as_array().into_iter().flatten().chain(st["Retry"].as_array().into_iter().flatten()) {
            for e in rule["ErrorEquals"].as_array().unwrap() {
                let e = e.as_str().unwrap();
                assert!(known.contains(e) || e.starts_with("States."), "{name}: unknown error name {e}");
            }
        }
        if st["Type"] == "Task" && name != def["StartAt"] {
            tasks += 1;
            assert_eq!(st["Resource"], "arn:aws:states:::states:startExecution.sync:2", "{name}");
            assert_eq!(st["Parameters"]["StateMachineArn"], "${OnboardingStateMachineArn}");
            assert_eq!(st["Parameters"]["Name.$"], "$.run.runId", "children are named by run id");
            assert!(st["TimeoutSeconds"].as_u64().is_some(), "{name}: bounded");
            let catches_all =
                st["Catch"].as_array().is_some_and(|c| c.iter().any(|r| r["ErrorEquals"][0] == "States.ALL"));
            assert!(catches_all, "{name}: one account's failure must not fail the bulk run");
        }
    }
    assert_eq!(tasks, 1);
    assert!(!map.as_object().unwrap().contains_key("Catch"), "failures are caught per account, inside the Map");
}
