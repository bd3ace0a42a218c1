//! CloudTrail: the assure trail (multi-region, log file validation, SSE-KMS with the logging key,
//! delivered to the logging bucket and to a CloudWatch Logs group in the account, where the alarms
//! read it), then the account's own trails retired (recorded whole, then their configuration
//! deleted; rollback recreates them) or stopped, as the run's `existingTrails` says, and only once
//! the assure trail is logging, so there is no gap in the audit record. Their logs are never touched.

use assure_contract::{AccountId, ErrorName, ExistingTrails, Region, RunInput, StepError, StepName, StepOutput};
use serde_json::{json, Value};

use crate::aws::{error_code, while_role_propagates, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::{logging_key_to_use, service_role, trail_log_group, Changes, LogGroup, Role, ServiceRole};
use crate::controls::names::{TRAIL, TRAIL_LOGS_ROLE, TRAIL_LOG_GROUP};
use crate::controls::{kit, Ahead, Control, Report, Snapshot, Undo};

pub mod catalogue;
mod evidence;
mod permissions;

pub use evidence::*;

pub mod record;

/// Days CloudTrail events stay in the account's log group (the bucket keeps them for good).
const LOG_RETENTION_DAYS: i32 = 365;

/// The assure trail as found.
#[derive(Debug, Clone, PartialEq)]
struct TrailState {
    arn: String,
    bucket: Option<String>,
    multi_region: bool,
    global_events: bool,
    validation: bool,
    kms: Option<String>,
    log_group: Option<String>,
    role: Option<String>,
    logging: bool,
    /// Every management event, read and write, is recorded (CIS 3.1).
    management_events: bool,
}

async fn read_trail(target: &AccountConfig) -> Result<Option<TrailState>, StepError> {
    Ok(read_trail_and_delivery(target).await?.map(|(t, _)| t))
}

/// The errors of the trail's latest deliveries, to S3 and to CloudWatch Logs, if any: GetTrailStatus
/// reports both (`LatestDeliveryError`, `LatestCloudWatchLogsDeliveryError`,
/// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html) in the
/// same answer that says whether the trail logs. A trail whose log group refuses its events (a key
/// the group cannot use, a role that lost its permission) blinds every alarm while it still logs.
#[derive(Debug, Default)]
struct DeliveryErrors {
    s3: Option<String>,
    logs: Option<String>,
}

/// The assure trail as found, with its delivery errors.
async fn read_trail_and_delivery(target: &AccountConfig) -> Result<Option<(TrailState, DeliveryErrors)>, StepError> {
    let ct = target.cloudtrail();
    let found = ct
        .describe_trails()
        .trail_name_list(TRAIL)
        .include_shadow_trails(false)
        .send()
        .await
        .aws("cloudtrail:DescribeTrails")?;
    let Some(t) = found.trail_list().iter().find(|t| t.name() == Some(TRAIL)) else { return Ok(None) };
    let status = ct.get_trail_status().name(TRAIL).send().await.aws(format!("cloudtrail:GetTrailStatus {TRAIL}"))?;
    let selectors =
        ct.get_event_selectors().trail_name(TRAIL).send().await.aws(format!("cloudtrail:GetEventSelectors {TRAIL}"))?;
    let delivery = DeliveryErrors {
        s3: status.latest_delivery_error().filter(|e| !e.is_empty()).map(str::to_owned),
        logs: status.latest_cloud_watch_logs_delivery_error().filter(|e| !e.is_empty()).map(str::to_owned),
    };
    let state = TrailState {
        arn: t.trail_arn().unwrap_or_default().to_owned(),
        bucket: t.s3_bucket_name().map(str::to_owned),
        multi_region: t.is_multi_region_trail().unwrap_or(false),
        global_events: t.include_global_service_events().unwrap_or(false),
        validation: t.log_file_validation_enabled().unwrap_or(false),
        kms: t.kms_key_id().map(str::to_owned),
        log_group: t.cloud_watch_logs_log_group_arn().map(str::to_owned),
        role: t.cloud_watch_logs_role_arn().map(str::to_owned),
        logging: status.is_logging().unwrap_or(false),
        management_events: all_management_events(&selectors),
    };
    Ok(Some((state, delivery)))
}

/// Whether the trail's selectors record every management event, read and write: a basic selector
/// with `ReadWriteType` All (the default) that includes management events and excludes no event
/// source, or an advanced one selecting the Management category alone
/// (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-management-events-with-cloudtrail.html).
fn all_management_events(out: &aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput) -> bool {
    use aws_sdk_cloudtrail::types::ReadWriteType;
    let basic = out.event_selectors().iter().any(|s| {
        s.read_write_type().is_none_or(|t| *t == ReadWriteType::All)
            && s.include_management_events().unwrap_or(true)
            && s.exclude_management_event_sources().is_empty()
    });
    let advanced = out.advanced_event_selectors().iter().any(|a| {
        let fields = a.field_selectors();
        fields.iter().any(|f| f.field() == "eventCategory" && f.equals() == ["Management"])
            && fields.iter().all(|f| f.field() == "eventCategory")
    });
    basic || advanced
}

/// The event selector assure sets on its trail: every management event, read and write, no data events.
fn management_selector() -> aws_sdk_cloudtrail::types::EventSelector {
    aws_sdk_cloudtrail::types::EventSelector::builder()
        .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::All)
        .include_management_events(true)
        .build()
}

