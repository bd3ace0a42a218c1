//! The services' own checks, enforced by the local cloud (`localcloud/assure_local/services/` and
//! `model_validation.py`), each broken on its own through the AWS CLI, the independent client:
//! refused with AWS's error code and message,
//! then accepted once the request is what AWS accepts.

use assure_e2e::LocalCloud;

use super::iam::{aws_cli, cli_ok, cli_refused, credentials};

mod cloudtrail;
mod config;
mod guardduty;
mod organizations;
mod stepfunctions;

/// S3 bucket policies, KMS key policies and IAM trust policies may name only IAM principals that
/// exist; the account's root and service principals are always accepted.
#[tokio::test(flavor = "multi_thread")]
async fn policies_naming_a_principal_that_does_not_exist_are_refused() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let (_, out, _) =
        aws_cli(&cloud, &admin, &["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    let account = out.trim().to_owned();
    let role = format!("arn:aws:iam::{account}:role/delivers-later");
    let root = format!("arn:aws:iam::{account}:root");
    let statement = |principal: &str, action: &str, resource: &str| serde_json::json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": resource});
    let doc = |statements: Vec<serde_json::Value>| {
        serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    };
    let (code, _, err) = aws_cli(&cloud, &admin, &["s3api", "create-bucket", "--bucket", "policies-checked"]);
    assert_eq!(code, 0, "{err}");
    let bucket_policy = doc(vec![
        statement(&root, "s3:GetObject", "arn:aws:s3:::policies-checked/*"),
        statement(&role, "s3:PutObject", "arn:aws:s3:::policies-checked/*"),
    ]);
    let key_policy = doc(vec![statement(&root, "kms:*", "*"), statement(&role, "kms:Decrypt", "*")]);
    let trust =
        doc(vec![serde_json::json!({"Effect": "Allow", "Principal": {"AWS": role}, "Action": "sts:AssumeRole"})]);
    let put_bucket_policy = ["s3api", "put-bucket-policy", "--bucket", "policies-checked", "--policy", &bucket_policy];
    let create_key = ["kms", "create-key", "--policy", &key_policy];
    let create_role = ["iam", "create-role", "--role-name", "trusts-it", "--assume-role-policy-document", &trust];

    // The role does not exist yet: each service refuses, as AWS does.
    let (code, _, err) = aws_cli(&cloud, &admin, &put_bucket_policy);
    assert_ne!(code, 0);
    assert!(err.contains("(MalformedPolicy)") && err.contains("Invalid principal in policy"), "{err}");
    let (code, _, err) = aws_cli(&cloud, &admin, &create_key);
    assert_ne!(code, 0);
    assert!(
        err.contains("(MalformedPolicyDocumentException)")
            && err.contains("Policy contains a statement with one or more invalid principals."),
        "{err}"
    );
    let (code, _, err) = aws_cli(&cloud, &admin, &create_role);
    assert_ne!(code, 0);
    assert!(
        err.contains("(MalformedPolicyDocument)")
            && err.contains(&format!("Invalid principal in policy: \"AWS\":\"{role}\"")),
        "{err}"
    );
    let (_, out, _) =
        aws_cli(&cloud, &admin, &["iam", "list-roles", "--query", "Roles[].RoleName", "--output", "text"]);
    assert!(!out.contains("trusts-it"), "a refused CreateRole created nothing: {out}");

    // The same requests once the role exists.
    let lambda_trust = doc(vec![
        serde_json::json!({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}),
    ]);
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &["iam", "create-role", "--role-name", "delivers-later", "--assume-role-policy-document", &lambda_trust],
    );
    assert_eq!(code, 0, "a trust naming only a service principal: {err}");
    for args in [&put_bucket_policy[..], &create_key[..], &create_role[..]] {
        let (code, _, err) = aws_cli(&cloud, &admin, args);
        assert_eq!(code, 0, "{} {}: {err}", args[0], args[1]);
    }
    let (_, out, _) = aws_cli(&cloud, &admin, &["s3api", "get-bucket-policy", "--bucket", "policies-checked"]);
    assert!(out.contains("delivers-later"), "{out}");
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A role handed to CloudTrail (CloudWatch Logs delivery) or Firehose (S3 delivery) must exist, be
/// visible to the service (IAM propagates a new role in a few seconds), trust the service and hold
/// the permissions the service documents; the log group must exist. Each is broken on its own.
#[tokio::test(flavor = "multi_thread")]
async fn services_refuse_roles_they_cannot_use_yet_or_at_all() {
    let cloud = LocalCloud::start();
    // Long enough for the AWS CLI's calls below, each most of a second.
    cloud.limits(serde_json::json!({"iamPropagationSeconds": 30}));
    let admin = credentials(&cloud.sdk_config().await).await;
    let run = |args: &[&str]| aws_cli(&cloud, &admin, args);
    let ok = |args: &[&str]| {
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
        out
    };
    let refused = |args: &[&str], needle: &str| {
        let (code, out, err) = run(args);
        assert_ne!(code, 0, "{} was accepted: {out}", args[..2].join(" "));
        assert!(err.contains(needle), "{needle} not in: {err}");
    };
    let account = ok(&["sts", "get-caller-identity", "--query", "Account", "--output", "text"]).trim().to_owned();
    let trusting = |service: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
        )
    };
    let group = "trail-logs";
    let group_arn = format!("arn:aws:logs:us-east-1:{account}:log-group:{group}:*");
    let may_log = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:us-east-1:{account}:log-group:{group}:log-stream:*"}}]}}"#
    );
    ok(&["s3api", "create-bucket", "--bucket", "trail-bucket"]);
    let trail_bucket_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"cloudtrail.amazonaws.com"}},"Action":"s3:GetBucketAcl","Resource":"arn:aws:s3:::trail-bucket"}},{{"Effect":"Allow","Principal":{{"Service":"cloudtrail.amazonaws.com"}},"Action":"s3:PutObject","Resource":"arn:aws:s3:::trail-bucket/AWSLogs/{account}/*"}}]}}"#
    );
    ok(&["s3api", "put-bucket-policy", "--bucket", "trail-bucket", "--policy", &trail_bucket_policy]);
    ok(&["logs", "create-log-group", "--log-group-name", group]);
    for (role, service, policy) in [
        ("trail-logs", "cloudtrail.amazonaws.com", Some(&may_log)),
        ("trusts-lambda", "lambda.amazonaws.com", Some(&may_log)),
        ("may-not-log", "cloudtrail.amazonaws.com", None),
        ("delivers", "firehose.amazonaws.com", None),
    ] {
        ok(&["iam", "create-role", "--role-name", role, "--assume-role-policy-document", &trusting(service)]);
        if let Some(policy) = policy {
            ok(&["iam", "put-role-policy", "--role-name", role, "--policy-name", "logs", "--policy-document", policy]);
        }
    }
    let role = |name: &str| format!("arn:aws:iam::{account}:role/{name}");
    let trail = |role_name: &str, group_arn: &str| -> Vec<String> {
        [
            "cloudtrail",
            "create-trail",
            "--name",
            "checked",
            "--s3-bucket-name",
            "trail-bucket",
            "--cloud-watch-logs-log-group-arn",
            group_arn,
            "--cloud-watch-logs-role-arn",
            &role(role_name),
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let stream = |role_name: &str| -> Vec<String> {
        [
            "firehose",
            "create-delivery-stream",
            "--delivery-stream-name",
            "checked",
            "--extended-s3-destination-configuration",
            &format!("RoleARN={},BucketARN=arn:aws:s3:::trail-bucket", role(role_name)),
        ]
        .map(str::to_owned)
        .to_vec()
    };

    // At once: the right roles, not yet visible to the services.
    refused(&args(&trail("trail-logs", &group_arn)), "(InvalidCloudWatchLogsRoleArnException)");
    refused(
        &args(&stream("delivers")),
        "(InvalidArgumentException) when calling the CreateDeliveryStream operation: Firehose is unable to assume role",
    );
    // IAM catches up: the roles are older than a shorter delay.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    cloud.limits(serde_json::json!({"iamPropagationSeconds": 1}));
    // Propagated, but wrong on their own account.
    refused(&args(&trail("trusts-lambda", &group_arn)), "does not admit cloudtrail.amazonaws.com");
    refused(&args(&trail("may-not-log", &group_arn)), "may not create log streams and put log events");
    refused(&args(&trail("no-such-role", &group_arn)), "does not exist");
    let missing_group = format!("arn:aws:logs:us-east-1:{account}:log-group:no-such-group:*");
    refused(&args(&trail("trail-logs", &missing_group)), "(InvalidCloudWatchLogsLogGroupArnException)");
    refused(&args(&stream("trail-logs")), "Firehose is unable to assume role");
    // And right.
    ok(&args(&trail("trail-logs", &group_arn)));
    ok(&args(&stream("delivers")));
}

/// Firehose writes a stream's records as the stream's role: a batch reaches the bucket only while the
/// role may put it there, and each attempt is reported in AWS/Firehose DeliveryToS3.Success (1
/// delivered, 0 refused), which verify reads. Broken here: the role's own policy.
#[tokio::test(flavor = "multi_thread")]
async fn firehose_delivers_only_what_its_role_may_write_and_reports_each_attempt() {
    let cloud = LocalCloud::start();
    // Long enough that the next AWS CLI call (over half a second to start on a loaded machine)
    // still finds the stream CREATING.
    cloud.limits(serde_json::json!({"iamPropagationSeconds": 0, "transitionSeconds": 4}));
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| {
        let (code, out, err) = aws_cli(&cloud, &admin, args);
        assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
        out.trim().to_owned()
    };
    let account = ok(&["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    ok(&["s3api", "create-bucket", "--bucket", "findings"]);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let may_write = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetBucketLocation","s3:ListBucket"],"Resource":["arn:aws:s3:::findings","arn:aws:s3:::findings/*"]}]}"#;
    ok(&["iam", "create-role", "--role-name", "delivers", "--assume-role-policy-document", trust]);
    ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        "delivers",
        "--policy-name",
        "write",
        "--policy-document",
        may_write,
    ]);
    let destination = format!("RoleARN=arn:aws:iam::{account}:role/delivers,BucketARN=arn:aws:s3:::findings,Prefix=f/");
    ok(&[
        "firehose",
        "create-delivery-stream",
        "--delivery-stream-name",
        "findings",
        "--extended-s3-destination-configuration",
        &destination,
    ]);
    let put =
        || ok(&["firehose", "put-record", "--delivery-stream-name", "findings", "--record", r#"{"Data":"e30="}"#]);
    let objects = || ok(&["s3api", "list-objects-v2", "--bucket", "findings", "--query", "length(Contents || `[]`)"]);

    // CREATING first: data sent to it is refused until it is ACTIVE (API_CreateDeliveryStream).
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &["firehose", "put-record", "--delivery-stream-name", "findings", "--record", r#"{"Data":"e30="}"#],
    );
    assert!(code != 0 && err.contains("ResourceNotFoundException"), "{err}");
    let status = || {
        ok(&[
            "firehose",
            "describe-delivery-stream",
            "--delivery-stream-name",
            "findings",
            "--query",
            "DeliveryStreamDescription.DeliveryStreamStatus",
            "--output",
            "text",
        ])
    };
    assert_eq!(assure_e2e::settled(std::time::Duration::from_secs(20), "CREATING", status), "ACTIVE");
    put();
    assert_eq!(objects(), "1", "the role may write: the batch is delivered");
    ok(&["iam", "delete-role-policy", "--role-name", "delivers", "--policy-name", "write"]);
    // PutRecord still succeeds (Firehose buffers the record); its delivery to S3 is what fails.
    put();
    assert_eq!(objects(), "1", "the role may no longer write: nothing more reaches the bucket");

    let format = time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let (start, end) = (
        (now - time::Duration::hours(1)).format(&format).unwrap(),
        (now + time::Duration::minutes(1)).format(&format).unwrap(),
    );
    let stats = ok(&[
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "AWS/Firehose",
        "--metric-name",
        "DeliveryToS3.Success",
        "--dimensions",
        "Name=DeliveryStreamName,Value=findings",
        "--start-time",
        &start,
        "--end-time",
        &end,
        "--period",
        "3600",
        "--statistics",
        "Minimum",
        "Maximum",
        "SampleCount",
        "--query",
        "Datapoints[0].[Minimum,Maximum,SampleCount]",
        "--output",
        "text",
    ]);
    assert_eq!(
        stats.split_whitespace().collect::<Vec<_>>(),
        ["0.0", "1.0", "2.0"],
        "one attempt delivered, one refused"
    );
}

/// Requests are checked against the service's API model before the service acts, in every protocol
/// the pipeline's services use (JSON, CBOR, query, REST-JSON): an enum value the model does not
/// list, a name over its length, a number over its range, a task output over 256 KiB.
#[tokio::test(flavor = "multi_thread")]
async fn requests_breaking_the_api_model_are_refused_with_a_validation_exception() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let refused = |args: &[&str], needles: &[&str]| {
        let (code, out, err) = aws_cli(&cloud, &admin, args);
        assert_ne!(code, 0, "{} was accepted: {out}", args[..2].join(" "));
        for needle in needles {
            assert!(err.contains(needle), "{needle} not in: {err}");
        }
    };
    refused(
        &["kms", "create-key", "--key-usage", "SIGN_EVERYTHING"],
        &[
            "(ValidationException)",
            "Value 'SIGN_EVERYTHING' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set",
        ],
    );
    let long = "n".repeat(129);
    refused(
        &[
            "organizations",
            "create-policy",
            "--name",
            &long,
            "--type",
            "SERVICE_CONTROL_POLICY",
            "--description",
            "d",
            "--content",
            "{}",
        ],
        &[
            "(ValidationException)",
            "at 'name' failed to satisfy constraint: Member must have length less than or equal to 128",
        ],
    );
    let dir = std::env::temp_dir().join(format!("assure-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = dir.join("output.json");
    std::fs::write(&output, serde_json::json!({"x": "x".repeat(262_144)}).to_string()).unwrap();
    refused(
        &[
            "stepfunctions",
            "send-task-success",
            "--task-token",
            "t",
            "--task-output",
            &format!("file://{}", output.display()),
        ],
        &[
            "(ValidationException)",
            "at 'output' failed to satisfy constraint: Member must have length less than or equal to 262144",
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
    // The query protocol (IAM): the flattened members are read back into the input's shape.
    let role = "r".repeat(65);
    let trust = r#"{"Version":"2012-10-17","Statement":[]}"#;
    refused(
        &["iam", "create-role", "--role-name", &role, "--assume-role-policy-document", trust],
        &[
            "(ValidationError)",
            "at 'roleName' failed to satisfy constraint: Member must have length less than or equal to 64",
        ],
    );
    refused(
        &["iam", "list-roles", "--page-size", "1001"],
        &["(ValidationError)", "Value '1001' at 'maxItems' failed to satisfy constraint"],
    );
    // REST-JSON: members in the body (GuardDuty, IAM Access Analyzer) and in the query string.
    refused(
        &["guardduty", "create-detector", "--enable", "--finding-publishing-frequency", "NEVER"],
        &["(BadRequestException)", "Value 'NEVER' at 'findingPublishingFrequency'"],
    );
    refused(
        &["guardduty", "list-detectors", "--max-results", "51"],
        &["(BadRequestException)", "Value '51' at 'maxResults' failed to satisfy constraint"],
    );
    refused(
        &["accessanalyzer", "create-analyzer", "--analyzer-name", "a", "--type", "EVERYTHING"],
        &["(ValidationException)", "Value 'EVERYTHING' at 'type'"],
    );
    // Within the model, the same calls reach the service.
    let (code, _, err) = aws_cli(&cloud, &admin, &["kms", "create-key", "--key-usage", "ENCRYPT_DECRYPT"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &["iam", "create-role", "--role-name", "r", "--assume-role-policy-document", trust, "--tags", "Key=k,Value=v"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = aws_cli(&cloud, &admin, &["guardduty", "list-detectors", "--max-results", "50"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &["guardduty", "create-detector", "--enable", "--finding-publishing-frequency", "SIX_HOURS"],
    );
    assert_eq!(code, 0, "{err}");
}

/// A state machine named `name` with `definition`, run by a role of the same name that Step
/// Functions may assume and that has `policy`, if any; its ARN.
fn state_machine(
    cloud: &LocalCloud,
    admin: &aws_sdk_sts::config::Credentials,
    name: &str,
    definition: &serde_json::Value,
    policy: Option<&str>,
) -> String {
    let ok = |args: &[&str]| cli_ok(cloud, admin, args);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"states.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = ok(&[
        "iam",
        "create-role",
        "--role-name",
        name,
        "--assume-role-policy-document",
        trust,
        "--query",
        "Role.Arn",
        "--output",
        "text",
    ]);
    if let Some(policy) = policy {
        ok(&["iam", "put-role-policy", "--role-name", name, "--policy-name", name, "--policy-document", policy]);
    }
    ok(&[
        "stepfunctions",
        "create-state-machine",
        "--name",
        name,
        "--role-arn",
        &role,
        "--definition",
        &definition.to_string(),
        "--query",
        "stateMachineArn",
        "--output",
        "text",
    ])
}
