//! AutoOnboard end to end: accounts join the organization (one created, one invited), the local
//! cloud sends the management account's EventBridge the events AWS sends, the join state machine
//! waits for the StackSet's member role and starts each account's run, named by the account and the
//! second it joined. Organizations is driven with the AWS CLI, as an operator would.

use std::time::Duration;

use assure_e2e::{http, LocalCloud};
use serde_json::Value;

use super::iam::{cli_ok, credentials, execution_ended};

/// The keys of the owner of `account`, an account outside any organization.
fn owner(cloud: &LocalCloud, account: &str) -> aws_sdk_sts::config::Credentials {
    let keys: Value = serde_json::from_str(&http(
        &cloud.endpoint,
        "POST",
        "/assure-api/account-owner",
        &format!(r#"{{"account": "{account}"}}"#),
    ))
    .expect("account-owner answers JSON");
    aws_sdk_sts::config::Credentials::new(
        keys["AccessKeyId"].as_str().expect("a key"),
        keys["SecretAccessKey"].as_str().expect("a secret"),
        None,
        None,
        "owner",
    )
}

/// What `OnboardOnJoin` starts the join state machine with, as CloudFormation and EventBridge fill
/// its input template: the stack's settings (the pipeline in the security account, the management
/// account 123456789012, us-east-1, the member role's default name, `regions`), and the event's
/// `id`, `time` and `detail`.
pub(super) fn join_input(regions: &str, logging: &str, security: &str, id: &str, time: &str, detail: &str) -> String {
    let template = assure_core::pipeline::infra::pipeline_template();
    template["Resources"]["OnboardOnJoin"]["Properties"]["Targets"][0]["InputTransformer"]["InputTemplate"]["Fn::Sub"]
        .as_str()
        .expect("the rule's input template")
        .replace("${RegionsJson}", regions)
        .replace("${AWS::Region}", "us-east-1")
        .replace("${AWS::AccountId}", security)
        .replace("${ManagementAccount}", "123456789012")
        .replace("${LoggingAccount}", logging)
        .replace("${SecurityAccount}", security)
        .replace("${MemberRoleName}", "AssureExecutionRole")
        .replace("<id>", id)
        .replace("<time>", time)
        .replace("<detail>", detail)
}

/// The StackSet deploys the member role to a new account 40 s after it joins (minutes on AWS):
/// longer than the join step waits itself, so the join state machine retries `Assure.NotReady`.
#[tokio::test(flavor = "multi_thread")]
async fn accounts_that_join_are_onboarded_without_a_command() {
    let cloud = LocalCloud::start_with(&[("ASSURE_STACKSETS_DELAY_SECONDS", "40")]);
    let ids = cloud.seed_accounts(1);
    let (logging, security) = (ids["logging"].as_str().unwrap(), ids["security"].as_str().unwrap());
    let (code, _, err) = cloud.run(&[
        "deploy",
        "--logging-account",
        logging,
        "--security-account",
        security,
        "--regions",
        "us-east-1",
        "--auto-onboard",
    ]);
    assert_eq!(code, 0, "deploy --auto-onboard: {err}");
    let admin = credentials(&cloud.sdk_config().await).await;
    // The pipeline's executions are the pipeline account's, the security account's.
    let states_admin = credentials(&cloud.pipeline_config().await).await;
    let account_field = |account: &str, field: &str| {
        let query = format!("Account.{field}");
        cli_ok(
            &cloud,
            &admin,
            &["organizations", "describe-account", "--account-id", account, "--query", &query, "--output", "text"],
        )
    };

    // One account created, one invited from outside the organization.
    let created = cli_ok(
        &cloud,
        &admin,
        &[
            "organizations",
            "create-account",
            "--account-name",
            "joined-created",
            "--email",
            "joined-created@example.com",
            "--query",
            "CreateAccountStatus.AccountId",
            "--output",
            "text",
        ],
    );
    let invited = "210987654321";
    let its_owner = owner(&cloud, invited);
    let handshake = cli_ok(
        &cloud,
        &admin,
        &[
            "organizations",
            "invite-account-to-organization",
            "--target",
            &format!("Id={invited},Type=ACCOUNT"),
            "--query",
            "Handshake.Id",
            "--output",
            "text",
        ],
    );
    cli_ok(&cloud, &its_owner, &["organizations", "accept-handshake", "--handshake-id", &handshake]);

    // Each is onboarded once, without a command, under its join's run id.
    let runs = assure_e2e::eventually(Duration::from_secs(360), "both accounts' runs finished", || {
        let (code, out, err) = cloud.run(&["runs", "list", "--output", "json"]);
        assert_eq!(code, 0, "runs list: {err}");
        let runs: Vec<Value> = serde_json::from_str(&out).expect("runs list --output json");
        let ours: Vec<Value> = runs
            .into_iter()
            .filter(|r| [created.as_str(), invited].contains(&r["account"].as_str().unwrap_or_default()))
            .collect();
        let done = ours.len() >= 2 && ours.iter().all(|r| r["status"] != "RUNNING");
        if done {
            Ok(ours)
        } else {
            Err(format!("{ours:?}"))
        }
    });
    for account in [created.as_str(), invited] {
        let theirs: Vec<&Value> = runs.iter().filter(|r| r["account"] == account).collect();
        assert_eq!(theirs.len(), 1, "one run for {account}, whatever the number of its events: {runs:?}");
        let run = theirs[0];
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        let joined = account_field(account, "JoinedTimestamp");
        // Epoch seconds, as the JSON protocol carries it (the AWS CLI v1 prints it so).
        let joined: f64 = joined.parse().unwrap_or_else(|e| panic!("JoinedTimestamp {joined:?}: {e}"));
        let run_id = run["runId"].as_str().unwrap();
        assert_eq!(run_id, format!("joined-{account}-{}", joined.floor() as i64));
        let (code, out, err) = cloud.run(&["runs", "show", run_id]);
        assert_eq!(code, 0, "runs show {run_id}: {out}\n{err}");
    }
    let method = |account: &str| account_field(account, "JoinedMethod");
    assert_eq!((method(&created), method(invited)), ("CREATED".to_owned(), "INVITED".to_owned()));

    // Its own administrator, now a member's, sees the organization and no more.
    let org_of = cli_ok(
        &cloud,
        &its_owner,
        &["organizations", "describe-organization", "--query", "Organization.MasterAccountId", "--output", "text"],
    );
    assert_eq!(org_of, "123456789012");
    for refused in [
        vec!["organizations", "list-accounts"],
        vec!["organizations", "enable-aws-service-access", "--service-principal", "guardduty.amazonaws.com"],
        vec![
            "organizations",
            "register-delegated-administrator",
            "--account-id",
            invited,
            "--service-principal",
            "config.amazonaws.com",
        ],
    ] {
        let (code, _, err) = super::iam::aws_cli(&cloud, &its_owner, &refused);
        assert_ne!(code, 0, "{refused:?} was allowed");
        assert!(
            err.contains("AccessDeniedException")
                && err.contains("You don't have permissions to access this resource."),
            "{refused:?}: {err}"
        );
    }

    // Three events (CreateAccountResult, and AccountJoinedOrganization for each), three join
    // executions, each ended well.
    let join = &format!("arn:aws:states:us-east-1:{}:stateMachine:assure-join", cloud.pipeline_account());
    let statuses = cli_ok(
        &cloud,
        &states_admin,
        &[
            "stepfunctions",
            "list-executions",
            "--state-machine-arn",
            join,
            "--query",
            "executions[].status",
            "--output",
            "json",
        ],
    );
    let statuses: Vec<String> = serde_json::from_str(&statuses).unwrap();
    assert_eq!(statuses, ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"], "{statuses:?}");
    let executions = cli_ok(
        &cloud,
        &states_admin,
        &[
            "stepfunctions",
            "list-executions",
            "--state-machine-arn",
            join,
            "--query",
            "executions[].executionArn",
            "--output",
            "json",
        ],
    );
    let waited = serde_json::from_str::<Vec<String>>(&executions).unwrap().iter().any(|arn| {
        let history =
            cli_ok(&cloud, &states_admin, &["stepfunctions", "get-execution-history", "--execution-arn", arn]);
        history.contains("Assure.NotReady") && history.contains("cannot be assumed in it yet")
    });
    assert!(waited, "no join waited for the member role");

    // The event again, later, once an operator has run the account too: the join step finds the
    // account's lock held by the operator's finished run, takes it, and starts nothing new.
    let (code, out, err) = cloud.run(&["onboard", &created, "--run-id", "operator-again"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let detail = serde_json::json!({"eventName": "CreateAccountResult", "serviceEventDetails":
        {"createAccountStatus": {"state": "SUCCEEDED", "accountId": created}}});
    let input = join_input(
        r#"["us-east-1"]"#,
        logging,
        security,
        "0e5bd8a6-6f43-4b1f-9d3c-delivered-again",
        "2026-12-07T10:00:00Z",
        &detail.to_string(),
    );
    let again = cli_ok(
        &cloud,
        &states_admin,
        &[
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            join,
            "--input",
            &input,
            "--query",
            "executionArn",
            "--output",
            "text",
        ],
    );
    let status = execution_ended(&cloud, &states_admin, &again, Duration::from_secs(120));
    assert_eq!(status, "SUCCEEDED", "{again}");
    let (_, out, _) = cloud.run(&["runs", "list", "--account", &created, "--output", "json"]);
    let theirs: Vec<Value> = serde_json::from_str(&out).expect("runs list --output json");
    let joined: Vec<&Value> =
        theirs.iter().filter(|r| r["runId"].as_str().is_some_and(|id| id.starts_with("joined-"))).collect();
    assert_eq!(joined.len(), 1, "the event again started nothing new: {theirs:?}");
    assert_eq!(joined[0]["executions"], 1, "{theirs:?}");
    let asked = cloud.decisions().iter().any(|d| {
        d["principal"].as_str().is_some_and(|p| p.contains("assure-step-join"))
            && d["action"] == "states:DescribeExecution"
    });
    assert!(asked, "the join step never asked whether the lock's holder still runs");
}
