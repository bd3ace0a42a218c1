//! The fleet: every account assure keeps on its baseline, and the scheduled verify that keeps it
//! there.
//!
//! An account is in the fleet from the moment a run of it ends with every control holding (verify
//! writes its note, `onboarded/ACCOUNT.json`, with the run and the baseline version it applied)
//! until it is offboarded. The watch step, the one task of the watch state machine an EventBridge
//! schedule starts, checks every account of the fleet read-only as verify does and keeps a record
//! of each check (`fleet/checks/ACCOUNT/TIME.json`). Every control that held at the account's last
//! check (or at the end of its last run) and no longer holds is drift: an event on the pipeline
//! account's default bus (source `assure`, detail-type [`DRIFT`]) and, when the deployment's
//! policy is `repair`, an onboarding run of the account, which changes only what drifted; at most
//! `max_repairs_per_day` of them a day (`fleet/repairs/DAY/ACCOUNT.json`).

use assure_contract::{
    AccountId, BaselineVersion, ErrorName, Evidence, OnDrift, RunId, RunInput, StepError, StepName, StepOutput,
    TaskMessage,
};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::aws::{Aws, AwsResultExt};
use crate::pipeline::checkpoint::{Expect, Store};
use crate::pipeline::resources::WATCH_STATE_MACHINE;
use crate::pipeline::verify::{self, Onboarded};

/// The detail-type of a drift event.
pub const DRIFT: &str = "Assure Control Drift";

/// The source of assure's events.
pub const SOURCE: &str = "assure";

/// How many accounts one watch checks at once. Each check reads every control in every region of
/// the account in parallel; Organizations' reads are paced across the pipeline (`aws::pacing`).
pub const CONCURRENCY: usize = 4;

/// A control that does not hold, as a check saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failing {
    pub control: String,
    pub region: String,
    pub resource: String,
    /// Its CIS v7.0.0 id, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cis: Option<String>,
    /// What the check saw.
    pub saw: String,
}

impl Failing {
    fn of(e: &Evidence) -> Failing {
        Failing {
            control: e.control.clone(),
            region: e.region.to_string(),
            resource: e.resource.clone(),
            cis: e.cis.as_ref().and_then(|c| c.v7.clone()),
            saw: e.detail.clone(),
        }
    }

    fn same(&self, other: &Failing) -> bool {
        (&self.control, &self.region, &self.resource) == (&other.control, &other.region, &other.resource)
    }
}

/// One scheduled check of one account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub account: AccountId,
    pub at: String,
    /// The watch that checked it (its run id).
    pub by: String,
    /// The baseline version the account's last run applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineVersion>,
    /// Every control holds in every region.
    pub holds: bool,
    /// How many checks verify made.
    pub checked: usize,
    /// The controls that do not hold.
    pub failing: Vec<Failing>,
    /// Those of them that held at the account's last check, or at the end of its last run.
    pub drifted: Vec<Failing>,
    /// The run started to repair it, if the policy is `repair`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
    /// Why no repair was started although the policy is `repair`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_repaired: Option<String>,
    /// Why the account could not be checked (its role gone, say): it does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One account of the fleet: its note.
#[derive(Clone, Debug)]
pub struct Member {
    pub account: AccountId,
    pub note: Onboarded,
}

/// Now, to the millisecond, in one fixed width: the keys of checks sort by time.
fn stamp() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::now_utc().format(&format).unwrap_or_default()
}

/// Whether RFC 3339 time `a` is later than `b` (false when either cannot be read).
pub fn later(a: &str, b: &str) -> bool {
    use time::format_description::well_known::Rfc3339;
    match (time::OffsetDateTime::parse(a, &Rfc3339), time::OffsetDateTime::parse(b, &Rfc3339)) {
        (Ok(a), Ok(b)) => a > b,
        _ => false,
    }
}

fn checks_prefix(account: &AccountId) -> String {
    format!("fleet/checks/{account}/")
}

fn repairs_prefix(day: &str) -> String {
    format!("fleet/repairs/{day}/")
}

