//! What the organization shares: trusted access and delegated administrators.

use assure_contract::{AccountId, Region, RunInput, StepError};
use serde_json::{json, Value};

use crate::aws::{error_code, AccountConfig, Aws, AwsResultExt};
use crate::controls::{Fut, Organized};

use super::{already_exists, Changes};

/// Trusted access for `principal` in the organization and `admin` registered as the service's
/// delegated administrator, from the management account `mgmt` (Organizations is global; the
/// changes are recorded in `region`, the step's). Organization-wide and shared by every account's
/// run, so never compensated. Regions run in parallel: a registration another region made first
/// is fine. Answers whether `admin` was not registered before (so registered now, or in a plan
/// would be).
pub(crate) async fn ensure_delegated_administrator(
    mgmt: &AccountConfig,
    region: &Region,
    principal: &str,
    admin: &AccountId,
    changes: &mut Changes,
) -> Result<bool, StepError> {
    let work = async {
        let registered = ensure_delegated_administrator_here(mgmt, region, principal, admin, changes).await?;
        Ok(if registered { "registered".to_owned() } else { String::new() })
    };
    Ok(!mgmt.account_wide(&format!("delegated-administrator/{principal}/{admin}"), work).await?.is_empty())
}

/// The accounts Organizations has registered as `principal`'s delegated administrators, read from
/// the management account once per task (every region of it shares the answer).
pub async fn registered_administrators(mgmt: &AccountConfig, principal: &str) -> Result<Vec<String>, StepError> {
    let read = async {
        let admins = mgmt
            .organizations()
            .list_delegated_administrators()
            .service_principal(principal)
            .send()
            .await
            .aws(format!("organizations:ListDelegatedAdministrators {principal}"))?;
        Ok(admins.delegated_administrators().iter().filter_map(|a| a.id()).collect::<Vec<_>>().join(","))
    };
    let joined = mgmt.account_wide(&format!("registered-administrators/{principal}"), read).await?;
    Ok(joined.split(',').filter(|a| !a.is_empty()).map(str::to_owned).collect())
}

/// Trusted access for the service `principal` enabled in the organization (from the management
/// account `mgmt`), recorded as a change when it was not.
pub(crate) async fn ensure_trusted_access(
    mgmt: &AccountConfig,
    region: &Region,
    principal: &str,
    changes: &mut Changes,
) -> Result<(), StepError> {
    let orgs = mgmt.organizations();
    let access = orgs
        .list_aws_service_access_for_organization()
        .send()
        .await
        .aws("organizations:ListAWSServiceAccessForOrganization")?;
    if !access.enabled_service_principals().iter().any(|p| p.service_principal() == Some(principal)) {
        if changes.live() {
            orgs.enable_aws_service_access()
                .service_principal(principal)
                .send()
                .await
                .aws(format!("organizations:EnableAWSServiceAccess {principal}"))?;
        }
        changes.push_in(
            mgmt.account.clone(),
            region.clone(),
            format!("organizations:trustedAccess/{principal}"),
            "enable",
            json!(false),
            json!(true),
        );
    }
    Ok(())
}

async fn ensure_delegated_administrator_here(
    mgmt: &AccountConfig,
    region: &Region,
    principal: &str,
    admin: &AccountId,
    changes: &mut Changes,
) -> Result<bool, StepError> {
    ensure_trusted_access(mgmt, region, principal, changes).await?;
    let orgs = mgmt.organizations();
    let admins = orgs
        .list_delegated_administrators()
        .service_principal(principal)
        .send()
        .await
        .aws("organizations:ListDelegatedAdministrators")?;
    if admins.delegated_administrators().iter().any(|a| a.id() == Some(admin.as_str())) {
        return Ok(false);
    }
    if changes.live() {
        match orgs
            .register_delegated_administrator()
            .account_id(admin.as_str())
            .service_principal(principal)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if already_exists(error_code(&e), "") => return Ok(false),
            Err(e) => return Err(e).aws("organizations:RegisterDelegatedAdministrator"),
        }
    }
    changes.push_in(
        mgmt.account.clone(),
        region.clone(),
        format!("organizations:delegatedAdministrator/{principal}"),
        "register",
        Value::Null,
        json!(admin),
    );
    Ok(true)
}

/// A part of an organization-wide change: what it records in the [`Changes`] it is given.
pub(crate) type Part = for<'b> fn(&'b Aws, &'b RunInput, &'b Region, &'b mut Changes) -> Fut<'b, ()>;

/// A control's organization-wide part in `region` (its [`crate::controls::Ahead::organize`]) as
/// the management account's changes, with no facts for the accounts' steps.
pub(crate) async fn organized(aws: &Aws, run: &RunInput, region: &Region, part: Part) -> Result<Organized, StepError> {
    let mut changes = Changes::new(&aws.management(&run.org.management, region).await?);
    part(aws, run, region, &mut changes).await?;
    Ok(Organized { changes: changes.list, facts: Value::Null })
}
