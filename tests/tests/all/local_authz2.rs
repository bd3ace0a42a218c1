//! The local cloud limits principals as AWS documents it: permissions boundaries and session policies
//! intersect with identity-based policies (a resource policy naming the session passes them, one
//! naming the role does not), a service assuming a role for one of its resources sends the context
//! keys its guide documents and no others, and the root user of each account may do everything in it
//! by identity, bound by its member account's SCPs, with centralized root sessions (`sts:AssumeRoot`)
//! held to their task policy. Each rule cites its AWS page in localcloud/assure_local/iam.py and authz.py;
//! localcloud/tests/test_iam.py and test_authz*.py test them one by one. The AWS CLI is the independent client.

use assure_e2e::LocalCloud;
use serde_json::{json, Value};

use super::iam::{aws_cli, cli_ok, cli_refused, credentials};

type Credentials = aws_sdk_sts::config::Credentials;

/// Credentials from a JSON object with `AccessKeyId`, `SecretAccessKey` and, for a session,
/// `SessionToken` (the CLI's `Credentials`, the local cloud's `/assure-api/…` answers).
fn from_json(text: &str) -> Credentials {
    let c: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let part = |k: &str| c[k].as_str().unwrap_or_else(|| panic!("{k} in {text}")).to_owned();
    let token = c["SessionToken"].as_str().map(str::to_owned);
    Credentials::new(part("AccessKeyId"), part("SecretAccessKey"), token, None, "t")
}

/// A POST to the local cloud's own API; returns the body.
fn local_api(cloud: &LocalCloud, path: &str, body: Value) -> String {
    assure_e2e::http(&cloud.endpoint, "POST", path, &body.to_string())
}

const ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const IAM_READS: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:List*","iam:Get*"],"Resource":"*"}]}"#;
const SQS_LIST: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:ListQueues","Resource":"*"}]}"#;

