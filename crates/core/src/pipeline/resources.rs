//! The pipeline's own resources, by name: the state machines and their definitions, the step
//! queues, roles and checkpoint bucket, the pipeline key. One place, so the deployment, the
//! generated templates, the worker and the runs cannot drift apart.

use assure_contract::StepName;

use crate::aws::Aws;

/// The onboarding state machine's definition, with `${…QueueUrl}` placeholders.
pub const ONBOARDING_ASL: &str = include_str!("../../../../statemachines/onboarding.asl.json");

/// The state machine's name.
pub const STATE_MACHINE: &str = "assure-onboarding";

/// The bulk state machine: a Map over accounts, each a child execution of the onboarding one.
pub const BULK_STATE_MACHINE: &str = "assure-bulk";

/// Its definition, with the `${OnboardingStateMachineArn}` placeholder.
pub const BULK_ASL: &str = include_str!("../../../../statemachines/bulk.asl.json");

/// The join state machine (AutoOnboard): one execution per Organizations membership event, whose
/// one task starts the runs of the accounts that joined.
pub const JOIN_STATE_MACHINE: &str = "assure-join";

/// Its definition, with the `${JoinQueueUrl}` placeholder.
pub const JOIN_ASL: &str = include_str!("../../../../statemachines/join.asl.json");

/// The role the join state machine runs as: it sends the join task's message.
pub const JOIN_STATES_ROLE: &str = "assure-join-states";

/// The fleet's scheduled verify (`core::pipeline::fleet`): the watch state machine, whose one task
/// checks every onboarded account; the role it runs as; the scheduled rule that starts it and the
/// role the rule starts it as.
pub const WATCH_STATE_MACHINE: &str = "assure-watch";
pub const WATCH_STATES_ROLE: &str = "assure-watch-states";
pub const WATCH_RULE: &str = "assure-watch";
pub const WATCH_SCHEDULE_ROLE: &str = "assure-watch-on-schedule";

/// Drift told to people (the configuration's `notifications`, whom the alarms notify too): the
/// rule on the pipeline account's default bus that matches the watch's drift events, and the topic
/// it publishes each one's summary to, which the configured endpoint is subscribed to.
pub const DRIFT_RULE: &str = "assure-drift";
pub const DRIFT_TOPIC: &str = "assure-drift";

/// Its definition, with the `${WatchQueueUrl}` placeholder.
pub const WATCH_ASL: &str = include_str!("../../../../statemachines/watch.asl.json");

/// The role Step Functions assumes to send the task messages.
pub const STATES_ROLE: &str = "assure-states";

/// The role the bulk state machine runs as: it starts and watches onboarding executions.
pub const BULK_STATES_ROLE: &str = "assure-bulk-states";

/// The checkpoint bucket of the pipeline in `account` and `region`.
pub fn checkpoint_bucket(account: &str, region: &str) -> String {
    format!("assure-checkpoints-{account}-{region}")
}

/// The placeholder name of a step's queue URL in the ASL: `${PreflightQueueUrl}` and so on.
pub fn placeholder(step: StepName) -> String {
    let camel: String = step
        .as_str()
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    format!("{camel}QueueUrl")
}

/// The role the operator's commands reach member accounts through.
pub const OPERATOR_ROLE: &str = "assure-operator";

/// The alias of the pipeline's KMS key (queues, checkpoints, the state machine's logs): how a
/// deployment finds the key it made.
pub const PIPELINE_KEY_ALIAS: &str = "alias/assure-pipeline";

/// The role name of a step's Lambda function.
pub fn step_role_name(step: StepName) -> String {
    step.function_name()
}

/// The queue of a step: `assure-STEP`.
pub fn queue_name(step: StepName) -> String {
    format!("assure-{}", step.as_str())
}

/// The state machine's ARN in the pipeline account.
pub fn state_machine_arn(aws: &Aws) -> String {
    let p = aws.pipeline();
    format!("arn:aws:states:{}:{}:stateMachine:{STATE_MACHINE}", p.region, p.account)
}

/// The execution ARN of a run: executions are named by run id.
pub fn execution_arn(aws: &Aws, run_id: &str) -> String {
    let p = aws.pipeline();
    format!("arn:aws:states:{}:{}:execution:{STATE_MACHINE}:{run_id}", p.region, p.account)
}
