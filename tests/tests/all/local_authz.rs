//! The local cloud authorizes what assure's service control policies reach as AWS does: the context
//! keys services send (`cloudwatch:namespace`, `kms:ResourceAliases`), the resources they authorize
//! on (alias operations' keys, a subscription's topic, GuardDuty filters, log streams, stacks,
//! StartSession's target and document, AWS's own documents), and the requests refused before any
//! policy is read (unsigned, a session's key without its token, moto's internal key, a bucket of
//! another owner). The AWS CLI is the independent client; localcloud/tests/test_iam.py and test_authz*.py
//! test the same rules one by one.

use assure_e2e::LocalCloud;

use super::iam::{aws_cli, cli_ok, cli_refused, credentials};

type Credentials = aws_sdk_sts::config::Credentials;

/// The request side's own unit tests (localcloud/tests/, pytest, moto in the test's process, no
/// server), each breaking one rule: authorization (test_authz*.py), the deliveries' (test_deliver*.py:
/// CloudTrail, Config, GuardDuty, alarms and SNS, Access Analyzer through EventBridge and Firehose,
/// session logs), CloudFormation's (test_stacks*.py: stacks made as their caller, refusals,
/// rollbacks, Lambda's mapping checks) and the package's own shape (no import cycle). test_iam.py
/// runs in iam.rs.
#[test]
fn the_request_side_unit_tests_pass() {
    assure_e2e::localcloud_pytest(&["--ignore=tests/test_iam.py", "tests"]);
}

/// `args` as `creds` must be refused by a service control policy, naming `action`.
fn refused_by_scp(cloud: &LocalCloud, creds: &Credentials, args: &[&str], action: &str) {
    let (code, out, err) = aws_cli(cloud, creds, args);
    assert_ne!(code, 0, "{} was allowed: {out}", args.join(" "));
    assert!(err.contains(action) && err.contains("service control policy"), "{}: {err}", args.join(" "));
}

