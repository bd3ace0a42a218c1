//! Whole onboarding runs on the local cloud, driven through the `assure` binary as a user would.

use assure_e2e::LocalCloud;
use serde_json::Value;

const REGIONS: &str = "us-east-1,eu-west-1,us-west-2,eu-central-1";

/// Steps that put something in place, and so change something on a first run.
const ACTING: &[&str] = &[
    "logging-bucket",
    "service-roles",
    "cloudtrail",
    "stop-cloudtrail",
    "stop-guardduty",
    "guardduty",
    "config",
    "access-analyzer",
    "alarms",
    "session-manager",
    "scps",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_brownfield_account_is_onboarded_in_all_regions_and_a_second_run_changes_nothing() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let target = ids["external"][0].as_str().unwrap();

    cloud.reset_calls();
    // What AWS makes asynchronously (the organization's analyzers, the findings stream, the
    // publishing destinations) stays transitional for 15 s: longer than the run takes to reach
    // verify and than verify looks again inside the function (8 s), so the state machine's
    // bounded retries wait for the rest.
    cloud.limits(serde_json::json!({"transitionSeconds": 15}));
    // The account's own trails stopped and kept (the default, retiring them, is the brownfield matrix's).
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "first", "--existing-trails", "stop"]);
    assert_eq!(code, 0, "onboard failed:\n{out}\n{err}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    assert!(out.contains("controls   92/92 verified"), "{out}");
    let (code, history, _) = cloud.run(&["runs", "history", "first", "--output", "json"]);
    assert_eq!(code, 0);
    assert!(
        history.contains("Assure.Retryable") && history.contains("controls on their way"),
        "verify waited for what AWS was still making: {history}"
    );
    // And steps waited inside, bounded, for registrations and trusted access to reach the services
    // (the access-analyzer step's organization analyzer among them): each step's record says how long.
    let timeline: Vec<Value> = serde_json::from_str(&history).unwrap();
    let waited: Vec<String> = timeline
        .iter()
        .filter(|e| e["event"] == "StepCompleted" || e["event"] == "StepFailed")
        .filter(|e| e["waitedSeconds"].as_f64().is_some_and(|w| w > 0.0))
        .map(|e| format!("{} {}", e["step"].as_str().unwrap(), e["region"].as_str().unwrap()))
        .collect();
    assert!(waited.iter().any(|w| w.starts_with("access-analyzer ")), "{waited:?}");
    assert!(waited.iter().any(|w| w.starts_with("verify ")), "verify looked again inside first: {waited:?}");
    let (_, text, _) = cloud.run(&["runs", "history", "first"]);
    assert!(text.contains("s for AWS)"), "{text}");
    cloud.limits(serde_json::json!({}));
    // A regional step is one task for every region; its summary names each region.
    for step in ["discover", "stop-guardduty", "guardduty", "config", "access-analyzer", "session-manager"] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("✓ {step:<15} all regions")))
            .unwrap_or_else(|| panic!("{step} in:\n{err}"));
        for region in REGIONS.split(',') {
            assert!(line.contains(&format!("{region}: ")), "{step} {region} in: {line}");
        }
    }
    assert!(err.contains("under an administrator"), "discovery saw the foreign GuardDuty administrator:\n{err}");
    let first = cloud.configuration_changes();
    for step in ACTING {
        assert!(first.iter().any(|c| c["step"] == *step), "{step} changed nothing on the first run");
    }
    // (verify's delivery canaries are not configuration changes: see configuration_changes)
    for step in ["preflight", "discover", "verify"] {
        assert!(!first.iter().any(|c| c["step"] == step), "{step} is read-only");
    }
    // The roles the service-roles step made ahead are taken from its record: the step that hands
    // CloudTrail its role does not read it again, and Access Analyzer's only adds the key to its role.
    let calls = cloud.calls();
    let iam = |step: &str| -> Vec<&str> {
        calls
            .iter()
            .filter(|c| c["step"] == step && c["service"] == "IAM")
            .filter_map(|c| c["operation"].as_str())
            .collect()
    };
    assert!(iam("cloudtrail").is_empty(), "the cloudtrail step read its role again: {:?}", iam("cloudtrail"));
    // (its GetRole is the service-linked role's, which is the account's own)
    let aa = iam("access-analyzer");
    assert!(
        aa.contains(&"PutRolePolicy") && !aa.iter().any(|op| ["CreateRole", "GetRolePolicy"].contains(op)),
        "{aa:?}"
    );
    assert!(iam("service-roles").contains(&"CreateRole"), "{:?}", iam("service-roles"));
    // Nothing was deleted: no Delete* call anywhere.
    let deletes: Vec<&Value> =
        first.iter().filter(|c| c["operation"].as_str().unwrap_or("").starts_with("Delete")).collect();
    assert!(deletes.is_empty(), "{deletes:?}");

    // The execution history shows the state machine's task states.
    let sfn = aws_sdk_sfn::Client::new(&cloud.pipeline_config().await);
    let arn = &format!("arn:aws:states:us-east-1:{}:execution:assure-onboarding:first", cloud.pipeline_account());
    let history = sfn.get_execution_history().execution_arn(arn).max_results(1000).send().await.unwrap();
    let entered: Vec<&str> =
        history.events().iter().filter_map(|e| e.state_entered_event_details()).map(|d| d.name()).collect();
    for state in [
        "Preflight",
        "Prepare",
        "Discover",
        "LoggingBucket",
        "ServiceRoles",
        "Apply",
        "CloudTrail",
        "StopCloudTrail",
        "StopGuardDuty",
        "GuardDuty",
        "Config",
        "AccessAnalyzer",
        "SessionManager",
        "Alarms",
        "Scps",
        "Verify",
    ] {
        assert!(entered.contains(&state), "{state} not entered: {entered:?}");
    }
    assert_eq!(entered.iter().filter(|s| **s == "GuardDuty").count(), 1, "one GuardDuty task for every region");
    // The state carries the run's input and nothing the steps return: its size does not grow with
    // the steps or the regions (the results are in the history and the checkpoints).
    let (code, timeline, err) = cloud.run(&["runs", "history", "first", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let timeline: Value = serde_json::from_str(&timeline).unwrap();
    let sizes: Vec<u64> = timeline.as_array().unwrap().iter().filter_map(|e| e["stateBytes"].as_u64()).collect();
    let first_state = sizes.first().copied().expect("state sizes in the history");
    let largest = sizes.iter().copied().max().unwrap();
    assert!(largest <= first_state + 64, "the state grew from {first_state} to {largest} bytes");
    let d = sfn.describe_execution().execution_arn(arn).send().await.unwrap();
    assert_eq!(d.status().as_str(), "SUCCEEDED");

    // The account afterwards, read directly.
    for region in REGIONS.split(',') {
        let conf = cloud.sdk_config_as(target, region).await;
        let config = aws_sdk_config::Client::new(&conf);
        let recs = config.describe_configuration_recorders().send().await.unwrap();
        assert_eq!(recs.configuration_recorders().len(), 1, "exactly one recorder in {region}");
        let gd = aws_sdk_guardduty::Client::new(&conf);
        let det = gd.list_detectors().send().await.unwrap().detector_ids()[0].clone();
        let admin = gd.get_administrator_account().detector_id(&det).send().await.unwrap();
        assert_eq!(
            admin.administrator().and_then(|a| a.account_id()),
            ids["security"].as_str(),
            "the security account administers GuardDuty in {region}, not the foreign one"
        );
    }
    // The seeded recorder was adopted under its own name, not replaced.
    let use1 = cloud.sdk_config_as(target, "us-east-1").await;
    let recs = aws_sdk_config::Client::new(&use1).describe_configuration_recorders().send().await.unwrap();
    assert_eq!(recs.configuration_recorders()[0].name(), Some("legacy-recorder"));
    // The old trail still exists, stopped; the assure trail logs.
    let ct = aws_sdk_cloudtrail::Client::new(&use1);
    let old = ct.get_trail_status().name("legacy-audit").send().await.unwrap();
    assert_eq!(old.is_logging(), Some(false), "the account's own trail is stopped");
    let new = ct.get_trail_status().name("assure-trail").send().await.unwrap();
    assert_eq!(new.is_logging(), Some(true));
    let trails = ct.describe_trails().send().await.unwrap();
    assert_eq!(trails.trail_list().len(), 2, "the old trail is kept, not deleted");

    // Nothing is left to plan.
    let (code, out, err) = cloud.run(&["plan", target, "--existing-trails", "stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 change(s) would be made"), "{out}");

    // A finding reaches the logging bucket through the stream, seen by a client that is not ours.
    let security = ids["security"].as_str().unwrap();
    let logging = ids["logging"].as_str().unwrap();
    let bucket = format!("assure-logs-{logging}-us-east-1");
    let security_admin = super::iam::credentials(&cloud.admin_config_as(security, "us-east-1").await).await;
    let finding = || {
        let (code, _, err) = super::iam::aws_cli(
            &cloud,
            &security_admin,
            &[
                "firehose",
                "put-record",
                "--delivery-stream-name",
                "assure-access-analyzer-findings",
                "--record",
                r#"{"Data":"eyJmaW5kaW5nIjogMX0="}"#,
            ],
        );
        assert_eq!(code, 0, "{err}");
    };
    let logging_admin = super::iam::credentials(&cloud.admin_config_as(logging, "us-east-1").await).await;
    // (the run's delivery canary left its own finding's object there already)
    let objects = || {
        let (code, out, err) = super::iam::aws_cli(
            &cloud,
            &logging_admin,
            &[
                "s3api",
                "list-objects-v2",
                "--bucket",
                &bucket,
                "--prefix",
                "access-analyzer/",
                "--query",
                "length(Contents || `[]`)",
            ],
        );
        assert_eq!(code, 0, "{err}");
        out.trim().parse::<usize>().unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let before = objects();
    finding();
    assert_eq!(objects(), before + 1, "the record's object");

    // The trail records every management event, read and write, set explicitly.
    let (code, out, err) = super::iam::aws_cli(
        &cloud,
        &super::iam::credentials(&use1).await,
        &[
            "cloudtrail",
            "get-event-selectors",
            "--trail-name",
            "assure-trail",
            "--query",
            "EventSelectors[0].[ReadWriteType,IncludeManagementEvents]",
            "--output",
            "text",
        ],
    );
    assert_eq!((code, out.split_whitespace().collect::<Vec<_>>()), (0, vec!["All", "True"]), "{err}");

    // Verify agrees, read-only.
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 0, "verify failed:\n{out}\n{err}");
    assert!(out.contains("92/92 controls hold"), "{out}");
    assert!(cloud.configuration_changes().is_empty(), "verify is read-only");

    // Run it again: the baseline held at the end of the first run with these settings, so the run
    // checks first (verify, in full) and ends there: no step acts, no mutating call.
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "second", "--existing-trails", "stop"]);
    assert_eq!(code, 0, "second onboard failed:\n{out}\n{err}");
    assert!(out.contains("changes    0"), "{out}");
    let second = cloud.configuration_changes();
    assert!(second.is_empty(), "the second run made mutating calls: {second:?}");
    let calls = cloud.calls();
    let steps_seen: std::collections::BTreeSet<&str> =
        calls.iter().filter_map(|c| c["step"].as_str()).filter(|s| !s.is_empty()).collect();
    assert_eq!(steps_seen, ["preflight", "verify"].into(), "only the check ran");

    // --full: every step reads its part and finds nothing to change.
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "full", "--full", "--existing-trails", "stop"]);
    assert_eq!(code, 0, "full onboard failed:\n{out}\n{err}");
    assert!(out.contains("changes    0"), "{out}");
    let full = cloud.configuration_changes();
    assert!(full.is_empty(), "the full re-run made mutating calls: {full:?}");
    let calls = cloud.calls();
    let steps_seen: std::collections::BTreeSet<&str> = calls.iter().filter_map(|c| c["step"].as_str()).collect();
    for step in ACTING.iter().chain(&["preflight", "discover", "verify"]) {
        assert!(steps_seen.contains(step), "{step} ran in the full re-run: {steps_seen:?}");
    }

    // Starting the same run id again does not create a second execution.
    let (code, _, _) = cloud.run(&["onboard", target, "--run-id", "second", "--existing-trails", "stop"]);
    assert_eq!(code, 0);
    let executions = sfn
        .list_executions()
        .state_machine_arn(format!(
            "arn:aws:states:us-east-1:{}:stateMachine:assure-onboarding",
            cloud.pipeline_account()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(executions.executions().len(), 3, "first, second and full, nothing more");

    // Drift: someone stops the assure trail, disables a detector and deletes an alarm.
    aws_sdk_cloudtrail::Client::new(&use1).stop_logging().name("assure-trail").send().await.unwrap();
    let euw1 = cloud.sdk_config_as(target, "eu-west-1").await;
    let gd = aws_sdk_guardduty::Client::new(&euw1);
    let det = gd.list_detectors().send().await.unwrap().detector_ids()[0].clone();
    gd.update_detector().detector_id(&det).enable(false).send().await.unwrap();
    aws_sdk_cloudwatch::Client::new(&use1)
        .delete_alarms()
        .alarm_names("assure-root-account-usage")
        .send()
        .await
        .unwrap();
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 1, "verify must fail on drift:\n{out}\n{err}");
    for needle in
        ["cloudtrail.all-regions in us-east-1", "guardduty.enabled in eu-west-1", "alarms.root-usage in us-east-1"]
    {
        assert!(err.contains(needle), "{needle} not named:\n{err}");
    }
    assert!(out.contains("89/92 controls hold"), "{out}");

    // Configured is not delivering: the logging bucket's policy stops admitting the services, and
    // verify sees each delivery fail where AWS reports it (trail status, delivery channel status,
    // publishing destination status, the findings stream's DeliveryToS3.Success).
    let tls_only = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "DenyInsecureTransport",
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
    // Made by the member role: the logging account's SCP refuses its administrator this change.
    aws_sdk_s3::Client::new(&cloud.sdk_config_as(logging, "us-east-1").await)
        .put_bucket_policy()
        .bucket(&bucket)
        .policy(tls_only.to_string())
        .send()
        .await
        .unwrap();
    // The trail's next delivery (of the write events below, on AWS within about 5 minutes) fails,
    // and its status says so.
    aws_sdk_cloudtrail::Client::new(&use1).start_logging().name("assure-trail").send().await.unwrap();
    // And the trail stops recording read events.
    aws_sdk_cloudtrail::Client::new(&use1)
        .put_event_selectors()
        .trail_name("assure-trail")
        .event_selectors(
            aws_sdk_cloudtrail::types::EventSelector::builder()
                .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::WriteOnly)
                .include_management_events(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    finding();
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 1, "{out}\n{err}");
    for needle in [
        "cloudtrail.to-logging-account in us-east-1",
        "cloudtrail.all-regions in us-east-1",
        "read and write management events): Some((true, true, false))",
        "config.to-logging-account in eu-west-1",
        "guardduty.findings-exported in us-west-2",
        "access-analyzer.findings-delivered in us-east-1",
        "latest DeliveryToS3.Success in the last 24 h: 0",
        "AccessDenied",
        "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY",
    ] {
        assert!(err.contains(needle), "{needle} not named:\n{err}");
    }
}

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
    use super::iam::{aws_cli, credentials};
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
    use super::iam::{aws_cli, credentials};
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
    use super::iam::{cli_ok, credentials};
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

