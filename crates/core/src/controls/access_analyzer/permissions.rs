//! What the Access Analyzer control's calls need granted.

use assure_contract::StepName;
use serde_json::{json, Value};

use crate::controls::kit::permissions::*;
use crate::controls::names::{ANALYZER, FINDINGS};
use crate::controls::Permissions;

pub(super) const PERMISSIONS: Permissions = Permissions { member, pipeline: |_| Vec::new(), management };

/// In the security account: the analyzer, the findings' delivery stream and rule, their roles.
fn member() -> Vec<Value> {
    let mut statements = vec![
        // Verify: the delivery stream's deliveries to the logging bucket.
        read_setup(&["cloudwatch:GetMetricStatistics"]),
        allow("ReadAnalyzers", own("access-analyzer", "analyzer/*"), &["access-analyzer:GetAnalyzer"]),
        allow(
            "ReadFindingsDelivery",
            json!([own("firehose", "deliverystream/*"), own("events", "rule/*")]),
            &["firehose:DescribeDeliveryStream", "events:DescribeRule", "events:ListTargetsByRule"],
        ),
        allow(
            "AccessAnalyzer",
            own("access-analyzer", &format!("analyzer/{ANALYZER}")),
            &["access-analyzer:CreateAnalyzer"],
        ),
        allow(
            "FindingsDelivery",
            json!(
                [own("firehose", &format!("deliverystream/{FINDINGS}")), own("events", &format!("rule/{FINDINGS}")),]
            ),
            &["firehose:CreateDeliveryStream", "firehose:UpdateDestination", "events:PutRule", "events:PutTargets"],
        ),
        service_linked_role("AccessAnalyzerServiceLinkedRole", "access-analyzer.amazonaws.com"),
    ];
    statements.extend(assure_roles());
    statements
}

/// Preflight: another delegated administrator. The step (or a bulk run's organization step): trusted
/// access and the security account as the delegated administrator.
fn management(step: StepName) -> Vec<Grant> {
    match step {
        StepName::Preflight => vec![(any(), vec!["organizations:ListDelegatedAdministrators"])],
        StepName::AccessAnalyzer | StepName::Organization => vec![(any(), DELEGATED_ADMINISTRATOR.to_vec())],
        _ => vec![],
    }
}
