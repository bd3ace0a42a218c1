//! Services act with the caller's permissions; a missing object reads as denied.

use assure_e2e::LocalCloud;

use super::*;

/// An IAM user of the pipeline account with an access key, and its one inline policy.
pub(super) struct User {
    pub(super) iam: aws_sdk_iam::Client,
    pub(super) name: String,
    pub(super) creds: aws_sdk_sts::config::Credentials,
}

/// What a service checks of the caller while it serves a request, each rule broken on its own
/// through the AWS CLI: SQS and S3 encrypting with a customer managed key (kms:GenerateDataKey),
/// CreateBucket with Object Ownership (s3:PutBucketOwnershipControls), CreateKey with tags
/// (kms:TagResource on every key of the account), Organizations' resource ARNs.
#[tokio::test(flavor = "multi_thread")]
async fn services_check_the_permissions_they_use_on_the_callers_behalf() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let (logging, security) = (ids["logging"].as_str().unwrap(), ids["security"].as_str().unwrap());
    let base = cloud.sdk_config().await;
    let admin = credentials(&base).await;
    let user = User::create(&base, "producer").await;
    let producer = user.creds.clone();
    let grant = |statements: serde_json::Value| user.grant(statements);
    let base_grant = serde_json::json!([
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "s3:CreateBucket", "s3:PutObject", "kms:CreateKey"], "Resource": "*"},
        {"Effect": "Allow", "Action": "organizations:DescribeAccount",
         "Resource": format!("arn:aws:organizations::*:account/o-*/{security}")}]);
    grant(base_grant.clone()).await;

    // A customer managed key; a queue and a bucket encrypted with it (by the administrator).
    let (_, out, err) =
        aws_cli(&cloud, &admin, &["kms", "create-key", "--query", "KeyMetadata.Arn", "--output", "text"]);
    let key_arn = out.trim().to_owned();
    assert!(key_arn.starts_with("arn:aws:kms:"), "{err}");
    let (_, out, _) = aws_cli(
        &cloud,
        &admin,
        &[
            "sqs",
            "create-queue",
            "--queue-name",
            "sealed",
            "--attributes",
            &format!("KmsMasterKeyId={key_arn}"),
            "--query",
            "QueueUrl",
            "--output",
            "text",
        ],
    );
    let url = out.trim().to_owned();
    let (code, _, err) = aws_cli(&cloud, &admin, &["s3api", "create-bucket", "--bucket", "sealed-bucket"]);
    assert_eq!(code, 0, "{err}");
    let enc = format!(
        r#"{{"Rules":[{{"ApplyServerSideEncryptionByDefault":{{"SSEAlgorithm":"aws:kms","KMSMasterKeyID":"{key_arn}"}}}}]}}"#
    );
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &[
            "s3api",
            "put-bucket-encryption",
            "--bucket",
            "sealed-bucket",
            "--server-side-encryption-configuration",
            &enc,
        ],
    );
    assert_eq!(code, 0, "{err}");

    let refused = |(code, _, err): (i32, String, String), action: &str| {
        assert_ne!(code, 0, "allowed without {action}");
        assert!(err.contains(action), "the refusal names {action}: {err}");
    };
    let send = ["sqs", "send-message", "--queue-url", &url, "--message-body", "hi"];
    refused(aws_cli(&cloud, &producer, &send), "kms:GenerateDataKey");
    let body = std::env::temp_dir().join(format!("assure-body-{}", std::process::id()));
    std::fs::write(&body, "hi").unwrap();
    let put = ["s3api", "put-object", "--bucket", "sealed-bucket", "--key", "a", "--body", body.to_str().unwrap()];
    refused(aws_cli(&cloud, &producer, &put), "kms:GenerateDataKey");
    refused(
        aws_cli(
            &cloud,
            &producer,
            &["s3api", "create-bucket", "--bucket", "owned", "--object-ownership", "BucketOwnerEnforced"],
        ),
        "s3:PutBucketOwnershipControls",
    );
    assert_eq!(aws_cli(&cloud, &producer, &["s3api", "create-bucket", "--bucket", "plain"]).0, 0);
    refused(
        aws_cli(&cloud, &producer, &["kms", "create-key", "--tags", "TagKey=team,TagValue=sec"]),
        "kms:TagResource",
    );
    assert_eq!(aws_cli(&cloud, &producer, &["kms", "create-key"]).0, 0);
    refused(aws_cli(&cloud, &producer, &["organizations", "describe-account", "--account-id", logging]), "account/o-");
    let (code, _, err) = aws_cli(&cloud, &producer, &["organizations", "describe-account", "--account-id", security]);
    assert_eq!(code, 0, "the account the policy names: {err}");

    // Granted on the key (its default policy lets IAM policies of the account decide), both pass.
    let mut with_key = base_grant.clone();
    with_key.as_array_mut().unwrap().push(serde_json::json!(
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key_arn}));
    grant(with_key).await;
    let (code, _, err) = aws_cli(&cloud, &producer, &send);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = aws_cli(&cloud, &producer, &put);
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_file(&body);
}

/// S3 answers a read of a key that does not exist with 403 AccessDenied, not 404 NoSuchKey, unless
/// the caller may also list the bucket
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions"): a step
/// that reads a checkpoint object which may be absent needs `s3:ListBucket`.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_object_reads_as_denied_unless_the_caller_may_list_the_bucket() {
    let cloud = LocalCloud::start();
    let base = cloud.sdk_config().await;
    let admin = credentials(&base).await;
    let user = User::create(&base, "reader").await;
    let reader = user.creds.clone();
    let grant = |statements: serde_json::Value| user.grant(statements);
    assert_eq!(aws_cli(&cloud, &admin, &["s3api", "create-bucket", "--bucket", "notes"]).0, 0);
    let body = std::env::temp_dir().join(format!("assure-note-{}", std::process::id()));
    std::fs::write(&body, "{}").unwrap();
    let put = ["s3api", "put-object", "--bucket", "notes", "--key", "there.json", "--body", body.to_str().unwrap()];
    assert_eq!(aws_cli(&cloud, &admin, &put).0, 0);
    let out = std::env::temp_dir().join(format!("assure-note-out-{}", std::process::id()));
    let get = |key: &str| {
        aws_cli(&cloud, &reader, &["s3api", "get-object", "--bucket", "notes", "--key", key, out.to_str().unwrap()])
    };
    let head = |key: &str| aws_cli(&cloud, &reader, &["s3api", "head-object", "--bucket", "notes", "--key", key]);

    grant(serde_json::json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::notes/*"}])).await;
    let (code, _, err) = get("there.json");
    assert_eq!(code, 0, "an object the reader may read: {err}");
    let (code, _, err) = get("absent.json");
    assert_ne!(code, 0);
    assert!(err.contains("AccessDenied") && !err.contains("NoSuchKey"), "without s3:ListBucket: {err}");
    let (code, _, err) = head("absent.json");
    assert_ne!(code, 0);
    assert!(err.contains("403"), "HeadObject without s3:ListBucket: {err}");

    grant(serde_json::json!([
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::notes/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::notes"}]))
    .await;
    let (code, _, err) = get("absent.json");
    assert_ne!(code, 0);
    assert!(err.contains("NoSuchKey"), "with s3:ListBucket: {err}");
    let (code, _, err) = head("absent.json");
    assert_ne!(code, 0);
    assert!(err.contains("404"), "HeadObject with s3:ListBucket: {err}");
    let _ = std::fs::remove_file(&body);
    let _ = std::fs::remove_file(&out);
}
