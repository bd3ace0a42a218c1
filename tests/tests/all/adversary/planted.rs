//! Roles and buckets planted ahead of assure: taken over, or refused.

use assure_core::controls::names::TRAIL_LOGS_ROLE;
use assure_e2e::LocalCloud;

use super::*;

/// Roles of assure's names made before onboarding, with an extra policy, a managed policy and a
/// deny-all permissions boundary, are taken over: after onboarding each is exactly what assure
/// makes, every removal recorded. A member role that is not its template's is refused before any
/// change, naming what differs.
#[tokio::test(flavor = "multi_thread")]
async fn planted_roles_are_taken_over_or_refused() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let (target, other) = (ids["external"][0].as_str().unwrap(), ids["external"][1].as_str().unwrap());
    let admin = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{target}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    ok(
        &cloud,
        &admin,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "deny-all",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        ],
    );
    let deny_all = format!("arn:aws:iam::{target}:policy/deny-all");
    ok(
        &cloud,
        &admin,
        &["iam", "create-role", "--role-name", TRAIL_LOGS_ROLE, "--assume-role-policy-document", &trust],
    );
    ok(
        &cloud,
        &admin,
        &["iam", "put-role-policy", "--role-name", TRAIL_LOGS_ROLE, "--policy-name", "extra", "--policy-document", all],
    );
    ok(&cloud, &admin, &["iam", "create-policy", "--policy-name", "everything", "--policy-document", all]);
    let everything = format!("arn:aws:iam::{target}:policy/everything");
    ok(&cloud, &admin, &["iam", "attach-role-policy", "--role-name", TRAIL_LOGS_ROLE, "--policy-arn", &everything]);
    ok(
        &cloud,
        &admin,
        &["iam", "put-role-permissions-boundary", "--role-name", TRAIL_LOGS_ROLE, "--permissions-boundary", &deny_all],
    );

    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "planted", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let role = ok(&cloud, &admin, &["iam", "get-role", "--role-name", TRAIL_LOGS_ROLE, "--output", "json"]);
    let role: serde_json::Value = serde_json::from_str(&role).unwrap();
    assert!(role["Role"]["PermissionsBoundary"].is_null(), "{role}");
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "cloudtrail.amazonaws.com"
    );
    assert_eq!(
        ok(
            &cloud,
            &admin,
            &[
                "iam",
                "list-role-policies",
                "--role-name",
                TRAIL_LOGS_ROLE,
                "--query",
                "PolicyNames",
                "--output",
                "text"
            ]
        ),
        "deliver"
    );
    assert_eq!(
        ok(
            &cloud,
            &admin,
            &[
                "iam",
                "list-attached-role-policies",
                "--role-name",
                TRAIL_LOGS_ROLE,
                "--query",
                "AttachedPolicies",
                "--output",
                "text"
            ]
        ),
        ""
    );
    // Each removal is in the run's record, with what was there.
    let (code, history, _) = cloud.run(&["runs", "history", "planted", "--output", "json"]);
    assert_eq!(code, 0);
    for removed in [
        format!("iam:role/{TRAIL_LOGS_ROLE}/boundary"),
        format!("iam:role/{TRAIL_LOGS_ROLE}/extra"),
        format!("iam:role/{TRAIL_LOGS_ROLE}/attached/{everything}"),
    ] {
        assert!(history.contains(&removed), "{removed} not recorded:\n{history}");
    }
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 0, "{out}\n{err}");

    // Rollback puts the planted role back as it was: its trust, its policy, its attachment, its
    // boundary; assure's policy goes.
    let (code, out, err) = cloud.run(&["runs", "rollback", "planted"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let role = ok(&cloud, &admin, &["iam", "get-role", "--role-name", TRAIL_LOGS_ROLE, "--output", "json"]);
    let role: serde_json::Value = serde_json::from_str(&role).unwrap();
    assert_eq!(role["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"], deny_all.as_str(), "{role}");
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{target}:root")
    );
    let listed = |what: &str, query: &str| {
        ok(&cloud, &admin, &["iam", what, "--role-name", TRAIL_LOGS_ROLE, "--query", query, "--output", "text"])
    };
    assert_eq!(listed("list-role-policies", "PolicyNames"), "extra");
    assert_eq!(listed("list-attached-role-policies", "AttachedPolicies[].PolicyArn"), everything);

    // The member role of the other account, trusting its administrator too: refused before any change.
    let other_admin = credentials(&cloud.admin_config_as(other, "us-east-1").await).await;
    let trust_doc = ok(
        &cloud,
        &other_admin,
        &[
            "iam",
            "get-role",
            "--role-name",
            "AssureExecutionRole",
            "--query",
            "Role.AssumeRolePolicyDocument",
            "--output",
            "json",
        ],
    );
    let mut trust_doc: serde_json::Value = serde_json::from_str(&trust_doc).unwrap();
    trust_doc["Statement"].as_array_mut().unwrap().push(serde_json::json!(
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{other}:root")}, "Action": "sts:AssumeRole"}));
    ok(
        &cloud,
        &other_admin,
        &[
            "iam",
            "update-assume-role-policy",
            "--role-name",
            "AssureExecutionRole",
            "--policy-document",
            &trust_doc.to_string(),
        ],
    );
    cloud.reset_calls();
    let (code, out, err) = cloud.run(&["onboard", other, "--run-id", "refused"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(err.contains("Assure.Conflict") && err.contains("its trust policy is not assure's"), "{err}");
    assert!(
        cloud.configuration_changes().is_empty(),
        "a refused run changes nothing: {:?}",
        cloud.configuration_changes()
    );
}

/// Buckets of assure's names that another account made first are refused, naming the bucket and
/// the account assure expected; nothing is written to them.
#[tokio::test(flavor = "multi_thread")]
async fn squatted_buckets_are_refused_and_never_written() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let (target, squatter, logging, security) =
        (ids["external"][0].as_str().unwrap(), ids["external"][1].as_str().unwrap(), s("logging"), s("security"));
    let squat = credentials(&cloud.admin_config_as(squatter, "us-east-1").await).await;
    // The pipeline runs in the security account.
    let checkpoints = format!("assure-checkpoints-{security}-us-east-1");
    ok(&cloud, &squat, &["s3api", "create-bucket", "--bucket", &checkpoints]);
    let (code, out, err) = cloud.run(&["deploy", "--logging-account", &logging, "--security-account", &security]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(err.contains(&format!("{checkpoints}: exists and belongs to an account other than {security}")), "{err}");
    assert_eq!(
        ok(
            &cloud,
            &squat,
            &["s3api", "list-objects-v2", "--bucket", &checkpoints, "--query", "Contents[].Key", "--output", "text"]
        ),
        "None"
    );
    ok(&cloud, &squat, &["s3api", "delete-bucket", "--bucket", &checkpoints]);
    let (code, out, err) = cloud.run(&["deploy", "--logging-account", &logging, "--security-account", &security]);
    assert_eq!(code, 0, "{out}\n{err}");

    let logs = format!("assure-access-logs-{logging}-us-east-1");
    ok(&cloud, &squat, &["s3api", "create-bucket", "--bucket", &logs]);
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "squatted"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("Assure.Conflict")
            && err.contains(&format!("{logs}: exists and belongs to an account other than {logging}")),
        "{err}"
    );
    assert_eq!(
        ok(
            &cloud,
            &squat,
            &["s3api", "list-objects-v2", "--bucket", &logs, "--query", "Contents[].Key", "--output", "text"]
        ),
        "None"
    );
    let (code, _, err) = aws_cli(&cloud, &squat, &["s3api", "get-bucket-policy", "--bucket", &logs]);
    assert!(code != 0 && err.contains("NoSuchBucketPolicy"), "nothing was set on it: {err}");
}
