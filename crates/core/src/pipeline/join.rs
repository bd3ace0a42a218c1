//! AutoOnboard: an account that joins the organization is onboarded without a command.
//!
//! Organizations sends two events to the management account's default bus in us-east-1; the
//! bootstrap stack's rule forwards them to the pipeline account's default bus, where the pipeline
//! template's rule (with `AutoOnboard=true`) starts the join state machine with the event and the
//! stack's run settings:
//! - `CreateAccountResult`, when `CreateAccount` ends; its
//!   `serviceEventDetails.createAccountStatus` names the new account and its state
//!   (API_CreateAccount: "Check the CloudTrail log for the CreateAccountResult event");
//! - `AccountJoinedOrganization`, for every account that joins, created or invited (API_CreateAccount
//!   and API_AcceptHandshake). AWS documents its `joinedMethod` and `joinedTime`, but no field that
//!   names the account, so the step asks Organizations instead: the accounts whose
//!   `JoinedTimestamp` is within [`WINDOW`] of the event.
//!
//! The join step starts each account's run through [`runs::start`] (the account's run lock, the
//! execution named by its run id), with the run id [`RunId::for_join`] of the account and the second
//! it joined: the two events of one created account, or an event EventBridge delivers twice, start
//! one run, and `assure runs show|retry|rollback` find it by that id.
//!
//! The member role reaches a new account through the StackSet's automatic deployment, minutes after
//! it joins. Until then the role cannot be assumed: the step waits for it a little
//! ([`ROLE_WAIT`]), then fails with `Assure.NotReady`, which the join state machine retries within
//! its bound.

use std::time::Duration;

use assure_contract::{AccountId, ErrorName, RunId, StepError, StepName, StepOutput, TaskMessage};
use serde_json::{json, Value};

use crate::aws::{Aws, AwsResultExt};
use crate::pipeline::runs;

/// How far from an `AccountJoinedOrganization` event's time an account's `JoinedTimestamp` may be
/// for the event to be about it. CloudTrail stamps the event when the account joins; the margin
/// covers the two clocks.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);

/// How long the step itself waits for a member role before it answers `Assure.NotReady`.
pub const ROLE_WAIT: Duration = Duration::from_secs(30);

/// One account the event is about, and the second it joined (Organizations' `JoinedTimestamp`).
#[derive(Clone, Debug, PartialEq)]
pub struct Joined {
    pub account: AccountId,
    pub joined: i64,
}

/// What the event asks for.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// `CreateAccountResult`: the account created, or the state it ended in if not `SUCCEEDED`.
    Created { account: Option<AccountId>, state: String },
    /// `AccountJoinedOrganization`, at `time` (unix seconds).
    Joined { time: i64 },
}

/// Reads the event the join state machine was started with (`{id, time, detail}` of the
/// EventBridge event).
pub fn parse(event: &Value) -> Result<Event, StepError> {
    let name = event["detail"]["eventName"].as_str().unwrap_or_default();
    match name {
        "CreateAccountResult" => {
            let status = &event["detail"]["serviceEventDetails"]["createAccountStatus"];
            let state = status["state"].as_str().unwrap_or_default().to_owned();
            let account = match status["accountId"].as_str() {
                Some(id) if !id.is_empty() => Some(id.parse()?),
                _ => None,
            };
            Ok(Event::Created { account, state })
        }
        "AccountJoinedOrganization" => {
            let time = event["time"].as_str().unwrap_or_default();
            let parsed = time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .map_err(|e| StepError::invalid_input(format!("event.time: {time:?} is not an RFC 3339 time: {e}")))?;
            Ok(Event::Joined { time: parsed.unix_timestamp() })
        }
        other => Err(StepError::invalid_input(format!(
            "event.detail.eventName: {other:?} is not an event the join step handles \
             (CreateAccountResult or AccountJoinedOrganization)"
        ))),
    }
}

