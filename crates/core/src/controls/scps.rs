//! Service control policies: the spec's mandatory set, attached to the account. They protect what
//! assure put in place (Config, GuardDuty, the assure trail, the member role's stack, alarms, roles,
//! Session Manager preferences) and restrict the root user, exempting only assure's member role (and,
//! for the member role and its stack, the StackSet that deploys them). assure's Lambdas run in the
//! management account, which SCPs do not bind; none runs in a member account.
//! Each policy stays under the 5,120-character limit; the five-policies-per-target quota is
//! checked before anything is attached.

use assure_contract::{ErrorName, Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_organizations::types::{PolicyType, PolicyTypeStatus};
use serde_json::{json, Value};

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::controls::kit::{evidence, Changes};
use crate::controls::names::{
    ALARM_PREFIX, ANALYZER, MEMBER_STACK_SET, SCP_PROTECT, SCP_ROOT, TRAIL, TRAIL_LOGS_ROLE, TRAIL_LOG_GROUP,
};
use crate::controls::{Control, Fut, Organized, Report, StepCall, Undo};

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
pub const STACKSET_EXECUTION_ROLE: &str = "arn:aws:iam::*:role/stacksets-exec-*";

/// The mandatory policies: (name, description, document).
pub fn policies(run: &RunInput) -> Vec<(&'static str, &'static str, Value)> {
    let exempt = json!({"ArnNotLike": {"aws:PrincipalARN": exempt_principals(run)}});
    // The member role's stack and the role itself may also be changed by the StackSet that deploys it.
    let mut deployers = exempt_principals(run);
    deployers.push(STACKSET_EXECUTION_ROLE.to_owned());
    let exempt_deployers = json!({"ArnNotLike": {"aws:PrincipalARN": deployers}});
    let protect = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ProtectConfig", "Effect": "Deny", "Resource": "*", "Condition": exempt,
             "Action": ["config:DeleteConfigurationRecorder", "config:DeleteDeliveryChannel", "config:DeleteRetentionConfiguration",
                        "config:PutConfigurationRecorder", "config:PutDeliveryChannel", "config:PutRetentionConfiguration",
                        "config:StopConfigurationRecorder", "config:DeleteConfigurationAggregator", "config:PutConfigurationAggregator"]},
            {"Sid": "ProtectGuardDuty", "Effect": "Deny", "Resource": "*", "Condition": exempt,
             "Action": ["guardduty:AcceptAdministratorInvitation", "guardduty:AcceptInvitation", "guardduty:ArchiveFindings",
                        "guardduty:CreatePublishingDestination", "guardduty:DeleteDetector", "guardduty:DeleteInvitations",
                        "guardduty:DeleteMembers", "guardduty:DeletePublishingDestination", "guardduty:DisassociateFromAdministratorAccount",
                        "guardduty:DisassociateFromMasterAccount", "guardduty:DisassociateMembers", "guardduty:StopMonitoringMembers",
                        "guardduty:UpdateDetector", "guardduty:UpdatePublishingDestination"]},
            {"Sid": "ProtectTrail", "Effect": "Deny", "Resource": format!("arn:aws:cloudtrail:*:*:trail/{TRAIL}"), "Condition": exempt,
             "Action": ["cloudtrail:DeleteTrail", "cloudtrail:PutEventSelectors", "cloudtrail:PutInsightSelectors",
                        "cloudtrail:StopLogging", "cloudtrail:UpdateTrail"]},
            {"Sid": "ProtectTrailLogs", "Effect": "Deny", "Resource": format!("arn:aws:logs:*:*:log-group:{TRAIL_LOG_GROUP}*"), "Condition": exempt,
             "Action": ["logs:DeleteLogGroup", "logs:DeleteMetricFilter", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy"]},
            {"Sid": "ProtectStacks", "Effect": "Deny", "Resource": format!("arn:aws:cloudformation:*:*:stack/StackSet-{MEMBER_STACK_SET}-*"),
             "Condition": exempt_deployers,
             "Action": ["cloudformation:CreateStack", "cloudformation:DeleteStack", "cloudformation:UpdateStack",
                        "cloudformation:UpdateTerminationProtection", "cloudformation:SetStackPolicy"]},
            {"Sid": "ProtectAlarms", "Effect": "Deny", "Resource": format!("arn:aws:cloudwatch:*:*:alarm:{ALARM_PREFIX}*"), "Condition": exempt,
             "Action": ["cloudwatch:DeleteAlarms", "cloudwatch:DisableAlarmActions", "cloudwatch:PutMetricAlarm", "cloudwatch:SetAlarmState"]},
            // Creating a role under assure's names is denied too: nobody else can make one look like assure's.
            {"Sid": "ProtectRoles", "Effect": "Deny", "Condition": exempt_deployers,
             "Resource": [format!("arn:aws:iam::*:role/{}", run.role_name), "arn:aws:iam::*:role/assure-*", format!("arn:aws:iam::*:role/{TRAIL_LOGS_ROLE}")],
             "Action": ["iam:CreateRole", "iam:AttachRolePolicy", "iam:DeleteRole", "iam:DeleteRolePermissionsBoundary", "iam:DeleteRolePolicy",
                        "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy",
                        "iam:UpdateRole", "iam:UpdateRoleDescription"]},
            {"Sid": "ProtectSessionPreferences", "Effect": "Deny", "Resource": "arn:aws:ssm:*:*:document/SSM-SessionManagerRunShell", "Condition": exempt,
             "Action": ["ssm:CreateDocument", "ssm:DeleteDocument", "ssm:UpdateDocument", "ssm:UpdateDocumentDefaultVersion", "ssm:ModifyDocumentPermission"]},
            {"Sid": "ProtectAnalyzer", "Effect": "Deny", "Resource": format!("arn:aws:access-analyzer:*:*:analyzer/{ANALYZER}"), "Condition": exempt,
             "Action": ["access-analyzer:DeleteAnalyzer"]}
        ]
    });
    let root = json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "RestrictRoot", "Effect": "Deny", "Action": "*", "Resource": "*",
                       "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}}]
    });
    vec![
        (SCP_PROTECT, "assure: protects the security baseline from changes outside assure", protect),
        (SCP_ROOT, "assure: restricts the use of root credentials", root),
    ]
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

