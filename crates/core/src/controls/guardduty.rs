//! GuardDuty, per region: first the account leaves a foreign administrator (its detector, filters
//! and publishing destinations stay, recorded in the snapshot); then the security account becomes
//! the organization's delegated administrator with auto-enable for all members and findings
//! exported to the logging bucket, and the account becomes its member with an enabled detector.

use assure_contract::{ErrorName, Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_guardduty::types::{
    AccountDetail, AutoEnableMembers, DestinationProperties, DestinationType, FindingPublishingFrequency,
};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::{already_exists, logging_key_to_use, registered_administrators};
use crate::controls::kit::{evidence, Changes};
use crate::controls::{Control, Fut, Known, Organized, Report, StepCall, Undo};

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
    let first = snapshot.as_array().and_then(|d| d.first());
    if let Some(det) = first.and_then(|d| d["detectorId"].as_str()).map(str::to_owned) {
        let admin = first.and_then(|d| d["administrator"]["accountId"].as_str()).map(str::to_owned);
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

/// Evidence for GuardDuty in one region. The membership is the administrator's record of it
/// (GetMembers: the member's detector and its relationship, `Enabled` while the security account
/// administers it, https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Member.html),
/// read with the security account's publishing destinations; the account's own detector is then
/// read by the id the administrator knows, or, when it knows none, found in the account.
pub async fn evidence_for(aws: &Aws, run: &RunInput, region: &Region) -> Result<Vec<Evidence>, StepError> {
    let target = aws.account(&run.account, region).await?;
    let security = aws.account(&run.org.security, region).await?;
    let (membership, statuses) = match detector(&security).await? {
        Some(sd) => {
            let sgd = security.guardduty();
            let (members, dests) = futures::future::join(
                async {
                    sgd.get_members()
                        .detector_id(&sd)
                        .account_ids(run.account.as_str())
                        .send()
                        .await
                        .aws("guardduty:GetMembers")
                },
                async {
                    sgd.list_publishing_destinations()
                        .detector_id(&sd)
                        .send()
                        .await
                        .aws("guardduty:ListPublishingDestinations")
                },
            )
            .await;
            let membership =
                members?.members().iter().find(|m| m.account_id() == Some(run.account.as_str())).map(|m| {
                    (
                        m.detector_id().filter(|d| !d.is_empty()).map(str::to_owned),
                        m.relationship_status().unwrap_or_default().to_owned(),
                    )
                });
            let statuses: Vec<String> =
                dests?.destinations().iter().map(|d| d.status().map_or("(none)", |s| s.as_str()).to_owned()).collect();
            (membership, statuses)
        }
        None => (None, vec![]),
    };
    let det = match membership.as_ref().and_then(|m| m.0.clone()) {
        Some(d) => Some(d),
        None => detector(&target).await?,
    };
    let enabled = match &det {
        Some(d) => {
            let got = target.guardduty().get_detector().detector_id(d).send().await.aws("guardduty:GetDetector")?;
            got.status().map(|s| s.as_str()) == Some("ENABLED")
        }
        None => false,
    };
    let member = membership.as_ref().is_some_and(|m| m.1 == "Enabled");
    let res = det.clone().map_or_else(|| "guardduty:(no detector)".to_owned(), |d| format!("guardduty:detector/{d}"));
    // Exported means a destination GuardDuty can publish to: its status is PUBLISHING, not
    // PENDING_VERIFICATION or UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY (a bucket or key policy
    // that does not admit this region's GuardDuty principal).
    let exported = statuses.iter().any(|s| s == "PUBLISHING");
    let suppressing = match &det {
        Some(d) => suppression_rules(&target, d).await?,
        None => Vec::new(),
    };
    Ok(vec![
        evidence(
            &target,
            "guardduty.no-suppression",
            &res,
            suppressing.is_empty(),
            if suppressing.is_empty() {
                "no suppression rule archives the account's findings".to_owned()
            } else {
                format!(
                    "suppression rules (filters whose action is ARCHIVE) hide findings from the administrator's export: {}",
                    suppressing.join(", ")
                )
            },
        ),
        evidence(&target, "guardduty.enabled", &res, enabled, format!("detector: {det:?}, enabled: {enabled}")),
        evidence(
            &target,
            "guardduty.security-administrator",
            &res,
            member,
            match &membership {
                Some((_, status)) => format!("member of the security account {}: {status}", run.org.security),
                None => format!("not a member of the security account {}", run.org.security),
            },
        )
        // GuardDuty enables itself in a member it was just given asynchronously: `Created` until
        // then (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Member.html).
        .pending_if(membership.as_ref().is_some_and(|m| m.1 == "Created")),
        evidence(
            &target,
            "guardduty.findings-exported",
            format!("guardduty:{}", run.org.security),
            exported,
            if statuses.is_empty() {
                "the security account's detector has no publishing destination".to_owned()
            } else {
                format!("the security account's publishing destination: {}", statuses.join(", "))
            },
        )
        // GuardDuty verifies a new destination first (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Destination.html).
        .pending_if(statuses.iter().any(|s| s == "PENDING_VERIFICATION")),
    ])
}
/// The detector's suppression rules: its filters whose action is ARCHIVE. "The suppressed findings
/// are not sent to any of the AWS services with which you may integrate"
/// (https://docs.aws.amazon.com/guardduty/latest/ug/create-suppression-rules-guardduty.html).
async fn suppression_rules(acct: &AccountConfig, detector: &str) -> Result<Vec<String>, StepError> {
    let gd = acct.guardduty();
    let mut names = Vec::new();
    let mut pages = gd.list_filters().detector_id(detector).into_paginator().send();
    while let Some(page) = pages.next().await {
        names.extend(page.aws("guardduty:ListFilters")?.filter_names().iter().cloned());
    }
    let mut out = Vec::new();
    for name in names {
        let f = gd
            .get_filter()
            .detector_id(detector)
            .filter_name(&name)
            .send()
            .await
            .aws(format!("guardduty:GetFilter {name}"))?;
        if f.action() == Some(&aws_sdk_guardduty::types::FilterAction::Archive) {
            out.push(name);
        }
    }
    Ok(out)
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
        out.push(json!({
            "detectorId": id,
            "status": d.status().map(|s| s.as_str()),
            "findingPublishingFrequency": d.finding_publishing_frequency().map(|f| f.as_str()),
            // `administrator` is required in the API model, so the SDK shows "none" as an empty one.
            "administrator": admin.administrator().filter(|a| a.account_id().is_some()).map(|a| json!({
                "accountId": a.account_id(),
                "relationshipStatus": a.relationship_status(),
            })),
            "filters": filters.filter_names(),
            // The filters whose action is ARCHIVE: the guardduty step turns them to NOOP, rollback back.
            "suppressionRules": suppressing,
            "publishingDestinations": dests.destinations().iter().map(|d| d.destination_id()).collect::<Vec<_>>(),
        }));
    }
    Ok(Value::Array(out))
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
pub struct GuardDuty;

impl Control for GuardDuty {
    fn name(&self) -> &'static str {
        "guardduty"
    }

    fn steps(&self) -> &'static [StepName] {
        &[StepName::StopGuardDuty, StepName::GuardDuty]
    }

    fn snapshot_key(&self) -> Option<&'static str> {
        Some(SNAPSHOT)
    }

    fn snapshot<'a>(&'a self, acct: &'a AccountConfig, _run: &'a RunInput) -> Fut<'a, Value> {
        Box::pin(snapshot(acct))
    }

    fn summarize(&self, part: &Value) -> String {
        format!(
            "{} GuardDuty detector(s){}",
            part.as_array().map_or(0, Vec::len),
            if part.as_array().is_some_and(|d| d.iter().any(|d| !d["administrator"].is_null())) {
                " under an administrator"
            } else {
                ""
            },
        )
    }

    fn preflight<'a>(&'a self, aws: &'a Aws, run: &'a RunInput) -> Fut<'a, ()> {
        Box::pin(preflight(aws, run))
    }

    fn organize<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, region: &'a Region) -> Fut<'a, Organized> {
        Box::pin(async move {
            let mgmt = aws.management(&run.org.management, region).await?;
            let mut changes = Changes::new(&mgmt);
            organize_region(aws, run, region, &mut changes).await?;
            Ok(Organized { changes: changes.list, facts: Value::Null })
        })
    }

    fn apply<'a>(&'a self, call: StepCall<'a>) -> Fut<'a, StepOutput> {
        let StepCall { aws, run, step, region, known } = call;
        match step {
            StepName::StopGuardDuty => Box::pin(stop_foreign(aws, run, region, known)),
            _ => Box::pin(apply(aws, run, region, known)),
        }
    }

    fn evidence<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, region: &'a Region) -> Fut<'a, Vec<Evidence>> {
        Box::pin(evidence_for(aws, run, region))
    }

    fn compensate<'a>(&'a self, undo: &'a Undo<'a>, region: &'a Region, report: &'a mut Report) -> Fut<'a, ()> {
        Box::pin(compensate(undo, region, report))
    }
}

