//! Rollback: the account's GuardDuty set up as it was.

use assure_contract::{Region, StepError};
use aws_sdk_guardduty::types::AutoEnableMembers;

use crate::aws::{error_code, AwsResultExt};
use crate::controls::{Report, Undo};

use super::*;

/// Out of the security account's administration, the detector's settings as they were.
pub(super) async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let (aws, run) = (undo.aws, undo.run);
    let acct = undo.target(region).await?;
    let before = record::detectors(&undo.before(region, SNAPSHOT))?;
    let gd = acct.guardduty();
    let ids = gd.list_detectors().send().await.aws("guardduty:ListDetectors")?;
    let Some(det) = ids.detector_ids().first().cloned() else { return Ok(()) };
    // Leave the security account's administration, unless the account was its member before the
    // run (it was under this organization's delegated administrator already): that stays as it was.
    let before_admin = before.as_ref().and_then(|d| d.first()).and_then(|d| d.administrator_account());
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
    match before.as_ref().and_then(|d| d.first()) {
        Some(d) => {
            if let Some(admin) = d.administrator_account().filter(|_| !was_member) {
                report.not_restorable.push(format!(
                    "guardduty {region}: membership under the foreign administrator {admin} (only {admin} can invite the account again)"
                ));
            }
            for name in &d.suppression_rules {
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
            let was_enabled = d.status.as_deref() == Some("ENABLED");
            let mut update = gd.update_detector().detector_id(&det).enable(was_enabled);
            if let Some(f) = d.finding_publishing_frequency.as_deref() {
                update =
                    update.finding_publishing_frequency(aws_sdk_guardduty::types::FindingPublishingFrequency::from(f));
            }
            update.send().await.aws("guardduty:UpdateDetector")?;
            report.restored.push(format!("guardduty {region}: detector {det} settings as they were"));
        }
        // The region had no detector: the one assure created is suspended, not deleted, so its
        // findings are kept (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_suspend-disable.html).
        // A member of the organization's administrator cannot suspend its own detector.
        None if before.is_some() && !still_member => {
            gd.update_detector().detector_id(&det).enable(false).send().await.aws("guardduty:UpdateDetector")?;
            report.not_restorable.push(format!(
                "guardduty {region}: detector {det}, created by assure, is suspended and stays (deleting it would delete its findings)"
            ));
        }
        None if before.is_some() => report.not_restorable.push(format!(
            "guardduty {region}: detector {det}, created by assure, stays enabled (the account stays a member of the security account)"
        )),
        None => report.not_restorable.push(format!(
            "guardduty {region}: detector {det} stays as it is (the run recorded no snapshot of this region's detectors)"
        )),
    }
    Ok(())
}
