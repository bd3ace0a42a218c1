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

    pub fn same(&self, other: &Failing) -> bool {
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
    /// The repair run an earlier check started since the account's last run, if any: an account
    /// is repaired once between two runs of it, so one that a repair cannot fix does not use up
    /// the day's repairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_repair: Option<String>,
    /// Its drift reached EventBridge (false: refused; the next check sends it again).
    #[serde(default = "yes")]
    pub notified: bool,
}

fn yes() -> bool {
    true
}

impl Check {
    /// Whether the policy `repair` starts a run for it: it was read, something fails, and no
    /// repair started since the account's last run.
    pub fn repair_due(&self) -> bool {
        self.error.is_none() && !self.failing.is_empty() && self.last_repair.is_none()
    }
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
    // The account's own choices stay its own: its regions, what its run did with its root user
    // and its own trails.
    if let Some(last) = &member.note.run {
        run.regions = last.regions.clone();
        run.root_access = last.root_access;
        run.existing_trails = last.existing_trails;
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
/// by the deployment's policy, repaired. An account that cannot be read is recorded as such and
/// does not stop the others; drift EventBridge refused is recorded as not sent (the next watch
/// sends it), and the step then fails naming the accounts.
pub async fn run(aws: &Aws, task: &TaskMessage) -> Result<StepOutput, StepError> {
    let template = &task.run;
    let store = Store::new(aws);
    let settings = crate::pipeline::deploy::load_settings(aws).await?;
    let watch = template.run_id.to_string();
    let members = members(&store).await?;
    let checked: Vec<Result<(Check, Option<RunInput>), StepError>> = stream::iter(members.iter())
        .map(|m| check_one(aws, &store, m, &watch))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut checks = Vec::new();
    for c in checked {
        checks.push(c?);
    }
    checks.sort_by(|a, b| a.0.account.cmp(&b.0.account));
    // Repairs one at a time, after the checks: each takes a numbered slot of the day first.
    if settings.fleet.on_drift == OnDrift::Repair {
        for (check, run) in checks.iter_mut().filter(|(c, _)| c.repair_due()) {
            let Some(run) = run else { continue };
            match repair(aws, &store, run, settings.fleet.max_repairs_per_day).await {
                Ok(id) => check.repair = Some(id),
                Err(why) => check.not_repaired = Some(why),
            }
        }
    }
    let mut unsent = Vec::new();
    for (check, run) in checks.iter_mut() {
        if let (false, Some(run)) = (check.drifted.is_empty(), run) {
            if let Err(e) = send_drift(aws, check, run, settings.fleet.on_drift).await {
                check.notified = false;
                unsent.push((check.account.to_string(), e));
            }
        }
        record(&store, check).await?;
    }
    let checks: Vec<Check> = checks.into_iter().map(|(c, _)| c).collect();
    if let Some((_, first)) = unsent.first() {
        let names: Vec<&str> = unsent.iter().map(|(a, _)| a.as_str()).collect();
        return Err(StepError::new(
            first.name,
            format!("drift of {} not sent (the next watch sends it): {}", names.join(", "), first.message),
        ));
    }
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

/// What the account's last check had told: what failed then, but for drift it could not send.
fn told(before: &Check) -> Vec<&Failing> {
    before.failing.iter().filter(|f| before.notified || !before.drifted.iter().any(|d| d.same(f))).collect()
}

/// One account: checked and compared with its last check since its last run. Not recorded yet.
async fn check_one(
    aws: &Aws,
    store: &Store,
    member: &Member,
    watch: &str,
) -> Result<(Check, Option<RunInput>), StepError> {
    let at = stamp();
    let before = latest(store, &member.account).await?.filter(|c| later(&c.at, &member.note.at));
    let mut check = Check {
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
        error: None,
        last_repair: before.as_ref().and_then(|b| b.repair.clone().or_else(|| b.last_repair.clone())),
        notified: true,
    };
    let Some(run) = member.note.run.clone() else {
        // A note from before notes kept their run: the account's next run writes one.
        check.error = Some("onboarded before assure kept the run in its note: onboard it again to check it".into());
        return Ok((check, None));
    };
    match verify::check(aws, &run).await {
        Ok(evidence) => {
            check.checked = evidence.len();
            check.failing = evidence.iter().filter(|e| !e.passed).map(Failing::of).collect();
            check.holds = check.failing.is_empty();
            // Only what held before is drift, so one drift is one event, not one a day.
            let told: Vec<&Failing> = before.as_ref().map(told).unwrap_or_default();
            check.drifted = check.failing.iter().filter(|f| !told.iter().any(|g| g.same(f))).cloned().collect();
        }
        // The account cannot be read (its role gone, refused, throttled past the retries): that
        // is not a passing check. What failed before stays the account's failures, so the next
        // check that reads it does not report them again.
        Err(e) => {
            check.error = Some(format!("{}: {}", e.name, e.message));
            check.failing = before.map(|b| b.failing).unwrap_or_default();
        }
    }
    Ok((check, Some(run)))
}

async fn record(store: &Store, check: &Check) -> Result<(), StepError> {
    let key = format!("{}{}.json", checks_prefix(&check.account), check.at);
    store.put_json(&key, check, Expect::Any).await?;
    Ok(())
}

/// Starts a repair run of the account, once it holds one of the day's `bound` slots (numbered,
/// each written only if absent, so two watches at once cannot pass the bound). A slot taken counts
/// whether the run starts or not (a run of the account already active, say). `Err` says why none
/// started.
async fn repair(aws: &Aws, store: &Store, last: &RunInput, bound: u32) -> Result<String, String> {
    let day = stamp().get(..10).unwrap_or_default().to_owned();
    let secs = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let run =
        RunInput { run_id: RunId::for_repair(&last.account, secs), organization: None, full: false, ..last.clone() };
    let id = run.run_id.to_string();
    let taken = store.keys(&repairs_prefix(&day)).await.map_err(|e| e.message)?.len() as u32;
    let mut slot = None;
    for n in taken..bound {
        let key = format!("{}{n:04}.json", repairs_prefix(&day));
        let claim = json!({"runId": id, "account": last.account});
        if store.put_json(&key, &claim, Expect::Absent).await.map_err(|e| e.message)?.is_some() {
            slot = Some(n);
            break;
        }
    }
    if slot.is_none() {
        return Err(format!("{bound} repair(s) today already, the most fleet.max_repairs_per_day allows"));
    }
    crate::pipeline::runs::start(aws, &run, None).await.map_err(|e| format!("{}: {}", e.name, e.message))?;
    Ok(id)
}

/// A drift event in one paragraph, as the drift topic's subscribers read it (an email's body, a
/// chat message): who, what, where, the CIS id, what the check saw, and what happens next.
pub fn summary(check: &Check, f: &Failing, policy: OnDrift) -> String {
    let cis = f.cis.as_ref().map(|c| format!(" (CIS {c})")).unwrap_or_default();
    let saw: String = f.saw.chars().take(500).collect();
    let next = match (&check.repair, &check.not_repaired) {
        (Some(run), _) => format!("A repair run started: {run}."),
        (None, Some(why)) => format!("Not repaired: {why}."),
        (None, None) if policy == OnDrift::Repair => match &check.last_repair {
            Some(run) => format!("Not repaired again: repair run {run} already ran since the account's last run."),
            None => "Not repaired.".to_owned(),
        },
        (None, None) => "Reported only (fleet.on_drift = \"report\"); `assure onboard ACCOUNT` repairs it."
            .replace("ACCOUNT", check.account.as_str()),
    };
    format!(
        "assure: account {} drifted. Control {} no longer holds in {}{cis}, resource {}: {saw} Seen at {} by {}. {next}",
        check.account, f.control, f.region, f.resource, check.at, check.by
    )
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
                    "summary": summary(check, f, policy),
                    "account": check.account, "control": f.control, "region": f.region, "resource": f.resource,
                    "cis": f.cis, "saw": f.saw.chars().take(2000).collect::<String>(), "checkedAt": check.at, "watch": check.by,
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
    fn a_drifts_summary_names_the_account_control_region_cis_id_what_was_seen_and_what_comes_next() {
        let mut trail = failing("cloudtrail.all-regions", "us-east-1");
        trail.cis = Some("4.1".into());
        let mut c = check(vec![trail.clone()], vec![trail.clone()], true);
        let text = summary(&c, &trail, OnDrift::Report);
        for part in [
            "account 111122223333 drifted",
            "cloudtrail.all-regions",
            "us-east-1 (CIS 4.1)",
            ": off",
            "watch-1",
            "assure onboard 111122223333",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        c.repair = Some("repair-111122223333-1".into());
        assert!(summary(&c, &trail, OnDrift::Repair).ends_with("A repair run started: repair-111122223333-1."));
        c.repair = None;
        c.last_repair = Some("repair-111122223333-0".into());
        assert!(summary(&c, &trail, OnDrift::Repair).contains("repair-111122223333-0 already ran"));
        c.not_repaired = Some("1 repair(s) today already".into());
        assert!(summary(&c, &trail, OnDrift::Repair).ends_with("Not repaired: 1 repair(s) today already."));
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

    fn check(failing: Vec<Failing>, drifted: Vec<Failing>, notified: bool) -> Check {
        Check {
            account: "111122223333".parse().unwrap(),
            at: "2026-12-07T10:00:00.000Z".into(),
            by: "watch-1".into(),
            baseline: None,
            holds: failing.is_empty(),
            checked: 92,
            failing,
            drifted,
            repair: None,
            not_repaired: None,
            error: None,
            last_repair: None,
            notified,
        }
    }

    #[test]
    fn what_a_check_told_is_what_failed_but_drift_eventbridge_refused() {
        let (trail, config) =
            (failing("cloudtrail.all-regions", "us-east-1"), failing("config.recording", "us-east-1"));
        let sent = check(vec![trail.clone(), config.clone()], vec![config.clone()], true);
        assert_eq!(told(&sent).len(), 2);
        let refused = check(vec![trail.clone(), config.clone()], vec![config.clone()], false);
        assert_eq!(told(&refused), vec![&trail], "the refused drift is new again");
    }

    #[test]
    fn an_account_is_repaired_once_between_two_runs_and_only_when_read() {
        let mut c = check(vec![failing("cloudtrail.all-regions", "us-east-1")], vec![], true);
        assert!(c.repair_due(), "something fails, no repair yet");
        c.last_repair = Some("repair-111122223333-1".into());
        assert!(!c.repair_due(), "a repair started since the last run");
        c.last_repair = None;
        c.error = Some("Assure.AccessDenied: the role".into());
        assert!(!c.repair_due(), "not read");
        assert!(!check(vec![], vec![], true).repair_due(), "everything holds");
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
            last_repair: None,
            notified: true,
        };
        let back: Check = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
