//! The list of controls: the one place that names them all.

use assure_contract::{BaselineVersion, RunInput, StepName};
use serde_json::json;

use crate::controls::Control;
use crate::controls::{access_analyzer, alarms, cloudtrail, config, guardduty, logging_bucket, scps, session_manager};

/// The baseline, in the order the state machine applies it. Rollback compensates in reverse.
pub const ALL: &[&Control] = &[
    &logging_bucket::CONTROL,
    &cloudtrail::CONTROL,
    &guardduty::CONTROL,
    &config::CONTROL,
    &access_analyzer::CONTROL,
    &session_manager::CONTROL,
    &alarms::CONTROL,
    &scps::CONTROL,
];

/// The control whose step `step` is; None for the pipeline's own steps (preflight, discover,
/// verify, rollback).
pub fn owner(step: StepName) -> Option<&'static Control> {
    ALL.iter().copied().find(|c| c.steps.contains(&step))
}

/// The version of the baseline `run` applies: this release, and the digest of what every control
/// puts in place under the run's settings: each control's steps and catalogue, the SCPs' documents,
/// the alarms' filters, the organization, role, notifications and root access. The account and
/// its regions do not count (every account of a fleet is on one version; its regions are its
/// own), nor does anything that only shapes how a run goes (its id, failure policy, what it does
/// with the account's own trails).
pub fn version(run: &RunInput) -> BaselineVersion {
    use sha2::{Digest, Sha256};

    let mut fleet = run.clone();
    fleet.account = "000000000000".parse().expect("a valid account id");
    fleet.regions = vec![run.home_region.clone()];
    let controls: Vec<_> = ALL
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "steps": c.steps,
                "catalogue": c.catalogue.iter().map(|e| json!([e.id, e.step, e.cis.map(|c| c.ids())])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let desired = json!({
        "controls": controls,
        "scps": scps::policies::policies(&fleet),
        "filters": alarms::filters::all_filters().map(|(e, name, pattern)| json!([e.id, name, pattern])).collect::<Vec<_>>(),
        "settings": {"homeRegion": run.home_region, "org": run.org, "roleName": run.role_name,
                     "notify": run.notify, "rootAccess": run.root_access},
    });
    BaselineVersion {
        release: env!("CARGO_PKG_VERSION").to_owned(),
        digest: hex::encode(Sha256::digest(desired.to_string().as_bytes())),
    }
}

#[cfg(test)]
mod tests {
    use assure_contract::{OrgLayout, RunId};

    use super::*;

    fn run(account: &str, regions: &[&str]) -> RunInput {
        RunInput {
            run_id: RunId::for_onboarding(&account.parse().unwrap(), 1),
            account: account.parse().unwrap(),
            regions: regions.iter().map(|r| r.parse().unwrap()).collect(),
            home_region: "us-east-1".parse().unwrap(),
            org: OrgLayout {
                management: "111111111111".parse().unwrap(),
                logging: "222222222222".parse().unwrap(),
                security: "333333333333".parse().unwrap(),
            },
            role_name: assure_contract::DEFAULT_ROLE_NAME.to_owned(),
            policy: Default::default(),
            notify: None,
            existing_trails: Default::default(),
            root_access: Default::default(),
            organization: None,
            full: false,
            deliveries: false,
        }
    }

    #[test]
    fn every_account_of_a_fleet_is_on_one_version_whatever_its_regions_or_run() {
        let a = run("444444444444", &["us-east-1"]);
        let mut b = run("555555555555", &["us-east-1", "eu-west-1"]);
        b.run_id = "another-run".parse().unwrap();
        b.full = true;
        b.existing_trails = assure_contract::ExistingTrails::Stop;
        assert_eq!(version(&a), version(&b));
        assert_eq!(version(&a).release, env!("CARGO_PKG_VERSION"));
        assert_eq!(version(&a).to_string().len(), env!("CARGO_PKG_VERSION").len() + 13);
    }

    #[test]
    fn what_the_baseline_puts_in_place_changes_the_version() {
        let a = run("444444444444", &["us-east-1"]);
        let mut notified = a.clone();
        notified.notify = Some(assure_contract::Notify {
            protocol: assure_contract::NotifyProtocol::Email,
            endpoint: "secops@example.com".into(),
        });
        let mut renamed = a.clone();
        renamed.role_name = "OtherRole".into();
        let mut root = a.clone();
        root.root_access = assure_contract::RootAccess::Centralized;
        for other in [notified, renamed, root] {
            assert_ne!(version(&a), version(&other), "{other:?}");
        }
    }
}
