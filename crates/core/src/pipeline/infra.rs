//! The CloudFormation (SAM) templates for a real organization, generated from the same names the
//! code uses (steps, queues, roles, the member role, the resources assure owns), so a local and a
//! real deployment cannot drift apart. `cargo xtask codegen` writes them under `infra/`; a test
//! fails when the committed files differ.

use assure_contract::{StepName, DEFAULT_ROLE_NAME, MANAGEMENT_ROLE, STEP_BINARY, STEP_ENV};
use serde_json::{json, Map, Value};

use crate::controls::names;
use crate::controls::scps::root;
use crate::pipeline::resources::{
    placeholder, queue_name, step_role_name, BULK_STATES_ROLE, BULK_STATE_MACHINE, JOIN_STATES_ROLE,
    JOIN_STATE_MACHINE, OPERATOR_ROLE, PIPELINE_KEY_ALIAS, STATES_ROLE, STATE_MACHINE,
};

/// The checkpoint bucket's name, for `Fn::Sub` (`resources::checkpoint_bucket` in the code).
const CHECKPOINTS: &str = "assure-checkpoints-${AWS::AccountId}-${AWS::Region}";

/// The policy of the bucket `bucket` (a logical id) that refuses every request not made over TLS.
fn tls_only(bucket: &str) -> Value {
    json!({
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": reference(bucket),
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [getatt(bucket, "Arn"), sub(&format!("${{{bucket}.Arn}}/*"))],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
        }
    })
}

