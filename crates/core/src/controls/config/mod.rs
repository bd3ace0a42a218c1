//! AWS Config, per region: exactly one recorder (an existing one is adopted under its own name,
//! since a region allows only one) recording all supported resources, global types only in the
//! home region; its delivery channel (also adopted) to the logging bucket, encrypted with the
//! logging key; recording on. In the home region, an organization aggregator in the security account.

use assure_contract::{Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_config::types::OrganizationAggregationSource;
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::organized;
use crate::controls::kit::{
    ensure_delegated_administrator, ensure_service_linked_role, evidence, logging_key_arn, logging_key_to_use,
    service_role, Changes, Role, ServiceRole,
};
use crate::controls::names::{AGGREGATOR, AGGREGATOR_ROLE, CONFIG_CHANNEL, CONFIG_RECORDER};
use crate::controls::{Ahead, Control, Known, Report, Snapshot, Undo};

const SERVICE: &str = "config.amazonaws.com";
const SLR: &str = "AWSServiceRoleForConfig";

fn slr_arn(acct: &AccountConfig) -> String {
    format!("arn:aws:iam::{}:role/aws-service-role/{SERVICE}/{SLR}", acct.account)
}

pub mod catalogue;
mod permissions;
pub mod record;

use record::{ConfigPart, RecordedChannel, RecordedGroup, RecordedRecorder};

/// The region's customer managed recorder and its delivery channel, each as a whole [`record`], and
/// whether that recorder records, from the region's [`snapshot`]. Service-linked recorders (a
/// service such as Security Hub owns them) are not the region's one recorder and are left out.
fn current(part: &Value) -> Result<(Option<RecordedRecorder>, Option<RecordedChannel>, bool), StepError> {
    let part = ConfigPart::of(part)?;
    let mut rec = part.recorders.into_iter().find(|r| !r.service_linked());
    let recording = rec.as_mut().and_then(|r| r.recording.take()) == Some(true);
    let chan = part.delivery_channels.into_iter().next();
    Ok((rec, chan, recording))
}

/// What the baseline fixes on a recorder: the service-linked role, and all supported resource types
/// recorded (global ones in the home region only).
fn recorder_holds(r: &RecordedRecorder, role: &str, home: bool) -> bool {
    r.role_arn.as_deref() == Some(role)
        && r.all_supported() == Some(true)
        && r.recording_group.as_ref().and_then(|g| g.include_global_resource_types) == Some(home)
}

/// The account's recorder (or a new one) with the baseline's fields set and the rest kept: its
/// name (a region has one) and its recording mode (frequency and overrides). The recording group is
/// the baseline's whole: all supported types takes no resource type lists.
fn desired_recorder(own: Option<&RecordedRecorder>, role: &str, home: bool) -> RecordedRecorder {
    let mut r = own
        .cloned()
        .unwrap_or_else(|| RecordedRecorder { name: Some(CONFIG_RECORDER.to_owned()), ..Default::default() });
    r.role_arn = Some(role.to_owned());
    r.recording_group = Some(RecordedGroup {
        all_supported: Some(true),
        include_global_resource_types: Some(home),
        ..Default::default()
    });
    r
}

/// What the baseline fixes on a delivery channel: the logging bucket, at its root (its policy lets
/// Config write under AWSLogs/), encrypted with the logging key.
fn channel_holds(c: &RecordedChannel, bucket: &str, key: &str) -> bool {
    c.s3_bucket_name.as_deref() == Some(bucket)
        && c.s3_key_prefix.as_deref().is_none_or(str::is_empty)
        && c.s3_kms_key_arn.as_deref() == Some(key)
}

/// The account's channel (or a new one) with the baseline's fields set and the rest kept: its name,
/// its SNS topic and its snapshot delivery frequency.
fn desired_channel(own: Option<&RecordedChannel>, bucket: &str, key: &str) -> RecordedChannel {
    let mut c =
        own.cloned().unwrap_or_else(|| RecordedChannel { name: Some(CONFIG_CHANNEL.to_owned()), ..Default::default() });
    c.s3_bucket_name = Some(bucket.to_owned());
    c.s3_key_prefix = None;
    c.s3_kms_key_arn = Some(key.to_owned());
    c
}

pub async fn apply(aws: &Aws, run: &RunInput, region: &Region, known: Known<'_>) -> Result<StepOutput, StepError> {
    let target = aws.account(&run.account, region).await?;
    let key = logging_key_to_use(aws, run).await?;
    let mut changes = Changes::new(&target);
    ensure_service_linked_role(&target, SERVICE, SLR, &mut changes).await?;
    let (rec, chan, recording) = current(&known.part_or(SNAPSHOT, snapshot(&target)).await?)?;
    let snapshot = json!({"recorder": rec, "deliveryChannel": chan, "recording": recording});
    let c = target.config();
    let home = region == &run.home_region;
    let role = slr_arn(&target);
    let want_rec = desired_recorder(rec.as_ref(), &role, home);
    let name = want_rec.name.clone().unwrap_or_else(|| CONFIG_RECORDER.to_owned());
    if !rec.as_ref().is_some_and(|r| recorder_holds(r, &role, home)) {
        if changes.live() {
            c.put_configuration_recorder()
                .configuration_recorder(record::recorder_from(&want_rec)?)
                .send()
                .await
                .aws(format!("config:PutConfigurationRecorder {name}"))?;
        }
        changes.push(
            format!("config:recorder/{name}"),
            if rec.is_some() { "update" } else { "create" },
            json!(rec),
            json!({"roleARN": role, "allSupported": true, "includeGlobalResourceTypes": home}),
        );
    }
    let bucket = run.logging_bucket();
    let want_chan = desired_channel(chan.as_ref(), &bucket, &key);
    let chan_name = want_chan.name.clone().unwrap_or_else(|| CONFIG_CHANNEL.to_owned());
    if !chan.as_ref().is_some_and(|ch| channel_holds(ch, &bucket, &key)) {
        if changes.live() {
            c.put_delivery_channel()
                .delivery_channel(record::channel_from(&want_chan))
                .send()
                .await
                .aws(format!("config:PutDeliveryChannel {chan_name}"))?;
        }
        changes.push(
            format!("config:deliveryChannel/{chan_name}"),
            if chan.is_some() { "update" } else { "create" },
            json!(chan),
            json!({"s3BucketName": bucket, "s3KeyPrefix": null, "s3KmsKeyArn": key}),
        );
    }
    if !recording {
        if changes.live() {
            c.start_configuration_recorder()
                .configuration_recorder_name(&name)
                .send()
                .await
                .aws(format!("config:StartConfigurationRecorder {name}"))?;
        }
        changes.push(format!("config:recorder/{name}/recording"), "start", json!(false), json!(true));
    }
    // A bulk run's organization step made the organization's aggregator for all its accounts.
    if home && run.organization.is_none() {
        ensure_aggregator(aws, run, &mut changes).await?;
    }
    Ok(changes.output(StepName::Config, region, &format!("Config in {region}"), snapshot))
}

/// The role Config reads the organization with for the aggregator, in the security account: only
/// Config acting for that account may assume it
/// (https://docs.aws.amazon.com/config/latest/developerguide/cross-service-confused-deputy-prevention.html).
fn aggregator_role(run: &RunInput) -> Role<'static> {
    Role {
        name: AGGREGATOR_ROLE,
        description: "assure: Config reads the organization for its aggregator",
        trust: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": SERVICE}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": run.org.security.as_str()}}}]}),
        policy_name: "read-organization",
        policy: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["organizations:ListAccounts", "organizations:DescribeOrganization", "organizations:ListAWSServiceAccessForOrganization", "organizations:ListDelegatedAdministrators"],
            "Resource": "*"}]}),
        keep: &[],
    }
}

