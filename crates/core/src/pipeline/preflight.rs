//! Preflight: is this account a valid target, can assure act in it, and does any control already
//! know it would fail (`Ahead::preflight`)? Read-only.
//!
//! The CLI runs this step before a run starts (so bad input makes no change at all) and, once it
//! holds the account's lock, records it under the step's checkpoint; the execution's first task
//! then answers with that record. A run started by other means (AutoOnboard) has its first task run
//! the step.

use std::collections::BTreeSet;

use assure_contract::{AccountId, ErrorName, Region, RunInput, StepError, StepName, StepOutput};
use serde_json::json;

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::controls;

/// Checks the run's input against the organization. Read-only; every failure is
/// `Assure.InvalidInput` (or the mapped AWS error) with a message naming the bad field.
pub async fn validate(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    if let Some(role) = run.org.role_of(&run.account) {
        return Err(StepError::invalid_input(format!(
            "account: {} is the organization's {role} account; only other member accounts can be onboarded",
            run.account
        )));
    }
    if run.regions.is_empty() {
        return Err(StepError::invalid_input("regions: at least one region is needed"));
    }
    let unique: BTreeSet<_> = run.regions.iter().collect();
    if unique.len() != run.regions.len() {
        return Err(StepError::invalid_input("regions: a region is listed twice"));
    }
    if !run.regions.contains(&run.home_region) {
        return Err(StepError::invalid_input(format!(
            "homeRegion: {} is not one of the run's regions",
            run.home_region
        )));
    }
    // The logging bucket lives in the home region, and GuardDuty in the standard regions cannot
    // export findings to a bucket in an opt-in region
    // (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_exportfindings.html).
    if run.home_region.is_opt_in() {
        return Err(StepError::invalid_input(format!(
            "homeRegion: {} is an opt-in region; the logging bucket lives in the home region, and GuardDuty in the standard regions cannot export findings to a bucket there: choose a region enabled by default",
            run.home_region
        )));
    }
    // A bulk run checked the organization and its logging and security accounts once, before its
    // accounts' runs began (`bulk::validate`, then its organization step). The checks are
    // independent reads: all asked at once, the first refusal in this order reported.
    let own = run.organization.is_none();
    let (org, account, logging, security, checked, regions) = futures::join!(
        async {
            if own {
                organization(aws, run).await
            } else {
                Ok(())
            }
        },
        check_member(aws, run, &run.account, "account"),
        async {
            if own {
                check_member(aws, run, &run.org.logging, "org.logging").await
            } else {
                Ok(())
            }
        },
        async {
            if own {
                check_member(aws, run, &run.org.security, "org.security").await
            } else {
                Ok(())
            }
        },
        // What each control would refuse later, for a reason knowable now.
        futures::future::join_all(controls::baseline::ALL.iter().map(|c| (c.ahead.preflight)(aws, run))),
        regions_enabled(aws, run),
    );
    org?;
    account?;
    logging?;
    security?;
    checked.into_iter().collect::<Result<Vec<()>, StepError>>()?;
    regions
}

/// The organization has all features and `org.management` is its management account.
async fn organization(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    let orgs = aws.organization(&run.org.management, &run.home_region).organizations();
    let org = orgs.describe_organization().send().await.aws("organizations:DescribeOrganization")?;
    let org = org
        .organization()
        .ok_or_else(|| StepError::internal("organizations:DescribeOrganization returned no organization"))?;
    // Trusted access, delegated administrators and SCPs all need all features, and only the
    // management account can enable them, with every member's approval
    // (https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_org_support-all-features.html).
    if org.feature_set() != Some(&aws_sdk_organizations::types::OrganizationFeatureSet::All) {
        return Err(StepError::new(
            ErrorName::Conflict,
            format!(
                "org: organization {} has the feature set {}; the baseline needs all features (trusted access, delegated administrators, SCPs), which only its management account can enable (organizations:EnableAllFeatures)",
                org.id().unwrap_or("?"),
                org.feature_set().map_or("?", |f| f.as_str())
            ),
        ));
    }
    if org.master_account_id() != Some(run.org.management.as_str()) {
        return Err(StepError::invalid_input(format!(
            "org.management: {} is not the management account of organization {} (that is {})",
            run.org.management,
            org.id().unwrap_or("?"),
            org.master_account_id().unwrap_or("?")
        )));
    }
    Ok(())
}

