//! The services' own checks, enforced by the local cloud (localcloud/assure_local/services/ and
//! model_validation.py), each broken on its own through the AWS CLI, the independent client: refused with AWS's error code and message,
//! then accepted once the request is what AWS accepts.

use assure_e2e::LocalCloud;

use super::iam::{aws_cli, cli_ok, cli_refused, credentials};

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

/// An organization aggregator outside the management account needs that account registered as
/// Config's delegated administrator: refused with OrganizationAccessDeniedException before, accepted
/// after the management account registers it.
#[tokio::test(flavor = "multi_thread")]
async fn an_organization_aggregator_needs_configs_delegated_administrator() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    // Long enough that the CLI's next call surely comes before Config learns of a registration.
    cloud.limits(serde_json::json!({"transitionSeconds": 4}));
    let security = ids["security"].as_str().unwrap();
    let admin = credentials(&cloud.admin_config_as(security, "us-east-1").await).await;
    let management = credentials(&cloud.sdk_config().await).await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"config.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &["iam", "create-role", "--role-name", "aggregates", "--assume-role-policy-document", trust],
    );
    assert_eq!(code, 0, "{err}");
    let source = format!("RoleArn=arn:aws:iam::{security}:role/aggregates,AllAwsRegions=true");
    let put = [
        "configservice",
        "put-configuration-aggregator",
        "--configuration-aggregator-name",
        "org",
        "--organization-aggregation-source",
        &source,
    ];
    let (code, _, err) = aws_cli(&cloud, &admin, &put);
    assert_ne!(code, 0);
    assert!(
        err.contains("(OrganizationAccessDeniedException)") && err.contains("registered delegated administrator"),
        "{err}"
    );
    for args in [
        &["organizations", "enable-aws-service-access", "--service-principal", "config.amazonaws.com"][..],
        &[
            "organizations",
            "register-delegated-administrator",
            "--account-id",
            security,
            "--service-principal",
            "config.amazonaws.com",
        ][..],
    ] {
        let (code, _, err) = aws_cli(&cloud, &management, args);
        assert_eq!(code, 0, "{}: {err}", args[1]);
    }
    // Config learns of the registration through Organizations a moment later.
    let (code, _, err) = aws_cli(&cloud, &admin, &put);
    assert!(code != 0 && err.contains("(OrganizationAccessDeniedException)"), "not known at once: {err}");
    std::thread::sleep(std::time::Duration::from_millis(4200));
    let (code, _, err) = aws_cli(&cloud, &admin, &put);
    assert_eq!(code, 0, "the delegated administrator may: {err}");
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

/// Designating GuardDuty's delegated administrator enables GuardDuty for that account in the
/// Region (https://docs.aws.amazon.com/guardduty/latest/ug/organizations_permissions.html): it has
/// an enabled detector at once, and a second one is refused. Members it adds from the organization
/// have GuardDuty enabled too
/// (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_CreateMembers.html).
#[tokio::test(flavor = "multi_thread")]
async fn the_guardduty_administrator_and_the_members_it_adds_have_guardduty_enabled() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let security = ids["security"].as_str().unwrap().to_owned();
    let member = ids["external"][0].as_str().unwrap().to_owned();
    // us-west-2: the seed leaves GuardDuty off there in every account.
    let region = "us-west-2";
    let mgmt = credentials(&cloud.sdk_config().await).await;
    let sec = credentials(&cloud.sdk_config_as(&security, region).await).await;
    let mem = credentials(&cloud.sdk_config_as(&member, region).await).await;
    let run = |creds, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--region", region, "--output", "text"]);
        let (code, out, err) = aws_cli(&cloud, creds, &all);
        assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
        out.trim().to_owned()
    };
    let detectors = ["guardduty", "list-detectors", "--query", "DetectorIds[0]"];
    assert_eq!(run(&sec, &detectors), "None", "GuardDuty is off in the security account");
    run(&mgmt, &["guardduty", "enable-organization-admin-account", "--admin-account-id", &security]);
    let det = run(&sec, &detectors);
    assert_ne!(det, "None", "designating the administrator enabled GuardDuty for it");
    assert_eq!(run(&sec, &["guardduty", "get-detector", "--detector-id", &det, "--query", "Status"]), "ENABLED");
    let (code, _, err) = aws_cli(&cloud, &sec, &["guardduty", "create-detector", "--enable", "--region", region]);
    assert_ne!(code, 0);
    assert!(err.contains("(BadRequestException)") && err.contains("a detector already exists"), "{err}");

    assert_eq!(run(&mem, &detectors), "None", "GuardDuty is off in the member");
    let details = format!("AccountId={member},Email=m@example.com");
    run(&sec, &["guardduty", "create-members", "--detector-id", &det, "--account-details", &details]);
    let mdet = run(&mem, &detectors);
    assert_ne!(mdet, "None", "adding the member enabled GuardDuty for it");
    assert_eq!(run(&mem, &["guardduty", "get-detector", "--detector-id", &mdet, "--query", "Status"]), "ENABLED");
    let admin = run(
        &mem,
        &["guardduty", "get-administrator-account", "--detector-id", &mdet, "--query", "Administrator.AccountId"],
    );
    assert_eq!(admin, security);
}

