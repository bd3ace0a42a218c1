//! What is refused before any change, and what verify names in an account not onboarded.

use assure_e2e::LocalCloud;
use serde_json::Value;

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn verify_names_each_missing_control_and_region_of_an_account_not_onboarded() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let other = ids["external"][1].as_str().unwrap();
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["verify", other]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("not compliant"), "{err}");
    for needle in [
        "cloudtrail.all-regions in us-east-1",
        "guardduty.security-administrator in eu-west-1",
        "config.to-logging-account in us-west-2",
        "session-manager.s3-logging in eu-central-1",
        "alarms.root-usage in us-east-1",
        "scps.restrict-root in us-east-1",
        "logging.bucket-not-public in us-east-1",
    ] {
        assert!(err.contains(needle), "{needle} not named in:\n{err}");
    }
    assert!(cloud.configuration_changes().is_empty(), "verify is read-only");

    // The plan names what onboarding would change, from read-only calls only.
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["plan", other, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let planned: Vec<String> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                c["step"].as_str().unwrap(),
                c["change"]["region"].as_str().unwrap(),
                c["change"]["action"].as_str().unwrap(),
                c["change"]["resource"].as_str().unwrap()
            )
        })
        .collect();
    for needle in [
        "stop-guardduty eu-west-1 disassociate guardduty:",
        "stop-cloudtrail us-east-1 retire cloudtrail:arn:aws:cloudtrail:us-east-1:",
        "cloudtrail us-east-1 create cloudtrail:assure-trail",
        "config us-west-2 create config:recorder/default",
        "config us-east-1 update config:recorder/legacy-recorder",
        "scps us-east-1 attach organizations:policy/assure-restrict-root",
    ] {
        assert!(planned.iter().any(|p| p.starts_with(needle)), "{needle} not planned:\n{}", planned.join("\n"));
    }
    let mutating: Vec<Value> =
        cloud.calls().into_iter().filter(|c| c["mutating"] == true && c["service"] != "SQS").collect();
    assert!(mutating.is_empty(), "plan made mutating calls: {mutating:?}");

    let (code, out, _) = cloud.run(&["verify", other, "--output", "json"]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["compliant"], false);
    assert!(doc["evidence"].as_array().unwrap().iter().any(|e| e["passed"] == false));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_before_any_change_naming_the_problem() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let target = ids["external"][0].as_str().unwrap().to_owned();
    cloud.reset_calls();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["12345".into()], "is not valid: an AWS account id is exactly 12 digits"),
        (vec!["000011112222".into()], "account: account 000011112222 is not a member of the organization"),
        (vec![s("management")], "is the organization's management account"),
        (vec![s("logging")], "is the organization's logging account"),
        (vec![s("security")], "is the organization's security account"),
        (
            vec![target.clone(), "--regions".into(), "us-east-1,mars-north-1".into()],
            "--regions: region \"mars-north-1\"",
        ),
        (
            vec![target.clone(), "--regions".into(), "eu-west-1".into()],
            "home region us-east-1 must be one of the run's regions",
        ),
        (vec![target, "--run-id".into(), "no spaces allowed".into()], "run id \"no spaces allowed\" is not valid"),
    ];
    for (args, needle) in cases {
        let mut argv = vec!["onboard".to_owned()];
        argv.extend(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (code, _, err) = cloud.run(&argv);
        assert_eq!(code, 2, "{argv:?} exits 2:\n{err}");
        assert!(err.contains(needle), "{argv:?}: {needle:?} not in:\n{err}");
        assert!(err.contains("docs/errors/Assure.InvalidInput.md"), "points at the error page:\n{err}");
    }
    // Nothing changed anywhere, and no run was started (the worker's own queue polling aside).
    let changes = cloud.configuration_changes();
    assert!(changes.is_empty(), "rejected input made mutating calls: {changes:?}");
    let started: Vec<_> = cloud.calls().into_iter().filter(|c| c["operation"] == "StartExecution").collect();
    assert!(started.is_empty(), "rejected input started a run: {started:?}");
}