fn log_group_arn(target: &AccountConfig) -> String {
    log_group_arn_in(&target.account, &target.region)
}

fn log_group_arn_in(account: &AccountId, region: &Region) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{TRAIL_LOG_GROUP}:*")
}

/// The trail's log group, and its retention.
async fn ensure_log_group(target: &AccountConfig, changes: &mut Changes) -> Result<(), StepError> {
    let logs = target.logs();
    let retention = match trail_log_group(target, changes).await? {
        LogGroup::Found(retention) => retention,
        LogGroup::Made => None,
        // The plan shows the group here, in the CloudTrail step's.
        LogGroup::Planned => {
            changes.push(format!("logs:{TRAIL_LOG_GROUP}"), "create", Value::Null, json!({}));
            None
        }
    };
    if retention != Some(LOG_RETENTION_DAYS) {
        if changes.live() {
            logs.put_retention_policy()
                .log_group_name(TRAIL_LOG_GROUP)
                .retention_in_days(LOG_RETENTION_DAYS)
                .send()
                .await
                .aws(format!("logs:PutRetentionPolicy {TRAIL_LOG_GROUP}"))?;
        }
        changes.push(
            format!("logs:{TRAIL_LOG_GROUP}/retention"),
            "update",
            json!(retention),
            json!(LOG_RETENTION_DAYS),
        );
    }
    Ok(())
}

/// The role CloudTrail delivers to the trail's log group with, in `account`.
fn logs_role(account: &AccountId, home: &Region) -> Role<'static> {
    Role {
        name: TRAIL_LOGS_ROLE,
        description: "assure: CloudTrail delivers to CloudWatch Logs",
        trust: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            // Only the assure trail may deliver with it, not any trail of the account
            // (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cross-service-confused-deputy-prevention.html).
            "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account.as_str(),
                                           "aws:SourceArn": format!("arn:aws:cloudtrail:{home}:{account}:trail/{TRAIL}")}}}]}),
        policy_name: "deliver",
        policy: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": log_group_arn_in(account, home)}]}),
        keep: &[],
    }
}

