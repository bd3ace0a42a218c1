//! Rollback: the prior configuration restored, failures finished by a second rollback.

use assure_e2e::{Followed, LocalCloud};
use serde_json::{json, Value};

/// The run `run_id` of the seed's first external account in `regions`, and the pipeline as the CLI
/// reaches member accounts (the member role trusts the operator role), to read their configuration.
pub(crate) async fn as_the_cli(
    cloud: &LocalCloud,
    ids: &Value,
    run_id: &str,
    regions: &str,
) -> (assure_contract::RunInput, assure_core::aws::Aws) {
    let run = serde_json::from_value(json!({
        "runId": run_id, "account": ids["external"][0], "regions": regions.split(',').collect::<Vec<_>>(),
        "homeRegion": "us-east-1",
        "org": {"management": ids["management"], "logging": ids["logging"], "security": ids["security"]},
        "roleName": "AssureExecutionRole"
    }))
    .unwrap();
    let aws = assure_core::aws::Aws::from_sdk_config(cloud.pipeline_config().await)
        .await
        .unwrap()
        .with_role("AssureExecutionRole")
        .through(assure_core::pipeline::resources::OPERATOR_ROLE);
    (run, aws)
}

/// Removes, in place, what a rollback reported it could not restore.
pub(crate) fn without_unrestorable(config: &mut Value, report: &Value) {
    for line in report["notRestorable"].as_array().unwrap().iter().filter_map(Value::as_str) {
        let Some(rest) = line.strip_prefix("guardduty ") else { continue };
        let region = rest.split(':').next().unwrap();
        let detectors = &mut config["regions"][region]["guardduty"];
        if line.contains("foreign administrator") {
            for d in detectors.as_array_mut().unwrap() {
                d["administrator"] = Value::Null;
            }
        } else if line.contains("created by assure") {
            *detectors = json!("(reported)");
        }
    }
}

