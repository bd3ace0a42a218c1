//! The controls assure puts in place and verifies, each tied to the spec's words and, where one
//! exists, the CIS AWS Foundations Benchmark recommendation it meets: its v7.0.0 id, with the ids
//! the same recommendation has in v3.0.0 and v1.4.0 as aliases (scanners and auditors still report
//! against both). The ids are the benchmark's own numbering, as Prowler's compliance mappings
//! (`prowler/compliance/aws/cis_{1.4,3.0,7.0}_aws.json`) carry them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::run::StepName;

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
const fn cis(v7: &'static str, v3: &'static str, v1_4: &'static str) -> Option<Cis> {
    Some(Cis { v7: Some(v7), v3: Some(v3), v1_4: Some(v1_4) })
}

/// One control: what `verify` checks and reports evidence for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    /// Stable id, used in evidence records and reports.
    pub id: &'static str,
    /// The step that puts it in place.
    pub step: StepName,
    /// The spec bullet it implements, word for word (`../shared/spec/account-assurance.txt`).
    pub spec: &'static str,
    /// The CIS AWS Foundations Benchmark recommendation, if one applies.
    pub cis: Option<Cis>,
}

const fn c(id: &'static str, step: StepName, spec: &'static str, cis: Option<Cis>) -> Control {
    Control { id, step, spec, cis }
}

use StepName as S;

