//! AWS failure paths, through the real SDK against wiremock behind its endpoint: each failure maps
//! to the right error name, with a message naming what failed.

use assure_contract::{ErrorName, RunInput, StepError};
use assure_core::aws::Aws;
use assure_core::controls::logging_bucket;
use assure_core::pipeline::preflight;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub(super) const CALLER: &str = "123456789012";

pub(super) async fn aws_for(server: &MockServer) -> Aws {
    Mock::given(method("POST"))
        .and(body_string_contains("Action=GetCallerIdentity"))
        .respond_with(ResponseTemplate::new(200).set_body_string(format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult>\
             <Arn>arn:aws:iam::{CALLER}:user/t</Arn><UserId>AIDA</UserId><Account>{CALLER}</Account>\
             </GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        )))
        .mount(server)
        .await;
    // The member role in the caller's own account (the security account, where the pipeline runs,
    // reaches itself through it too); before any test's catch-all answers.
    Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole"))
        .and(body_string_contains(CALLER))
        .respond_with(assumed(std::time::Duration::from_secs(3600)))
        .with_priority(1)
        .mount(server)
        .await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(server.uri())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new("a", "b", None, None, "test"))
        // One attempt: these tests check how a failure is named, not the SDK's retries.
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    Aws::from_sdk_config(sdk).await.expect("caller identity").with_role("AssureExecutionRole")
}

/// A run whose management and logging account is the caller: the management account's calls take
/// the caller's credentials, the logging account's its member role.
pub(super) fn run() -> RunInput {
    serde_json::from_value(json!({
        "runId": "r-1",
        "account": "111111111111",
        "regions": ["us-east-1"],
        "homeRegion": "us-east-1",
        "org": {"management": CALLER, "logging": CALLER, "security": "333333333333"},
        "roleName": "AssureExecutionRole"
    }))
    .unwrap()
}

pub(super) fn json_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.1")
        .set_body_json(json!({"__type": code, "message": message}))
}

pub(super) async fn organizations(server: &MockServer, op: &str, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(header("x-amz-target", format!("AWSOrganizationsV20161128.{op}").as_str()))
        .respond_with(response)
        .mount(server)
        .await;
}

fn organization_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"Organization": {
        "Id": "o-test", "Arn": "arn:aws:organizations::123456789012:organization/o-test",
        "MasterAccountId": CALLER, "FeatureSet": "ALL"}}))
}

async fn expect_err(result: Result<impl std::fmt::Debug, StepError>, name: ErrorName, needle: &str) {
    let err = result.expect_err("the call fails");
    assert_eq!(err.name, name, "{err}");
    assert!(err.message.contains(needle), "{needle:?} not in {:?}", err.message);
}

#[tokio::test]
async fn an_account_outside_the_organization_is_invalid_input_naming_the_field() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", organization_ok()).await;
    organizations(&server, "DescribeAccount", json_error(400, "AccountNotFoundException", "no such account")).await;
    expect_err(
        preflight::validate(&aws, &run()).await,
        ErrorName::InvalidInput,
        "account: account 111111111111 is not a member",
    )
    .await;
}

/// The controls' own preflight checks run after the organization's: a GuardDuty delegated
/// administrator that cannot be read fails the run before anything changes, naming the call.
#[tokio::test]
async fn unreadable_delegated_administrators_fail_preflight_naming_the_call() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", organization_ok()).await;
    organizations(
        &server,
        "DescribeAccount",
        ResponseTemplate::new(200).set_body_json(json!({"Account": {"Id": "111111111111", "Status": "ACTIVE"}})),
    )
    .await;
    organizations(&server, "ListPoliciesForTarget", ResponseTemplate::new(200).set_body_json(json!({"Policies": []})))
        .await;
    organizations(&server, "ListDelegatedAdministrators", json_error(400, "AccessDeniedException", "denied by an SCP"))
        .await;
    expect_err(
        preflight::validate(&aws, &run()).await,
        ErrorName::AccessDenied,
        "organizations:ListDelegatedAdministrators guardduty.amazonaws.com",
    )
    .await;
}