/// Another account already GuardDuty's delegated administrator in one region of the run: the
/// guardduty step could never make the security account administrator there, so `onboard` and
/// `plan` refuse before anything changes, naming the account and the region.
#[tokio::test(flavor = "multi_thread")]
async fn a_conflicting_guardduty_administrator_is_refused_before_any_change() {
    use crate::all::iam::{aws_cli, credentials};
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1,eu-west-1");
    let (target, logging) = (ids["external"][0].as_str().unwrap(), ids["logging"].as_str().unwrap());
    let admin = credentials(&cloud.sdk_config().await).await;
    let enable =
        ["guardduty", "enable-organization-admin-account", "--admin-account-id", logging, "--region", "eu-west-1"];
    let (code, _, err) = aws_cli(&cloud, &admin, &enable);
    assert_eq!(code, 0, "{err}");
    cloud.reset_calls();
    let expected = format!("account {logging} is the organization's delegated administrator in eu-west-1");
    for command in ["onboard", "plan"] {
        let (code, out, err) = cloud.run(&[command, target]);
        assert_eq!(code, 1, "{command}: {out}\n{err}");
        assert!(err.contains(&expected) && err.contains("Assure.Conflict"), "{command}: {err}");
    }
    let changes = cloud.configuration_changes();
    assert!(changes.is_empty(), "a refused run made mutating calls: {changes:?}");
    let started: Vec<_> = cloud.calls().into_iter().filter(|c| c["operation"] == "StartExecution").collect();
    assert!(started.is_empty(), "a refused run started: {started:?}");
}

/// AWS's limit of five SCPs per target, counted with the two assure attaches: an account with
/// four already would stop the run at its last step, after every other change, so `onboard` and
/// `plan` refuse it first. Counted by the local cloud's own record, not assure's call log.
#[tokio::test(flavor = "multi_thread")]
async fn the_scp_quota_is_refused_before_any_change() {
    use crate::all::iam::{aws_cli, credentials};
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| {
        let (code, out, err) = aws_cli(&cloud, &admin, args);
        assert_eq!(code, 0, "{err}");
        out.trim().to_owned()
    };
    // FullAWSAccess and three of the organization's own: four of five.
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:*","Resource":"*"}]}"#;
    for i in 1..=3 {
        let name = format!("customer-{i}");
        let id = ok(&[
            "organizations",
            "create-policy",
            "--name",
            &name,
            "--description",
            "d",
            "--type",
            "SERVICE_CONTROL_POLICY",
            "--content",
            doc,
            "--query",
            "Policy.PolicySummary.Id",
            "--output",
            "text",
        ]);
        ok(&["organizations", "attach-policy", "--policy-id", &id, "--target-id", target]);
    }
    cloud.reset_calls();
    let from = cloud.decisions().len();
    for command in ["onboard", "plan"] {
        let (code, out, err) = cloud.run(&[command, target]);
        assert_eq!(code, 1, "{command}: {out}\n{err}");
        assert!(
            err.contains("has 4 service control policies attached") && err.contains("Assure.QuotaExceeded"),
            "{command}: {err}"
        );
    }
    let changed = cloud.mutating_decisions_since(from);
    assert!(changed.is_empty(), "a refused run changed something: {changed:?}");
    assert!(cloud.decisions().len() > from, "the local cloud saw the refused runs' reads");
    let started: Vec<_> = cloud.calls().into_iter().filter(|c| c["operation"] == "StartExecution").collect();
    assert!(started.is_empty(), "a refused run started: {started:?}");
}