/// Where an account's offboarding at `at` is recorded (with `at` empty: the prefix of its records).
pub fn offboarded_key(account: &AccountId, at: &str) -> String {
    if at.is_empty() {
        format!("fleet/offboarded/{account}/")
    } else {
        format!("fleet/offboarded/{account}/{at}.json")
    }
}

/// Every account of the fleet, by id.
pub async fn members(store: &Store) -> Result<Vec<Member>, StepError> {
    let mut out = Vec::new();
    for key in store.keys("onboarded/").await? {
        let Some(account) = key.strip_prefix("onboarded/").and_then(|k| k.strip_suffix(".json")) else { continue };
        let Ok(account) = account.parse::<AccountId>() else { continue };
        if let Some((note, _)) = store.get_json::<Onboarded>(&key).await? {
            out.push(Member { account, note });
        }
    }
    Ok(out)
}

/// An account's checks, oldest first.
pub async fn checks(store: &Store, account: &AccountId) -> Result<Vec<Check>, StepError> {
    let mut out = Vec::new();
    for key in store.keys(&checks_prefix(account)).await? {
        if let Some((check, _)) = store.get_json::<Check>(&key).await? {
            out.push(check);
        }
    }
    Ok(out)
}

/// An account's latest check.
pub async fn latest(store: &Store, account: &AccountId) -> Result<Option<Check>, StepError> {
    let Some(key) = store.keys(&checks_prefix(account)).await?.pop() else { return Ok(None) };
    Ok(store.get_json::<Check>(&key).await?.map(|(c, _)| c))
}

/// The run the account's next run would be: `template`'s settings (the deployment's, and the
/// operator's choices) for the account, in the regions its last run covered.
pub fn desired(template: &RunInput, member: &Member) -> RunInput {
    let mut run = template.clone();
    run.account = member.account.clone();
    if let Some(last) = &member.note.run {
        run.regions = last.regions.clone();
    }
    run
}

/// Whether the account's last run applied the baseline `desired` asks for.
pub fn behind(member: &Member, desired: &RunInput) -> bool {
    !verify::current(&member.note, desired)
}

/// Starts the watch now, as its schedule does, with `template` as its run (the deployment's
/// settings; its run id names the watch). Returns the execution's ARN.
pub async fn start(aws: &Aws, template: &RunInput) -> Result<String, StepError> {
    let p = aws.pipeline();
    let machine = format!("arn:aws:states:{}:{}:stateMachine:{WATCH_STATE_MACHINE}", p.region, p.account);
    let out = p
        .sfn()
        .start_execution()
        .state_machine_arn(&machine)
        .name(template.run_id.as_str())
        .input(json!({"run": template}).to_string())
        .send()
        .await;
    match out {
        Ok(o) => Ok(o.execution_arn().to_owned()),
        Err(e) if crate::aws::error_code(&e) == Some("StateMachineDoesNotExist") => Err(StepError::invalid_input(
            format!("the state machine {WATCH_STATE_MACHINE} does not exist here: run `assure deploy` again (a deployment older than the fleet's watch)"),
        )),
        Err(e) => Err(e).aws("states:StartExecution"),
    }
}