/// Every region of the run is enabled in every account that acts there: in an opt-in region an
/// account has not enabled, AWS refuses every call
/// (https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html), and opt-in
/// regions are disabled in every account until it enables them. The account, the security account
/// (GuardDuty's and Access Analyzer's administrator in each region) and the management account
/// (which designates that administrator in each region) need every region of the run; the logging
/// account only the home region, where the bucket is. A bulk run's organization step checked the
/// organization's accounts once. The home region itself must not be an opt-in region: GuardDuty in
/// the standard regions cannot export findings to a bucket in an opt-in region ([`validate`]
/// refuses one first). Read in each account itself (`account:ListRegions` without an AccountId), which needs no trusted
/// access for the Account Management service.
async fn regions_enabled(aws: &Aws, run: &RunInput) -> Result<(), StepError> {
    let opt_in: Vec<&Region> = run.regions.iter().filter(|r| r.is_opt_in()).collect();
    let mut checks: Vec<(&AccountId, &str, Vec<&Region>)> =
        vec![(&run.account, "account", run.regions.iter().collect())];
    if run.organization.is_none() && !opt_in.is_empty() {
        checks.push((&run.org.security, "org.security", opt_in.clone()));
        checks.push((&run.org.management, "org.management", opt_in.clone()));
    }
    // Every account read, whichever refuses: each answer is needed for the message.
    let read = futures::future::join_all(checks.iter().map(|(account, _, _)| enabled_regions(aws, run, account))).await;
    for ((account, role, wanted), status) in checks.iter().zip(read) {
        let status = status?;
        for region in wanted {
            match status.get(region.as_str()) {
                Some(s) if s == "ENABLED" || s == "ENABLED_BY_DEFAULT" => {}
                found => {
                    let whose = if *role == "account" {
                        String::new()
                    } else {
                        format!(", the organization's {} account", role.trim_start_matches("org."))
                    };
                    return Err(StepError::invalid_input(format!(
                        "regions: {region} is not enabled in account {account}{whose} ({}); AWS refuses every call there: enable it (account:EnableRegion) and wait until it is ENABLED, or leave it out of the run's regions",
                        found.map_or("not listed", |s| s.as_str())
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The opt status of every region `account` lists, by name.
async fn enabled_regions(
    aws: &Aws,
    run: &RunInput,
    account: &AccountId,
) -> Result<std::collections::BTreeMap<String, String>, StepError> {
    let acct = match account == &run.org.management {
        true => aws.management(account, &run.home_region).await?,
        false => aws.account(account, &run.home_region).await?,
    };
    let client = acct.account_management();
    let mut status = std::collections::BTreeMap::new();
    let mut pages = client.list_regions().max_results(50).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.aws(format!("account:ListRegions in {account}"))?;
        for r in page.regions() {
            if let (Some(name), Some(s)) = (r.region_name(), r.region_opt_status()) {
                status.insert(name.to_owned(), s.as_str().to_owned());
            }
        }
    }
    Ok(status)
}

async fn check_member(aws: &Aws, run: &RunInput, account: &AccountId, field: &str) -> Result<(), StepError> {
    let orgs = aws.organization(&run.org.management, &run.home_region).organizations();
    let res = orgs.describe_account().account_id(account.as_str()).send().await;
    let out = match res {
        Ok(out) => out,
        Err(e) if error_code(&e) == Some("AccountNotFoundException") => {
            return Err(StepError::invalid_input(format!(
                "{field}: account {account} is not a member of the organization"
            )))
        }
        Err(e) => return Err(e).aws(format!("organizations:DescribeAccount {account}")),
    };
    let status = out.account().and_then(|a| a.status()).map(|s| s.as_str().to_owned());
    match status.as_deref() {
        Some("ACTIVE") => Ok(()),
        other => Err(StepError::invalid_input(format!(
            "{field}: account {account} is {} in the organization, not ACTIVE",
            other.unwrap_or("of unknown status")
        ))),
    }
}

/// The preflight step: validation, the role in the home region, and the account-wide snapshot
/// (its service control policies).
pub async fn run(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    // The checks and the reads the step reports, all at once; a refused check is reported first.
    let (valid, who, onboarded, scps) = futures::join!(
        validate(aws, run),
        async {
            let target = aws.account(&run.account, &run.home_region).await?;
            let (who, role) = futures::join!(
                target.sts().get_caller_identity().send(),
                crate::pipeline::roles::refuse_tampered_member_role(&target, run, &aws.pipeline().account)
            );
            let who = who.aws("sts:GetCallerIdentity")?;
            // The role acts as the target (checked below) before what it is matters.
            if who.account() == Some(run.account.as_str()) {
                role?;
            }
            Ok(who)
        },
        async { Ok::<_, StepError>(!run.full && crate::pipeline::verify::onboarded_before(aws, run).await?) },
        async {
            let orgs = aws.organization(&run.org.management, &run.home_region);
            crate::controls::scps::attached_once(&orgs, &run.account).await
        },
    );
    valid?;
    let who = who?;
    if who.account() != Some(run.account.as_str()) {
        return Err(StepError::invalid_input(format!(
            "roleName: assuming {} in {} acts as account {}, not the target",
            run.role_name,
            run.account,
            who.account().unwrap_or("?")
        )));
    }
    let onboarded = onboarded?;
    let scps: Vec<_> = scps?.into_iter().map(|(name, id)| json!({"id": id, "name": name})).collect();
    Ok(StepOutput {
        step: StepName::Preflight,
        region: run.home_region.clone(),
        summary: format!(
            "account {} is an active member; role {} works; {} SCPs attached{}",
            run.account,
            run.role_name,
            scps.len(),
            if onboarded { "; onboarded before with these settings: verify checks first" } else { "" }
        ),
        changes: vec![],
        evidence: vec![],
        // `onboarded`: the state machine checks the baseline first (verify) and ends there if it holds.
        snapshot: json!({"account": run.account, "scps": scps, "onboarded": onboarded}),
    })
}