async fn ensure_aggregator(aws: &Aws, run: &RunInput, changes: &mut Changes) -> Result<(), StepError> {
    // An organization aggregator outside the management account needs the security account
    // registered as Config's delegated administrator (OrganizationAccessDeniedException otherwise):
    // https://docs.aws.amazon.com/config/latest/developerguide/set-up-aggregator-cli.html (Register a Delegated Administrator)
    let mgmt = aws.management(&run.org.management, &run.home_region).await?;
    ensure_delegated_administrator(&mgmt, &run.home_region, SERVICE, &run.org.security, changes).await?;
    let security = aws.account(&run.org.security, &run.home_region).await?;
    let mut sec_changes = Changes::new(&security);
    // Made ahead by the run's service-roles step, else here.
    let (role, _) = service_role(aws, &security, &aggregator_role(run), &mut sec_changes).await?;
    let c = security.config();
    let found = match c.describe_configuration_aggregators().configuration_aggregator_names(AGGREGATOR).send().await {
        Ok(out) => out.configuration_aggregators().first().cloned(),
        Err(e) if error_code(&e) == Some("NoSuchConfigurationAggregatorException") => None,
        Err(e) => return Err(e).aws("config:DescribeConfigurationAggregators"),
    };
    let ok = found
        .as_ref()
        .and_then(|a| a.organization_aggregation_source())
        .is_some_and(|s| s.role_arn() == role && s.all_aws_regions());
    if !ok {
        if changes.live() {
            let source = OrganizationAggregationSource::builder()
                .role_arn(&role)
                .all_aws_regions(true)
                .build()
                .map_err(|e| StepError::internal(e.to_string()))?;
            // The security account is registered (ensured just above), by this run or another a
            // moment ago: Config may not know it yet, so a refusal is retried, bounded.
            crate::aws::while_propagating(crate::aws::registration_propagating, || {
                c.put_configuration_aggregator()
                    .configuration_aggregator_name(AGGREGATOR)
                    .organization_aggregation_source(source.clone())
                    .send()
            })
            .await
            .aws(format!("config:PutConfigurationAggregator {AGGREGATOR}"))?;
        }
        sec_changes.push(
            format!("config:aggregator/{AGGREGATOR}"),
            if found.is_some() { "update" } else { "create" },
            Value::Null,
            json!({"roleArn": role, "allAwsRegions": true}),
        );
    }
    changes.list.extend(sec_changes.list);
    Ok(())
}

