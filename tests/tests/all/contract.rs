//! The contract every control of the baseline keeps, checked over `controls::baseline::ALL`, so a
//! control added to the baseline is held to it without a test of its own:
//! - its plan reads and changes nothing (and shows what its steps would change);
//! - applied once, it is in place: each of its steps run again changes nothing;
//! - compensated, the account is as its snapshot found it: every control's snapshot part, in every
//!   region, and the SCPs attached, but for what the rollback report names as not restorable. (A
//!   control without a snapshot has nothing of the account's to restore: the alarms and the
//!   analyzers are removed or reported, the logging bucket is shared and stays.)

use assure_contract::{Region, RunInput, StepName, TaskMessage};
use assure_core::aws::Aws;
use assure_core::controls::{baseline, Known};
use assure_e2e::LocalCloud;
use serde_json::Value;

use super::resume::rollback::{as_the_cli, without_unrestorable};

/// Two regions, so every regional step acts in more than one: the seed's brownfield setup (its own
/// trail, recorder, preferences, a detector under a foreign administrator) is in the first, which
/// compensation puts back; the second has none, where it removes what the run made.
const REGIONS: &str = "us-east-1,us-west-2";

/// The regions `step` acts in: every region of the run, or its home region.
fn regions_of(step: StepName, run: &RunInput) -> Vec<Region> {
    if step.regional() {
        run.regions.clone()
    } else {
        vec![run.home_region.clone()]
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_control_plans_read_only_applies_once_and_compensates_to_its_snapshot() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let target = ids["external"][0].as_str().unwrap();
    let (cli_run, cli) = as_the_cli(&cloud, &ids, "contract", REGIONS).await;
    let mut before = assure_core::pipeline::rollback::configuration(&cli, &cli_run).await.unwrap();

    // Plan: read-only, and every control has something to change in a brownfield account.
    let decided = cloud.decisions().len();
    let (code, out, err) =
        cloud.run(&["plan", target, "--regions", REGIONS, "--existing-trails", "stop", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(cloud.mutating_decisions_since(decided), Vec::<String>::new(), "the plan changed something");
    let plan: Value = serde_json::from_str(&out).expect("the plan as JSON");
    let planned: Vec<&str> = plan["changes"].as_array().unwrap().iter().filter_map(|c| c["step"].as_str()).collect();
    for control in baseline::ALL {
        assert!(
            control.steps.iter().any(|s| planned.contains(&s.as_str())),
            "{}: none of its steps {:?} plans a change: {planned:?}",
            control.name,
            control.steps
        );
    }

    // Applied once, as the state machine runs it.
    let (code, out, err) =
        cloud.run(&["onboard", target, "--run-id", "contract", "--regions", REGIONS, "--existing-trails", "stop"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let sfn = aws_sdk_sfn::Client::new(&cloud.pipeline_config().await);
    let arn = format!("arn:aws:states:us-east-1:{}:execution:assure-onboarding:contract", cloud.pipeline_account());
    let exec = sfn.describe_execution().execution_arn(&arn).send().await.unwrap();
    let input: Value = serde_json::from_str(exec.input().unwrap()).unwrap();
    let run: RunInput = serde_json::from_value(input["run"].clone()).unwrap();

    // Onboarding changed every control's part that the comparison after the rollback reads.
    let during = assure_core::pipeline::rollback::configuration(&cli, &cli_run).await.unwrap();
    for control in baseline::ALL.iter().filter(|c| c.snapshot.is_some()) {
        let key = control.snapshot_key().unwrap();
        let changed = REGIONS.split(',').any(|r| during["regions"][r][key] != before["regions"][r][key]);
        assert!(changed, "{}: onboarding changed nothing its snapshot reads", control.name);
    }

    // Each step of each control again, in each of its regions, as its own role: nothing to change.
    for control in baseline::ALL {
        for &step in control.steps {
            let aws = Aws::from_sdk_config(cloud.step_config(step).await).await.unwrap().with_role(&run.role_name);
            for region in regions_of(step, &run) {
                let decided = cloud.decisions().len();
                let task = TaskMessage {
                    task_token: format!("contract-{step}"),
                    step,
                    region: region.clone(),
                    run: run.clone(),
                    execution: None,
                    event: None,
                };
                let out = assure_core::pipeline::steps::dispatch(&aws, &task, Known::default())
                    .await
                    .unwrap_or_else(|e| panic!("{} {step} {region} again: {e}", control.name));
                assert_eq!(out.changes, vec![], "{} {step} {region} again changed: {}", control.name, out.summary);
                assert_eq!(
                    cloud.mutating_decisions_since(decided),
                    Vec::<String>::new(),
                    "{} {step} {region} again made a change AWS authorized",
                    control.name
                );
            }
        }
    }

    // Compensated: the account as before, but for what the report says it cannot restore.
    let (code, out, err) = cloud.run(&["runs", "rollback", "contract", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let mut after = assure_core::pipeline::rollback::configuration(&cli, &cli_run).await.unwrap();
    without_unrestorable(&mut before, &report);
    without_unrestorable(&mut after, &report);
    assert_eq!(
        serde_json::to_string_pretty(&after).unwrap(),
        serde_json::to_string_pretty(&before).unwrap(),
        "the configuration after rollback differs from before onboarding (report: {report:#})"
    );
    // The brownfield region had something of every control with a snapshot to put back.
    for control in baseline::ALL.iter().filter(|c| c.snapshot.is_some()) {
        let key = control.snapshot_key().unwrap();
        let part = &before["regions"]["us-east-1"][key];
        assert!(
            !part.is_null() && part != &serde_json::json!([]),
            "{}: nothing to restore in us-east-1: {part}",
            control.name
        );
    }
    let unrestorable: Vec<&str> =
        report["notRestorable"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(unrestorable.iter().any(|l| l.contains("foreign administrator 999988887777")), "{unrestorable:?}");
    // The shared logging bucket stays.
    let logging = cloud.sdk_config_as(ids["logging"].as_str().unwrap(), "us-east-1").await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&logging).force_path_style(true).build());
    s3.head_bucket()
        .bucket(format!("assure-logs-{}-us-east-1", ids["logging"].as_str().unwrap()))
        .send()
        .await
        .expect("the logging bucket stays");
}
