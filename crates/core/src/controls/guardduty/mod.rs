//! GuardDuty, per region: first the account leaves a foreign administrator (its detector, filters
//! and publishing destinations stay, recorded in the snapshot); then the security account becomes
//! the organization's delegated administrator with auto-enable for all members and findings
//! exported to the logging bucket, and the account becomes its member with an enabled detector.

use assure_contract::{ErrorName, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_guardduty::types::{
    AccountDetail, AutoEnableMembers, DestinationProperties, DestinationType, FindingPublishingFrequency,
};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::organized;
use crate::controls::kit::Changes;
use crate::controls::kit::{already_exists, logging_key_to_use, registered_administrators};
use crate::controls::{Ahead, Control, Known, Snapshot};

pub mod catalogue;
mod compensate;
mod evidence;
mod permissions;
pub mod record;

use compensate::*;
pub use evidence::*;

/// The first detector of the account in this region, if any.
async fn detector(acct: &AccountConfig) -> Result<Option<String>, StepError> {
    let ids = acct.guardduty().list_detectors().send().await.aws("guardduty:ListDetectors")?;
    Ok(ids.detector_ids().first().cloned())
}

/// The administrator account of `det`, if it has one.
async fn administrator(acct: &AccountConfig, det: &str) -> Result<Option<String>, StepError> {
    let out = acct
        .guardduty()
        .get_administrator_account()
        .detector_id(det)
        .send()
        .await
        .aws("guardduty:GetAdministratorAccount")?;
    // `administrator` is a required member, so "none" arrives as an empty one.
    Ok(out.administrator().and_then(|a| a.account_id()).map(str::to_owned))
}

/// How GuardDuty refuses the organization calls of an administrator it does not know yet: a
/// `BadRequestException` saying the account is not the delegated administrator. Only after the
/// step designated it (or saw it designated); a refusal that lasts a minute is reported as it is.
fn admin_propagating(code: &str, message: &str) -> bool {
    code == "BadRequestException" && message.contains("delegated administrator")
}

/// Leaves an administrator that is not the organization's security account, and releases the
/// account's own members (an administrator cannot become a member). Records everything.
pub async fn stop_foreign(
    aws: &Aws,
    run: &RunInput,
    region: &Region,
    known: Known<'_>,
) -> Result<StepOutput, StepError> {
    let target = aws.account(&run.account, region).await?;
    let snapshot = known.part_or(SNAPSHOT, snapshot(&target)).await?;
    let mut changes = Changes::new(&target);
    let gd = target.guardduty();
    // The snapshot has the detector and its administrator: decide from it.
    let detectors = record::detectors(&snapshot)?.unwrap_or_default();
    let first = detectors.first();
    if let Some(det) = first.map(|d| d.detector_id.clone()) {
        let admin = first.and_then(|d| d.administrator_account()).map(str::to_owned);
        if let Some(admin) = admin {
            if admin != run.org.security.as_str() {
                if changes.live() {
                    gd.disassociate_from_administrator_account()
                        .detector_id(&det)
                        .send()
                        .await
                        .aws("guardduty:DisassociateFromAdministratorAccount")?;
                }
                changes.push(format!("guardduty:{det}/administrator"), "disassociate", json!(admin), Value::Null);
            }
        }
        let members =
            gd.list_members().detector_id(&det).only_associated("true").send().await.aws("guardduty:ListMembers")?;
        let ids: Vec<String> = members.members().iter().filter_map(|m| m.account_id().map(str::to_owned)).collect();
        if !ids.is_empty() {
            if changes.live() {
                gd.disassociate_members()
                    .detector_id(&det)
                    .set_account_ids(Some(ids.clone()))
                    .send()
                    .await
                    .aws("guardduty:DisassociateMembers")?;
            }
            changes.push(format!("guardduty:{det}/members"), "disassociate", json!(ids), json!([]));
        }
    }
    Ok(changes.output(
        StepName::StopGuardDuty,
        region,
        &format!("GuardDuty in {region}"),
        json!({"detectors": snapshot}),
    ))
}

/// GuardDuty's service principal, as Organizations knows it.
const PRINCIPAL: &str = "guardduty.amazonaws.com";

/// The detector id a plan stands in for a detector it would create.
const PLANNED: &str = "(planned)";

/// A detector [`ensure_detector`] answers: its id ([`PLANNED`] in plan mode when it would be
/// created), and whether this call created it. A detector made a moment ago has nothing yet (no
/// administrator, no organization configuration, no publishing destination), so whoever made it
/// need not read those.
struct Detector {
    id: String,
    new: bool,
}

/// Ensures a detector exists and is enabled. `none_known`: the run found the account without one in
/// this region, and nothing of the run makes one before this step, so there is nothing to list.
async fn ensure_detector(acct: &AccountConfig, none_known: bool, changes: &mut Changes) -> Result<Detector, StepError> {
    let gd = acct.guardduty();
    let found = if none_known { None } else { detector(acct).await? };
    match found {
        Some(det) => {
            let d = gd.get_detector().detector_id(&det).send().await.aws("guardduty:GetDetector")?;
            if d.status().map(|s| s.as_str()) != Some("ENABLED") {
                if changes.live() {
                    gd.update_detector().detector_id(&det).enable(true).send().await.aws("guardduty:UpdateDetector")?;
                }
                changes.push_in(
                    acct.account.clone(),
                    acct.region.clone(),
                    format!("guardduty:{det}"),
                    "enable",
                    json!(d.status().map(|s| s.as_str())),
                    json!("ENABLED"),
                );
            }
            Ok(Detector { id: det, new: false })
        }
        None if !changes.live() => {
            changes.push_in(
                acct.account.clone(),
                acct.region.clone(),
                "guardduty:detector",
                "create",
                Value::Null,
                json!("ENABLED"),
            );
            Ok(Detector { id: PLANNED.to_owned(), new: true })
        }
        None => {
            let made = gd
                .create_detector()
                .enable(true)
                .finding_publishing_frequency(FindingPublishingFrequency::FifteenMinutes)
                .send()
                .await;
            let det = match made {
                Ok(out) => out.detector_id().unwrap_or_default().to_owned(),
                // GuardDuty made one a moment ago, after the listing: for the delegated
                // administrator when it was designated, for a member when the administrator
                // added it (API_CreateDetector: a detector already exists for the account).
                Err(e)
                    if already_exists(
                        error_code(&e),
                        e.as_service_error().and_then(|s| s.meta().message()).unwrap_or(""),
                    ) =>
                {
                    return match detector(acct).await? {
                        Some(id) => Ok(Detector { id, new: false }),
                        None => Err(e).aws("guardduty:CreateDetector"),
                    };
                }
                Err(e) => return Err(e).aws("guardduty:CreateDetector"),
            };
            changes.push_in(
                acct.account.clone(),
                acct.region.clone(),
                format!("guardduty:{det}"),
                "create",
                Value::Null,
                json!("ENABLED"),
            );
            Ok(Detector { id: det, new: true })
        }
    }
}

/// The organization's part in `region`: the security account as delegated administrator (made by
/// the management account), its detector with auto-enable for every member, its findings exported
/// to the logging bucket. Answers the security account's detector id ([`PLANNED`] in a plan that
/// would create it).
async fn organize_region(
    aws: &Aws,
    run: &RunInput,
    region: &Region,
    changes: &mut Changes,
) -> Result<String, StepError> {
    let mgmt = aws.management(&run.org.management, region).await?;
    let security = aws.account(&run.org.security, region).await?;
    // The security account is the delegated administrator (management account, this region).
    // Designating one registers it with Organizations, so an organization that has none registered
    // has none in any region, and there is nothing to list region by region.
    let registered = registered_administrators(&mgmt, PRINCIPAL).await?;
    let current = if registered.is_empty() { vec![] } else { delegated_administrators(aws, run, region).await? };
    let designated = !current.contains(&run.org.security.to_string());
    if designated {
        if !current.is_empty() {
            return Err(conflict(run, region, &current));
        }
        if changes.live() {
            mgmt.guardduty()
                .enable_organization_admin_account()
                .admin_account_id(run.org.security.as_str())
                .send()
                .await
                .aws("guardduty:EnableOrganizationAdminAccount")?;
        }
        changes.push_in(
            mgmt.account.clone(),
            region.clone(),
            "guardduty:organization/admin",
            "enable",
            Value::Null,
            json!(run.org.security),
        );
    }

    // The administrator's detector, auto-enable for every member, findings to the logging bucket.
    // Designating the administrator enables GuardDuty for it
    // (https://docs.aws.amazon.com/guardduty/latest/ug/organizations_permissions.html): a detector
    // GuardDuty made (or resumed) a moment ago, whose organization configuration is set below
    // whatever it is, and whose publishing destination, if it had one, stays.
    let Detector { id: sec_det, new } = if designated && changes.live() {
        match detector(&security).await? {
            Some(id) => Detector { id, new: true },
            None => ensure_detector(&security, true, changes).await?,
        }
    } else {
        ensure_detector(&security, false, changes).await?
    };
    let gd = security.guardduty();
    // A detector just made (or that the plan would make) has no configuration yet.
    let auto_enable = if new {
        None
    } else {
        // (designated a moment ago by a concurrent run, perhaps: see admin_propagating)
        crate::aws::while_propagating(admin_propagating, || {
            gd.describe_organization_configuration().detector_id(&sec_det).send()
        })
        .await
        .aws("guardduty:DescribeOrganizationConfiguration")?
        .auto_enable_organization_members()
        .cloned()
    };
    if auto_enable.as_ref() != Some(&AutoEnableMembers::All) {
        if changes.live() {
            // GuardDuty learns of an administrator designated a moment ago through Organizations,
            // not at once; until then it refuses the administrator's organization calls.
            crate::aws::while_propagating(admin_propagating, || {
                gd.update_organization_configuration()
                    .detector_id(&sec_det)
                    .auto_enable_organization_members(AutoEnableMembers::All)
                    .send()
            })
            .await
            .aws("guardduty:UpdateOrganizationConfiguration")?;
        }
        changes.push_in(
            security.account.clone(),
            region.clone(),
            format!("guardduty:{sec_det}/organization"),
            "update",
            json!(auto_enable.as_ref().map(|a| a.as_str())),
            json!("ALL"),
        );
    }
    let exporting = !new
        && !gd
            .list_publishing_destinations()
            .detector_id(&sec_det)
            .send()
            .await
            .aws("guardduty:ListPublishingDestinations")?
            .destinations()
            .is_empty();
    if !exporting {
        let key = logging_key_to_use(aws, run).await?;
        let bucket_arn = format!("arn:aws:s3:::{}/guardduty", run.logging_bucket());
        let mut created = true;
        if changes.live() {
            let res = gd
                .create_publishing_destination()
                .detector_id(&sec_det)
                .destination_type(DestinationType::S3)
                .destination_properties(
                    DestinationProperties::builder().destination_arn(&bucket_arn).kms_key_arn(&key).build(),
                )
                .send()
                .await;
            match res {
                Ok(_) => {}
                // Another account's run (a bulk run) created the security account's destination a
                // moment ago: one detector has one destination, and it is the same for every run.
                Err(e)
                    if e.as_service_error()
                        .and_then(|s| s.meta().message())
                        .is_some_and(|m| m.contains("already exists")) =>
                {
                    created = false;
                }
                Err(e) => return Err(e).aws("guardduty:CreatePublishingDestination"),
            }
        }
        if created {
            changes.push_in(
                security.account.clone(),
                region.clone(),
                format!("guardduty:{sec_det}/publishingDestination"),
                "create",
                Value::Null,
                json!(bucket_arn),
            );
        }
    }

    Ok(sec_det)
}

pub async fn apply(aws: &Aws, run: &RunInput, region: &Region, known: Known<'_>) -> Result<StepOutput, StepError> {
    let security = aws.account(&run.org.security, region).await?;
    let target = aws.account(&run.account, region).await?;
    let mut changes = Changes::new(&target);
    let sec_det = match run.organization {
        None => organize_region(aws, run, region, &mut changes).await?,
        // The bulk run's organization step made the security account's detector a moment ago.
        Some(_) => detector(&security).await?.ok_or_else(|| {
            StepError::new(
                ErrorName::Conflict,
                format!(
                    "guardduty: the security account {} has no detector in {region}, which the bulk run's organization step made; something deleted it since: onboard the account on its own, which makes it again",
                    run.org.security
                ),
            )
        })?,
    };
    let gd = security.guardduty();

    // The account: an enabled detector, a member of the security account.
    // The stop step before this one never makes or deletes a detector.
    let none_known = known.part(SNAPSHOT).and_then(Value::as_array).is_some_and(Vec::is_empty);
    let Detector { id: det, new } = ensure_detector(&target, none_known, &mut changes).await?;
    let admin = if new { None } else { administrator(&target, &det).await? };
    // Suppression rules archive findings before the administrator's export sees them: each is
    // kept, with its criteria, as a saved filter (NOOP), and rollback makes it suppress again.
    if !new {
        for name in suppression_rules(&target, &det).await? {
            if changes.live() {
                target
                    .guardduty()
                    .update_filter()
                    .detector_id(&det)
                    .filter_name(&name)
                    .action(aws_sdk_guardduty::types::FilterAction::Noop)
                    .send()
                    .await
                    .aws(format!("guardduty:UpdateFilter {name}"))?;
            }
            changes.push(format!("guardduty:{det}/filter/{name}"), "update", json!("ARCHIVE"), json!("NOOP"));
        }
    }
    if admin.as_deref() != Some(run.org.security.as_str()) && !changes.live() {
        changes.push(format!("guardduty:{det}/administrator"), "associate", Value::Null, json!(run.org.security));
    } else if admin.as_deref() != Some(run.org.security.as_str()) {
        let out = gd
            .create_members()
            .detector_id(&sec_det)
            .account_details(
                AccountDetail::builder()
                    .account_id(run.account.as_str())
                    .email(format!("{}@assure.invalid", run.account))
                    .build(),
            )
            .send()
            .await
            .aws("guardduty:CreateMembers")?;
        if let Some(u) = out.unprocessed_accounts().first() {
            return Err(StepError::new(
                ErrorName::Conflict,
                format!("guardduty:CreateMembers {}: {}", run.account, u.result().unwrap_or("")),
            ));
        }
        changes.push(format!("guardduty:{det}/administrator"), "associate", Value::Null, json!(run.org.security));
    }
    Ok(changes.output(StepName::GuardDuty, region, &format!("GuardDuty in {region}"), Value::Null))
}

/// Every detector with its settings, administrator, filters and publishing destinations.
pub async fn snapshot(target: &AccountConfig) -> Result<Value, StepError> {
    let gd = target.guardduty();
    let ids = gd.list_detectors().send().await.aws("guardduty:ListDetectors")?;
    let mut out = Vec::new();
    for id in ids.detector_ids() {
        let d = gd.get_detector().detector_id(id).send().await.aws("guardduty:GetDetector")?;
        let admin =
            gd.get_administrator_account().detector_id(id).send().await.aws("guardduty:GetAdministratorAccount")?;
        let filters = gd.list_filters().detector_id(id).send().await.aws("guardduty:ListFilters")?;
        let suppressing = suppression_rules(target, id).await?;
        let dests = gd
            .list_publishing_destinations()
            .detector_id(id)
            .send()
            .await
            .aws("guardduty:ListPublishingDestinations")?;
        out.push(record::RecordedDetector {
            detector_id: id.clone(),
            status: d.status().map(|s| s.as_str().to_owned()),
            finding_publishing_frequency: d.finding_publishing_frequency().map(|f| f.as_str().to_owned()),
            // `administrator` is required in the API model, so the SDK shows "none" as an empty one.
            administrator: admin.administrator().filter(|a| a.account_id().is_some()).map(|a| {
                record::RecordedAdministrator {
                    account_id: a.account_id().map(str::to_owned),
                    relationship_status: a.relationship_status().map(str::to_owned),
                }
            }),
            filters: filters.filter_names().to_vec(),
            suppression_rules: suppressing,
            publishing_destinations: dests
                .destinations()
                .iter()
                .filter_map(|d| d.destination_id().map(str::to_owned))
                .collect(),
        });
    }
    serde_json::to_value(out).map_err(|e| StepError::internal(e.to_string()))
}

/// The organization's GuardDuty delegated administrators in `region` (the management account's view).
async fn delegated_administrators(aws: &Aws, run: &RunInput, region: &Region) -> Result<Vec<String>, StepError> {
    let mgmt = aws.management(&run.org.management, region).await?;
    let admins = mgmt
        .guardduty()
        .list_organization_admin_accounts()
        .send()
        .await
        .aws(format!("guardduty:ListOrganizationAdminAccounts in {region}"))?;
    Ok(admins.admin_accounts().iter().filter_map(|a| a.admin_account_id().map(str::to_owned)).collect())
}

fn conflict(run: &RunInput, region: &Region, admins: &[String]) -> StepError {
    StepError::new(
        ErrorName::Conflict,
        format!(
            "guardduty: account {} is the organization's delegated administrator in {region}, not the security account {}; only the management account can change it (guardduty:DisableOrganizationAdminAccount)",
            admins.first().map(String::as_str).unwrap_or("?"),
            run.org.security
        ),
    )
}

/// Another account already GuardDuty's delegated administrator in a region of the run: the
/// guardduty step could not make the security account administrator there.
async fn preflight(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    // A bulk run's organization step made the security account the administrator everywhere.
    if run.organization.is_some() {
        return Ok(());
    }
    // Designating a GuardDuty delegated administrator "enables GuardDuty as a trusted service in AWS
    // Organizations" and registers the account there
    // (https://docs.aws.amazon.com/guardduty/latest/ug/organizations_permissions.html): when
    // Organizations knows no account but the security account, no other account is the
    // administrator in any region. Otherwise each region of the run says where.
    let mgmt = aws.management(&run.org.management, &run.home_region).await?;
    if registered_administrators(&mgmt, PRINCIPAL).await?.iter().all(|a| a == run.org.security.as_str()) {
        return Ok(());
    }
    let found =
        futures::future::try_join_all(run.regions.iter().map(|r| delegated_administrators(aws, run, r))).await?;
    for (region, admins) in run.regions.iter().zip(found) {
        if !admins.is_empty() && !admins.contains(&run.org.security.to_string()) {
            return Err(conflict(run, region, &admins));
        }
    }
    Ok(())
}

/// The key of the control's part in discover's snapshot.
const SNAPSHOT: &str = "guardduty";

/// The GuardDuty control: out of a foreign administrator, then a member of the security account.
pub const CONTROL: Control = Control {
    name: "guardduty",
    steps: &[StepName::StopGuardDuty, StepName::GuardDuty],
    catalogue: catalogue::ENTRIES,
    snapshot: Some(Snapshot { key: SNAPSHOT, read: |acct, _| Box::pin(snapshot(acct)), summarize }),
    permissions: permissions::PERMISSIONS,
    ahead: Ahead {
        preflight: |aws, run| Box::pin(preflight(aws, run)),
        organize: |aws, run, region| {
            Box::pin(organized(aws, run, region, |a, r, g, c| {
                Box::pin(async { organize_region(a, r, g, c).await.map(drop) })
            }))
        },
        ..Ahead::NOTHING
    },
    apply: |call| match call.step {
        StepName::StopGuardDuty => Box::pin(stop_foreign(call.aws, call.run, call.region, call.known)),
        _ => Box::pin(apply(call.aws, call.run, call.region, call.known)),
    },
    evidence: |aws, run, region| Box::pin(evidence_for(aws, run, region)),
    compensate: |undo, region, report| Box::pin(compensate(undo, region, report)),
};

fn summarize(part: &Value) -> String {
    let detectors = record::detectors(part).ok().flatten().unwrap_or_default();
    let administered = detectors.iter().any(|d| d.administrator.is_some());
    format!("{} GuardDuty detector(s){}", detectors.len(), if administered { " under an administrator" } else { "" })
}
