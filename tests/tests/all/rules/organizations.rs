//! Organizations' and Account Management's own checks.

use assure_e2e::LocalCloud;

use super::*;

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
