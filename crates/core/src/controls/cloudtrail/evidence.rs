//! Verify: the evidence that the trail holds.

use assure_contract::{Evidence, RunInput, StepError};

use crate::aws::{Aws, AwsResultExt};
use crate::controls::kit::{evidence, logging_key_arn};
use crate::controls::names::{TRAIL, TRAIL_LOG_GROUP};

use super::catalogue;
use super::*;

/// Evidence for the trail's controls.
pub async fn evidence_for(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let target = aws.account(&run.account, &run.home_region).await?;
    // Delivering, not only configured: the trail's status carries the S3 error of its last delivery.
    let (found, key) = futures::future::join(read_trail_and_delivery(&target), logging_key_arn(aws, run)).await;
    let (t, delivery) = match found? {
        Some((t, errors)) => (Some(t), errors),
        None => (None, DeliveryErrors::default()),
    };
    let delivery_error = delivery.s3;
    // The log group as the alarms need it: there, and under no key but CloudWatch Logs' own (assure
    // makes it so; a key associated since, and then disabled or withheld, stops every event).
    let group_key = match target.logs().describe_log_groups().log_group_name_prefix(TRAIL_LOG_GROUP).send().await {
        Ok(out) => out
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(TRAIL_LOG_GROUP))
            .map(|g| g.kms_key_id().map(str::to_owned)),
        Err(e) => return Err(e).aws("logs:DescribeLogGroups"),
    };
    let key = key.ok();
    let res = t.as_ref().map_or_else(|| format!("cloudtrail:{TRAIL}"), |t| t.arn.clone());
    let mut out = vec![
        evidence(
            &target,
            &catalogue::ALL_REGIONS,
            &res,
            t.as_ref().is_some_and(|t| t.multi_region && t.logging && t.management_events),
            format!(
                "(multi-region, logging, read and write management events): {:?}",
                t.as_ref().map(|t| (t.multi_region, t.logging, t.management_events))
            ),
        ),
        evidence(
            &target,
            &catalogue::LOG_VALIDATION,
            &res,
            t.as_ref().is_some_and(|t| t.validation),
            format!("log file validation: {:?}", t.as_ref().map(|t| t.validation)),
        ),
        evidence(
            &target,
            &catalogue::TO_LOGGING_ACCOUNT,
            &res,
            t.as_ref().is_some_and(|t| t.bucket.as_deref() == Some(run.logging_bucket().as_str()))
                && delivery_error.is_none(),
            match &delivery_error {
                None => format!("bucket: {:?}", t.as_ref().and_then(|t| t.bucket.clone())),
                Some(e) => format!(
                    "bucket: {:?}, but the last delivery failed: {e}",
                    t.as_ref().and_then(|t| t.bucket.clone())
                ),
            },
        ),
        evidence(
            &target,
            &catalogue::ENCRYPTED,
            &res,
            t.as_ref().is_some_and(|t| t.kms.is_some() && t.kms == key),
            format!("kms key: {:?}", t.as_ref().and_then(|t| t.kms.clone())),
        ),
        evidence(
            &target,
            &catalogue::CLOUDWATCH_LOGS,
            &res,
            t.as_ref().is_some_and(|t| t.log_group.as_deref() == Some(log_group_arn(&target).as_str()))
                && matches!(group_key, Some(None))
                && delivery.logs.is_none(),
            match (&group_key, &delivery.logs) {
                (None, _) => {
                    format!("log group: {:?}, which does not exist", t.as_ref().and_then(|t| t.log_group.clone()))
                }
                (Some(Some(k)), _) => format!(
                    "log group: {:?}, encrypted with {k}, which assure did not set",
                    t.as_ref().and_then(|t| t.log_group.clone())
                ),
                (Some(None), Some(e)) => format!(
                    "log group: {:?}, but the last delivery to it failed: {e}",
                    t.as_ref().and_then(|t| t.log_group.clone())
                ),
                (Some(None), None) => format!("log group: {:?}", t.as_ref().and_then(|t| t.log_group.clone())),
            },
        ),
    ];
    let others = other_trails(&target, run).await?;
    let still: Vec<String> = others
        .iter()
        .filter(|o| o.logging && o.arn.split(':').nth(4) == Some(run.account.as_str()))
        .map(|o| o.arn.clone())
        .collect();
    out.push(evidence(
        &target,
        &catalogue::OLD_TRAILS_STOPPED,
        format!("account {}", run.account),
        still.is_empty(),
        format!("own trails still logging: {still:?}"),
    ));
    Ok(out)
}