#[tokio::test]
async fn an_unreadable_guardduty_administrator_fails_preflight_naming_the_call() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", organization_ok()).await;
    organizations(
        &server,
        "DescribeAccount",
        ResponseTemplate::new(200).set_body_json(json!({"Account": {"Id": "111111111111", "Status": "ACTIVE"}})),
    )
    .await;
    // The SCP quota's check reads the account's policies: none.
    organizations(&server, "ListPoliciesForTarget", ResponseTemplate::new(200).set_body_json(json!({"Policies": []})))
        .await;
    // Organizations knows another account as GuardDuty's delegated administrator, so preflight
    // asks GuardDuty where, region by region.
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AWSOrganizationsV20161128.ListDelegatedAdministrators"))
        .and(body_string_contains("guardduty.amazonaws.com"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"DelegatedAdministrators": [{"Id": "444444444444", "Status": "ACTIVE"}]})),
        )
        .mount(&server)
        .await;
    organizations(
        &server,
        "ListDelegatedAdministrators",
        ResponseTemplate::new(200).set_body_json(json!({"DelegatedAdministrators": []})),
    )
    .await;
    Mock::given(method("GET"))
        .and(path_regex("^/admin$"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-amzn-ErrorType", "AccessDeniedException")
                .set_body_json(json!({"message": "denied by an SCP"})),
        )
        .mount(&server)
        .await;
    expect_err(
        preflight::validate(&aws, &run()).await,
        ErrorName::AccessDenied,
        "guardduty:ListOrganizationAdminAccounts in us-east-1",
    )
    .await;
}

#[tokio::test]
async fn a_suspended_account_is_invalid_input() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", organization_ok()).await;
    organizations(
        &server,
        "DescribeAccount",
        ResponseTemplate::new(200).set_body_json(json!({"Account": {"Id": "111111111111", "Status": "SUSPENDED"}})),
    )
    .await;
    expect_err(preflight::validate(&aws, &run()).await, ErrorName::InvalidInput, "SUSPENDED").await;
}

#[tokio::test]
async fn access_denied_on_organizations_is_access_denied() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", json_error(400, "AccessDeniedException", "not allowed")).await;
    expect_err(
        preflight::validate(&aws, &run()).await,
        ErrorName::AccessDenied,
        "organizations:DescribeOrganization: AccessDeniedException: not allowed",
    )
    .await;
}

#[tokio::test]
async fn throttling_is_retryable() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", json_error(400, "TooManyRequestsException", "slow down")).await;
    expect_err(preflight::validate(&aws, &run()).await, ErrorName::Retryable, "TooManyRequestsException").await;
}

#[tokio::test]
async fn a_server_error_is_retryable() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", json_error(500, "ServiceException", "oops")).await;
    let err = preflight::validate(&aws, &run()).await.unwrap_err();
    // A 5xx with an unknown code is still transient.
    assert_eq!(err.name, ErrorName::Retryable, "{err}");
}

#[tokio::test]
async fn a_server_error_without_a_body_is_retryable() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    // What an overloaded front end (and the local cloud's "5xx" fault) answers: 503, no body.
    organizations(&server, "DescribeOrganization", ResponseTemplate::new(503)).await;
    let err = preflight::validate(&aws, &run()).await.unwrap_err();
    assert_eq!(err.name, ErrorName::Retryable, "{err}");
    assert!(err.message.contains("organizations:DescribeOrganization"), "{err}");
}

#[tokio::test]
async fn the_fixed_accounts_cannot_be_targets() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    for (account, role) in [(CALLER, "management"), ("333333333333", "security")] {
        let mut r = run();
        r.account = account.parse().unwrap();
        if role == "management" {
            r.org.logging = "222222222222".parse().unwrap();
        }
        expect_err(preflight::validate(&aws, &r).await, ErrorName::InvalidInput, &format!("{role} account")).await;
    }
    // An opt-in home region: GuardDuty in the standard regions could not export to the bucket there.
    let mut r = run();
    r.regions = vec!["af-south-1".parse().unwrap(), "us-east-1".parse().unwrap()];
    r.home_region = "af-south-1".parse().unwrap();
    expect_err(
        preflight::validate(&aws, &r).await,
        ErrorName::InvalidInput,
        "homeRegion: af-south-1 is an opt-in region",
    )
    .await;
    // No AWS call was needed to refuse them.
    let calls = server.received_requests().await.unwrap();
    assert!(calls.iter().all(|r| !r.headers.contains_key("x-amz-target")), "only the caller identity was asked");
}