/// Puts the assure trail in place and logging.
pub async fn apply(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let region = &run.home_region;
    let target = aws.account(&run.account, region).await?;
    let key = logging_key_to_use(aws, run).await?;
    let bucket = run.logging_bucket();
    let mut changes = Changes::new(&target);
    // The role first: made ahead by the run's service-roles step, else IAM propagates it while
    // the step makes the log group and reads the trail.
    let (role, _) = service_role(aws, &target, &logs_role(&target.account, region), &mut changes).await?;
    ensure_log_group(&target, &mut changes).await?;
    let before = read_trail(&target).await?;
    let desired = TrailState {
        arn: before.as_ref().map(|t| t.arn.clone()).unwrap_or_default(),
        bucket: Some(bucket.clone()),
        multi_region: true,
        global_events: true,
        validation: true,
        kms: Some(key.clone()),
        log_group: Some(log_group_arn(&target)),
        role: Some(role.clone()),
        logging: true,
        management_events: true,
    };
    let ct = target.cloudtrail();
    match &before {
        None => {
            if changes.live() {
                // The CloudWatch Logs role may be minutes old or a moment old (ensured above).
                while_role_propagates(|| {
                    ct.create_trail()
                        .name(TRAIL)
                        .s3_bucket_name(&bucket)
                        .is_multi_region_trail(true)
                        .include_global_service_events(true)
                        .enable_log_file_validation(true)
                        .kms_key_id(&key)
                        .cloud_watch_logs_log_group_arn(log_group_arn(&target))
                        .cloud_watch_logs_role_arn(&role)
                        .send()
                })
                .await
                .aws(format!("cloudtrail:CreateTrail {TRAIL}"))?;
            }
            changes.push(format!("cloudtrail:{TRAIL}"), "create", Value::Null, trail_json(&desired));
        }
        Some(t) if TrailState { logging: true, management_events: true, ..t.clone() } != desired => {
            if changes.live() {
                // The CloudWatch Logs role may be minutes old or a moment old (ensured above).
                while_role_propagates(|| {
                    ct.update_trail()
                        .name(TRAIL)
                        .s3_bucket_name(&bucket)
                        .is_multi_region_trail(true)
                        .include_global_service_events(true)
                        .enable_log_file_validation(true)
                        .kms_key_id(&key)
                        .cloud_watch_logs_log_group_arn(log_group_arn(&target))
                        .cloud_watch_logs_role_arn(&role)
                        .send()
                })
                .await
                .aws(format!("cloudtrail:UpdateTrail {TRAIL}"))?;
            }
            changes.push(format!("cloudtrail:{TRAIL}"), "update", trail_json(t), trail_json(&desired));
        }
        Some(_) => {}
    }
    // Read and write management events, set explicitly rather than left to the default a new trail
    // gets (which someone may have changed on an existing one).
    if !before.as_ref().is_some_and(|t| t.management_events) {
        if changes.live() {
            ct.put_event_selectors()
                .trail_name(TRAIL)
                .event_selectors(management_selector())
                .send()
                .await
                .aws(format!("cloudtrail:PutEventSelectors {TRAIL}"))?;
        }
        changes.push(
            format!("cloudtrail:{TRAIL}/event-selectors"),
            "set",
            json!(before.as_ref().map(|t| t.management_events)),
            json!({"readWriteType": "All", "includeManagementEvents": true}),
        );
    }
    if !before.as_ref().is_some_and(|t| t.logging) {
        if changes.live() {
            ct.start_logging().name(TRAIL).send().await.aws(format!("cloudtrail:StartLogging {TRAIL}"))?;
        }
        changes.push(format!("cloudtrail:{TRAIL}/logging"), "start", json!(false), json!(true));
    }
    let snapshot = json!({"trail": before.as_ref().map(trail_json)});
    Ok(changes.output(StepName::CloudTrail, region, &format!("trail {TRAIL}"), snapshot))
}

fn trail_json(t: &TrailState) -> Value {
    json!({
        "s3BucketName": t.bucket, "isMultiRegionTrail": t.multi_region,
        "includeGlobalServiceEvents": t.global_events, "logFileValidationEnabled": t.validation,
        "kmsKeyId": t.kms, "cloudWatchLogsLogGroupArn": t.log_group, "cloudWatchLogsRoleArn": t.role,
        "isLogging": t.logging,
    })
}

