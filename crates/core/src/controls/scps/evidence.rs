//! Verify: the evidence that the SCPs hold.

use assure_contract::{Evidence, RunInput, StepError};
use serde_json::Value;

use crate::aws::{Aws, AwsResultExt};
use crate::controls::kit::evidence;
use crate::controls::names::SCP_ROOT;

use super::catalogue;
use super::*;

/// Evidence: each policy attached where it belongs (the account; the logging and security
/// accounts) with assure's content.
pub async fn evidence_for(aws: &Aws, run: &RunInput) -> Result<Vec<Evidence>, StepError> {
    let organization = aws.organization(&run.org.management, &run.home_region);
    let orgs = organization.organizations();
    // In a bulk run, the organization step read every policy's content a moment before the
    // accounts' runs began, once for all of them (Organizations throttles first): here the policy
    // attached must be the very one it checked.
    let organized = organized_ids(run);
    let checked = match organized {
        Some(_) => "the policy whose content the bulk run's organization step checked",
        None => "content as assure wrote it",
    };
    let mut targets = vec![(&run.account, on_target as fn(&str) -> bool)];
    // The logging and security accounts' policies are a bulk run's organization step's, checked
    // there once; a run of its own attaches and checks them itself.
    if organized.is_none() {
        targets.extend(log_archive_accounts(run).into_iter().map(|a| (a, on_log_archive as fn(&str) -> bool)));
    }
    // A policy's content, read once however many accounts it is attached to.
    let mut content: std::collections::BTreeMap<String, Option<Value>> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    // Within one task, each account's attachments and each policy's content are read once: the
    // fleet's watch checks every account in one task, and the logging and security accounts'
    // policies, which every account's check looks at, are then read once for the whole fleet.
    for (account, wanted) in targets {
        let attached: std::collections::BTreeMap<String, String> =
            attached_once(&organization, account).await?.into_iter().collect();
        for (name, _, doc) in policies(run).into_iter().filter(|(n, _, _)| wanted(n)) {
            let ok = match (attached.get(name), &organized) {
                (Some(id), Some(ids)) => ids.get(name) == Some(id),
                (Some(id), None) => {
                    if !content.contains_key(id) {
                        let read = async {
                            let content = orgs
                                .describe_policy()
                                .policy_id(id)
                                .send()
                                .await
                                .aws(format!("organizations:DescribePolicy {name}"))?
                                .policy()
                                .and_then(|p| p.content())
                                .unwrap_or_default()
                                .to_owned();
                            Ok(content)
                        };
                        let text = organization.account_wide_read(&format!("scp-content/{id}"), read).await?;
                        content.insert(id.clone(), serde_json::from_str::<Value>(&text).ok());
                    }
                    content[id].as_ref() == Some(&doc)
                }
                (None, _) => false,
            };
            let control = match name {
                SCP_ROOT => &catalogue::RESTRICT_ROOT,
                _ if account != &run.account => &catalogue::LOG_ARCHIVE,
                _ => &catalogue::ATTACHED,
            };
            out.push(evidence(
                &organization,
                control,
                format!("organizations:policy/{name} on {account}"),
                ok,
                format!("attached: {}, {checked}: {ok}", attached.contains_key(name)),
            ));
        }
    }
    if root::wanted(run) {
        let target = aws.account(&run.account, &run.home_region).await?;
        let mgmt = aws.management(&run.org.management, &run.home_region).await?;
        out.extend(root::evidence_for(&mgmt, &target, organized.is_some()).await?);
    }
    Ok(out)
}