/// Seeding again after an onboarding (the demo run twice, or `local seed --accounts N` for more
/// accounts, as the demo suggests) adds what is missing and leaves an onboarded account as assure
/// left it: its SCPs refuse any change to its member role, and making it brownfield again would undo
/// the onboarding.
#[tokio::test(flavor = "multi_thread")]
async fn seeding_again_after_an_onboarding_adds_accounts_and_leaves_the_onboarded_one_alone() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let onboarded = ids["external"][0].as_str().unwrap();
    let (code, out, err) = cloud.run(&["onboard", onboarded]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = cloud.run(&["local", "seed"]);
    assert_eq!(code, 0, "a second seed: {err}");
    // Three seeds in all: the foreign administrator's owner signs in a third time (two keys at most).
    let more = cloud.seed_accounts(3);
    let added = more["external"][2].as_str().unwrap();
    assert_eq!(more["external"][0], onboarded);
    let (code, out, err) = cloud.run(&["verify", onboarded]);
    assert_eq!(code, 0, "the onboarded account is as assure left it:\n{out}\n{err}");
    let (code, out, err) = cloud.run(&["plan", added, "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let retires = plan["changes"].as_array().unwrap().iter().any(|c| c["change"].to_string().contains("legacy-audit"));
    assert!(retires, "the new account is brownfield (its own trail would be retired): {plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn local_up_and_deploy_are_idempotent() {
    let cloud = LocalCloud::start();
    let (code, again, err) = cloud.run(&["local", "up", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["AWS_ENDPOINT_URL"], cloud.endpoint.as_str(), "the same cloud, not a second one");

    let ids = cloud.seed_and_deploy("us-east-1");
    let deploy = |regions: &str| {
        let (code, out, err) = cloud.run(&[
            "deploy",
            "--logging-account",
            ids["logging"].as_str().unwrap(),
            "--security-account",
            ids["security"].as_str().unwrap(),
            "--regions",
            regions,
            "--output",
            "json",
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let d = deploy("us-east-1");
    assert_eq!(d["changes"], serde_json::json!([]), "a second deploy changes nothing");
    the_pipeline_is_the_stack_users_deploy(&cloud, &ids, &d).await;
    assert_eq!(d["queues"].as_object().unwrap().len(), assure_contract::StepName::ALL.len());
    // A changed setting updates in place.
    let d = deploy("us-east-1,eu-west-1");
    assert_eq!(d["changes"], serde_json::json!(["wrote deployment.json"]));

    // Onboarding before deploy in another cloud names the fix.
    let fresh = LocalCloud::start();
    let (code, _, err) = fresh.run(&["onboard", "123456789013"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("run `assure deploy` first"), "{err}");
}

/// What `assure deploy` made, as the AWS CLI sees it: CloudFormation's stack of the SAM template
/// users deploy, whose resources are every function, queue and event source mapping the worker
/// plays Lambda for; the member role in every account but the management account through the
/// service-managed StackSet; and CloudFormation's own refusal of the template without the
/// transform's capability.
async fn the_pipeline_is_the_stack_users_deploy(cloud: &LocalCloud, ids: &Value, deployment: &Value) {
    use super::iam::{aws_cli, cli_ok, credentials};
    // The pipeline's stack is the pipeline account's; the member role's StackSet the management
    // account's.
    let admin = credentials(&cloud.pipeline_config().await).await;
    let management = credentials(&cloud.sdk_config().await).await;
    let json = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&cli_ok(cloud, &admin, &all)).unwrap()
    };
    let stack = json(&["cloudformation", "describe-stacks", "--stack-name", "assure"]);
    assert_eq!(stack["Stacks"][0]["StackStatus"], "CREATE_COMPLETE", "{stack}");
    assert_eq!(stack["Stacks"][0]["StackId"], deployment["stackId"]);
    let resources = json(&["cloudformation", "list-stack-resources", "--stack-name", "assure"]);
    let resources = resources["StackResourceSummaries"].as_array().unwrap();
    let count = |kind: &str| resources.iter().filter(|r| r["ResourceType"] == kind).count();
    let steps = assure_contract::StepName::ALL.len();
    assert_eq!(count("AWS::Lambda::Function"), steps);
    assert_eq!(
        count("AWS::Lambda::EventSourceMapping"),
        2 * steps,
        "each function reads its queue and its dead letters"
    );
    assert_eq!(count("AWS::SQS::Queue"), 2 * steps);
    assert_eq!(count("AWS::StepFunctions::StateMachine"), 2);
    assert!(resources.iter().all(|r| r["ResourceStatus"] == "CREATE_COMPLETE"), "{resources:?}");
    // Lambda's view: the stack's functions, one package, fed as the template says.
    let functions = json(&["lambda", "list-functions"]);
    let functions = functions["Functions"].as_array().unwrap();
    assert_eq!(functions.len(), steps, "{functions:?}");
    let packages: std::collections::BTreeSet<&str> =
        functions.iter().map(|f| f["CodeSha256"].as_str().unwrap()).collect();
    assert_eq!(packages.len(), 1, "every function runs the one package: {packages:?}");
    assert!(functions.iter().all(|f| f["Timeout"] == 900 && f["Environment"]["Variables"]["ASSURE_STEP"].is_string()));
    let mappings = json(&["lambda", "list-event-source-mappings"]);
    let mappings = mappings["EventSourceMappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 2 * steps);
    for m in mappings {
        assert_eq!(m["BatchSize"], 1, "{m}");
        assert_eq!(m["FunctionResponseTypes"], serde_json::json!(["ReportBatchItemFailures"]), "{m}");
        assert!(m["ScalingConfig"]["MaximumConcurrency"].as_i64().unwrap() >= 2, "{m}");
    }
    // The member role: a StackSet instance in every account but the management account.
    let list = ["cloudformation", "list-stack-instances", "--stack-set-name", "assure-member-role", "--output", "json"];
    let instances: Value = serde_json::from_str(&cli_ok(cloud, &management, &list)).unwrap();
    let accounts: std::collections::BTreeSet<&str> = instances["Summaries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["Status"] == "CURRENT")
        .map(|i| i["Account"].as_str().unwrap())
        .collect();
    for key in ["logging", "security"] {
        assert!(accounts.contains(ids[key].as_str().unwrap()), "{key}: {instances}");
    }
    for external in ids["external"].as_array().unwrap() {
        assert!(accounts.contains(external.as_str().unwrap()), "{external}: {instances}");
    }
    assert!(
        !accounts.contains(ids["management"].as_str().unwrap()),
        "StackSets never deploys to the management account"
    );
    // CloudFormation refuses the SAM template without CAPABILITY_AUTO_EXPAND, as on AWS.
    let bucket = &format!("assure-artifacts-{}-us-east-1", cloud.pipeline_account());
    let objects = json(&["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "templates/"]);
    let key = objects["Contents"][0]["Key"].as_str().unwrap();
    let url = format!("https://{bucket}.s3.us-east-1.amazonaws.com/{key}");
    let (code, _, err) = aws_cli(
        cloud,
        &admin,
        &[
            "cloudformation",
            "create-stack",
            "--stack-name",
            "second",
            "--template-url",
            &url,
            "--capabilities",
            "CAPABILITY_NAMED_IAM",
            "--parameters",
            &format!("ParameterKey=ManagementAccount,ParameterValue={}", ids["management"].as_str().unwrap()),
            &format!("ParameterKey=LoggingAccount,ParameterValue={}", ids["logging"].as_str().unwrap()),
            &format!("ParameterKey=SecurityAccount,ParameterValue={}", ids["security"].as_str().unwrap()),
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("InsufficientCapabilitiesException") && err.contains("CAPABILITY_AUTO_EXPAND"), "{err}");
}

/// A run the CLI does not start (the join step's, with `AutoOnboard`) is checked by its preflight
/// task: started with exactly the input the join step gives it (the rule's run settings, with the
/// account and a run id), it passes the same checks the CLI makes and onboards the account; with
/// another account as IAM Access Analyzer's delegated administrator, its preflight task refuses it
/// before any change.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_started_by_the_join_rule_is_checked_by_its_preflight_task() {
    use super::iam::{cli_ok, credentials, execution_ended};
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let (target, logging, security) =
        (ids["external"][0].as_str().unwrap(), ids["logging"].as_str().unwrap(), ids["security"].as_str().unwrap());
    let admin = credentials(&cloud.sdk_config().await).await;
    let states_admin = credentials(&cloud.pipeline_config().await).await;
    // What CloudFormation and EventBridge make of the rule's input, and the join step of that for
    // the account.
    let input = |event: &str, regions: &str| {
        let delivered = super::join::join_input(regions, logging, security, event, "2026-12-07T10:00:00Z", "{}");
        let mut join: serde_json::Value = serde_json::from_str(&delivered).expect("the rule's input is JSON");
        let mut run = join["run"].take();
        run["runId"] = format!("joined-{event}").into();
        run["account"] = target.into();
        serde_json::json!({"run": run}).to_string()
    };
    let machine = &format!("arn:aws:states:us-east-1:{}:stateMachine:assure-onboarding", cloud.pipeline_account());
    let run_in = |event: &str, regions: &str| {
        let from = cloud.decisions().len();
        let arn = cli_ok(
            &cloud,
            &states_admin,
            &[
                "stepfunctions",
                "start-execution",
                "--state-machine-arn",
                machine,
                "--name",
                &format!("joined-{event}"),
                "--input",
                &input(event, regions),
                "--query",
                "executionArn",
                "--output",
                "text",
            ],
        );
        let status = execution_ended(&cloud, &states_admin, &arn, std::time::Duration::from_secs(180));
        (arn, status, from)
    };
    let run = |event: &str| run_in(event, r#"["us-east-1"]"#);

    // Another account is Access Analyzer's delegated administrator: the preflight task refuses.
    let aa = "access-analyzer.amazonaws.com";
    cli_ok(&cloud, &admin, &["organizations", "enable-aws-service-access", "--service-principal", aa]);
    let admin_args = ["--account-id", logging, "--service-principal", aa];
    cli_ok(&cloud, &admin, &[&["organizations", "register-delegated-administrator"][..], &admin_args].concat());
    let (arn, status, from) = run("refused");
    assert_eq!(status, "FAILED", "{arn}");
    let history = cli_ok(&cloud, &states_admin, &["stepfunctions", "get-execution-history", "--execution-arn", &arn]);
    assert!(
        history.contains("Assure.Conflict") && history.contains("IAM Access Analyzer delegated administrator"),
        "the preflight task's refusal: {history}"
    );
    let changed = cloud.mutating_decisions_since(from);
    assert!(changed.is_empty(), "a refused run changed something: {changed:?}");
    cli_ok(&cloud, &admin, &[&["organizations", "deregister-delegated-administrator"][..], &admin_args].concat());

    // Another account is GuardDuty's delegated administrator in a region of the run: Organizations
    // knows it, and the preflight task asks GuardDuty where, then refuses.
    let gd_admin = ["--admin-account-id", logging, "--region", "us-east-1"];
    cli_ok(&cloud, &admin, &[&["guardduty", "enable-organization-admin-account"][..], &gd_admin].concat());
    let (arn, status, from) = run("refused-guardduty");
    assert_eq!(status, "FAILED", "{arn}");
    let history = cli_ok(&cloud, &states_admin, &["stepfunctions", "get-execution-history", "--execution-arn", &arn]);
    assert!(
        history.contains("Assure.Conflict") && history.contains("delegated administrator in us-east-1"),
        "the preflight task's refusal: {history}"
    );
    let asked: std::collections::BTreeSet<String> = cloud.decisions()[from..]
        .iter()
        .filter(|d| {
            d["principal"]
                .as_str()
                .is_some_and(|p| p.contains("assure-step-preflight") || p.contains("assure-management"))
        })
        .filter_map(|d| d["action"].as_str().map(str::to_owned))
        .collect();
    // Asked as the management account's role, which the preflight step's role assumes.
    assert!(asked.contains("guardduty:ListOrganizationAdminAccounts"), "{asked:?}");
    assert!(cloud.mutating_decisions_since(from).is_empty(), "a refused run changed something");
    cli_ok(&cloud, &admin, &[&["guardduty", "disable-organization-admin-account"][..], &gd_admin].concat());

    // An opt-in region of the run the account has enabled and the security account has not
    // (opt-in regions start disabled): the preflight task reads every account's regions (the
    // management account's with its own role) and refuses.
    let member = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    cli_ok(&cloud, &member, &["account", "enable-region", "--region-name", "eu-south-1"]);
    let (arn, status, from) = run_in("refused-region", r#"["us-east-1", "eu-south-1"]"#);
    assert_eq!(status, "FAILED", "{arn}");
    let history = cli_ok(&cloud, &states_admin, &["stepfunctions", "get-execution-history", "--execution-arn", &arn]);
    assert!(
        history.contains("Assure.InvalidInput")
            && history.contains(&format!("eu-south-1 is not enabled in account {security}")),
        "the preflight task's refusal: {history}"
    );
    assert!(cloud.mutating_decisions_since(from).is_empty(), "a refused run changed something");

    // Nothing refuses it now: it onboards, its preflight task having asked what the CLI asks.
    let (arn, status, from) = run("accepted");
    assert_eq!(status, "SUCCEEDED", "{arn}");
    // Its own role, and the management account's for what only that account answers.
    let asked: std::collections::BTreeSet<String> = cloud.decisions()[from..]
        .iter()
        .filter(|d| {
            d["principal"]
                .as_str()
                .is_some_and(|p| p.contains("assure-step-preflight") || p.contains("assure-management"))
        })
        .filter_map(|d| d["action"].as_str().map(str::to_owned))
        .collect();
    for action in [
        "organizations:DescribeOrganization",
        "organizations:DescribeAccount",
        "organizations:ListRoots",
        "organizations:ListDelegatedAdministrators",
    ] {
        assert!(asked.contains(action), "the preflight task did not ask {action}: {asked:?}");
    }
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 0, "{out}\n{err}");
}
