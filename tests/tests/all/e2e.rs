//! Whole onboarding runs on the local cloud, driven through the `assure` binary as a user would.

use assure_e2e::LocalCloud;

const REGIONS: &str = "us-east-1,eu-west-1,us-west-2,eu-central-1";

#[tokio::test(flavor = "multi_thread")]
async fn a_brownfield_account_is_onboarded_and_a_second_run_changes_nothing() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let target = ids["external"][0].as_str().unwrap();

    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "first"]);
    assert_eq!(code, 0, "onboard failed:\n{out}\n{err}");
    assert!(out.contains("SUCCEEDED"), "{out}");
    // Progress names every step and region.
    for region in REGIONS.split(',') {
        assert!(
            err.contains(&format!("✓ discover        {region}")),
            "discover {region} in:\n{err}"
        );
    }
    assert!(
        err.contains("under an administrator"),
        "discovery saw the foreign GuardDuty administrator:\n{err}"
    );
    let first = cloud.configuration_changes();
    assert!(
        !first.is_empty(),
        "the first run changes the logging account"
    );
    assert!(
        first.iter().all(|c| c["account"] == ids["logging"]),
        "only the logging account changes so far: {first:?}"
    );

    // The execution history shows the state machine's task states.
    let sfn = aws_sdk_sfn::Client::new(&cloud.sdk_config().await);
    let arn = "arn:aws:states:us-east-1:123456789012:execution:assure-onboarding:first";
    let history = sfn
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .send()
        .await
        .unwrap();
    let entered: Vec<&str> = history
        .events()
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .map(|d| d.name())
        .collect();
    for state in [
        "Preflight",
        "Discover",
        "DiscoverRegion",
        "LoggingBucket",
        "Verify",
    ] {
        assert!(entered.contains(&state), "{state} not entered: {entered:?}");
    }
    assert_eq!(
        entered.iter().filter(|s| **s == "DiscoverRegion").count(),
        4,
        "one discovery per region"
    );
    let d = sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status().as_str(), "SUCCEEDED");

    // Run it again: zero mutating calls to any account's configuration.
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "second"]);
    assert_eq!(code, 0, "second onboard failed:\n{out}\n{err}");
    assert!(out.contains("changes    0"), "{out}");
    let second = cloud.configuration_changes();
    assert!(
        second.is_empty(),
        "the second run made mutating calls: {second:?}"
    );
    assert!(!cloud.calls().is_empty(), "the call log works");

    // Starting the same run id again does not create a second execution.
    let (code, _, _) = cloud.run(&["onboard", target, "--run-id", "second"]);
    assert_eq!(code, 0);
    let executions = sfn
        .list_executions()
        .state_machine_arn("arn:aws:states:us-east-1:123456789012:stateMachine:assure-onboarding")
        .send()
        .await
        .unwrap();
    assert_eq!(
        executions.executions().len(),
        2,
        "first and second, nothing more"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_before_any_change_naming_the_problem() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let target = ids["external"][0].as_str().unwrap().to_owned();
    cloud.reset_calls();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["12345".into()],
            "is not valid: an AWS account id is exactly 12 digits",
        ),
        (
            vec!["000011112222".into()],
            "account: account 000011112222 is not a member of the organization",
        ),
        (
            vec![s("management")],
            "is the organization's management account",
        ),
        (vec![s("logging")], "is the organization's logging account"),
        (
            vec![s("security")],
            "is the organization's security account",
        ),
        (
            vec![
                target.clone(),
                "--regions".into(),
                "us-east-1,mars-north-1".into(),
            ],
            "--regions: region \"mars-north-1\"",
        ),
        (
            vec![target.clone(), "--regions".into(), "eu-west-1".into()],
            "home region us-east-1 must be one of the run's regions",
        ),
        (
            vec![target, "--run-id".into(), "no spaces allowed".into()],
            "run id \"no spaces allowed\" is not valid",
        ),
    ];
    for (args, needle) in cases {
        let mut argv = vec!["onboard".to_owned()];
        argv.extend(args);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (code, _, err) = cloud.run(&argv);
        assert_eq!(code, 2, "{argv:?} exits 2:\n{err}");
        assert!(err.contains(needle), "{argv:?}: {needle:?} not in:\n{err}");
        assert!(
            err.contains("docs/errors/Assure.InvalidInput.md"),
            "points at the error page:\n{err}"
        );
    }
    let mutating: Vec<_> = cloud
        .calls()
        .into_iter()
        .filter(|c| c["mutating"] == true)
        .collect();
    assert!(
        mutating.is_empty(),
        "rejected input made mutating calls: {mutating:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_up_and_deploy_are_idempotent() {
    let cloud = LocalCloud::start();
    let (code, again, err) = cloud.run(&["local", "up", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        again["AWS_ENDPOINT_URL"],
        cloud.endpoint.as_str(),
        "the same cloud, not a second one"
    );

    let ids = cloud.seed_and_deploy("us-east-1");
    let (code, out, err) = cloud.run(&[
        "deploy",
        "--logging-account",
        ids["logging"].as_str().unwrap(),
        "--security-account",
        ids["security"].as_str().unwrap(),
        "--regions",
        "us-east-1",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        d["changes"],
        serde_json::json!([]),
        "a second deploy changes nothing"
    );
    assert_eq!(d["queues"].as_object().unwrap().len(), 4);

    // A changed setting updates in place.
    let (code, out, err) = cloud.run(&[
        "deploy",
        "--logging-account",
        ids["logging"].as_str().unwrap(),
        "--security-account",
        ids["security"].as_str().unwrap(),
        "--regions",
        "us-east-1,eu-west-1",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["changes"], serde_json::json!(["wrote deployment.json"]));

    // Onboarding before deploy in another cloud names the fix.
    let fresh = LocalCloud::start();
    let (code, _, err) = fresh.run(&["onboard", "123456789013"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("run `assure deploy` first"), "{err}");
}