/// Permissions boundaries (access_policies_boundaries.html), session policies (API_AssumeRole's
/// Policy and PolicyArns), and the keys services send when they assume a role for a trail or a
/// delivery stream (the services' confused deputy pages).
#[tokio::test(flavor = "multi_thread")]
async fn boundaries_session_policies_and_service_keys_limit_as_on_aws() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &admin, args);
    let account = ok(&["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);
    let boundary = ok(&[
        "iam",
        "create-policy",
        "--policy-name",
        "iam-reads",
        "--policy-document",
        IAM_READS,
        "--query",
        "Policy.Arn",
        "--output",
        "text",
    ]);

    // A role's boundary: its sessions may do what both its policy and the boundary allow.
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "sts:AssumeRole"}]})
    .to_string();
    ok(&["iam", "create-role", "--role-name", "bounded", "--assume-role-policy-document", &trust]);
    ok(&["iam", "put-role-policy", "--role-name", "bounded", "--policy-name", "all", "--policy-document", ALL]);
    let role = format!("arn:aws:iam::{account}:role/bounded");
    let assume = |extra: &[&str]| {
        let mut args = vec![
            "sts",
            "assume-role",
            "--role-arn",
            role.as_str(),
            "--role-session-name",
            "test",
            "--query",
            "Credentials",
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        from_json(&ok(&args))
    };
    ok(&["iam", "put-role-permissions-boundary", "--role-name", "bounded", "--permissions-boundary", &boundary]);
    let bounded = assume(&[]);
    cli_ok(&cloud, &bounded, &["iam", "list-roles"]);
    cli_refused(
        &cloud,
        &bounded,
        &["sqs", "list-queues"],
        "because no permissions boundary allows the sqs:ListQueues action",
    );
    ok(&["iam", "delete-role-permissions-boundary", "--role-name", "bounded"]);
    cli_ok(&cloud, &bounded, &["sqs", "list-queues"]);

    // A user's boundary (PutUserPermissionsBoundary, CreateUser's PermissionsBoundary, GetUser's answer).
    ok(&["iam", "create-user", "--user-name", "bounded-user", "--permissions-boundary", &boundary]);
    ok(&["iam", "put-user-policy", "--user-name", "bounded-user", "--policy-name", "all", "--policy-document", ALL]);
    let user = from_json(&ok(&[
        "iam",
        "create-access-key",
        "--user-name",
        "bounded-user",
        "--query",
        "AccessKey",
        "--output",
        "json",
    ]));
    let shown = ok(&[
        "iam",
        "get-user",
        "--user-name",
        "bounded-user",
        "--query",
        "User.PermissionsBoundary.PermissionsBoundaryArn",
        "--output",
        "text",
    ]);
    assert_eq!(shown, boundary);
    cli_refused(&cloud, &user, &["sqs", "list-queues"], "because no permissions boundary allows");
    ok(&["iam", "delete-user-permissions-boundary", "--user-name", "bounded-user"]);
    cli_ok(&cloud, &user, &["sqs", "list-queues"]);

    // Session policies, inline and managed: the session gets the intersection with the role's policy.
    let inline = assume(&["--policy", SQS_LIST]);
    cli_ok(&cloud, &inline, &["sqs", "list-queues"]);
    cli_refused(&cloud, &inline, &["iam", "list-roles"], "because no session policy allows the iam:ListRoles action");
    let managed_arn = format!("arn={boundary}");
    let managed = assume(&["--policy-arns", &managed_arn]);
    cli_ok(&cloud, &managed, &["iam", "list-roles"]);
    cli_refused(&cloud, &managed, &["sqs", "list-queues"], "because no session policy allows");

    // A service assuming a role for a resource sends what its guide documents: CloudTrail
    // aws:SourceArn (the trail) and aws:SourceAccount; Firehose sts:ExternalId (the stream's account),
    // not aws:SourceAccount. A caller naming no resource (the worker playing Lambda) gets what it
    // always got, aws:SourceAccount.
    let service_role = |name: &str, service: &str, condition: Value| {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": service}, "Action": "sts:AssumeRole", "Condition": condition}]})
        .to_string();
        ok(&["iam", "create-role", "--role-name", name, "--assume-role-policy-document", &trust]);
        ok(&["iam", "put-role-policy", "--role-name", name, "--policy-name", "all", "--policy-document", ALL]);
        format!("arn:aws:iam::{account}:role/{name}")
    };
    let as_service = |service: &str, role: &str, source: Option<&str>| {
        let mut body = json!({"service": service, "roleArn": role});
        if let Some(s) = source {
            body["sourceArn"] = json!(s);
        }
        local_api(&cloud, "/assure-api/service-credentials", body).contains("\"AccessKeyId\"")
    };
    let trail = format!("arn:aws:cloudtrail:us-east-1:{account}:trail/main");
    let logs = service_role(
        "trail-logs",
        "cloudtrail.amazonaws.com",
        json!({"ArnEquals": {"aws:SourceArn": trail}, "StringEquals": {"aws:SourceAccount": account}}),
    );
    assert!(as_service("cloudtrail.amazonaws.com", &logs, Some(&trail)), "the trail it serves");
    assert!(!as_service("cloudtrail.amazonaws.com", &logs, Some(&format!("{trail}-other"))), "another trail");
    assert!(!as_service("cloudtrail.amazonaws.com", &logs, None), "no resource named: no aws:SourceArn");
    let stream = format!("arn:aws:firehose:us-east-1:{account}:deliverystream/findings");
    let by_account = service_role(
        "delivery-by-account",
        "firehose.amazonaws.com",
        json!({"StringEquals": {"aws:SourceAccount": account}}),
    );
    let by_external_id = service_role(
        "delivery-by-external-id",
        "firehose.amazonaws.com",
        json!({"StringEquals": {"sts:ExternalId": account}}),
    );
    assert!(!as_service("firehose.amazonaws.com", &by_account, Some(&stream)), "Firehose sends no aws:SourceAccount");
    assert!(as_service("firehose.amazonaws.com", &by_external_id, Some(&stream)));
    assert!(as_service("firehose.amazonaws.com", &by_account, None), "a caller naming no resource: as before");
    // Firehose's own check at CreateDeliveryStream assumes the role for the stream.
    cloud.limits(json!({"iamPropagationSeconds": 0}));
    ok(&["s3api", "create-bucket", "--bucket", "findings-destination"]);
    let destination = |role: &str| format!("RoleARN={role},BucketARN=arn:aws:s3:::findings-destination");
    let create = |role: &str| {
        aws_cli(
            &cloud,
            &admin,
            &[
                "firehose",
                "create-delivery-stream",
                "--delivery-stream-name",
                "findings",
                "--extended-s3-destination-configuration",
                &destination(role),
            ],
        )
    };
    let (code, _, err) = create(&by_account);
    assert!(code != 0 && err.contains("(InvalidArgumentException)"), "{err}");
    let (code, _, err) = create(&by_external_id);
    assert_eq!(code, 0, "{err}");
}

