//! The audit record of one run, put together from the two places it lives: the Step Functions
//! execution history of every execution of the run (the first and each retry: every state entered
//! and exited, every task attempt and its error) and the checkpoint records (what each step changed,
//! with before and after values, and the evidence verify recorded). `runs history` prints its
//! timeline and `runs report` renders all of it (see `report`). `fleet` is the fleet's report, from
//! the fleet's records.

pub mod fleet;
pub mod report;

use std::collections::HashMap;

use assure_contract::{Change, Evidence, RunInput, StepError, StepName};
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use serde::Serialize;
use serde_json::Value;

use crate::aws::Aws;
use crate::pipeline::checkpoint::{Record, Status, Store};
use crate::pipeline::runs::{executions, fmt, from_smithy, history, task_target, Execution};

/// Where a timeline entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The Step Functions execution history.
    Execution,
    /// The checkpoint records.
    Checkpoint,
}

/// One thing that happened in a run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// UTC, RFC 3339 with milliseconds.
    pub at: String,
    pub source: Source,
    /// The execution it happened in (history entries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// `ExecutionStarted`, `StateEntered`, `StateExited`, `TaskScheduled`, `TaskSucceeded`,
    /// `TaskFailed`, `TaskTimedOut`, `ExecutionSucceeded`, `ExecutionFailed`, … from the history;
    /// `StepStarted`, `StepCompleted`, `StepFailed`, `Change` from the checkpoints.
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The error name, summary or outcome, for people.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// The state's size in bytes, on `StateEntered` (its input) and `StateExited` (its output): Step
    /// Functions fails an execution whose state passes 256 KiB (`States.DataLimitExceeded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_bytes: Option<usize>,
    /// On `StepCompleted` and `StepFailed`: the seconds the step waited inside it for AWS (a
    /// change propagating, a delivery on its way), part of its time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_seconds: Option<f64>,
    /// Sort key: nanoseconds since the epoch.
    #[serde(skip)]
    nanos: i128,
}

impl Entry {
    /// Where it comes from, for people: the execution's name, or `checkpoint`.
    pub fn source_label(&self) -> &str {
        match self.source {
            Source::Execution => self.execution.as_deref().unwrap_or("execution"),
            Source::Checkpoint => "checkpoint",
        }
    }
}

/// One control in one region, as the report states it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlResult {
    pub control: String,
    /// The spec bullet, word for word.
    pub spec: String,
    /// The CIS ids: the evidence's own, else the catalogue's (evidence recorded before it carried them).
    pub cis: Option<assure_contract::CisIds>,
    pub account: String,
    pub region: String,
    pub resource: String,
    pub passed: bool,
    pub detail: String,
    /// When verify observed it (the verify step's completion), if it ran.
    pub verified_at: Option<String>,
}

/// Everything known about a run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    pub run: RunInput,
    /// The status of the latest execution.
    pub status: String,
    pub executions: Vec<Execution>,
    /// The checkpoint records, in the state machine's step order, then by region.
    pub records: Vec<Record>,
    /// Oldest first.
    pub timeline: Vec<Entry>,
    pub controls: Vec<ControlResult>,
}

impl Audit {
    /// Every change the run made, in step order.
    pub fn changes(&self) -> impl Iterator<Item = (&Record, &Change)> {
        self.records.iter().flat_map(|r| r.output.iter().flat_map(move |o| o.changes.iter().map(move |c| (r, c))))
    }

    /// The record of a step in a region.
    pub fn record(&self, step: StepName, region: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.step == step && r.region.as_str() == region)
    }

    /// Failed task attempts (from the history), per step and region.
    pub fn failed_attempts(&self) -> HashMap<(String, String), usize> {
        let mut out = HashMap::new();
        for e in &self.timeline {
            if matches!(e.event.as_str(), "TaskFailed" | "TaskTimedOut") {
                let key = (e.step.clone().unwrap_or_default(), e.region.clone().unwrap_or_default());
                *out.entry(key).or_insert(0) += 1;
            }
        }
        out
    }
}

