//! The pipeline's template: per step a queue, its dead-letter queue, a function and its role; the
//! checkpoint bucket; the state machines; the operator role.

use assure_contract::{StepName, DEFAULT_ROLE_NAME, MANAGEMENT_ROLE, STEP_BINARY, STEP_ENV};
use serde_json::{json, Map, Value};

use crate::pipeline::resources::{
    placeholder, queue_name, step_role_name, BULK_STATES_ROLE, BULK_STATE_MACHINE, JOIN_STATES_ROLE,
    JOIN_STATE_MACHINE, OPERATOR_ROLE, PIPELINE_KEY_ALIAS, STATES_ROLE, STATE_MACHINE, WATCH_RULE, WATCH_SCHEDULE_ROLE,
    WATCH_STATES_ROLE, WATCH_STATE_MACHINE,
};

use crate::controls::kit::permissions::{accounts, any};

use super::*;

/// What a step may do with the pipeline account's own credentials (its own queue and the task
/// answer come on top): read its organization and manage its SCPs, as the management account's
/// delegation policy allows ([`management_template`]), and its own executions. Steps reach every
/// other account through the member role, and the management account through its role for what
/// only that account may do ([`management_actions`]).
pub(super) fn step_actions(step: StepName) -> Vec<Grant> {
    let own = |what: &str| sub(&format!("arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:{what}"));
    let mut grants = match step {
        StepName::Preflight => vec![
            // The organization has all features, and the run's accounts are in it.
            (any(), vec!["organizations:DescribeOrganization"]),
            (accounts(), vec!["organizations:DescribeAccount"]),
            // The run lock: is the execution holding the account's lock still running?
            (own(&format!("execution:{STATE_MACHINE}:*")), vec!["states:DescribeExecution"]),
        ],
        // AutoOnboard: the accounts an event is about, and each one's run, started as the CLI starts
        // one (the account's run lock first: is the execution holding it still running?).
        StepName::Join => vec![
            (any(), vec!["organizations:ListAccounts"]),
            (accounts(), vec!["organizations:DescribeAccount"]),
            (own(&format!("stateMachine:{STATE_MACHINE}")), vec!["states:StartExecution"]),
            (own(&format!("execution:{STATE_MACHINE}:*")), vec!["states:DescribeExecution"]),
        ],
        // The fleet's scheduled verify: what verify reads, its drift sent to this account's default
        // bus, and the repair runs it starts as the join step starts runs.
        StepName::Watch => vec![
            (own(&format!("stateMachine:{STATE_MACHINE}")), vec!["states:StartExecution"]),
            (own(&format!("execution:{STATE_MACHINE}:*")), vec!["states:DescribeExecution"]),
            (
                sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"),
                vec!["events:PutEvents"],
            ),
        ],
        _ => vec![],
    };
    grants.extend(baseline::ALL.iter().flat_map(|c| (c.permissions.pipeline)(checks_as(step))));
    joined(grants)
}

/// A state machine of one task, `step`'s, from its file in `statemachines/`.
fn one_task_machine(name: &str, file: &str, step: StepName, role: &str, log_level: &str) -> Value {
    json!({
        "Type": "AWS::Serverless::StateMachine",
        "Properties": {
            "Name": name,
            "Type": "STANDARD",
            "DefinitionUri": format!("../statemachines/{file}"),
            "DefinitionSubstitutions": {placeholder(step): reference(&format!("{}Queue", logical(step)))},
            "Role": getatt(role, "Arn"),
            "Tracing": {"Enabled": true},
            "Logging": {"Level": log_level, "IncludeExecutionData": false,
                        "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": getatt("StatesLogGroup", "Arn")}}]}
        }
    })
}

/// The role a one-task state machine runs as: it sends its step's task message.
fn one_task_states_role(name: &str, step: StepName) -> Value {
    states_role(
        name,
        &format!("send-{}-task", step.as_str()),
        json!([
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": getatt(&format!("{}Queue", logical(step)), "Arn")},
            {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": getatt("PipelineKey", "Arn")},
        ]),
    )
}

/// The role an EventBridge rule of this account starts the state machine `machine` (its logical
/// id) as.
fn starts_machine_role(name: &str, machine: &str) -> Value {
    json!({
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": name,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": reference("AWS::AccountId")}}}]},
            "Policies": [{"PolicyName": "start", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "states:StartExecution", "Resource": reference(machine)}]}}]
        }
    })
}