/// GuardDuty publishes findings from an opt-in region as guardduty.REGION.amazonaws.com: a bucket
/// and key policy naming only guardduty.amazonaws.com leave that region's destination unable to
/// publish, as DescribePublishingDestination reports; naming the regional principal fixes it.
#[tokio::test(flavor = "multi_thread")]
async fn guardduty_in_an_opt_in_region_publishes_only_where_its_regional_principal_may_write() {
    let cloud = LocalCloud::start();
    cloud.limits(serde_json::json!({"transitionSeconds": 0.5}));
    let admin = credentials(&cloud.sdk_config().await).await;
    let run = |region: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--region", region, "--output", "text"]);
        let (code, out, err) = aws_cli(&cloud, &admin, &all);
        assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
        out.trim().to_owned()
    };
    let account = run("us-east-1", &["sts", "get-caller-identity", "--query", "Account"]);
    let policies = |principals: &[&str]| {
        let bucket = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": principals}, "Action": ["s3:PutObject", "s3:GetBucketLocation"],
             "Resource": ["arn:aws:s3:::findings", "arn:aws:s3:::findings/*"]}]});
        let key = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"Service": principals}, "Action": "kms:GenerateDataKey", "Resource": "*"}]});
        (bucket.to_string(), key.to_string())
    };
    let (bucket_policy, key_policy) = policies(&["guardduty.amazonaws.com"]);
    // me-south-1 is an opt-in Region: disabled until the account enables it.
    run("us-east-1", &["account", "enable-region", "--region-name", "me-south-1"]);
    run("us-east-1", &["s3api", "create-bucket", "--bucket", "findings"]);
    run("us-east-1", &["s3api", "put-bucket-policy", "--bucket", "findings", "--policy", &bucket_policy]);
    let key = run("us-east-1", &["kms", "create-key", "--policy", &key_policy, "--query", "KeyMetadata.Arn"]);
    let props = format!("DestinationArn=arn:aws:s3:::findings/guardduty,KmsKeyArn={key}");
    let status = |region: &str| {
        let det = run(region, &["guardduty", "list-detectors", "--query", "DetectorIds[0]"]);
        let dest = run(
            region,
            &[
                "guardduty",
                "list-publishing-destinations",
                "--detector-id",
                &det,
                "--query",
                "Destinations[0].DestinationId",
            ],
        );
        run(
            region,
            &[
                "guardduty",
                "describe-publishing-destination",
                "--detector-id",
                &det,
                "--destination-id",
                &dest,
                "--query",
                "Status",
            ],
        )
    };
    // A new destination is PENDING_VERIFICATION first (API_Destination); what it becomes, once
    // GuardDuty has checked it, within a bound.
    let status = |region: &str| {
        assure_e2e::settled(std::time::Duration::from_secs(20), "PENDING_VERIFICATION", || status(region))
    };
    for region in ["us-east-1", "me-south-1"] {
        let det = run(region, &["guardduty", "create-detector", "--enable", "--query", "DetectorId"]);
        run(
            region,
            &[
                "guardduty",
                "create-publishing-destination",
                "--detector-id",
                &det,
                "--destination-type",
                "S3",
                "--destination-properties",
                &props,
            ],
        );
    }
    assert_eq!(status("us-east-1"), "PUBLISHING");
    assert_eq!(status("me-south-1"), "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY");

    // The bucket alone is not enough: the key must admit the regional principal too.
    let (bucket_policy, key_policy) = policies(&["guardduty.amazonaws.com", "guardduty.me-south-1.amazonaws.com"]);
    run("us-east-1", &["s3api", "put-bucket-policy", "--bucket", "findings", "--policy", &bucket_policy]);
    assert_eq!(status("me-south-1"), "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY");
    run("us-east-1", &["kms", "put-key-policy", "--key-id", &key, "--policy-name", "default", "--policy", &key_policy]);
    assert_eq!(status("me-south-1"), "PUBLISHING");
}

