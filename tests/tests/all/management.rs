//! The management account keeps no workload (decision 0003): the pipeline runs in the security
//! account, and the management account holds only its bootstrap stack, whose role only the
//! pipeline's roles that need it may assume. Seen with the AWS CLI, not assure's own client.

use assure_e2e::{LocalCloud, MANAGEMENT_ACCOUNT};
use serde_json::Value;

use super::iam::{aws_cli, cli_ok, credentials};

#[tokio::test(flavor = "multi_thread")]
async fn the_management_account_keeps_only_the_bootstrap_stack() {
    let cloud = LocalCloud::start();
    // Seeded and bootstrapped for a pipeline in the security account (the harness runs `assure
    // bootstrap` as the management account, then acts as the security account's administrator).
    let ids = cloud.seed_accounts(1);
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let (security, logging, target) = (s("security"), s("logging"), ids["external"][0].as_str().unwrap().to_owned());
    assert_eq!(cloud.pipeline_account(), security);

    // `bootstrap` takes the management account's credentials and an active member account.
    let (code, _, err) = cloud.run(&["bootstrap", "--pipeline-account", &security]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("runs with the management account's credentials"), "{err}");
    let (code, _, err) = cloud.run_as_management(&["bootstrap", "--pipeline-account", MANAGEMENT_ACCOUNT]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--pipeline-account: 123456789012 is the management account"), "{err}");
    let (code, _, err) = cloud.run_as_management(&["bootstrap", "--pipeline-account", "999999999999"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--pipeline-account: 999999999999 is not an account of organization"), "{err}");
    let (code, out, err) = cloud.run_as_management(&["bootstrap", "--pipeline-account", &security, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["changes"], serde_json::json!([]), "a second bootstrap changes nothing: {again}");

    // `deploy` runs in the security account, never in the management account.
    let (code, _, err) = cloud.run_as_management(&["deploy", "--logging-account", &logging]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is the organization's management account") && err.contains("assure bootstrap"), "{err}");
    let (code, _, err) = cloud.run(&["deploy", "--logging-account", &logging, "--security-account", &target]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("--security-account: {target} is not this account ({security})")), "{err}");
    let (code, _, err) = cloud.run(&["deploy", "--logging-account", &logging, "--regions", "us-east-1"]);
    assert_eq!(code, 0, "{err}");

    // What each account holds, as the AWS CLI sees it.
    let management = credentials(&cloud.sdk_config().await).await;
    let pipeline = credentials(&cloud.pipeline_config().await).await;
    let stacks = |creds| {
        let out = cli_ok(
            &cloud,
            creds,
            &[
                "cloudformation",
                "list-stacks",
                "--query",
                "StackSummaries[?StackStatus!='DELETE_COMPLETE'].StackName",
                "--output",
                "json",
            ],
        );
        let mut names: Vec<String> = serde_json::from_str(&out).unwrap();
        names.sort();
        names
    };
    assert_eq!(stacks(&management), vec!["assure-management"], "the management account's only stack");
    assert!(stacks(&pipeline).contains(&"assure".to_owned()), "{:?}", stacks(&pipeline));
    let functions = |creds| {
        cli_ok(&cloud, creds, &["lambda", "list-functions", "--query", "length(Functions)", "--output", "text"])
    };
    assert_eq!(functions(&management), "0", "no function runs in the management account");
    assert_eq!(functions(&pipeline), assure_contract::StepName::ALL.len().to_string());
    let roles = cli_ok(
        &cloud,
        &management,
        &["iam", "list-roles", "--query", "Roles[?starts_with(RoleName, 'assure')].RoleName", "--output", "text"],
    );
    let mut roles: Vec<&str> = roles.split_whitespace().collect();
    roles.sort();
    assert_eq!(roles, ["assure-forward-membership-events", "assure-management"]);

    // The security account's administrator: refused what only the management account may do,
    // allowed what the delegation policy delegates.
    let (code, _, err) = aws_cli(
        &cloud,
        &pipeline,
        &["organizations", "enable-aws-service-access", "--service-principal", "guardduty.amazonaws.com"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("AccessDeniedException"), "{err}");
    cli_ok(&cloud, &pipeline, &["organizations", "list-policies", "--filter", "SERVICE_CONTROL_POLICY"]);

    // assure-management trusts the step roles that make management-only calls, and no other role
    // of the pipeline.
    let role = format!("arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/assure-management");
    let session_of = |step: assure_contract::StepName| {
        let endpoint = cloud.endpoint.clone();
        let arn = format!("arn:aws:iam::{security}:role/{}", assure_core::pipeline::resources::step_role_name(step));
        async move {
            let c = assure_core::local::event_sources::function_credentials(&endpoint, &arn, &step.function_name())
                .await
                .unwrap();
            aws_sdk_sts::config::Credentials::new(c.access_key_id, c.secret_access_key, c.session_token, None, "t")
        }
    };
    let assume = |creds: &aws_sdk_sts::config::Credentials| {
        aws_cli(&cloud, creds, &["sts", "assume-role", "--role-arn", &role, "--role-session-name", "test"])
    };
    for step in assure_core::pipeline::infra::management_steps() {
        let (code, _, err) = assume(&session_of(step).await);
        assert_eq!(code, 0, "{step:?}: {err}");
    }
    for step in [assure_contract::StepName::Join, assure_contract::StepName::Discover] {
        let (code, _, err) = assume(&session_of(step).await);
        assert_ne!(code, 0, "{step:?} must not reach the management account");
        assert!(err.contains("AccessDenied"), "{err}");
    }

    // After an onboarding, the SCPs bind the security account: assure's roles stay protected
    // there by name, and everywhere else by prefix, while the pipeline stack's own roles remain
    // the stack's to change (`assure deploy` with the account administrators' credentials).
    let (code, out, err) = cloud.run(&["onboard", &target, "--prove-deliveries", "false"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let tag = |creds, role: &str| {
        aws_cli(&cloud, creds, &["iam", "tag-role", "--role-name", role, "--tags", "Key=owner,Value=someone"])
    };
    let (code, _, err) = tag(&pipeline, "assure-step-join");
    assert_eq!(code, 0, "the pipeline's own role, in the pipeline account: {err}");
    let (code, _, err) = tag(&pipeline, "assure-config-aggregator");
    assert_ne!(code, 0, "a baseline role in the security account");
    assert!(err.contains("explicit deny in a service control policy"), "{err}");
    let (code, _, err) = tag(&pipeline, "AssureExecutionRole");
    assert_ne!(code, 0, "the member role in the security account");
    assert!(err.contains("explicit deny in a service control policy"), "{err}");
    let admin = credentials(&cloud.admin_config_as(&target, "us-east-1").await).await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (code, _, err) = aws_cli(
        &cloud,
        &admin,
        &["iam", "create-role", "--role-name", "assure-step-lookalike", "--assume-role-policy-document", trust],
    );
    assert_ne!(code, 0, "a role that looks like the pipeline's, in an onboarded account");
    assert!(err.contains("explicit deny in a service control policy"), "{err}");
    let (code, out, err) = cloud.run(&["verify", &target]);
    assert_eq!(code, 0, "{out}\n{err}");
}