/// Mounts a KMS key that is already in place, so the logging bucket step reaches S3.
pub(super) async fn key_in_place(server: &MockServer) {
    let kms = |op: &str, body: serde_json::Value| {
        Mock::given(method("POST"))
            .and(header("x-amz-target", format!("TrentService.{op}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
    };
    let arn = format!("arn:aws:kms:us-east-1:{CALLER}:key/k-1");
    kms("DescribeKey", json!({"KeyMetadata": {"KeyId": "k-1", "Arn": arn}})).mount(server).await;
    kms("GetKeyRotationStatus", json!({"KeyRotationEnabled": true})).mount(server).await;
    let policy =
        logging_bucket::key_policy(CALLER, "us-east-1", "o-test", assure_contract::DEFAULT_ROLE_NAME).to_string();
    kms("GetKeyPolicy", json!({"Policy": policy, "PolicyName": "default"})).mount(server).await;
}

#[tokio::test]
async fn a_logging_bucket_owned_by_another_account_is_a_conflict() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", organization_ok()).await;
    key_in_place(&server).await;
    // S3 refuses a request whose ExpectedBucketOwner is not the bucket's owner with 403; every
    // request assure makes to its buckets names the account it expects.
    Mock::given(method("HEAD"))
        .and(path_regex(format!("^/assure-access-logs-{CALLER}-us-east-1/?$")))
        .and(header("x-amz-expected-bucket-owner", CALLER))
        .respond_with(ResponseTemplate::new(403))
        .expect(1)
        .mount(&server)
        .await;
    // Nothing is ever written to it.
    Mock::given(method("PUT")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    expect_err(
        logging_bucket::apply(&aws, &run()).await,
        ErrorName::Conflict,
        &format!("assure-access-logs-{CALLER}-us-east-1: exists and belongs to an account other than {CALLER}"),
    )
    .await;
}

#[tokio::test]
async fn access_denied_creating_the_bucket_is_access_denied_and_names_the_bucket() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", organization_ok()).await;
    key_in_place(&server).await;
    Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    Mock::given(method("PUT"))
        .and(path_regex(format!("^/assure-access-logs-{CALLER}-us-east-1/?$")))
        .respond_with(ResponseTemplate::new(403).set_body_string(
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>r</RequestId></Error>",
        ))
        .mount(&server)
        .await;
    expect_err(
        logging_bucket::apply(&aws, &run()).await,
        ErrorName::AccessDenied,
        &format!("s3:CreateBucket assure-access-logs-{CALLER}-us-east-1: AccessDenied"),
    )
    .await;
}

#[tokio::test]
async fn a_kms_quota_is_quota_exceeded() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "DescribeOrganization", organization_ok()).await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "TrentService.DescribeKey"))
        .respond_with(json_error(400, "NotFoundException", "alias not found"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "TrentService.CreateKey"))
        .respond_with(json_error(400, "LimitExceededException", "too many keys"))
        .mount(&server)
        .await;
    expect_err(logging_bucket::apply(&aws, &run()).await, ErrorName::QuotaExceeded, "kms:CreateKey").await;
}

#[tokio::test]
async fn verify_reports_each_missing_control() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    // The bucket exists but has none of the settings; the key is missing.
    Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    let s3_missing = |q: &str, code: &str| {
        Mock::given(method("GET")).and(query_param(q, "")).respond_with(
            ResponseTemplate::new(404)
                .set_body_string(format!("<Error><Code>{code}</Code><Message>none</Message></Error>")),
        )
    };
    s3_missing("publicAccessBlock", "NoSuchPublicAccessBlockConfiguration").mount(&server).await;
    s3_missing("ownershipControls", "OwnershipControlsNotFoundError").mount(&server).await;
    s3_missing("encryption", "ServerSideEncryptionConfigurationNotFoundError").mount(&server).await;
    s3_missing("lifecycle", "NoSuchLifecycleConfiguration").mount(&server).await;
    s3_missing("policy", "NoSuchBucketPolicy").mount(&server).await;
    let empty = |q: &str, root: &str| {
        Mock::given(method("GET"))
            .and(query_param(q, ""))
            .respond_with(ResponseTemplate::new(200).set_body_string(format!("<{root}></{root}>")))
    };
    empty("versioning", "VersioningConfiguration").mount(&server).await;
    empty("logging", "BucketLoggingStatus").mount(&server).await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "TrentService.DescribeKey"))
        .respond_with(json_error(400, "NotFoundException", "alias not found"))
        .mount(&server)
        .await;
    let evidence = logging_bucket::evidence(&aws, &run()).await.unwrap();
    let failed = assure_core::pipeline::verify::failures(&evidence).join("; ");
    for control in [
        "logging.bucket-not-public",
        "logging.bucket-encrypted",
        "logging.key-rotation",
        "logging.bucket-access-logging",
        "logging.bucket-tls-only",
        "logging.bucket-versioned",
    ] {
        assert!(failed.contains(&format!("{control} in us-east-1")), "{control} missing from {failed}");
    }
    // Verify is read-only: no PUT, no DELETE, no mutating JSON operation.
    for r in server.received_requests().await.unwrap() {
        assert!(!matches!(r.method.as_str(), "PUT" | "DELETE"), "{} {}", r.method, r.url);
    }
}

