//! Service control policies: the spec's mandatory set, attached to the account. They protect what
//! assure put in place, end to end: Config, GuardDuty (and its findings, from suppression), the
//! assure trail and its log group, the alarm chain (metric filters, metric data, alarms, topic,
//! subscriptions, the topic's key), assure's roles and the StackSet's, the member role's stack, the
//! service-linked roles the services act through, Session Manager logging (its preferences, and no
//! session under another document), the account's membership of the organization and its enabled
//! Regions; and restrict the root user. They exempt only assure's member role (and, for the member
//! role and its stack, the StackSet that deploys them, whose role nobody in the account can make or
//! assume).
//! assure's Lambdas run in the security account, which the policies bind too, and act on every
//! account, that one included, through the member role, the one principal they exempt. In the
//! security account they protect the member role, the StackSet's roles and the baseline's service
//! roles by name rather than every `assure-*` role, so that `assure deploy` can change the
//! pipeline stack's own roles.
//! Each policy stays under the 5,120-character limit; the five-policies-per-target quota is
//! checked before anything is attached.
//!
//! With `root_access = "centralized"` the step also removes the account's root credentials
//! ([`root`]).

pub mod catalogue;
pub mod root;

use assure_contract::{AccountId, ErrorName, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_organizations::types::{PolicyType, PolicyTypeStatus};
use serde_json::{json, Value};

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::controls::kit::Changes;
use crate::controls::names::{AGGREGATOR_ROLE, FINDINGS_EVENTS_ROLE, FINDINGS_ROLE, TRAIL_LOGS_ROLE};
use crate::controls::names::{SCP_ACCESS, SCP_LOG_ARCHIVE, SCP_PROTECT, SCP_ROOT};
use crate::controls::{Ahead, Control, Organized, Report, Undo};

mod evidence;
mod permissions;
pub(crate) mod policies;

pub use evidence::*;
pub use policies::*;

/// AWS's limit on one policy's size.
pub const MAX_POLICY_CHARS: usize = 5120;
/// AWS's limit on SCPs attached to one target.
pub const MAX_POLICIES_PER_TARGET: usize = 5;

/// The principals the policies exempt: the member role, by its exact name, and no other. The
/// pipeline's own roles live in the management account, which no SCP binds; a pattern such as
/// `assure-*` would exempt any role an administrator of the account chose to name so.
pub fn exempt_principals(run: &RunInput) -> Vec<String> {
    vec![format!("arn:aws:iam::*:role/{}", run.role_name)]
}

/// The role a service-managed StackSet runs as in member accounts: it updates the member role's
/// stack (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stacksets-orgs-associate-stackset-with-org.html).
/// StackSets' service-linked role in the account makes it, and SCPs do not bind service-linked
/// roles; nobody else in the account may make, change or assume a role of this name
/// (`ProtectRoles`, `NoStackSetRole`), so nobody can take its exemption.
pub const STACKSET_EXECUTION_ROLE: &str = "arn:aws:iam::*:role/stacksets-exec-*";

/// The service roles the baseline makes (each control's [`crate::controls::Ahead::service_roles`]),
/// by name: protected by name in the security account, where the pipeline's own assure-* roles are.
pub const BASELINE_ROLES: &[&str] = &[TRAIL_LOGS_ROLE, FINDINGS_ROLE, FINDINGS_EVENTS_ROLE, AGGREGATOR_ROLE];

/// The service-linked roles the baseline's services act through in a member account: Config's
/// recorder, GuardDuty's detector, Access Analyzer's organization analyzer and the StackSet of the
/// member role (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html).
const SERVICE_LINKED_ROLES: &[&str] = &[
    "config.amazonaws.com",
    "guardduty.amazonaws.com",
    "access-analyzer.amazonaws.com",
    "member.org.stacksets.cloudformation.amazonaws.com",
];

/// Whether a policy is attached to the onboarded account (else only to the logging and security
/// accounts).
pub fn on_target(name: &str) -> bool {
    name != SCP_LOG_ARCHIVE
}

/// Whether a policy is attached to the logging and security accounts: their part of the baseline,
/// and assure's roles, stack and membership there.
pub fn on_log_archive(name: &str) -> bool {
    name == SCP_LOG_ARCHIVE || name == SCP_ACCESS
}

/// The service control policies attached to `account`: (name, id).
pub(crate) async fn attached_scps(
    orgs: &aws_sdk_organizations::Client,
    account: &assure_contract::AccountId,
) -> Result<Vec<(String, String)>, StepError> {
    let mut out = Vec::new();
    let mut pages = orgs
        .list_policies_for_target()
        .target_id(account.as_str())
        .filter(PolicyType::ServiceControlPolicy)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for p in page.aws("organizations:ListPoliciesForTarget")?.policies() {
            out.push((p.name().unwrap_or_default().to_owned(), p.id().unwrap_or_default().to_owned()));
        }
    }
    Ok(out)
}

