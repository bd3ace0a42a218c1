//! IAM as AWS evaluates it, enforced by the local cloud (localcloud/assure_local/iam.py and authz.py): on by
//! default, for every client, with the services' own refusals. The AWS CLI is the independent
//! client: it must be refused what AWS would refuse.

use std::process::Command;

use assure_e2e::LocalCloud;
use aws_sdk_sts::error::ProvideErrorMetadata;

mod services;
use services::User;
mod steps;

/// The policy evaluator's own unit tests (localcloud/tests/test_iam.py, pytest, no moto needed):
/// each breaks exactly one rule of the documented evaluation logic.
#[test]
fn the_policy_evaluator_follows_the_documented_evaluation_logic() {
    assure_e2e::localcloud_pytest(&["tests/test_iam.py"]);
}

/// The AWS CLI (botocore, not our SDK) against the local cloud with the given credentials:
/// (exit code, stdout, stderr).
pub(super) fn aws_cli(
    cloud: &LocalCloud,
    creds: &aws_sdk_sts::config::Credentials,
    args: &[&str],
) -> (i32, String, String) {
    // `cargo xtask test` installs a pinned AWS CLI and names it; `aws` on the PATH otherwise.
    let mut cmd = Command::new(std::env::var("ASSURE_AWS_CLI").unwrap_or_else(|_| "aws".into()));
    cmd.args(args)
        .args(["--endpoint-url", &cloud.endpoint])
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", creds.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    if let Some(t) = creds.session_token() {
        cmd.env("AWS_SESSION_TOKEN", t);
    }
    let out = cmd.output().expect("the AWS CLI (pip install awscli)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A role an administrator of `account` creates with every permission, and a session of it.
async fn role_made_by(
    cloud: &LocalCloud,
    admin: &aws_sdk_sts::config::Credentials,
    account: &str,
    name: &str,
    trust: &str,
) -> aws_sdk_sts::config::Credentials {
    let all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let (code, _, err) =
        aws_cli(cloud, admin, &["iam", "create-role", "--role-name", name, "--assume-role-policy-document", trust]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = aws_cli(
        cloud,
        admin,
        &["iam", "put-role-policy", "--role-name", name, "--policy-name", "all", "--policy-document", all],
    );
    assert_eq!(code, 0, "{err}");
    let sts = aws_sdk_sts::Client::new(&cloud.admin_config_as(account, "us-east-1").await);
    let c = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{name}"))
        .role_session_name("test")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    aws_sdk_sts::config::Credentials::new(c.access_key_id, c.secret_access_key, Some(c.session_token), None, "t")
}

/// The AWS CLI's answer to `args`, which must succeed: its output, trimmed.
pub(super) fn cli_ok(cloud: &LocalCloud, creds: &aws_sdk_sts::config::Credentials, args: &[&str]) -> String {
    let (code, out, err) = aws_cli(cloud, creds, args);
    assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
    out.trim().to_owned()
}

/// The status an execution ended in, read with the AWS CLI every half second; `RUNNING` if it
/// still runs after `bound`.
pub(super) fn execution_ended(
    cloud: &LocalCloud,
    creds: &aws_sdk_sts::config::Credentials,
    arn: &str,
    bound: std::time::Duration,
) -> String {
    assure_e2e::eventually(bound, &format!("{arn} finished"), || {
        let status = cli_ok(
            cloud,
            creds,
            &["stepfunctions", "describe-execution", "--execution-arn", arn, "--query", "status", "--output", "text"],
        );
        if status == "RUNNING" {
            Err(status)
        } else {
            Ok(status)
        }
    })
}

/// The AWS CLI's `args`, which must succeed once the service has learnt of trusted access enabled
/// a moment ago: while it refuses with `transient` in its error (its answer with trusted access
/// off), again, for at most 20 seconds (the local cloud's transition is a few).
pub(super) fn cli_once_trusted(
    cloud: &LocalCloud,
    creds: &aws_sdk_sts::config::Credentials,
    args: &[&str],
    transient: &str,
) -> String {
    assure_e2e::eventually(
        std::time::Duration::from_secs(20),
        &format!("{} no longer {transient}", args[..2].join(" ")),
        || {
            let (code, out, err) = aws_cli(cloud, creds, args);
            if code == 0 {
                return Ok(out.trim().to_owned());
            }
            assert!(err.contains(transient), "{}: {err}", args[..2].join(" "));
            Err(err)
        },
    )
}

/// The AWS CLI's `args`, which must be refused with an error containing `needle`.
pub(super) fn cli_refused(cloud: &LocalCloud, creds: &aws_sdk_sts::config::Credentials, args: &[&str], needle: &str) {
    let (code, out, err) = aws_cli(cloud, creds, args);
    assert_ne!(code, 0, "{} was accepted: {out}", args[..2].join(" "));
    assert!(err.contains(needle), "{needle} not in: {err}");
}

pub(super) async fn credentials(conf: &aws_config::SdkConfig) -> aws_sdk_sts::config::Credentials {
    use aws_sdk_sts::config::ProvideCredentials;
    conf.credentials_provider().expect("credentials").provide_credentials().await.expect("credentials")
}

#[tokio::test(flavor = "multi_thread")]
async fn enforcement_is_on_a_principal_without_a_policy_is_denied_and_an_unknown_key_is_refused() {
    let cloud = LocalCloud::start();
    let base = cloud.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&base);
    iam.create_user().user_name("nobody").send().await.unwrap();
    let key = iam.create_access_key().user_name("nobody").send().await.unwrap().access_key.unwrap();
    let nobody = aws_sdk_sts::config::Credentials::new(key.access_key_id(), key.secret_access_key(), None, None, "t");

    // Through the Rust SDK: every protocol answers with its own AccessDenied, naming action and resource.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&cloud.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(nobody.clone())
        .load()
        .await;
    let e = aws_sdk_sqs::Client::new(&conf).list_queues().send().await.unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    assert!(e.message().unwrap_or_default().contains("sqs:ListQueues"), "{e:?}");
    let e = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build())
        .list_buckets()
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    let e = aws_sdk_iam::Client::new(&conf).list_roles().send().await.unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    let e = aws_sdk_organizations::Client::new(&conf).describe_organization().send().await.unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"), "{e:?}");
    // Who am I needs no permission, as on AWS.
    let who = aws_sdk_sts::Client::new(&conf).get_caller_identity().send().await.unwrap();
    assert_eq!(who.arn(), Some("arn:aws:iam::123456789012:user/nobody"));

    // Through the AWS CLI.
    let (code, _, err) = aws_cli(&cloud, &nobody, &["sqs", "list-queues"]);
    assert_ne!(code, 0);
    assert!(err.contains("AccessDenied") && err.contains("sqs:ListQueues"), "{err}");
    let (code, _, err) = aws_cli(&cloud, &nobody, &["cloudtrail", "describe-trails"]);
    assert_ne!(code, 0);
    assert!(err.contains("AccessDeniedException") && err.contains("cloudtrail:DescribeTrails"), "{err}");

    // Given a policy, the same principal is allowed exactly that.
    iam.put_user_policy()
        .user_name("nobody")
        .policy_name("queues")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:ListQueues","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let (code, _, err) = aws_cli(&cloud, &nobody, &["sqs", "list-queues"]);
    assert_eq!(code, 0, "{err}");

    // A deleted key is refused like one never issued, though it was just used:
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html#rotating_access_keys_cli
    iam.delete_access_key().user_name("nobody").access_key_id(key.access_key_id()).send().await.unwrap();
    let (code, _, err) = aws_cli(&cloud, &nobody, &["sqs", "list-queues"]);
    assert_ne!(code, 0);
    assert!(err.contains("InvalidClientTokenId"), "{err}");

    // A key the local cloud never issued.
    let stranger = aws_sdk_sts::config::Credentials::new("AKIAUNKNOWN000000000", "x", None, None, "t");
    let (code, _, err) = aws_cli(&cloud, &stranger, &["iam", "list-roles"]);
    assert_ne!(code, 0);
    assert!(err.contains("InvalidClientTokenId"), "{err}");

    // Root credentials cannot assume a role (AssumeRole API reference); the bootstrap user can.
    let sts = aws_sdk_sts::Client::new(&base);
    let ids = cloud.seed();
    let logging = ids["logging"].as_str().unwrap();
    let ok = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{logging}:role/OrganizationAccountAccessRole"))
        .role_session_name("test")
        .send()
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    // The member role trusts only the pipeline's step roles and its operator role.
    let e = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{logging}:role/AssureExecutionRole"))
        .role_session_name("test")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");
    assert!(e.message().unwrap_or_default().contains("trust policy"), "{e:?}");
}

