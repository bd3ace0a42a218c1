//! Verify: the evidence that the logging bucket holds.

use assure_contract::{Evidence, RunInput, StepError};
use serde_json::{json, Value};

use crate::aws::Aws;
use crate::controls::kit::read_key;

use assure_contract::catalogue::Entry;

use super::catalogue;
use super::*;

/// Evidence for the logging bucket's controls, read-only.
pub async fn evidence(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let region = &run.home_region;
    let acct = aws.account(&run.org.logging, region).await?;
    let bucket = run.logging_bucket();
    let (st, key) = futures::try_join!(read_bucket(&acct, &bucket), read_key(&acct, RunInput::LOGGING_KEY_ALIAS))?;
    let ev = |control: &Entry, passed: bool, detail: String| {
        Evidence::new(control, acct.account.clone(), region.clone(), format!("arn:aws:s3:::{bucket}"), passed, detail)
    };
    let policy = st.policy.clone().unwrap_or(Value::Null);
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let tls_only =
        statements.iter().any(|s| s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == "false");
    let allows_public = statements.iter().any(|s| {
        s["Effect"] == "Allow" && s["Principal"] == json!({"AWS": "*"}) && s["Condition"].is_null()
            || s["Effect"] == "Allow" && s["Principal"] == "*" && s["Condition"].is_null()
    });
    let org_scoped = statements.iter().filter(|s| s["Effect"] == "Allow").all(|s| {
        s["Condition"]["StringEquals"]["aws:SourceOrgID"].is_string()
            || s["Condition"]["StringEquals"]["aws:PrincipalOrgID"].is_string()
    }) && !statements.is_empty();
    let mut out = vec![
        ev(
            &catalogue::BUCKET_NOT_PUBLIC,
            st.exists && st.public_access_block == Some([true; 4]) && !allows_public,
            format!(
                "exists: {}, block public access: {:?}, public allow statement: {allows_public}",
                st.exists, st.public_access_block
            ),
        ),
        ev(
            &catalogue::BUCKET_ENCRYPTED,
            matches!(&st.encryption, Some((alg, Some(k), _)) if alg == "aws:kms" && key.as_ref().is_some_and(|key| *k == key.arn || *k == key.key_id)),
            format!("default encryption: {:?}", st.encryption),
        ),
        ev(
            &catalogue::BUCKET_ACCESS_LOGGING,
            st.logging.as_ref().is_some_and(|(t, _)| *t == run.access_log_bucket()),
            format!("access logging: {:?}", st.logging),
        ),
        ev(&catalogue::BUCKET_TLS_ONLY, tls_only, format!("deny on aws:SecureTransport=false: {tls_only}")),
        ev(
            &catalogue::BUCKET_VERSIONED,
            st.versioning.as_deref() == Some("Enabled"),
            format!("versioning: {:?}", st.versioning),
        ),
        ev(
            &catalogue::BUCKET_ORG_SCOPED,
            org_scoped,
            format!("every allow statement scoped to the organization: {org_scoped}"),
        ),
    ];
    // Logs kept, not only stored: no lifecycle rule expires them (assure's archives only), and
    // their key is enabled (a key disabled or pending deletion makes every log unreadable) with the
    // policy assure wrote.
    let expiring = expiring_rules(&st.lifecycle);
    out.push(ev(
        &catalogue::BUCKET_RETAINED,
        st.exists && expiring.is_empty() && st.lifecycle == lifecycle_json(&lifecycle_rules()),
        if expiring.is_empty() {
            format!("lifecycle: {}", st.lifecycle)
        } else {
            format!("lifecycle rules that delete logs: {}", expiring.join(", "))
        },
    ));
    let org_id = organization_id(&acct).await.ok();
    let key_problems: Vec<String> = match &key {
        None => vec!["no key".to_owned()],
        Some(k) => {
            let mut p = Vec::new();
            if !k.rotation {
                p.push("rotation off".to_owned());
            }
            if k.state != "Enabled" {
                p.push(format!("the key is {}", k.state));
            }
            if org_id.is_some_and(|o| {
                k.policy.as_ref() != Some(&key_policy(acct.account.as_str(), acct.region.as_str(), &o, &run.role_name))
            }) {
                p.push("its policy is not assure's".to_owned());
            }
            p
        }
    };
    out.push(Evidence {
        resource: key.as_ref().map_or_else(|| RunInput::LOGGING_KEY_ALIAS.to_owned(), |k| k.arn.clone()),
        ..ev(
            &catalogue::KEY_ROTATION,
            key_problems.is_empty(),
            if key_problems.is_empty() {
                "rotation on, enabled, with assure's policy".to_owned()
            } else {
                key_problems.join("; ")
            },
        )
    });
    Ok(out)
}