/// Retires (or, with `existingTrails: stop`, stops) every trail of the account that assure does
/// not own, after checking the assure trail logs. A retired trail is recorded whole (see
/// [`record`]) before its configuration is deleted in its home region; its logs are never touched.
/// An organization trail of another account is left alone (the account can neither stop nor
/// delete it) and reported.
pub async fn stop_others(aws: &Aws, run: &RunInput) -> Result<StepOutput, StepError> {
    let region = &run.home_region;
    let target = aws.account(&run.account, region).await?;
    match read_trail(&target).await? {
        Some(t) if t.logging => {}
        // A plan assumes the cloudtrail step before it has put the trail in place.
        _ if target.plan => {}
        _ => {
            return Err(StepError::new(
                ErrorName::Retryable,
                format!("the {TRAIL} trail is not logging yet in account {}; the account's own trails keep logging until it does", run.account),
            ))
        }
    }
    let mut changes = Changes::new(&target);
    let mut stopped = Vec::new();
    let mut retired = Vec::new();
    let mut left = Vec::new();
    for t in trails_of_the_run(&target, run).await? {
        let arn = t.trail_arn().unwrap_or_default().to_owned();
        let owner = arn.split(':').nth(4).unwrap_or_default();
        if owner != run.account.as_str() {
            let reason = format!("an organization trail of account {owner}: only its owner can change it");
            left.push(record::LeftAlone { arn, reason });
            continue;
        }
        let home: Region = t.home_region().unwrap_or(region.as_str()).parse()?;
        let there = target.in_region(&home);
        let whole = record::read(&there, &t).await?;
        match run.existing_trails {
            ExistingTrails::Retire => {
                if changes.live() {
                    there
                        .cloudtrail()
                        .delete_trail()
                        .name(&arn)
                        .send()
                        .await
                        .aws(format!("cloudtrail:DeleteTrail {arn}"))?;
                }
                changes.push_in(
                    target.account.clone(),
                    home,
                    format!("cloudtrail:{arn}"),
                    "retire",
                    serde_json::to_value(&whole).map_err(|e| StepError::internal(e.to_string()))?,
                    Value::Null,
                );
                retired.push(whole);
            }
            ExistingTrails::Stop if whole.is_logging == Some(true) => {
                if changes.live() {
                    there
                        .cloudtrail()
                        .stop_logging()
                        .name(&arn)
                        .send()
                        .await
                        .aws(format!("cloudtrail:StopLogging {arn}"))?;
                }
                changes.push_in(
                    target.account.clone(),
                    home,
                    format!("cloudtrail:{arn}/logging"),
                    "stop",
                    json!(true),
                    json!(false),
                );
                stopped.push(record::StoppedTrail::At { arn, home_region: t.home_region().map(str::to_owned) });
            }
            ExistingTrails::Stop => {}
        }
    }
    let snapshot = serde_json::to_value(record::OwnTrails { stopped, retired, left_alone: left })
        .map_err(|e| StepError::internal(e.to_string()))?;
    Ok(changes.output(StepName::StopCloudTrail, region, "the account's own trails", snapshot))
}

/// Every trail but the assure trail that logs in any region of the run, once each: single-region
/// trails homed in any of them, multi-region trails and organization trails, of this organization
/// or of another. `target` is in the run's home region.
///
/// Read from the home region alone, in two or three calls, not one per region: DescribeTrails there
/// answers its own trails and the shadows of every multi-region and organization trail, wherever
/// homed; ListTrails answers every trail of the account with its home region
/// (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_ListTrails.html), and those
/// homed in another region of the run are described by ARN, which DescribeTrails answers from any
/// region (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html).
async fn trails_of_the_run(
    target: &AccountConfig,
    run: &RunInput,
) -> Result<Vec<aws_sdk_cloudtrail::types::Trail>, StepError> {
    let ct = target.cloudtrail();
    let (here, listed) = futures::future::join(
        async { ct.describe_trails().include_shadow_trails(true).send().await.aws("cloudtrail:DescribeTrails") },
        list_trails(target),
    )
    .await;
    let mut trails = here?.trail_list.unwrap_or_default();
    let elsewhere: Vec<String> = listed?
        .into_iter()
        .filter(|t| {
            let arn = t.trail_arn().unwrap_or_default();
            t.home_region().is_some_and(|h| run.regions.iter().any(|r| r.as_str() == h))
                && !trails.iter().any(|d| d.trail_arn() == Some(arn))
        })
        .filter_map(|t| t.trail_arn.clone())
        .collect();
    if !elsewhere.is_empty() {
        let more = ct
            .describe_trails()
            .set_trail_name_list(Some(elsewhere))
            .send()
            .await
            .aws("cloudtrail:DescribeTrails (by ARN)")?;
        trails.extend(more.trail_list.unwrap_or_default());
    }
    let mut seen = std::collections::BTreeSet::new();
    trails.retain(|t| t.name() != Some(TRAIL) && seen.insert(t.trail_arn().unwrap_or_default().to_owned()));
    Ok(trails)
}

