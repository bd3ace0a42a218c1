//! IAM Access Analyzer, per region: trusted access for the organization and the security account
//! as delegated administrator (management account), an ORGANIZATION analyzer in the security
//! account, and the service-linked role AWSServiceRoleForAccessAnalyzer in the account.

use assure_contract::{Evidence, Region, RunInput, StepError, StepName, StepOutput};
use aws_sdk_accessanalyzer::types::Type as AnalyzerType;
use serde_json::{json, Value};

use crate::aws::{error_code, Aws, AwsResultExt};
use crate::steps::config::ensure_service_linked_role;
use crate::steps::names::ANALYZER;
use crate::steps::{already_exists, evidence, Changes};

const PRINCIPAL: &str = "access-analyzer.amazonaws.com";
const SLR: &str = "AWSServiceRoleForAccessAnalyzer";

pub async fn apply(aws: &Aws, run: &RunInput, region: &Region) -> Result<StepOutput, StepError> {
    let mgmt = aws.account(&run.org.management, region).await?;
    let security = aws.account(&run.org.security, region).await?;
    let target = aws.account(&run.account, region).await?;
    let mut changes = Changes::new(&target);
    let orgs = mgmt.organizations();

    let access = orgs
        .list_aws_service_access_for_organization()
        .send()
        .await
        .aws("organizations:ListAWSServiceAccessForOrganization")?;
    if !access.enabled_service_principals().iter().any(|p| p.service_principal() == Some(PRINCIPAL)) {
        orgs.enable_aws_service_access()
            .service_principal(PRINCIPAL)
            .send()
            .await
            .aws("organizations:EnableAWSServiceAccess")?;
        changes.push_in(
            mgmt.account.clone(),
            region.clone(),
            format!("organizations:trustedAccess/{PRINCIPAL}"),
            "enable",
            json!(false),
            json!(true),
        );
    }
    let admins = orgs
        .list_delegated_administrators()
        .service_principal(PRINCIPAL)
        .send()
        .await
        .aws("organizations:ListDelegatedAdministrators")?;
    if !admins.delegated_administrators().iter().any(|a| a.id() == Some(run.org.security.as_str())) {
        match orgs
            .register_delegated_administrator()
            .account_id(run.org.security.as_str())
            .service_principal(PRINCIPAL)
            .send()
            .await
        {
            Ok(_) => changes.push_in(
                mgmt.account.clone(),
                region.clone(),
                format!("organizations:delegatedAdministrator/{PRINCIPAL}"),
                "register",
                Value::Null,
                json!(run.org.security),
            ),
            // Regions run in parallel; another one registered it first.
            Err(e) if already_exists(error_code(&e), "") => {}
            Err(e) => return Err(e).aws("organizations:RegisterDelegatedAdministrator"),
        }
    }

    let aa = security.accessanalyzer();
    match aa.get_analyzer().analyzer_name(ANALYZER).send().await {
        Ok(_) => {}
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {
            aa.create_analyzer()
                .analyzer_name(ANALYZER)
                .r#type(AnalyzerType::Organization)
                .send()
                .await
                .aws(format!("access-analyzer:CreateAnalyzer {ANALYZER}"))?;
            changes.push_in(
                security.account.clone(),
                region.clone(),
                format!("access-analyzer:analyzer/{ANALYZER}"),
                "create",
                Value::Null,
                json!({"type": "ORGANIZATION"}),
            );
        }
        Err(e) => return Err(e).aws(format!("access-analyzer:GetAnalyzer {ANALYZER}")),
    }
    ensure_service_linked_role(&target, PRINCIPAL, SLR, &mut changes).await?;
    Ok(changes.output(StepName::AccessAnalyzer, region, &format!("Access Analyzer in {region}"), Value::Null))
}

/// Evidence for Access Analyzer in one region.
pub async fn evidence_for(aws: &Aws, run: &RunInput, region: &Region) -> Result<Vec<Evidence>, StepError> {
    let security = aws.account(&run.org.security, region).await?;
    let target = aws.account(&run.account, region).await?;
    let analyzer = match security.accessanalyzer().get_analyzer().analyzer_name(ANALYZER).send().await {
        Ok(o) => o.analyzer().map(|a| (a.r#type().as_str().to_owned(), a.status().as_str().to_owned())),
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => None,
        Err(e) => return Err(e).aws(format!("access-analyzer:GetAnalyzer {ANALYZER}")),
    };
    let mut out = vec![evidence(
        &security,
        "access-analyzer.organization",
        format!("access-analyzer:analyzer/{ANALYZER}"),
        analyzer.as_ref().is_some_and(|(t, s)| t == "ORGANIZATION" && s == "ACTIVE"),
        format!("analyzer (type, status): {analyzer:?}"),
    )];
    if region == &run.home_region {
        let role = match target.iam().get_role().role_name(SLR).send().await {
            Ok(_) => true,
            Err(e) if error_code(&e) == Some("NoSuchEntity") => false,
            Err(e) => return Err(e).aws(format!("iam:GetRole {SLR}")),
        };
        out.push(evidence(
            &target,
            "access-analyzer.service-linked-role",
            format!("iam:role/{SLR}"),
            role,
            format!("role exists: {role}"),
        ));
    }
    Ok(out)
}