/// [`attached_scps`] read once per task: preflight checks the quota with it and records it, and
/// the fleet's watch reads the logging and security accounts' once for every account it checks.
pub(crate) async fn attached_once(
    mgmt: &crate::aws::AccountConfig,
    account: &assure_contract::AccountId,
) -> Result<Vec<(String, String)>, StepError> {
    let read = async {
        let list = attached_scps(&mgmt.organizations(), account).await?;
        serde_json::to_string(&list).map_err(|e| StepError::internal(e.to_string()))
    };
    let text = mgmt.account_wide_read(&format!("attached-scps/{account}"), read).await?;
    serde_json::from_str(&text).map_err(|e| StepError::internal(e.to_string()))
}

/// The organization's service control policies: name → id.
async fn policies_by_name(
    orgs: &aws_sdk_organizations::Client,
) -> Result<std::collections::BTreeMap<String, String>, StepError> {
    let mut out = std::collections::BTreeMap::new();
    let mut pages = orgs.list_policies().filter(PolicyType::ServiceControlPolicy).into_paginator().send();
    while let Some(page) = pages.next().await {
        for p in page.aws("organizations:ListPolicies")?.policies() {
            out.insert(p.name().unwrap_or_default().to_owned(), p.id().unwrap_or_default().to_owned());
        }
    }
    Ok(out)
}