/// Evidence for Config in one region.
pub async fn evidence_for(aws: &Aws, run: &RunInput, region: &Region) -> Result<Vec<Evidence>, StepError> {
    let target = aws.account(&run.account, region).await?;
    let (rec, chan, recording) = current(&snapshot(&target).await?)?;
    let key = logging_key_arn(aws, run).await.ok();
    let res = rec.as_ref().map_or_else(
        || "config:(no recorder)".to_owned(),
        |r| format!("config:recorder/{}", r.name.as_deref().unwrap_or_default()),
    );
    // Delivering, not only configured: the channel's last history and snapshot deliveries
    // (https://docs.aws.amazon.com/config/latest/APIReference/API_DescribeDeliveryChannelStatus.html).
    let delivery_failure = match &chan {
        Some(c) => {
            let status = target
                .config()
                .describe_delivery_channel_status()
                .delivery_channel_names(c.name.as_deref().unwrap_or_default())
                .send()
                .await
                .aws(format!("config:DescribeDeliveryChannelStatus {}", json!(c.name)))?;
            status.delivery_channels_status().first().and_then(|s| {
                [s.config_history_delivery_info(), s.config_snapshot_delivery_info()]
                    .into_iter()
                    .flatten()
                    .find(|i| i.last_status().map(|x| x.as_str()) == Some("Failure"))
                    .map(|i| {
                        format!("{}: {}", i.last_error_code().unwrap_or("?"), i.last_error_message().unwrap_or(""))
                    })
            })
        }
        None => None,
    };
    let mut out = vec![
        evidence(
            &target,
            &catalogue::ENABLED,
            &res,
            recording && rec.as_ref().is_some_and(|r| r.all_supported() == Some(true)),
            format!("recording: {recording}, all supported: {}", json!(rec.as_ref().and_then(|r| r.all_supported()))),
        ),
        evidence(
            &target,
            &catalogue::TO_LOGGING_ACCOUNT,
            &res,
            chan.as_ref().is_some_and(|c| c.s3_bucket_name.as_deref() == Some(run.logging_bucket().as_str()))
                && delivery_failure.is_none(),
            match &delivery_failure {
                None => {
                    format!("delivery bucket: {}", json!(chan.as_ref().and_then(|c| c.s3_bucket_name.clone())))
                }
                Some(e) => format!(
                    "delivery bucket: {}, but delivery fails: {e}",
                    json!(chan.as_ref().and_then(|c| c.s3_bucket_name.clone()))
                ),
            },
        ),
        evidence(
            &target,
            &catalogue::ENCRYPTED,
            &res,
            chan.as_ref().is_some_and(|c| key.is_some() && c.s3_kms_key_arn == key),
            format!("delivery kms key: {}", json!(chan.as_ref().and_then(|c| c.s3_kms_key_arn.clone()))),
        ),
    ];
    if region == &run.home_region {
        let security = aws.account(&run.org.security, region).await?;
        let found = match security
            .config()
            .describe_configuration_aggregators()
            .configuration_aggregator_names(AGGREGATOR)
            .send()
            .await
        {
            Ok(o) => !o.configuration_aggregators().is_empty(),
            Err(e) if error_code(&e) == Some("NoSuchConfigurationAggregatorException") => false,
            Err(e) => return Err(e).aws("config:DescribeConfigurationAggregators"),
        };
        out.push(evidence(
            &security,
            &catalogue::AGGREGATOR,
            format!("config:aggregator/{AGGREGATOR}"),
            found,
            format!("organization aggregator: {found}"),
        ));
    }
    Ok(out)
}
/// Every recorder (service-linked ones too), each recorded whole with whether it records, and every
/// delivery channel, recorded whole.
pub async fn snapshot(target: &AccountConfig) -> Result<Value, StepError> {
    let c = target.config();
    let (recorders, channels) = futures::future::join(
        async { c.describe_configuration_recorders().send().await.aws("config:DescribeConfigurationRecorders") },
        async { c.describe_delivery_channels().send().await.aws("config:DescribeDeliveryChannels") },
    )
    .await;
    let (recorders, channels) = (recorders?, channels?);
    // Whether each recorder records; a region without one has no status to read.
    let status = if recorders.configuration_recorders().is_empty() {
        Vec::new()
    } else {
        c.describe_configuration_recorder_status()
            .send()
            .await
            .aws("config:DescribeConfigurationRecorderStatus")?
            .configuration_recorders_status
            .unwrap_or_default()
    };
    let recorders = recorders
        .configuration_recorders()
        .iter()
        .map(|r| RecordedRecorder {
            recording: status.iter().find(|s| s.name() == r.name()).map(|s| s.recording()),
            ..record::recorder(r)
        })
        .collect();
    let delivery_channels = channels.delivery_channels().iter().map(record::channel).collect();
    serde_json::to_value(ConfigPart { recorders, delivery_channels }).map_err(|e| StepError::internal(e.to_string()))
}