/// A role Step Functions runs a state machine as: trusted by Step Functions for this account's
/// state machines, with `statements`, and what Step Functions itself does as the role: deliver the
/// state machine's logs to its log group, send X-Ray traces.
fn states_role(name: &str, policy: &str, statements: Value) -> Value {
    let mut statements = match statements {
        Value::Array(list) => list,
        one => vec![one],
    };
    statements.push(
        json!({"Effect": "Allow", "Action": ["logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups"], "Resource": "*"}),
    );
    statements.push(
        json!({"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"}),
    );
    json!({
        "Type": "AWS::IAM::Role",
        "Metadata": skip(&[("CKV_AWS_111", "CloudWatch Logs delivery for Step Functions (logs:CreateLogDelivery and friends) supports only Resource \"*\"")]),
        "Properties": {
            "RoleName": name,
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": reference("AWS::AccountId")}}}]},
            "Policies": [{"PolicyName": policy, "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]
        }
    })
}

/// `Foo-bar` → `FooBar`, for logical ids.
fn logical(step: StepName) -> String {
    placeholder(step).trim_end_matches("QueueUrl").to_owned()
}

fn sub(s: &str) -> Value {
    json!({"Fn::Sub": s})
}

fn getatt(res: &str, attr: &str) -> Value {
    json!({"Fn::GetAtt": [res, attr]})
}

fn reference(name: &str) -> Value {
    json!({"Ref": name})
}

/// Checkov suppressions, each with its reason.
fn skip(checks: &[(&str, &str)]) -> Value {
    json!({"checkov": {"skip": checks.iter().map(|(id, why)| json!({"id": id, "comment": why})).collect::<Vec<_>>()}})
}

/// Making the security account GuardDuty's delegated administrator (the GuardDuty step in a run of
/// its own, the organization step in a bulk run): the call, and the Organizations actions GuardDuty
/// makes with the caller's permissions while it serves it.
const GUARDDUTY_ADMINISTRATOR: &[&str] = &[
    "guardduty:EnableOrganizationAdminAccount",
    "guardduty:ListOrganizationAdminAccounts",
    "organizations:DescribeOrganization",
    "organizations:DescribeAccount",
    "organizations:DescribeOrganizationalUnit",
    "organizations:ListAccounts",
    "organizations:EnableAWSServiceAccess",
    "organizations:ListAWSServiceAccessForOrganization",
    "organizations:RegisterDelegatedAdministrator",
    "organizations:ListDelegatedAdministrators",
];

/// Centralized root access for the organization (`options.root_access = "centralized"`): trusted
/// access for IAM, then its two features. IAM authorizes the features' actions against no resource
/// type (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
const ROOT_ACCESS_ORGANIZATION: &[&str] = &[
    "organizations:EnableAWSServiceAccess",
    "organizations:ListAWSServiceAccessForOrganization",
    "iam:ListOrganizationsFeatures",
    "iam:EnableOrganizationsRootCredentialsManagement",
    "iam:EnableOrganizationsRootSessions",
];

/// A root session in a member account, scoped to `tasks` only: sts:AssumeRoot on the root-user
/// resource type with sts:TaskPolicyArn
/// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html).
fn root_session(tasks: &[&str]) -> (Value, Vec<&'static str>) {
    (
        json!({"Resource": sub("arn:${AWS::Partition}:iam::*:root"), "Condition": {"StringEquals": {"sts:TaskPolicyArn": tasks}}}),
        vec!["sts:AssumeRoot"],
    )
}

/// What a step may do with the pipeline account's own credentials (its own queue and the task
/// answer come on top): read its organization and manage its SCPs, as the management account's
/// delegation policy allows ([`management_template`]), and its own executions. Steps reach every
/// other account through the member role, and the management account through its role for what
/// only that account may do ([`management_actions`]).
fn step_actions(step: StepName) -> Vec<(Value, Vec<&'static str>)> {
    // Organizations' resources live under the management account
    // (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsorganizations.html).
    let org = |pattern: &str| sub(&format!("arn:${{AWS::Partition}}:organizations::${{ManagementAccount}}:{pattern}"));
    let accounts = || org("account/o-*/*");
    let targets = || json!([org("account/o-*/*"), org("ou/o-*/ou-*"), org("root/o-*/r-*")]);
    // The organization's own SCPs (assure reads and changes only those it made, by name).
    let scps = || json!([org("policy/o-*/service_control_policy/p-*")]);
    let any = || json!("*");
    let own = |what: &str| sub(&format!("arn:${{AWS::Partition}}:states:${{AWS::Region}}:${{AWS::AccountId}}:{what}"));
    match step {
        StepName::Preflight => vec![
            // The SCPs' preflight: SCPs enabled in the root.
            (any(), vec!["organizations:DescribeOrganization", "organizations:ListRoots"]),
            (accounts(), vec!["organizations:DescribeAccount"]),
            (targets(), vec!["organizations:ListPoliciesForTarget"]),
            // The run lock: is the execution holding the account's lock still running?
            (own(&format!("execution:{STATE_MACHINE}:*")), vec!["states:DescribeExecution"]),
        ],
        StepName::Scps => vec![
            (any(), vec!["organizations:ListPolicies", "organizations:CreatePolicy"]),
            (scps(), vec!["organizations:DescribePolicy", "organizations:UpdatePolicy"]),
            (targets(), vec!["organizations:ListPoliciesForTarget"]),
            (
                json!([scps()[0].clone(), targets()[0].clone(), targets()[1].clone(), targets()[2].clone()]),
                vec!["organizations:AttachPolicy"],
            ),
        ],
        // The policies themselves and their attachment to the logging and security accounts (the
        // accounts' own attachments are their runs'), and the organization's checks (its root
        // enables SCPs).
        StepName::Organization => vec![
            (any(), vec!["organizations:ListRoots", "organizations:ListPolicies", "organizations:CreatePolicy"]),
            (scps(), vec!["organizations:DescribePolicy", "organizations:UpdatePolicy"]),
            (accounts(), vec!["organizations:ListPoliciesForTarget"]),
            (json!([scps()[0].clone(), accounts()]), vec!["organizations:AttachPolicy"]),
        ],
        // AutoOnboard: the accounts an event is about, and each one's run, started as the CLI starts
        // one (the account's run lock first: is the execution holding it still running?).
        StepName::Join => vec![
            (any(), vec!["organizations:ListAccounts"]),
            (accounts(), vec!["organizations:DescribeAccount"]),
            (own(&format!("stateMachine:{STATE_MACHINE}")), vec!["states:StartExecution"]),
            (own(&format!("execution:{STATE_MACHINE}:*")), vec!["states:DescribeExecution"]),
        ],
        StepName::Verify => vec![
            (targets(), vec!["organizations:ListPoliciesForTarget"]),
            (scps(), vec!["organizations:DescribePolicy"]),
        ],
        StepName::Rollback => vec![
            (targets(), vec!["organizations:ListPoliciesForTarget"]),
            (
                json!([scps()[0].clone(), targets()[0].clone(), targets()[1].clone(), targets()[2].clone()]),
                vec!["organizations:DetachPolicy"],
            ),
        ],
        _ => vec![],
    }
}

/// What a step does as the management account's role [`MANAGEMENT_ROLE`], the calls AWS lets only
/// the management account make
/// (https://docs.aws.amazon.com/organizations/latest/APIReference/action-reference.html): trusted
/// access, delegated administrators, the GuardDuty administrator, centralized root access. The
/// resources are the management account's own (`${AWS::AccountId}` in its bootstrap template).
fn management_actions(step: StepName) -> Vec<(Value, Vec<&'static str>)> {
    let any = || json!("*");
    match step {
        // The GuardDuty and Access Analyzer controls' preflights: another delegated administrator;
        // the Regions the management account has enabled (an opt-in Region of the run).
        StepName::Preflight => vec![(
            any(),
            vec![
                "guardduty:ListOrganizationAdminAccounts",
                "organizations:ListDelegatedAdministrators",
                "account:ListRegions",
            ],
        )],
        // EnableOrganizationAdminAccount also needs the Organizations actions the GuardDuty guide
        // lists (https://docs.aws.amazon.com/guardduty/latest/ug/organizations_permissions.html);
        // GuardDuty calls them with the caller's permissions, and the guide grants them on "*".
        StepName::GuardDuty => vec![(any(), GUARDDUTY_ADMINISTRATOR.to_vec())],
        // Access Analyzer and Config (its organization aggregator): trusted access and the security
        // account as the service's delegated administrator.
        StepName::AccessAnalyzer | StepName::Config => vec![(
            any(),
            vec![
                "organizations:EnableAWSServiceAccess",
                "organizations:ListAWSServiceAccessForOrganization",
                "organizations:ListDelegatedAdministrators",
                "organizations:RegisterDelegatedAdministrator",
            ],
        )],
        StepName::Scps => vec![(any(), ROOT_ACCESS_ORGANIZATION.to_vec()), root_session(&[root::DELETE_TASK])],
        // Every control's organization-wide part: the GuardDuty step's, Access Analyzer's and
        // Config's delegated administrators, centralized root access.
        StepName::Organization => vec![(any(), [GUARDDUTY_ADMINISTRATOR, ROOT_ACCESS_ORGANIZATION].concat())],
        StepName::Verify => vec![(any(), vec!["iam:ListOrganizationsFeatures"])],
        StepName::Rollback => vec![root_session(&[root::PASSWORD_TASK])],
        _ => vec![],
    }
}

/// `(resource, actions)` pairs as policy statements, with unique Sids `{prefix}1`, `{prefix}2`…
fn statements_of(prefix: &str, pairs: Vec<(Value, Vec<&'static str>)>) -> Vec<Value> {
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, (resource, actions))| {
            // A statement with a condition comes as {"Resource": …, "Condition": …}.
            let mut statement = json!({"Sid": format!("{prefix}{}", i + 1), "Effect": "Allow", "Action": actions});
            match resource {
                Value::Object(fields) if fields.contains_key("Resource") => {
                    statement.as_object_mut().into_iter().for_each(|s| s.extend(fields.clone()))
                }
                resource => statement["Resource"] = resource,
            }
            statement
        })
        .collect()
}

/// The steps whose roles the management account's role trusts: those with [`management_actions`].
pub fn management_steps() -> Vec<StepName> {
    StepName::ALL.into_iter().filter(|s| !management_actions(*s).is_empty()).collect()
}

/// The pipeline: per step a queue with its dead-letter queue, a function and its role; the
/// checkpoint bucket; the state machine from its file; its log group; the opt-in trigger.
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
        if matches!(step, StepName::Rollback | StepName::Preflight | StepName::Verify | StepName::Join) {
            // Compensation walks the run's checkpoint records. Preflight and Join read the
            // account's run lock, Preflight its onboarded note, Verify its record of the run's delivery canary, which may
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
    // Organizations' membership events go to the management account's default bus in us-east-1;
    // each starts the join state machine, whose one task starts the accounts' runs (join.rs).
    resources.insert(
        "JoinStatesRole".into(),
        {
            let mut role = states_role(JOIN_STATES_ROLE, "send-join-task", json!([
                {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": getatt(&format!("{}Queue", logical(StepName::Join)), "Arn")},
                {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": getatt("PipelineKey", "Arn")},
            ]));
            role["Condition"] = json!("AutoOnboard");
            role
        },
    );
    resources.insert(
        "JoinStateMachine".into(),
        json!({
            "Type": "AWS::Serverless::StateMachine",
            "Condition": "AutoOnboard",
            "Properties": {
                "Name": JOIN_STATE_MACHINE,
                "Type": "STANDARD",
                "DefinitionUri": "../statemachines/join.asl.json",
                "DefinitionSubstitutions": {placeholder(StepName::Join): reference(&format!("{}Queue", logical(StepName::Join)))},
                "Role": getatt("JoinStatesRole", "Arn"),
                "Tracing": {"Enabled": true},
                "Logging": {"Level": "ALL", "IncludeExecutionData": false,
                            "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": getatt("StatesLogGroup", "Arn")}}]}
            }
        }),
    );
    resources.insert(
        "OnboardOnJoinRole".into(),
        json!({
            "Type": "AWS::IAM::Role",
            "Condition": "AutoOnboard",
            "Properties": {
                "RoleName": "assure-onboard-on-join",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": reference("AWS::AccountId")}}}]},
                "Policies": [{"PolicyName": "start", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "states:StartExecution", "Resource": reference("JoinStateMachine")}]}}]
            }
        }),
    );
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
                        "InputTemplate": sub("{\"event\": {\"id\": \"<id>\", \"time\": \"<time>\", \"detail\": <detail>}, \"run\": {\"runId\": \"join-<id>\", \"account\": \"${AWS::AccountId}\", \"regions\": ${RegionsJson}, \"homeRegion\": \"${AWS::Region}\", \"org\": {\"management\": \"${ManagementAccount}\", \"logging\": \"${LoggingAccount}\", \"security\": \"${SecurityAccount}\"}, \"roleName\": \"${MemberRoleName}\", \"policy\": \"hold\"}}")
                    }
                }]
            }
        }),
    );
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
            "AutoOnboard": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"], "Description": "start onboarding when an account joins the organization"}
        },
        "Conditions": {"AutoOnboard": {"Fn::Equals": [reference("AutoOnboard"), "true"]}},
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