/// AWS's limit of SCPs attached to one target, counted with the ones assure would attach to
/// `account` (`wanted`: a policy's name → whether it goes there)
/// (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html).
fn within_quota(
    run: &RunInput,
    account: &AccountId,
    wanted: fn(&str) -> bool,
    attached: &[(String, String)],
) -> Result<(), StepError> {
    let missing = policies(run).iter().filter(|(n, _, _)| wanted(n) && !attached.iter().any(|(a, _)| a == n)).count();
    if attached.len() + missing > MAX_POLICIES_PER_TARGET {
        return Err(StepError::new(ErrorName::QuotaExceeded, format!(
            "account {account} has {} service control policies attached ({}); attaching {missing} more would pass AWS's limit of {MAX_POLICIES_PER_TARGET} per target: detach or merge one first",
            attached.len(), attached.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "))));
    }
    Ok(())
}

/// The quota is knowable before the first change: a run it would stop at its last step is refused
/// by preflight instead.
///
/// So is a root without service control policies enabled: AttachPolicy refuses every SCP there
/// (PolicyTypeNotEnabledException,
/// https://docs.aws.amazon.com/organizations/latest/APIReference/API_AttachPolicy.html). Enabling
/// the type changes every account of the organization, so assure does not do it on its own.
async fn preflight(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    let organization = aws.organization(&run.org.management, &run.home_region);
    if run.organization.is_none() {
        root_enables_scps(&organization.organizations()).await?;
    }
    within_quota(run, &run.account, on_target, &attached_once(&organization, &run.account).await?)
}

/// The organization's root has service control policies enabled; a bulk run checks it once, in
/// its organization step.
async fn root_enables_scps(orgs: &aws_sdk_organizations::Client) -> Result<(), StepError> {
    let roots = orgs.list_roots().send().await.aws("organizations:ListRoots")?;
    for root in roots.roots() {
        let enabled = root.policy_types().iter().any(|t| {
            t.r#type() == Some(&PolicyType::ServiceControlPolicy) && t.status() == Some(&PolicyTypeStatus::Enabled)
        });
        if !enabled {
            let id = root.id().unwrap_or("?");
            return Err(StepError::new(
                ErrorName::Conflict,
                format!(
                    "scps: service control policies are not enabled in the organization's root {id}, so none can be attached; only the management account can enable them, for the whole organization (organizations:EnablePolicyType --root-id {id} --policy-type SERVICE_CONTROL_POLICY)"
                ),
            ));
        }
    }
    Ok(())
}

/// The policies exist with assure's content, created or updated as needed: name → id (empty in a
/// plan that would create it).
async fn ensure_policies(
    orgs: &aws_sdk_organizations::Client,
    run: &RunInput,
    changes: &mut Changes,
) -> Result<std::collections::BTreeMap<String, String>, StepError> {
    let existing = policies_by_name(orgs).await?;
    let mut ids = std::collections::BTreeMap::new();
    for (name, description, doc) in &policies(run) {
        let text = doc.to_string();
        if text.len() > MAX_POLICY_CHARS {
            return Err(StepError::internal(format!(
                "policy {name} is {} characters, over AWS's {MAX_POLICY_CHARS}",
                text.len()
            )));
        }
        let id = match existing.get(*name) {
            Some(id) => {
                let current = orgs
                    .describe_policy()
                    .policy_id(id)
                    .send()
                    .await
                    .aws(format!("organizations:DescribePolicy {name}"))?;
                let content: Option<Value> =
                    current.policy().and_then(|p| p.content()).and_then(|c| serde_json::from_str(c).ok());
                if content.as_ref() != Some(doc) {
                    if changes.live() {
                        orgs.update_policy()
                            .policy_id(id)
                            .content(&text)
                            .send()
                            .await
                            .aws(format!("organizations:UpdatePolicy {name}"))?;
                    }
                    changes.push(format!("organizations:policy/{name}"), "update", json!(content), doc.clone());
                }
                id.clone()
            }
            None if !changes.live() => {
                changes.push(format!("organizations:policy/{name}"), "create", Value::Null, doc.clone());
                String::new()
            }
            None => {
                let res = orgs
                    .create_policy()
                    .name(*name)
                    .description(*description)
                    .r#type(PolicyType::ServiceControlPolicy)
                    .content(&text)
                    .send()
                    .await;
                match res {
                    Ok(out) => {
                        changes.push(format!("organizations:policy/{name}"), "create", Value::Null, doc.clone());
                        out.policy()
                            .and_then(|p| p.policy_summary())
                            .and_then(|s| s.id())
                            .unwrap_or_default()
                            .to_owned()
                    }
                    // Another account's run created it a moment ago: the policies are
                    // organization-wide and the same for every run, so use that one.
                    Err(e) if error_code(&e) == Some("DuplicatePolicyException") => {
                        policies_by_name(orgs).await?.remove(*name).ok_or_else(|| {
                            StepError::new(
                                ErrorName::Conflict,
                                format!("organizations:CreatePolicy {name}: exists, but is not listed yet"),
                            )
                        })?
                    }
                    Err(e) => return Err(e).aws(format!("organizations:CreatePolicy {name}")),
                }
            }
        };
        ids.insert((*name).to_owned(), id);
    }
    Ok(ids)
}

/// What the SCPs' organization-wide part hands to the accounts' runs: each policy's id, by name,
/// once its content was checked.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Facts {
    policies: std::collections::BTreeMap<String, String>,
}

/// The policies' ids a bulk run's organization step recorded, after checking their content.
fn organized_ids(run: &RunInput) -> Option<std::collections::BTreeMap<String, String>> {
    crate::controls::organized_facts::<Facts>(run, CONTROL.name).map(|f| f.policies)
}

pub async fn apply(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let region = &run.home_region;
    let organization = aws.organization(&run.org.management, region);
    let orgs = organization.organizations();
    let mut changes = Changes::new(&organization);

    let attached = attached_scps(&orgs, &run.account).await?;
    within_quota(run, &run.account, on_target, &attached)?;
    let ids = match organized_ids(run) {
        Some(ids) => ids,
        None => ensure_policies(&orgs, run, &mut changes).await?,
    };
    attach(&orgs, run, &run.account, on_target, &attached, &ids, &mut changes).await?;
    // A bulk run's organization step attached the logging and security accounts' part, and
    // enabled centralized root access, once.
    if run.organization.is_none() {
        attach_log_archive(&orgs, run, &ids, &mut changes).await?;
        if root::wanted(run) {
            root::organize(&aws.management(&run.org.management, region).await?, &mut changes).await?;
        }
    }
    let had = match root::wanted(run) {
        true => {
            let mgmt = aws.management(&run.org.management, region).await?;
            root::remove_credentials(&mgmt, &run.account, &mut changes).await?
        }
        false => Value::Null,
    };
    let snapshot = json!({
        "attached": attached.iter().map(|(n, i)| json!({"name": n, "id": i})).collect::<Vec<_>>(),
        "root": had,
    });
    Ok(changes.output(StepName::Scps, region, "service control policies", snapshot))
}

/// The logging and security accounts (one, if they are the same).
fn log_archive_accounts(run: &RunInput) -> Vec<&AccountId> {
    let mut out = vec![&run.org.logging, &run.org.security];
    out.dedup();
    out
}

/// The logging and security accounts' policies attached to each, within the quota.
async fn attach_log_archive(
    orgs: &aws_sdk_organizations::Client,
    run: &RunInput,
    ids: &std::collections::BTreeMap<String, String>,
    changes: &mut Changes,
) -> Result<(), StepError> {
    for account in log_archive_accounts(run) {
        let attached = attached_scps(orgs, account).await?;
        within_quota(run, account, on_log_archive, &attached)?;
        attach(orgs, run, account, on_log_archive, &attached, ids, changes).await?;
    }
    Ok(())
}

/// The policies `wanted` on `account` attached, those already there (`attached`) left alone.
async fn attach(
    orgs: &aws_sdk_organizations::Client,
    run: &RunInput,
    account: &AccountId,
    wanted: fn(&str) -> bool,
    attached: &[(String, String)],
    ids: &std::collections::BTreeMap<String, String>,
    changes: &mut Changes,
) -> Result<(), StepError> {
    for (name, _, _) in policies(run).iter().filter(|(n, _, _)| wanted(n)) {
        if attached.iter().any(|(n, _)| n == name) {
            continue;
        }
        let id = ids.get(*name).cloned().unwrap_or_default();
        if changes.live() {
            if id.is_empty() {
                return Err(StepError::new(
                    ErrorName::Conflict,
                    format!("scps: the bulk run's organization step recorded no policy {name}"),
                ));
            }
            match orgs.attach_policy().policy_id(&id).target_id(account.as_str()).send().await {
                Ok(_) => {}
                // Attached between the listing and now: what this step wanted.
                Err(e) if error_code(&e) == Some("DuplicatePolicyAttachmentException") => {}
                Err(e) => return Err(e).aws(format!("organizations:AttachPolicy {name} {account}")),
            }
        }
        changes.push(format!("organizations:policy/{name}/target/{account}"), "attach", json!(false), json!(true));
    }
    Ok(())
}

/// The SCP control: the mandatory service control policies, attached to the account.
pub const CONTROL: Control = Control {
    name: "scps",
    steps: &[StepName::Scps],
    catalogue: catalogue::ENTRIES,
    snapshot: None,
    permissions: permissions::PERMISSIONS,
    ahead: Ahead {
        preflight: |aws, run| Box::pin(preflight(aws, run)),
        organize: |aws, run, _| Box::pin(organize(aws, run)),
        ..Ahead::NOTHING
    },
    apply: |call| Box::pin(apply(call.aws, call.run)),
    evidence: |aws, run, _| Box::pin(evidence_for(aws, run)),
    compensate: |undo, region, report| Box::pin(compensate(undo, region, report)),
};

/// The policies themselves, with assure's content; their ids are the facts.
async fn organize(aws: &Aws, run: &RunInput) -> Result<Organized, StepError> {
    let organization = aws.organization(&run.org.management, &run.home_region);
    let orgs = organization.organizations();
    root_enables_scps(&orgs).await?;
    let mut changes = Changes::new(&organization);
    let ids = ensure_policies(&orgs, run, &mut changes).await?;
    attach_log_archive(&orgs, run, &ids, &mut changes).await?;
    if root::wanted(run) {
        root::organize(&aws.management(&run.org.management, &run.home_region).await?, &mut changes).await?;
    }
    Organized::with(changes.list, &Facts { policies: ids })
}

/// assure's policies detached from the account; the policies stay for the organization's other accounts.
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let run = undo.run;
    let orgs = undo.aws.organization(&run.org.management, region).organizations();
    for (name, id) in attached_scps(&orgs, &run.account).await? {
        if [SCP_PROTECT, SCP_ACCESS, SCP_ROOT].contains(&name.as_str()) {
            orgs.detach_policy()
                .policy_id(&id)
                .target_id(run.account.as_str())
                .send()
                .await
                .aws("organizations:DetachPolicy")?;
            report.restored.push(format!("scps: detached {name} from {}", run.account));
        }
    }
    if let Some(had) = undo.snapshot(StepName::Scps, region).map(|s| &s["root"]).filter(|h| !h.is_null()) {
        let mgmt = undo.aws.management(&run.org.management, region).await?;
        root::compensate(&mgmt, &run.account, region, had, report).await?;
    }
    Ok(())
}