/// Policies shaped like assure's (each named by the Service Authorization Reference page its keys
/// and resources come from), attached to an account of the organization: its administrator is
/// refused exactly what they name, and allowed the same actions elsewhere.
#[tokio::test(flavor = "multi_thread")]
async fn scps_reach_the_keys_and_resources_services_authorize_with() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let target = ids["external"][0].as_str().unwrap();
    let management = credentials(&cloud.sdk_config().await).await;
    let admin = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &admin, args);
    let refused = |args: &[&str], action: &str| refused_by_scp(&cloud, &admin, args, action);

    // What the policies protect, made before they are attached.
    let key = ok(&["kms", "create-key", "--query", "KeyMetadata.KeyId", "--output", "text"]);
    ok(&["kms", "create-alias", "--alias-name", "alias/guarded", "--target-key-id", &key]);
    let other_key = ok(&["kms", "create-key", "--query", "KeyMetadata.KeyId", "--output", "text"]);
    let topic = ok(&["sns", "create-topic", "--name", "guarded", "--query", "TopicArn", "--output", "text"]);
    let other_topic = ok(&["sns", "create-topic", "--name", "open", "--query", "TopicArn", "--output", "text"]);
    ok(&["sqs", "create-queue", "--queue-name", "inbox"]);
    let queue = format!("arn:aws:sqs:us-east-1:{target}:inbox");
    let subscribe = |t: &str| {
        ok(&[
            "sns",
            "subscribe",
            "--topic-arn",
            t,
            "--protocol",
            "sqs",
            "--notification-endpoint",
            &queue,
            "--query",
            "SubscriptionArn",
            "--output",
            "text",
        ])
    };
    let (subscription, other_subscription) = (subscribe(&topic), subscribe(&other_topic));
    assert!(subscription.starts_with(&format!("{topic}:")), "{subscription}");
    ok(&["logs", "create-log-group", "--log-group-name", "guarded/trail"]);
    ok(&["logs", "create-log-stream", "--log-group-name", "guarded/trail", "--log-stream-name", "s1"]);
    ok(&["logs", "create-log-group", "--log-group-name", "open"]);
    let detector = ok(&["guardduty", "list-detectors", "--query", "DetectorIds[0]", "--output", "text"]);
    let template = r#"{"Resources":{"Topic":{"Type":"AWS::SNS::Topic"}}}"#;
    ok(&["cloudformation", "create-stack", "--stack-name", "StackSet-guarded-old", "--template-body", template]);

    // list_amazoncloudwatch (cloudwatch:namespace), list_awskeymanagementservice
    // (kms:ResourceAliases; alias operations on the alias), list_amazonsns (a subscription's writes
    // on its topic), list_amazonguardduty (detector/ID/filter/NAME), list_amazoncloudwatchlogs (the
    // group; a stream is log-group:NAME:log-stream:STREAM).
    let context_keys = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Metrics", "Effect": "Deny", "Resource": "*", "Action": "cloudwatch:PutMetricData",
         "Condition": {"StringLike": {"cloudwatch:namespace": "Assure/*"}}},
        {"Sid": "Key", "Effect": "Deny", "Resource": "*",
         "Action": ["kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKeyRotation"],
         "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/guarded"}}},
        {"Sid": "KeyAlias", "Effect": "Deny", "Resource": "arn:aws:kms:*:*:alias/guarded",
         "Action": ["kms:DeleteAlias", "kms:UpdateAlias"]},
        {"Sid": "Topic", "Effect": "Deny", "Resource": "arn:aws:sns:*:*:guarded",
         "Action": ["sns:Unsubscribe", "sns:SetSubscriptionAttributes"]},
        {"Sid": "Filters", "Effect": "Deny", "Resource": "arn:aws:guardduty:*:*:detector/*/filter/suppress*",
         "Action": ["guardduty:CreateFilter", "guardduty:UpdateFilter"]},
        {"Sid": "Logs", "Effect": "Deny", "Resource": "arn:aws:logs:*:*:log-group:guarded/trail*",
         "Action": ["logs:PutMetricFilter", "logs:DeleteLogStream", "logs:AssociateKmsKey",
                    "logs:PutSubscriptionFilter"]}
    ]})
    .to_string();
    // list_awscloudformation (stack/NAME/ID, a new stack's stack/NAME/*), list_awssystemsmanager
    // (StartSession on its target and document; AWS's documents have no account in their ARN).
    let resources = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Stacks", "Effect": "Deny", "Resource": "arn:aws:cloudformation:*:*:stack/StackSet-guarded-*",
         "Action": ["cloudformation:CreateStack", "cloudformation:DeleteStack",
                    "cloudformation:UpdateTerminationProtection", "cloudformation:CreateChangeSet",
                    "cloudformation:SetStackPolicy"]},
        {"Sid": "LoggedSessionsOnly", "Effect": "Deny", "Action": "ssm:StartSession",
         "NotResource": ["arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell",
                         "arn:aws:ssm:*::document/AWS-StartPortForwardingSession*",
                         "arn:aws:ec2:*:*:instance/*", "arn:aws:ssm:*:*:managed-instance/*"]},
        {"Sid": "AwsDocuments", "Effect": "Deny", "Resource": "arn:aws:ssm:*::document/AWS-StartSSHSession",
         "Action": "ssm:DescribeDocument"}
    ]})
    .to_string();
    for (name, content) in [("local-authz-context-keys", &context_keys), ("local-authz-resources", &resources)] {
        let id = cli_ok(
            &cloud,
            &management,
            &[
                "organizations",
                "create-policy",
                "--name",
                name,
                "--type",
                "SERVICE_CONTROL_POLICY",
                "--description",
                "local authz",
                "--content",
                content,
                "--query",
                "Policy.PolicySummary.Id",
                "--output",
                "text",
            ],
        );
        cli_ok(&cloud, &management, &["organizations", "attach-policy", "--policy-id", &id, "--target-id", target]);
    }

    // cloudwatch:namespace.
    refused(
        &["cloudwatch", "put-metric-data", "--namespace", "Assure/CISBenchmark", "--metric-name", "m", "--value", "-1"],
        "cloudwatch:PutMetricData",
    );
    ok(&["cloudwatch", "put-metric-data", "--namespace", "Other", "--metric-name", "m", "--value", "-1"]);

    // kms:ResourceAliases, however the request names the key; alias operations on the alias.
    refused(&["kms", "disable-key", "--key-id", &key], "kms:DisableKey");
    refused(&["kms", "disable-key", "--key-id", "alias/guarded"], "kms:DisableKey");
    refused(
        &["kms", "schedule-key-deletion", "--key-id", &key, "--pending-window-in-days", "7"],
        "kms:ScheduleKeyDeletion",
    );
    refused(&["kms", "delete-alias", "--alias-name", "alias/guarded"], "kms:DeleteAlias");
    refused(
        &["kms", "update-alias", "--alias-name", "alias/guarded", "--target-key-id", &other_key],
        "kms:UpdateAlias",
    );
    ok(&["kms", "disable-key", "--key-id", &other_key]);
    ok(&["kms", "create-alias", "--alias-name", "alias/other", "--target-key-id", &other_key]);

    // A subscription's writes, on its topic.
    refused(&["sns", "unsubscribe", "--subscription-arn", &subscription], "sns:Unsubscribe");
    refused(
        &[
            "sns",
            "set-subscription-attributes",
            "--subscription-arn",
            &subscription,
            "--attribute-name",
            "RawMessageDelivery",
            "--attribute-value",
            "true",
        ],
        "sns:SetSubscriptionAttributes",
    );
    ok(&["sns", "unsubscribe", "--subscription-arn", &other_subscription]);

    // GuardDuty filters.
    let filter = |name: &str| {
        [
            "guardduty",
            "create-filter",
            "--detector-id",
            detector.as_str(),
            "--name",
            name,
            "--action",
            "ARCHIVE",
            "--finding-criteria",
            r#"{"Criterion":{"severity":{"Gte":0}}}"#,
        ]
        .map(str::to_owned)
    };
    refused(&filter("suppress-all").each_ref().map(String::as_str), "guardduty:CreateFilter");
    ok(&filter("kept").each_ref().map(String::as_str));

    // The trail's log group and its streams.
    let metric_filter = |group: &str| {
        [
            "logs",
            "put-metric-filter",
            "--log-group-name",
            group,
            "--filter-name",
            "f",
            "--filter-pattern",
            "x",
            "--metric-transformations",
            "metricName=m,metricNamespace=Decoy,metricValue=1",
        ]
        .map(str::to_owned)
    };
    refused(&metric_filter("guarded/trail").each_ref().map(String::as_str), "logs:PutMetricFilter");
    ok(&metric_filter("open").each_ref().map(String::as_str));
    refused(
        &["logs", "delete-log-stream", "--log-group-name", "guarded/trail", "--log-stream-name", "s1"],
        "logs:DeleteLogStream",
    );
    let own_key = format!("arn:aws:kms:us-east-1:{target}:key/{other_key}");
    refused(
        &["logs", "associate-kms-key", "--log-group-name", "guarded/trail", "--kms-key-id", &own_key],
        "logs:AssociateKmsKey",
    );

    // Stacks: an existing one by its ID, a new one as stack/NAME/*.
    refused(
        &["cloudformation", "create-stack", "--stack-name", "StackSet-guarded-new", "--template-body", template],
        "cloudformation:CreateStack",
    );
    refused(
        &[
            "cloudformation",
            "update-termination-protection",
            "--stack-name",
            "StackSet-guarded-old",
            "--enable-termination-protection",
        ],
        "cloudformation:UpdateTerminationProtection",
    );
    refused(&["cloudformation", "delete-stack", "--stack-name", "StackSet-guarded-old"], "cloudformation:DeleteStack");
    ok(&["cloudformation", "create-stack", "--stack-name", "mine", "--template-body", template]);

    // StartSession: its document (the default one when none is named) and its target. Authorized,
    // no target is connected here.
    let session = |document: Option<&str>| {
        let mut args = vec!["ssm", "start-session", "--target", "i-0123456789abcdef0"];
        if let Some(d) = document {
            args.extend(["--document-name", d]);
        }
        aws_cli(&cloud, &admin, &args)
    };
    for document in [Some("AWS-StartSSHSession"), Some("NoLog")] {
        let (code, _, err) = session(document);
        assert!(
            code != 0 && err.contains("ssm:StartSession") && err.contains("service control policy"),
            "{document:?}: {err}"
        );
    }
    for document in [None, Some("SSM-SessionManagerRunShell"), Some("AWS-StartPortForwardingSession")] {
        let (code, _, err) = session(document);
        assert!(code != 0 && err.contains("(TargetNotConnected)"), "{document:?}: {err}");
    }
    // AWS's own documents, by their account-less ARN.
    refused(&["ssm", "describe-document", "--name", "AWS-StartSSHSession"], "ssm:DescribeDocument");
}

