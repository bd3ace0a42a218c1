//! Runs: start an onboarding execution, retry a run as a new execution, list runs, and follow a
//! run's executions and their history.

use std::collections::HashMap;
use std::time::Duration;

use assure_contract::{RunInput, StepError, StepName, StepOutput};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use serde::Serialize;
use serde_json::Value;

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::pipeline::checkpoint::Store;
use crate::pipeline::lock;
use crate::pipeline::resources::{execution_arn, state_machine_arn, STATE_MACHINE};

/// Starts the run's execution, named by its run id: starting the same run twice finds the first
/// execution instead of creating a second one. `preflight`: the preflight step, run by the caller
/// before it starts the run ([`crate::pipeline::preflight::run`]); it is recorded under the step's
/// checkpoint, so the execution's preflight task finds it done with the same input, as a retried
/// run does, instead of asking the account and the organization the same questions again.
pub async fn start(aws: &Aws, run: &RunInput, preflight: Option<StepOutput>) -> Result<String, StepError> {
    let input = serde_json::json!({"run": run}).to_string();
    // One run per account at a time: the lock names the execution before it starts, so a second
    // run of the account started a moment later is refused before it starts.
    let holder = lock::Holder::Execution { arn: execution_arn(aws, run.run_id.as_str()) };
    lock::acquire(aws, &lock::Lock::new(&run.account, run.run_id.as_str(), holder)).await?;
    if let Some(out) = preflight {
        Store::new(aws).record_done(run, out, &format!("cli:{}", crate::pipeline::checkpoint::worker_id())).await?;
    }
    let sfn = aws.pipeline().sfn();
    let res = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn(aws))
        .name(run.run_id.as_str())
        .input(input)
        .send()
        .await;
    match res {
        Ok(out) => Ok(out.execution_arn().to_owned()),
        Err(e) if error_code(&e) == Some("ExecutionAlreadyExists") => Ok(execution_arn(aws, run.run_id.as_str())),
        Err(e) if error_code(&e) == Some("StateMachineDoesNotExist") => Err(StepError::invalid_input(format!(
            "the state machine {STATE_MACHINE} does not exist in account {} region {}: run `assure deploy` first",
            aws.pipeline().account,
            aws.pipeline().region
        ))),
        Err(e) => Err(e).aws("states:StartExecution"),
    }
}

/// Resumes a failed run: a new execution of the same run (same run id and input), named
/// `RUN-retry-N`. Steps already completed for the same input only re-check, read-only, through
/// their checkpoints; the failed step and the steps after it act.
pub async fn retry(aws: &Aws, run_id: &str) -> Result<String, StepError> {
    let sfn = aws.pipeline().sfn();
    let first = execution_arn(aws, run_id);
    let original = match sfn.describe_execution().execution_arn(&first).send().await {
        Ok(d) => d,
        Err(e) if error_code(&e) == Some("ExecutionDoesNotExist") => {
            return Err(StepError::invalid_input(format!("run {run_id}: no such run")))
        }
        Err(e) => return Err(e).aws("states:DescribeExecution"),
    };
    let input = original.input().unwrap_or("{}").to_owned();
    // The run's executions, newest last: the first and every retry.
    let executions = executions(aws, run_id).await?;
    if let Some(last) = executions.last() {
        match last.status.as_str() {
            "RUNNING" => {
                return Err(StepError::invalid_input(format!(
                    "run {run_id} is still running (execution {})",
                    last.name
                )))
            }
            "SUCCEEDED" => {
                return Err(StepError::invalid_input(format!(
                    "run {run_id} succeeded (execution {}): nothing to retry",
                    last.name
                )))
            }
            _ => {}
        }
    }
    let name = format!("{run_id}-retry-{}", executions.len());
    let run: RunInput = serde_json::from_str::<Value>(&input)
        .ok()
        .and_then(|v| serde_json::from_value(v["run"].clone()).ok())
        .ok_or_else(|| StepError::internal(format!("run {run_id}: the execution's input is not a run")))?;
    let holder = lock::Holder::Execution { arn: execution_arn(aws, &name) };
    lock::acquire(aws, &lock::Lock::new(&run.account, run_id, holder)).await?;
    let out = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn(aws))
        .name(&name)
        .input(input)
        .send()
        .await
        .aws("states:StartExecution")?;
    Ok(out.execution_arn().to_owned())
}

