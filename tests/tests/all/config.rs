//! The configuration file on the local cloud: validated against its schema before anything is
//! called, then driving deploy and onboarding (regions, notifications, the failure policy).

use assure_e2e::LocalCloud;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_drives_deploy_and_onboarding_and_bad_ones_are_refused_by_field() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let (target, other) = (ids["external"][0].as_str().unwrap(), ids["external"][1].as_str().unwrap());
    let text = format!(
        r#"# The organization's baseline, under version control.
regions = ["us-east-1", "eu-west-1"]

[organization]
logging_account = "{}"
security_account = "{}"

[notifications]
protocol = "email"
endpoint = "secops@example.com"

[options]
on_failure = "rollback"
timeout_seconds = 600
"#,
        s("logging"),
        s("security")
    );
    let good = cloud.dir.path().join("assure.toml");
    std::fs::write(&good, &text).unwrap();
    let good = good.to_str().unwrap();

    // The schema is JSON Schema, and check fills in the defaults.
    let (code, out, _) = cloud.run(&["config", "schema"]);
    assert_eq!(code, 0);
    let schema: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(schema["properties"]["organization"].is_object(), "{schema}");
    let (code, out, err) = cloud.run(&["config", "check", good, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let checked: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(checked["role_name"], "AssureExecutionRole");
    assert_eq!(checked["options"]["concurrency"], 4);

    // A bad file is refused before any call, naming the field and the reason.
    let bad = cloud.dir.path().join("bad.toml");
    std::fs::write(&bad, text.replace(&s("security"), "12345").replace("eu-west-1", "eu-west-9")).unwrap();
    cloud.reset_calls();
    let (code, _, err) = cloud.run(&["--config", bad.to_str().unwrap(), "deploy"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("organization.security_account: \"12345\" does not match"), "{err}");
    assert!(err.contains("regions[1]: "), "every problem is named: {err}");
    assert!(cloud.calls().is_empty(), "a bad file makes no call: {:?}", cloud.calls());

    // Deploy and onboard from the file: its regions, and the alarm topic's subscriber.
    let (code, out, err) = cloud.run(&["--config", good, "deploy", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let deployed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(deployed["settings"]["regions"], json!(["us-east-1", "eu-west-1"]), "{deployed}");
    let (code, out, err) = cloud.run(&["--config", good, "onboard", target, "--run-id", "from-config"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("regions    us-east-1, eu-west-1"), "{out}");
    let sns = aws_sdk_sns::Client::new(&cloud.sdk_config_as(target, "us-east-1").await);
    let topic = format!("arn:aws:sns:us-east-1:{target}:assure-security-alarms");
    let subs = sns.list_subscriptions_by_topic().topic_arn(&topic).send().await.unwrap();
    let found: Vec<(&str, &str)> =
        subs.subscriptions().iter().map(|s| (s.protocol().unwrap(), s.endpoint().unwrap())).collect();
    assert_eq!(found, [("email", "secops@example.com")]);
    // Once: a second run subscribes nobody again.
    cloud.reset_calls();
    let (code, out, _) = cloud.run(&["--config", good, "onboard", target, "--run-id", "from-config-again"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("changes    0"), "{out}");
    assert!(cloud.configuration_changes().is_empty());

    // The file's failure policy applies: a denied subscription rolls the other account back.
    cloud.faults(
        json!([{"service": "sns", "operation": "Subscribe", "error": "AccessDenied", "rate": 1.0, "count": 1}]),
    );
    let (code, out, err) = cloud.run(&["--config", good, "onboard", other, "--run-id", "denied"]);
    cloud.faults(json!([]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("sns:Subscribe") && err.contains("Assure.AccessDenied"), "{err}");
    assert!(out.contains("→ Rollback"), "rolled back by the file's policy:\n{out}\n{err}");
}

#[test]
fn completions_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(assure_e2e::bin_dir().join("assure"))
            .args(["completions", shell])
            .output()
            .expect("run assure");
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in ["onboard", "history", "report", "schema", "output"] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
}