/// [`attached_scps`] read once per task: preflight checks the quota with it and records it.
pub(crate) async fn attached_once(
    mgmt: &crate::aws::AccountConfig,
    account: &assure_contract::AccountId,
) -> Result<Vec<(String, String)>, StepError> {
    let read = async {
        let list = attached_scps(&mgmt.organizations(), account).await?;
        serde_json::to_string(&list).map_err(|e| StepError::internal(e.to_string()))
    };
    let text = mgmt.account_wide(&format!("attached-scps/{account}"), read).await?;
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

/// AWS's limit of SCPs attached to one target, counted with the ones assure would attach
/// (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_reference_limits.html).
fn within_quota(run: &RunInput, attached: &[(String, String)]) -> Result<(), StepError> {
    let missing = policies(run).iter().filter(|(n, _, _)| !attached.iter().any(|(a, _)| a == n)).count();
    if attached.len() + missing > MAX_POLICIES_PER_TARGET {
        return Err(StepError::new(ErrorName::QuotaExceeded, format!(
            "account {} has {} service control policies attached ({}); attaching {missing} more would pass AWS's limit of {MAX_POLICIES_PER_TARGET} per target: detach or merge one first",
            run.account, attached.len(), attached.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "))));
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
    let mgmt = aws.account(&run.org.management, &run.home_region).await?;
    let orgs = mgmt.organizations();
    if run.organization.is_none() {
        root_enables_scps(&orgs).await?;
    }
    within_quota(run, &attached_once(&mgmt, &run.account).await?)
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

/// The policies' ids a bulk run's organization step recorded, after checking their content.
fn organized_ids(run: &RunInput) -> Option<std::collections::BTreeMap<String, String>> {
    let policies = run.organization.as_ref()?.get("scps")?.get("policies")?.as_object()?;
    Some(policies.iter().filter_map(|(n, id)| Some((n.clone(), id.as_str()?.to_owned()))).collect())
}

pub async fn apply(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let region = &run.home_region;
    let mgmt = aws.account(&run.org.management, region).await?;
    let orgs = mgmt.organizations();
    let mut changes = Changes::new(&mgmt);

    let attached = attached_scps(&orgs, &run.account).await?;
    within_quota(run, &attached)?;
    let ids = match organized_ids(run) {
        Some(ids) => ids,
        None => ensure_policies(&orgs, run, &mut changes).await?,
    };
    for (name, _, _) in &policies(run) {
        let id = ids.get(*name).cloned().unwrap_or_default();
        if !attached.iter().any(|(n, _)| n == name) {
            if changes.live() {
                if id.is_empty() {
                    return Err(StepError::new(
                        ErrorName::Conflict,
                        format!("scps: the bulk run's organization step recorded no policy {name}"),
                    ));
                }
                match orgs.attach_policy().policy_id(&id).target_id(run.account.as_str()).send().await {
                    Ok(_) => {}
                    // Attached between the listing and now: what this step wanted.
                    Err(e) if error_code(&e) == Some("DuplicatePolicyAttachmentException") => {}
                    Err(e) => return Err(e).aws(format!("organizations:AttachPolicy {name}")),
                }
            }
            changes.push(
                format!("organizations:policy/{name}/target/{}", run.account),
                "attach",
                json!(false),
                json!(true),
            );
        }
    }
    let snapshot = json!({"attached": attached.iter().map(|(n, i)| json!({"name": n, "id": i})).collect::<Vec<_>>()});
    Ok(changes.output(StepName::Scps, region, "service control policies", snapshot))
}

/// Evidence: both policies attached to the account with the expected content.
pub async fn evidence_for(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let mgmt = aws.account(&run.org.management, &run.home_region).await?;
    let orgs = mgmt.organizations();
    let attached: std::collections::BTreeMap<String, String> =
        attached_scps(&orgs, &run.account).await?.into_iter().collect();
    // In a bulk run, the organization step read every policy's content a moment before the
    // accounts' runs began, once for all of them (Organizations throttles first): here the policy
    // attached must be the very one it checked.
    let organized = organized_ids(run);
    let checked = match organized {
        Some(_) => "the policy whose content the bulk run's organization step checked",
        None => "content as assure wrote it",
    };
    let mut out = Vec::new();
    for (name, _, doc) in policies(run) {
        let ok = match (attached.get(name), &organized) {
            (Some(id), Some(ids)) => ids.get(name) == Some(id),
            (Some(id), None) => {
                let current = orgs
                    .describe_policy()
                    .policy_id(id)
                    .send()
                    .await
                    .aws(format!("organizations:DescribePolicy {name}"))?
                    .policy()
                    .and_then(|p| p.content())
                    .and_then(|c| serde_json::from_str::<Value>(c).ok());
                current.as_ref() == Some(&doc)
            }
            (None, _) => false,
        };
        let control = if name == SCP_ROOT { "scps.restrict-root" } else { "scps.attached" };
        out.push(evidence(
            &mgmt,
            control,
            format!("organizations:policy/{name} on {}", run.account),
            ok,
            format!("attached: {}, {checked}: {ok}", attached.contains_key(name)),
        ));
    }
    Ok(out)
}

/// The SCP control: the mandatory service control policies, attached to the account.
pub struct Scps;

impl Control for Scps {
    fn name(&self) -> &'static str {
        "scps"
    }

    fn steps(&self) -> &'static [StepName] {
        &[StepName::Scps]
    }

    fn preflight<'a>(&'a self, aws: &'a Aws, run: &'a RunInput) -> Fut<'a, ()> {
        Box::pin(preflight(aws, run))
    }

    /// The policies themselves, with assure's content; their ids are the facts.
    fn organize<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, _: &'a Region) -> Fut<'a, Organized> {
        Box::pin(async move {
            let mgmt = aws.account(&run.org.management, &run.home_region).await?;
            let orgs = mgmt.organizations();
            root_enables_scps(&orgs).await?;
            let mut changes = Changes::new(&mgmt);
            let ids = ensure_policies(&orgs, run, &mut changes).await?;
            Ok(Organized { changes: changes.list, facts: json!({"policies": ids}) })
        })
    }

    fn apply<'a>(&'a self, call: StepCall<'a>) -> Fut<'a, StepOutput> {
        let StepCall { aws, run, .. } = call;
        Box::pin(apply(aws, run))
    }

    fn evidence<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, _: &'a Region) -> Fut<'a, Vec<Evidence>> {
        Box::pin(evidence_for(aws, run))
    }

    fn compensate<'a>(&'a self, undo: &'a Undo<'a>, region: &'a Region, report: &'a mut Report) -> Fut<'a, ()> {
        Box::pin(compensate(undo, region, report))
    }
}

/// assure's policies detached from the account; the policies stay for the organization's other accounts.
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let run = undo.run;
    let mgmt = undo.aws.account(&run.org.management, region).await?;
    let orgs = mgmt.organizations();
    for (name, id) in attached_scps(&orgs, &run.account).await? {
        if name == SCP_PROTECT || name == SCP_ROOT {
            orgs.detach_policy()
                .policy_id(&id)
                .target_id(run.account.as_str())
                .send()
                .await
                .aws("organizations:DetachPolicy")?;
            report.restored.push(format!("scps: detached {name} from {}", run.account));
        }
    }
    Ok(())
}