/// One run as the list shows it: its executions folded together.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    /// The status of the run's latest execution.
    pub status: String,
    pub executions: usize,
    pub started: String,
    pub account: Option<String>,
}

/// The input a run's first execution started with: its `RunInput`. An unknown run is
/// `Assure.InvalidInput`.
pub async fn input_of(aws: &Aws, run_id: &str) -> Result<assure_contract::RunInput, StepError> {
    let arn = crate::pipeline::resources::execution_arn(aws, run_id);
    let d = aws.pipeline().sfn().describe_execution().execution_arn(&arn).send().await.map_err(|e| {
        match crate::aws::error_code(&e) {
            Some("ExecutionDoesNotExist") => StepError::invalid_input(format!("run {run_id}: no such run")),
            _ => crate::aws::classify(&e, "states:DescribeExecution"),
        }
    })?;
    let doc: serde_json::Value = serde_json::from_str(d.input().unwrap_or("{}"))
        .map_err(|e| StepError::internal(format!("run {run_id}: its execution's input: {e}")))?;
    serde_json::from_value(doc["run"].clone())
        .map_err(|e| StepError::internal(format!("run {run_id}: its execution's input is not a run: {e}")))
}

/// Every run of the pipeline, newest first; `account` and `status` filter.
pub async fn list(aws: &Aws, account: Option<&str>, status: Option<&str>) -> Result<Vec<RunSummary>, StepError> {
    let sfn = aws.pipeline().sfn();
    let mut by_run: std::collections::BTreeMap<String, Vec<(i64, String, String, String)>> = Default::default();
    let mut pages = sfn.list_executions().state_machine_arn(state_machine_arn(aws)).into_paginator().send();
    while let Some(page) = pages.next().await {
        for e in page.aws("states:ListExecutions")?.executions() {
            let run = e.name().split("-retry-").next().unwrap_or(e.name()).to_owned();
            let started = e.start_date().fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default();
            by_run.entry(run).or_default().push((
                e.start_date().secs(),
                e.execution_arn().to_owned(),
                e.status().as_str().to_owned(),
                started,
            ));
        }
    }
    let mut out = Vec::new();
    for (run, mut execs) in by_run {
        execs.sort();
        let first = execs.first().cloned().unwrap_or_default();
        let last = execs.last().cloned().unwrap_or_default();
        if status.is_some_and(|s| !s.eq_ignore_ascii_case(&last.2)) {
            continue;
        }
        // The account is in the run's input (one read per run).
        let input = sfn.describe_execution().execution_arn(&first.1).send().await.aws("states:DescribeExecution")?;
        let acct = serde_json::from_str::<Value>(input.input().unwrap_or("{}"))
            .ok()
            .and_then(|v| v["run"]["account"].as_str().map(str::to_owned));
        if account.is_some_and(|a| acct.as_deref() != Some(a)) {
            continue;
        }
        out.push(RunSummary { run_id: run, status: last.2, executions: execs.len(), started: first.3, account: acct });
    }
    out.sort_by(|a, b| b.started.cmp(&a.started));
    Ok(out)
}

/// One thing that happened in a run, for people and for scripts.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Progress {
    StepStarted { step: String, region: String },
    StepSucceeded { step: String, region: String, summary: String, changes: usize },
    StepFailed { step: String, region: String, error: String, cause: String },
    StepTimedOut { step: String, region: String },
}

/// The end of a run.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finished {
    pub execution_arn: String,
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub outputs: Vec<StepOutput>,
    pub task_states: Vec<String>,
    pub seconds: f64,
}