/// The watch step: every account of the fleet checked, a record of each, drift sent as events and,
/// by the deployment's policy, repaired.
pub async fn run(aws: &Aws, task: &TaskMessage) -> Result<StepOutput, StepError> {
    let template = &task.run;
    let store = Store::new(aws);
    let settings = crate::pipeline::deploy::load_settings(aws).await?;
    let watch = template.run_id.to_string();
    let members = members(&store).await?;
    let checked: Vec<Result<Check, StepError>> = stream::iter(members.iter())
        .map(|m| check_one(aws, &store, m, &watch, &settings.fleet))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut checks = Vec::new();
    for c in checked {
        checks.push(c?);
    }
    checks.sort_by(|a, b| a.account.cmp(&b.account));
    let holding = checks.iter().filter(|c| c.holds).count();
    let drifted: Vec<&Check> = checks.iter().filter(|c| !c.drifted.is_empty()).collect();
    let repairs: Vec<&str> = checks.iter().filter_map(|c| c.repair.as_deref()).collect();
    let mut summary = format!("checked {} account(s): {holding} hold", checks.len());
    if !drifted.is_empty() {
        let names: Vec<String> = drifted.iter().map(|c| format!("{} ({})", c.account, c.drifted.len())).collect();
        summary.push_str(&format!(", drift in {}", names.join(", ")));
    }
    if !repairs.is_empty() {
        summary.push_str(&format!(", repair run(s) started: {}", repairs.join(", ")));
    }
    let accounts: Vec<_> = checks
        .iter()
        .map(|c| {
            json!({"account": c.account, "holds": c.holds, "failing": c.failing.len(),
                        "drifted": c.drifted.len(), "repair": c.repair})
        })
        .collect();
    Ok(StepOutput {
        step: StepName::Watch,
        region: template.home_region.clone(),
        summary,
        changes: vec![],
        evidence: vec![],
        snapshot: json!({"accounts": accounts}),
    })
}

/// One account: checked, compared with its last check, recorded; its drift sent and, by policy,
/// repaired.
async fn check_one(
    aws: &Aws,
    store: &Store,
    member: &Member,
    watch: &str,
    policy: &assure_contract::Fleet,
) -> Result<Check, StepError> {
    let at = stamp();
    let Some(run) = member.note.run.clone() else {
        // A note from before notes kept their run: the account's next run writes one.
        return record(
            store,
            Check {
                account: member.account.clone(),
                at,
                by: watch.to_owned(),
                baseline: member.note.baseline.clone(),
                holds: false,
                checked: 0,
                failing: vec![],
                drifted: vec![],
                repair: None,
                not_repaired: None,
                error: Some("onboarded before assure kept the run in its note: onboard it again to check it".into()),
            },
        )
        .await;
    };
    let (evidence, error) = match verify::check(aws, &run).await {
        Ok(e) => (e, None),
        // The account cannot be read: its role gone or refused. That is not a passing check, and
        // it is retried at the next schedule, not by failing the whole watch.
        Err(e) if e.name != ErrorName::Internal => (vec![], Some(format!("{}: {}", e.name, e.message))),
        Err(e) => return Err(e),
    };
    let failing: Vec<Failing> = evidence.iter().filter(|e| !e.passed).map(Failing::of).collect();
    // What failed at the last check still fails unless a run since then brought it back: only
    // what held before is drift, so one drift is one event, not one a day.
    let before = latest(store, &member.account).await?.filter(|c| later(&c.at, &member.note.at));
    let drifted: Vec<Failing> = failing
        .iter()
        .filter(|f| !before.as_ref().is_some_and(|b| b.failing.iter().any(|g| g.same(f))))
        .cloned()
        .collect();
    let mut check = Check {
        account: member.account.clone(),
        at,
        by: watch.to_owned(),
        baseline: member.note.baseline.clone(),
        holds: failing.is_empty() && error.is_none(),
        checked: evidence.len(),
        failing,
        drifted,
        repair: None,
        not_repaired: None,
        error,
    };
    if policy.on_drift == OnDrift::Repair && !check.failing.is_empty() {
        match repair(aws, store, &run, policy.max_repairs_per_day).await {
            Ok(id) => check.repair = Some(id),
            Err(why) => check.not_repaired = Some(why),
        }
    }
    if !check.drifted.is_empty() {
        send_drift(aws, &check, &run, policy.on_drift).await?;
    }
    record(store, check).await
}

async fn record(store: &Store, check: Check) -> Result<Check, StepError> {
    let key = format!("{}{}.json", checks_prefix(&check.account), check.at);
    store.put_json(&key, &check, Expect::Any).await?;
    Ok(check)
}

