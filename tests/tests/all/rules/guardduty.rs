//! GuardDuty's own checks.

use assure_e2e::LocalCloud;

use super::*;

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
