//! Each step's role: what it lacks is named, and restored it passes.

use assure_e2e::LocalCloud;

/// A step role's policy (`step`), as the deployment made it.
pub(super) async fn step_policy(iam: &aws_sdk_iam::Client, role: &str) -> serde_json::Value {
    let doc = iam.get_role_policy().role_name(role).policy_name("step").send().await.unwrap();
    assure_core::aws::decode_policy(doc.policy_document()).unwrap()
}

pub(super) async fn put_step_policy(iam: &aws_sdk_iam::Client, role: &str, doc: &serde_json::Value) {
    iam.put_role_policy().role_name(role).policy_name("step").policy_document(doc.to_string()).send().await.unwrap();
}

/// Least privilege, one role at a time: an action taken from a step's role fails exactly that step
/// with Assure.AccessDenied naming the action; restored, the run resumes past it. One run, held at
/// each step in turn and retried.
#[tokio::test(flavor = "multi_thread")]
async fn each_step_fails_naming_the_action_its_role_lacks_and_passes_once_it_is_restored() {
    use assure_contract::StepName;
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    // The step roles are the pipeline account's.
    let iam = aws_sdk_iam::Client::new(&cloud.pipeline_config().await);
    // The rollback step's role has a test of its own (below). Steps in the branches of a Parallel
    // state run while a sibling fails, so a step may have completed before its case comes: its
    // retry then checks it read-only (its checkpoint, a plan). The one action used only while
    // acting (GuardDuty's) comes first of its Parallel; the others are needed by that check too.
    let reduce = |original: &serde_json::Value, action: &str| {
        let mut reduced = original.clone();
        let statements = reduced["Statement"].as_array_mut().unwrap();
        for st in statements.iter_mut() {
            match &st["Action"] {
                serde_json::Value::String(a) if a == action => st["Action"] = serde_json::json!([]),
                serde_json::Value::Array(list) => {
                    st["Action"] = list.iter().filter(|a| a.as_str() != Some(action)).cloned().collect();
                }
                _ => {}
            }
        }
        statements.retain(|st| st["Action"].as_array().is_none_or(|a| !a.is_empty()));
        assert_ne!(&reduced, original, "the role has no {action}");
        reduced
    };

    let cases = [
        // A step's process keeps the sessions it assumed for their lifetime (as on AWS, a session
        // outlives a change to the policy that let it be assumed), so sts:AssumeRole is taken away
        // only from a step that has not run yet; the others lose the checkpoint write.
        (StepName::Discover, "sts:AssumeRole"),
        (StepName::LoggingBucket, "s3:GetObject"),
        // The GuardDuty step reaches the management account (EnableOrganizationAdminAccount) and
        // the member accounts through roles it assumes.
        (StepName::GuardDuty, "sts:AssumeRole"),
        (StepName::CloudTrail, "s3:PutObject"),
        (StepName::StopCloudTrail, "s3:PutObject"),
        (StepName::StopGuardDuty, "s3:PutObject"),
        (StepName::Config, "s3:GetObject"),
        (StepName::AccessAnalyzer, "s3:GetObject"),
        (StepName::SessionManager, "s3:PutObject"),
        (StepName::Alarms, "s3:PutObject"),
        // The SCPs are attached beside the other controls' steps, so an earlier case's run may
        // have attached them: an action the step needs even to find them in place.
        (StepName::Scps, "organizations:ListPoliciesForTarget"),
        (StepName::Verify, "organizations:DescribePolicy"),
    ];
    for (i, (step, action)) in cases.iter().enumerate() {
        let role = assure_core::pipeline::resources::step_role_name(*step);
        let original = step_policy(&iam, &role).await;
        put_step_policy(&iam, &role, &reduce(&original, action)).await;
        let (code, out, err) = if i == 0 {
            cloud.run(&["onboard", target, "--run-id", "lean"])
        } else {
            cloud.run(&["runs", "retry", "lean"])
        };
        assert_eq!(code, 1, "{step} ran without {action}:\n{out}\n{err}");
        let failed = format!("✗ {:<15}", step.as_str());
        let line = err.lines().find(|l| l.contains(&failed)).unwrap_or_else(|| panic!("{step} did not fail:\n{err}"));
        assert!(line.contains("Assure.AccessDenied") && line.contains(action), "{step}: {line}");
        put_step_policy(&iam, &role, &original).await;
    }
    let (code, out, err) = cloud.run(&["runs", "retry", "lean"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("SUCCEEDED"), "{out}");

    // The CLI runs the preflight step itself before it starts a run; the preflight task does it in
    // the runs the CLI does not start, an account's run in a bulk run among them. (Last: the bulk
    // run's organization step does what the GuardDuty case above needs to do.)
    let role = assure_core::pipeline::resources::step_role_name(StepName::Preflight);
    let original = step_policy(&iam, &role).await;
    put_step_policy(&iam, &role, &reduce(&original, "organizations:DescribeAccount")).await;
    let file = cloud.dir.path().join("one.txt");
    std::fs::write(&file, format!("{target}\n")).unwrap();
    let (code, out, err) = cloud.run(&["onboard", "--accounts-file", file.to_str().unwrap(), "--output", "json"]);
    assert_eq!(code, 1, "preflight ran without organizations:DescribeAccount:\n{out}\n{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let error = summary["accounts"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("Assure.AccessDenied") && error.contains("organizations:DescribeAccount"), "{summary}");
    put_step_policy(&iam, &role, &original).await;
}

/// The rollback step's role, as the others: without organizations:DetachPolicy, the rollback of a
/// failed run fails naming it (and the run says so); the policy restored, the operator's rollback
/// of the same run completes. On a slow cloud the rollback task also keeps its message.
#[tokio::test(flavor = "multi_thread")]
async fn the_rollback_step_fails_naming_the_action_its_role_lacks() {
    let cloud = LocalCloud::start_with(&[("ASSURE_HEARTBEAT_SECONDS", "0.2")]);
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    // The step roles are the pipeline account's.
    let iam = aws_sdk_iam::Client::new(&cloud.pipeline_config().await);
    let role = assure_core::pipeline::resources::step_role_name(assure_contract::StepName::Rollback);
    let original = step_policy(&iam, &role).await;
    let mut reduced = original.clone();
    let statements = reduced["Statement"].as_array_mut().unwrap();
    statements.retain(|st| st["Action"] != serde_json::json!(["organizations:DetachPolicy"]));
    assert_ne!(reduced, original, "{role} has no statement of organizations:DetachPolicy alone");
    put_step_policy(&iam, &role, &reduced).await;

    // Verify fails after the SCPs are attached; the rollback policy must detach them.
    cloud.faults(serde_json::json!([{"service": "organizations", "operation": "DescribePolicy", "error": "AccessDenied", "rate": 1.0, "count": 1000}]));
    cloud.limits(serde_json::json!({"latencyMs": 120}));
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "stuck", "--on-failure", "rollback"]);
    cloud.limits(serde_json::json!({}));
    cloud.faults(serde_json::json!([]));
    assert_eq!(code, 1, "{out}\n{err}");
    let line =
        err.lines().find(|l| l.contains("✗ rollback")).unwrap_or_else(|| panic!("rollback did not fail:\n{err}"));
    assert!(line.contains("Assure.AccessDenied") && line.contains("organizations:DetachPolicy"), "{line}");
    let decisions = std::fs::read_to_string(cloud.dir.path().join("authz.jsonl")).unwrap();
    let beats = format!(":role/{role}");
    assert!(
        decisions.lines().any(|l| l.contains(&beats) && l.contains("\"sqs:ChangeMessageVisibility\"")),
        "the rollback task never extended its message"
    );

    put_step_policy(&iam, &role, &original).await;
    let (code, out, err) = cloud.run(&["runs", "rollback", "stuck"]);
    assert_eq!(code, 0, "{out}\n{err}");
}