/// The account of `listed` (id, status, joined second) that joined nearest `time` (unix seconds),
/// within [`WINDOW`], active, and not one of the organization's own accounts in `skip`; with every
/// other that joined within a second of it (accounts joining at once, each with its own event, are
/// each onboarded once: their runs are named by account and second).
pub fn joined_near(time: i64, listed: &[(AccountId, String, i64)], skip: &[&AccountId]) -> Vec<Joined> {
    let window = WINDOW.as_secs() as i64;
    let candidates: Vec<_> = listed
        .iter()
        .filter(|(id, status, joined)| status == "ACTIVE" && (joined - time).abs() <= window && !skip.contains(&id))
        .collect();
    let Some(nearest) = candidates.iter().map(|(_, _, joined)| (joined - time).abs()).min() else { return vec![] };
    candidates
        .into_iter()
        .filter(|(_, _, joined)| (joined - time).abs() <= nearest + 1)
        .map(|(account, _, joined)| Joined { account: account.clone(), joined: *joined })
        .collect()
}

/// The join step: the accounts the event is about, each one's member role, each one's run.
pub async fn run(aws: &Aws, task: &TaskMessage) -> Result<StepOutput, StepError> {
    let template = &task.run;
    let event = task.event.as_ref().ok_or_else(|| StepError::invalid_input("the join task has no event"))?;
    let orgs = aws.organization(&template.org.management, &template.home_region).organizations();
    let org = &template.org;
    let skip = [&org.management, &org.logging, &org.security];
    let accounts = match parse(event)? {
        Event::Created { state, .. } if state != "SUCCEEDED" => {
            return Ok(output(template, format!("the account's creation ended {state}: nothing to onboard"), &[]));
        }
        Event::Created { account: None, .. } => {
            return Err(StepError::invalid_input(
                "event.detail.serviceEventDetails.createAccountStatus.accountId: missing from a SUCCEEDED CreateAccountResult",
            ))
        }
        Event::Created { account: Some(account), .. } => {
            let out = orgs
                .describe_account()
                .account_id(account.as_str())
                .send()
                .await
                .aws(format!("organizations:DescribeAccount {account}"))?;
            let found = out.account();
            let listed = [(
                account.clone(),
                found.and_then(|a| a.status()).map(|s| s.as_str().to_owned()).unwrap_or_default(),
                found.and_then(|a| a.joined_timestamp()).map(|t| t.secs()).unwrap_or_default(),
            )];
            joined_near(listed[0].2, &listed, &skip)
        }
        Event::Joined { time } => {
            let mut listed = Vec::new();
            let mut pages = orgs.list_accounts().into_paginator().send();
            while let Some(page) = pages.next().await {
                for a in page.aws("organizations:ListAccounts")?.accounts() {
                    if let (Some(id), Some(status), Some(joined)) = (a.id(), a.status(), a.joined_timestamp()) {
                        listed.push((id.parse()?, status.as_str().to_owned(), joined.secs()));
                    }
                }
            }
            joined_near(time, &listed, &skip)
        }
    };
    let mut started = Vec::new();
    for joined in &accounts {
        member_role(aws, template, &joined.account).await?;
        let mut run = template.clone();
        run.run_id = RunId::for_join(&joined.account, joined.joined);
        run.account = joined.account.clone();
        let execution = runs::start(aws, &run, None).await?;
        tracing::info!(account = %run.account, run = %run.run_id, %execution, "started the run of an account that joined");
        started.push(json!({"account": run.account, "runId": run.run_id, "execution": execution}));
    }
    let summary = match started.len() {
        0 => "no account of the organization joined at the event's time: nothing to onboard".to_owned(),
        n => format!(
            "started {n} run(s): {}",
            started.iter().map(|s| s["runId"].as_str().unwrap_or_default()).collect::<Vec<_>>().join(", ")
        ),
    };
    Ok(output(template, summary, &started))
}

fn output(template: &assure_contract::RunInput, summary: String, started: &[Value]) -> StepOutput {
    StepOutput {
        step: StepName::Join,
        region: template.home_region.clone(),
        summary,
        changes: vec![],
        evidence: vec![],
        snapshot: json!({"runs": started}),
    }
}

