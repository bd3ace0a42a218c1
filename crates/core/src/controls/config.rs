//! AWS Config, per region: exactly one recorder (an existing one is adopted under its own name,
//! since a region allows only one) recording all supported resources, global types only in the
//! home region; its delivery channel (also adopted) to the logging bucket, encrypted with the
//! logging key; recording on. In the home region, an organization aggregator in the security account.

use assure_contract::{Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, OrganizationAggregationSource, RecordingGroup};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::{
    ensure_delegated_administrator, ensure_role, ensure_service_linked_role, evidence, logging_key_arn, Changes,
};
use crate::controls::names::{AGGREGATOR, AGGREGATOR_ROLE, CONFIG_CHANNEL, CONFIG_RECORDER};
use crate::controls::{Control, Fut, Report, Undo};

const SERVICE: &str = "config.amazonaws.com";
const SLR: &str = "AWSServiceRoleForConfig";

fn slr_arn(acct: &AccountConfig) -> String {
    format!("arn:aws:iam::{}:role/aws-service-role/{SERVICE}/{SLR}", acct.account)
}

#[derive(Debug, Clone, PartialEq)]
struct Recorder {
    name: String,
    role: Option<String>,
    all_supported: bool,
    global: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Channel {
    name: String,
    bucket: Option<String>,
    kms: Option<String>,
}

async fn read(acct: &AccountConfig) -> Result<(Option<Recorder>, Option<Channel>, bool), StepError> {
    let c = acct.config();
    let recs = c.describe_configuration_recorders().send().await.aws("config:DescribeConfigurationRecorders")?;
    let rec = recs.configuration_recorders().first().map(|r| Recorder {
        name: r.name().unwrap_or_default().to_owned(),
        role: r.role_arn().map(str::to_owned),
        all_supported: r.recording_group().is_some_and(|g| g.all_supported()),
        global: r.recording_group().is_some_and(|g| g.include_global_resource_types()),
    });
    let chans = c.describe_delivery_channels().send().await.aws("config:DescribeDeliveryChannels")?;
    let chan = chans.delivery_channels().first().map(|d| Channel {
        name: d.name().unwrap_or_default().to_owned(),
        bucket: d.s3_bucket_name().map(str::to_owned),
        kms: d.s3_kms_key_arn().map(str::to_owned),
    });
    let status =
        c.describe_configuration_recorder_status().send().await.aws("config:DescribeConfigurationRecorderStatus")?;
    let recording = status.configuration_recorders_status().first().is_some_and(|s| s.recording());
    Ok((rec, chan, recording))
}

pub async fn apply(aws: &Aws, run: &RunInput, region: &Region) -> Result<StepOutput, StepError> {
    let target = aws.account(&run.account, region).await?;
    let key = logging_key_arn(aws, run).await?;
    let mut changes = Changes::new(&target);
    ensure_service_linked_role(&target, SERVICE, SLR, &mut changes).await?;
    let (rec, chan, recording) = read(&target).await?;
    let snapshot = json!({
        "recorder": rec.as_ref().map(|r| json!({"name": r.name, "roleArn": r.role, "allSupported": r.all_supported, "includeGlobalResourceTypes": r.global})),
        "deliveryChannel": chan.as_ref().map(|c| json!({"name": c.name, "s3BucketName": c.bucket, "s3KmsKeyArn": c.kms})),
        "recording": recording,
    });
    let c = target.config();
    let home = region == &run.home_region;
    let want_rec = Recorder {
        name: rec.as_ref().map_or_else(|| CONFIG_RECORDER.to_owned(), |r| r.name.clone()),
        role: Some(slr_arn(&target)),
        all_supported: true,
        global: home,
    };
    if rec.as_ref() != Some(&want_rec) {
        if changes.live() {
            c.put_configuration_recorder()
                .configuration_recorder(
                    ConfigurationRecorder::builder()
                        .name(&want_rec.name)
                        .role_arn(slr_arn(&target))
                        .recording_group(
                            RecordingGroup::builder().all_supported(true).include_global_resource_types(home).build(),
                        )
                        .build(),
                )
                .send()
                .await
                .aws(format!("config:PutConfigurationRecorder {}", want_rec.name))?;
        }
        changes.push(
            format!("config:recorder/{}", want_rec.name),
            if rec.is_some() { "update" } else { "create" },
            snapshot["recorder"].clone(),
            json!({"roleArn": want_rec.role, "allSupported": true, "includeGlobalResourceTypes": home}),
        );
    }
    let want_chan = Channel {
        name: chan.as_ref().map_or_else(|| CONFIG_CHANNEL.to_owned(), |c| c.name.clone()),
        bucket: Some(run.logging_bucket()),
        kms: Some(key.clone()),
    };
    if chan.as_ref() != Some(&want_chan) {
        if changes.live() {
            c.put_delivery_channel()
                .delivery_channel(
                    DeliveryChannel::builder()
                        .name(&want_chan.name)
                        .s3_bucket_name(run.logging_bucket())
                        .s3_kms_key_arn(&key)
                        .build(),
                )
                .send()
                .await
                .aws(format!("config:PutDeliveryChannel {}", want_chan.name))?;
        }
        changes.push(
            format!("config:deliveryChannel/{}", want_chan.name),
            if chan.is_some() { "update" } else { "create" },
            snapshot["deliveryChannel"].clone(),
            json!({"s3BucketName": want_chan.bucket, "s3KmsKeyArn": key}),
        );
    }
    if !recording {
        if changes.live() {
            c.start_configuration_recorder()
                .configuration_recorder_name(&want_rec.name)
                .send()
                .await
                .aws(format!("config:StartConfigurationRecorder {}", want_rec.name))?;
        }
        changes.push(format!("config:recorder/{}/recording", want_rec.name), "start", json!(false), json!(true));
    }
    if home {
        ensure_aggregator(aws, run, &mut changes).await?;
    }
    Ok(changes.output(StepName::Config, region, &format!("Config in {region}"), snapshot))
}

async fn ensure_aggregator(aws: &Aws, run: &RunInput, changes: &mut Changes) -> Result<(), StepError> {
    // An organization aggregator outside the management account needs the security account
    // registered as Config's delegated administrator (OrganizationAccessDeniedException otherwise):
    // https://docs.aws.amazon.com/config/latest/developerguide/set-up-aggregator-cli.html (Register a Delegated Administrator)
    let mgmt = aws.account(&run.org.management, &run.home_region).await?;
    ensure_delegated_administrator(&mgmt, &run.home_region, SERVICE, &run.org.security, changes).await?;
    let security = aws.account(&run.org.security, &run.home_region).await?;
    let mut sec_changes = Changes::new(&security);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": SERVICE}, "Action": "sts:AssumeRole"}]});
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["organizations:ListAccounts", "organizations:DescribeOrganization", "organizations:ListAWSServiceAccessForOrganization", "organizations:ListDelegatedAdministrators"],
        "Resource": "*"}]});
    let role = ensure_role(
        &security,
        AGGREGATOR_ROLE,
        "assure: Config reads the organization for its aggregator",
        &trust,
        "read-organization",
        &policy,
        &mut sec_changes,
    )
    .await?;
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
            c.put_configuration_aggregator()
                .configuration_aggregator_name(AGGREGATOR)
                .organization_aggregation_source(
                    OrganizationAggregationSource::builder()
                        .role_arn(&role)
                        .all_aws_regions(true)
                        .build()
                        .map_err(|e| StepError::internal(e.to_string()))?,
                )
                .send()
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
    let (rec, chan, recording) = read(&target).await?;
    let key = logging_key_arn(aws, run).await.ok();
    let res = rec.as_ref().map_or_else(|| "config:(no recorder)".to_owned(), |r| format!("config:recorder/{}", r.name));
    // Delivering, not only configured: the channel's last history and snapshot deliveries
    // (https://docs.aws.amazon.com/config/latest/APIReference/API_DescribeDeliveryChannelStatus.html).
    let delivery_failure = match &chan {
        Some(c) => {
            let status = target
                .config()
                .describe_delivery_channel_status()
                .delivery_channel_names(&c.name)
                .send()
                .await
                .aws(format!("config:DescribeDeliveryChannelStatus {}", c.name))?;
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
            "config.enabled",
            &res,
            recording && rec.as_ref().is_some_and(|r| r.all_supported),
            format!("recording: {recording}, all supported: {:?}", rec.as_ref().map(|r| r.all_supported)),
        ),
        evidence(
            &target,
            "config.to-logging-account",
            &res,
            chan.as_ref().is_some_and(|c| c.bucket.as_deref() == Some(run.logging_bucket().as_str()))
                && delivery_failure.is_none(),
            match &delivery_failure {
                None => format!("delivery bucket: {:?}", chan.as_ref().and_then(|c| c.bucket.clone())),
                Some(e) => format!(
                    "delivery bucket: {:?}, but delivery fails: {e}",
                    chan.as_ref().and_then(|c| c.bucket.clone())
                ),
            },
        ),
        evidence(
            &target,
            "config.encrypted",
            &res,
            chan.as_ref().is_some_and(|c| c.kms.is_some() && c.kms == key),
            format!("delivery kms key: {:?}", chan.as_ref().and_then(|c| c.kms.clone())),
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
            "config.aggregator",
            format!("config:aggregator/{AGGREGATOR}"),
            found,
            format!("organization aggregator: {found}"),
        ));
    }
    Ok(out)
}
/// Recorders (with their status) and delivery channels.
pub async fn snapshot(target: &AccountConfig) -> Result<Value, StepError> {
    let c = target.config();
    let recorders = c.describe_configuration_recorders().send().await.aws("config:DescribeConfigurationRecorders")?;
    let status =
        c.describe_configuration_recorder_status().send().await.aws("config:DescribeConfigurationRecorderStatus")?;
    let channels = c.describe_delivery_channels().send().await.aws("config:DescribeDeliveryChannels")?;
    let recorders: Vec<Value> = recorders
        .configuration_recorders()
        .iter()
        .map(|r| {
            let running =
                status.configuration_recorders_status().iter().find(|s| s.name() == r.name()).map(|s| s.recording());
            json!({
                "name": r.name(),
                "roleArn": r.role_arn(),
                "allSupported": r.recording_group().map(|g| g.all_supported()),
                "includeGlobalResourceTypes": r.recording_group().map(|g| g.include_global_resource_types()),
                "recording": running,
            })
        })
        .collect();
    let channels: Vec<Value> = channels
        .delivery_channels()
        .iter()
        .map(|d| {
            json!({
                "name": d.name(),
                "s3BucketName": d.s3_bucket_name(),
                "s3KeyPrefix": d.s3_key_prefix(),
                "snsTopicARN": d.sns_topic_arn(),
                "s3KmsKeyArn": d.s3_kms_key_arn(),
                "deliveryFrequency": d
                    .config_snapshot_delivery_properties()
                    .and_then(|p| p.delivery_frequency())
                    .map(|f| f.as_str()),
            })
        })
        .collect();
    Ok(json!({"recorders": recorders, "deliveryChannels": channels}))
}

