//! The controls assure puts in place and verifies, each tied to the spec's words and, where one
//! exists, the CIS AWS Foundations Benchmark v3.0.0 recommendation it meets.

use crate::run::StepName;

/// One control: what `verify` checks and reports evidence for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    /// Stable id, used in evidence records and reports.
    pub id: &'static str,
    /// The step that puts it in place.
    pub step: StepName,
    /// The spec bullet it implements, word for word.
    pub spec: &'static str,
    /// The CIS AWS Foundations Benchmark v3.0.0 recommendation, if one applies.
    pub cis: Option<&'static str>,
}

pub const CONTROLS: &[Control] = &[
    Control {
        id: "logging.bucket-not-public",
        step: StepName::LoggingBucket,
        spec: "CloudTrail log storage is not publicly accessible",
        cis: Some("2.1.4"),
    },
    Control {
        id: "logging.bucket-encrypted",
        step: StepName::LoggingBucket,
        spec: "CloudTrail logs are encrypted at rest",
        cis: Some("3.5"),
    },
    Control {
        id: "logging.key-rotation",
        step: StepName::LoggingBucket,
        spec: "CloudTrail logs are encrypted at rest",
        cis: Some("3.6"),
    },
    Control {
        id: "logging.bucket-access-logging",
        step: StepName::LoggingBucket,
        spec: "All CloudTrail logs are stored in your logging account",
        cis: Some("3.4"),
    },
    Control {
        id: "logging.bucket-tls-only",
        step: StepName::LoggingBucket,
        spec: "CloudTrail log storage is not publicly accessible",
        cis: Some("2.1.1"),
    },
    Control {
        id: "logging.bucket-versioned",
        step: StepName::LoggingBucket,
        spec: "All CloudTrail logs are stored in your logging account",
        cis: None,
    },
    Control {
        id: "logging.bucket-org-scoped",
        step: StepName::LoggingBucket,
        spec: "CloudTrail logs are sent to your Logging account",
        cis: None,
    },
];

impl Control {
    pub fn find(id: &str) -> Option<&'static Control> {
        CONTROLS.iter().find(|c| c.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<_> = CONTROLS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CONTROLS.len());
    }

    #[test]
    fn every_spec_text_is_in_the_spec() {
        // The spec is kept beside the repository; the catalogue quotes it.
        let quoted = [
            "CloudTrail log storage is not publicly accessible",
            "CloudTrail logs are encrypted at rest",
            "CloudTrail logs are sent to your Logging account",
            "All CloudTrail logs are stored in your logging account",
        ];
        for c in CONTROLS {
            assert!(quoted.contains(&c.spec), "{} quotes {:?}", c.id, c.spec);
        }
    }
}
