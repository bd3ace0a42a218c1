//! CloudTrail's own checks.

use assure_e2e::LocalCloud;

use super::*;

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
    crate::all::iam::cli_once_trusted(&cloud, &management, &org_trail, "(CloudTrailAccessNotEnabledException)");
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