/// The key of the control's part in discover's snapshot.
const SNAPSHOT: &str = "config";

/// The AWS Config control: one recorder and its delivery channel per region, the aggregator.
pub struct Config;

impl Control for Config {
    fn name(&self) -> &'static str {
        "config"
    }

    fn steps(&self) -> &'static [StepName] {
        &[StepName::Config]
    }

    fn snapshot_key(&self) -> Option<&'static str> {
        Some(SNAPSHOT)
    }

    fn snapshot<'a>(&'a self, acct: &'a AccountConfig) -> Fut<'a, Value> {
        Box::pin(snapshot(acct))
    }

    fn summarize(&self, part: &Value) -> String {
        format!("{} Config recorder(s)", part["recorders"].as_array().map_or(0, Vec::len))
    }

    fn apply<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, _: StepName, region: &'a Region) -> Fut<'a, StepOutput> {
        Box::pin(apply(aws, run, region))
    }

    fn evidence<'a>(&'a self, aws: &'a Aws, run: &'a RunInput, region: &'a Region) -> Fut<'a, Vec<Evidence>> {
        Box::pin(evidence_for(aws, run, region))
    }

    fn compensate<'a>(&'a self, undo: &'a Undo<'a>, region: &'a Region, report: &'a mut Report) -> Fut<'a, ()> {
        Box::pin(compensate(undo, region, report))
    }
}

