//! A baseline changed after onboarding (by the one principal the SCPs leave able to, or in the
//! management account) is brought back by the next run, through each step's update path; and on a
//! slow cloud every step keeps its message (the task's liveness) by extending its visibility.

use assure_core::controls::names::{ALARM_TOPIC, FINDINGS, TRAIL, TRAIL_LOGS_ROLE};
use assure_e2e::LocalCloud;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_brings_a_drifted_baseline_back_and_every_step_keeps_its_message() {
    let cloud = LocalCloud::start_with(&[("ASSURE_HEARTBEAT_SECONDS", "0.2")]);
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    let security = ids["security"].as_str().unwrap();
    // AWS is not on loopback: every call takes a while, so every step outlives an extension interval.
    cloud.limits(json!({"latencyMs": 120}));
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "first"]);
    assert_eq!(code, 0, "{out}\n{err}");
    cloud.limits(json!({}));

    let decisions = std::fs::read_to_string(cloud.dir.path().join("authz.jsonl")).unwrap();
    for step in assure_contract::StepName::ALL {
        if step == assure_contract::StepName::Rollback || !step.account_run() {
            continue;
        }
        let role = format!(":role/{}", assure_core::pipeline::resources::step_role_name(step));
        assert!(
            decisions.lines().any(|l| l.contains(&role) && l.contains("\"sqs:ChangeMessageVisibility\"")),
            "{step} never extended its message"
        );
    }

    // The drift, made by the member role (exempt from assure's SCPs) and the management account.
    let member = cloud.sdk_config_as(target, "us-east-1").await;
    let ct = aws_sdk_cloudtrail::Client::new(&member);
    ct.update_trail().name(TRAIL).enable_log_file_validation(false).send().await.unwrap();
    let sns = aws_sdk_sns::Client::new(&member);
    let topic = format!("arn:aws:sns:us-east-1:{target}:{ALARM_TOPIC}");
    let topic_key = |attrs: &aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesOutput| {
        attrs.attributes().and_then(|a| a.get("KmsMasterKeyId")).cloned()
    };
    let key_before = topic_key(&sns.get_topic_attributes().topic_arn(&topic).send().await.unwrap());
    assert!(key_before.as_deref().is_some_and(|k| k.contains(":key/")), "a customer managed key: {key_before:?}");
    // Encrypted still, but with the AWS managed key, whose policy CloudWatch may not use: no alarm
    // could notify, and verify says so.
    sns.set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value("alias/aws/sns")
        .send()
        .await
        .unwrap();
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.lines().any(|l| l.starts_with('✗') && l.contains("alarms.topic-encrypted")), "{out}");
    let iam = aws_sdk_iam::Client::new(&member);
    let trust = |out: aws_sdk_iam::operation::get_role::GetRoleOutput| {
        out.role().and_then(|r| r.assume_role_policy_document()).and_then(assure_core::aws::decode_policy).unwrap()
    };
    let trust_before = trust(iam.get_role().role_name(TRAIL_LOGS_ROLE).send().await.unwrap());
    let loose = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    iam.update_assume_role_policy().role_name(TRAIL_LOGS_ROLE).policy_document(loose.to_string()).send().await.unwrap();
    let fh = aws_sdk_firehose::Client::new(&cloud.sdk_config_as(security, "us-east-1").await);
    let stream = fh.describe_delivery_stream().delivery_stream_name(FINDINGS).send().await.unwrap();
    let desc = stream.delivery_stream_description().unwrap();
    let prefix = |d: &aws_sdk_firehose::types::DeliveryStreamDescription| {
        d.destinations()[0].extended_s3_destination_description().and_then(|e| e.prefix()).map(str::to_owned)
    };
    let prefix_before = prefix(desc);
    fh.update_destination()
        .delivery_stream_name(FINDINGS)
        .current_delivery_stream_version_id(desc.version_id())
        .destination_id(desc.destinations()[0].destination_id())
        .extended_s3_destination_update(
            aws_sdk_firehose::types::ExtendedS3DestinationUpdate::builder().prefix("drifted/").build(),
        )
        .send()
        .await
        .unwrap();
    let orgs = aws_sdk_organizations::Client::new(&cloud.sdk_config().await);
    let scps = orgs
        .list_policies()
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let scp = scps.policies().iter().find(|p| p.name().is_some_and(|n| n.starts_with("assure-"))).unwrap();
    let content = |out: aws_sdk_organizations::operation::describe_policy::DescribePolicyOutput| -> Value {
        serde_json::from_str(out.policy().and_then(|p| p.content()).unwrap()).unwrap()
    };
    let scp_before = content(orgs.describe_policy().policy_id(scp.id().unwrap()).send().await.unwrap());
    let mut weaker = scp_before.clone();
    weaker["Statement"].as_array_mut().unwrap().truncate(1);
    orgs.update_policy().policy_id(scp.id().unwrap()).content(weaker.to_string()).send().await.unwrap();

    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "again"]);
    assert_eq!(code, 0, "{out}\n{err}");

    let trails = ct.describe_trails().send().await.unwrap();
    let trail = trails.trail_list().iter().find(|t| t.name() == Some(TRAIL)).unwrap();
    assert_eq!(trail.log_file_validation_enabled(), Some(true), "trail validation restored");
    assert_eq!(topic_key(&sns.get_topic_attributes().topic_arn(&topic).send().await.unwrap()), key_before);
    assert_eq!(trust(iam.get_role().role_name(TRAIL_LOGS_ROLE).send().await.unwrap()), trust_before);
    let stream = fh.describe_delivery_stream().delivery_stream_name(FINDINGS).send().await.unwrap();
    assert_eq!(prefix(stream.delivery_stream_description().unwrap()), prefix_before, "findings prefix restored");
    assert_eq!(content(orgs.describe_policy().policy_id(scp.id().unwrap()).send().await.unwrap()), scp_before);
}

/// A trail that is configured but cannot deliver fails verify, naming CloudTrail's own error: the
/// logging bucket's policy loses the services' write, and GetTrailStatus reports the failed
/// delivery (API_GetTrailStatus, `LatestDeliveryError`), which verify reads in the same call that
/// says whether the trail logs.
#[tokio::test(flavor = "multi_thread")]
async fn a_trail_that_cannot_deliver_fails_verify_naming_the_delivery_error() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    let logging = ids["logging"].as_str().unwrap();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "first"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 0, "{out}\n{err}");

    let s3 = aws_sdk_s3::Client::new(&cloud.sdk_config_as(logging, "us-east-1").await);
    // Named as RunInput::logging_bucket names it (the member role may not list buckets).
    let bucket = format!("assure-logs-{logging}-us-east-1");
    let policy = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    let mut doc: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    doc["Statement"].as_array_mut().unwrap().retain(|s| s["Sid"] != "ServicesDeliverLogs");
    s3.put_bucket_policy().bucket(&bucket).policy(doc.to_string()).send().await.unwrap();

    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 1, "{out}\n{err}");
    let line = out.lines().find(|l| l.contains("cloudtrail.to-logging-account")).unwrap_or_default();
    assert!(line.starts_with('✗') && line.contains("the last delivery failed: AccessDenied"), "{out}");
}