/// Follows an execution until it ends, calling `on` for each step event, polling the history
/// every `poll` (bounded by `deadline`).
pub async fn watch(
    aws: &Aws,
    execution_arn: &str,
    poll: Duration,
    deadline: Duration,
    mut on: impl FnMut(&Progress),
) -> Result<Finished, StepError> {
    let sfn = aws.pipeline().sfn();
    let started = std::time::Instant::now();
    let mut seen = 0i64;
    let mut tasks: HashMap<i64, (String, String)> = HashMap::new();
    let mut outputs = Vec::new();
    let mut task_states = Vec::new();
    let mut read_new = async |seen: &mut i64, on: &mut dyn FnMut(&Progress)| -> Result<(), StepError> {
        for ev in history_after(aws, execution_arn, *seen).await? {
            *seen = ev.id();
            if let Some(p) = progress(&ev, &mut tasks, &mut outputs, &mut task_states) {
                on(&p);
            }
        }
        Ok(())
    };
    loop {
        read_new(&mut seen, &mut on).await?;
        let d = sfn.describe_execution().execution_arn(execution_arn).send().await.aws("states:DescribeExecution")?;
        if d.status() != &ExecutionStatus::Running {
            // The history may have grown between the two calls.
            read_new(&mut seen, &mut on).await?;
            return Ok(Finished {
                execution_arn: execution_arn.to_owned(),
                status: d.status().as_str().to_owned(),
                error: d.error().map(str::to_owned),
                cause: d.cause().map(str::to_owned),
                outputs,
                task_states,
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        if started.elapsed() > deadline {
            return Err(StepError::new(
                assure_contract::ErrorName::Retryable,
                format!("the run is still running after {}s; follow it with `assure runs show`", deadline.as_secs()),
            ));
        }
        tokio::time::sleep(poll).await;
    }
}

/// The events after the event `after` (0 for every event), oldest first. They are read newest first,
/// page by page, up to the first event already seen: a poll of a long run reads what is new, not the
/// whole history again. A poll finds a handful of new events, each of which may carry up to 256 KiB
/// of a state's input or output, so a page is 25 events rather than the default 100.
pub async fn history_after(aws: &Aws, execution_arn: &str, after: i64) -> Result<Vec<HistoryEvent>, StepError> {
    let sfn = aws.pipeline().sfn();
    let mut out = Vec::new();
    let mut pages = sfn
        .get_execution_history()
        .execution_arn(execution_arn)
        .reverse_order(true)
        .max_results(25)
        .into_paginator()
        .send();
    // Ids fall page after page. The documentation promises only newest first, with an opaque
    // token: an event a page repeats (events were added meanwhile) is skipped, not reported twice.
    let mut below = i64::MAX;
    'pages: while let Some(page) = pages.next().await {
        for ev in page.aws("states:GetExecutionHistory")?.events() {
            if ev.id() <= after {
                break 'pages;
            }
            if ev.id() < below {
                below = ev.id();
                out.push(ev.clone());
            }
        }
    }
    out.reverse();
    Ok(out)
}

/// The whole execution history, oldest first.
pub async fn history(aws: &Aws, execution_arn: &str) -> Result<Vec<HistoryEvent>, StepError> {
    let sfn = aws.pipeline().sfn();
    let mut out = Vec::new();
    let mut pages = sfn.get_execution_history().execution_arn(execution_arn).into_paginator().send();
    while let Some(page) = pages.next().await {
        out.extend(page.aws("states:GetExecutionHistory")?.events().iter().cloned());
    }
    Ok(out)
}

fn progress(
    ev: &HistoryEvent,
    tasks: &mut HashMap<i64, (String, String)>,
    outputs: &mut Vec<StepOutput>,
    task_states: &mut Vec<String>,
) -> Option<Progress> {
    let parent = tasks.get(&ev.previous_event_id()).cloned();
    match ev.r#type() {
        HistoryEventType::TaskStateEntered => {
            if let Some(name) = ev.state_entered_event_details().map(|d| d.name()) {
                task_states.push(name.to_owned());
            }
            None
        }
        HistoryEventType::TaskScheduled => {
            let (step, region) = task_target(ev)?;
            tasks.insert(ev.id(), (step.clone(), region.clone()));
            Some(Progress::StepStarted { step, region })
        }
        HistoryEventType::TaskStarted | HistoryEventType::TaskSubmitted => {
            if let Some(p) = parent {
                tasks.insert(ev.id(), p);
            }
            None
        }
        HistoryEventType::TaskSucceeded => {
            let output = ev.task_succeeded_event_details()?.output()?;
            let out: StepOutput = serde_json::from_str(output).ok()?;
            let p = Progress::StepSucceeded {
                step: out.step.to_string(),
                region: task_place(out.step.as_str(), out.region.as_str()),
                summary: out.summary.clone(),
                changes: out.changes.len(),
            };
            outputs.push(out);
            Some(p)
        }
        HistoryEventType::TaskFailed => {
            let d = ev.task_failed_event_details()?;
            let (step, region) = parent.unwrap_or_default();
            Some(Progress::StepFailed {
                step,
                region,
                error: d.error().unwrap_or_default().to_owned(),
                cause: d.cause().unwrap_or_default().to_owned(),
            })
        }
        HistoryEventType::TaskTimedOut => {
            let (step, region) = parent.unwrap_or_default();
            Some(Progress::StepTimedOut { step, region })
        }
        _ => None,
    }
}

/// One execution of a run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub started: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

pub(crate) fn fmt(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC).format(&f).unwrap_or_default()
}

