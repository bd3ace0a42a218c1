//! The baseline holds against the people it binds. After onboarding, an administrator of the
//! account (and of the logging and security accounts) tries every way we know to disable, blind,
//! delete, redirect or escape a control, through the AWS CLI: each attempt is refused as AWS
//! refuses it (by one of assure's service control policies). Then, for what an SCP cannot prevent
//! (what was done before the policies were attached), the same kinds of changes are made with the
//! policies detached, and the next `assure verify` names the control each one broke.
//!
//! The suite prints its table: attempt, refused or detected, by what.

use assure_core::controls::names::{ALARM_KEY_ALIAS, ALARM_TOPIC, FINDINGS, TRAIL, TRAIL_LOGS_ROLE, TRAIL_LOG_GROUP};
use assure_e2e::LocalCloud;

use super::iam::{attach_scps, aws_cli, credentials, detach_assure_scps};

mod planted;

/// One attempt: who, what (AWS CLI arguments), and the IAM action AWS authorizes it as.
struct Attempt {
    what: String,
    action: &'static str,
    args: Vec<String>,
}

fn attempt(what: &str, action: &'static str, args: &[&str]) -> Attempt {
    Attempt { what: what.to_owned(), action, args: args.iter().map(|a| (*a).to_owned()).collect() }
}

/// A CLI answer's output, which must have succeeded.
fn ok(cloud: &LocalCloud, creds: &aws_sdk_sts::config::Credentials, args: &[&str]) -> String {
    let (code, out, err) = aws_cli(cloud, creds, args);
    assert_eq!(code, 0, "{}: {err}", args.join(" "));
    out.trim().to_owned()
}