/// The root user of an account (its access keys, `/assure-api/root-credentials`) and centralized root
/// access: the organization's features (`iam:EnableOrganizationsRootSessions`) and `sts:AssumeRoot`,
/// whose session is the member's root user with `aws:AssumedRoot`, held to its task policy.
#[tokio::test(flavor = "multi_thread")]
async fn the_root_user_and_centralized_root_sessions() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let member = ids["external"][0].as_str().unwrap();
    let management_account = ids["management"].as_str().unwrap();
    let management = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &management, args);
    let root_of =
        |account: &str| from_json(&local_api(&cloud, "/assure-api/root-credentials", json!({"account": account})));

    // An account of the organization has no stand-in owner: its administrators come through
    // OrganizationAccountAccessRole, which the SCPs bind.
    let owner = local_api(&cloud, "/assure-api/account-owner", json!({"account": member}));
    assert!(owner.contains("is in an organization"), "{owner}");

    // The root user needs no IAM policy in its account, and may not assume a role.
    let root = root_of(member);
    let arn = cli_ok(&cloud, &root, &["sts", "get-caller-identity", "--query", "Arn", "--output", "text"]);
    assert_eq!(arn, format!("arn:aws:iam::{member}:root"));
    cli_ok(&cloud, &root, &["iam", "list-roles"]);
    let admin_role = format!("arn:aws:iam::{member}:role/OrganizationAccountAccessRole");
    cli_refused(
        &cloud,
        &root,
        &["sts", "assume-role", "--role-arn", &admin_role, "--role-session-name", "root"],
        "Roles may not be assumed by root accounts",
    );

    // SCPs bind a member account's root user (here one shaped like assure's RestrictRoot, which
    // spares centralized root sessions), never the management account's.
    let restrict_root = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*",
        "Resource": "*", "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"},
                                       "Null": {"aws:AssumedRoot": "true"}}}]})
    .to_string();
    let policy = ok(&[
        "organizations",
        "create-policy",
        "--name",
        "local-authz2-restrict-root",
        "--type",
        "SERVICE_CONTROL_POLICY",
        "--description",
        "root",
        "--content",
        &restrict_root,
        "--query",
        "Policy.PolicySummary.Id",
        "--output",
        "text",
    ]);
    ok(&["organizations", "attach-policy", "--policy-id", &policy, "--target-id", member]);
    cli_refused(&cloud, &root, &["iam", "list-roles"], "with an explicit deny in a service control policy");
    cli_ok(&cloud, &root_of(management_account), &["iam", "list-roles"]);

    // Centralized root sessions: IAM's trusted access, then the feature, then AssumeRoot.
    let task = "arn=arn:aws:iam::aws:policy/root-task/S3UnlockBucketPolicy";
    let assume_root = |creds: &Credentials| {
        aws_cli(
            &cloud,
            creds,
            &[
                "sts",
                "assume-root",
                "--target-principal",
                member,
                "--task-policy-arn",
                task,
                "--query",
                "Credentials",
                "--output",
                "json",
            ],
        )
    };
    cli_refused(
        &cloud,
        &management,
        &["iam", "enable-organizations-root-sessions"],
        "(ServiceAccessNotEnabledException)",
    );
    ok(&["organizations", "enable-aws-service-access", "--service-principal", "iam.amazonaws.com"]);
    let (code, _, err) = assume_root(&management);
    assert!(code != 0 && err.contains("(AccessDenied)"), "root sessions are not enabled yet: {err}");
    // IAM learns of trusted access a moment after Organizations enabled it.
    super::iam::cli_once_trusted(
        &cloud,
        &management,
        &["iam", "enable-organizations-root-sessions"],
        "(ServiceAccessNotEnabledException)",
    );
    let features = ok(&["iam", "list-organizations-features", "--query", "EnabledFeatures", "--output", "text"]);
    assert!(features.contains("RootSessions"), "{features}");
    let (code, _, err) = assume_root(&root);
    assert!(code != 0 && err.contains("(AccessDenied)"), "root credentials cannot call AssumeRoot: {err}");
    let (code, out, err) = assume_root(&management);
    assert_eq!(code, 0, "{err}");
    let session = from_json(&out);
    let arn = cli_ok(&cloud, &session, &["sts", "get-caller-identity", "--query", "Arn", "--output", "text"]);
    assert_eq!(arn, format!("arn:aws:iam::{member}:root"));

    // What S3UnlockBucketPolicy is for: a bucket whose policy denies everyone. The account's
    // administrator is locked out; the root user's own keys are refused by the SCP; the root session
    // (aws:AssumedRoot, spared by the SCP) may delete the policy, and nothing its task does not name.
    let member_admin = credentials(&cloud.admin_config_as(member, "us-east-1").await).await;
    let bucket = "local-authz2-locked";
    cli_ok(&cloud, &member_admin, &["s3api", "create-bucket", "--bucket", bucket]);
    let lock = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]}]})
    .to_string();
    cli_ok(&cloud, &member_admin, &["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", &lock]);
    cli_refused(
        &cloud,
        &member_admin,
        &["s3api", "get-bucket-policy", "--bucket", bucket],
        "with an explicit deny in a resource-based policy",
    );
    cli_refused(&cloud, &root, &["s3api", "delete-bucket-policy", "--bucket", bucket], "service control policy");
    cli_refused(
        &cloud,
        &session,
        &["s3api", "list-objects-v2", "--bucket", bucket],
        "with an explicit deny in a session policy",
    );
    cli_ok(&cloud, &session, &["s3api", "delete-bucket-policy", "--bucket", bucket]);
    cli_ok(&cloud, &member_admin, &["s3api", "get-bucket-location", "--bucket", bucket]);
}