/// CreateTrail checks that CloudTrail can deliver: the bucket policy must let it check the bucket
/// and write under AWSLogs/ACCOUNT/, the key must exist and its policy let CloudTrail encrypt. A
/// trail whose bucket policy later stops admitting CloudTrail reports the failed delivery.
#[tokio::test(flavor = "multi_thread")]
async fn cloudtrail_refuses_a_bucket_or_key_it_cannot_deliver_to() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &admin, args);
    let refused = |args: &[&str], needle: &str| cli_refused(&cloud, &admin, args, needle);
    let account = ok(&["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    let root = format!("arn:aws:iam::{account}:root");
    let cloudtrail = serde_json::json!({"Service": "cloudtrail.amazonaws.com"});
    let acl = serde_json::json!({"Effect": "Allow", "Principal": cloudtrail, "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::audit-logs"});
    let write = serde_json::json!({"Effect": "Allow", "Principal": cloudtrail, "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::audit-logs/AWSLogs/{account}/*")});
    let doc = |statements: Vec<&serde_json::Value>| {
        serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    };
    let admin_key =
        serde_json::json!({"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"});
    let encrypt = serde_json::json!({"Effect": "Allow", "Principal": cloudtrail, "Action": "kms:GenerateDataKey*", "Resource": "*"});
    ok(&["s3api", "create-bucket", "--bucket", "audit-logs"]);
    let create = |key: Option<&str>| {
        let mut v = vec!["cloudtrail", "create-trail", "--name", "audited", "--s3-bucket-name", "audit-logs"];
        if let Some(k) = key {
            v.extend(["--kms-key-id", k]);
        }
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };

    refused(&args(&create(None)), "(InsufficientS3BucketPolicyException)");
    ok(&["s3api", "put-bucket-policy", "--bucket", "audit-logs", "--policy", &doc(vec![&acl])]);
    refused(&args(&create(None)), "(InsufficientS3BucketPolicyException)");
    ok(&["s3api", "put-bucket-policy", "--bucket", "audit-logs", "--policy", &doc(vec![&acl, &write])]);
    let missing = format!("arn:aws:kms:us-east-1:{account}:key/00000000-0000-0000-0000-000000000000");
    refused(&args(&create(Some(&missing))), "(KmsKeyNotFoundException)");
    let key = ok(&[
        "kms",
        "create-key",
        "--policy",
        &doc(vec![&admin_key]),
        "--query",
        "KeyMetadata.Arn",
        "--output",
        "text",
    ]);
    refused(&args(&create(Some(&key))), "(InsufficientEncryptionPolicyException)");
    let key_policy = |statements: Vec<&serde_json::Value>| {
        ok(&["kms", "put-key-policy", "--key-id", &key, "--policy-name", "default", "--policy", &doc(statements)]);
    };
    key_policy(vec![&admin_key, &encrypt]);
    ok(&args(&create(Some(&key))));
    // With an S3 Bucket Key on the bucket, CloudTrail also needs kms:Decrypt.
    let bucket_key = serde_json::json!({"Rules": [{"ApplyServerSideEncryptionByDefault":
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}, "BucketKeyEnabled": true}]})
    .to_string();
    ok(&[
        "s3api",
        "put-bucket-encryption",
        "--bucket",
        "audit-logs",
        "--server-side-encryption-configuration",
        &bucket_key,
    ]);
    let update = ["cloudtrail", "update-trail", "--name", "audited", "--kms-key-id", key.as_str()];
    refused(&update, "(InsufficientEncryptionPolicyException)");
    let decrypt =
        serde_json::json!({"Effect": "Allow", "Principal": cloudtrail, "Action": "kms:Decrypt", "Resource": "*"});
    key_policy(vec![&admin_key, &encrypt, &decrypt]);
    ok(&update);
    ok(&["cloudtrail", "start-logging", "--name", "audited"]);
    let error = || {
        ok(&[
            "cloudtrail",
            "get-trail-status",
            "--name",
            "audited",
            "--query",
            "LatestDeliveryError",
            "--output",
            "text",
        ])
    };
    assert_eq!(error(), "None", "delivering");
    // The bucket policy loses CloudTrail's write: every delivery fails from then on.
    ok(&["s3api", "put-bucket-policy", "--bucket", "audit-logs", "--policy", &doc(vec![&acl])]);
    assert_eq!(error(), "AccessDenied");
}

