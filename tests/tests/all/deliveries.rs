//! Proof of delivery: a run proves that every path works, not only that it is configured, and
//! `assure verify --deliveries` names the path, the region and AWS's reason when one is broken.

use assure_e2e::LocalCloud;
use serde_json::Value;

const REGIONS: &str = "us-east-1,eu-west-1";

/// `assure verify ACCOUNT --deliveries`: (exit code, the deliveries' evidence by (path, region)).
fn prove(cloud: &LocalCloud, target: &str, wait: &str) -> (i32, Vec<Value>, String) {
    prove_with(cloud, &[], target, wait)
}

/// [`prove`], with `global` arguments first (`--config FILE`).
fn prove_with(cloud: &LocalCloud, global: &[&str], target: &str, wait: &str) -> (i32, Vec<Value>, String) {
    let args = [global, &["verify", target, "--deliveries", "--wait", wait, "--output", "json"]].concat();
    let (code, out, err) = cloud.run(&args);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let proofs: Vec<Value> = doc["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["control"].as_str().unwrap().starts_with("deliveries."))
        .cloned()
        .collect();
    (code, proofs, err)
}

fn one<'a>(proofs: &'a [Value], path: &str, region: &str) -> &'a Value {
    proofs
        .iter()
        .find(|e| e["control"] == path && e["region"] == region)
        .unwrap_or_else(|| panic!("no {path} in {region}: {proofs:#?}"))
}

