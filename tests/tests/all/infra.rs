//! The CloudFormation templates: generated from the code's own names and checked in; every
//! placeholder of the state machine resolved; least privilege; the SCPs exempt exactly assure's
//! roles.

use std::collections::BTreeSet;

use assure_contract::StepName;
use assure_core::pipeline::infra::{generated_files, member_role_template, pipeline_template};
use assure_core::pipeline::resources::step_role_name;
use assure_core::pipeline::resources::{placeholder, ONBOARDING_ASL};
use serde_json::Value;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[test]
fn the_committed_templates_are_the_generated_ones() {
    for (path, text) in generated_files() {
        let committed = std::fs::read_to_string(root().join(path)).unwrap_or_default();
        assert!(committed == text, "{path} is out of date: run `cargo xtask codegen` and commit");
    }
}

#[test]
fn the_state_machine_comes_from_its_file_with_every_placeholder_resolved() {
    let t = pipeline_template();
    let sm = &t["Resources"]["StateMachine"]["Properties"];
    let uri = sm["DefinitionUri"].as_str().unwrap();
    let file = root().join("infra").join(uri);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), ONBOARDING_ASL, "the template points at the ASL file");
    let subs: BTreeSet<&str> = sm["DefinitionSubstitutions"].as_object().unwrap().keys().map(String::as_str).collect();
    let mut used = BTreeSet::new();
    let mut rest = ONBOARDING_ASL;
    while let Some(i) = rest.find("${") {
        let end = rest[i..].find('}').unwrap() + i;
        used.insert(&rest[i + 2..end]);
        rest = &rest[end..];
    }
    assert_eq!(subs, used, "every placeholder is substituted, and only those");
    assert!(sm.get("Definition").is_none() && sm.get("DefinitionString").is_none(), "never inlined");
}

#[test]
fn every_step_has_a_function_a_queue_with_a_dead_letter_queue_and_its_own_role() {
    let t = pipeline_template();
    let res = t["Resources"].as_object().unwrap();
    for step in StepName::ALL {
        let id = placeholder(step).trim_end_matches("QueueUrl").to_owned();
        let f = &res[&format!("{id}Function")]["Properties"];
        assert_eq!(f["Runtime"], "provided.al2023");
        assert_eq!(f["Architectures"], serde_json::json!(["arm64"]));
        assert_eq!(f["CodeUri"], format!("../target/lambda/{}/", assure_core::contract::STEP_BINARY));
        assert_eq!(f["Environment"]["Variables"]["ASSURE_STEP"], step.as_str());
        let ev = &f["Events"]["Tasks"]["Properties"];
        assert!(ev["ScalingConfig"]["MaximumConcurrency"].is_object(), "{id}: bounded concurrency");
        let q = &res[&format!("{id}Queue")]["Properties"];
        assert!(q["KmsMasterKeyId"].is_object(), "{id}: queue encrypted");
        assert!(q["RedrivePolicy"]["deadLetterTargetArn"].is_object(), "{id}: dead-letter queue");
        assert_eq!(res[&format!("{id}Role")]["Properties"]["RoleName"], step_role_name(step));
        // Liveness (worker.rs): the function keeps its message invisible for three extension
        // intervals at a time, which must fit in its own timeout; and it consumes the dead-letter
        // queue, so a message no worker answered fails its task.
        let every: f64 = f["Environment"]["Variables"]["ASSURE_HEARTBEAT_SECONDS"].as_str().unwrap().parse().unwrap();
        let window = assure_core::pipeline::worker::visibility_window(std::time::Duration::from_secs_f64(every));
        assert!((window as u64) < f["Timeout"].as_u64().unwrap(), "{id}: a {window} s visibility window");
        let dead = &f["Events"]["DeadLetters"]["Properties"];
        assert_eq!(dead["Queue"], serde_json::json!({"Fn::GetAtt": [format!("{id}DeadLetterQueue"), "Arn"]}), "{id}");
        assert_eq!(dead["FunctionResponseTypes"], serde_json::json!(["ReportBatchItemFailures"]), "{id}");
        // Lambda refuses an SQS event source whose queue's visibility timeout is below the
        // function's timeout ("Queue visibility timeout: 30 seconds is less than Function timeout:
        // 900 seconds"; cfn-lint E3505): every queue the function reads, the dead-letter queue too.
        for event in ["Tasks", "DeadLetters"] {
            let queue = f["Events"][event]["Properties"]["Queue"]["Fn::GetAtt"][0].as_str().unwrap();
            let visibility = res[queue]["Properties"]["VisibilityTimeout"].as_u64().unwrap_or(30);
            assert!(
                visibility >= f["Timeout"].as_u64().unwrap(),
                "{id}: {queue}'s visibility timeout {visibility} s is below the function's timeout"
            );
        }
    }
}

