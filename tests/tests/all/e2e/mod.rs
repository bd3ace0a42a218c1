//! Whole onboarding runs on the local cloud, driven through the `assure` binary as a user would.

use assure_e2e::LocalCloud;
use serde_json::Value;

mod deploy;
mod refusals;

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
    let (code, out, err) =
        cloud.run(&["onboard", target, "--run-id", "second", "--existing-trails", "stop", "--output", "json"]);
    assert_eq!(code, 0, "second onboard failed:\n{out}\n{err}");
    assert_eq!(assure_e2e::Followed::of(&out).changes(), 0, "{out}");
    let second = cloud.configuration_changes();
    assert!(second.is_empty(), "the second run made mutating calls: {second:?}");
    let calls = cloud.calls();
    let steps_seen: std::collections::BTreeSet<&str> =
        calls.iter().filter_map(|c| c["step"].as_str()).filter(|s| !s.is_empty()).collect();
    assert_eq!(steps_seen, ["preflight", "verify"].into(), "only the check ran");

    // --full: every step reads its part and finds nothing to change.
    cloud.reset_calls();
    let (code, out, err) =
        cloud.run(&["onboard", target, "--run-id", "full", "--full", "--existing-trails", "stop", "--output", "json"]);
    assert_eq!(code, 0, "full onboard failed:\n{out}\n{err}");
    let full = assure_e2e::Followed::of(&out);
    assert_eq!((full.status(), full.changes()), ("SUCCEEDED", 0), "{out}");
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