/// The management account's bootstrap stack (`assure bootstrap`), all assure keeps there: the role
/// [`MANAGEMENT_ROLE`] for the calls only the management account may make, trusted by the pipeline
/// account's roles that make them and by nothing else; the organization's delegation policy, which
/// lets the pipeline account read the organization and manage its SCPs itself
/// (https://docs.aws.amazon.com/organizations/latest/userguide/orgs-policy-delegate.html); and the
/// rule that forwards the organization's membership events to the pipeline account for AutoOnboard.
pub fn management_template() -> Value {
    let mut statements = Vec::new();
    for step in management_steps() {
        let prefix: String = logical(step);
        statements.extend(statements_of(&prefix, management_actions(step)));
    }
    let mut trusted: Vec<Value> = management_steps()
        .into_iter()
        .map(|s| sub(&format!("arn:${{AWS::Partition}}:iam::${{PipelineAccount}}:role/{}", step_role_name(s))))
        .collect();
    // `assure onboard --plan` and `assure verify` read what the steps read.
    trusted.push(sub(&format!("arn:${{AWS::Partition}}:iam::${{PipelineAccount}}:role/{OPERATOR_ROLE}")));
    let pipeline = sub("arn:${AWS::Partition}:iam::${PipelineAccount}:root");
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "assure: what the management account keeps for the pipeline, which runs in another account (deploy with `assure bootstrap`; generated by `cargo xtask codegen`)",
        "Parameters": {
            "PipelineAccount": {"Type": "String", "AllowedPattern": "^\\d{12}$", "Description": "the account the pipeline stack runs in (not this one)"}
        },
        "Rules": {"OnlyInUsEast1": {
            "Assertions": [{"Assert": {"Fn::Equals": [reference("AWS::Region"), "us-east-1"]},
                            "AssertDescription": "the bootstrap stack forwards Organizations' events, which EventBridge receives in us-east-1 only"}]}},
        "Resources": {
            "ManagementRole": {
                "Type": "AWS::IAM::Role",
                "Metadata": skip(&[
                    ("CKV_AWS_111", "trusted access, delegated administrators and the GuardDuty administrator take no resource-level constraint"),
                    ("CKV_AWS_356", "the Organizations, GuardDuty and IAM organization actions listed support only Resource \"*\""),
                    ("CKV_AWS_109", "organizations:RegisterDelegatedAdministrator and EnableAWSServiceAccess are what only the management account may do; only the pipeline's roles that need them may assume this role"),
                ]),
                "Properties": {
                    "RoleName": MANAGEMENT_ROLE,
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"AWS": pipeline.clone()}, "Action": "sts:AssumeRole",
                        "Condition": {"ArnEquals": {"aws:PrincipalArn": trusted}}}]},
                    "Policies": [{"PolicyName": "management-only", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]
                }
            },
            // AWS's example of delegating SCP management (orgs-policy-delegate-update.html): the
            // pipeline account's own identity policies say which of its roles may do what.
            "DelegationPolicy": {
                "Type": "AWS::Organizations::ResourcePolicy",
                "Properties": {"Content": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "ReadOrganization", "Effect": "Allow", "Principal": {"AWS": pipeline.clone()}, "Resource": "*",
                     "Action": ["organizations:DescribeOrganization", "organizations:DescribeAccount", "organizations:ListAccounts",
                                "organizations:ListRoots", "organizations:ListOrganizationalUnitsForParent",
                                "organizations:ListAccountsForParent", "organizations:ListPolicies",
                                "organizations:ListPoliciesForTarget", "organizations:DescribePolicy"]},
                    {"Sid": "ManageServiceControlPolicies", "Effect": "Allow", "Principal": {"AWS": pipeline}, "Resource": "*",
                     "Action": ["organizations:CreatePolicy", "organizations:UpdatePolicy", "organizations:AttachPolicy",
                                "organizations:DetachPolicy"],
                     "Condition": {"StringLikeIfExists": {"organizations:PolicyType": ["SERVICE_CONTROL_POLICY"]}}}]}}
            },
            "ForwardMembershipEventsRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": "assure-forward-membership-events",
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": reference("AWS::AccountId")}}}]},
                    "Policies": [{"PolicyName": "forward", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "events:PutEvents",
                         "Resource": sub("arn:${AWS::Partition}:events:us-east-1:${PipelineAccount}:event-bus/default")}]}}]
                }
            },
            // What AutoOnboard starts from (https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-organizations.html);
            // the pipeline's join rule takes them when its stack has AutoOnboard.
            "ForwardMembershipEvents": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": "assure-forward-membership-events",
                    "Description": "assure: the organization's membership events, to the pipeline account (AutoOnboard)",
                    "EventPattern": {"source": ["aws.organizations"], "detail-type": ["AWS Service Event via CloudTrail"],
                                     "detail": {"eventSource": ["organizations.amazonaws.com"],
                                                "eventName": ["CreateAccountResult", "AccountJoinedOrganization"]}},
                    "Targets": [{"Id": "pipeline",
                                 "Arn": sub("arn:${AWS::Partition}:events:us-east-1:${PipelineAccount}:event-bus/default"),
                                 "RoleArn": getatt("ForwardMembershipEventsRole", "Arn")}]
                }
            }
        },
        "Outputs": {"ManagementRoleArn": {"Value": getatt("ManagementRole", "Arn")}}
    })
}