/// The recorder and delivery channel as they were, or removed if there were none.
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let acct = undo.target(region).await?;
    let before = &undo.before(region, SNAPSHOT);
    let c = acct.config();
    match before["recorders"].as_array().and_then(|r| r.first()) {
        Some(rec) => {
            let name = rec["name"].as_str().unwrap_or_default();
            c.put_configuration_recorder()
                .configuration_recorder(
                    aws_sdk_config::types::ConfigurationRecorder::builder()
                        .name(name)
                        .set_role_arn(rec["roleArn"].as_str().map(str::to_owned))
                        .recording_group(
                            aws_sdk_config::types::RecordingGroup::builder()
                                .all_supported(rec["allSupported"].as_bool().unwrap_or(false))
                                .include_global_resource_types(
                                    rec["includeGlobalResourceTypes"].as_bool().unwrap_or(false),
                                )
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .aws("config:PutConfigurationRecorder")?;
            if let Some(ch) = before["deliveryChannels"].as_array().and_then(|d| d.first()) {
                c.put_delivery_channel()
                    .delivery_channel(
                        aws_sdk_config::types::DeliveryChannel::builder()
                            .set_name(ch["name"].as_str().map(str::to_owned))
                            .set_s3_bucket_name(ch["s3BucketName"].as_str().map(str::to_owned))
                            .set_s3_key_prefix(ch["s3KeyPrefix"].as_str().map(str::to_owned))
                            .set_sns_topic_arn(ch["snsTopicARN"].as_str().map(str::to_owned))
                            .set_s3_kms_key_arn(ch["s3KmsKeyArn"].as_str().map(str::to_owned))
                            .set_config_snapshot_delivery_properties(ch["deliveryFrequency"].as_str().map(|f| {
                                aws_sdk_config::types::ConfigSnapshotDeliveryProperties::builder()
                                    .delivery_frequency(aws_sdk_config::types::MaximumExecutionFrequency::from(f))
                                    .build()
                            }))
                            .build(),
                    )
                    .send()
                    .await
                    .aws("config:PutDeliveryChannel")?;
            }
            if rec["recording"] == false {
                c.stop_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
                    .await
                    .aws("config:StopConfigurationRecorder")?;
            }
            report.restored.push(format!("config {region}: recorder {name} and its delivery channel as they were"));
        }
        None => {
            let recs =
                c.describe_configuration_recorders().send().await.aws("config:DescribeConfigurationRecorders")?;
            for r in recs.configuration_recorders() {
                let name = r.name().unwrap_or_default();
                c.stop_configuration_recorder()
                    .configuration_recorder_name(name)
                    .send()
                    .await
                    .aws("config:StopConfigurationRecorder")?;
                let chans = c.describe_delivery_channels().send().await.aws("config:DescribeDeliveryChannels")?;
                for ch in chans.delivery_channels() {
                    c.delete_delivery_channel()
                        .delivery_channel_name(ch.name().unwrap_or_default())
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