/// Runs every attempt as `creds`; each must be refused by a service control policy, naming its
/// action. Answers the table's rows.
fn all_refused(
    cloud: &LocalCloud,
    creds: &aws_sdk_sts::config::Credentials,
    who: &str,
    attempts: &[Attempt],
) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut allowed = Vec::new();
    for a in attempts {
        let args: Vec<&str> = a.args.iter().map(String::as_str).collect();
        let (code, out, err) = aws_cli(cloud, creds, &args);
        let by_scp = code != 0 && err.contains("service control policy") && err.contains(a.action);
        if !by_scp {
            allowed.push(format!("{who}: {} ({}): exit {code}: {out}{err}", a.what, a.action));
        }
        let policy =
            ["assure-protect-baseline", "assure-protect-access", "assure-protect-log-archive", "assure-restrict-root"]
                .into_iter()
                .find(|p| err.contains(p))
                .unwrap_or("a service control policy");
        rows.push((format!("{who}: {}", a.what), format!("refused: {} by {policy}", a.action)));
    }
    assert!(allowed.is_empty(), "not refused by an SCP:\n{}", allowed.join("\n"));
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attempt_to_switch_the_baseline_off_is_refused_or_detected() {
    let cloud = LocalCloud::start();
    let ids = cloud.seed();
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    let (target, logging, security) = (ids["external"][0].as_str().unwrap(), s("logging"), s("security"));
    let config = cloud.dir.path().join("assure.toml");
    std::fs::write(
        &config,
        format!(
            "regions = [\"us-east-1\"]\n[organization]\nlogging_account = \"{logging}\"\nsecurity_account = \"{security}\"\n[notifications]\nprotocol = \"email\"\nendpoint = \"secops@example.com\"\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (code, out, err) = cloud.run(&["--config", config, "deploy"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = cloud.run(&["--config", config, "onboard", target, "--run-id", "held"]);
    assert_eq!(code, 0, "{out}\n{err}");

    let admin = credentials(&cloud.admin_config_as(target, "us-east-1").await).await;
    let log_admin = credentials(&cloud.admin_config_as(&logging, "us-east-1").await).await;
    let sec_admin = credentials(&cloud.admin_config_as(&security, "us-east-1").await).await;

    // What the attempts name, read as the administrator (reading is never denied).
    let alarm_key = ok(
        &cloud,
        &admin,
        &["kms", "describe-key", "--key-id", ALARM_KEY_ALIAS, "--query", "KeyMetadata.KeyId", "--output", "text"],
    );
    let topic = format!("arn:aws:sns:us-east-1:{target}:{ALARM_TOPIC}");
    let subscription = ok(
        &cloud,
        &admin,
        &[
            "sns",
            "list-subscriptions-by-topic",
            "--topic-arn",
            &topic,
            "--query",
            "Subscriptions[0].SubscriptionArn",
            "--output",
            "text",
        ],
    );
    assert!(subscription.starts_with(&topic), "{subscription}");
    let detector =
        ok(&cloud, &admin, &["guardduty", "list-detectors", "--query", "DetectorIds[0]", "--output", "text"]);
    let own_key = ok(&cloud, &admin, &["kms", "create-key", "--query", "KeyMetadata.Arn", "--output", "text"]);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{target}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let deny_all =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}"#;
    let admin_policy = "arn:aws:iam::aws:policy/AdministratorAccess";
    // A Session document of the administrator's own, which logs nothing: creating it is not the
    // attack (the account may keep documents); starting a session with it is.
    ok(
        &cloud,
        &admin,
        &[
            "ssm",
            "create-document",
            "--name",
            "NoLog",
            "--document-type",
            "Session",
            "--content",
            r#"{"schemaVersion":"1.0","description":"x","sessionType":"Standard_Stream","inputs":{"s3BucketName":""}}"#,
        ],
    );
    let filter = r#"{"metricName":"assure-root-account-usage","metricNamespace":"Decoy","metricValue":"1"}"#;
    let pattern = "{ $.userIdentity.type = Root }";
    let stack = "StackSet-assure-member-role-0123abcd";
    let target_attempts = vec![
        // The trail.
        attempt("stop the assure trail", "cloudtrail:StopLogging", &["cloudtrail", "stop-logging", "--name", TRAIL]),
        attempt("delete the assure trail", "cloudtrail:DeleteTrail", &["cloudtrail", "delete-trail", "--name", TRAIL]),
        attempt("turn log file validation off", "cloudtrail:UpdateTrail", &["cloudtrail", "update-trail", "--name", TRAIL, "--no-enable-log-file-validation"]),
        attempt("send the trail to another bucket", "cloudtrail:UpdateTrail", &["cloudtrail", "update-trail", "--name", TRAIL, "--s3-bucket-name", "elsewhere"]),
        attempt("record write events only", "cloudtrail:PutEventSelectors", &["cloudtrail", "put-event-selectors", "--trail-name", TRAIL, "--event-selectors", r#"[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true}]"#]),
        attempt("exclude management events", "cloudtrail:PutEventSelectors", &["cloudtrail", "put-event-selectors", "--trail-name", TRAIL, "--event-selectors", r#"[{"ReadWriteType":"All","IncludeManagementEvents":false}]"#]),
        // The trail's log group, which the alarms read.
        attempt("delete the trail's log group", "logs:DeleteLogGroup", &["logs", "delete-log-group", "--log-group-name", TRAIL_LOG_GROUP]),
        attempt("rewrite a CIS filter to a decoy namespace", "logs:PutMetricFilter", &["logs", "put-metric-filter", "--log-group-name", TRAIL_LOG_GROUP, "--filter-name", "assure-root-account-usage", "--filter-pattern", pattern, "--metric-transformations", filter]),
        attempt("delete a CIS filter", "logs:DeleteMetricFilter", &["logs", "delete-metric-filter", "--log-group-name", TRAIL_LOG_GROUP, "--filter-name", "assure-root-account-usage"]),
        attempt("expire the log group's events after a day", "logs:PutRetentionPolicy", &["logs", "put-retention-policy", "--log-group-name", TRAIL_LOG_GROUP, "--retention-in-days", "1"]),
        attempt("encrypt the log group with a key of one's own", "logs:AssociateKmsKey", &["logs", "associate-kms-key", "--log-group-name", TRAIL_LOG_GROUP, "--kms-key-id", &own_key]),
        attempt("delete a log stream", "logs:DeleteLogStream", &["logs", "delete-log-stream", "--log-group-name", TRAIL_LOG_GROUP, "--log-stream-name", "x"]),
        // The alarms.
        attempt("delete an alarm", "cloudwatch:DeleteAlarms", &["cloudwatch", "delete-alarms", "--alarm-names", "assure-root-account-usage"]),
        attempt("disable an alarm's actions", "cloudwatch:DisableAlarmActions", &["cloudwatch", "disable-alarm-actions", "--alarm-names", "assure-root-account-usage"]),
        attempt("raise an alarm's threshold", "cloudwatch:PutMetricAlarm", &["cloudwatch", "put-metric-alarm", "--alarm-name", "assure-root-account-usage", "--metric-name", "assure-root-account-usage", "--namespace", "Assure/CISBenchmark", "--statistic", "Sum", "--period", "300", "--evaluation-periods", "1", "--threshold", "1000000", "--comparison-operator", "GreaterThanOrEqualToThreshold"]),
        attempt("hold an alarm at OK", "cloudwatch:SetAlarmState", &["cloudwatch", "set-alarm-state", "--alarm-name", "assure-root-account-usage", "--state-value", "OK", "--state-reason", "x"]),
        attempt("cancel alarms out with negative data", "cloudwatch:PutMetricData", &["cloudwatch", "put-metric-data", "--namespace", "Assure/CISBenchmark", "--metric-name", "assure-root-account-usage", "--value", "-1000000000"]),
        // The topic the alarms notify.
        attempt("delete the alarm topic", "sns:DeleteTopic", &["sns", "delete-topic", "--topic-arn", &topic]),
        attempt("deny CloudWatch in the topic's policy", "sns:SetTopicAttributes", &["sns", "set-topic-attributes", "--topic-arn", &topic, "--attribute-name", "Policy", "--attribute-value", deny_all]),
        attempt("switch the topic to the AWS managed key", "sns:SetTopicAttributes", &["sns", "set-topic-attributes", "--topic-arn", &topic, "--attribute-name", "KmsMasterKeyId", "--attribute-value", "alias/aws/sns"]),
        attempt("open the topic to another account", "sns:AddPermission", &["sns", "add-permission", "--topic-arn", &topic, "--label", "x", "--aws-account-id", "999999999999", "--action-name", "Publish"]),
        attempt("remove a permission of the topic", "sns:RemovePermission", &["sns", "remove-permission", "--topic-arn", &topic, "--label", "x"]),
        attempt("unsubscribe the security team", "sns:Unsubscribe", &["sns", "unsubscribe", "--subscription-arn", &subscription]),
        attempt("filter every message out of the subscription", "sns:SetSubscriptionAttributes", &["sns", "set-subscription-attributes", "--subscription-arn", &subscription, "--attribute-name", "FilterPolicy", "--attribute-value", r#"{"never":["x"]}"#]),
        // The topic's key.
        attempt("disable the alarm key", "kms:DisableKey", &["kms", "disable-key", "--key-id", &alarm_key]),
        attempt("schedule the alarm key's deletion", "kms:ScheduleKeyDeletion", &["kms", "schedule-key-deletion", "--key-id", &alarm_key, "--pending-window-in-days", "7"]),
        attempt("deny CloudWatch in the alarm key's policy", "kms:PutKeyPolicy", &["kms", "put-key-policy", "--key-id", &alarm_key, "--policy-name", "default", "--policy", deny_all]),
        attempt("turn the alarm key's rotation off", "kms:DisableKeyRotation", &["kms", "disable-key-rotation", "--key-id", &alarm_key]),
        attempt("delete the alarm key's alias", "kms:DeleteAlias", &["kms", "delete-alias", "--alias-name", ALARM_KEY_ALIAS]),
        attempt("point the alias at a key of one's own", "kms:UpdateAlias", &["kms", "update-alias", "--alias-name", ALARM_KEY_ALIAS, "--target-key-id", &own_key]),
        // Config.
        attempt("stop the Config recorder", "config:StopConfigurationRecorder", &["configservice", "stop-configuration-recorder", "--configuration-recorder-name", "legacy-recorder"]),
        attempt("delete the Config recorder", "config:DeleteConfigurationRecorder", &["configservice", "delete-configuration-recorder", "--configuration-recorder-name", "legacy-recorder"]),
        attempt("record one resource type only", "config:PutConfigurationRecorder", &["configservice", "put-configuration-recorder", "--configuration-recorder", &format!("name=legacy-recorder,roleARN=arn:aws:iam::{target}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"), "--recording-group", "allSupported=false,includeGlobalResourceTypes=false,resourceTypes=AWS::S3::Bucket"]),
        attempt("delete the delivery channel", "config:DeleteDeliveryChannel", &["configservice", "delete-delivery-channel", "--delivery-channel-name", "legacy-channel"]),
        attempt("send Config elsewhere", "config:PutDeliveryChannel", &["configservice", "put-delivery-channel", "--delivery-channel", "name=legacy-channel,s3BucketName=elsewhere"]),
        attempt("keep Config's history a month", "config:PutRetentionConfiguration", &["configservice", "put-retention-configuration", "--retention-period-in-days", "30"]),
        // GuardDuty.
        attempt("suspend GuardDuty", "guardduty:UpdateDetector", &["guardduty", "update-detector", "--detector-id", &detector, "--no-enable"]),
        attempt("delete the detector", "guardduty:DeleteDetector", &["guardduty", "delete-detector", "--detector-id", &detector]),
        attempt("leave the security account's administration", "guardduty:DisassociateFromAdministratorAccount", &["guardduty", "disassociate-from-administrator-account", "--detector-id", &detector]),
        attempt("suppress every finding", "guardduty:CreateFilter", &["guardduty", "create-filter", "--detector-id", &detector, "--name", "quiet", "--action", "ARCHIVE", "--finding-criteria", r#"{"Criterion":{"severity":{"Gte":0}}}"#]),
        attempt("archive findings", "guardduty:ArchiveFindings", &["guardduty", "archive-findings", "--detector-id", &detector, "--finding-ids", "0123456789abcdef0123456789abcdef"]),
        // The member role, assure's roles, the StackSet's roles.
        attempt("give the member role another policy", "iam:PutRolePolicy", &["iam", "put-role-policy", "--role-name", "AssureExecutionRole", "--policy-name", "x", "--policy-document", all]),
        attempt("trust oneself in the member role", "iam:UpdateAssumeRolePolicy", &["iam", "update-assume-role-policy", "--role-name", "AssureExecutionRole", "--policy-document", &trust]),
        attempt("attach AdministratorAccess to the member role", "iam:AttachRolePolicy", &["iam", "attach-role-policy", "--role-name", "AssureExecutionRole", "--policy-arn", admin_policy]),
        attempt("bound the member role with a deny-all", "iam:PutRolePermissionsBoundary", &["iam", "put-role-permissions-boundary", "--role-name", "AssureExecutionRole", "--permissions-boundary", admin_policy]),
        attempt("delete the member role", "iam:DeleteRole", &["iam", "delete-role", "--role-name", "AssureExecutionRole"]),
        attempt("tag the member role", "iam:TagRole", &["iam", "tag-role", "--role-name", "AssureExecutionRole", "--tags", "Key=owner,Value=me"]),
        attempt("bound CloudTrail's Logs role", "iam:PutRolePermissionsBoundary", &["iam", "put-role-permissions-boundary", "--role-name", TRAIL_LOGS_ROLE, "--permissions-boundary", admin_policy]),
        attempt("delete CloudTrail's Logs role", "iam:DeleteRole", &["iam", "delete-role", "--role-name", TRAIL_LOGS_ROLE]),
        attempt("make a role named like assure's", "iam:CreateRole", &["iam", "create-role", "--role-name", "assure-lookalike", "--assume-role-policy-document", &trust]),
        attempt("make a role the StackSet exemption names", "iam:CreateRole", &["iam", "create-role", "--role-name", "stacksets-exec-0123456789abcdef", "--assume-role-policy-document", &trust]),
        attempt("make one under a path the exemption matches", "iam:CreateRole", &["iam", "create-role", "--path", "/stacksets-exec-x/", "--role-name", "anything", "--assume-role-policy-document", &trust]),
        attempt("delete Access Analyzer's service-linked role", "iam:DeleteServiceLinkedRole", &["iam", "delete-service-linked-role", "--role-name", "AWSServiceRoleForAccessAnalyzer"]),
        // The member role's stack.
        attempt("delete the member role's stack", "cloudformation:DeleteStack", &["cloudformation", "delete-stack", "--stack-name", stack]),
        attempt("change the member role's stack", "cloudformation:CreateChangeSet", &["cloudformation", "create-change-set", "--stack-name", stack, "--change-set-name", "x", "--template-body", "{}"]),
        attempt("lift the stack's termination protection", "cloudformation:UpdateTerminationProtection", &["cloudformation", "update-termination-protection", "--stack-name", stack, "--no-enable-termination-protection"]),
        // Session logging.
        attempt("stop logging sessions", "ssm:UpdateDocument", &["ssm", "update-document", "--name", "SSM-SessionManagerRunShell", "--document-version", "$LATEST", "--content", r#"{"schemaVersion":"1.0","description":"x","sessionType":"Standard_Stream","inputs":{"s3BucketName":""}}"#]),
        attempt("delete the preferences", "ssm:DeleteDocument", &["ssm", "delete-document", "--name", "SSM-SessionManagerRunShell"]),
        attempt("roll the preferences back", "ssm:UpdateDocumentDefaultVersion", &["ssm", "update-document-default-version", "--name", "SSM-SessionManagerRunShell", "--document-version", "1"]),
        attempt("a shell under a document that logs nothing", "ssm:StartSession", &["ssm", "start-session", "--target", "i-0123456789abcdef0", "--document-name", "NoLog"]),
        attempt("a shell over SSH, which Session Manager does not log", "ssm:StartSession", &["ssm", "start-session", "--target", "i-0123456789abcdef0", "--document-name", "AWS-StartSSHSession"]),
        // The organization, and the Regions the controls are in.
        attempt("leave the organization", "organizations:LeaveOrganization", &["organizations", "leave-organization"]),
        attempt("disable a Region, and every control in it", "account:DisableRegion", &["account", "disable-region", "--region-name", "af-south-1"]),
    ];
    let log_bucket = format!("assure-logs-{logging}-us-east-1");
    let log_key = ok(
        &cloud,
        &log_admin,
        &["kms", "describe-key", "--key-id", "alias/assure-logs", "--query", "KeyMetadata.KeyId", "--output", "text"],
    );
    let expire = r#"{"Rules":[{"ID":"x","Status":"Enabled","Filter":{"Prefix":""},"Expiration":{"Days":1}}]}"#;
    let logging_attempts = vec![
        attempt(
            "expire the logs",
            "s3:PutLifecycleConfiguration",
            &[
                "s3api",
                "put-bucket-lifecycle-configuration",
                "--bucket",
                &log_bucket,
                "--lifecycle-configuration",
                expire,
            ],
        ),
        attempt(
            "delete the bucket's policy",
            "s3:DeleteBucketPolicy",
            &["s3api", "delete-bucket-policy", "--bucket", &log_bucket],
        ),
        attempt(
            "replace the bucket's policy",
            "s3:PutBucketPolicy",
            &[
                "s3api",
                "put-bucket-policy",
                "--bucket",
                &log_bucket,
                "--policy",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"*"}]}"#,
            ],
        ),
        attempt(
            "suspend versioning",
            "s3:PutBucketVersioning",
            &[
                "s3api",
                "put-bucket-versioning",
                "--bucket",
                &log_bucket,
                "--versioning-configuration",
                "Status=Suspended",
            ],
        ),
        attempt(
            "encrypt with S3's key instead",
            "s3:PutEncryptionConfiguration",
            &[
                "s3api",
                "put-bucket-encryption",
                "--bucket",
                &log_bucket,
                "--server-side-encryption-configuration",
                r#"{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}"#,
            ],
        ),
        attempt(
            "lift Block Public Access",
            "s3:PutBucketPublicAccessBlock",
            &[
                "s3api",
                "put-public-access-block",
                "--bucket",
                &log_bucket,
                "--public-access-block-configuration",
                "BlockPublicAcls=false,IgnorePublicAcls=false,BlockPublicPolicy=false,RestrictPublicBuckets=false",
            ],
        ),
        attempt(
            "stop the access logs",
            "s3:PutBucketLogging",
            &["s3api", "put-bucket-logging", "--bucket", &log_bucket, "--bucket-logging-status", "{}"],
        ),
        attempt(
            "delete a log",
            "s3:DeleteObject",
            &[
                "s3api",
                "delete-object",
                "--bucket",
                &log_bucket,
                "--key",
                &format!("AWSLogs/{target}/CloudTrail/us-east-1/2026/12/06/x.json.gz"),
            ],
        ),
        attempt(
            "delete a log's every version",
            "s3:DeleteObjectVersion",
            &[
                "s3api",
                "delete-object",
                "--bucket",
                &log_bucket,
                "--key",
                &format!("AWSLogs/{target}/CloudTrail/us-east-1/2026/12/06/x.json.gz"),
                "--version-id",
                "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
            ],
        ),
        attempt("delete the logging bucket", "s3:DeleteBucket", &["s3api", "delete-bucket", "--bucket", &log_bucket]),
        attempt("disable the logging key", "kms:DisableKey", &["kms", "disable-key", "--key-id", &log_key]),
        attempt(
            "schedule the logging key's deletion",
            "kms:ScheduleKeyDeletion",
            &["kms", "schedule-key-deletion", "--key-id", &log_key, "--pending-window-in-days", "7"],
        ),
        attempt(
            "rewrite the logging key's policy",
            "kms:PutKeyPolicy",
            &["kms", "put-key-policy", "--key-id", &log_key, "--policy-name", "default", "--policy", deny_all],
        ),
        attempt(
            "delete the logging key's alias",
            "kms:DeleteAlias",
            &["kms", "delete-alias", "--alias-name", "alias/assure-logs"],
        ),
        attempt("leave the organization", "organizations:LeaveOrganization", &["organizations", "leave-organization"]),
    ];
    let sec_detector =
        ok(&cloud, &sec_admin, &["guardduty", "list-detectors", "--query", "DetectorIds[0]", "--output", "text"]);
    let security_attempts = vec![
        attempt("disable the findings rule", "events:DisableRule", &["events", "disable-rule", "--name", FINDINGS]),
        attempt(
            "remove the findings rule's target",
            "events:RemoveTargets",
            &["events", "remove-targets", "--rule", FINDINGS, "--ids", "findings"],
        ),
        attempt("delete the findings rule", "events:DeleteRule", &["events", "delete-rule", "--name", FINDINGS]),
        attempt(
            "delete the findings stream",
            "firehose:DeleteDeliveryStream",
            &["firehose", "delete-delivery-stream", "--delivery-stream-name", FINDINGS],
        ),
        attempt(
            "archive every organization finding",
            "access-analyzer:CreateArchiveRule",
            &[
                "accessanalyzer",
                "create-archive-rule",
                "--analyzer-name",
                "assure-organization",
                "--rule-name",
                "all",
                "--filter",
                r#"{"resourceType":{"exists":true}}"#,
            ],
        ),
        attempt(
            "delete the organization analyzer",
            "access-analyzer:DeleteAnalyzer",
            &["accessanalyzer", "delete-analyzer", "--analyzer-name", "assure-organization"],
        ),
        attempt(
            "stop exporting GuardDuty's findings",
            "guardduty:DeletePublishingDestination",
            &[
                "guardduty",
                "delete-publishing-destination",
                "--detector-id",
                &sec_detector,
                "--destination-id",
                "0123456789abcdef",
            ],
        ),
        attempt(
            "drop the account from GuardDuty",
            "guardduty:DisassociateMembers",
            &["guardduty", "disassociate-members", "--detector-id", &sec_detector, "--account-ids", target],
        ),
        attempt(
            "widen the findings role",
            "iam:PutRolePolicy",
            &[
                "iam",
                "put-role-policy",
                "--role-name",
                "assure-findings-delivery",
                "--policy-name",
                "x",
                "--policy-document",
                all,
            ],
        ),
        attempt(
            "make a role the StackSet exemption names",
            "iam:CreateRole",
            &["iam", "create-role", "--role-name", "stacksets-exec-fedcba", "--assume-role-policy-document", &trust],
        ),
    ];
    let mut table = all_refused(&cloud, &admin, "account", &target_attempts);
    table.extend(all_refused(&cloud, &log_admin, "logging", &logging_attempts));
    table.extend(all_refused(&cloud, &sec_admin, "security", &security_attempts));
    // Session logs: an account writes under its own prefix of the logging bucket, and cannot forge
    // or overwrite another account's.
    // (IAM admits the write under the account's own prefix; moto's S3 then refuses any object
    // written into another account's bucket, so the decision is read from the authorization log.)
    let own = format!("session-manager/{target}/us-east-1/session.log");
    aws_cli(&cloud, &admin, &["s3api", "put-object", "--bucket", &log_bucket, "--key", &own]);
    let own_arn = format!("arn:aws:s3:::{log_bucket}/{own}");
    assert!(
        cloud
            .decisions()
            .iter()
            .any(|d| d["action"] == "s3:PutObject" && d["resource"] == own_arn.as_str() && d["allowed"] == true),
        "IAM refused a session log under the account's own prefix"
    );
    let forged = format!("session-manager/{security}/us-east-1/session.log");
    let (code, _, err) = aws_cli(&cloud, &admin, &["s3api", "put-object", "--bucket", &log_bucket, "--key", &forged]);
    assert!(
        code != 0 && err.contains("not authorized to perform: s3:PutObject"),
        "another account's session log was written: {err}"
    );
    table.push((
        format!("account: write a session log under {security}'s prefix"),
        "refused: s3:PutObject by the logging bucket's policy".to_owned(),
    ));
    // Nothing changed: verify holds.
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 0, "{out}\n{err}");

    // What no SCP can prevent: what was done before the policies were attached. Detached, the same
    // administrator makes such changes; verify names the control each one broke.
    let orgs = aws_sdk_organizations::Client::new(&cloud.sdk_config().await);
    let mut detached = Vec::new();
    for account in [target, logging.as_str(), security.as_str()] {
        detached.push((account.to_owned(), detach_assure_scps(&orgs, account).await));
    }
    let detected: Vec<(&str, &str, &aws_sdk_sts::config::Credentials, Vec<&str>)> = vec![
        ("a CIS filter rewritten to a decoy namespace", "alarms.root-usage", &admin, vec!["logs", "put-metric-filter", "--log-group-name", TRAIL_LOG_GROUP, "--filter-name", "assure-root-account-usage", "--filter-pattern", "{ $.userIdentity.type = \"Root\" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != \"AwsServiceEvent\" }", "--metric-transformations", filter]),
        ("an alarm's actions disabled", "alarms.unauthorized-api-calls", &admin, vec!["cloudwatch", "disable-alarm-actions", "--alarm-names", "assure-unauthorized-api-calls"]),
        ("the security team unsubscribed", "alarms.subscribed", &admin, vec!["sns", "unsubscribe", "--subscription-arn", &subscription]),
        ("the topic's policy denies everyone", "alarms.topic-encrypted", &admin, vec!["sns", "set-topic-attributes", "--topic-arn", &topic, "--attribute-name", "Policy", "--attribute-value", deny_all]),
        ("the alarm key disabled", "alarms.topic-encrypted", &admin, vec!["kms", "disable-key", "--key-id", &alarm_key]),
        ("a suppression rule archiving every finding", "guardduty.no-suppression", &admin, vec!["guardduty", "create-filter", "--detector-id", &detector, "--name", "quiet", "--action", "ARCHIVE", "--finding-criteria", r#"{"Criterion":{"severity":{"Gte":0}}}"#]),
        ("CloudTrail's Logs role bounded", "roles.service-roles", &admin, vec!["iam", "put-role-permissions-boundary", "--role-name", TRAIL_LOGS_ROLE, "--permissions-boundary", admin_policy]),
        ("the member role given another policy", "roles.member-role", &admin, vec!["iam", "put-role-policy", "--role-name", "AssureExecutionRole", "--policy-name", "x", "--policy-document", all]),
        ("a role the StackSet exemption names, trusting the administrator", "roles.member-role", &admin, vec!["iam", "create-role", "--role-name", "stacksets-exec-0123456789abcdef", "--assume-role-policy-document", &trust]),
        ("the logs expired after a day", "logging.bucket-retained", &log_admin, vec!["s3api", "put-bucket-lifecycle-configuration", "--bucket", &log_bucket, "--lifecycle-configuration", expire]),
        ("the logging key disabled", "logging.key-rotation", &log_admin, vec!["kms", "disable-key", "--key-id", &log_key]),
    ];
    for (what, _, creds, args) in &detected {
        let (code, _, err) = aws_cli(&cloud, creds, args);
        assert_eq!(code, 0, "{what}: not even possible without the policies: {err}");
    }
    let (code, out, err) = cloud.run(&["verify", target]);
    assert_eq!(code, 1, "verify saw nothing:\n{out}\n{err}");
    let mut missed = Vec::new();
    for (what, control, _, _) in &detected {
        let line = out.lines().find(|l| l.starts_with('✗') && l.contains(control));
        match line {
            Some(l) => table
                .push((format!("before the SCPs: {what}"), format!("detected: {}", l.trim_start_matches('✗').trim()))),
            None => missed.push(format!("{what} ({control})")),
        }
    }
    assert!(missed.is_empty(), "verify did not name: {missed:?}\n{out}\n{err}");
    // The member role is the StackSet's to mend (preflight refuses a run while it differs): as
    // the StackSet would, the extra policy and the look-alike role go.
    ok(&cloud, &admin, &["iam", "delete-role-policy", "--role-name", "AssureExecutionRole", "--policy-name", "x"]);
    ok(&cloud, &admin, &["iam", "delete-role", "--role-name", "stacksets-exec-0123456789abcdef"]);
    for (account, ids) in detached {
        attach_scps(&orgs, &account, &ids).await;
    }

    // A full run repairs the rest, but for the topic's deny-everyone policy, which binds assure
    // too (an explicit deny in a resource-based policy): the run stops at the alarms step naming
    // it, and verify then names the alarm chain alone (the filter, the alarm's actions, the
    // subscription and the key are the alarms step's).
    let (code, out, err) = cloud.run(&["onboard", target, "--full", "--run-id", "repaired"]);
    assert_ne!(code, 0, "{out}\n{err}");
    let said = format!("{out}{err}");
    assert!(said.contains(ALARM_TOPIC) && said.contains("explicit deny in a resource-based policy"), "{said}");
    // (with the delivery canaries: the trail reports the failure of its last delivery, made while
    // the key was disabled, until it delivers again, which the canary makes happen)
    let (code, out, err) = cloud.run(&["verify", target, "--deliveries", "--wait", "30"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let failing: Vec<&str> = out.lines().filter(|l| l.starts_with('✗')).collect();
    let unrepaired: Vec<&&str> = failing
        .iter()
        .filter(|l| {
            let control = l.trim_start_matches('✗').trim();
            !control.starts_with("alarms.") && !control.starts_with("deliveries.alarm")
        })
        .collect();
    assert!(unrepaired.is_empty(), "a full run left these broken: {unrepaired:?}\n{out}");

    println!("{:<72} outcome", "attempt");
    for (what, outcome) in &table {
        println!("{what:<72} {outcome}");
    }
    assert!(table.len() >= 60 + detected.len(), "{} attempts", table.len());
}
