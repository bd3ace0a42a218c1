//! Bulk onboarding: many accounts in one execution of the bulk state machine, a Map over accounts
//! in which each account is its own child execution of the onboarding state machine (named by its
//! run id, so it shows in `runs list` and can be retried alone). One account's failure does not stop
//! the others.
//!
//! Validation is shared: the organization and its logging and security accounts are checked once,
//! and every target's membership comes from one paginated `ListAccounts`, not a call per account,
//! because Organizations is the API that throttles first.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use assure_contract::{AccountId, OrgLayout, Region, RunInput, StepError, StepOutput};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use serde::Serialize;

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::pipeline::resources::{checkpoint_bucket, BULK_STATE_MACHINE};

/// Account ids from a file: one per line; blank lines and `#` comments ignored. Errors name the
/// line.
pub fn accounts_from_file(text: &str, origin: &str) -> Result<Vec<AccountId>, StepError> {
    let mut out: Vec<AccountId> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let id = line.split('#').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        let account: AccountId = id
            .parse()
            .map_err(|e: StepError| StepError::invalid_input(format!("{origin}:{}: {}", i + 1, e.message)))?;
        if out.contains(&account) {
            return Err(StepError::invalid_input(format!("{origin}:{}: account {account} is listed twice", i + 1)));
        }
        out.push(account);
    }
    if out.is_empty() {
        return Err(StepError::invalid_input(format!("{origin}: no account ids in it")));
    }
    Ok(out)
}

