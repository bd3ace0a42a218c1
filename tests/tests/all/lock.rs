//! One run per account at a time: a second onboarding, an execution started by other means and a
//! rollback of the account are each refused while a run of it is active, naming that run, and the
//! lock ends with the run.

use assure_e2e::LocalCloud;
use serde_json::{json, Value};

#[test]
fn while_a_run_of_an_account_is_active_every_other_run_of_it_is_refused_naming_the_active_one() {
    // Plain threads drive the CLI runs side by side; one runtime serves the SDK calls between them.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    let sfn = aws_sdk_sfn::Client::new(&rt.block_on(cloud.pipeline_config()));
    let machine = format!("arn:aws:states:us-east-1:{}:stateMachine:assure-onboarding", cloud.pipeline_account());
    let execution = |name: &str| format!("{}:{name}", machine.replace(":stateMachine:", ":execution:"));
    cloud.reset_calls();

    let (results, winner, rollback, direct) = std::thread::scope(|s| {
        let first = s.spawn(|| cloud.run(&["onboard", target, "--run-id", "first"]));
        // As a user who starts the same account again 1.5 s later.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let second = s.spawn(|| cloud.run(&["onboard", target, "--run-id", "second"]));
        // Whichever took the account's lock runs.
        let winner =
            rt.block_on(assure_e2e::eventually_async(std::time::Duration::from_secs(20), "a run started", || async {
                let list = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap();
                let running = list.executions().iter().find(|e| e.status().as_str() == "RUNNING");
                running.map(|e| e.name().to_owned()).ok_or_else(|| "none running".to_owned())
            }));
        let rollback = cloud.run(&["runs", "rollback", &winner]);
        // An execution started by other means (bulk, onboarding on join): its preflight refuses it.
        let direct = rt.block_on(async {
            let input = sfn.describe_execution().execution_arn(execution(&winner)).send().await.unwrap();
            let mut doc: Value = serde_json::from_str(input.input().unwrap()).unwrap();
            doc["run"]["runId"] = json!("direct");
            sfn.start_execution()
                .state_machine_arn(&machine)
                .name("direct")
                .input(doc.to_string())
                .send()
                .await
                .unwrap();
            assure_e2e::eventually_async(
                std::time::Duration::from_secs(120),
                "the direct execution finished",
                || async {
                    let d = sfn.describe_execution().execution_arn(execution("direct")).send().await.unwrap();
                    match d.status().as_str() {
                        "RUNNING" => Err("RUNNING".to_owned()),
                        _ => Ok(d),
                    }
                },
            )
            .await
        });
        ([("first", first.join().unwrap()), ("second", second.join().unwrap())], winner, rollback, direct)
    });

    // Exactly one ran; the other was refused naming it, before it started.
    for (name, (code, out, err)) in &results {
        if *name == winner {
            assert_eq!(*code, 0, "{name}:\n{out}\n{err}");
        } else {
            assert_ne!(*code, 0, "{name} ran beside {winner}:\n{out}\n{err}");
            assert!(
                err.contains(&format!("has an active run: run {winner}")) && err.contains("Assure.Conflict"),
                "{err}"
            );
        }
    }
    let (code, out, err) = rollback;
    assert_ne!(code, 0, "a rollback ran while the run was active:\n{out}\n{err}");
    assert!(err.contains(&format!("has an active run: run {winner}")), "{err}");
    assert_eq!(direct.status().as_str(), "FAILED");
    assert_eq!(direct.error(), Some("Assure.Conflict"), "{:?}", direct.cause());
    assert!(direct.cause().unwrap_or_default().contains(&format!("run {winner}")), "{:?}", direct.cause());
    // Refused before any change: assure started one execution (the direct one is the test's), and
    // the direct one ran its preflight alone.
    let started = cloud.calls().into_iter().filter(|c| c["operation"] == "StartExecution").count();
    assert_eq!(started, 1, "the refused onboarding started an execution");
    let history = rt.block_on(sfn.get_execution_history().execution_arn(execution("direct")).send()).unwrap();
    let scheduled = history.events().iter().filter(|e| e.r#type().as_str() == "TaskScheduled").count();
    assert_eq!(scheduled, 1, "the refused execution went past its preflight");

    // The lock ends with the run: a rollback now runs, releases it, and the account can be
    // onboarded again.
    let (code, out, err) = cloud.run(&["runs", "rollback", &winner]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "again"]);
    assert_eq!(code, 0, "{out}\n{err}");
}