/// The role assure assumes in every member account (deploy it with a service-managed StackSet).
/// Scoped to the resources assure owns where the service allows it.
pub fn member_role_template() -> Value {
    let own = |service: &str, pattern: &str| {
        sub(&format!("arn:${{AWS::Partition}}:{service}:*:${{AWS::AccountId}}:{pattern}"))
    };
    let statements = json!([
        // Reads of what an account has. The listing calls take no resource, or (Config's
        // recorders, CloudWatch's alarms, GuardDuty's administrator and members) are authorized
        // against whatever the account holds, which assure must see whatever its names.
        {"Sid": "ReadSecuritySetup", "Effect": "Allow", "Resource": "*", "Action": [
            "cloudtrail:DescribeTrails", "cloudtrail:ListTrails", "cloudtrail:ListTags", "config:DescribeConfigurationRecorders", "config:DescribeConfigurationRecorderStatus",
            "config:DescribeDeliveryChannels", "config:DescribeDeliveryChannelStatus", "config:DescribeConfigurationAggregators", "guardduty:ListDetectors",
            "guardduty:GetAdministratorAccount", "guardduty:GetMembers", "guardduty:ListMembers", "guardduty:ListFilters",
            "guardduty:ListPublishingDestinations", "guardduty:DescribeOrganizationConfiguration", "logs:DescribeLogGroups",
            "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricStatistics", "organizations:DescribeOrganization",
            // Preflight: which Regions the account has enabled.
            "account:ListRegions",
            // Verify: the StackSet's execution roles, whose names the SCPs exempt; the root
            // user's credentials left (centralized root access).
            "iam:ListRoles", "iam:GetAccountSummary"]},
        // Reads of one resource by its name, wherever assure looks: trails homed in other accounts
        // (organization trails), buckets of the logging account.
        {"Sid": "ReadNamedResources", "Effect": "Allow", "Action": ["cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors", "cloudtrail:GetInsightSelectors", "cloudtrail:GetTrail"],
         "Resource": sub("arn:${AWS::Partition}:cloudtrail:*:*:trail/*")},
        {"Sid": "ReadBuckets", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:s3:::*"), "Action": [
            "s3:GetBucketLogging", "s3:GetBucketOwnershipControls", "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock",
            "s3:GetBucketVersioning", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:ListBucket"]},
        {"Sid": "ReadOwnResources", "Effect": "Allow", "Resource": [
            own("guardduty", "detector/*"), own("access-analyzer", "analyzer/*"), own("ssm", "document/*"),
            own("logs", "log-group:*"), own("sns", "*"), sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"),
            own("kms", "key/*"), own("firehose", "deliverystream/*"), own("events", "rule/*")], "Action": [
            "guardduty:GetDetector", "access-analyzer:GetAnalyzer", "ssm:GetDocument", "logs:DescribeMetricFilters",
            "sns:GetTopicAttributes", "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
            "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "firehose:DescribeDeliveryStream",
            "events:DescribeRule", "events:ListTargetsByRule", "guardduty:GetFilter"]},
        {"Sid": "AssureTrail", "Effect": "Allow", "Resource": own("cloudtrail", &format!("trail/{}", names::TRAIL)),
         "Action": ["cloudtrail:UpdateTrail"]},
        // The account's own trails retired (recorded whole, then deleted) or stopped, and recreated
        // or restarted by rollback.
        {"Sid": "OwnTrails", "Effect": "Allow", "Resource": own("cloudtrail", "trail/*"), "Action": [
            "cloudtrail:StopLogging", "cloudtrail:StartLogging", "cloudtrail:DeleteTrail", "cloudtrail:CreateTrail",
            "cloudtrail:PutEventSelectors", "cloudtrail:PutInsightSelectors", "cloudtrail:AddTags"]},
        {"Sid": "RemoveAlarms", "Effect": "Allow", "Resource": [
            own("cloudwatch", &format!("alarm:{}*", names::ALARM_PREFIX)), own("sns", names::ALARM_TOPIC),
            own("logs", &format!("log-group:{}*", names::TRAIL_LOG_GROUP))],
         "Action": ["cloudwatch:DeleteAlarms", "sns:DeleteTopic", "logs:DeleteMetricFilter"]},
        {"Sid": "TrailLogGroup", "Effect": "Allow", "Resource": own("logs", &format!("log-group:{}*", names::TRAIL_LOG_GROUP)),
         "Action": ["logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:PutMetricFilter"]},
        {"Sid": "Alarms", "Effect": "Allow", "Resource": own("cloudwatch", &format!("alarm:{}*", names::ALARM_PREFIX)), "Action": ["cloudwatch:PutMetricAlarm"]},
        {"Sid": "AlarmTopic", "Effect": "Allow", "Resource": own("sns", names::ALARM_TOPIC),
         "Action": ["sns:CreateTopic", "sns:SetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic"]},
        {"Sid": "AssureRoles", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/assure-*"),
         "Action": ["iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PassRole", "iam:DeleteRolePolicy", "iam:DeleteRole",
                    // A role of assure's name made before assure is taken over whole, and put
                    // back as it was by rollback.
                    "iam:DeleteRolePermissionsBoundary", "iam:DetachRolePolicy",
                    "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy"]},
        {"Sid": "ServiceLinkedRoles", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*"),
         "Action": ["iam:CreateServiceLinkedRole"],
         "Condition": {"StringEquals": {"iam:AWSServiceName": ["config.amazonaws.com", "access-analyzer.amazonaws.com", "guardduty.amazonaws.com"]}}},
        // Rollback restores an account's own Config recorder and recreates its own trails, with the
        // roles they had (a trail's CloudWatch Logs role).
        {"Sid": "RestoreOwnSetup", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"),
         "Action": ["iam:PassRole"], "Condition": {"StringEquals": {"iam:PassedToService": ["config.amazonaws.com", "cloudtrail.amazonaws.com"]}}},
        {"Sid": "PassServiceLinkedRoles", "Effect": "Allow", "Resource": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*"),
         "Action": ["iam:PassRole"]},
        {"Sid": "Config", "Effect": "Allow", "Resource": "*", "Action": [
            "config:PutConfigurationRecorder", "config:PutDeliveryChannel", "config:StartConfigurationRecorder", "config:PutConfigurationAggregator",
            "config:StopConfigurationRecorder", "config:DeleteDeliveryChannel", "config:DeleteConfigurationRecorder"]},
        // Config checks an organization aggregator's delegated administrator with the caller's own
        // permission to list them (API_PutConfigurationAggregator, OrganizationAccessDeniedException).
        {"Sid": "ConfigOrganizationAggregator", "Effect": "Allow", "Resource": "*", "Action": ["organizations:ListDelegatedAdministrators"]},
        {"Sid": "GuardDuty", "Effect": "Allow", "Resource": "*", "Action": [
            "guardduty:CreateDetector", "guardduty:CreateMembers", "guardduty:DisassociateFromAdministratorAccount",
            "guardduty:DisassociateMembers", "guardduty:UpdateOrganizationConfiguration", "guardduty:CreatePublishingDestination",
            "guardduty:DeleteMembers"]},
        {"Sid": "GuardDutyDetector", "Effect": "Allow", "Resource": own("guardduty", "detector/*"), "Action": ["guardduty:UpdateDetector", "guardduty:UpdateFilter"]},
        {"Sid": "AccessAnalyzer", "Effect": "Allow", "Resource": own("access-analyzer", &format!("analyzer/{}", names::ANALYZER)),
         "Action": ["access-analyzer:CreateAnalyzer"]},
        {"Sid": "FindingsDelivery", "Effect": "Allow", "Resource": [
            own("firehose", &format!("deliverystream/{}", names::FINDINGS)), own("events", &format!("rule/{}", names::FINDINGS))],
         "Action": ["firehose:CreateDeliveryStream", "firehose:UpdateDestination", "events:PutRule", "events:PutTargets"]},
        {"Sid": "SessionPreferences", "Effect": "Allow", "Resource": own("ssm", "document/SSM-SessionManagerRunShell"),
         "Action": ["ssm:CreateDocument", "ssm:UpdateDocument", "ssm:UpdateDocumentDefaultVersion", "ssm:DeleteDocument"]},
        {"Sid": "LoggingBucket", "Effect": "Allow", "Resource": [
            sub("arn:${AWS::Partition}:s3:::assure-logs-${AWS::AccountId}-*"), sub("arn:${AWS::Partition}:s3:::assure-access-logs-${AWS::AccountId}-*")],
         "Action": ["s3:CreateBucket", "s3:PutBucketPolicy", "s3:PutBucketLogging", "s3:PutBucketOwnershipControls",
                    "s3:PutBucketPublicAccessBlock", "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration",
                    "s3:PutLifecycleConfiguration"]},
        {"Sid": "LoggingKey", "Effect": "Allow", "Resource": "*", "Action": ["kms:CreateKey"],
         "Condition": {"StringEquals": {"aws:RequestTag/assure:managed": "true"}}},
        // Tags given to CreateKey need kms:TagResource on every key of the account and Region
        // (https://docs.aws.amazon.com/kms/latest/developerguide/tag-permissions.html).
        {"Sid": "LoggingKeyTags", "Effect": "Allow", "Resource": own("kms", "key/*"), "Action": ["kms:TagResource"],
         "Condition": {"StringEquals": {"aws:RequestTag/assure:managed": "true"}}},
        // The key's own actions are granted by its key policy (controls::logging_bucket::key_policy);
        // CreateAlias needs the alias and the key (https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html).
        {"Sid": "LoggingKeyAlias", "Effect": "Allow",
         "Resource": [sub(&format!("arn:${{AWS::Partition}}:kms:*:${{AWS::AccountId}}:{}", assure_contract::RunInput::LOGGING_KEY_ALIAS)),
                      sub(&format!("arn:${{AWS::Partition}}:kms:*:${{AWS::AccountId}}:{}", names::ALARM_KEY_ALIAS)),
                      own("kms", "key/*")],
         "Action": ["kms:CreateAlias"]},
        // Proof of delivery (pipeline::deliveries): the canaries, in the onboarded account...
        {"Sid": "DeliveryCanaries", "Effect": "Allow", "Resource": "*",
         // CreateSampleFindings takes no resource-level permission (Service Authorization Reference).
         "Action": ["config:DeliverConfigSnapshot", "guardduty:CreateSampleFindings"]},
        // A session on an instance tagged assure:canary, started and ended at once.
        {"Sid": "DeliveryCanarySessionTargets", "Effect": "Allow",
         "Resource": [own("ec2", "instance/*"), own("ssm", "managed-instance/*")],
         "Action": ["ssm:StartSession"],
         "Condition": {"StringLike": {"ssm:resourceTag/assure:canary": "*"}}},
        {"Sid": "DeliveryCanarySessionDocument", "Effect": "Allow",
         "Resource": sub("arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:document/SSM-SessionManagerRunShell"),
         "Action": ["ssm:StartSession"]},
        {"Sid": "DeliveryCanarySessions", "Effect": "Allow", "Resource": own("ssm", "session/*"), "Action": ["ssm:TerminateSession"]},
        // The account's own session data key (the preferences' kmsKeyId, which onboarding keeps):
        // the client asks KMS for the session's data key, with the session in its encryption
        // context (Session Manager "Sample IAM policies": kms:GenerateDataKey for the user).
        {"Sid": "DeliveryCanarySessionKey", "Effect": "Allow", "Resource": own("kms", "key/*"),
         "Action": ["kms:GenerateDataKey"],
         "Condition": {"Null": {"kms:EncryptionContext:aws:ssm:SessionId": "false"}}},
        {"Sid": "DeliveryCanarySessionReads", "Effect": "Allow", "Resource": "*",
         "Action": ["ssm:DescribeInstanceInformation", "ssm:DescribeSessions"]},
        {"Sid": "DeliveryCanaryFindings", "Effect": "Allow", "Resource": own("guardduty", "detector/*"),
         "Action": ["guardduty:DescribePublishingDestination"]},
        {"Sid": "DeliveryCanaryAlarm", "Effect": "Allow",
         "Resource": own("cloudwatch", &format!("alarm:{}*", names::ALARM_PREFIX)),
         "Action": ["cloudwatch:SetAlarmState", "cloudwatch:DescribeAlarmHistory"]},
        // ...and where they arrive: the logging bucket's objects, read back through S3 with the
        // logging key (whose policy lets the account's principals use it, kms:ViaService S3).
        {"Sid": "DeliveredLogs", "Effect": "Allow",
         "Resource": sub("arn:${AWS::Partition}:s3:::assure-logs-${AWS::AccountId}-*/*"), "Action": ["s3:GetObject"]},
        {"Sid": "DeliveredLogsKey", "Effect": "Allow", "Resource": own("kms", "key/*"), "Action": ["kms:Decrypt"],
         "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}},
        // Rollback removes the alarm topic's key alias (the key's deletion its key policy grants).
        {"Sid": "RemoveAlarmKeyAlias", "Effect": "Allow",
         "Resource": [sub(&format!("arn:${{AWS::Partition}}:kms:*:${{AWS::AccountId}}:{}", names::ALARM_KEY_ALIAS)),
                      own("kms", "key/*")],
         "Action": ["kms:DeleteAlias"]}
    ]);
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "assure: the role assure assumes in a member account (deploy with a service-managed StackSet; generated by `cargo xtask codegen`)",
        "Parameters": {
            "PipelineAccount": {"Type": "String", "AllowedPattern": "^\\d{12}$", "Description": "the account the pipeline runs in"},
            "RoleName": {"Type": "String", "Default": DEFAULT_ROLE_NAME, "AllowedPattern": "^[\\w+=,.@-]{1,64}$"}
        },
        "Resources": {
            "ExecutionRole": {
                "Type": "AWS::IAM::Role",
                "Metadata": skip(&[
                    ("CKV_AWS_111", "Config, GuardDuty and the KMS key's creation take no resource-level constraint; the rest is scoped to assure's own resources"),
                    ("CKV_AWS_109", "iam:PutRolePolicy is limited to assure-* roles; the logging key's policy grants what the role does to the key"),
                    ("CKV_AWS_110", "iam:PassRole is limited to assure-* and service-linked roles"),
                    ("CKV_AWS_356", "the Config, GuardDuty and read actions listed support only Resource \"*\""),
                    ("CKV_AWS_108", "s3:GetBucket* reads bucket settings, not objects; verify needs them")
                ]),
                "Properties": {
                    "RoleName": reference("RoleName"),
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"AWS": sub("arn:${AWS::Partition}:iam::${PipelineAccount}:root")},
                        "Action": "sts:AssumeRole",
                        "Condition": {"ArnLike": {"aws:PrincipalArn": [
                            sub("arn:${AWS::Partition}:iam::${PipelineAccount}:role/assure-step-*"),
                            sub(&format!("arn:${{AWS::Partition}}:iam::${{PipelineAccount}}:role/{OPERATOR_ROLE}"))]}}}]},
                    "Policies": [{"PolicyName": "assure", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}]
                }
            }
        },
        "Outputs": {"RoleArn": {"Value": getatt("ExecutionRole", "Arn")}}
    })
}