/// Everything preflight can know refuses the run before its first change, in `onboard` and in
/// `plan` alike, naming the reason: another IAM Access Analyzer delegated administrator, SCPs not
/// enabled in the root, a region of the run the account has not enabled. Each is set up with the
/// AWS CLI, refused with 0 mutating calls as the local cloud counts them, then undone.
#[tokio::test(flavor = "multi_thread")]
async fn what_preflight_can_know_refuses_the_run_before_any_change() {
    use crate::all::iam::{cli_ok, credentials};
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    let logging = ids["logging"].as_str().unwrap();
    let management = credentials(&cloud.sdk_config().await).await;
    let member = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    let ok = |creds: &aws_sdk_sts::config::Credentials, args: &[&str]| cli_ok(&cloud, creds, args);
    let refused = |args: &[&str], name: &str, needle: &str| {
        let from = cloud.decisions().len();
        cloud.reset_calls();
        for command in ["onboard", "plan"] {
            let mut full = vec![command, target];
            full.extend_from_slice(args);
            let (code, out, err) = cloud.run(&full);
            assert_ne!(code, 0, "{command} {args:?} was not refused: {out}\n{err}");
            assert!(err.contains(name) && err.contains(needle), "{command}: {needle:?} ({name}) not in: {err}");
        }
        let changed = cloud.mutating_decisions_since(from);
        assert!(changed.is_empty(), "a refused run changed something: {changed:?}");
        let started: Vec<_> = cloud.calls().into_iter().filter(|c| c["operation"] == "StartExecution").collect();
        assert!(started.is_empty(), "a refused run started: {started:?}");
    };

    // Another account is IAM Access Analyzer's delegated administrator.
    let aa = "access-analyzer.amazonaws.com";
    ok(&management, &["organizations", "enable-aws-service-access", "--service-principal", aa]);
    let admin_args = ["--account-id", logging, "--service-principal", aa];
    ok(&management, &[&["organizations", "register-delegated-administrator"][..], &admin_args].concat());
    refused(
        &[],
        "Assure.Conflict",
        &format!("account {logging} is the organization's IAM Access Analyzer delegated administrator"),
    );
    ok(&management, &[&["organizations", "deregister-delegated-administrator"][..], &admin_args].concat());

    // SCPs are not enabled in the root.
    let root = ok(&management, &["organizations", "list-roots", "--query", "Roots[0].Id", "--output", "text"]);
    let policy_type = ["--root-id", root.as_str(), "--policy-type", "SERVICE_CONTROL_POLICY"];
    ok(&management, &[&["organizations", "disable-policy-type"][..], &policy_type].concat());
    refused(
        &[],
        "Assure.Conflict",
        &format!("service control policies are not enabled in the organization's root {root}"),
    );
    ok(&management, &[&["organizations", "enable-policy-type"][..], &policy_type].concat());

    // A region of the run the account has not enabled (an opt-in region starts disabled).
    refused(
        &["--regions", "us-east-1,eu-south-1"],
        "Assure.InvalidInput",
        &format!("regions: eu-south-1 is not enabled in account {target} (DISABLED)"),
    );
    ok(&member, &["account", "enable-region", "--region-name", "eu-south-1"]);
    // Enabled in the account but not in the security account, GuardDuty's and Access Analyzer's
    // administrator there.
    let security = ids["security"].as_str().unwrap();
    let security_admin = credentials(&cloud.admin_config_as(security, "us-east-1").await).await;
    refused(
        &["--regions", "us-east-1,eu-south-1"],
        "Assure.InvalidInput",
        &format!(
            "regions: eu-south-1 is not enabled in account {security}, the organization's security account (DISABLED)"
        ),
    );
    ok(&security_admin, &["account", "enable-region", "--region-name", "eu-south-1"]);

    // Nothing refuses it now: the plan goes through, also when the Account Management API throttles
    // (TooManyRequestsException, which the SDK retries).
    cloud.faults(
        serde_json::json!([{"service": "account", "operation": "*", "error": "throttle", "rate": 1.0, "count": 2}]),
    );
    let (code, out, err) = cloud.run(&["plan", target]);
    let fired: Value =
        serde_json::from_str(&assure_e2e::http(&cloud.endpoint, "GET", "/assure-api/faults", "")).unwrap();
    cloud.faults(serde_json::json!([]));
    assert_eq!(code, 0, "plan after every refusal was undone:\n{out}\n{err}");
    assert_eq!(fired["rules"][0]["fired"], 2, "both throttles were answered and retried");
}