/// Every account under an OU (or root), its child OUs included, in a stable order.
pub async fn accounts_in_ou(aws: &Aws, org: &OrgLayout, home: &Region, ou: &str) -> Result<Vec<AccountId>, StepError> {
    let valid_ou = (ou.starts_with("ou-") || ou.starts_with("r-"))
        && ou.len() > 4
        && ou.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_ou {
        return Err(StepError::invalid_input(format!(
            "--ou: {ou:?} is not an organizational unit id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx)"
        )));
    }
    let orgs = aws.organization(&org.management, home).organizations();
    let mut pending = vec![ou.to_owned()];
    let mut out = Vec::new();
    while let Some(parent) = pending.pop() {
        let mut pages = orgs.list_accounts_for_parent().parent_id(&parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if error_code(&e) == Some("ParentNotFoundException") => {
                    return Err(StepError::invalid_input(format!("--ou: {parent} is not in the organization")))
                }
                Err(e) => return Err(e).aws(format!("organizations:ListAccountsForParent {parent}")),
            };
            for a in page.accounts() {
                if let Some(id) = a.id() {
                    out.push(id.parse()?);
                }
            }
        }
        let mut pages = orgs.list_organizational_units_for_parent().parent_id(&parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            for child in
                page.aws(format!("organizations:ListOrganizationalUnitsForParent {parent}"))?.organizational_units()
            {
                if let Some(id) = child.id() {
                    pending.push(id.to_owned());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The status of every account of the organization, from one paginated listing.
pub async fn member_status(aws: &Aws, org: &OrgLayout, home: &Region) -> Result<HashMap<AccountId, String>, StepError> {
    let orgs = aws.organization(&org.management, home).organizations();
    let mut out = HashMap::new();
    let mut pages = orgs.list_accounts().into_paginator().send();
    while let Some(page) = pages.next().await {
        for a in page.aws("organizations:ListAccounts")?.accounts() {
            if let (Some(id), Some(status)) = (a.id(), a.status()) {
                out.insert(id.parse()?, status.as_str().to_owned());
            }
        }
    }
    Ok(out)
}

/// Checks every run against the organization with a handful of calls: the first run is validated
/// in full (organization, management, logging, security, its target); the other targets against
/// one listing of the members. Every problem is reported, each naming its account.
pub async fn validate(aws: &Aws, runs: &[RunInput]) -> Result<(), StepError> {
    let Some(first) = runs.first() else { return Err(StepError::invalid_input("no accounts to onboard")) };
    let members = member_status(aws, &first.org, &first.home_region).await?;
    let mut problems = Vec::new();
    for run in runs {
        if let Some(role) = run.org.role_of(&run.account) {
            problems.push(format!("account {} is the organization's {role} account", run.account));
            continue;
        }
        match members.get(&run.account).map(String::as_str) {
            Some("ACTIVE") => {}
            Some(other) => problems.push(format!("account {} is {other} in the organization, not ACTIVE", run.account)),
            None => problems.push(format!("account {} is not a member of the organization", run.account)),
        }
    }
    if !problems.is_empty() {
        return Err(StepError::invalid_input(format!(
            "{} of {} accounts rejected: {}",
            problems.len(),
            runs.len(),
            problems.join("; ")
        )));
    }
    crate::pipeline::preflight::validate(aws, first).await
}

/// The bulk state machine's ARN.
pub fn state_machine_arn(aws: &Aws) -> String {
    let p = aws.pipeline();
    format!("arn:aws:states:{}:{}:stateMachine:{BULK_STATE_MACHINE}", p.region, p.account)
}

/// The bulk execution's input: the run's id and concurrency, and the organization step's run. The
/// accounts are not in it (see [`accounts_key`]).
pub fn execution_input(bulk_id: &str, concurrency: u32, organization: &RunInput) -> serde_json::Value {
    serde_json::json!({
        "bulk": {"bulkId": bulk_id, "concurrency": concurrency},
        "organizationRun": organization,
    })
}

/// Where a bulk run's accounts are kept for its Distributed Map, in the checkpoint bucket.
pub fn accounts_key(bulk_id: &str) -> String {
    format!("runs/{bulk_id}/accounts.json")
}

/// Starts the bulk execution named `bulk_id`: at most `concurrency` accounts at once.
pub async fn start(aws: &Aws, bulk_id: &str, runs: &[RunInput], concurrency: u32) -> Result<String, StepError> {
    let Some(first) = runs.first() else { return Err(StepError::invalid_input("no accounts to onboard")) };
    // The organization step's run: the accounts' settings, under the bulk run's id (its checkpoint
    // and history are the bulk run's).
    let mut organization = first.clone();
    organization.run_id = bulk_id.parse()?;
    // The accounts' runs go to the checkpoint bucket, where the Distributed Map reads them: the
    // execution's input stays a few hundred bytes however many accounts (Step Functions' limit is
    // 256 KiB, a few hundred runs).
    let p = aws.pipeline();
    let bucket = checkpoint_bucket(p.account.as_str(), p.region.as_str());
    let key = accounts_key(bulk_id);
    let body = serde_json::to_vec(runs).map_err(|e| StepError::internal(e.to_string()))?;
    p.s3()
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .aws(format!("s3:PutObject {bucket}/{key}"))?;
    let input = execution_input(bulk_id, concurrency, &organization);
    let res = aws
        .pipeline()
        .sfn()
        .start_execution()
        .state_machine_arn(state_machine_arn(aws))
        .name(bulk_id)
        .input(input.to_string())
        .send()
        .await;
    match res {
        Ok(out) => Ok(out.execution_arn().to_owned()),
        Err(e) if error_code(&e) == Some("StateMachineDoesNotExist") => Err(StepError::invalid_input(format!(
            "the state machine {BULK_STATE_MACHINE} does not exist: run `assure deploy` (again) first"
        ))),
        Err(e) if error_code(&e) == Some("ExecutionAlreadyExists") => {
            Err(StepError::invalid_input(format!("--bulk-id: a bulk run named {bulk_id} exists already")))
        }
        Err(e) => Err(e).aws("states:StartExecution"),
    }
}

/// One account's outcome.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountResult {
    pub account: String,
    pub run_id: String,
    /// The child execution's status: RUNNING, SUCCEEDED, FAILED, … or NOT_STARTED.
    pub status: String,
    pub seconds: Option<f64>,
    pub changes: usize,
    pub controls_passed: usize,
    pub controls: usize,
    /// Delivery paths proven (`deliveries.*` evidence), apart from the controls.
    pub deliveries_proven: usize,
    pub deliveries: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The child executions' statuses, by run id (one listing per call, not a call per account).
async fn child_statuses(aws: &Aws) -> Result<HashMap<String, (String, String)>, StepError> {
    let sfn = aws.pipeline().sfn();
    let mut out = HashMap::new();
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(crate::pipeline::resources::state_machine_arn(aws))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for e in page.aws("states:ListExecutions")?.executions() {
            out.insert(e.name().to_owned(), (e.status().as_str().to_owned(), e.execution_arn().to_owned()));
        }
    }
    Ok(out)
}

/// Follows the bulk execution until it ends; `on` hears each account whose child execution ended.
pub async fn follow(
    aws: &Aws,
    arn: &str,
    runs: &[RunInput],
    poll: Duration,
    deadline: Duration,
    mut on: impl FnMut(&str, &str, &str),
) -> Result<(String, Vec<AccountResult>), StepError> {
    let sfn = aws.pipeline().sfn();
    let started = std::time::Instant::now();
    let mut reported: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let d = sfn.describe_execution().execution_arn(arn).send().await.aws("states:DescribeExecution")?;
        let done = d.status() != &ExecutionStatus::Running;
        let children = child_statuses(aws).await?;
        for run in runs {
            if let Some((status, _)) = children.get(run.run_id.as_str()) {
                if status != "RUNNING" && !reported.contains_key(run.run_id.as_str()) {
                    reported.insert(run.run_id.to_string(), status.clone());
                    on(run.account.as_str(), run.run_id.as_str(), status);
                }
            }
        }
        if done {
            let mut results = Vec::new();
            for run in runs {
                results.push(result_of(aws, run, children.get(run.run_id.as_str())).await?);
            }
            return Ok((d.status().as_str().to_owned(), results));
        }
        if started.elapsed() > deadline {
            return Err(StepError::new(
                assure_contract::ErrorName::Retryable,
                format!(
                    "the bulk run is still running after {}s; follow it with `assure runs list`",
                    deadline.as_secs()
                ),
            ));
        }
        tokio::time::sleep(poll).await;
    }
}

/// One account's outcome, from its child execution's description and history.
async fn result_of(aws: &Aws, run: &RunInput, child: Option<&(String, String)>) -> Result<AccountResult, StepError> {
    let mut r = AccountResult {
        account: run.account.to_string(),
        run_id: run.run_id.to_string(),
        status: "NOT_STARTED".into(),
        seconds: None,
        changes: 0,
        controls_passed: 0,
        controls: 0,
        deliveries_proven: 0,
        deliveries: 0,
        error: None,
    };
    let Some((status, arn)) = child else { return Ok(r) };
    r.status = status.clone();
    let d =
        aws.pipeline().sfn().describe_execution().execution_arn(arn).send().await.aws("states:DescribeExecution")?;
    if let Some(stop) = d.stop_date() {
        r.seconds = Some((stop.as_nanos() - d.start_date().as_nanos()) as f64 / 1e9);
    }
    if let Some(e) = d.error() {
        r.error = Some(format!("{e}: {}", d.cause().unwrap_or_default()));
    }
    for ev in crate::pipeline::runs::history(aws, arn).await? {
        if ev.r#type() != &HistoryEventType::TaskSucceeded {
            continue;
        }
        let Some(out) = ev.task_succeeded_event_details().and_then(|d| d.output()) else { continue };
        if let Ok(out) = serde_json::from_str::<StepOutput>(out) {
            r.changes += out.changes.len();
            let (proofs, controls): (Vec<_>, Vec<_>) =
                out.evidence.iter().partition(|e| e.control.starts_with("deliveries."));
            r.controls += controls.len();
            r.controls_passed += controls.iter().filter(|e| e.passed).count();
            r.deliveries += proofs.len();
            r.deliveries_proven += proofs.iter().filter(|e| e.passed).count();
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_files_name_the_bad_line() {
        let ok =
            accounts_from_file("# the imported accounts\n111111111111\n\n222222222222  # finance\n", "a.txt").unwrap();
        assert_eq!(ok.len(), 2);
        let e = accounts_from_file("111111111111\n12345\n", "a.txt").unwrap_err();
        assert!(e.message.starts_with("a.txt:2: account id \"12345\" is not valid"), "{}", e.message);
        let e = accounts_from_file("111111111111\n111111111111\n", "a.txt").unwrap_err();
        assert_eq!(e.message, "a.txt:2: account 111111111111 is listed twice");
        assert!(accounts_from_file("# nothing\n", "a.txt").unwrap_err().message.contains("no account ids"));
    }

    /// A thousand accounts' runs passed Step Functions' 256 KiB input limit when they were the
    /// input; the input is now the same few hundred bytes for one account or a thousand.
    #[test]
    fn the_input_does_not_grow_with_the_accounts() {
        let run = |account: u64| -> RunInput {
            serde_json::from_value(serde_json::json!({
                "runId": format!("onboard-{account}-1796616000"), "account": account.to_string(),
                "regions": ["us-east-1", "eu-west-1", "us-west-2", "eu-central-1"], "homeRegion": "us-east-1",
                "org": {"management": "111111111111", "logging": "222222222222", "security": "333333333333"},
                "roleName": "AssureExecutionRole"
            }))
            .unwrap()
        };
        let runs: Vec<RunInput> = (0..1000).map(|i| run(400_000_000_000 + i)).collect();
        let old =
            serde_json::json!({"bulk": {"bulkId": "b", "concurrency": 4}, "organizationRun": runs[0], "runs": runs});
        assert!(old.to_string().len() > 256 * 1024, "the old input: {} bytes", old.to_string().len());
        let input = execution_input("bulk-1796616000", 4, &runs[0]).to_string();
        assert!(input.len() < 2048, "{} bytes: {input}", input.len());
        assert!(!input.contains(&runs[999].account.to_string()));
        assert_eq!(accounts_key("bulk-1"), "runs/bulk-1/accounts.json");
    }
}
