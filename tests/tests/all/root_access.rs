//! Centralized root access (`options.root_access = "centralized"`, CIS v7.0.0 2.1.1), and an
//! `https` alarm endpoint whose secret stays out of every record a run leaves, on the local cloud,
//! seen through the AWS CLI.

use assure_e2e::LocalCloud;
use serde_json::{json, Value};

use super::iam::{aws_cli, credentials};

/// A webhook endpoint whose path is its secret, as chat and paging services issue them.
const SECRET: &str = "T0KEN-5ecret-b1b2b3";

#[tokio::test(flavor = "multi_thread")]
async fn centralized_root_access_leaves_no_root_credentials_and_no_secret_in_records() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let target = ids["external"][0].as_str().unwrap();

    // The account's root user as an external account has it: a password (the seed's), an access
    // key, a signing certificate and a virtual MFA device.
    let body = json!({"account": target, "accessKey": true, "signingCertificate": true, "mfaDevice": true});
    let seeded: Value = serde_json::from_str(&assure_e2e::http(
        &cloud.endpoint,
        "POST",
        "/assure-api/root-credentials",
        &body.to_string(),
    ))
    .unwrap();
    let root_key = aws_sdk_sts::config::Credentials::new(
        seeded["AccessKeyId"].as_str().unwrap(),
        seeded["SecretAccessKey"].as_str().unwrap(),
        None,
        None,
        "root",
    );
    let before = cloud.root_user(target);
    assert!(before["password"].is_object(), "{before}");
    assert_eq!(before["mfaDevices"].as_array().map(Vec::len), Some(1), "{before}");

    let config = cloud.dir.path().join("assure.toml");
    // A webhook on the internet, which the local cloud cannot reach: SNS would count every alarm
    // notification failed, so these runs do not prove delivery (tests/tests/all/deliveries.rs does).
    let endpoint = format!("https://hooks.example.com/services/{SECRET}");
    std::fs::write(
        &config,
        format!(
            "regions = [\"us-east-1\"]\n[organization]\nlogging_account = \"{}\"\nsecurity_account = \"{}\"\n\
             [notifications]\nprotocol = \"https\"\nendpoint = \"{endpoint}\"\n[options]\nroot_access = \"centralized\"\nprove_deliveries = false\n",
            s("logging"),
            s("security")
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (code, out, err) = cloud.run(&["--config", config, "deploy"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // The plan names the organization's features and the account's root credentials.
    let (code, out, err) = cloud.run(&["--config", config, "plan", target, "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    for change in ["iam:organizationsFeatures/RootSessions", "iam:root/credentials"] {
        assert!(out.contains(change), "{change} not planned:\n{out}");
    }

    let (code, out, err) = cloud.run(&["--config", config, "onboard", target, "--run-id", "rooted"]);
    assert_eq!(code, 0, "{out}\n{err}");

    // No root credential is left, and the old key no longer works.
    let after = cloud.root_user(target);
    assert!(after["password"].is_null(), "{after}");
    for kind in ["accessKeys", "signingCertificates", "mfaDevices"] {
        assert_eq!(after[kind], json!([]), "{kind}: {after}");
    }
    let (code, _, err) = aws_cli(&cloud, &root_key, &["sts", "get-caller-identity"]);
    assert!(code != 0 && err.contains("InvalidClientTokenId"), "{err}");
    let management = credentials(&cloud.sdk_config().await).await;
    let (code, out, err) = aws_cli(
        &cloud,
        &management,
        &["iam", "list-organizations-features", "--query", "EnabledFeatures", "--output", "text"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["RootCredentialsManagement", "RootSessions"]);
    let member = credentials(&cloud.sdk_config_as(target, "us-east-1").await).await;
    let (code, out, err) = aws_cli(
        &cloud,
        &member,
        &[
            "iam",
            "get-account-summary",
            "--query",
            "SummaryMap.[AccountPasswordPresent,AccountAccessKeysPresent]",
            "--output",
            "text",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["0", "0"]);
    let (code, out, err) = cloud.run(&["--config", config, "verify", target]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("scps.root-credentials") && out.contains("scps.centralized-root"), "{out}");

    // The alarm topic's subscriber is the whole endpoint; no record of the run holds its secret:
    // not the execution history, not a checkpoint, not the report.
    let (code, out, err) = aws_cli(
        &cloud,
        &member,
        &[
            "sns",
            "list-subscriptions-by-topic",
            "--topic-arn",
            &format!("arn:aws:sns:us-east-1:{target}:assure-security-alarms"),
            "--query",
            "Subscriptions[].Endpoint",
            "--output",
            "text",
        ],
    );
    assert_eq!((code, out.trim()), (0, endpoint.as_str()), "{err}");
    let (code, history, _) = cloud.run(&["runs", "history", "rooted", "--output", "json"]);
    assert_eq!(code, 0);
    assert!(history.contains("https://hooks.example.com/…") && !history.contains(SECRET), "{history}");
    // The executions and checkpoints are the pipeline account's.
    let pipeline = credentials(&cloud.pipeline_config().await).await;
    let cli = |args: &[&str]| {
        let (code, out, err) = aws_cli(&cloud, &pipeline, args);
        assert_eq!(code, 0, "{}: {err}", args.join(" "));
        out
    };
    let machines = cli(&[
        "stepfunctions",
        "list-state-machines",
        "--query",
        "stateMachines[].stateMachineArn",
        "--output",
        "text",
    ]);
    let mut histories = 0;
    for machine in machines.split_whitespace() {
        let executions = cli(&[
            "stepfunctions",
            "list-executions",
            "--state-machine-arn",
            machine,
            "--query",
            "executions[].executionArn",
            "--output",
            "text",
        ]);
        for execution in executions.split_whitespace() {
            let history = cli(&["stepfunctions", "get-execution-history", "--execution-arn", execution]);
            assert!(!history.contains(SECRET), "{execution}: {history}");
            histories += 1;
        }
    }
    assert!(histories > 0, "no execution found in {machines}");
    let buckets = cli(&["s3api", "list-buckets", "--query", "Buckets[].Name", "--output", "text"]);
    let checkpoints =
        buckets.split_whitespace().find(|b| b.starts_with("assure-checkpoints-")).expect("checkpoint bucket");
    let keys =
        cli(&["s3api", "list-objects-v2", "--bucket", checkpoints, "--query", "Contents[].Key", "--output", "text"]);
    let mut read = 0;
    for key in keys.split_whitespace().filter(|k| *k != "deployment.json") {
        let file = cloud.dir.path().join("object");
        cli(&["s3api", "get-object", "--bucket", checkpoints, "--key", key, file.to_str().unwrap()]);
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains(SECRET), "s3://{checkpoints}/{key} holds the secret: {text}");
        read += 1;
    }
    assert!(read > 5, "{keys}");
    let report = cloud.dir.path().join("report.html");
    let (code, _, err) = cloud.run(&["runs", "report", "rooted", "--out", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!std::fs::read_to_string(&report).unwrap().contains(SECRET));

    // Every step again changes nothing: no credential left, the endpoint subscribed.
    let (code, out, err) =
        cloud.run(&["--config", config, "onboard", target, "--run-id", "again", "--full", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(assure_e2e::Followed::of(&out).changes(), 0, "{out}");

    // Rollback lets the root user recover a password again and says what cannot come back.
    let (code, out, err) = cloud.run(&["runs", "rollback", "rooted"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("may recover its password again"), "{out}");
    assert!(out.contains("cannot be restored") && out.contains("access key"), "{out}");
    assert!(cloud.root_user(target)["password"].is_object());

    // A run that fails at verify under `--on-failure rollback`: the state machine's rollback
    // step lets the other account's root user recover its password again.
    let other = ids["external"][1].as_str().unwrap();
    cloud.faults(json!([{"service": "organizations", "operation": "ListPoliciesForTarget", "error": "AccessDenied",
                         "caller": "assure-step-verify", "count": 1}]));
    let (code, out, err) =
        cloud.run(&["--config", config, "onboard", other, "--run-id", "undone", "--on-failure", "rollback"]);
    cloud.faults(json!([]));
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(out.contains("→ Rollback"), "{out}\n{err}");
    assert!(cloud.root_user(other)["password"].is_object(), "{}", cloud.root_user(other));
}