/// Waits up to [`ROLE_WAIT`] for the member role in `account` to be assumable; then
/// `Assure.NotReady`, naming the account and the role.
async fn member_role(aws: &Aws, template: &assure_contract::RunInput, account: &AccountId) -> Result<(), StepError> {
    let deadline = tokio::time::Instant::now() + ROLE_WAIT;
    loop {
        match aws.account(account, &template.home_region).await {
            Ok(_) => return Ok(()),
            Err(e) if e.name == ErrorName::AccessDenied || e.name == ErrorName::Retryable => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(StepError::new(
                        ErrorName::NotReady,
                        format!(
                            "account {account} joined the organization, but the role {} cannot be assumed in it yet \
                             (the StackSet's automatic deployment puts it there minutes after an account joins; \
                             the join state machine tries again): {}",
                            template.role_name, e.message
                        ),
                    ));
                }
                crate::aws::wait_for_aws(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> AccountId {
        s.parse().unwrap()
    }

    #[test]
    fn a_created_account_is_named_by_its_create_account_status() {
        let event = json!({"time": "2026-12-07T10:00:00Z", "detail": {"eventName": "CreateAccountResult",
            "serviceEventDetails": {"createAccountStatus": {"state": "SUCCEEDED", "accountId": "111122223333"}}}});
        assert_eq!(
            parse(&event).unwrap(),
            Event::Created { account: Some(id("111122223333")), state: "SUCCEEDED".into() }
        );
        let failed = json!({"detail": {"eventName": "CreateAccountResult",
            "serviceEventDetails": {"createAccountStatus": {"state": "FAILED", "failureReason": "EMAIL_ALREADY_EXISTS"}}}});
        assert_eq!(parse(&failed).unwrap(), Event::Created { account: None, state: "FAILED".into() });
    }

    #[test]
    fn a_join_is_found_by_the_accounts_joined_near_the_events_time() {
        let event = json!({"time": "2026-12-07T10:00:00Z", "detail": {"eventName": "AccountJoinedOrganization",
            "serviceEventDetails": {"joinedMethod": "Invited"}}});
        let Event::Joined { time } = parse(&event).unwrap() else { panic!("not a join") };
        let t = time;
        let security = id("999999999999");
        let mut listed = vec![
            (id("111111111111"), "ACTIVE".to_owned(), t - 3),
            (id("222222222222"), "ACTIVE".to_owned(), t - 86_400),
            (id("333333333333"), "SUSPENDED".to_owned(), t),
            (security.clone(), "ACTIVE".to_owned(), t),
            (id("444444444444"), "ACTIVE".to_owned(), t + 30),
            (id("555555555555"), "ACTIVE".to_owned(), t - 2),
        ];
        let found = |listed: &[(AccountId, String, i64)]| -> Vec<String> {
            joined_near(time, listed, &[&security]).into_iter().map(|j| j.account.to_string()).collect()
        };
        assert_eq!(found(&listed), ["111111111111", "555555555555"], "the nearest, and any a second from it");
        listed.retain(|(a, ..)| !["111111111111", "555555555555"].contains(&a.as_str()));
        assert_eq!(found(&listed), ["444444444444"]);
        listed.retain(|(a, ..)| a.as_str() != "444444444444");
        assert!(found(&listed).is_empty(), "a day ago is not this event's join");
    }

    #[test]
    fn other_events_and_bad_times_are_refused_by_field() {
        let err = parse(&json!({"detail": {"eventName": "AcceptHandshake"}})).unwrap_err();
        assert_eq!(err.name, ErrorName::InvalidInput);
        assert!(err.message.contains("event.detail.eventName"), "{}", err.message);
        let err =
            parse(&json!({"time": "yesterday", "detail": {"eventName": "AccountJoinedOrganization"}})).unwrap_err();
        assert!(err.message.contains("event.time"), "{}", err.message);
    }

    #[test]
    fn a_joins_run_id_is_the_account_and_the_second_it_joined() {
        assert_eq!(RunId::for_join(&id("111122223333"), 1_796_000_000).as_str(), "joined-111122223333-1796000000");
    }
}