/// Organizations validates an SCP (its grammar, 5,120 characters) and allows 5 SCPs on a target,
/// each attached once.
#[tokio::test(flavor = "multi_thread")]
async fn organizations_refuses_a_malformed_or_oversized_scp_and_a_sixth_on_a_target() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let target = ids["external"][0].as_str().unwrap();
    let management = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &management, args);
    let refused = |args: &[&str], needle: &str| cli_refused(&cloud, &management, args, needle);
    let create = |name: &str, content: &str| {
        [
            "organizations",
            "create-policy",
            "--name",
            name,
            "--type",
            "SERVICE_CONTROL_POLICY",
            "--description",
            "t",
            "--content",
            content,
            "--query",
            "Policy.PolicySummary.Id",
            "--output",
            "text",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let deny = |action: &str| {
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": action, "Resource": "*"}]})
            .to_string()
    };
    let with_principal =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    refused(&args(&create("principal", with_principal)), "(MalformedPolicyDocumentException)");
    refused(
        &args(&create("no-effect", r#"{"Statement":[{"Action":"s3:*","Resource":"*"}]}"#)),
        "(MalformedPolicyDocumentException)",
    );
    let many: Vec<String> = (0..400).map(|i| format!("s3:Action{i:04}")).collect();
    let oversized =
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": many, "Resource": "*"}]})
            .to_string();
    assert!(oversized.len() > 5120);
    refused(&args(&create("oversized", &oversized)), "(ConstraintViolationException)");

    let attached = |t: &str| {
        ok(&[
            "organizations",
            "list-policies-for-target",
            "--target-id",
            t,
            "--filter",
            "SERVICE_CONTROL_POLICY",
            "--query",
            "length(Policies)",
            "--output",
            "text",
        ])
        .parse::<usize>()
        .unwrap()
    };
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(ok(&args(&create(&format!("deny-{i}"), &deny(&format!("service{i}:*"))))));
    }
    let mut n = attached(target);
    let mut next = ids.iter();
    while n < 5 {
        ok(&["organizations", "attach-policy", "--policy-id", next.next().unwrap(), "--target-id", target]);
        n += 1;
    }
    assert_eq!(attached(target), 5);
    let sixth = next.next().unwrap();
    refused(
        &["organizations", "attach-policy", "--policy-id", sixth, "--target-id", target],
        "(ConstraintViolationException)",
    );
    refused(
        &["organizations", "attach-policy", "--policy-id", &ids[0], "--target-id", target],
        "(DuplicatePolicyAttachmentException)",
    );
    assert_eq!(attached(target), 5);
}

/// Config delivers to a bucket in another account only where the bucket's policy lets it write:
/// PutDeliveryChannel refuses the bucket before, and DescribeDeliveryChannelStatus reports the
/// failed deliveries once the policy stops admitting Config.
#[tokio::test(flavor = "multi_thread")]
async fn config_delivers_to_another_accounts_bucket_only_where_its_policy_admits_config() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    // The security account: no recorder of its own yet (the external accounts have the seed's).
    let member = ids["security"].as_str().unwrap();
    let owner = credentials(&cloud.sdk_config().await).await;
    let admin = credentials(&cloud.admin_config_as(member, "us-east-1").await).await;
    let cli = |creds: &aws_sdk_sts::config::Credentials, args: &[&str]| {
        let (code, out, err) = aws_cli(&cloud, creds, args);
        (code, out.trim().to_owned(), err)
    };
    let ok = |creds, args: &[&str]| {
        let (code, out, err) = cli(creds, args);
        assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
        out
    };
    ok(&owner, &["s3api", "create-bucket", "--bucket", "config-elsewhere"]);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"config.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    ok(&admin, &["iam", "create-role", "--role-name", "records", "--assume-role-policy-document", trust]);
    let recorder = format!("name=probe,roleARN=arn:aws:iam::{member}:role/records");
    ok(&admin, &["configservice", "put-configuration-recorder", "--configuration-recorder", &recorder]);
    let channel = |bucket: &str| format!("name=probe,s3BucketName={bucket}");
    let put =
        |bucket: &str| cli(&admin, &["configservice", "put-delivery-channel", "--delivery-channel", &channel(bucket)]);

    let (code, _, err) = put("no-such-bucket-anywhere");
    assert_ne!(code, 0);
    assert!(err.contains("(NoSuchBucketException)"), "{err}");
    let (code, _, err) = put("config-elsewhere");
    assert_ne!(code, 0);
    assert!(err.contains("(InsufficientDeliveryPolicyException)"), "{err}");

    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "s3:GetBucketAcl", "Resource": "arn:aws:s3:::config-elsewhere"},
        {"Effect": "Allow", "Principal": {"Service": "config.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::config-elsewhere/AWSLogs/{member}/Config/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]});
    ok(&owner, &["s3api", "put-bucket-policy", "--bucket", "config-elsewhere", "--policy", &policy.to_string()]);
    let (code, _, err) = put("config-elsewhere");
    assert_eq!(code, 0, "{err}");
    let status = || {
        ok(
            &admin,
            &[
                "configservice",
                "describe-delivery-channel-status",
                "--query",
                "DeliveryChannelsStatus[0].configHistoryDeliveryInfo.[lastStatus,lastErrorCode]",
                "--output",
                "text",
            ],
        )
    };
    assert!(status().starts_with("Success"), "{}", status());
    ok(&owner, &["s3api", "delete-bucket-policy", "--bucket", "config-elsewhere"]);
    let now = status();
    assert!(now.starts_with("Failure") && now.contains("AccessDenied"), "{now}");
}

/// Step Functions fails an execution whose state passes 256 KiB with States.DataLimitExceeded:
/// a Pass state that doubles a 150 KB input.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_over_256_kib_fails_the_execution_with_data_limit_exceeded() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| {
        let (code, out, err) = aws_cli(&cloud, &admin, args);
        assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
        out.trim().to_owned()
    };
    let definition = serde_json::json!({"StartAt": "Double", "States": {
        "Double": {"Type": "Pass", "Parameters": {"a.$": "$.x", "b.$": "$.x"}, "End": true}}});
    let machine = state_machine(&cloud, &admin, "doubles", &definition, None);
    let dir = std::env::temp_dir().join(format!("assure-data-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let execution = |name: &str, bytes: usize| {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, serde_json::json!({"x": "x".repeat(bytes)}).to_string()).unwrap();
        let input = format!("file://{}", file.display());
        let arn = ok(&[
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            &machine,
            "--name",
            name,
            "--input",
            &input,
            "--query",
            "executionArn",
            "--output",
            "text",
        ]);
        for _ in 0..50 {
            let status = ok(&[
                "stepfunctions",
                "describe-execution",
                "--execution-arn",
                &arn,
                "--query",
                "[status,error]",
                "--output",
                "text",
            ]);
            if !status.starts_with("RUNNING") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("{name} still running");
    };
    assert!(execution("small", 100_000).starts_with("SUCCEEDED"), "200 KB of state is within the limit");
    let big = execution("big", 150_000);
    assert!(big.starts_with("FAILED") && big.contains("States.DataLimitExceeded"), "{big}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A retried `.waitForTaskToken` attempt is a new task with a token of its own; the failed attempt's
/// token is closed, and answering it again is refused `TaskTimedOut` (API_SendTaskSuccess).
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_callback_task_sends_a_new_token_and_the_old_one_is_closed() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &admin, args);
    let queue = ok(&["sqs", "create-queue", "--queue-name", "callbacks", "--query", "QueueUrl", "--output", "text"]);
    let send = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}]}"#;
    // Retried after a second: in moto the retried attempt read the first attempt's failure at once,
    // so this execution had failed before a second message could be answered.
    let definition = serde_json::json!({"StartAt": "Work", "States": {"Work": {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 2}],
        "End": true}}});
    let machine = state_machine(&cloud, &admin, "callbacks", &definition, Some(send));
    let execution = ok(&[
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        &machine,
        "--query",
        "executionArn",
        "--output",
        "text",
    ]);
    let next_token = || {
        let out = ok(&["sqs", "receive-message", "--queue-url", &queue, "--wait-time-seconds", "10"]);
        let message: serde_json::Value = serde_json::from_str(&out).expect("a message");
        let m = &message["Messages"][0];
        ok(&["sqs", "delete-message", "--queue-url", &queue, "--receipt-handle", m["ReceiptHandle"].as_str().unwrap()]);
        let body: serde_json::Value = serde_json::from_str(m["Body"].as_str().unwrap()).unwrap();
        body["token"].as_str().unwrap().to_owned()
    };
    let first = next_token();
    ok(&["stepfunctions", "send-task-failure", "--task-token", &first, "--error", "Again"]);
    let second = next_token();
    assert_ne!(first, second, "the retried attempt has a token of its own");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let status = |arn: &str| {
        ok(&["stepfunctions", "describe-execution", "--execution-arn", arn, "--query", "status", "--output", "text"])
    };
    assert_eq!(status(&execution), "RUNNING", "the retried attempt waits for its own answer");
    cli_refused(
        &cloud,
        &admin,
        &["stepfunctions", "send-task-success", "--task-token", &first, "--task-output", "{}"],
        "(TaskTimedOut)",
    );
    ok(&["stepfunctions", "send-task-success", "--task-token", &second, "--task-output", r#"{"done":true}"#]);
    for _ in 0..50 {
        if status(&execution) != "RUNNING" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(status(&execution), "SUCCEEDED");
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

/// CloudTrail deletes a trail named by name or ARN, only in its home region: a shadow of a
/// multi-region trail answers InvalidHomeRegionException, an unknown trail TrailNotFoundException.
/// Event selectors read back whole, one kind at a time; PutInsightSelectors replaces the trail's
/// selectors.
#[tokio::test(flavor = "multi_thread")]
async fn cloudtrail_deletes_a_trail_only_in_its_home_region_and_insight_selectors_replace() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &admin, args);
    let refused = |args: &[&str], needle: &str| cli_refused(&cloud, &admin, args, needle);
    let account = ok(&["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    let bucket_policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": "arn:aws:s3:::trail-logs"},
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::trail-logs/*"}]})
    .to_string();
    ok(&["s3api", "create-bucket", "--bucket", "trail-logs"]);
    ok(&["s3api", "put-bucket-policy", "--bucket", "trail-logs", "--policy", &bucket_policy]);
    let arn = ok(&[
        "cloudtrail",
        "create-trail",
        "--name",
        "everywhere",
        "--s3-bucket-name",
        "trail-logs",
        "--is-multi-region-trail",
        "--query",
        "TrailARN",
        "--output",
        "text",
    ]);
    assert_eq!(arn, format!("arn:aws:cloudtrail:us-east-1:{account}:trail/everywhere"));

    let insights = |types: &str| {
        ok(&["cloudtrail", "put-insight-selectors", "--trail-name", "everywhere", "--insight-selectors", types]);
        ok(&[
            "cloudtrail",
            "get-insight-selectors",
            "--trail-name",
            "everywhere",
            "--query",
            "InsightSelectors[].InsightType",
            "--output",
            "text",
        ])
    };
    assert_eq!(insights(r#"[{"InsightType":"ApiCallRateInsight"}]"#), "ApiCallRateInsight");
    assert_eq!(insights(r#"[{"InsightType":"ApiErrorRateInsight"}]"#), "ApiErrorRateInsight", "replaced, not added");

    // Event selectors read back whole; either kind, never both, and at most five.
    fn selectors(args: &str) -> [&str; 6] {
        ["cloudtrail", "put-event-selectors", "--trail-name", "everywhere", "--event-selectors", args]
    }
    ok(&selectors(r#"[{"ReadWriteType":"WriteOnly"}]"#));
    let read = ok(&["cloudtrail", "get-event-selectors", "--trail-name", "everywhere", "--query", "EventSelectors"]);
    let read: serde_json::Value = serde_json::from_str(&read).unwrap();
    assert_eq!(
        read,
        serde_json::json!([{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": true, "DataResources": [],
                            "ExcludeManagementEventSources": []}])
    );
    let six = format!("[{}]", [r#"{"ReadWriteType":"All"}"#; 6].join(","));
    refused(&selectors(&six), "(InvalidEventSelectorsException)");
    let mut both = selectors(r#"[{"ReadWriteType":"All"}]"#).to_vec();
    both.extend([
        "--advanced-event-selectors",
        r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]"#,
    ]);
    refused(&both, "(InvalidEventSelectorsException)");

    // Its shadow in eu-west-1 is listed there but cannot be deleted there.
    let listed = ok(&["cloudtrail", "describe-trails", "--region", "eu-west-1", "--query", "trailList[].Name"]);
    assert!(listed.contains("everywhere"), "{listed}");
    refused(&["cloudtrail", "delete-trail", "--region", "eu-west-1", "--name", &arn], "(InvalidHomeRegionException)");
    refused(&["cloudtrail", "delete-trail", "--name", "nowhere"], "(TrailNotFoundException)");
    // By ARN in its home region: gone.
    ok(&["cloudtrail", "delete-trail", "--name", &arn]);
    let listed = ok(&["cloudtrail", "describe-trails", "--query", "trailList[].Name", "--output", "text"]);
    assert!(!listed.contains("everywhere"), "{listed}");
    refused(&["cloudtrail", "delete-trail", "--name", &arn], "(TrailNotFoundException)");
}

/// Config keeps the "AWSConfigurationRecorderFor" prefix for service-linked recorders: a customer
/// managed recorder by that name is refused; a service-linked recorder is listed beside the
/// account's own and is deleted only by its service principal.
#[tokio::test(flavor = "multi_thread")]
async fn config_reserves_the_service_linked_recorder_prefix() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let run = |args: &[&str]| aws_cli(&cloud, &admin, args);
    let ok = |args: &[&str]| {
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
        out.trim().to_owned()
    };
    let account = ok(&["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    let recorder = |name: &str| {
        serde_json::json!({"name": name, "roleARN": format!("arn:aws:iam::{account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig")}).to_string()
    };
    let (code, _, err) = run(&[
        "configservice",
        "put-configuration-recorder",
        "--configuration-recorder",
        &recorder("AWSConfigurationRecorderForMine"),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("(InvalidConfigurationRecorderNameException)")
            && err.contains("The prefix \"AWSConfigurationRecorderFor\" is reserved"),
        "{err}"
    );
    ok(&["configservice", "put-configuration-recorder", "--configuration-recorder", &recorder("mine")]);
    let linked = ok(&[
        "configservice",
        "put-service-linked-configuration-recorder",
        "--service-principal",
        "securityhub.amazonaws.com",
        "--query",
        "Name",
        "--output",
        "text",
    ]);
    assert!(linked.starts_with("AWSConfigurationRecorderFor"), "{linked}");
    let names = ok(&[
        "configservice",
        "describe-configuration-recorders",
        "--query",
        "ConfigurationRecorders[].[name,recordingScope]",
        "--output",
        "text",
    ]);
    assert!(names.contains("mine") && names.contains(&format!("{linked}\tINTERNAL")), "{names}");
    ok(&[
        "configservice",
        "delete-service-linked-configuration-recorder",
        "--service-principal",
        "securityhub.amazonaws.com",
    ]);
    let names = ok(&["configservice", "describe-configuration-recorders", "--query", "ConfigurationRecorders[].name"]);
    assert!(!names.contains(&linked) && names.contains("mine"), "{names}");
}

/// Organizations refuses a second IAM Access Analyzer delegated administrator and an SCP attached
/// while SCPs are not enabled in the root; both accepted once the organization allows them.
#[tokio::test(flavor = "multi_thread")]
async fn organizations_refuses_a_second_analyzer_administrator_and_an_scp_the_root_does_not_enable() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let (logging, security) = (ids["logging"].as_str().unwrap(), ids["security"].as_str().unwrap());
    let target = ids["external"][0].as_str().unwrap();
    let management = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &management, args);
    let refused = |args: &[&str], needle: &str| cli_refused(&cloud, &management, args, needle);
    let aa = "access-analyzer.amazonaws.com";
    ok(&["organizations", "enable-aws-service-access", "--service-principal", aa]);
    let register = |account: &str| {
        ["organizations", "register-delegated-administrator", "--account-id", account, "--service-principal", aa]
            .map(str::to_owned)
    };
    ok(&register(logging).each_ref().map(String::as_str));
    refused(
        &register(security).each_ref().map(String::as_str),
        "(ConstraintViolationException) when calling the RegisterDelegatedAdministrator operation: You attempted to register an account as a delegated administrator for a service that already has a delegated administrator.",
    );
    ok(&["organizations", "deregister-delegated-administrator", "--account-id", logging, "--service-principal", aa]);
    ok(&register(security).each_ref().map(String::as_str));
    let admins = ok(&[
        "organizations",
        "list-delegated-administrators",
        "--service-principal",
        aa,
        "--query",
        "DelegatedAdministrators[].Id",
        "--output",
        "text",
    ]);
    assert_eq!(admins, security, "one administrator, the second one registered");

    // SCPs: the seed enables them in the root, as an organization that uses them has them.
    let root = ok(&["organizations", "list-roots", "--query", "Roots[0].Id", "--output", "text"]);
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:*","Resource":"*"}]}"#;
    let policy = ok(&[
        "organizations",
        "create-policy",
        "--name",
        "guard",
        "--type",
        "SERVICE_CONTROL_POLICY",
        "--description",
        "t",
        "--content",
        doc,
        "--query",
        "Policy.PolicySummary.Id",
        "--output",
        "text",
    ]);
    ok(&["organizations", "disable-policy-type", "--root-id", &root, "--policy-type", "SERVICE_CONTROL_POLICY"]);
    let attach = ["organizations", "attach-policy", "--policy-id", &policy, "--target-id", target];
    refused(
        &attach,
        "(PolicyTypeNotEnabledException) when calling the AttachPolicy operation: This operation can be performed only for enabled policy types.",
    );
    ok(&["organizations", "enable-policy-type", "--root-id", &root, "--policy-type", "SERVICE_CONTROL_POLICY"]);
    ok(&attach);
}

/// The Account Management API: a Region an account disables is one where AWS no longer knows the
/// account, so every call it makes there is refused with the protocol's invalid-token error; the
/// Regions enabled by default cannot be disabled.
#[tokio::test(flavor = "multi_thread")]
async fn an_account_is_refused_in_a_region_it_has_not_enabled() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let target = ids["external"][0].as_str().unwrap();
    let member = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    let run = |args: &[&str]| aws_cli(&cloud, &member, args);
    let status = |region: &str| {
        let (code, out, err) = run(&[
            "account",
            "get-region-opt-status",
            "--region-name",
            region,
            "--query",
            "RegionOptStatus",
            "--output",
            "text",
        ]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_owned()
    };
    assert_eq!(status("us-east-1"), "ENABLED_BY_DEFAULT");
    // An opt-in Region starts disabled in every account, as on AWS.
    assert_eq!(status("eu-south-1"), "DISABLED");
    let probe = ["guardduty", "list-detectors", "--region", "eu-south-1"];
    let (code, _, err) = run(&probe);
    assert!(code != 0 && err.contains("(UnrecognizedClientException)"), "not enabled yet: {err}");
    let (code, _, err) = run(&["account", "enable-region", "--region-name", "eu-south-1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status("eu-south-1"), "ENABLED");
    let (code, _, err) = run(&probe);
    assert_eq!(code, 0, "enabled: {err}");

    let (code, _, err) = run(&["account", "disable-region", "--region-name", "eu-south-1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status("eu-south-1"), "DISABLED");
    let (code, _, err) = run(&probe);
    assert_ne!(code, 0, "a call in a disabled region was answered");
    assert!(
        err.contains("(UnrecognizedClientException)")
            && err.contains("The security token included in the request is invalid"),
        "{err}"
    );
    let (code, _, err) = run(&["configservice", "describe-configuration-recorders", "--region", "eu-south-1"]);
    assert!(code != 0 && err.contains("(UnrecognizedClientException)"), "{err}");
    // Other accounts and other regions are not affected.
    let (code, _, err) = run(&["guardduty", "list-detectors", "--region", "eu-west-1"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["account", "disable-region", "--region-name", "us-east-1"]);
    assert!(code != 0 && err.contains("(ValidationException)"), "a default region cannot be disabled: {err}");

    let (code, _, err) = run(&["account", "enable-region", "--region-name", "eu-south-1"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&probe);
    assert_eq!(code, 0, "enabled again: {err}");
}

/// An organization trail: only the management account makes it, once CloudTrail has trusted access;
/// every member sees it (a shadow trail) and reads its status and selectors, and none may change it.
#[tokio::test(flavor = "multi_thread")]
async fn an_organization_trail_is_made_by_the_management_account_and_seen_but_not_changed_by_members() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let target = ids["external"][0].as_str().unwrap();
    let management = credentials(&cloud.sdk_config().await).await;
    let member = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    let (_, mgmt, _) =
        aws_cli(&cloud, &management, &["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    let mgmt = mgmt.trim().to_owned();
    let ok = |creds: &aws_sdk_sts::config::Credentials, args: &[&str]| cli_ok(&cloud, creds, args);
    let refused = |creds: &aws_sdk_sts::config::Credentials, args: &[&str], needle: &str| {
        cli_refused(&cloud, creds, args, needle)
    };
    let bucket = format!("org-trail-{mgmt}");
    let arn = format!("arn:aws:cloudtrail:us-east-1:{mgmt}:trail/org-audit");
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": format!("arn:aws:s3:::{bucket}")},
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]})
    .to_string();
    ok(&management, &["s3api", "create-bucket", "--bucket", &bucket]);
    ok(&management, &["s3api", "put-bucket-policy", "--bucket", &bucket, "--policy", &policy]);
    let create = ["cloudtrail", "create-trail", "--name", "org-audit", "--s3-bucket-name", &bucket];
    let org_trail = [&create[..], &["--is-multi-region-trail", "--is-organization-trail"]].concat();
    refused(&management, &org_trail, "(CloudTrailAccessNotEnabledException)");
    ok(&management, &["organizations", "enable-aws-service-access", "--service-principal", "cloudtrail.amazonaws.com"]);
    refused(&member, &org_trail, "(NotOrganizationMasterAccountException)");
    // CloudTrail learns of trusted access a moment after Organizations enabled it.
    super::iam::cli_once_trusted(&cloud, &management, &org_trail, "(CloudTrailAccessNotEnabledException)");
    ok(&management, &["cloudtrail", "start-logging", "--name", "org-audit"]);

    // The member sees it as a shadow trail, in every region (it is multi-region), and reads it.
    let shadows = |extra: &[&str]| {
        let args = [&["cloudtrail", "describe-trails", "--region", "eu-west-1"][..], extra].concat();
        ok(&member, &[&args[..], &["--query", "trailList[].TrailARN", "--output", "text"]].concat())
    };
    assert!(shadows(&[]).split_whitespace().any(|a| a == arn), "listed with shadow trails");
    assert!(!shadows(&["--no-include-shadow-trails"]).contains(&arn), "not among the member's own");
    let status = ["cloudtrail", "get-trail-status", "--name", &arn, "--query", "IsLogging", "--output", "text"];
    assert_eq!(ok(&member, &status), "True");
    ok(&member, &["cloudtrail", "get-event-selectors", "--trail-name", &arn]);
    for change in [
        vec!["cloudtrail", "stop-logging", "--name", &arn],
        vec!["cloudtrail", "delete-trail", "--name", &arn],
        vec!["cloudtrail", "update-trail", "--name", &arn, "--enable-log-file-validation"],
    ] {
        // IAM refuses it first: another account's trail, and trails have no resource-based policy.
        refused(&member, &change, "because the resource belongs to another account");
    }
    assert_eq!(ok(&member, &status), "True", "still logging");
}

/// GuardDuty has one detector per account and Region: a second CreateDetector is refused, another
/// Region takes its own.
#[tokio::test(flavor = "multi_thread")]
async fn guardduty_refuses_a_second_detector_in_a_region() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let create =
        |region: &str| aws_cli(&cloud, &admin, &["guardduty", "create-detector", "--enable", "--region", region]);
    let (code, out, err) = create("us-east-1");
    assert_eq!(code, 0, "the first detector: {err}");
    assert!(out.contains("DetectorId"), "{out}");
    let (code, _, err) = create("us-east-1");
    assert_ne!(code, 0, "a second detector in us-east-1 was made");
    assert!(err.contains("BadRequestException") && err.contains("a detector already exists"), "{err}");
    let (code, _, err) = create("eu-west-1");
    assert_eq!(code, 0, "eu-west-1's own detector: {err}");
    let (_, out, _) = aws_cli(
        &cloud,
        &admin,
        &["guardduty", "list-detectors", "--region", "us-east-1", "--query", "length(DetectorIds)"],
    );
    assert_eq!(out.trim(), "1");
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

/// ListTrails names every trail of the account, whichever Region answers, with its home Region;
/// DescribeTrails with a list answers only those: a name in the current Region, a trail of another
/// Region by its ARN (API_ListTrails, API_DescribeTrails). Seen with the AWS CLI.
#[tokio::test(flavor = "multi_thread")]
async fn list_trails_names_every_regions_trails_and_describe_trails_takes_others_by_arn() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &admin, args);
    let account = ok(&["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    let bucket = format!("trails-{account}");
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": format!("arn:aws:s3:::{bucket}")},
        {"Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": format!("arn:aws:s3:::{bucket}/AWSLogs/*"),
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}]})
    .to_string();
    ok(&["s3api", "create-bucket", "--bucket", &bucket]);
    ok(&["s3api", "put-bucket-policy", "--bucket", &bucket, "--policy", &policy]);
    for (name, region) in [("east", "us-east-1"), ("west", "eu-west-1")] {
        ok(&["cloudtrail", "create-trail", "--name", name, "--s3-bucket-name", &bucket, "--region", region]);
    }
    let west = format!("arn:aws:cloudtrail:eu-west-1:{account}:trail/west");

    // Any Region lists both, each with its home Region.
    let listed = ok(&[
        "cloudtrail",
        "list-trails",
        "--region",
        "ap-south-1",
        "--query",
        "sort_by(Trails, &Name)[].[Name, HomeRegion]",
        "--output",
        "text",
    ]);
    assert_eq!(listed.split_whitespace().collect::<Vec<_>>(), ["east", "us-east-1", "west", "eu-west-1"], "{listed}");

    let described = |list: &[&str]| {
        let args = [
            &["cloudtrail", "describe-trails", "--region", "us-east-1", "--trail-name-list"][..],
            list,
            &["--query", "trailList[].Name", "--output", "text"],
        ]
        .concat();
        ok(&args)
    };
    assert_eq!(described(&["east"]), "east");
    assert_eq!(described(&["west"]), "", "a name matches the current Region's trails only");
    assert_eq!(described(&[&west]), "west", "another Region's trail, by its ARN");
    assert_eq!(described(&["east", &west]).split_whitespace().count(), 2);
}