/// Every signed request's signature is verified against its access key's secret, as AWS verifies it
/// (localcloud/assure_local/sigv4.py; test_authz_signatures.py's `Signatures` breaks each part): a wrong secret is refused in
/// each protocol's shape (query and S3: SignatureDoesNotMatch; JSON: InvalidSignatureException), and
/// a presigned URL serves its object until its signature is changed or it expires ("Request has
/// expired", https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html).
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_is_refused_and_a_presigned_url_is_checked() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let wrong =
        Credentials::new(admin.access_key_id(), "not-the-secret", admin.session_token().map(str::to_owned), None, "t");
    cli_ok(&cloud, &admin, &["sts", "get-caller-identity"]);
    cli_refused(&cloud, &wrong, &["sts", "get-caller-identity"], "(SignatureDoesNotMatch)");
    cli_refused(&cloud, &wrong, &["iam", "list-roles"], "(SignatureDoesNotMatch)");
    cli_refused(&cloud, &wrong, &["s3api", "list-buckets"], "(SignatureDoesNotMatch)");
    cli_refused(&cloud, &wrong, &["logs", "describe-log-groups"], "(InvalidSignatureException)");

    // An object whose key needs encoding, fetched with no credentials but the URL's.
    let bucket = "local-authz2-presigned";
    cli_ok(&cloud, &admin, &["s3api", "create-bucket", "--bucket", bucket]);
    let file = cloud.dir.path().join("presigned object.txt");
    std::fs::write(&file, "presigned body").unwrap();
    let object = format!("s3://{bucket}/dir one/presigned object+1=2.txt");
    cli_ok(&cloud, &admin, &["s3", "cp", file.to_str().unwrap(), &object]);
    let url = cli_ok(&cloud, &admin, &["s3", "presign", &object, "--expires-in", "300"]);
    let path = url.strip_prefix(cloud.endpoint.as_str()).unwrap_or_else(|| panic!("{url}")).to_owned();
    assert_eq!(assure_e2e::http(&cloud.endpoint, "GET", &path, ""), "presigned body");
    // `Signature=` ends both forms' parameter (X-Amz-Signature, or Signature with AWSAccessKeyId).
    let forged = path.replacen("Signature=", "Signature=0", 1);
    let answer = assure_e2e::http(&cloud.endpoint, "GET", &forged, "");
    assert!(answer.contains("<Code>SignatureDoesNotMatch</Code>"), "{answer}");
    let other = path.replacen("presigned%20object", "other%20object", 1);
    let answer = assure_e2e::http(&cloud.endpoint, "GET", &other, "");
    assert!(answer.contains("<Code>SignatureDoesNotMatch</Code>"), "a URL signs one object: {answer}");
    let url = cli_ok(&cloud, &admin, &["s3", "presign", &object, "--expires-in", "1"]);
    let path = url.strip_prefix(cloud.endpoint.as_str()).unwrap_or_else(|| panic!("{url}")).to_owned();
    assure_e2e::eventually(std::time::Duration::from_secs(10), "the URL expired", || {
        let answer = assure_e2e::http(&cloud.endpoint, "GET", &path, "");
        match answer.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>") {
            true => Ok(()),
            false => Err(answer),
        }
    });
}
