//! Verify: the evidence that GuardDuty holds.

use assure_contract::{Evidence, Region, RunInput, StepError};

use crate::aws::{AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::evidence;

use super::catalogue;
use super::*;

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
            &catalogue::NO_SUPPRESSION,
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
        evidence(&target, &catalogue::ENABLED, &res, enabled, format!("detector: {det:?}, enabled: {enabled}")),
        evidence(
            &target,
            &catalogue::SECURITY_ADMINISTRATOR,
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
            &catalogue::FINDINGS_EXPORTED,
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
pub(super) async fn suppression_rules(acct: &AccountConfig, detector: &str) -> Result<Vec<String>, StepError> {
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
