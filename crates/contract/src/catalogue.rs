//! The catalogue's types: what a control puts in place and verify reports evidence for, each tied to
//! the spec's words and, where one exists, the CIS AWS Foundations Benchmark recommendation it meets: its v7.0.0 id, with the ids
//! the same recommendation has in v3.0.0 and v1.4.0 as aliases (scanners and auditors still report
//! against both). The ids are the benchmark's own numbering, as Prowler's compliance mappings
//! (`prowler/compliance/aws/cis_{1.4,3.0,7.0}_aws.json`) carry them.
//!
//! The entries themselves are declared by the controls (`core::controls::*::catalogue`) and the
//! pipeline's own checks; `core::pipeline::catalogue` lists them all.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::step::StepName;

/// A CIS AWS Foundations Benchmark recommendation, by its id in each benchmark version that has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cis {
    /// v7.0.0, the benchmark assure is aligned with; None where v7.0.0 dropped the recommendation.
    pub v7: Option<&'static str>,
    pub v3: Option<&'static str>,
    pub v1_4: Option<&'static str>,
}

impl Cis {
    /// The ids as evidence records carry them.
    pub fn ids(&self) -> CisIds {
        CisIds { v7: self.v7.map(str::to_owned), v3: self.v3.map(str::to_owned), v1_4: self.v1_4.map(str::to_owned) }
    }
}

/// The CIS ids of one evidence item: v7.0.0 first, the older versions' ids as aliases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CisIds {
    #[serde(rename = "v7.0.0", default, skip_serializing_if = "Option::is_none")]
    pub v7: Option<String>,
    #[serde(rename = "v3.0.0", default, skip_serializing_if = "Option::is_none")]
    pub v3: Option<String>,
    #[serde(rename = "v1.4.0", default, skip_serializing_if = "Option::is_none")]
    pub v1_4: Option<String>,
}

impl std::fmt::Display for CisIds {
    /// `4.1 (v3.0.0 3.1, v1.4.0 3.1)`; a recommendation v7.0.0 dropped shows `- (v1.4.0 3.4)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.v7.as_deref().unwrap_or("-"))?;
        let aliases: Vec<String> = [("v3.0.0", &self.v3), ("v1.4.0", &self.v1_4)]
            .iter()
            .filter_map(|(v, id)| id.as_ref().map(|id| format!("{v} {id}")))
            .collect();
        if !aliases.is_empty() {
            write!(f, " ({})", aliases.join(", "))?;
        }
        Ok(())
    }
}

/// A recommendation in all three versions.
pub const fn cis(v7: &'static str, v3: &'static str, v1_4: &'static str) -> Option<Cis> {
    Some(Cis { v7: Some(v7), v3: Some(v3), v1_4: Some(v1_4) })
}

/// One entry of the catalogue: one thing verify checks and reports evidence for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Stable id, used in evidence records and reports.
    pub id: &'static str,
    /// The step that puts it in place.
    pub step: StepName,
    /// The spec bullet it implements, word for word (`../shared/spec/account-assurance.txt`).
    pub spec: &'static str,
    /// The CIS AWS Foundations Benchmark recommendation, if one applies.
    pub cis: Option<Cis>,
}

/// An entry: `id`, put in place by `step`, implementing the spec's words `spec`, meeting `cis`.
pub const fn entry(id: &'static str, step: StepName, spec: &'static str, cis: Option<Cis>) -> Entry {
    Entry { id, step, spec, cis }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cis_ids_print_v7_first_and_serialize_per_version() {
        let ids = cis("4.1", "3.1", "3.1").unwrap().ids();
        assert_eq!(ids.to_string(), "4.1 (v3.0.0 3.1, v1.4.0 3.1)");
        assert_eq!(
            serde_json::to_value(&ids).unwrap(),
            serde_json::json!({"v7.0.0": "4.1", "v3.0.0": "3.1", "v1.4.0": "3.1"})
        );
        let dropped = Cis { v7: None, v3: None, v1_4: Some("3.4") }.ids();
        assert_eq!(dropped.to_string(), "- (v1.4.0 3.4)");
    }
}