#[tokio::test]
async fn plan_mode_records_changes_and_refuses_every_mutating_call() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await.planning();
    organizations(&server, "DescribeOrganization", organization_ok()).await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "TrentService.DescribeKey"))
        .respond_with(json_error(400, "NotFoundException", "alias not found"))
        .mount(&server)
        .await;
    Mock::given(method("HEAD")).respond_with(ResponseTemplate::new(404)).mount(&server).await;
    let out = logging_bucket::apply(&aws, &run()).await.expect("a plan of a fresh logging account");
    let resources: Vec<&str> = out.changes.iter().map(|c| c.resource.as_str()).collect();
    assert!(resources.contains(&"kms:alias/assure-logs"), "{resources:?}");
    assert!(resources.contains(&format!("s3:assure-logs-{CALLER}-us-east-1").as_str()), "{resources:?}");
    assert!(resources.contains(&format!("s3:assure-logs-{CALLER}-us-east-1/policy").as_str()), "{resources:?}");
    for r in server.received_requests().await.unwrap() {
        let target = r.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(
            matches!(r.method.as_str(), "GET" | "HEAD")
                || target.contains(".Describe")
                || r.url.query().is_none() && target.is_empty(),
            "a plan sent {} {} {target}",
            r.method,
            r.url
        );
    }

    // And the guard itself: a mutating call in plan mode never leaves the process.
    let acct = aws.pipeline();
    let err = acct.s3().create_bucket().bucket("nope").send().await.unwrap_err();
    assert!(format!("{err:?}").contains("plan mode refused the mutating call"), "{err:?}");
    let puts = server.received_requests().await.unwrap().into_iter().filter(|r| r.method.as_str() == "PUT").count();
    assert_eq!(puts, 0);
}

/// An organization with consolidated billing only: trusted access, delegated administrators and
/// SCPs are impossible, and only its management account could change that.
#[tokio::test]
async fn an_organization_without_all_features_is_a_conflict_before_anything_else() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(
        &server,
        "DescribeOrganization",
        ResponseTemplate::new(200).set_body_json(json!({"Organization": {
            "Id": "o-test", "Arn": "arn:aws:organizations::123456789012:organization/o-test",
            "MasterAccountId": CALLER, "FeatureSet": "CONSOLIDATED_BILLING"}})),
    )
    .await;
    expect_err(
        preflight::validate(&aws, &run()).await,
        ErrorName::Conflict,
        "org: organization o-test has the feature set CONSOLIDATED_BILLING; the baseline needs all features",
    )
    .await;
}

/// The STS answer to AssumeRole, with the session expiring `expires` from now.
fn assumed(expires: std::time::Duration) -> ResponseTemplate {
    let at = time::OffsetDateTime::now_utc() + expires;
    let at = at.format(&time::format_description::well_known::Rfc3339).unwrap();
    ResponseTemplate::new(200).set_body_string(format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
         <Credentials><AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>\
         <Expiration>{at}</Expiration></Credentials>\
         <AssumedRoleUser><AssumedRoleId>AROA:assure</AssumedRoleId><Arn>arn:aws:sts::111111111111:assumed-role/AssureExecutionRole/assure</Arn></AssumedRoleUser>\
         </AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></AssumeRoleResponse>"
    ))
}