fn failed(proofs: &[Value]) -> Vec<String> {
    proofs
        .iter()
        .filter(|e| e["passed"] != true)
        .map(|e| format!("{} {}", e["control"].as_str().unwrap(), e["region"].as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_delivery_is_proven_and_a_broken_path_is_named_with_awss_reason() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy(REGIONS);
    let target = ids["external"][0].as_str().unwrap();
    let logging = ids["logging"].as_str().unwrap();
    let security = ids["security"].as_str().unwrap();

    // The run itself proves delivery (on by default with the local cloud): its Verify state waits,
    // bounded, for each canary, and the summary names where each arrived.
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "proven", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // 2 regions × (trail, snapshot, finding, analyzer) + the alarm + the session on the instance
    // the seed tagged assure:canary in the home region.
    let proven = assure_e2e::Followed::of(&out);
    assert_eq!(proven.verified(true), (10, 10), "{out}");
    assert!(out.contains("after the canary"), "each proof says when it arrived: {out}");

    // On demand, every path in every region, each with its object and its time.
    let (code, proofs, err) = prove(&cloud, target, "60");
    assert_eq!(code, 0, "{proofs:#?}\n{err}");
    assert_eq!(proofs.len(), 10, "{proofs:#?}");
    for p in &proofs {
        let took = p["tookSeconds"].as_f64().unwrap_or_else(|| panic!("no time: {p}"));
        assert!((0.0..60.0).contains(&took), "{p}");
    }
    let session = one(&proofs, "deliveries.session-manager", "us-east-1");
    let log = session["resource"].as_str().unwrap();
    assert!(
        log.starts_with(&format!("s3://assure-logs-{logging}-us-east-1/session-manager/{target}/us-east-1/")),
        "{session}"
    );
    // The log is there for a client that is not ours, encrypted with the logging key.
    let (bucket_name, key) = log.trim_start_matches("s3://").split_once('/').unwrap();
    let head = aws_sdk_s3::Client::new(&cloud.sdk_config_as(logging, "us-east-1").await)
        .head_object()
        .bucket(bucket_name)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.server_side_encryption().map(|e| e.as_str()), Some("aws:kms"));
    for region in REGIONS.split(',') {
        let trail = one(&proofs, "deliveries.cloudtrail", region);
        let key = trail["resource"].as_str().unwrap();
        assert!(
            key.starts_with(&format!("s3://assure-logs-{logging}-us-east-1/AWSLogs/{target}/CloudTrail/{region}/")),
            "{trail}"
        );
        let finding = one(&proofs, "deliveries.guardduty", region);
        assert!(
            finding["resource"].as_str().unwrap().contains(&format!("/AWSLogs/{security}/GuardDuty/{region}/")),
            "{finding}"
        );
        let analyzer = one(&proofs, "deliveries.access-analyzer", region);
        assert!(analyzer["resource"].as_str().unwrap().contains("/access-analyzer/"), "{analyzer}");
        let snapshot = one(&proofs, "deliveries.config", region);
        assert!(snapshot["resource"].as_str().unwrap().contains("/ConfigSnapshot/"), "{snapshot}");
    }
    let alarm = one(&proofs, "deliveries.alarm", "us-east-1");
    assert!(alarm["detail"].as_str().unwrap().contains("Successfully executed action"), "{alarm}");
    // The canary leaves nothing behind: its role is gone, the alarm is back to OK.
    let iam = aws_sdk_iam::Client::new(&cloud.sdk_config_as(target, "us-east-1").await);
    let roles = iam.list_roles().send().await.unwrap();
    let left: Vec<&str> =
        roles.roles().iter().map(|r| r.role_name()).filter(|n| n.starts_with("assure-delivery-canary")).collect();
    assert!(left.is_empty(), "canary roles stayed: {left:?}");
    let cw = aws_sdk_cloudwatch::Client::new(&cloud.sdk_config_as(target, "us-east-1").await);
    let alarms = cw.describe_alarms().alarm_names("assure-root-account-usage").send().await.unwrap();
    assert_eq!(alarms.metric_alarms()[0].state_value().unwrap().as_str(), "OK");

    // The logging bucket's statement for the delivering services removed: CloudTrail, Config and
    // GuardDuty cannot write, and each says so where AWS says it.
    let s3 = aws_sdk_s3::Client::new(&cloud.sdk_config_as(logging, "us-east-1").await);
    let bucket = format!("assure-logs-{logging}-us-east-1");
    let policy = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap().policy().unwrap().to_owned();
    let mut broken: Value = serde_json::from_str(&policy).unwrap();
    broken["Statement"].as_array_mut().unwrap().retain(|s| s["Sid"] != "ServicesDeliverLogs");
    s3.put_bucket_policy().bucket(&bucket).policy(broken.to_string()).send().await.unwrap();
    let (code, proofs, _) = prove(&cloud, target, "20");
    assert_ne!(code, 0);
    for region in REGIONS.split(',') {
        let trail = one(&proofs, "deliveries.cloudtrail", region);
        assert!(trail["detail"].as_str().unwrap().contains("LatestDeliveryError"), "{trail}");
        let snapshot = one(&proofs, "deliveries.config", region);
        assert!(snapshot["detail"].as_str().unwrap().contains("failed"), "{snapshot}");
        let finding = one(&proofs, "deliveries.guardduty", region);
        assert!(finding["detail"].as_str().unwrap().contains("UNABLE_TO_PUBLISH"), "{finding}");
    }
    assert_eq!(
        one(&proofs, "deliveries.alarm", "us-east-1")["passed"],
        true,
        "the alarm's path does not use the bucket"
    );
    s3.put_bucket_policy().bucket(&bucket).policy(&policy).send().await.unwrap();
    let (code, proofs, err) = prove(&cloud, target, "60");
    assert_eq!(code, 0, "restored: {:?}\n{err}", failed(&proofs));

    // The findings' cross-region rule in eu-west-1 disabled: that region's findings never reach
    // the home region, and only that path in that region fails.
    let events = aws_sdk_eventbridge::Client::new(&cloud.sdk_config_as(security, "eu-west-1").await);
    let rule = events.describe_rule().name("assure-access-analyzer-findings").send().await.unwrap();
    let put = |state: aws_sdk_eventbridge::types::RuleState| {
        events
            .put_rule()
            .name("assure-access-analyzer-findings")
            .event_pattern(rule.event_pattern().unwrap())
            .state(state)
            .send()
    };
    put(aws_sdk_eventbridge::types::RuleState::Disabled).await.unwrap();
    let (code, proofs, _) = prove(&cloud, target, "20");
    assert_ne!(code, 0);
    assert_eq!(failed(&proofs), vec!["deliveries.access-analyzer eu-west-1"], "{proofs:#?}");
    put(aws_sdk_eventbridge::types::RuleState::Enabled).await.unwrap();

    // The alarm key's statement for CloudWatch removed: the alarm cannot publish to its encrypted
    // topic, and its history says why.
    let kms = aws_sdk_kms::Client::new(&cloud.sdk_config_as(target, "us-east-1").await);
    let key = kms.describe_key().key_id("alias/assure-alarms").send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let policy =
        kms.get_key_policy().key_id(&key_id).policy_name("default").send().await.unwrap().policy().unwrap().to_owned();
    let mut broken: Value = serde_json::from_str(&policy).unwrap();
    broken["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| !s["Principal"]["Service"].to_string().contains("cloudwatch.amazonaws.com"));
    kms.put_key_policy().key_id(&key_id).policy_name("default").policy(broken.to_string()).send().await.unwrap();
    let (code, proofs, _) = prove(&cloud, target, "20");
    assert_ne!(code, 0);
    assert_eq!(failed(&proofs), vec!["deliveries.alarm us-east-1"], "{proofs:#?}");
    let alarm = one(&proofs, "deliveries.alarm", "us-east-1");
    assert!(alarm["detail"].as_str().unwrap().contains("Failed to execute action"), "{alarm}");
    kms.put_key_policy().key_id(&key_id).policy_name("default").policy(&policy).send().await.unwrap();
    let (code, proofs, err) = prove(&cloud, target, "60");
    assert_eq!(code, 0, "restored: {:?}\n{err}", failed(&proofs));

    // The instance's role without its grant to write session logs: the session still runs, and
    // its log never arrives (the agent's own log on the instance says why, as on AWS).
    let role = "assure-demo-instance";
    let grant = iam.get_role_policy().role_name(role).policy_name("SessionLogs").send().await.unwrap();
    let grant = assure_core::aws::decode_policy(grant.policy_document()).unwrap().to_string();
    iam.delete_role_policy().role_name(role).policy_name("SessionLogs").send().await.unwrap();
    let (code, proofs, _) = prove(&cloud, target, "20");
    assert_ne!(code, 0);
    assert_eq!(failed(&proofs), vec!["deliveries.session-manager us-east-1"], "{proofs:#?}");
    iam.put_role_policy().role_name(role).policy_name("SessionLogs").policy_document(grant).send().await.unwrap();
    let (code, proofs, err) = prove(&cloud, target, "60");
    assert_eq!(code, 0, "restored: {:?}\n{err}", failed(&proofs));
}

/// A brownfield account whose sessions are encrypted with a key of its own, and an alarm topic
/// with a subscriber: onboarding keeps the account's key, its sessions still start and their logs
/// arrive; the alarm's notification reaches the subscriber. Each broken on its own fails only its
/// path, with AWS's reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_brownfield_session_key_and_the_alarm_subscriber_are_proven() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let target = ids["external"][0].as_str().unwrap();
    let config = cloud.dir.path().join("assure.toml");
    std::fs::write(
        &config,
        format!(
            "regions = [\"us-east-1\"]\n[organization]\nlogging_account = \"{}\"\nsecurity_account = \"{}\"\n\
             [notifications]\nprotocol = \"email\"\nendpoint = \"secops@example.com\"\n",
            s("logging"),
            s("security")
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    // The account's administrator encrypts session data with a key of the account's own, and gives
    // the instance's role what the agent needs of it (Session Manager "Adding Session Manager
    // permissions": kms:Decrypt for the instance profile).
    let admin = cloud.admin_config_as(target, "us-east-1").await;
    let kms = aws_sdk_kms::Client::new(&admin);
    let key = kms.create_key().description("the team's session key").send().await.unwrap();
    let key_arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let ssm = aws_sdk_ssm::Client::new(&admin);
    let preferences = "SSM-SessionManagerRunShell";
    let doc = ssm.get_document().name(preferences).send().await.unwrap();
    let mut content: Value = serde_json::from_str(doc.content().unwrap()).unwrap();
    content["inputs"]["kmsKeyId"] = Value::String(key_arn.clone());
    let updated = ssm
        .update_document()
        .name(preferences)
        .document_version("$LATEST")
        .content(content.to_string())
        .send()
        .await
        .unwrap();
    let version = updated.document_description().unwrap().document_version().unwrap().to_owned();
    ssm.update_document_default_version().name(preferences).document_version(version).send().await.unwrap();
    let role = "assure-demo-instance";
    let session_key = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn}]})
    .to_string();
    let iam = aws_sdk_iam::Client::new(&admin);
    iam.put_role_policy().role_name(role).policy_name("SessionKey").policy_document(&session_key).send().await.unwrap();

    let (code, out, err) = cloud.run(&["--config", config, "deploy"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cloud.run(&["--config", config, "onboard", target, "--run-id", "keyed", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // 1 region × (trail, snapshot, finding, analyzer) + the alarm + the session.
    assert_eq!(assure_e2e::Followed::of(&out).verified(true), (6, 6), "{out}");

    // The account's key is still the session data key; the session's log arrived all the same.
    let member = cloud.sdk_config_as(target, "us-east-1").await;
    let ssm = aws_sdk_ssm::Client::new(&member);
    let doc = ssm.get_document().name(preferences).send().await.unwrap();
    let content: Value = serde_json::from_str(doc.content().unwrap()).unwrap();
    assert_eq!(content["inputs"]["kmsKeyId"], key_arn.as_str(), "{content}");
    let global = ["--config", config];
    let (code, proofs, err) = prove_with(&cloud, &global, target, "60");
    assert_eq!(code, 0, "{:?}\n{err}", failed(&proofs));
    let alarm = one(&proofs, "deliveries.alarm", "us-east-1");
    assert!(alarm["detail"].as_str().unwrap().contains("SNS delivered"), "{alarm}");

    // The instance's role without the key: the agent cannot decrypt the session's data key, the
    // session fails as it starts, and only the session's path fails, saying so.
    let iam = aws_sdk_iam::Client::new(&member);
    iam.delete_role_policy().role_name(role).policy_name("SessionKey").send().await.unwrap();
    let (code, proofs, _) = prove_with(&cloud, &global, target, "20");
    assert_ne!(code, 0);
    assert_eq!(failed(&proofs), vec!["deliveries.session-manager us-east-1"], "{proofs:#?}");
    let session = one(&proofs, "deliveries.session-manager", "us-east-1");
    assert!(session["detail"].as_str().unwrap().contains("KMSEncryption"), "{session}");
    iam.put_role_policy().role_name(role).policy_name("SessionKey").policy_document(&session_key).send().await.unwrap();
    let (code, proofs, err) = prove_with(&cloud, &global, target, "60");
    assert_eq!(code, 0, "restored: {:?}\n{err}", failed(&proofs));

    // The subscription removed (by the account's administrator, with assure's SCPs detached, as
    // before onboarding): CloudWatch still publishes to the topic, and nobody receives it.
    let orgs = aws_sdk_organizations::Client::new(&cloud.sdk_config().await);
    let detached = super::iam::detach_assure_scps(&orgs, target).await;
    let sns = aws_sdk_sns::Client::new(&admin);
    let topic = format!("arn:aws:sns:us-east-1:{target}:assure-security-alarms");
    let subs = sns.list_subscriptions_by_topic().topic_arn(&topic).send().await.unwrap();
    assert_eq!(subs.subscriptions().len(), 1, "{subs:?}");
    for sub in subs.subscriptions() {
        sns.unsubscribe().subscription_arn(sub.subscription_arn().unwrap()).send().await.unwrap();
    }
    super::iam::attach_scps(&orgs, target, &detached).await;
    let (code, proofs, _) = prove_with(&cloud, &global, target, "20");
    assert_ne!(code, 0);
    assert_eq!(failed(&proofs), vec!["deliveries.alarm us-east-1"], "{proofs:#?}");
    let alarm = one(&proofs, "deliveries.alarm", "us-east-1");
    assert!(alarm["detail"].as_str().unwrap().contains("reached nobody"), "{alarm}");
}
