//! The deployment: seeding, `local up` and `deploy` again, the stack users deploy, the join rule.

use assure_e2e::LocalCloud;
use serde_json::Value;

/// Seeding again after an onboarding (the demo run twice, or `local seed --accounts N` for more
/// accounts, as the demo suggests) adds what is missing and leaves an onboarded account as assure
/// left it: its SCPs refuse any change to its member role, and making it brownfield again would undo
/// the onboarding.
#[tokio::test(flavor = "multi_thread")]
async fn seeding_again_after_an_onboarding_adds_accounts_and_leaves_the_onboarded_one_alone() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let onboarded = ids["external"][0].as_str().unwrap();
    let (code, out, err) = cloud.run(&["onboard", onboarded]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = cloud.run(&["local", "seed"]);
    assert_eq!(code, 0, "a second seed: {err}");
    // Three seeds in all: the foreign administrator's owner signs in a third time (two keys at most).
    let more = cloud.seed_accounts(3);
    let added = more["external"][2].as_str().unwrap();
    assert_eq!(more["external"][0], onboarded);
    let (code, out, err) = cloud.run(&["verify", onboarded]);
    assert_eq!(code, 0, "the onboarded account is as assure left it:\n{out}\n{err}");
    let (code, out, err) = cloud.run(&["plan", added, "--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let retires = plan["changes"].as_array().unwrap().iter().any(|c| c["change"].to_string().contains("legacy-audit"));
    assert!(retires, "the new account is brownfield (its own trail would be retired): {plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn local_up_and_deploy_are_idempotent() {
    let cloud = LocalCloud::start();
    let (code, again, err) = cloud.run(&["local", "up", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["AWS_ENDPOINT_URL"], cloud.endpoint.as_str(), "the same cloud, not a second one");

    let ids = cloud.seed_and_deploy("us-east-1");
    let deploy = |regions: &str| {
        let (code, out, err) = cloud.run(&[
            "deploy",
            "--logging-account",
            ids["logging"].as_str().unwrap(),
            "--security-account",
            ids["security"].as_str().unwrap(),
            "--regions",
            regions,
            "--output",
            "json",
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let d = deploy("us-east-1");
    assert_eq!(d["changes"], serde_json::json!([]), "a second deploy changes nothing");
    the_pipeline_is_the_stack_users_deploy(&cloud, &ids, &d).await;
    assert_eq!(d["queues"].as_object().unwrap().len(), assure_contract::StepName::ALL.len());
    // A changed setting updates in place.
    let d = deploy("us-east-1,eu-west-1");
    assert_eq!(d["changes"], serde_json::json!(["wrote deployment.json"]));

    // Onboarding before deploy in another cloud names the fix.
    let fresh = LocalCloud::start();
    let (code, _, err) = fresh.run(&["onboard", "123456789013"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("run `assure deploy` first"), "{err}");
}

/// What `assure deploy` made, as the AWS CLI sees it: CloudFormation's stack of the SAM template
/// users deploy, whose resources are every function, queue and event source mapping the worker
/// plays Lambda for; the member role in every account but the management account through the
/// service-managed StackSet; and CloudFormation's own refusal of the template without the
/// transform's capability.
pub(super) async fn the_pipeline_is_the_stack_users_deploy(cloud: &LocalCloud, ids: &Value, deployment: &Value) {
    use crate::all::iam::{aws_cli, cli_ok, credentials};
    // The pipeline's stack is the pipeline account's; the member role's StackSet the management
    // account's.
    let admin = credentials(&cloud.pipeline_config().await).await;
    let management = credentials(&cloud.sdk_config().await).await;
    let json = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&cli_ok(cloud, &admin, &all)).unwrap()
    };
    let stack = json(&["cloudformation", "describe-stacks", "--stack-name", "assure"]);
    assert_eq!(stack["Stacks"][0]["StackStatus"], "CREATE_COMPLETE", "{stack}");
    assert_eq!(stack["Stacks"][0]["StackId"], deployment["stackId"]);
    let resources = json(&["cloudformation", "list-stack-resources", "--stack-name", "assure"]);
    let resources = resources["StackResourceSummaries"].as_array().unwrap();
    let count = |kind: &str| resources.iter().filter(|r| r["ResourceType"] == kind).count();
    let steps = assure_contract::StepName::ALL.len();
    assert_eq!(count("AWS::Lambda::Function"), steps);
    assert_eq!(
        count("AWS::Lambda::EventSourceMapping"),
        2 * steps,
        "each function reads its queue and its dead letters"
    );
    assert_eq!(count("AWS::SQS::Queue"), 2 * steps);
    assert_eq!(
        count("AWS::StepFunctions::StateMachine"),
        3,
        "onboarding, bulk and the fleet's watch (join only with AutoOnboard)"
    );
    assert!(resources.iter().all(|r| r["ResourceStatus"] == "CREATE_COMPLETE"), "{resources:?}");
    // Lambda's view: the stack's functions, one package, fed as the template says.
    let functions = json(&["lambda", "list-functions"]);
    let functions = functions["Functions"].as_array().unwrap();
    assert_eq!(functions.len(), steps, "{functions:?}");
    let packages: std::collections::BTreeSet<&str> =
        functions.iter().map(|f| f["CodeSha256"].as_str().unwrap()).collect();
    assert_eq!(packages.len(), 1, "every function runs the one package: {packages:?}");
    assert!(functions.iter().all(|f| f["Timeout"] == 900 && f["Environment"]["Variables"]["ASSURE_STEP"].is_string()));
    let mappings = json(&["lambda", "list-event-source-mappings"]);
    let mappings = mappings["EventSourceMappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 2 * steps);
    for m in mappings {
        assert_eq!(m["BatchSize"], 1, "{m}");
        assert_eq!(m["FunctionResponseTypes"], serde_json::json!(["ReportBatchItemFailures"]), "{m}");
        assert!(m["ScalingConfig"]["MaximumConcurrency"].as_i64().unwrap() >= 2, "{m}");
    }
    // The member role: a StackSet instance in every account but the management account.
    let list = ["cloudformation", "list-stack-instances", "--stack-set-name", "assure-member-role", "--output", "json"];
    let instances: Value = serde_json::from_str(&cli_ok(cloud, &management, &list)).unwrap();
    let accounts: std::collections::BTreeSet<&str> = instances["Summaries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["Status"] == "CURRENT")
        .map(|i| i["Account"].as_str().unwrap())
        .collect();
    for key in ["logging", "security"] {
        assert!(accounts.contains(ids[key].as_str().unwrap()), "{key}: {instances}");
    }
    for external in ids["external"].as_array().unwrap() {
        assert!(accounts.contains(external.as_str().unwrap()), "{external}: {instances}");
    }
    assert!(
        !accounts.contains(ids["management"].as_str().unwrap()),
        "StackSets never deploys to the management account"
    );
    // CloudFormation refuses the SAM template without CAPABILITY_AUTO_EXPAND, as on AWS.
    let bucket = &format!("assure-artifacts-{}-us-east-1", cloud.pipeline_account());
    let objects = json(&["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "templates/"]);
    let key = objects["Contents"][0]["Key"].as_str().unwrap();
    let url = format!("https://{bucket}.s3.us-east-1.amazonaws.com/{key}");
    let (code, _, err) = aws_cli(
        cloud,
        &admin,
        &[
            "cloudformation",
            "create-stack",
            "--stack-name",
            "second",
            "--template-url",
            &url,
            "--capabilities",
            "CAPABILITY_NAMED_IAM",
            "--parameters",
            &format!("ParameterKey=ManagementAccount,ParameterValue={}", ids["management"].as_str().unwrap()),
            &format!("ParameterKey=LoggingAccount,ParameterValue={}", ids["logging"].as_str().unwrap()),
            &format!("ParameterKey=SecurityAccount,ParameterValue={}", ids["security"].as_str().unwrap()),
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("InsufficientCapabilitiesException") && err.contains("CAPABILITY_AUTO_EXPAND"), "{err}");
}

/// A run the CLI does not start (the join step's, with `AutoOnboard`) is checked by its preflight
/// task: started with exactly the input the join step gives it (the rule's run settings, with the
/// account and a run id), it passes the same checks the CLI makes and onboards the account; with
/// another account as IAM Access Analyzer's delegated administrator, its preflight task refuses it
/// before any change.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_started_by_the_join_rule_is_checked_by_its_preflight_task() {
    use crate::all::iam::{cli_ok, credentials, execution_ended};
    let cloud = LocalCloud::start();
    let ids = cloud.seed_and_deploy("us-east-1");
    let (target, logging, security) =
        (ids["external"][0].as_str().unwrap(), ids["logging"].as_str().unwrap(), ids["security"].as_str().unwrap());
    let admin = credentials(&cloud.sdk_config().await).await;
    let states_admin = credentials(&cloud.pipeline_config().await).await;
    // What CloudFormation and EventBridge make of the rule's input, and the join step of that for
    // the account.
    let input = |event: &str, regions: &str| {
        let delivered = crate::all::join::join_input(regions, logging, security, event, "2026-12-07T10:00:00Z", "{}");
        let mut join: serde_json::Value = serde_json::from_str(&delivered).expect("the rule's input is JSON");
        let mut run = join["run"].take();
        run["runId"] = format!("joined-{event}").into();
        run["account"] = target.into();
        serde_json::json!({"run": run}).to_string()
    };
    let machine = &format!("arn:aws:states:us-east-1:{}:stateMachine:assure-onboarding", cloud.pipeline_account());
    let run_in = |event: &str, regions: &str| {
        let from = cloud.decisions().len();
        let arn = cli_ok(
            &cloud,
            &states_admin,
            &[
                "stepfunctions",
                "start-execution",
                "--state-machine-arn",
                machine,
                "--name",
                &format!("joined-{event}"),
                "--input",
                &input(event, regions),
                "--query",
                "executionArn",
                "--output",
                "text",
            ],
        );
        let status = execution_ended(&cloud, &states_admin, &arn, std::time::Duration::from_secs(180));
        (arn, status, from)
    };
    let run = |event: &str| run_in(event, r#"["us-east-1"]"#);

    // Another account is Access Analyzer's delegated administrator: the preflight task refuses.
    let aa = "access-analyzer.amazonaws.com";
    cli_ok(&cloud, &admin, &["organizations", "enable-aws-service-access", "--service-principal", aa]);
    let admin_args = ["--account-id", logging, "--service-principal", aa];
    cli_ok(&cloud, &admin, &[&["organizations", "register-delegated-administrator"][..], &admin_args].concat());
    let (arn, status, from) = run("refused");
    assert_eq!(status, "FAILED", "{arn}");
    let history = cli_ok(&cloud, &states_admin, &["stepfunctions", "get-execution-history", "--execution-arn", &arn]);
    assert!(
        history.contains("Assure.Conflict") && history.contains("IAM Access Analyzer delegated administrator"),
        "the preflight task's refusal: {history}"
    );
    let changed = cloud.mutating_decisions_since(from);
    assert!(changed.is_empty(), "a refused run changed something: {changed:?}");
    cli_ok(&cloud, &admin, &[&["organizations", "deregister-delegated-administrator"][..], &admin_args].concat());

    // Another account is GuardDuty's delegated administrator in a region of the run: Organizations
    // knows it, and the preflight task asks GuardDuty where, then refuses.
    let gd_admin = ["--admin-account-id", logging, "--region", "us-east-1"];
    cli_ok(&cloud, &admin, &[&["guardduty", "enable-organization-admin-account"][..], &gd_admin].concat());
    let (arn, status, from) = run("refused-guardduty");
    assert_eq!(status, "FAILED", "{arn}");
    let history = cli_ok(&cloud, &states_admin, &["stepfunctions", "get-execution-history", "--execution-arn", &arn]);
    assert!(
        history.contains("Assure.Conflict") && history.contains("delegated administrator in us-east-1"),
        "the preflight task's refusal: {history}"
    );
    let asked: std::collections::BTreeSet<String> = cloud.decisions()[from..]
        .iter()
        .filter(|d| {
            d["principal"]
                .as_str()
                .is_some_and(|p| p.contains("assure-step-preflight") || p.contains("assure-management"))
        })
        .filter_map(|d| d["action"].as_str().map(str::to_owned))
        .collect();
    // Asked as the management account's role, which the preflight step's role assumes.
    assert!(asked.contains("guardduty:ListOrganizationAdminAccounts"), "{asked:?}");
    assert!(cloud.mutating_decisions_since(from).is_empty(), "a refused run changed something");
    cli_ok(&cloud, &admin, &[&["guardduty", "disable-organization-admin-account"][..], &gd_admin].concat());

    // An opt-in region of the run the account has enabled and the security account has not
    // (opt-in regions start disabled): the preflight task reads every account's regions (the
    // management account's with its own role) and refuses.
    let member = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    cli_ok(&cloud, &member, &["account", "enable-region", "--region-name", "eu-south-1"]);
    let (arn, status, from) = run_in("refused-region", r#"["us-east-1", "eu-south-1"]"#);
    assert_eq!(status, "FAILED", "{arn}");
    let history = cli_ok(&cloud, &states_admin, &["stepfunctions", "get-execution-history", "--execution-arn", &arn]);
    assert!(
        history.contains("Assure.InvalidInput")
            && history.contains(&format!("eu-south-1 is not enabled in account {security}")),
        "the preflight task's refusal: {history}"
    );
    assert!(cloud.mutating_decisions_since(from).is_empty(), "a refused run changed something");

    // Nothing refuses it now: it onboards, its preflight task having asked what the CLI asks.
    let (arn, status, from) = run("accepted");
    assert_eq!(status, "SUCCEEDED", "{arn}");
    // Its own role, and the management account's for what only that account answers.
    let asked: std::collections::BTreeSet<String> = cloud.decisions()[from..]
        .iter()
        .filter(|d| {
            d["principal"]
                .as_str()
                .is_some_and(|p| p.contains("assure-step-preflight") || p.contains("assure-management"))
        })
        .filter_map(|d| d["action"].as_str().map(str::to_owned))
        .collect();
    for action in [
        "organizations:DescribeOrganization",
        "organizations:DescribeAccount",
        "organizations:ListRoots",
        "organizations:ListDelegatedAdministrators",
    ] {
        assert!(asked.contains(action), "the preflight task did not ask {action}: {asked:?}");
    }
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 0, "{out}\n{err}");
}