/// Starts a repair run of the account, unless today's repairs reached the bound or a run of the
/// account is active; `Err` says which.
async fn repair(aws: &Aws, store: &Store, last: &RunInput, bound: u32) -> Result<String, String> {
    let day = stamp().get(..10).unwrap_or_default().to_owned();
    let today = store.keys(&repairs_prefix(&day)).await.map_err(|e| e.message)?;
    if today.len() as u32 >= bound {
        return Err(format!("{} repair(s) today already, the most fleet.max_repairs_per_day allows", today.len()));
    }
    let secs = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let run =
        RunInput { run_id: RunId::for_repair(&last.account, secs), organization: None, full: false, ..last.clone() };
    let key = format!("{}{}-{secs}.json", repairs_prefix(&day), last.account);
    let id = run.run_id.to_string();
    // Counted once started (a start refused, a run of the account active say, is no repair); a
    // watch that dies between the two under-counts by one.
    crate::pipeline::runs::start(aws, &run, None).await.map_err(|e| format!("{}: {}", e.name, e.message))?;
    store.put_json(&key, &json!({"runId": id, "account": last.account}), Expect::Any).await.map_err(|e| e.message)?;
    Ok(id)
}

/// One event per drifted control on the pipeline account's default bus, ten to a request.
async fn send_drift(aws: &Aws, check: &Check, run: &RunInput, policy: OnDrift) -> Result<(), StepError> {
    use aws_sdk_eventbridge::types::PutEventsRequestEntry;

    let eb = aws.pipeline().eventbridge();
    for chunk in check.drifted.chunks(10) {
        let entries: Vec<PutEventsRequestEntry> = chunk
            .iter()
            .map(|f| {
                let detail = json!({
                    "account": check.account, "control": f.control, "region": f.region, "resource": f.resource,
                    "cis": f.cis, "saw": f.saw, "checkedAt": check.at, "watch": check.by,
                    "baseline": check.baseline.as_ref().map(|b| b.to_string()), "lastRun": run.run_id,
                    "onDrift": policy.as_str(), "repair": check.repair,
                });
                PutEventsRequestEntry::builder()
                    .source(SOURCE)
                    .detail_type(DRIFT)
                    .detail(detail.to_string())
                    .event_bus_name("default")
                    .build()
            })
            .collect();
        let out = eb.put_events().set_entries(Some(entries)).send().await.aws("events:PutEvents")?;
        if out.failed_entry_count() > 0 {
            let why: Vec<String> = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code().map(|c| format!("{c}: {}", e.error_message().unwrap_or_default())))
                .collect();
            return Err(StepError::new(
                ErrorName::Retryable,
                format!("events:PutEvents refused {} drift event(s): {}", out.failed_entry_count(), why.join("; ")),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(control: &str, region: &str) -> Failing {
        Failing { control: control.into(), region: region.into(), resource: "r".into(), cis: None, saw: "off".into() }
    }

    #[test]
    fn a_failure_is_the_same_by_control_region_and_resource_whatever_was_seen() {
        let a = failing("cloudtrail.logging", "us-east-1");
        let mut b = a.clone();
        b.saw = "something else".into();
        assert!(a.same(&b));
        assert!(!a.same(&failing("cloudtrail.logging", "eu-west-1")));
        assert!(!a.same(&failing("config.recording", "us-east-1")));
    }

    #[test]
    fn checks_are_keyed_by_a_time_of_one_width_and_compared_as_times() {
        let a = stamp();
        assert_eq!(a.len(), "2026-12-07T10:00:00.000Z".len(), "{a}");
        assert!(later("2026-12-07T10:00:00.5Z", "2026-12-07T10:00:00.25Z"));
        assert!(!later("2026-12-07T10:00:00.25Z", "2026-12-07T10:00:00.5Z"));
        assert!(!later("not a time", "2026-12-07T10:00:00Z"));
    }

    #[test]
    fn a_check_round_trips_as_json() {
        let c = Check {
            account: "111122223333".parse().unwrap(),
            at: "2026-12-07T10:00:00.000Z".into(),
            by: "watch-1".into(),
            baseline: None,
            holds: false,
            checked: 92,
            failing: vec![failing("cloudtrail.logging", "us-east-1")],
            drifted: vec![failing("cloudtrail.logging", "us-east-1")],
            repair: Some("repair-111122223333-1".into()),
            not_repaired: None,
            error: None,
        };
        let back: Check = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
