//! AWS Config's own checks.

use assure_e2e::LocalCloud;

use super::*;

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
    assure_e2e::eventually(std::time::Duration::from_secs(10), "the delegated administrator may", || {
        match aws_cli(&cloud, &admin, &put) {
            (0, _, _) => Ok(()),
            (_, _, err) if err.contains("(OrganizationAccessDeniedException)") => Err(err),
            (_, _, err) => panic!("refused for another reason: {err}"),
        }
    });
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