/// Every trail ListTrails answers, every page.
async fn list_trails(target: &AccountConfig) -> Result<Vec<aws_sdk_cloudtrail::types::TrailInfo>, StepError> {
    let mut out = Vec::new();
    let mut next = None;
    loop {
        let page = target.cloudtrail().list_trails().set_next_token(next).send().await.aws("cloudtrail:ListTrails")?;
        out.extend(page.trails.unwrap_or_default());
        next = page.next_token;
        if next.is_none() {
            return Ok(out);
        }
    }
}

/// Every trail of the run's regions except the assure trail, with its status.
/// A trail other than assure's that logs in a region of the run, and whether it logs.
struct OtherTrail {
    arn: String,
    logging: bool,
}

async fn other_trails(target: &AccountConfig, run: &RunInput) -> Result<Vec<OtherTrail>, StepError> {
    let mut out = Vec::new();
    for t in trails_of_the_run(target, run).await? {
        let arn = t.trail_arn().unwrap_or_default().to_owned();
        let home: Region = t.home_region().unwrap_or(target.region.as_str()).parse()?;
        let status = target.in_region(&home).cloudtrail().get_trail_status().name(&arn).send().await;
        let logging = match status {
            Ok(s) => s.is_logging().unwrap_or(false),
            // Another account's organization trail may not answer to this account.
            Err(e) if matches!(error_code(&e), Some("TrailNotFoundException" | "AccessDeniedException")) => false,
            Err(e) => return Err(e).aws(format!("cloudtrail:GetTrailStatus {arn}")),
        };
        out.push(OtherTrail { arn, logging });
    }
    Ok(out)
}

/// The account's own trails homed in any region of the run (a multi-region trail once, in its home
/// region), each recorded whole (see [`record::read`]), under the home region; the other regions'
/// part is null. Read from the home region: ListTrails answers every trail of the account with its
/// home region, and DescribeTrails answers a trail of another region by its ARN
/// (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_ListTrails.html,
/// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html), so one
/// read serves every region instead of one DescribeTrails per region.
pub async fn snapshot(target: &AccountConfig, run: &RunInput) -> Result<Value, StepError> {
    if target.region != run.home_region {
        return Ok(Value::Null);
    }
    let own: Vec<String> = list_trails(target)
        .await?
        .into_iter()
        .filter(|t| {
            let arn = t.trail_arn().unwrap_or_default();
            arn.split(':').nth(4) == Some(target.account.as_str())
                && t.home_region().is_some_and(|h| run.regions.iter().any(|r| r.as_str() == h))
        })
        .filter_map(|t| t.trail_arn)
        .collect();
    if own.is_empty() {
        return Ok(json!([]));
    }
    let trails = target
        .cloudtrail()
        .describe_trails()
        .set_trail_name_list(Some(own))
        .send()
        .await
        .aws("cloudtrail:DescribeTrails (by ARN)")?;
    let mut out = Vec::new();
    for t in trails.trail_list() {
        let home: Region = t.home_region().unwrap_or(target.region.as_str()).parse()?;
        out.push(record::read(&target.in_region(&home), t).await?);
    }
    serde_json::to_value(out).map_err(|e| StepError::internal(e.to_string()))
}

async fn remove_trail(acct: &AccountConfig, report: &mut Report) -> Result<(), StepError> {
    let ct = acct.cloudtrail();
    match ct.stop_logging().name(TRAIL).send().await {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("TrailNotFoundException") => return Ok(()),
        Err(e) => return Err(e).aws("cloudtrail:StopLogging"),
    }
    ct.delete_trail().name(TRAIL).send().await.aws("cloudtrail:DeleteTrail")?;
    report.restored.push(format!("cloudtrail: {TRAIL} removed (its logs stay in the logging bucket)"));
    report.not_restorable.push(format!("cloudtrail: the log group {TRAIL_LOG_GROUP} stays (it holds log data)"));
    Ok(())
}