/// The run a rule's input transformer gives a one-task state machine: the stack's settings, its
/// run id `PREFIX-<id>` (the event's id, so one task checkpoint per event), its `regions` (JSON),
/// as `Fn::Sub` text.
fn stack_run(prefix: &str, regions: &str) -> String {
    format!(
        "{{\"runId\": \"{prefix}-<id>\", \"account\": \"${{AWS::AccountId}}\", \"regions\": {regions}, \"homeRegion\": \"${{AWS::Region}}\", \"org\": {{\"management\": \"${{ManagementAccount}}\", \"logging\": \"${{LoggingAccount}}\", \"security\": \"${{SecurityAccount}}\"}}, \"roleName\": \"${{MemberRoleName}}\", \"policy\": \"hold\"}}"
    )
}

/// The step whose checks `step` makes: the watch step checks each account as verify does, with
/// verify's permissions.
pub(super) fn checks_as(step: StepName) -> StepName {
    if step == StepName::Watch {
        StepName::Verify
    } else {
        step
    }
}

/// A step's queue (or, with `dead_letter`, its dead-letter queue) as the pipeline template defines
/// it: its `VisibilityTimeout` and `MessageRetentionPeriod`, the attributes `assure deploy` sets
/// from the template, in seconds (SQS's defaults where the template names none).
pub fn queue_timings(step: StepName, dead_letter: bool) -> (u64, u64) {
    let id = format!("{}{}", logical(step), if dead_letter { "DeadLetterQueue" } else { "Queue" });
    let template = pipeline_template();
    let props = &template["Resources"][id.as_str()]["Properties"];
    // SQS's defaults: 30 s visible again, kept 4 days (API_CreateQueue).
    (props["VisibilityTimeout"].as_u64().unwrap_or(30), props["MessageRetentionPeriod"].as_u64().unwrap_or(345_600))
}