/// A role of the pipeline template, its intrinsic functions resolved for one deployment: what the
/// local deployment creates, so local runs use exactly the permissions a real one has.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRole {
    pub name: String,
    pub trust: Value,
    /// (policy name, document)
    pub policies: Vec<(String, Value)>,
}

/// The values a deployment gives the template's references.
pub struct Deployed<'a> {
    pub account: &'a str,
    pub region: &'a str,
    pub member_role: &'a str,
    pub checkpoint_bucket: &'a str,
    /// The pipeline key's ARN (`PipelineKey`'s Ref and Arn alike).
    pub pipeline_key: &'a str,
    pub security_account: &'a str,
    pub management_account: &'a str,
}

impl Deployed<'_> {
    fn get_att(&self, resource: &str) -> Option<String> {
        let (a, r) = (self.account, self.region);
        if resource == "CheckpointBucket" {
            return Some(format!("arn:aws:s3:::{}", self.checkpoint_bucket));
        }
        if resource == "PipelineKey" {
            return Some(self.pipeline_key.to_owned());
        }
        if resource == "StatesRole" {
            return Some(format!("arn:aws:iam::{a}:role/assure-states"));
        }
        for step in StepName::ALL {
            let id = logical(step);
            if resource == format!("{id}Queue") {
                return Some(format!("arn:aws:sqs:{r}:{a}:{}", queue_name(step)));
            }
            if resource == format!("{id}DeadLetterQueue") {
                return Some(format!("arn:aws:sqs:{r}:{a}:{}-dlq", queue_name(step)));
            }
        }
        None
    }

    fn reference(&self, name: &str) -> Option<String> {
        Some(match name {
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => self.region.into(),
            "AWS::AccountId" => self.account.into(),
            "MemberRoleName" => self.member_role.into(),
            "CheckpointBucket" => self.checkpoint_bucket.into(),
            "SecurityAccount" => self.security_account.into(),
            "ManagementAccount" => self.management_account.into(),
            "PipelineKey" => self.pipeline_key.into(),
            "StateMachine" => format!("arn:aws:states:{}:{}:stateMachine:{STATE_MACHINE}", self.region, self.account),
            _ => return None,
        })
    }

    /// The pipeline key's policy, resolved.
    pub fn pipeline_key_policy(&self) -> Result<Value, String> {
        self.resolve(&pipeline_template()["Resources"]["PipelineKey"]["Properties"]["KeyPolicy"])
    }

    /// Resolves Fn::Sub, Ref and Fn::GetAtt …Arn; fails naming what it cannot resolve.
    pub fn resolve(&self, v: &Value) -> Result<Value, String> {
        resolve_with(v, &|name| self.reference(name), &|res| self.get_att(res))
    }

    /// The member role as the template makes it in `member_account` for this pipeline.
    pub fn member_role(&self, member_account: &str) -> Result<TemplateRole, String> {
        let refs = |name: &str| match name {
            "AWS::AccountId" => Some(member_account.to_owned()),
            "PipelineAccount" => Some(self.account.to_owned()),
            "RoleName" => Some(self.member_role.to_owned()),
            other => self.reference(other),
        };
        let template = member_role_template();
        let props = &template["Resources"]["ExecutionRole"]["Properties"];
        let resolve = |v: &Value| resolve_with(v, &refs, &|_| None);
        let policies = props["Policies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| Ok((p["PolicyName"].as_str().unwrap_or_default().to_owned(), resolve(&p["PolicyDocument"])?)))
            .collect::<Result<_, String>>()?;
        Ok(TemplateRole {
            name: self.member_role.to_owned(),
            trust: resolve(&props["AssumeRolePolicyDocument"])?,
            policies,
        })
    }

    /// Every role of the pipeline template that a deployment without `AutoOnboard` has: the step
    /// roles, the operator role and the state machines' roles.
    pub fn pipeline_roles(&self) -> Result<Vec<TemplateRole>, String> {
        roles_of(&pipeline_template(), &|name| self.reference(name), &|res| self.get_att(res))
    }

    /// The roles of the management account's bootstrap stack for this pipeline.
    pub fn management_roles(&self) -> Result<Vec<TemplateRole>, String> {
        let refs = |name: &str| match name {
            "AWS::AccountId" => Some(self.management_account.to_owned()),
            "PipelineAccount" => Some(self.account.to_owned()),
            other => self.reference(other),
        };
        roles_of(&management_template(), &refs, &|_| None)
    }
}