/// The key of the control's part in discover's snapshot.
const SNAPSHOT: &str = "config";

/// The AWS Config control: one recorder and its delivery channel per region, the aggregator.
pub const CONTROL: Control = Control {
    name: "config",
    steps: &[StepName::Config],
    catalogue: catalogue::ENTRIES,
    snapshot: Some(Snapshot { key: SNAPSHOT, read: |acct, _| Box::pin(snapshot(acct)), summarize }),
    permissions: permissions::PERMISSIONS,
    ahead: Ahead {
        service_roles,
        organize: |aws, run, region| {
            Box::pin(organized(aws, run, region, |a, r, g, c| Box::pin(organize_region(a, r, g, c))))
        },
        ..Ahead::NOTHING
    },
    apply: |call| Box::pin(apply(call.aws, call.run, call.region, call.known)),
    evidence: |aws, run, region| Box::pin(evidence_for(aws, run, region)),
    compensate: |undo, region, report| Box::pin(compensate(undo, region, report)),
};

fn summarize(part: &Value) -> String {
    let all = ConfigPart::of(part).map(|p| p.recorders).unwrap_or_default();
    let linked = all.iter().filter(|r| r.service_linked()).count();
    match linked {
        0 => format!("{} Config recorder(s)", all.len()),
        n => format!("{} Config recorder(s), {n} of them service-linked (left alone)", all.len()),
    }
}