fn parse(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// Loads a run's audit record. An unknown run is `Assure.InvalidInput`.
pub async fn load(aws: &Aws, run_id: &str) -> Result<Audit, StepError> {
    let run = crate::pipeline::runs::input_of(aws, run_id).await?;

    let executions = executions(aws, run_id).await?;
    let mut timeline = Vec::new();
    // Attempts count across executions: a retry's first attempt at a step is its second.
    let mut attempts = HashMap::new();
    for ex in &executions {
        let events = history(aws, &ex.arn).await?;
        timeline.extend(history_entries(&ex.name, &events, &mut attempts));
    }

    let mut records = Store::new(aws).list(run_id).await?;
    let order = |s: StepName| StepName::ALL.iter().position(|x| *x == s).unwrap_or(usize::MAX);
    records.sort_by(|a, b| (order(a.step), a.region.as_str()).cmp(&(order(b.step), b.region.as_str())));
    timeline.extend(records.iter().flat_map(checkpoint_entries));
    timeline.sort_by_key(|e| e.nanos);

    let controls = controls(&records);
    let status = executions.last().map(|e| e.status.clone()).unwrap_or_default();
    Ok(Audit { run, status, executions, records, timeline, controls })
}

/// The evidence of the run's verify step, or, while verify has not completed, whatever evidence
/// other steps recorded (unverified).
fn controls(records: &[Record]) -> Vec<ControlResult> {
    let verify: Vec<&Record> = records.iter().filter(|r| r.step == StepName::Verify).collect();
    let sources: Vec<&Record> =
        if verify.iter().any(|r| r.output.is_some()) { verify } else { records.iter().collect() };
    let mut out = Vec::new();
    for r in sources {
        let Some(o) = &r.output else { continue };
        let at = (r.step == StepName::Verify).then(|| r.finished_at.clone()).flatten().and_then(|t| parse(&t)).map(fmt);
        for e in &o.evidence {
            out.push(control_result(e, at.clone()));
        }
    }
    out
}

fn control_result(e: &Evidence, verified_at: Option<String>) -> ControlResult {
    let c = crate::pipeline::catalogue::find(&e.control);
    ControlResult {
        control: e.control.clone(),
        spec: c.map(|c| c.spec.to_owned()).unwrap_or_default(),
        cis: e.cis.clone().or_else(|| c.and_then(|c| c.cis).map(|c| c.ids())),
        account: e.account.to_string(),
        region: e.region.to_string(),
        resource: e.resource.clone(),
        passed: e.passed,
        detail: e.detail.clone(),
        verified_at,
    }
}

fn entry(at: time::OffsetDateTime, source: Source, event: &str) -> Entry {
    Entry {
        at: fmt(at),
        source,
        execution: None,
        event: event.to_owned(),
        state: None,
        step: None,
        region: None,
        attempt: None,
        detail: String::new(),
        change: None,
        state_bytes: None,
        waited_seconds: None,
        nanos: at.unix_timestamp_nanos(),
    }
}

fn checkpoint_entries(r: &Record) -> Vec<Entry> {
    let mut out = Vec::new();
    let Some(at) = r.finished_at.as_deref().and_then(parse) else { return out };
    let base = |event: &str| Entry {
        step: Some(r.step.to_string()),
        region: Some(r.region.to_string()),
        attempt: Some(r.attempt),
        ..entry(at, Source::Checkpoint, event)
    };
    if let Some(started) = parse(&r.started_at) {
        // When the step itself began working (its claim), apart from when its task was scheduled:
        // the difference is the orchestration's, and the benchmark measures it.
        out.push(Entry { nanos: started.unix_timestamp_nanos(), at: fmt(started), ..base("StepStarted") });
    }
    match r.status {
        Status::Completed => {
            let o = r.output.as_ref();
            out.push(Entry {
                detail: o.map(|o| o.summary.clone()).unwrap_or_default(),
                waited_seconds: r.waited_seconds,
                ..base("StepCompleted")
            });
            for c in o.map(|o| o.changes.as_slice()).unwrap_or_default() {
                out.push(Entry {
                    detail: format!("{} {}", c.action, c.resource),
                    change: Some(c.clone()),
                    ..base("Change")
                });
            }
        }
        Status::Failed => out.push(Entry {
            detail: r.error.as_ref().map(|e| format!("{}: {}", e.name, e.message)).unwrap_or_default(),
            waited_seconds: r.waited_seconds,
            ..base("StepFailed")
        }),
        Status::Running => {}
    }
    out
}

fn history_entries(
    execution: &str,
    events: &[HistoryEvent],
    attempts: &mut HashMap<(String, String), u32>,
) -> Vec<Entry> {
    let mut tasks: HashMap<i64, (String, String)> = HashMap::new();
    let mut out = Vec::new();
    for ev in events {
        let at = from_smithy(ev.timestamp());
        let mut e = Entry { execution: Some(execution.to_owned()), ..entry(at, Source::Execution, "") };
        let parent = tasks.get(&ev.previous_event_id()).cloned();
        let t = ev.r#type().as_str();
        if let Some(d) = ev.state_entered_event_details() {
            e.event = "StateEntered".into();
            e.state = Some(d.name().to_owned());
            e.state_bytes = d.input().map(str::len);
        } else if let Some(d) = ev.state_exited_event_details() {
            e.event = "StateExited".into();
            e.state = Some(d.name().to_owned());
            e.state_bytes = d.output().map(str::len);
        } else {
            match ev.r#type() {
                HistoryEventType::ExecutionStarted
                | HistoryEventType::ExecutionSucceeded
                | HistoryEventType::MapStateStarted
                | HistoryEventType::MapStateSucceeded => e.event = t.to_owned(),
                HistoryEventType::ExecutionFailed => {
                    let d = ev.execution_failed_event_details();
                    e.event = t.to_owned();
                    e.detail = format!(
                        "{}: {}",
                        d.and_then(|d| d.error()).unwrap_or_default(),
                        d.and_then(|d| d.cause()).unwrap_or_default()
                    );
                }
                HistoryEventType::ExecutionAborted | HistoryEventType::ExecutionTimedOut => e.event = t.to_owned(),
                HistoryEventType::TaskScheduled => {
                    let Some(target) = task_target(ev) else { continue };
                    let n = attempts.entry(target.clone()).or_insert(0);
                    *n += 1;
                    e.event = t.to_owned();
                    e.attempt = Some(*n);
                    (e.step, e.region) = (Some(target.0.clone()), Some(target.1.clone()));
                    tasks.insert(ev.id(), target);
                }
                HistoryEventType::TaskStarted | HistoryEventType::TaskSubmitted => {
                    if let Some(p) = parent {
                        tasks.insert(ev.id(), p);
                    }
                    continue;
                }
                HistoryEventType::TaskSucceeded | HistoryEventType::TaskFailed | HistoryEventType::TaskTimedOut => {
                    let (step, region) = parent.unwrap_or_default();
                    e.attempt = attempts.get(&(step.clone(), region.clone())).copied();
                    e.event = t.to_owned();
                    e.detail = match ev.r#type() {
                        HistoryEventType::TaskFailed => {
                            let d = ev.task_failed_event_details();
                            format!(
                                "{}: {}",
                                d.and_then(|d| d.error()).unwrap_or_default(),
                                d.and_then(|d| d.cause()).unwrap_or_default()
                            )
                        }
                        HistoryEventType::TaskTimedOut => {
                            let d = ev.task_timed_out_event_details();
                            d.and_then(|d| d.error()).unwrap_or("States.Timeout").to_owned()
                        }
                        _ => ev
                            .task_succeeded_event_details()
                            .and_then(|d| d.output())
                            .and_then(|o| serde_json::from_str::<Value>(o).ok())
                            .and_then(|v| v["summary"].as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    };
                    (e.step, e.region) = (Some(step), Some(region));
                }
                _ => continue,
            }
        }
        out.push(e);
    }
    out
}
