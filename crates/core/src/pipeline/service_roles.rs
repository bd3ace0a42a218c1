//! The service-roles step: the IAM roles the controls' steps hand to AWS services
//! ([`crate::controls::Ahead::service_roles`]: CloudTrail's CloudWatch Logs role in the account;
//! Config's aggregator role and the Access Analyzer findings roles in the security account), made in the Prepare stage beside
//! the logging bucket. IAM is eventually consistent and a service refuses a role made a moment
//! ago, for seconds
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency);
//! made here, a role has propagated, or nearly, by the time the control's step gives it to the
//! service, instead of that step waiting for it.
//!
//! Its record is the run's fact about each role ([`crate::aws::RoleFact`]): the control's step
//! takes the role from it without reading it again. The roles belong to their controls, whose
//! compensations remove them (those in the account; the security account's serve every account).

use assure_contract::{StepError, StepName, StepOutput};
use futures::future::try_join_all;
use serde_json::{Map, Value};

use crate::aws::{Aws, Fact, RoleFact};
use crate::controls::kit::{ensure_role, made_role, summary, Changes, ServiceRole};
use crate::controls::{self};

pub async fn run(aws: &Aws, run: &assure_contract::RunInput) -> Result<StepOutput, StepError> {
    let roles: Vec<ServiceRole> = controls::baseline::ALL.iter().flat_map(|c| (c.ahead.service_roles)(run)).collect();
    let ensured = try_join_all(roles.iter().map(|r| async move {
        let acct = aws.account(&r.account, &run.home_region).await?;
        let mut changes = Changes::new(&acct);
        let arn = ensure_role(&acct, &r.role, &mut changes).await?;
        let made = made_role(&changes.list, r.role.name);
        let fact = serde_json::to_value(RoleFact { arn, made }).map_err(|e| StepError::internal(e.to_string()))?;
        Ok::<_, StepError>((Fact::Role { account: &r.account, name: r.role.name }.key(), fact, changes.list))
    }))
    .await?;
    let mut facts = Map::new();
    let mut changes = Vec::new();
    for (fact, value, list) in ensured {
        facts.insert(fact, value);
        changes.extend(list);
    }
    Ok(StepOutput {
        step: StepName::ServiceRoles,
        region: run.home_region.clone(),
        summary: summary(&format!("{} service role(s)", roles.len()), changes.len()),
        changes,
        evidence: vec![],
        snapshot: Value::Object(facts),
    })
}