/// The aggregator's role in the security account, unless a bulk run's organization step made it.
fn service_roles(run: &RunInput) -> Vec<ServiceRole> {
    match run.organization {
        Some(_) => Vec::new(),
        None => vec![ServiceRole { account: run.org.security.clone(), role: aggregator_role(run) }],
    }
}

/// The organization's part: its aggregator, in the security account of the home region.
async fn organize_region(aws: &Aws, run: &RunInput, region: &Region, changes: &mut Changes) -> Result<(), StepError> {
    if region == &run.home_region {
        ensure_aggregator(aws, run, changes).await?;
    }
    Ok(())
}

/// The recorder and delivery channel as they were, field by field, or removed if there were none.
/// Service-linked recorders are neither restored nor removed: assure never touched them.
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let acct = undo.target(region).await?;
    let before = ConfigPart::of(&undo.before(region, SNAPSHOT))?;
    let c = acct.config();
    let own = before.recorders.iter().find(|r| !r.service_linked());
    let (now, now_chan, _) = current(&snapshot(&acct).await?)?;
    match own {
        Some(rec) => {
            let name = rec.name.as_deref().unwrap_or_default();
            c.put_configuration_recorder()
                .configuration_recorder(record::recorder_from(rec)?)
                .send()
                .await
                .aws(format!("config:PutConfigurationRecorder {name}"))?;
            match before.delivery_channels.first() {
                Some(ch) => {
                    c.put_delivery_channel()
                        .delivery_channel(record::channel_from(ch))
                        .send()
                        .await
                        .aws("config:PutDeliveryChannel")?;
                }
                // The recorder had no channel: the one assure made goes (a recording recorder keeps
                // its last channel, so it stops first).
                None => {
                    if let Some(ch) = now_chan.as_ref().and_then(|ch| ch.name.as_deref()) {
                        c.stop_configuration_recorder()
                            .configuration_recorder_name(name)
                            .send()
                            .await
                            .aws("config:StopConfigurationRecorder")?;
                        c.delete_delivery_channel()
                            .delivery_channel_name(ch)
                            .send()
                            .await
                            .aws(format!("config:DeleteDeliveryChannel {ch}"))?;
                    }
                }
            }
            if rec.recording == Some(false) {
                c.stop_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
                    .await
                    .aws("config:StopConfigurationRecorder")?;
            }
            report.restored.push(format!("config {region}: recorder {name} and its delivery channel as they were"));
        }
        None => {
            if let Some(name) = now.as_ref().and_then(|r| r.name.as_deref()) {
                c.stop_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
                    .await
                    .aws("config:StopConfigurationRecorder")?;
                if let Some(ch) = now_chan.as_ref().and_then(|ch| ch.name.as_deref()) {
                    c.delete_delivery_channel()
                        .delivery_channel_name(ch)
                        .send()
                        .await
                        .aws("config:DeleteDeliveryChannel")?;
                }
                c.delete_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
                    .await
                    .aws("config:DeleteConfigurationRecorder")?;
                report.restored.push(format!("config {region}: recorder {name} removed (there was none; its history stays in the logging bucket)"));
            }
        }
    }
    if region == &undo.run.home_region {
        report.not_restorable.push(format!(
            "config: the service-linked role AWSServiceRoleForConfig in {} stays (AWS owns it)",
            undo.run.account
        ));
    }
    Ok(())
}