/// The AWS CLI, a client that is not ours and speaks other protocols than the SDK for Rust (JSON
/// for CloudWatch where the SDK speaks CBOR), sees every kind of resource the onboarding created,
/// in the account, the logging account, the security account and the organization.
async fn an_independent_client_sees_what_assure_created(
    cloud: &LocalCloud,
    ids: &serde_json::Value,
    target_admin: &aws_sdk_sts::config::Credentials,
) {
    let id = |k: &str| ids[k].as_str().unwrap().to_owned();
    let (target, logging, security) = (ids["external"][0].as_str().unwrap(), id("logging"), id("security"));
    let logging_admin = credentials(&cloud.admin_config_as(&logging, "us-east-1").await).await;
    let security_admin = credentials(&cloud.admin_config_as(&security, "us-east-1").await).await;
    let management = credentials(&cloud.sdk_config().await).await;
    let text = |creds: &aws_sdk_sts::config::Credentials, args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--output", "text"]);
        let (code, out, err) = aws_cli(cloud, creds, &all);
        assert_eq!(code, 0, "aws {}: {err}", args[..2].join(" "));
        out
    };
    let sees = |creds: &aws_sdk_sts::config::Credentials, args: &[&str], needle: &str| {
        let out = text(creds, args);
        assert!(out.contains(needle), "aws {} does not show {needle}: {out}", args[..2].join(" "));
    };
    let t = target_admin;
    sees(t, &["cloudtrail", "describe-trails", "--query", "trailList[].Name"], "assure-trail");
    sees(t, &["cloudtrail", "get-trail-status", "--name", "assure-trail", "--query", "IsLogging"], "True");
    sees(t, &["logs", "describe-metric-filters", "--log-group-name", "assure/cloudtrail"], "assure-root-account-usage");
    let alarms = text(
        t,
        &["cloudwatch", "describe-alarms", "--alarm-name-prefix", "assure-", "--query", "MetricAlarms[].AlarmName"],
    );
    let sdk_alarms = aws_sdk_cloudwatch::Client::new(&cloud.admin_config_as(target, "us-east-1").await)
        .describe_alarms()
        .alarm_name_prefix("assure-")
        .send()
        .await
        .unwrap();
    assert!(sdk_alarms.metric_alarms().len() >= 14, "{:?}", sdk_alarms.metric_alarms().len());
    assert_eq!(
        alarms.split_whitespace().count(),
        sdk_alarms.metric_alarms().len(),
        "the CLI sees the SDK's alarms: {alarms}"
    );
    sees(t, &["sns", "list-topics"], "assure-security-alarms");
    sees(t, &["kms", "list-aliases", "--query", "Aliases[].AliasName"], "alias/assure-alarms");
    sees(
        t,
        &[
            "configservice",
            "describe-configuration-recorder-status",
            "--query",
            "ConfigurationRecordersStatus[].recording",
        ],
        "True",
    );
    sees(
        t,
        &["configservice", "describe-delivery-channels", "--query", "DeliveryChannels[].s3BucketName"],
        &format!("assure-logs-{logging}-us-east-1"),
    );
    let detector = text(t, &["guardduty", "list-detectors", "--query", "DetectorIds[0]"]);
    sees(t, &["guardduty", "get-administrator-account", "--detector-id", detector.trim()], &security);
    sees(t, &["ssm", "get-document", "--name", "SSM-SessionManagerRunShell", "--query", "Content"], "s3BucketName");
    sees(
        t,
        &["iam", "get-role", "--role-name", "assure-cloudtrail-logs", "--query", "Role.RoleName"],
        "assure-cloudtrail-logs",
    );
    let bucket = format!("assure-logs-{logging}-us-east-1");
    sees(&logging_admin, &["s3api", "get-bucket-policy", "--bucket", &bucket], "cloudtrail.amazonaws.com");
    sees(&logging_admin, &["s3api", "get-bucket-versioning", "--bucket", &bucket], "Enabled");
    sees(&logging_admin, &["kms", "list-aliases", "--query", "Aliases[].AliasName"], "alias/assure-logs");
    sees(&security_admin, &["accessanalyzer", "list-analyzers", "--query", "analyzers[].name"], "assure-organization");
    sees(&security_admin, &["firehose", "list-delivery-streams"], "assure-access-analyzer-findings");
    sees(&security_admin, &["events", "list-rules", "--query", "Rules[].Name"], "assure-access-analyzer-findings");
    sees(
        &security_admin,
        &[
            "configservice",
            "describe-configuration-aggregators",
            "--query",
            "ConfigurationAggregators[].ConfigurationAggregatorName",
        ],
        "assure-organization",
    );
    sees(
        &security_admin,
        &[
            "guardduty",
            "list-members",
            "--detector-id",
            text(&security_admin, &["guardduty", "list-detectors", "--query", "DetectorIds[0]"]).trim(),
            "--query",
            "Members[].AccountId",
        ],
        target,
    );
    sees(
        &management,
        &[
            "organizations",
            "list-policies-for-target",
            "--target-id",
            target,
            "--filter",
            "SERVICE_CONTROL_POLICY",
            "--query",
            "Policies[].Name",
        ],
        "assure-protect-baseline",
    );
}