/// Out of the security account's administration, the detector's settings as they were.
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let (aws, run) = (undo.aws, undo.run);
    let acct = undo.target(region).await?;
    let before = undo.before(region, SNAPSHOT);
    let gd = acct.guardduty();
    let ids = gd.list_detectors().send().await.aws("guardduty:ListDetectors")?;
    let Some(det) = ids.detector_ids().first().cloned() else { return Ok(()) };
    // Leave the security account's administration, unless the account was its member before the
    // run (it was under this organization's delegated administrator already): that stays as it was.
    let before_admin = before.as_array().and_then(|d| d.first()).and_then(|d| d["administrator"]["accountId"].as_str());
    let was_member = before_admin == Some(run.org.security.as_str());
    let mut still_member = was_member;
    let security = aws.account(&run.org.security, region).await?;
    let sgd = security.guardduty();
    if was_member {
        report.restored.push(format!(
            "guardduty {region}: {} stays a member of the security account, as it was before the run",
            run.account
        ));
    } else if let Some(sdet) =
        sgd.list_detectors().send().await.aws("guardduty:ListDetectors")?.detector_ids().first().cloned()
    {
        let members = sgd
            .get_members()
            .detector_id(&sdet)
            .account_ids(run.account.as_str())
            .send()
            .await
            .aws("guardduty:GetMembers")?;
        // (a run that fails fast is undone while GuardDuty may not know its administrator yet)
        let auto_enable = crate::aws::while_propagating(admin_propagating, || {
            sgd.describe_organization_configuration().detector_id(&sdet).send()
        })
        .await
        .aws("guardduty:DescribeOrganizationConfiguration")?
        .auto_enable_organization_members()
        .cloned();
        if !members.members().is_empty() && auto_enable == Some(AutoEnableMembers::All) {
            still_member = true;
            // GuardDuty refuses to disassociate a member while the organization enrolls every
            // account (API_DisassociateMembers); leaving it would need the organization's policy changed.
            report.not_restorable.push(format!(
                "guardduty {region}: {} stays a member of the security account (the organization enrols every account: autoEnableOrganizationMembers is ALL)",
                run.account
            ));
        } else if !members.members().is_empty() {
            sgd.disassociate_members()
                .detector_id(&sdet)
                .account_ids(run.account.as_str())
                .send()
                .await
                .aws("guardduty:DisassociateMembers")?;
            sgd.delete_members()
                .detector_id(&sdet)
                .account_ids(run.account.as_str())
                .send()
                .await
                .aws("guardduty:DeleteMembers")?;
            report
                .restored
                .push(format!("guardduty {region}: {} is no longer a member of the security account", run.account));
        }
    }
    match before.as_array().and_then(|d| d.first()) {
        Some(d) => {
            if let Some(admin) = d["administrator"]["accountId"].as_str().filter(|_| !was_member) {
                report.not_restorable.push(format!(
                    "guardduty {region}: membership under the foreign administrator {admin} (only {admin} can invite the account again)"
                ));
            }
            for name in d["suppressionRules"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                match gd
                    .update_filter()
                    .detector_id(&det)
                    .filter_name(name)
                    .action(aws_sdk_guardduty::types::FilterAction::Archive)
                    .send()
                    .await
                {
                    Ok(_) => report.restored.push(format!("guardduty {region}: suppression rule {name} archives again")),
                    Err(e) if error_code(&e) == Some("BadRequestException") => report
                        .not_restorable
                        .push(format!("guardduty {region}: suppression rule {name}, deleted since the run")),
                    Err(e) => return Err(e).aws(format!("guardduty:UpdateFilter {name}")),
                }
            }
            let was_enabled = d["status"] == "ENABLED";
            let mut update = gd.update_detector().detector_id(&det).enable(was_enabled);
            if let Some(f) = d["findingPublishingFrequency"].as_str() {
                update =
                    update.finding_publishing_frequency(aws_sdk_guardduty::types::FindingPublishingFrequency::from(f));
            }
            update.send().await.aws("guardduty:UpdateDetector")?;
            report.restored.push(format!("guardduty {region}: detector {det} settings as they were"));
        }
        // The region had no detector: the one assure created is suspended, not deleted, so its
        // findings are kept (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_suspend-disable.html).
        // A member of the organization's administrator cannot suspend its own detector.
        None if before.is_array() && !still_member => {
            gd.update_detector().detector_id(&det).enable(false).send().await.aws("guardduty:UpdateDetector")?;
            report.not_restorable.push(format!(
                "guardduty {region}: detector {det}, created by assure, is suspended and stays (deleting it would delete its findings)"
            ));
        }
        None if before.is_array() => report.not_restorable.push(format!(
            "guardduty {region}: detector {det}, created by assure, stays enabled (the account stays a member of the security account)"
        )),
        None => report.not_restorable.push(format!(
            "guardduty {region}: detector {det} stays as it is (the run recorded no snapshot of this region's detectors)"
        )),
    }
    Ok(())
}