/// Rollback is a saga that finishes: one compensation failing (the first Config call of the rollback
/// is denied) does not stop the others, the report names it with its error and the command exits 1;
/// rolling back again runs only that one, and the account then equals its configuration before.
#[tokio::test(flavor = "multi_thread")]
async fn a_rollback_finishes_every_other_compensation_when_one_fails_and_a_second_rollback_the_rest() {
    let cloud = LocalCloud::start();
    let regions = "us-east-1,eu-west-1";
    let ids = cloud.seed_and_deploy(regions);
    let target = ids["external"][0].as_str().unwrap();
    let (run, aws) = as_the_cli(&cloud, &ids, "saga", regions).await;
    let mut before = assure_core::pipeline::rollback::configuration(&aws, &run).await.unwrap();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "saga"]);
    assert_eq!(code, 0, "{out}\n{err}");

    cloud.faults(json!([{"service": "config", "operation": "*", "error": "AccessDenied", "rate": 1.0, "count": 1}]));
    let (code, out, err) = cloud.run(&["runs", "rollback", "saga", "--output", "json"]);
    cloud.faults(json!([]));
    assert_eq!(code, 1, "a failed compensation fails the rollback:\n{out}\n{err}");
    assert!(err.contains("1 compensation(s) failed"), "{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    let failed = first["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{first:#}");
    let item = failed[0]["item"].as_str().unwrap().to_owned();
    assert!(item.starts_with("config "), "{item}");
    assert_eq!(failed[0]["error"]["name"], "Assure.AccessDenied", "{first:#}");
    let restored: Vec<&str> = first["restored"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for other in ["scps", "alarms", "guardduty", "cloudtrail"] {
        assert!(
            restored.iter().any(|r| r.starts_with(other)),
            "{other} was not compensated after config failed: {restored:?}"
        );
    }

    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["runs", "rollback", "saga", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    assert!(second["failed"].as_array().unwrap().is_empty(), "{second:#}");
    let done: Vec<&str> = second["alreadyDone"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!done.contains(&item.as_str()) && done.len() >= 4, "the failed compensation runs again: {done:?}");
    // What runs again: the failed one, and those that left something they could not restore (what
    // stopped them may have changed); nothing finished runs twice.
    let partial: Vec<&str> = first["notRestorable"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str()?.split([' ', ':']).next())
        .collect();
    for line in second["restored"].as_array().unwrap().iter().filter_map(Value::as_str) {
        let control = line.split([' ', ':']).next().unwrap();
        assert!(
            line.starts_with(&item) || partial.contains(&control),
            "the second rollback redid a finished compensation: {line}"
        );
    }
    let services: std::collections::BTreeSet<String> = cloud
        .configuration_changes()
        .iter()
        .filter(|c| c["account"] == target)
        .map(|c| c["service"].as_str().unwrap_or_default().to_owned())
        .collect();
    for (control, service) in [("cloudtrail", "CloudTrail"), ("scps", "Organizations"), ("alarms", "CloudWatch")] {
        if done.iter().any(|d| d.starts_with(control)) {
            assert!(!services.contains(service), "the finished {control} compensation ran again: {services:?}");
        }
    }
    assert!(services.iter().any(|s| s.starts_with("Config")), "the failed config compensation ran: {services:?}");

    let mut after = assure_core::pipeline::rollback::configuration(&aws, &run).await.unwrap();
    for report in [&first, &second] {
        without_unrestorable(&mut before, report);
        without_unrestorable(&mut after, report);
    }
    assert_eq!(
        serde_json::to_string_pretty(&after).unwrap(),
        serde_json::to_string_pretty(&before).unwrap(),
        "after both rollbacks the account differs from before onboarding"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rollback_policy_undoes_a_failed_run() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1,eu-west-1");
    let target = ids["external"][0].as_str().unwrap();
    // Verify, the last step, fails for good, after the SCPs are attached: rollback must detach them.
    cloud.faults(json!([{"service": "organizations", "operation": "DescribePolicy", "error": "AccessDenied", "rate": 1.0, "count": 1000}]));
    let (code, out, err) =
        cloud.run(&["onboard", target, "--run-id", "undo", "--on-failure", "rollback", "--output", "json"]);
    cloud.faults(json!([]));
    assert_eq!(code, 1, "{out}\n{err}");
    let undo = Followed::of(&out);
    assert_eq!(undo.error(), "Assure.AccessDenied", "the run reports the failed step's error:\n{out}");
    assert!(undo.succeeded("rollback"), "the rollback step ran:\n{out}");

    let use1 = cloud.sdk_config_as(target, "us-east-1").await;
    let ct = aws_sdk_cloudtrail::Client::new(&use1);
    assert_eq!(ct.get_trail_status().name("legacy-audit").send().await.unwrap().is_logging(), Some(true));
    let trails = ct.describe_trails().send().await.unwrap();
    assert!(trails.trail_list().iter().all(|t| t.name() != Some("assure-trail")), "assure's trail is removed");
    let recs = aws_sdk_config::Client::new(&use1).describe_configuration_recorders().send().await.unwrap();
    assert_eq!(
        recs.configuration_recorders()[0].role_arn(),
        Some(format!("arn:aws:iam::{target}:role/legacy-config-role").as_str())
    );
    let orgs = aws_sdk_organizations::Client::new(&cloud.sdk_config().await);
    let pols = orgs
        .list_policies_for_target()
        .target_id(target)
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    assert!(
        pols.policies().iter().all(|p| !p.name().unwrap_or("").starts_with("assure-")),
        "no assure SCP stays attached"
    );
}

/// The service-roles step makes CloudTrail's CloudWatch Logs role ahead, in the Prepare stage; a
/// run whose cloudtrail step then fails before the trail exists leaves that role behind unless
/// rollback removes it, trail or no trail.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_removes_the_role_made_ahead_when_the_trail_was_never_made() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    cloud.faults(json!([{"service": "cloudtrail", "operation": "CreateTrail", "error": "AccessDenied", "rate": 1.0, "count": 1000}]));
    let (code, out, err) =
        cloud.run(&["onboard", target, "--run-id", "ahead", "--on-failure", "rollback", "--output", "json"]);
    cloud.faults(json!([]));
    assert_eq!(code, 1, "{out}\n{err}");
    let ahead = Followed::of(&out);
    assert!(ahead.succeeded("service-roles"), "the roles were made ahead:\n{out}");
    assert!(ahead.succeeded("rollback"), "the rollback step ran:\n{out}");
    let iam = aws_sdk_iam::Client::new(&cloud.sdk_config_as(target, "us-east-1").await);
    let role = iam.get_role().role_name(assure_core::controls::names::TRAIL_LOGS_ROLE).send().await;
    let code = role.as_ref().err().and_then(|e| e.as_service_error()).and_then(|e| e.meta().code().map(str::to_owned));
    assert_eq!(code.as_deref(), Some("NoSuchEntity"), "the role made ahead is still there: {role:?}");
}

/// While the organization enrols every account in GuardDuty (autoEnableOrganizationMembers ALL, as
/// the guardduty step sets it), GuardDuty refuses to disassociate a member, so rollback reports the
/// membership as not restorable instead of failing on it; once the organization enrols only new
/// accounts, the same rollback run again takes the account out of the security account's GuardDuty.
#[tokio::test(flavor = "multi_thread")]
async fn guardduty_membership_is_rolled_back_only_where_the_organization_allows_it() {
    use crate::all::iam::{aws_cli, credentials};
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let (target, security) = (ids["external"][0].as_str().unwrap(), ids["security"].as_str().unwrap());
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "gd"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // The member role in the security account: the SCPs there (assure-protect-log-archive) refuse
    // its administrator DisassociateMembers before GuardDuty is asked; this is GuardDuty's own rule.
    let admin = credentials(&cloud.sdk_config_as(security, "us-east-1").await).await;
    let (_, out, _) =
        aws_cli(&cloud, &admin, &["guardduty", "list-detectors", "--query", "DetectorIds[0]", "--output", "text"]);
    let detector = out.trim().to_owned();
    let members = |cloud: &LocalCloud| {
        let (_, out, _) = aws_cli(
            cloud,
            &admin,
            &[
                "guardduty",
                "get-members",
                "--detector-id",
                &detector,
                "--account-ids",
                target,
                "--query",
                "Members[].RelationshipStatus",
                "--output",
                "text",
            ],
        );
        out.trim().to_owned()
    };
    assert_eq!(members(&cloud), "Enabled");
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &["guardduty", "disassociate-members", "--detector-id", &detector, "--account-ids", target],
    );
    assert_ne!(code, 0, "GuardDuty refuses under ALL");
    assert!(err.contains("(BadRequestException)") && err.contains("autoEnableOrganizationMembers is ALL"), "{err}");

    let (code, out, err) = cloud.run(&["runs", "rollback", "gd", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let text = report.to_string();
    assert!(text.contains("stays a member of the security account"), "{report:#}");
    assert_eq!(members(&cloud), "Enabled", "the membership stays");

    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &[
            "guardduty",
            "update-organization-configuration",
            "--detector-id",
            &detector,
            "--auto-enable-organization-members",
            "NEW",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cloud.run(&["runs", "rollback", "gd", "--output", "json"]);
    assert_eq!(code, 0, "a rollback run again: {out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(report["restored"].to_string().contains("no longer a member of the security account"), "{report:#}");
    assert_eq!(members(&cloud), "", "the account left the security account's GuardDuty");
}