/// After onboarding, the SCPs bind every principal of the account but assure's member role: its
/// administrator is denied each protected change, and so is a role it names like assure's; the
/// StackSet's execution role can still update the member role; assure's own re-run, verify and
/// rollback pass.
#[tokio::test(flavor = "multi_thread")]
async fn after_onboarding_only_assure_may_change_the_baseline() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let target = ids["external"][0].as_str().unwrap();
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "guarded"]);
    assert_eq!(code, 0, "{out}\n{err}");

    let admin = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    an_independent_client_sees_what_assure_created(&cloud, &ids, &admin).await;
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{target}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let detector = {
        let (code, out, err) =
            aws_cli(&cloud, &admin, &["guardduty", "list-detectors", "--query", "DetectorIds[0]", "--output", "text"]);
        assert_eq!(code, 0, "reads are not denied: {err}");
        out.trim().to_owned()
    };
    let doc =
        r#"{"schemaVersion":"1.0","description":"x","sessionType":"Standard_Stream","inputs":{"s3BucketName":""}}"#;
    let protected: Vec<(&str, Vec<String>)> = vec![
        (
            "cloudtrail:StopLogging",
            vec!["cloudtrail".into(), "stop-logging".into(), "--name".into(), "assure-trail".into()],
        ),
        (
            "config:StopConfigurationRecorder",
            vec![
                "configservice".into(),
                "stop-configuration-recorder".into(),
                "--configuration-recorder-name".into(),
                "legacy-recorder".into(),
            ],
        ),
        (
            "guardduty:UpdateDetector",
            vec![
                "guardduty".into(),
                "update-detector".into(),
                "--detector-id".into(),
                detector.clone(),
                "--no-enable".into(),
            ],
        ),
        (
            "cloudwatch:DeleteAlarms",
            vec!["cloudwatch".into(), "delete-alarms".into(), "--alarm-names".into(), "assure-root-usage".into()],
        ),
        (
            "logs:DeleteMetricFilter",
            vec![
                "logs".into(),
                "delete-metric-filter".into(),
                "--log-group-name".into(),
                "assure/cloudtrail".into(),
                "--filter-name".into(),
                "assure-root-usage".into(),
            ],
        ),
        (
            "ssm:UpdateDocument",
            vec![
                "ssm".into(),
                "update-document".into(),
                "--name".into(),
                "SSM-SessionManagerRunShell".into(),
                "--document-version".into(),
                "$LATEST".into(),
                "--content".into(),
                doc.into(),
            ],
        ),
        (
            "iam:PutRolePolicy",
            vec![
                "iam".into(),
                "put-role-policy".into(),
                "--role-name".into(),
                "AssureExecutionRole".into(),
                "--policy-name".into(),
                "x".into(),
                "--policy-document".into(),
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into(),
            ],
        ),
        (
            "iam:CreateRole",
            vec![
                "iam".into(),
                "create-role".into(),
                "--role-name".into(),
                "assure-lookalike".into(),
                "--assume-role-policy-document".into(),
                trust.clone(),
            ],
        ),
        ("organizations:LeaveOrganization", vec!["organizations".into(), "leave-organization".into()]),
    ];
    for (action, args) in &protected {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = aws_cli(&cloud, &admin, &args);
        assert_ne!(code, 0, "{action} was allowed: {out}");
        assert!(err.contains(action) && err.contains("service control policy"), "{action}: {err}");
    }

    // A role the administrator creates under a name of its own, made to look like the member role,
    // is not exempt either.
    let lookalike = role_made_by(&cloud, &admin, target, "AssureExecutionRole2", &trust).await;
    let (code, _, err) = aws_cli(&cloud, &lookalike, &["cloudtrail", "stop-logging", "--name", "assure-trail"]);
    assert_ne!(code, 0);
    assert!(err.contains("service control policy"), "{err}");

    // Nobody in the account may make a role the StackSet exemption names (that would exempt its
    // maker): StackSets' service-linked role makes it, which SCPs do not bind. Here the bootstrap
    // administrator stands for that role: with the policies detached a moment, as SCPs are to it.
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &[
            "iam",
            "create-role",
            "--role-name",
            "stacksets-exec-0123456789abcdef",
            "--assume-role-policy-document",
            &trust,
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("iam:CreateRole") && err.contains("service control policy"), "{err}");
    let orgs = aws_sdk_organizations::Client::new(&cloud.sdk_config().await);
    let ours = detach_assure_scps(&orgs, target).await;
    let stackset = role_made_by(&cloud, &admin, target, "stacksets-exec-0123456789abcdef", &trust).await;
    attach_scps(&orgs, target, &ours).await;
    // The StackSet's execution role in the account may still update the member role.
    let (code, _, err) = aws_cli(
        &cloud,
        &stackset,
        &["iam", "update-role", "--role-name", "AssureExecutionRole", "--description", "updated by the StackSet"],
    );
    assert_eq!(code, 0, "{err}");
    // ... but not the baseline itself.
    let (code, _, err) = aws_cli(&cloud, &stackset, &["cloudtrail", "stop-logging", "--name", "assure-trail"]);
    assert_ne!(code, 0, "{err}");

    // That role trusts the account's administrator, as no StackSet's does: verify names it. Gone
    // (as the StackSet's service-linked role would remove it), verify holds again.
    let (code, out, _) = cloud.run(&["verify", target]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with('✗')
            && l.contains("roles.member-role")
            && l.contains("stacksets-exec-0123456789abcdef")),
        "{out}"
    );
    let ours = detach_assure_scps(&orgs, target).await;
    cli_ok(
        &cloud,
        &admin,
        &["iam", "delete-role-policy", "--role-name", "stacksets-exec-0123456789abcdef", "--policy-name", "all"],
    );
    cli_ok(&cloud, &admin, &["iam", "delete-role", "--role-name", "stacksets-exec-0123456789abcdef"]);
    attach_scps(&orgs, target, &ours).await;

    // assure itself is not denied: a re-run changes nothing, verify passes, rollback restores.
    let (code, out, err) = cloud.run(&["onboard", target, "--run-id", "again", "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(assure_e2e::Followed::of(&out).changes(), 0, "{out}");
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cloud.run(&["runs", "rollback", "guarded"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let decisions = std::fs::read_to_string(cloud.dir.path().join("authz.jsonl")).unwrap_or_default();
    let assure_denied: Vec<serde_json::Value> = decisions
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|d| d["allowed"] == false)
        .filter(|d| {
            let who = d["principal"].as_str().unwrap_or_default();
            who.contains(":role/assure-") || who.ends_with(":role/AssureExecutionRole")
        })
        .collect();
    assert!(assure_denied.is_empty(), "assure's roles were denied: {assure_denied:?}");
}

/// assure's policies detached from `account` (as SCPs are from a service-linked role): their ids.
pub(super) async fn detach_assure_scps(orgs: &aws_sdk_organizations::Client, account: &str) -> Vec<String> {
    let attached = orgs
        .list_policies_for_target()
        .target_id(account)
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let ours: Vec<String> = attached
        .policies()
        .iter()
        .filter(|p| p.name().is_some_and(|n| n.starts_with("assure-")))
        .map(|p| p.id().unwrap().to_owned())
        .collect();
    for id in &ours {
        orgs.detach_policy().policy_id(id).target_id(account).send().await.unwrap();
    }
    ours
}

pub(super) async fn attach_scps(orgs: &aws_sdk_organizations::Client, account: &str, ids: &[String]) {
    for id in ids {
        orgs.attach_policy().policy_id(id).target_id(account).send().await.unwrap();
    }
}

impl User {
    async fn create(base: &aws_config::SdkConfig, name: &str) -> User {
        let iam = aws_sdk_iam::Client::new(base);
        iam.create_user().user_name(name).send().await.unwrap();
        let key = iam.create_access_key().user_name(name).send().await.unwrap().access_key.unwrap();
        let creds =
            aws_sdk_sts::config::Credentials::new(key.access_key_id(), key.secret_access_key(), None, None, "t");
        User { iam, name: name.to_owned(), creds }
    }

    /// Replaces the user's policy with these statements.
    async fn grant(&self, statements: serde_json::Value) {
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        self.iam.put_user_policy().user_name(&self.name).policy_name("p").policy_document(doc).send().await.unwrap();
    }
}
