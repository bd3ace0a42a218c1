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
    /// The spec bullet it implements, word for word (`../shared/spec/account-assurance.txt`).
    pub spec: &'static str,
    /// The CIS AWS Foundations Benchmark v3.0.0 recommendation, if one applies.
    pub cis: Option<&'static str>,
}

const fn c(id: &'static str, step: StepName, spec: &'static str, cis: Option<&'static str>) -> Control {
    Control { id, step, spec, cis }
}

use StepName as S;

pub const CONTROLS: &[Control] = &[
    c(
        "logging.bucket-not-public",
        S::LoggingBucket,
        "CloudTrail log storage is not publicly accessible",
        Some("2.1.4"),
    ),
    c("logging.bucket-encrypted", S::LoggingBucket, "CloudTrail logs are encrypted at rest", Some("3.5")),
    c("logging.key-rotation", S::LoggingBucket, "CloudTrail logs are encrypted at rest", Some("3.6")),
    c(
        "logging.bucket-access-logging",
        S::LoggingBucket,
        "All CloudTrail logs are stored in your logging account",
        Some("3.4"),
    ),
    c("logging.bucket-tls-only", S::LoggingBucket, "CloudTrail log storage is not publicly accessible", Some("2.1.1")),
    c("logging.bucket-versioned", S::LoggingBucket, "All CloudTrail logs are stored in your logging account", None),
    c("logging.bucket-org-scoped", S::LoggingBucket, "CloudTrail logs are sent to your Logging account", None),
    c("cloudtrail.all-regions", S::CloudTrail, "CloudTrail is enabled in all regions", Some("3.1")),
    c("cloudtrail.log-validation", S::CloudTrail, "CloudTrail log validation is enabled", Some("3.2")),
    c("cloudtrail.to-logging-account", S::CloudTrail, "CloudTrail logs are sent to your Logging account", None),
    c("cloudtrail.encrypted", S::CloudTrail, "CloudTrail logs are encrypted at rest", Some("3.5")),
    c("cloudtrail.cloudwatch-logs", S::CloudTrail, "Unauthorized API calls", None),
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
    c("config.enabled", S::Config, "Config is enabled in all regions", Some("3.3")),
    c("config.to-logging-account", S::Config, "Config logs are sent to your Logging account", None),
    c("config.encrypted", S::Config, "Config logs are encrypted at rest", None),
    c("config.aggregator", S::Config, "All Config logs are stored in your Logging account", None),
    c(
        "access-analyzer.organization",
        S::AccessAnalyzer,
        "The AWS IAM Access Analyzer service is enabled at the AWS Organization level",
        Some("1.20"),
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
    c("alarms.unauthorized-api-calls", S::Alarms, "Unauthorized API calls", Some("4.1")),
    c("alarms.console-without-mfa", S::Alarms, "AWS Management Console authentication failures", Some("4.2")),
    c("alarms.root-usage", S::Alarms, "Restrict the use of root credentials", Some("4.3")),
    c("alarms.iam-policy-changes", S::Alarms, "IAM policy changes", Some("4.4")),
    c("alarms.cloudtrail-changes", S::Alarms, "Disallow modification of Stax AWS CloudTrail logs", Some("4.5")),
    c("alarms.console-auth-failures", S::Alarms, "AWS Management Console authentication failures", Some("4.6")),
    c("alarms.cmk-disable-or-deletion", S::Alarms, "Disabling or deleting customer created CMKs", Some("4.7")),
    c("alarms.s3-bucket-policy-changes", S::Alarms, "S3 bucket policy changes", Some("4.8")),
    c("alarms.config-changes", S::Alarms, "Disallow modification of AWS Config", Some("4.9")),
    c("alarms.security-group-changes", S::Alarms, "Security Group changes", Some("4.10")),
    c("alarms.nacl-changes", S::Alarms, "Network Access Control List changes", Some("4.11")),
    c("alarms.network-gateway-changes", S::Alarms, "Network Gateway changes", Some("4.12")),
    c("alarms.route-table-changes", S::Alarms, "Route Table changes", Some("4.13")),
    c("alarms.vpc-changes", S::Alarms, "VPC changes", Some("4.14")),
    c("alarms.organizations-changes", S::Alarms, "Service Control Policies", Some("4.15")),
    c("alarms.topic-encrypted", S::Alarms, "Prevent removal of Stax CloudWatch alarms", None),
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
    c("scps.attached", S::Scps, "Disallow modification of AWS Config", None),
    c("scps.restrict-root", S::Scps, "Restrict the use of root credentials", Some("1.7")),
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
    fn all_of_cis_section_4_is_covered() {
        for n in 1..=15 {
            let id = format!("4.{n}");
            assert!(CONTROLS.iter().any(|c| c.cis == Some(id.as_str())), "CIS {id} has no control");
        }
    }
}