/// The CloudTrail control: the assure trail, then the account's own trails stopped.
pub const CONTROL: Control = Control {
    name: "cloudtrail",
    steps: &[StepName::CloudTrail, StepName::StopCloudTrail],
    catalogue: catalogue::ENTRIES,
    snapshot: Some(Snapshot { key: "cloudtrail", read: |acct, run| Box::pin(snapshot(acct, run)), summarize }),
    permissions: permissions::PERMISSIONS,
    ahead: Ahead { service_roles, ..Ahead::NOTHING },
    apply: |call| match call.step {
        StepName::StopCloudTrail => Box::pin(stop_others(call.aws, call.run)),
        _ => Box::pin(apply(call.aws, call.run)),
    },
    evidence: |aws, run, _| Box::pin(evidence_for(aws, run)),
    compensate: |undo, region, report| Box::pin(compensate(undo, region, report)),
};

fn summarize(part: &Value) -> String {
    match part.as_array() {
        Some(trails) => format!("{} trail(s) of the account homed in the run's regions", trails.len()),
        None => "trails: read in the home region".to_owned(),
    }
}

/// The trail's CloudWatch Logs role, in the onboarded account.
fn service_roles(run: &RunInput) -> Vec<ServiceRole> {
    vec![ServiceRole { account: run.account.clone(), role: logs_role(&run.account, &run.home_region) }]
}

/// The account's own trails as they were (retired ones recreated whole, stopped ones logging
/// again, each in its home region), then the assure trail removed (its logs stay).
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let target = undo.target(region).await?;
    if undo.ran(StepName::StopCloudTrail) {
        let snap = undo.snapshot(StepName::StopCloudTrail, region).cloned().unwrap_or(Value::Null);
        let own: record::OwnTrails =
            crate::controls::recorded(&snap, "the stop-cloudtrail step's snapshot")?.unwrap_or_default();
        for t in &own.stopped {
            let (arn, home) = match t {
                record::StoppedTrail::Arn(arn) => (arn.as_str(), region.as_str()),
                record::StoppedTrail::At { arn, home_region } => {
                    (arn.as_str(), home_region.as_deref().unwrap_or(region.as_str()))
                }
            };
            // StartLogging must be called in the trail's home region
            // (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_StartLogging.html).
            let there = target.in_region(&home.parse()?);
            there.cloudtrail().start_logging().name(arn).send().await.aws(format!("cloudtrail:StartLogging {arn}"))?;
            report.restored.push(format!("cloudtrail: {arn} logging again"));
        }
        for t in &own.retired {
            let home: Region = t.home_region.as_deref().unwrap_or(region.as_str()).parse()?;
            let there = target.in_region(&home);
            let arn = t.trail_arn.as_str();
            let exists = there.cloudtrail().get_trail().name(arn).send().await;
            match exists {
                Ok(_) => {}
                Err(e) if error_code(&e) == Some("TrailNotFoundException") => record::recreate(&there, t).await?,
                Err(e) => return Err(e).aws(format!("cloudtrail:GetTrail {arn}")),
            }
            report.restored.push(format!(
                "cloudtrail: {arn} recreated with its settings, selectors and tags{}",
                if t.is_logging == Some(true) { ", logging" } else { ", not logging, as it was" }
            ));
        }
    }
    if undo.ran(StepName::CloudTrail) {
        remove_trail(&target, report).await?;
    }
    // The trail's CloudWatch Logs role: the run's service-roles step may have made it before the
    // trail (or without one, when the run failed before the cloudtrail step), or taken over one
    // the account had, which is put back as it was.
    if undo.ran(StepName::CloudTrail) || undo.ran(StepName::ServiceRoles) {
        let changes = undo.changes_to(&target.account, &format!("iam:role/{TRAIL_LOGS_ROLE}"));
        // Whether the role was there before is known when the service-roles step completed (its
        // record says); else from the cloudtrail step's record, if that completed.
        let roles_known = undo.snapshot(StepName::ServiceRoles, region).is_some();
        let unknown = !roles_known && (undo.unknown(StepName::CloudTrail) || undo.unknown(StepName::ServiceRoles));
        if let Some(done) = kit::restore_role(&target, TRAIL_LOGS_ROLE, &changes, unknown).await? {
            report.restored.push(format!("cloudtrail: {done}"));
        }
    }
    Ok(())
}
