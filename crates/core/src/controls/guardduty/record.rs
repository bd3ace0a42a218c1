//! A region's detectors as the control's snapshot records them, in GuardDuty's own words
//! (GetDetector, GetAdministratorAccount, ListFilters, ListPublishingDestinations; camelCase).
//! Every field defaults, so a record an earlier version wrote reads back whatever it left out.

use assure_contract::StepError;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedDetector {
    pub detector_id: String,
    pub status: Option<String>,
    pub finding_publishing_frequency: Option<String>,
    /// The account's administrator, if it has one.
    pub administrator: Option<RecordedAdministrator>,
    pub filters: Vec<String>,
    /// The filters whose action is ARCHIVE: the guardduty step turns them to NOOP, rollback back.
    pub suppression_rules: Vec<String>,
    pub publishing_destinations: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RecordedAdministrator {
    pub account_id: Option<String>,
    pub relationship_status: Option<String>,
}

impl RecordedDetector {
    /// Its administrator's account, if it has one.
    pub fn administrator_account(&self) -> Option<&str> {
        self.administrator.as_ref().and_then(|a| a.account_id.as_deref())
    }
}

/// A region's part of the snapshot: its detectors (one, or none); `None` for a region whose part
/// was not recorded (null).
pub fn detectors(part: &serde_json::Value) -> Result<Option<Vec<RecordedDetector>>, StepError> {
    crate::controls::recorded(part, "GuardDuty's snapshot part")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_part_reads_back_as_written_and_names_its_administrator() {
        let part = json!([{
            "detectorId": "d1", "status": "ENABLED", "findingPublishingFrequency": "SIX_HOURS",
            "administrator": {"accountId": "999988887777", "relationshipStatus": "Enabled"},
            "filters": ["quiet", "noisy"], "suppressionRules": ["quiet"], "publishingDestinations": ["p1"],
        }, {
            "detectorId": "d2", "status": "DISABLED", "findingPublishingFrequency": null, "administrator": null,
            "filters": [], "suppressionRules": [], "publishingDestinations": [],
        }]);
        let typed = detectors(&part).unwrap().unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), part, "the typed part keeps the JSON it was");
        assert_eq!((typed[0].administrator_account(), typed[1].administrator_account()), (Some("999988887777"), None));
        assert_eq!(detectors(&serde_json::Value::Null).unwrap(), None, "not recorded is not no detector");
        assert_eq!(detectors(&json!([])).unwrap(), Some(vec![]));
        assert!(detectors(&json!({"detectorId": "d"})).is_err(), "a part that is not one is an error, not empty");
    }
}