/// What AWS refuses before it reads a policy: an unsigned request to an API that wants a signature
/// (S3 serves the anonymous user what a bucket policy grants everyone; STS's identity providers
/// need the role's trust), a session's key without its token, a key the cloud never issued (moto's
/// own "ak"), and a bucket operation whose expected owner is not the bucket's.
#[tokio::test(flavor = "multi_thread")]
async fn unsigned_requests_tokenless_sessions_and_foreign_bucket_owners_are_refused() {
    let cloud = LocalCloud::start();
    let management = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &management, args);
    let refused = |args: &[&str], needle: &str| cli_refused(&cloud, &management, args, needle);
    let account = ok(&["sts", "get-caller-identity", "--query", "Account", "--output", "text"]);

    // Unsigned: MissingAuthenticationToken in each protocol's shape; the local cloud's own API stays open.
    refused(&["sts", "get-caller-identity", "--no-sign-request"], "(MissingAuthenticationToken)");
    refused(&["kms", "list-keys", "--no-sign-request"], "(MissingAuthenticationTokenException)");
    refused(&["guardduty", "list-detectors", "--no-sign-request"], "(MissingAuthenticationTokenException)");
    assert!(cloud.limit_counters().is_object());

    // S3's anonymous user: only what a bucket policy grants "*", and not past Block Public Access.
    let bucket = "open-to-all";
    ok(&["s3api", "create-bucket", "--bucket", bucket]);
    let body = cloud.dir.path().join("object.txt");
    std::fs::write(&body, "hello").unwrap();
    ok(&["s3api", "put-object", "--bucket", bucket, "--key", "k", "--body", body.to_str().unwrap()]);
    let read = cloud.dir.path().join("read.txt");
    let get = ["s3api", "get-object", "--bucket", bucket, "--key", "k", read.to_str().unwrap(), "--no-sign-request"];
    refused(&get, "(AccessDenied)");
    refused(&["s3api", "list-buckets", "--no-sign-request"], "(AccessDenied)");
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]})
    .to_string();
    ok(&["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", &policy]);
    ok(&get);
    assert_eq!(std::fs::read_to_string(&read).unwrap(), "hello");
    refused(
        &[
            "s3api",
            "put-object",
            "--bucket",
            bucket,
            "--key",
            "k2",
            "--body",
            body.to_str().unwrap(),
            "--no-sign-request",
        ],
        "(AccessDenied)",
    );
    ok(&[
        "s3api",
        "put-public-access-block",
        "--bucket",
        bucket,
        "--public-access-block-configuration",
        "RestrictPublicBuckets=true",
    ]);
    refused(&get, "(AccessDenied)");

    // The bucket owner condition.
    let signed_get = |owner: &str| {
        [
            "s3api",
            "get-object",
            "--bucket",
            bucket,
            "--key",
            "k",
            read.to_str().unwrap(),
            "--expected-bucket-owner",
            owner,
        ]
        .map(str::to_owned)
    };
    ok(&signed_get(&account).each_ref().map(String::as_str));
    refused(&signed_get("111111111111").each_ref().map(String::as_str), "(AccessDenied)");
    refused(
        &["s3api", "list-objects-v2", "--bucket", bucket, "--expected-bucket-owner", "111111111111"],
        "(AccessDenied)",
    );

    // A session's key is nothing without its token; moto's internal key is a key like any other.
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    ok(&["iam", "create-role", "--role-name", "tokened", "--assume-role-policy-document", &trust]);
    ok(&["iam", "put-role-policy", "--role-name", "tokened", "--policy-name", "all", "--policy-document", all]);
    let role = format!("arn:aws:iam::{account}:role/tokened");
    let session: serde_json::Value = serde_json::from_str(&ok(&[
        "sts",
        "assume-role",
        "--role-arn",
        &role,
        "--role-session-name",
        "tokened",
        "--query",
        "Credentials",
        "--output",
        "json",
    ]))
    .unwrap();
    let part = |k: &str| session[k].as_str().unwrap().to_owned();
    let with_token =
        Credentials::new(part("AccessKeyId"), part("SecretAccessKey"), Some(part("SessionToken")), None, "t");
    let without = Credentials::new(part("AccessKeyId"), part("SecretAccessKey"), None, None, "t");
    cli_ok(&cloud, &with_token, &["sqs", "list-queues"]);
    cli_refused(&cloud, &without, &["sqs", "list-queues"], "(InvalidClientTokenId)");
    cli_refused(
        &cloud,
        &without,
        &["sts", "get-caller-identity"],
        "The security token included in the request is invalid",
    );
    cli_refused(&cloud, &without, &["s3api", "list-buckets"], "(InvalidAccessKeyId)");
    let moto = Credentials::new("ak", "sk", None, None, "t");
    cli_refused(&cloud, &moto, &["sqs", "list-queues"], "(InvalidClientTokenId)");

    // AssumeRoleWithWebIdentity is unsigned: the token's issuer must be a provider registered in
    // the role's account and the role's trust must admit it, with the token's claims. (Tokens:
    // {"iss":"https://idp.example.com" or "https://other.example.com","aud":"sts.amazonaws.com",
    // "sub":"repo:ok" or "repo:evil"}; the local cloud has no provider to check a signature with.)
    let header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
    let good = "eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsImF1ZCI6InN0cy5hbWF6b25hd3MuY29tIiwic3ViIjoicmVwbzpvayJ9";
    let evil =
        "eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsImF1ZCI6InN0cy5hbWF6b25hd3MuY29tIiwic3ViIjoicmVwbzpldmlsIn0";
    let unknown =
        "eyJpc3MiOiJodHRwczovL290aGVyLmV4YW1wbGUuY29tIiwiYXVkIjoic3RzLmFtYXpvbmF3cy5jb20iLCJzdWIiOiJyZXBvOm9rIn0";
    let thumbprint = "0".repeat(40);
    ok(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        "https://idp.example.com",
        "--client-id-list",
        "sts.amazonaws.com",
        "--thumbprint-list",
        &thumbprint,
    ]);
    let provider = format!("arn:aws:iam::{account}:oidc-provider/idp.example.com");
    let federated = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": provider}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"idp.example.com:sub": "repo:ok"}}}]})
    .to_string();
    ok(&["iam", "create-role", "--role-name", "ci", "--assume-role-policy-document", &federated]);
    let ci = format!("arn:aws:iam::{account}:role/ci");
    let web_identity = |claims: &str| {
        let token = format!("{header}.{claims}.c2lnbmF0dXJl");
        aws_cli(
            &cloud,
            &management,
            &[
                "sts",
                "assume-role-with-web-identity",
                "--role-arn",
                &ci,
                "--role-session-name",
                "ci",
                "--web-identity-token",
                &token,
            ],
        )
    };
    let (code, out, err) = web_identity(good);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("assumed-role/ci/ci"), "{out}");
    let (code, _, err) = web_identity(evil);
    assert!(code != 0 && err.contains("(AccessDenied)") && err.contains("sts:AssumeRoleWithWebIdentity"), "{err}");
    let (code, _, err) = web_identity(unknown);
    assert!(code != 0 && err.contains("(InvalidIdentityToken)"), "an issuer no provider stands for: {err}");
}
