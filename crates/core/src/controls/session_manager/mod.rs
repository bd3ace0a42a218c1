//! Session Manager, per region: the `SSM-SessionManagerRunShell` preferences log every session to
//! the logging bucket, encrypted. The account's own preferences are kept except for those fields
//! (see [`merged`]) and are the snapshot; the document is updated (a new version made default),
//! never deleted.
//!
//! The logs are encrypted by the bucket (`s3EncryptionEnabled`: the agent checks the bucket's
//! default encryption, SSE-KMS with the logging key, before it uploads). The preferences'
//! `kmsKeyId` is another thing: the key that encrypts the session's data between client and
//! instance, which every user starting a session and every instance must be allowed to use
//! (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-preferences-enable-encryption.html).
//! Set to the logging account's key, it would stop every session of the account from starting;
//! assure leaves it as the account has it.

use assure_contract::{Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_ssm::types::{DocumentFormat, DocumentType};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::kit::permissions::{allow, own};
use crate::controls::kit::{evidence, Changes};
use crate::controls::{Ahead, Control, Known, Permissions, Report, Snapshot, Undo};

pub mod catalogue;

/// The session preferences document Session Manager reads.
pub const SESSION_PREFERENCES_DOCUMENT: &str = "SSM-SessionManagerRunShell";
const DOC: &str = SESSION_PREFERENCES_DOCUMENT;

/// The preferences assure sets.
pub fn preferences(run: &RunInput, region: &Region) -> Value {
    json!({
        "schemaVersion": "1.0",
        "description": "Session Manager preferences set by assure: every session logged to the organization's logging bucket, encrypted",
        "sessionType": "Standard_Stream",
        "inputs": {
            "s3BucketName": run.logging_bucket(),
            "s3KeyPrefix": format!("session-manager/{}/{region}", run.account),
            "s3EncryptionEnabled": true,
            "cloudWatchLogGroupName": "",
            "cloudWatchEncryptionEnabled": true,
            "cloudWatchStreamingEnabled": false,
            "kmsKeyId": "",
            "runAsEnabled": false,
            "runAsDefaultUser": "",
            "idleSessionTimeout": "20",
            "shellProfile": {"windows": "", "linux": ""}
        }
    })
}

/// The account's own preferences with the baseline's fields set and every other field kept: its
/// CloudWatch Logs streaming and group, timeouts, run-as and shell profiles stay as the account set
/// them, its own session data key (`kmsKeyId`) included. The baseline fixes where session logs go
/// (`s3BucketName`, `s3KeyPrefix`) and that they are encrypted (`s3EncryptionEnabled`).
/// Preferences that are not a JSON object are replaced whole.
pub fn merged(before: &Value, want: &Value) -> Value {
    let (Some(own), Some(own_inputs)) = (before.as_object(), before["inputs"].as_object()) else {
        return want.clone();
    };
    let mut out = own.clone();
    let mut inputs = own_inputs.clone();
    for field in ["s3BucketName", "s3KeyPrefix", "s3EncryptionEnabled"] {
        inputs.insert(field.to_owned(), want["inputs"][field].clone());
    }
    out.insert("inputs".to_owned(), Value::Object(inputs));
    for field in ["schemaVersion", "sessionType"] {
        out.entry(field).or_insert_with(|| want[field].clone());
    }
    Value::Object(out)
}

pub async fn apply(aws: &Aws, run: &RunInput, region: &Region, known: Known<'_>) -> Result<StepOutput, StepError> {
    let target = aws.account(&run.account, region).await?;
    let before = known.part_or(SNAPSHOT, snapshot(&target)).await?;
    let want = merged(&before, &preferences(run, region));
    let mut changes = Changes::new(&target);
    let ssm = target.ssm();
    if before.is_null() {
        if changes.live() {
            ssm.create_document()
                .name(DOC)
                .document_type(DocumentType::Session)
                .document_format(DocumentFormat::Json)
                .content(want.to_string())
                .send()
                .await
                .aws(format!("ssm:CreateDocument {DOC}"))?;
        }
        changes.push(format!("ssm:document/{DOC}"), "create", Value::Null, want.clone());
    } else if before != want && !changes.live() {
        changes.push(format!("ssm:document/{DOC}"), "update", before.clone(), want.clone());
    } else if before != want {
        write_preferences(&target, &want).await?;
        changes.push(format!("ssm:document/{DOC}"), "update", before.clone(), want.clone());
    }
    Ok(changes.output(
        StepName::SessionManager,
        region,
        &format!("Session Manager in {region}"),
        json!({"preferences": before}),
    ))
}

/// Replaces the preferences: a new version of the document, made the default (the old versions
/// stay, as AWS keeps them).
pub(crate) async fn write_preferences(acct: &crate::aws::AccountConfig, content: &Value) -> Result<(), StepError> {
    let ssm = acct.ssm();
    let res = ssm
        .update_document()
        .name(DOC)
        .document_version("$LATEST")
        .document_format(DocumentFormat::Json)
        .content(content.to_string())
        .send()
        .await;
    let version = match res {
        Ok(out) => out.document_description().and_then(|d| d.document_version()).unwrap_or_default().to_owned(),
        // SSM refuses a new version whose content an existing version has
        // (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateDocument.html):
        // an account onboarded, rolled back and onboarded again. That version becomes the default.
        Err(e) if error_code(&e) == Some("DuplicateDocumentContent") => version_with(acct, content).await?,
        Err(e) => return Err(e).aws(format!("ssm:UpdateDocument {DOC}")),
    };
    ssm.update_document_default_version()
        .name(DOC)
        .document_version(&version)
        .send()
        .await
        .aws(format!("ssm:UpdateDocumentDefaultVersion {DOC} {version}"))?;
    Ok(())
}

/// The version of the preferences document whose content is `content`: versions are numbered from
/// 1 to the latest, newest first here; one deleted since is skipped.
async fn version_with(acct: &crate::aws::AccountConfig, content: &Value) -> Result<String, StepError> {
    let ssm = acct.ssm();
    let latest =
        ssm.get_document().name(DOC).document_version("$LATEST").send().await.aws(format!("ssm:GetDocument {DOC}"))?;
    let newest: u32 = latest.document_version().and_then(|v| v.parse().ok()).unwrap_or(0);
    for version in (1..=newest).rev().map(|v| v.to_string()) {
        let doc = match ssm.get_document().name(DOC).document_version(&version).send().await {
            Ok(d) => d,
            Err(e) if error_code(&e) == Some("InvalidDocumentVersion") => continue,
            Err(e) => return Err(e).aws(format!("ssm:GetDocument {DOC} {version}")),
        };
        if doc.content().and_then(|c| serde_json::from_str::<Value>(c).ok()).as_ref() == Some(content) {
            return Ok(version);
        }
    }
    Err(StepError::internal(format!(
        "ssm:UpdateDocument {DOC}: SSM reports a version with this content, and none of its {newest} versions has it"
    )))
}

/// Evidence for Session Manager in one region.
pub async fn evidence_for(aws: &Aws, run: &RunInput, region: &Region) -> Result<Vec<Evidence>, StepError> {
    let target = aws.account(&run.account, region).await?;
    let prefs = snapshot(&target).await?;
    let inputs = &prefs["inputs"];
    let res = format!("ssm:document/{DOC}");
    Ok(vec![
        evidence(
            &target,
            &catalogue::S3_LOGGING,
            &res,
            inputs["s3BucketName"] == run.logging_bucket().as_str(),
            format!("s3BucketName: {}", inputs["s3BucketName"]),
        ),
        evidence(
            &target,
            &catalogue::ENCRYPTED,
            &res,
            inputs["s3EncryptionEnabled"] == true,
            format!(
                "s3EncryptionEnabled: {} (the logging bucket encrypts with its key); session data key: {}",
                inputs["s3EncryptionEnabled"],
                inputs["kmsKeyId"].as_str().filter(|k| !k.is_empty()).unwrap_or("none")
            ),
        ),
    ])
}
/// The Session Manager preferences document's content, or null when the account has none.
pub async fn snapshot(target: &AccountConfig) -> Result<Value, StepError> {
    let res = target.ssm().get_document().name(SESSION_PREFERENCES_DOCUMENT).send().await;
    match res {
        Ok(doc) => {
            let content = doc.content().unwrap_or_default();
            Ok(serde_json::from_str(content).unwrap_or_else(|_| Value::String(content.to_owned())))
        }
        Err(e) if error_code(&e) == Some("InvalidDocument") => Ok(Value::Null),
        Err(e) => Err(e).aws(format!("ssm:GetDocument {SESSION_PREFERENCES_DOCUMENT}")),
    }
}

/// The key of the control's part in discover's snapshot.
const SNAPSHOT: &str = "sessionManager";

/// The Session Manager control: session logs to the logging bucket, encrypted, per region.
pub const CONTROL: Control = Control {
    name: "session-manager",
    steps: &[StepName::SessionManager],
    catalogue: catalogue::ENTRIES,
    snapshot: Some(Snapshot {
        key: SNAPSHOT,
        read: |acct, _| Box::pin(snapshot(acct)),
        summarize: |part| format!("session preferences {}", if part.is_null() { "absent" } else { "present" }),
    }),
    permissions: Permissions::member(|| {
        vec![
            allow("ReadSessionPreferences", own("ssm", "document/*"), &["ssm:GetDocument"]),
            allow(
                "SessionPreferences",
                own("ssm", &format!("document/{DOC}")),
                &["ssm:CreateDocument", "ssm:UpdateDocument", "ssm:UpdateDocumentDefaultVersion", "ssm:DeleteDocument"],
            ),
        ]
    }),
    ahead: Ahead::NOTHING,
    apply: |call| Box::pin(apply(call.aws, call.run, call.region, call.known)),
    evidence: |aws, run, region| Box::pin(evidence_for(aws, run, region)),
    compensate: |undo, region, report| Box::pin(compensate(undo, region, report)),
};

/// The account's own preferences written back, or removed if it had none.
async fn compensate(undo: &Undo<'_>, region: &Region, report: &mut Report) -> Result<(), StepError> {
    let acct = &undo.target(region).await?;
    let before = &undo.before(region, SNAPSHOT);
    let ssm = acct.ssm();
    let now = snapshot(acct).await?;
    if &now == before {
        return Ok(());
    }
    if before.is_null() {
        ssm.delete_document().name(DOC).send().await.aws(format!("ssm:DeleteDocument {DOC}"))?;
        report.restored.push(format!("session-manager {}: preferences removed (there were none)", acct.region));
        return Ok(());
    }
    write_preferences(acct, before).await?;
    report.restored.push(format!("session-manager {}: the account's own preferences", acct.region));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> Value {
        json!({"schemaVersion": "1.0", "sessionType": "Standard_Stream", "inputs": {
            "s3BucketName": "logs", "s3KeyPrefix": "session-manager/1/r", "s3EncryptionEnabled": true,
            "kmsKeyId": "", "idleSessionTimeout": "20"}})
    }

    #[test]
    fn the_accounts_own_settings_are_kept_and_only_the_baselines_fields_set() {
        let own = json!({"schemaVersion": "1.0", "description": "team", "sessionType": "Standard_Stream", "inputs": {
            "s3BucketName": "", "s3EncryptionEnabled": false, "cloudWatchLogGroupName": "/team/sessions",
            "cloudWatchStreamingEnabled": true, "kmsKeyId": "", "runAsEnabled": true, "runAsDefaultUser": "ops",
            "idleSessionTimeout": "15", "maxSessionDuration": "120", "shellProfile": {"linux": "exec bash -l"}}});
        let m = merged(&own, &baseline());
        let i = &m["inputs"];
        assert_eq!(m["description"], "team");
        assert_eq!(
            (&i["s3BucketName"], &i["s3KeyPrefix"], &i["s3EncryptionEnabled"]),
            (&json!("logs"), &json!("session-manager/1/r"), &json!(true))
        );
        assert_eq!(i["kmsKeyId"], "", "no session data key is imposed");
        for (field, kept) in [
            ("cloudWatchLogGroupName", json!("/team/sessions")),
            ("cloudWatchStreamingEnabled", json!(true)),
            ("runAsEnabled", json!(true)),
            ("runAsDefaultUser", json!("ops")),
            ("idleSessionTimeout", json!("15")),
            ("maxSessionDuration", json!("120")),
            ("shellProfile", json!({"linux": "exec bash -l"})),
        ] {
            assert_eq!(i[field], kept, "{field}");
        }
        let with_key = json!({"inputs": {"kmsKeyId": "alias/team"}});
        assert_eq!(merged(&with_key, &baseline())["inputs"]["kmsKeyId"], "alias/team", "the account's own key stays");
        assert_eq!(merged(&Value::Null, &baseline()), baseline(), "none: the baseline's own");
        assert_eq!(merged(&json!("not json"), &baseline()), baseline());
    }
}