/// Every IAM statement of a template's roles.
fn statements(t: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, r) in t["Resources"].as_object().unwrap() {
        for p in r["Properties"]["Policies"].as_array().into_iter().flatten() {
            for s in p["PolicyDocument"]["Statement"].as_array().unwrap() {
                out.push((name.clone(), s.clone()));
            }
        }
    }
    out
}

#[test]
fn no_role_allows_every_action_on_every_resource() {
    for t in [pipeline_template(), member_role_template(), assure_core::pipeline::infra::management_template()] {
        for (role, s) in statements(&t) {
            let actions: Vec<&str> = match &s["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            assert!(!actions.iter().any(|a| *a == "*" || a.ends_with(":*")), "{role}: wildcard action {actions:?}");
            if s["Resource"] == "*" && s["Condition"].is_null() {
                // Writes that grant access or move data never apply to every resource.
                let risky = [
                    "iam:Create",
                    "iam:Put",
                    "iam:Attach",
                    "iam:Pass",
                    "iam:Update",
                    "s3:Put",
                    "sts:AssumeRole",
                    "kms:Put",
                ];
                let bad: Vec<&&str> = actions.iter().filter(|a| risky.iter().any(|r| a.starts_with(r))).collect();
                assert!(bad.is_empty(), "{role}: {bad:?} on every resource");
            }
        }
    }
}

#[test]
fn the_scps_exempt_exactly_the_roles_the_templates_create() {
    let run: assure_contract::RunInput = serde_json::from_value(serde_json::json!({
        "runId": "r", "account": "111111111111", "regions": ["us-east-1"], "homeRegion": "us-east-1",
        "org": {"management": "123456789012", "logging": "222222222222", "security": "333333333333"},
        "roleName": assure_contract::DEFAULT_ROLE_NAME
    }))
    .unwrap();
    let exempt = assure_core::controls::scps::exempt_principals(&run);
    let member = member_role_template();
    assert_eq!(member["Parameters"]["RoleName"]["Default"], assure_contract::DEFAULT_ROLE_NAME);
    // Only the member role, by its exact name: a pattern would exempt any role an administrator of
    // the account named to match it. The pipeline's roles live in the security account, whose
    // administrators change them through the pipeline stack (decision 0003).
    assert_eq!(exempt, vec![format!("arn:aws:iam::*:role/{}", assure_contract::DEFAULT_ROLE_NAME)]);
}

/// What `OnboardOnJoin` starts the join state machine with, from an Organizations event as
/// EventBridge delivers it: the event, and a run that is the contract's `RunInput`, with every
/// `$.run.…` path the onboarding state machine reads (the join step starts each account's run from
/// it, and a Choice on a missing path fails the execution with States.Runtime).
#[test]
fn the_run_started_when_an_account_joins_is_a_whole_run_input() {
    let t = pipeline_template();
    let target = &t["Resources"]["OnboardOnJoin"]["Properties"]["Targets"][0];
    assert_eq!(target["Arn"], serde_json::json!({"Ref": "JoinStateMachine"}));
    let mut input =
        target["InputTransformer"]["InputTemplate"]["Fn::Sub"].as_str().expect("an Fn::Sub template").to_owned();
    for (name, value) in [
        ("${RegionsJson}", r#"["us-east-1","eu-west-1"]"#),
        ("${AWS::Region}", "us-east-1"),
        ("${AWS::AccountId}", "333333333333"),
        ("${ManagementAccount}", "111111111111"),
        ("${LoggingAccount}", "222222222222"),
        ("${SecurityAccount}", "333333333333"),
        ("${MemberRoleName}", "AssureExecutionRole"),
        ("<id>", "7bf73129-1428-4cd3-a780-95db273d1602"),
        ("<time>", "2026-12-07T10:00:00Z"),
        (
            "<detail>",
            r#"{"eventName": "AccountJoinedOrganization", "serviceEventDetails": {"joinedMethod": "Invited"}}"#,
        ),
    ] {
        input = input.replace(name, value);
    }
    assert!(!input.contains("${") && !input.contains('<'), "every placeholder is filled: {input}");
    let doc: Value = serde_json::from_str(&input).expect("the input is JSON");
    let run: assure_contract::RunInput = serde_json::from_value(doc["run"].clone()).expect("a RunInput");
    assert_eq!(run.run_id.as_str(), "join-7bf73129-1428-4cd3-a780-95db273d1602", "one join task checkpoint per event");
    assert_eq!(
        assure_core::pipeline::join::parse(&doc["event"]).expect("the join step reads the event"),
        assure_core::pipeline::join::Event::Joined { time: 1_796_637_600 }
    );
    let mut paths = BTreeSet::new();
    for asl in [ONBOARDING_ASL, assure_core::pipeline::resources::JOIN_ASL] {
        let mut rest = asl;
        while let Some(i) = rest.find("$.run.") {
            let tail = &rest[i + 6..];
            let end = tail.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(tail.len());
            paths.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    assert!(paths.contains("policy") && paths.contains("homeRegion"), "{paths:?}");
    for p in &paths {
        assert!(!doc["run"][p].is_null(), "a state machine reads $.run.{p}, which the event's run lacks: {input}");
    }
}

/// Organizations' events reach EventBridge in us-east-1 only: a stack with AutoOnboard=true in
/// another region is refused by the template's own rule, before anything is created.
#[test]
fn auto_onboarding_is_refused_outside_us_east_1() {
    let t = pipeline_template();
    let rule = &t["Rules"]["AutoOnboardOnlyInUsEast1"];
    assert_eq!(rule["RuleCondition"], serde_json::json!({"Fn::Equals": [{"Ref": "AutoOnboard"}, "true"]}));
    assert_eq!(
        rule["Assertions"][0]["Assert"],
        serde_json::json!({"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]})
    );
    assert!(rule["Assertions"][0]["AssertDescription"].as_str().unwrap().contains("us-east-1"));
    assert_eq!(
        t["Resources"]["OnboardOnJoin"]["Condition"], "AutoOnboard",
        "the join rule exists only with AutoOnboard"
    );
}

/// The management account's role for assure trusts exactly the pipeline's roles whose steps make
/// calls only the management account may make (and the operator's), by name; exactly those step
/// roles may assume it, and every Organizations resource the pipeline's roles name is the
/// management account's.
#[test]
fn only_the_steps_that_need_the_management_account_may_reach_it() {
    let management = assure_core::pipeline::infra::management_template();
    let role = &management["Resources"]["ManagementRole"]["Properties"];
    assert_eq!(role["RoleName"], assure_contract::MANAGEMENT_ROLE);
    let trusted: Vec<String> = role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["ArnEquals"]
        ["aws:PrincipalArn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Fn::Sub"].as_str().unwrap().rsplit('/').next().unwrap().to_owned())
        .collect();
    let needing = assure_core::pipeline::infra::management_steps();
    let mut expected: Vec<String> =
        needing.iter().map(|s| assure_core::pipeline::resources::step_role_name(*s).to_string()).collect();
    expected.push(assure_core::pipeline::resources::OPERATOR_ROLE.to_owned());
    assert_eq!(trusted, expected);
    for step in
        [assure_contract::StepName::GuardDuty, assure_contract::StepName::Scps, assure_contract::StepName::Preflight]
    {
        assert!(needing.contains(&step), "{step:?}");
    }
    let pipeline = pipeline_template();
    for step in assure_contract::StepName::ALL {
        let id = format!("{}Role", assure_core::pipeline::resources::placeholder(step).trim_end_matches("QueueUrl"));
        let text = pipeline["Resources"][id.as_str()].to_string();
        assert!(!text.is_empty() && text != "null", "{id}");
        assert_eq!(text.contains(assure_contract::MANAGEMENT_ROLE), needing.contains(&step), "{id}");
        // Organizations' ARNs are the management account's, never the pipeline account's.
        assert!(!text.contains("organizations::${AWS::AccountId}"), "{id}");
    }
}

/// The security account's SCP protects the baseline's service roles by name (the pipeline's own
/// assure-* roles are there): every one of them.
#[test]
fn every_service_role_of_the_baseline_is_protected_by_name() {
    let run: assure_contract::RunInput = serde_json::from_value(serde_json::json!({
        "runId": "r", "account": "444444444444", "regions": ["us-east-1"], "homeRegion": "us-east-1",
        "org": {"management": "111111111111", "logging": "222222222222", "security": "333333333333"},
        "roleName": "AssureExecutionRole"
    }))
    .unwrap();
    let names: Vec<&str> = assure_core::controls::baseline::ALL
        .iter()
        .flat_map(|c| (c.ahead.service_roles)(&run))
        .map(|r| r.role.name)
        .collect();
    assert!(!names.is_empty());
    for name in names {
        assert!(assure_core::controls::scps::BASELINE_ROLES.contains(&name), "{name} is not in BASELINE_ROLES");
    }
}