pub const CONTROLS: &[Control] = &[
    c(
        "logging.bucket-not-public",
        S::LoggingBucket,
        "CloudTrail log storage is not publicly accessible",
        cis("3.1.4", "2.1.4", "3.3"),
    ),
    c("logging.bucket-encrypted", S::LoggingBucket, "CloudTrail logs are encrypted at rest", cis("4.5", "3.5", "3.7")),
    c("logging.key-rotation", S::LoggingBucket, "CloudTrail logs are encrypted at rest", cis("4.6", "3.6", "3.8")),
    c(
        "logging.bucket-access-logging",
        S::LoggingBucket,
        "All CloudTrail logs are stored in your logging account",
        cis("4.4", "3.4", "3.6"),
    ),
    c(
        "logging.bucket-tls-only",
        S::LoggingBucket,
        "CloudTrail log storage is not publicly accessible",
        cis("3.1.1", "2.1.1", "2.1.2"),
    ),
    c("logging.bucket-versioned", S::LoggingBucket, "All CloudTrail logs are stored in your logging account", None),
    c("logging.bucket-retained", S::LoggingBucket, "All CloudTrail logs are stored in your logging account", None),
    c("logging.bucket-org-scoped", S::LoggingBucket, "CloudTrail logs are sent to your Logging account", None),
    c("cloudtrail.all-regions", S::CloudTrail, "CloudTrail is enabled in all regions", cis("4.1", "3.1", "3.1")),
    c("cloudtrail.log-validation", S::CloudTrail, "CloudTrail log validation is enabled", cis("4.2", "3.2", "3.2")),
    c("cloudtrail.to-logging-account", S::CloudTrail, "CloudTrail logs are sent to your Logging account", None),
    c("cloudtrail.encrypted", S::CloudTrail, "CloudTrail logs are encrypted at rest", cis("4.5", "3.5", "3.7")),
    c(
        "cloudtrail.cloudwatch-logs",
        S::CloudTrail,
        "Unauthorized API calls",
        // v1.4.0 3.4, "Ensure CloudTrail trails are integrated with CloudWatch Logs", was dropped
        // later; v7.0.0's section 5 alarms read the trail's log group instead.
        Some(Cis { v7: None, v3: None, v1_4: Some("3.4") }),
    ),
    c("cloudtrail.old-trails-stopped", S::StopCloudTrail, "CloudTrail logs are sent to your Logging account", None),
    c("guardduty.enabled", S::GuardDuty, "Stax enables GuardDuty in all your AWS accounts", None),
    c(
        "guardduty.security-administrator",
        S::GuardDuty,
        "with your Security Account acting as the GuardDuty master",
        None,
    ),
    c(
        "guardduty.findings-exported",
        S::GuardDuty,
        "All GuardDuty events created within your accounts will be sent to the GuardDuty master",
        None,
    ),
    c(
        "guardduty.no-suppression",
        S::GuardDuty,
        "All GuardDuty events created within your accounts will be sent to the GuardDuty master",
        None,
    ),
    c("config.enabled", S::Config, "Config is enabled in all regions", cis("4.3", "3.3", "3.5")),
    c("config.to-logging-account", S::Config, "Config logs are sent to your Logging account", None),
    c("config.encrypted", S::Config, "Config logs are encrypted at rest", None),
    c("config.aggregator", S::Config, "All Config logs are stored in your Logging account", None),
    c(
        "access-analyzer.organization",
        S::AccessAnalyzer,
        "The AWS IAM Access Analyzer service is enabled at the AWS Organization level",
        cis("2.18", "1.20", "1.20"),
    ),
    c(
        "access-analyzer.findings-delivered",
        S::AccessAnalyzer,
        "all IAM Access Analyzer findings are delivered to the StaxTrail S3 bucket in your logging account",
        None,
    ),
    c(
        "access-analyzer.service-linked-role",
        S::AccessAnalyzer,
        "The role is named AWSServiceRoleForAccessAnalyzer",
        None,
    ),
    c("alarms.unauthorized-api-calls", S::Alarms, "Unauthorized API calls", cis("5.1", "4.1", "4.1")),
    c(
        "alarms.console-without-mfa",
        S::Alarms,
        "AWS Management Console authentication failures",
        cis("5.2", "4.2", "4.2"),
    ),
    c("alarms.root-usage", S::Alarms, "Restrict the use of root credentials", cis("5.3", "4.3", "4.3")),
    c("alarms.iam-policy-changes", S::Alarms, "IAM policy changes", cis("5.4", "4.4", "4.4")),
    c(
        "alarms.cloudtrail-changes",
        S::Alarms,
        "Disallow modification of Stax AWS CloudTrail logs",
        cis("5.5", "4.5", "4.5"),
    ),
    c(
        "alarms.console-auth-failures",
        S::Alarms,
        "AWS Management Console authentication failures",
        cis("5.6", "4.6", "4.6"),
    ),
    c(
        "alarms.cmk-disable-or-deletion",
        S::Alarms,
        "Disabling or deleting customer created CMKs",
        cis("5.7", "4.7", "4.7"),
    ),
    c("alarms.s3-bucket-policy-changes", S::Alarms, "S3 bucket policy changes", cis("5.8", "4.8", "4.8")),
    c("alarms.config-changes", S::Alarms, "Disallow modification of AWS Config", cis("5.9", "4.9", "4.9")),
    c("alarms.security-group-changes", S::Alarms, "Security Group changes", cis("5.10", "4.10", "4.10")),
    c("alarms.nacl-changes", S::Alarms, "Network Access Control List changes", cis("5.11", "4.11", "4.11")),
    c("alarms.network-gateway-changes", S::Alarms, "Network Gateway changes", cis("5.12", "4.12", "4.12")),
    c("alarms.route-table-changes", S::Alarms, "Route Table changes", cis("5.13", "4.13", "4.13")),
    c("alarms.vpc-changes", S::Alarms, "VPC changes", cis("5.14", "4.14", "4.14")),
    c("alarms.organizations-changes", S::Alarms, "Service Control Policies", cis("5.15", "4.15", "4.15")),
    c("alarms.topic-encrypted", S::Alarms, "Prevent removal of Stax CloudWatch alarms", None),
    c("alarms.subscribed", S::Alarms, "Prevent removal of Stax CloudWatch alarms", None),
    c(
        "session-manager.s3-logging",
        S::SessionManager,
        "All logs are sent to an S3 bucket in your Logging account",
        None,
    ),
    c(
        "session-manager.encrypted",
        S::SessionManager,
        "Stax enables auditing and logging of session activity within Session Manager",
        None,
    ),
    c(
        "scps.attached",
        S::Scps,
        "Disallow modification of AWS Config",
        // v7.0.0 2.1.2, "Ensure authorization guardrails for all AWS Organization accounts", is new.
        Some(Cis { v7: Some("2.1.2"), v3: None, v1_4: None }),
    ),
    c(
        "roles.member-role",
        S::Preflight,
        "Prevent removal of Stax Identity Management Service resources",
        Some(Cis { v7: Some("2.1.2"), v3: None, v1_4: None }),
    ),
    c("roles.service-roles", S::ServiceRoles, "Prevent removal of Stax Identity Management Service resources", None),
    c("scps.restrict-root", S::Scps, "Restrict the use of root credentials", cis("2.7", "1.7", "1.7")),
    c(
        "scps.centralized-root",
        S::Scps,
        "Restrict the use of root credentials",
        Some(Cis { v7: Some("2.1.1"), v3: None, v1_4: None }),
    ),
    c(
        "scps.root-credentials",
        S::Scps,
        "Restrict the use of root credentials",
        Some(Cis { v7: Some("2.1.1"), v3: None, v1_4: None }),
    ),
    c(
        "scps.log-archive",
        S::Scps,
        "Disallow modification of Stax AWS CloudTrail logs",
        Some(Cis { v7: Some("2.1.2"), v3: None, v1_4: None }),
    ),
    // Proof of delivery (`assure verify --deliveries`, and the Verify step when the run proves
    // deliveries): a canary down each path, found at its destination.
    c("deliveries.cloudtrail", S::Verify, "All CloudTrail logs are stored in your logging account", None),
    c("deliveries.config", S::Verify, "Config logs are sent to your Logging account", None),
    c(
        "deliveries.guardduty",
        S::Verify,
        "All GuardDuty events created within your accounts will be sent to the GuardDuty master",
        None,
    ),
    c(
        "deliveries.access-analyzer",
        S::Verify,
        "all IAM Access Analyzer findings are delivered to the StaxTrail S3 bucket in your logging account",
        None,
    ),
    c(
        "deliveries.session-manager",
        S::Verify,
        "Stax enables auditing and logging of session activity within Session Manager",
        None,
    ),
    c(
        "deliveries.alarm",
        S::Verify,
        "Amazon CloudWatch captures the metric data of resources and enables configuration of alarms against these metrics",
        None,
    ),
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
    fn every_spec_text_is_quoted_from_the_spec() {
        let spec = include_str!("account-assurance.txt");
        for c in CONTROLS {
            assert!(spec.contains(c.spec), "{} quotes {:?}, which the spec does not say", c.id, c.spec);
        }
    }

    #[test]
    fn all_of_cis_monitoring_is_covered_in_every_version() {
        // Monitoring is section 5 in v7.0.0 and section 4 in v3.0.0 and v1.4.0; v7.0.0's 5.16
        // (Security Hub) is not a control of the spec.
        for n in 1..=15 {
            let (v7, old) = (format!("5.{n}"), format!("4.{n}"));
            let c = CONTROLS.iter().find(|c| c.cis.and_then(|c| c.v7) == Some(v7.as_str()));
            let c = c.unwrap_or_else(|| panic!("CIS v7.0.0 {v7} has no control"));
            let cis = c.cis.unwrap();
            assert_eq!((cis.v3, cis.v1_4), (Some(old.as_str()), Some(old.as_str())), "{}", c.id);
        }
    }

    #[test]
    fn cis_ids_print_v7_first_and_serialize_per_version() {
        let ids = Control::find("cloudtrail.all-regions").unwrap().cis.unwrap().ids();
        assert_eq!(ids.to_string(), "4.1 (v3.0.0 3.1, v1.4.0 3.1)");
        assert_eq!(
            serde_json::to_value(&ids).unwrap(),
            serde_json::json!({"v7.0.0": "4.1", "v3.0.0": "3.1", "v1.4.0": "3.1"})
        );
        let dropped = Control::find("cloudtrail.cloudwatch-logs").unwrap().cis.unwrap().ids();
        assert_eq!(dropped.to_string(), "- (v1.4.0 3.4)");
    }
}