/// A step's process serves task after task; each task's connection reuses the sessions the
/// process assumed while they last, and assumes again one about to expire.
#[tokio::test]
async fn a_process_assumes_a_role_once_while_its_session_lasts() {
    let server = MockServer::start().await;
    let lasting = Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole"))
        .and(body_string_contains("111111111111"))
        .respond_with(assumed(std::time::Duration::from_secs(3600)))
        .expect(1)
        .mount_as_scoped(&server)
        .await;
    let region: assure_contract::Region = "us-east-1".parse().unwrap();
    for _task in 0..3 {
        let aws = aws_for(&server).await;
        aws.account(&"111111111111".parse().unwrap(), &region).await.expect("a session");
    }
    drop(lasting);

    // A session with less time left than a step may run is not reused.
    let short = Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole"))
        .and(body_string_contains("222222222222"))
        .respond_with(assumed(std::time::Duration::from_secs(300)))
        .expect(2)
        .mount_as_scoped(&server)
        .await;
    for _task in 0..2 {
        let aws = aws_for(&server).await;
        aws.account(&"222222222222".parse().unwrap(), &region).await.expect("a session");
    }
    drop(short);
}

/// An IAM error in the query protocol's shape.
fn iam_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_string(format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    ))
}

/// The service-roles step makes the roles ahead in the target and security accounts; IAM refusing
/// one fails the step as access denied, naming the call and the role.
#[tokio::test]
async fn a_service_role_iam_refuses_is_access_denied_naming_the_role() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole"))
        .respond_with(assumed(std::time::Duration::from_secs(3600)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=GetRole"))
        .respond_with(iam_error(404, "NoSuchEntity", "The role cannot be found."))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=CreateRole"))
        .respond_with(iam_error(403, "AccessDenied", "not authorized to perform: iam:CreateRole"))
        .mount(&server)
        .await;
    expect_err(
        assure_core::pipeline::service_roles::run(&aws, &run()).await,
        ErrorName::AccessDenied,
        "iam:CreateRole assure-",
    )
    .await;
}

/// A role of assure's name made before assure, with a permissions boundary: IAM refusing the
/// boundary's removal fails the step as access denied, naming the call and the role; no other
/// change is attempted on a role assure cannot make its own.
#[tokio::test]
async fn a_planted_boundary_iam_will_not_remove_is_access_denied_naming_the_role() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=AssumeRole"))
        .respond_with(assumed(std::time::Duration::from_secs(3600)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=GetRole&"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<GetRoleResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetRoleResult><Role>\
             <Path>/</Path><RoleName>assure-x</RoleName><RoleId>AROAX</RoleId><Arn>arn:aws:iam::111111111111:role/assure-x</Arn>\
             <CreateDate>2026-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>%7B%7D</AssumeRolePolicyDocument>\
             <PermissionsBoundary><PermissionsBoundaryType>Policy</PermissionsBoundaryType>\
             <PermissionsBoundaryArn>arn:aws:iam::111111111111:policy/deny-all</PermissionsBoundaryArn></PermissionsBoundary>\
             </Role></GetRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetRoleResponse>",
        ))
        .mount(&server)
        .await;
    for (action, result) in [("ListRolePolicies", "PolicyNames"), ("ListAttachedRolePolicies", "AttachedPolicies")] {
        Mock::given(method("POST"))
            .and(body_string_contains(format!("Action={action}&").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_string(format!(
                "<{action}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{action}Result><{result}/>\
                 <IsTruncated>false</IsTruncated></{action}Result><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></{action}Response>"
            )))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(body_string_contains("Action=DeleteRolePermissionsBoundary"))
        .respond_with(iam_error(403, "AccessDenied", "not authorized to perform: iam:DeleteRolePermissionsBoundary"))
        .expect(1..)
        .mount(&server)
        .await;
    for action in ["UpdateAssumeRolePolicy", "PutRolePolicy", "CreateRole"] {
        Mock::given(method("POST"))
            .and(body_string_contains(format!("Action={action}&").as_str()))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
    }
    expect_err(
        assure_core::pipeline::service_roles::run(&aws, &run()).await,
        ErrorName::AccessDenied,
        "iam:DeleteRolePermissionsBoundary assure-",
    )
    .await;
}
