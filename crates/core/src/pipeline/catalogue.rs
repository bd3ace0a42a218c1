//! The catalogue: everything verify checks and reports evidence for, each entry tied to the spec's
//! words and, where one exists, the CIS AWS Foundations Benchmark recommendation it meets. The
//! controls declare their own entries ([`crate::controls::Control::catalogue`]); the pipeline's
//! own checks (the roles, the delivery paths) are here too.

use assure_contract::catalogue::Entry;

use crate::controls::baseline;
use crate::pipeline::{deliveries, roles};

/// Every entry: the baseline's controls' in its order, then the roles' and the delivery paths'.
pub fn all() -> impl Iterator<Item = &'static Entry> {
    baseline::ALL.iter().flat_map(|c| c.catalogue.iter()).chain(roles::ENTRIES).chain(deliveries::ENTRIES)
}

/// The entry whose id is `id` (an evidence record's `control`).
pub fn find(id: &str) -> Option<&'static Entry> {
    all().find(|e| e.id == id)
}

#[cfg(test)]
mod tests {
    use assure_contract::StepName;

    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<_> = all().map(|c| c.id).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn every_spec_text_is_quoted_from_the_spec() {
        let spec = include_str!("../../../contract/src/account-assurance.txt");
        for c in all() {
            assert!(spec.contains(c.spec), "{} quotes {:?}, which the spec does not say", c.id, c.spec);
        }
    }

    #[test]
    fn a_controls_entries_are_put_in_place_by_its_own_steps() {
        for control in baseline::ALL {
            for e in control.catalogue {
                assert!(control.steps.contains(&e.step), "{}: {} is put in place by {:?}", control.name, e.id, e.step);
            }
        }
        assert!(deliveries::ENTRIES.iter().all(|e| e.step == StepName::Verify));
    }

    #[test]
    fn all_of_cis_monitoring_is_covered_in_every_version() {
        // Monitoring is section 5 in v7.0.0 and section 4 in v3.0.0 and v1.4.0; v7.0.0's 5.16
        // (Security Hub) is not a control of the spec.
        for n in 1..=15 {
            let (v7, old) = (format!("5.{n}"), format!("4.{n}"));
            let c = all().find(|c| c.cis.and_then(|c| c.v7) == Some(v7.as_str()));
            let c = c.unwrap_or_else(|| panic!("CIS v7.0.0 {v7} has no control"));
            let cis = c.cis.unwrap();
            assert_eq!((cis.v3, cis.v1_4), (Some(old.as_str()), Some(old.as_str())), "{}", c.id);
        }
    }

    #[test]
    fn an_entry_is_found_by_its_id() {
        let e = find("cloudtrail.all-regions").expect("in the catalogue");
        assert_eq!(e.cis.unwrap().ids().to_string(), "4.1 (v3.0.0 3.1, v1.4.0 3.1)");
        assert!(find("cloudtrail.no-such-check").is_none());
    }
}