pub(crate) fn from_smithy(t: &aws_smithy_types::DateTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The executions of a run, oldest first: the first is named by the run id, retries `RUN-retry-N`.
pub async fn executions(aws: &Aws, run_id: &str) -> Result<Vec<Execution>, StepError> {
    let sfn = aws.pipeline().sfn();
    let mut found = Vec::new();
    let mut pages = sfn.list_executions().state_machine_arn(state_machine_arn(aws)).into_paginator().send();
    while let Some(page) = pages.next().await {
        for e in page.aws("states:ListExecutions")?.executions() {
            if e.name() == run_id || e.name().starts_with(&format!("{run_id}-retry-")) {
                found.push((e.start_date().as_nanos(), e.execution_arn().to_owned()));
            }
        }
    }
    found.sort();
    let mut out = Vec::new();
    for (_, arn) in found {
        let d = sfn.describe_execution().execution_arn(&arn).send().await.aws("states:DescribeExecution")?;
        out.push(Execution {
            name: d.name().unwrap_or_default().to_owned(),
            arn,
            status: d.status().as_str().to_owned(),
            started: fmt(from_smithy(d.start_date())),
            stopped: d.stop_date().map(|t| fmt(from_smithy(t))),
            error: d.error().map(str::to_owned),
            cause: d.cause().map(str::to_owned),
        });
    }
    Ok(out)
}

/// The (step, region) a task message names, from a `TaskScheduled` event's parameters.
pub(crate) fn task_target(ev: &HistoryEvent) -> Option<(String, String)> {
    let params: Value = serde_json::from_str(ev.task_scheduled_event_details()?.parameters()).ok()?;
    let body = match &params["MessageBody"] {
        Value::String(s) => serde_json::from_str(s).ok()?,
        v => v.clone(),
    };
    let step = body["step"].as_str()?;
    Some((step.to_owned(), task_place(step, body["region"].as_str()?)))
}

/// Where a task runs, as the history shows it: a regional step's one task covers every region of
/// the run (its message names the home region).
pub(crate) fn task_place(step: &str, region: &str) -> String {
    if StepName::parse(step).is_some_and(StepName::regional) {
        ALL_REGIONS.to_owned()
    } else {
        region.to_owned()
    }
}

/// The place of a regional step's task in the history: every region of the run.
pub const ALL_REGIONS: &str = "all regions";