/// The roles `template` makes whatever its parameters (those without a condition), resolved.
fn roles_of(
    template: &Value,
    refs: &dyn Fn(&str) -> Option<String>,
    atts: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<TemplateRole>, String> {
    let resolve = |v: &Value| resolve_with(v, refs, atts);
    {
        let mut out = Vec::new();
        for res in template["Resources"].as_object().into_iter().flat_map(|m| m.values()) {
            if res["Type"] != "AWS::IAM::Role" || res.get("Condition").is_some() {
                continue;
            }
            let props = &res["Properties"];
            let name = props["RoleName"].as_str().unwrap_or_default();
            let policies = props["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| Ok((p["PolicyName"].as_str().unwrap_or_default().to_owned(), resolve(&p["PolicyDocument"])?)))
                .collect::<Result<_, String>>()?;
            out.push(TemplateRole {
                name: name.to_owned(),
                trust: resolve(&props["AssumeRolePolicyDocument"])?,
                policies,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// The stack `assure deploy` makes first: the bucket the pipeline's artifacts (the step package, the
/// state machines' definitions, the pipeline template, too large to pass inline) are uploaded to
/// before the pipeline stack is made or updated, as `aws cloudformation package` and `sam deploy`'s
/// managed bucket do. It holds no data of a run.
pub fn artifacts_template() -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "assure: the bucket assure deploy uploads the pipeline's package, definitions and template to",
        "Resources": {
            "ArtifactsBucket": {
                "Type": "AWS::S3::Bucket",
                "Metadata": skip(&[
                    ("CKV_AWS_18", "holds build artifacts written by the deployer; CloudTrail records who wrote them"),
                    ("CKV_AWS_145", "SSE-S3: Lambda and CloudFormation read these objects as the deployer, who needs no key grant; nothing secret is uploaded")]),
                "Properties": {
                    "BucketName": sub("assure-artifacts-${AWS::AccountId}-${AWS::Region}"),
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
                        "ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
                    "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true},
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    "LifecycleConfiguration": {"Rules": [{"Id": "OldArtifacts", "Status": "Enabled",
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}
                }
            },
            "ArtifactsBucketPolicy": tls_only("ArtifactsBucket")
        },
        "Outputs": {"BucketName": {"Value": reference("ArtifactsBucket")}}
    })
}

/// The generated files: (path relative to the repository root, contents).
pub fn generated_files() -> Vec<(&'static str, String)> {
    let pretty = |v: Value| serde_json::to_string_pretty(&v).expect("JSON") + "\n";
    vec![
        ("infra/assure.template.json", pretty(pipeline_template())),
        ("infra/member-role.template.json", pretty(member_role_template())),
        ("infra/management.template.json", pretty(management_template())),
        ("infra/artifacts.template.json", pretty(artifacts_template())),
    ]
}

/// Fn::Sub, Ref and Fn::GetAtt …Arn resolved by `refs` and `atts`; fails naming what they cannot.
fn resolve_with(
    v: &Value,
    refs: &dyn Fn(&str) -> Option<String>,
    atts: &dyn Fn(&str) -> Option<String>,
) -> Result<Value, String> {
    Ok(match v {
        Value::Object(o) if o.len() == 1 && o.contains_key("Ref") => {
            let name = o["Ref"].as_str().unwrap_or_default();
            Value::String(refs(name).ok_or_else(|| format!("unresolved Ref {name}"))?)
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("Fn::GetAtt") => {
            let res = o["Fn::GetAtt"][0].as_str().unwrap_or_default();
            Value::String(atts(res).ok_or_else(|| format!("unresolved Fn::GetAtt {res}"))?)
        }
        Value::Object(o) if o.len() == 1 && o.contains_key("Fn::Sub") => {
            let text = o["Fn::Sub"].as_str().unwrap_or_default();
            let mut out = String::new();
            let mut rest = text;
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find('}').ok_or_else(|| format!("unclosed ${{ in {text}"))? + start;
                let name = &rest[start + 2..end];
                let value = match name.strip_suffix(".Arn") {
                    Some(res) => atts(res),
                    None => refs(name),
                };
                out.push_str(&value.ok_or_else(|| format!("unresolved ${{{name}}} in {text}"))?);
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Object(o) => Value::Object(
            o.iter().map(|(k, v)| Ok((k.clone(), resolve_with(v, refs, atts)?))).collect::<Result<_, String>>()?,
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| resolve_with(v, refs, atts)).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}