/// The pipeline: per step a queue with its dead-letter queue, a function and its role; the
/// checkpoint bucket; the state machines from their files; their log group; the rules that start
/// them; the drift topic ([`super::drift`]).
pub fn pipeline_template() -> Value {
    let mut resources = Map::new();
    let mut outputs = Map::new();
    let mut substitutions = Map::new();

    resources.insert(
        "PipelineKey".into(),
        json!({
            "Type": "AWS::KMS::Key",
            "Properties": {
                "Description": "assure: encrypts the pipeline's queues, checkpoints and logs",
                "EnableKeyRotation": true,
                "KeyPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                         "Action": "kms:*", "Resource": "*"},
                        {"Sid": "ServicesUseKey", "Effect": "Allow",
                         "Principal": {"Service": ["sqs.amazonaws.com", "states.amazonaws.com"]},
                         "Action": ["kms:GenerateDataKey*", "kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"], "Resource": "*",
                         "Condition": {"StringEquals": {"aws:SourceAccount": reference("AWS::AccountId")}}},
                        // EventBridge, publishing drift to the encrypted drift topic: for that
                        // topic only, by the encryption context SNS uses. Not by aws:SourceArn or
                        // aws:SourceAccount, which SNS's guide says a key policy cannot use for
                        // EventBridge publishing to an encrypted topic
                        // (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
                        {"Sid": "EventsPublishDrift", "Effect": "Allow",
                         "Principal": {"Service": "events.amazonaws.com"},
                         "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*",
                         "Condition": {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": super::drift::drift_topic_arn()}}},
                        // CloudWatch Logs, for the functions' and state machines' encrypted log
                        // groups: held to this account's log groups by the encryption context it
                        // always uses, as its guide's key policy is; it documents no
                        // aws:SourceAccount for this ("Encrypt log data in CloudWatch Logs using
                        // AWS KMS", step 2).
                        {"Sid": "LogsUseKey", "Effect": "Allow",
                         "Principal": {"Service": sub("logs.${AWS::Region}.amazonaws.com")},
                         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                         "Resource": "*",
                         "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                             sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*")}}}
                    ]
                }
            }
        }),
    );
    resources.insert(
        "PipelineKeyAlias".into(),
        json!({
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": PIPELINE_KEY_ALIAS, "TargetKeyId": reference("PipelineKey")}
        }),
    );
    resources.insert(
        "CheckpointBucket".into(),
        json!({
            "Type": "AWS::S3::Bucket",
            "Metadata": skip(&[("CKV_AWS_18", "checkpoint records are written by the pipeline's own roles and audited through CloudTrail data events; server access logs would add a second log bucket to a bucket of audit records")]),
            "Properties": {
                "BucketName": sub(CHECKPOINTS),
                "VersioningConfiguration": {"Status": "Enabled"},
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
                    "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": getatt("PipelineKey", "Arn")},
                    "BucketKeyEnabled": true}]},
                "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true},
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
            }
        }),
    );
    resources.insert("CheckpointBucketPolicy".into(), tls_only("CheckpointBucket"));

    for step in StepName::ALL {
        let id = logical(step);
        let queue = format!("{id}Queue");
        let dlq = format!("{id}DeadLetterQueue");
        let role = format!("{id}Role");
        let function = format!("{id}Function");
        resources.insert(
            dlq.clone(),
            json!({"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": format!("{}-dlq", queue_name(step)),
                "KmsMasterKeyId": reference("PipelineKey"),
                // The function reads this queue too (its DeadLetters event): Lambda refuses an
                // event source mapping whose queue's visibility timeout is below the function's
                // timeout ("Configuring an Amazon SQS queue to use with Lambda"; cfn-lint E3505
                // on the transformed template, which `cargo xtask lint-infra` lints).
                "VisibilityTimeout": 960,
                "MessageRetentionPeriod": 1_209_600}}),
        );
        resources.insert(
            queue.clone(),
            json!({"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": queue_name(step),
                "KmsMasterKeyId": reference("PipelineKey"),
                "VisibilityTimeout": 960,
                "RedrivePolicy": {"deadLetterTargetArn": getatt(&dlq, "Arn"), "maxReceiveCount": 5}}}),
        );
        let mut statements = vec![
            // What Lambda's event source mapping needs of the function's role
            // (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html); the queue
            // itself moves a message to its dead-letter queue, with no permission of the role.
            // The function also keeps the message it works on invisible (ChangeMessageVisibility:
            // the task's liveness, see worker.rs), and consumes the dead-letter queue to fail the
            // tasks of messages no worker could answer.
            json!({"Sid": "ConsumeOwnQueues", "Effect": "Allow",
                   "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
                   "Resource": [getatt(&queue, "Arn"), getatt(&dlq, "Arn")]}),
            // Queues (receive: Decrypt) and checkpoints (read: Decrypt, write: GenerateDataKey).
            json!({"Sid": "UseKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": getatt("PipelineKey", "Arn")}),
            // IAM authorizes SendTask* against no resource type (the Service Authorization
            // Reference lists none for them): a statement scoped to the state machine never matches.
            json!({"Sid": "AnswerTasks", "Effect": "Allow",
                   "Action": ["states:SendTaskSuccess", "states:SendTaskFailure"],
                   "Resource": "*"}),
            // Every task starts by reading its checkpoint and ends by writing it.
            json!({"Sid": "Checkpoints", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                   "Resource": sub("${CheckpointBucket.Arn}/*")}),
            json!({"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                   "Resource": sub(&format!("arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/aws/lambda/assure-step-{}:*", step.as_str()))}),
        ];
        // The SCP step works through the organization and the management account alone.
        if step != StepName::Scps {
            statements.push(json!({"Sid": "ReachMemberAccounts", "Effect": "Allow", "Action": "sts:AssumeRole",
                                   "Resource": sub("arn:${AWS::Partition}:iam::*:role/${MemberRoleName}")}));
        }
        if matches!(
            step,
            StepName::Rollback | StepName::Preflight | StepName::Verify | StepName::Join | StepName::Watch
        ) {
            // Compensation walks the run's checkpoint records. Preflight and Join read the
            // account's run lock, Preflight its onboarded note, Verify its record of the run's delivery canary, Watch the fleet's notes and checks, which may
            // not exist: without s3:ListBucket, S3 answers a
            // read of a missing key with 403 AccessDenied, not 404
            // (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions").
            statements.push(json!({"Sid": "ListCheckpoints", "Effect": "Allow", "Action": "s3:ListBucket",
                                   "Resource": sub("${CheckpointBucket.Arn}")}));
        }
        // IAM wants each statement's Sid unique within its policy.
        statements.extend(statements_of("Organization", step_actions(step)));
        if !management_actions(step).is_empty() {
            statements.push(json!({"Sid": "ReachManagementAccount", "Effect": "Allow", "Action": "sts:AssumeRole",
                                   "Resource": sub(&format!("arn:${{AWS::Partition}}:iam::${{ManagementAccount}}:role/{MANAGEMENT_ROLE}"))}));
        }
        let mut role_res = json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": step_role_name(step),
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
                "Policies": [{"PolicyName": "step", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]
            }
        });
        if !step_actions(step).is_empty() {
            role_res["Metadata"] = skip(&[
                ("CKV_AWS_111", "AWS Organizations and the GuardDuty organization APIs take no resource-level constraint for these actions; the role is this step's alone"),
                ("CKV_AWS_109", "organizations:AttachPolicy/CreatePolicy/UpdatePolicy are the SCP step's purpose; only that step's role has them"),
                ("CKV_AWS_356", "the Organizations actions listed support only Resource \"*\""),
            ]);
        }
        resources.insert(role.clone(), role_res);
        // The function's log group, made here rather than by Lambda on first use: the role may not
        // create log groups (Lambda would drop the logs), and this one has retention and the key.
        let log_group = format!("{id}LogGroup");
        resources.insert(
            log_group.clone(),
            json!({"Type": "AWS::Logs::LogGroup", "Properties": {
                "LogGroupName": format!("/aws/lambda/assure-step-{}", step.as_str()),
                "RetentionInDays": 365,
                "KmsKeyId": getatt("PipelineKey", "Arn")}}),
        );
        resources.insert(
            function.clone(),
            json!({
                "Type": "AWS::Serverless::Function",
                "Metadata": skip(&[
                    ("CKV_AWS_117", "the step calls only AWS APIs; a VPC would add NAT gateways and endpoints and no isolation"),
                    ("CKV_AWS_116", "the function is fed by SQS; failed messages go to the queue's own dead-letter queue"),
                    ("CKV_AWS_115", "the SQS event source's MaximumConcurrency bounds the function; reserved concurrency must leave 100 unreserved (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html), which 14 functions could not in an account with a new account's lower quota"),
                ]),
                "Properties": {
                    "FunctionName": step.function_name(),
                    // One package for every function (steps/): each runs the step ASSURE_STEP names.
                    "CodeUri": format!("../target/lambda/{STEP_BINARY}/"),
                    "Handler": "bootstrap",
                    "Runtime": "provided.al2023",
                    "Architectures": ["arm64"],
                    "MemorySize": 256,
                    "Timeout": 900,
                    "KmsKeyArn": getatt("PipelineKey", "Arn"),
                    "Role": getatt(&role, "Arn"),
                    "LoggingConfig": {"LogGroup": reference(&log_group), "LogFormat": "Text"},
                    "Environment": {"Variables": {STEP_ENV: step.as_str(), "ASSURE_HEARTBEAT_SECONDS": "20", "ASSURE_PIPELINE_ACCOUNT": reference("AWS::AccountId")}},
                    "Events": {
                        "Tasks": {"Type": "SQS", "Properties": {
                            "Queue": getatt(&queue, "Arn"),
                            "BatchSize": 1,
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            "ScalingConfig": {"MaximumConcurrency": reference("StepConcurrency")}}},
                        // Messages delivered maxReceiveCount times without an answer: the function
                        // fails their tasks (2 is MaximumConcurrency's least value).
                        "DeadLetters": {"Type": "SQS", "Properties": {
                            "Queue": getatt(&dlq, "Arn"),
                            "BatchSize": 1,
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            "ScalingConfig": {"MaximumConcurrency": 2}}}}
                }
            }),
        );
        // The organization step is the bulk state machine's, the join step the join one's; every
        // other step the onboarding one's.
        if step.account_run() {
            substitutions.insert(placeholder(step), reference(&queue));
        }
        outputs.insert(format!("{id}QueueUrl"), json!({"Value": reference(&queue)}));
    }

    // The operator's commands (plan, verify, runs, rollback) run with the operator's own
    // credentials in this account and reach member accounts through this role, which the member
    // role trusts beside the step roles.
    resources.insert(
        "OperatorRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": OPERATOR_ROLE,
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                    "Action": "sts:AssumeRole"}]},
                "Policies": [{"PolicyName": "reach-member-accounts", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "ReachMemberAccounts", "Effect": "Allow", "Action": "sts:AssumeRole",
                     "Resource": sub("arn:${AWS::Partition}:iam::*:role/${MemberRoleName}")},
                    {"Sid": "ReachManagementAccount", "Effect": "Allow", "Action": "sts:AssumeRole",
                     "Resource": sub(&format!("arn:${{AWS::Partition}}:iam::${{ManagementAccount}}:role/{MANAGEMENT_ROLE}"))}]}}]
            }
        }),
    );
    resources.insert(
        "StatesLogGroup".into(),
        json!({"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": json!(format!("/aws/vendedlogs/states/{STATE_MACHINE}")),
            "RetentionInDays": 365,
            "KmsKeyId": getatt("PipelineKey", "Arn")}}),
    );
    let queues: Vec<Value> = StepName::ALL
        .iter()
        .filter(|s| s.account_run())
        .map(|s| getatt(&format!("{}Queue", logical(*s)), "Arn"))
        .collect();
    resources.insert(
        "StatesRole".into(),
        states_role(STATES_ROLE, "send-task-messages", json!([
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queues},
            {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": getatt("PipelineKey", "Arn")},
        ])),
    );
    resources.insert(
        "StateMachine".into(),
        json!({
            "Type": "AWS::Serverless::StateMachine",
            "Properties": {
                "Name": STATE_MACHINE,
                "Type": "STANDARD",
                "DefinitionUri": "../statemachines/onboarding.asl.json",
                "DefinitionSubstitutions": substitutions,
                "Role": getatt("StatesRole", "Arn"),
                "Tracing": {"Enabled": true},
                "Logging": {"Level": "ALL", "IncludeExecutionData": false,
                            "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": getatt("StatesLogGroup", "Arn")}}]}
            }
        }),
    );
    // Bulk onboarding: a Map over accounts, each a child execution of the onboarding machine
    // (startExecution.sync:2, which manages an EventBridge rule to hear the children end).
    resources.insert(
        "BulkStatesRole".into(),
        states_role(BULK_STATES_ROLE, "start-child-runs", json!([
            // The organization step's task, once before the accounts.
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": getatt(&format!("{}Queue", logical(StepName::Organization)), "Arn")},
            {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": getatt("PipelineKey", "Arn")},
            {"Effect": "Allow", "Action": "states:StartExecution", "Resource": reference("StateMachine")},
            // The accounts' list the Distributed Map reads (ItemReader), and the results it
            // writes (ResultWriter), in the checkpoint bucket under the bulk run's prefix
            // ("IAM policies for using Distributed Map states": scope to the objects).
            {"Effect": "Allow", "Action": "s3:GetObject",
             "Resource": sub(&format!("arn:${{AWS::Partition}}:s3:::{CHECKPOINTS}/runs/*/accounts.json"))},
            {"Effect": "Allow", "Action": "s3:PutObject",
             "Resource": sub(&format!("arn:${{AWS::Partition}}:s3:::{CHECKPOINTS}/runs/*/results/*"))},
            // The Distributed Map's child workflow executions are executions of this state
            // machine, started and watched by Step Functions as its role (same page).
            {"Effect": "Allow", "Action": "states:StartExecution",
             "Resource": sub(&format!("arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:stateMachine:{BULK_STATE_MACHINE}"))},
            {"Effect": "Allow", "Action": ["states:DescribeExecution", "states:StopExecution"],
             "Resource": sub(&format!("arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{BULK_STATE_MACHINE}/*"))},
            // IAM's definitions list DescribeExecution and StopExecution for standard and
            // express executions alike; the onboarding state machine is a standard one.
            {"Effect": "Allow", "Action": ["states:DescribeExecution", "states:StopExecution"],
             "Resource": [
                 sub(&format!("arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:execution:{STATE_MACHINE}:*")),
                 sub(&format!("arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:express:{STATE_MACHINE}:*:*"))]},
            {"Effect": "Allow", "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
             "Resource": sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule")},
        ])),
    );
    resources.insert(
        "BulkStateMachine".into(),
        json!({
            "Type": "AWS::Serverless::StateMachine",
            "Properties": {
                "Name": BULK_STATE_MACHINE,
                "Type": "STANDARD",
                "DefinitionUri": "../statemachines/bulk.asl.json",
                "DefinitionSubstitutions": {
                    "OnboardingStateMachineArn": reference("StateMachine"),
                    "CheckpointBucket": reference("CheckpointBucket"),
                    placeholder(StepName::Organization): reference(&format!("{}Queue", logical(StepName::Organization)))},
                "Role": getatt("BulkStatesRole", "Arn"),
                "Tracing": {"Enabled": true},
                "Logging": {"Level": "ERROR", "IncludeExecutionData": false,
                            "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": getatt("StatesLogGroup", "Arn")}}]}
            }
        }),
    );
    // Opt-in (AutoOnboard): onboard every account that joins the organization, created or invited.
    // Organizations' membership events go to the management account's default bus in us-east-1,
    // whose bootstrap stack forwards them to this account's; each starts the join state machine,
    // whose one task starts the accounts' runs (join.rs).
    resources.insert("JoinStatesRole".into(), {
        let mut role = one_task_states_role(JOIN_STATES_ROLE, StepName::Join);
        role["Condition"] = json!("AutoOnboard");
        role
    });
    resources.insert("JoinStateMachine".into(), {
        let mut machine =
            one_task_machine(JOIN_STATE_MACHINE, "join.asl.json", StepName::Join, "JoinStatesRole", "ALL");
        machine["Condition"] = json!("AutoOnboard");
        machine
    });
    resources.insert("OnboardOnJoinRole".into(), {
        let mut role = starts_machine_role("assure-onboard-on-join", "JoinStateMachine");
        role["Condition"] = json!("AutoOnboard");
        role
    });
    // Organizations sends its events to the management account's bus; its bootstrap stack forwards
    // the membership events here (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html),
    // where only the join rule (AutoOnboard) takes them.
    resources.insert(
        "MembershipEventsFromManagement".into(),
        json!({
            "Type": "AWS::Events::EventBusPolicy",
            "Properties": {
                "StatementId": "assure-membership-events-from-management",
                "Action": "events:PutEvents",
                "Principal": reference("ManagementAccount")
            }
        }),
    );
    resources.insert(
        "OnboardOnJoin".into(),
        json!({
            "Type": "AWS::Events::Rule",
            "Condition": "AutoOnboard",
            "Properties": {
                "Description": "assure: onboard an account when it joins the organization (created or invited)",
                // CloudTrail service events of Organizations, as EventBridge delivers them
                // (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-organizations.html).
                "EventPattern": {"source": ["aws.organizations"], "detail-type": ["AWS Service Event via CloudTrail"],
                                 "detail": {"eventSource": ["organizations.amazonaws.com"],
                                            "eventName": ["CreateAccountResult", "AccountJoinedOrganization"]}},
                "Targets": [{
                    "Id": "join",
                    "Arn": reference("JoinStateMachine"),
                    "RoleArn": getatt("OnboardOnJoinRole", "Arn"),
                    // The join task's run is the stack's settings for every run it starts; its run
                    // id, unique per event, keys the task's own checkpoint.
                    "InputTransformer": {
                        "InputPathsMap": {"id": "$.id", "time": "$.time", "detail": "$.detail"},
                        "InputTemplate": sub(&format!("{{\"event\": {{\"id\": \"<id>\", \"time\": \"<time>\", \"detail\": <detail>}}, \"run\": {}}}", stack_run("join", "${RegionsJson}")))
                    }
                }]
            }
        }),
    );
    // The fleet's scheduled verify: an EventBridge schedule starts the watch state machine, whose
    // one task checks every onboarded account (fleet.rs).
    resources.insert("WatchStatesRole".into(), one_task_states_role(WATCH_STATES_ROLE, StepName::Watch));
    resources.insert(
        "WatchStateMachine".into(),
        one_task_machine(WATCH_STATE_MACHINE, "watch.asl.json", StepName::Watch, "WatchStatesRole", "ERROR"),
    );
    resources.insert("WatchOnScheduleRole".into(), starts_machine_role(WATCH_SCHEDULE_ROLE, "WatchStateMachine"));
    // A scheduled EventBridge rule, not an EventBridge Scheduler schedule: one fixed rate and one
    // target need nothing Scheduler adds, and the rule's target takes the same input transformer
    // as the join rule's (docs/decisions/0068-the-fleet-is-watched-by-a-scheduled-rule.md).
    resources.insert(
        "WatchOnSchedule".into(),
        json!({
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": WATCH_RULE,
                "Description": "assure: verify every onboarded account on a schedule (the fleet's watch)",
                "ScheduleExpression": reference("VerifySchedule"),
                "State": "ENABLED",
                "Targets": [{
                    "Id": "watch",
                    "Arn": reference("WatchStateMachine"),
                    "RoleArn": getatt("WatchOnScheduleRole", "Arn"),
                    // The watch task's run is the stack's settings in its home region (each
                    // account is checked in the regions of its own last run); its run id, unique
                    // per event, keys the task's own checkpoint.
                    "InputTransformer": {
                        "InputPathsMap": {"id": "$.id", "time": "$.time"},
                        "InputTemplate": sub(&format!("{{\"run\": {}}}", stack_run("watch", "[\"${AWS::Region}\"]")))
                    }
                }]
            }
        }),
    );
    super::drift::drift_notifications(&mut resources);
    outputs.insert("DriftTopicArn".into(), json!({"Value": reference("DriftTopic")}));
    outputs.insert("WatchStateMachineArn".into(), json!({"Value": reference("WatchStateMachine")}));
    outputs.insert("StateMachineArn".into(), json!({"Value": reference("StateMachine")}));
    outputs.insert("BulkStateMachineArn".into(), json!({"Value": reference("BulkStateMachine")}));
    outputs.insert("CheckpointBucketName".into(), json!({"Value": reference("CheckpointBucket")}));

    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "assure: the onboarding pipeline (generated by `cargo xtask codegen`; do not edit)",
        "Parameters": {
            "ManagementAccount": {"Type": "String", "AllowedPattern": "^\\d{12}$", "Description": "the organization's management account, whose bootstrap stack (infra/management.template.json) trusts this pipeline"},
            "LoggingAccount": {"Type": "String", "AllowedPattern": "^\\d{12}$", "Description": "the organization's logging account"},
            "SecurityAccount": {"Type": "String", "AllowedPattern": "^\\d{12}$", "Description": "the organization's security account"},
            "RegionsJson": {"Type": "String", "Default": "[\"us-east-1\"]", "Description": "regions a run covers, as a JSON array; must include this stack's region"},
            "MemberRoleName": {"Type": "String", "Default": DEFAULT_ROLE_NAME, "AllowedPattern": "^[\\w+=,.@-]{1,64}$",
                               "Description": "the role assure assumes in every account (infra/member-role.template.json); an IAM role name, no wildcard (the SCPs exempt it by name)"},
            "StepConcurrency": {"Type": "Number", "Default": 5, "MinValue": 2, "Description": "concurrent invocations per step: bounds the load on rate-limited APIs"},
            "AutoOnboard": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"], "Description": "start onboarding when an account joins the organization"},
            "DriftProtocol": {"Type": "String", "Default": "email", "AllowedValues": ["email", "https"],
                              "Description": "how drift is told to DriftEndpoint: email or https"},
            "DriftEndpoint": {"Type": "String", "Default": "", "NoEcho": true,
                              "Description": "who is told of drift (the configuration's notifications): an email address or an https:// URL; none if empty. Never shown: an https URL's path may be its secret"},
            "VerifySchedule": {"Type": "String", "Default": "rate(1 day)", "AllowedPattern": "^(rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)|cron\\([^ ()]+( [^ ()]+){5}\\))$",
                               "Description": "how often every onboarded account is verified: an EventBridge schedule expression"}
        },
        "Conditions": {"AutoOnboard": {"Fn::Equals": [reference("AutoOnboard"), "true"]},
                       "DriftNotify": {"Fn::Not": [{"Fn::Equals": [reference("DriftEndpoint"), ""]}]}},
        // Organizations sends its events to EventBridge in us-east-1 only
        // (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_security_incident-response.html#eventbridge-integration):
        // a join rule anywhere else would never fire, so the stack refuses it.
        "Rules": {"AutoOnboardOnlyInUsEast1": {
            "RuleCondition": {"Fn::Equals": [reference("AutoOnboard"), "true"]},
            "Assertions": [{"Assert": {"Fn::Equals": [reference("AWS::Region"), "us-east-1"]},
                            "AssertDescription": "AutoOnboard=true needs the stack in us-east-1: Organizations sends its events to EventBridge in us-east-1 only"}]}},
        "Resources": resources,
        "Outputs": outputs
    })
}
