//! The local cloud's extension, through the Rust SDK (the client that matters): stateful per
//! calling account and region, with AWS's error codes.

use assure_e2e::LocalCloud;
use aws_sdk_accessanalyzer::types::Type as AnalyzerType;
use aws_sdk_guardduty::error::ProvideErrorMetadata;
use aws_sdk_guardduty::types::{AccountDetail, AutoEnableMembers, DestinationProperties, DestinationType};

/// The error code of any SDK error.
fn code(e: &impl ProvideErrorMetadata) -> String {
    e.code().unwrap_or_default().to_owned()
}

async fn org_accounts(cloud: &LocalCloud) -> (String, String, String) {
    let ids = cloud.seed();
    let s = |k: &str| ids[k].as_str().unwrap().to_owned();
    (s("security"), ids["external"][0].as_str().unwrap().to_owned(), s("foreignGuardDutyAdministrator"))
}

#[tokio::test(flavor = "multi_thread")]
async fn guardduty_membership_is_per_account_and_region() {
    let cloud = LocalCloud::start();
    let (_security, member, foreign) = org_accounts(&cloud).await;
    // The seed made `member` a member of `foreign` in us-east-1 and eu-west-1, not in us-west-2.
    let m = aws_sdk_guardduty::Client::new(&cloud.sdk_config_as(&member, "us-east-1").await);
    let det = m.list_detectors().send().await.unwrap().detector_ids()[0].clone();
    let admin = m.get_administrator_account().detector_id(&det).send().await.unwrap();
    let a = admin.administrator().expect("an administrator");
    assert_eq!(a.account_id(), Some(foreign.as_str()));
    assert_eq!(a.relationship_status(), Some("Enabled"));

    let f = aws_sdk_guardduty::Client::new(&cloud.sdk_config_as(&foreign, "us-east-1").await);
    let fdet = f.list_detectors().send().await.unwrap().detector_ids()[0].clone();
    let members = f.list_members().detector_id(&fdet).send().await.unwrap();
    // The foreign administrator holds both seeded external accounts.
    assert_eq!(members.members().len(), 2);
    assert!(members.members().iter().any(|m| m.account_id() == Some(member.as_str())));
    let got = f.get_members().detector_id(&fdet).account_ids(&member).account_ids("000000000001").send().await.unwrap();
    assert_eq!(got.members().len(), 1);
    assert_eq!(got.unprocessed_accounts()[0].account_id(), Some("000000000001"));

    // Leaving the administrator: gone for the member, "Removed" for the administrator.
    m.disassociate_from_administrator_account().detector_id(&det).send().await.unwrap();
    let admin = m.get_administrator_account().detector_id(&det).send().await.unwrap();
    // `administrator` is a required member: the SDK shows "none" as an empty one.
    assert!(admin.administrator().and_then(|a| a.account_id()).is_none(), "{admin:?}");
    let all = f.list_members().detector_id(&fdet).only_associated("false").send().await.unwrap();
    let ours = all.members().iter().find(|m| m.account_id() == Some(member.as_str())).unwrap();
    assert_eq!(ours.relationship_status(), Some("Removed"));
    let associated = f.list_members().detector_id(&fdet).send().await.unwrap();
    assert!(associated.members().iter().all(|m| m.account_id() != Some(member.as_str())));
    // eu-west-1 is a separate relationship and is untouched.
    let m_eu = aws_sdk_guardduty::Client::new(&cloud.sdk_config_as(&member, "eu-west-1").await);
    let det_eu = m_eu.list_detectors().send().await.unwrap().detector_ids()[0].clone();
    let admin_eu = m_eu.get_administrator_account().detector_id(&det_eu).send().await.unwrap();
    assert!(admin_eu.administrator().and_then(|a| a.account_id()).is_some());

    f.delete_members().detector_id(&fdet).account_ids(&member).send().await.unwrap();
    let all = f.list_members().detector_id(&fdet).only_associated("false").send().await.unwrap();
    assert!(all.members().iter().all(|m| m.account_id() != Some(member.as_str())));

    // An unknown detector is AWS's BadRequestException.
    let err = m.list_members().detector_id("0123456789abcdef0123456789abcdef").send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "BadRequestException");
}

#[tokio::test(flavor = "multi_thread")]
async fn guardduty_organization_admin_configuration_and_destinations() {
    let cloud = LocalCloud::start();
    let (security, member, _) = org_accounts(&cloud).await;
    let mgmt = aws_sdk_guardduty::Client::new(&cloud.sdk_config().await);
    mgmt.enable_organization_admin_account().admin_account_id(&security).send().await.unwrap();
    mgmt.enable_organization_admin_account().admin_account_id(&security).send().await.unwrap();
    let admins = mgmt.list_organization_admin_accounts().send().await.unwrap();
    assert_eq!(admins.admin_accounts()[0].admin_account_id(), Some(security.as_str()));

    // Only the management account manages the delegated administrator.
    let sec = aws_sdk_guardduty::Client::new(&cloud.sdk_config_as(&security, "us-east-1").await);
    let err = sec.enable_organization_admin_account().admin_account_id(&member).send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "BadRequestException");

    // Designating the administrator enabled GuardDuty for it. GuardDuty learns of its administrator
    // a moment later (the local cloud's transition delay): until then its organization calls are
    // refused as any member's.
    let det = sec.list_detectors().send().await.unwrap().detector_ids()[0].clone();
    let update = || {
        sec.update_organization_configuration()
            .detector_id(&det)
            .auto_enable_organization_members(AutoEnableMembers::All)
            .send()
    };
    let err = update().await.unwrap_err().into_service_error();
    assert!(err.meta().message().unwrap_or("").contains("not the GuardDuty delegated administrator"), "{err:?}");
    assure_e2e::eventually_async(std::time::Duration::from_secs(10), "the administrator's update allowed", || async {
        update().await.map(drop).map_err(|e| format!("{e:?}"))
    })
    .await;
    let conf = sec.describe_organization_configuration().detector_id(&det).send().await.unwrap();
    assert_eq!(conf.auto_enable_organization_members(), Some(&AutoEnableMembers::All));

    // The delegated administrator enrols an organization member directly (no invitation). GuardDuty
    // is regional: the management account designates the administrator in each region.
    let mgmt_w2 = aws_sdk_guardduty::Client::from_conf(
        aws_sdk_guardduty::config::Builder::from(&cloud.sdk_config().await)
            .region(aws_sdk_guardduty::config::Region::new("us-west-2"))
            .build(),
    );
    let admins_w2 = mgmt_w2.list_organization_admin_accounts().send().await.unwrap();
    assert!(admins_w2.admin_accounts().is_empty(), "designated in us-east-1 only: {admins_w2:?}");
    mgmt_w2.enable_organization_admin_account().admin_account_id(&security).send().await.unwrap();
    let m = aws_sdk_guardduty::Client::new(&cloud.sdk_config_as(&member, "us-west-2").await);
    let mdet = m.create_detector().enable(true).send().await.unwrap().detector_id().unwrap().to_owned();
    let sec_w2 = aws_sdk_guardduty::Client::new(&cloud.sdk_config_as(&security, "us-west-2").await);
    let det_w2 = sec_w2.list_detectors().send().await.unwrap().detector_ids()[0].clone();
    let out = sec_w2
        .create_members()
        .detector_id(&det_w2)
        .account_details(AccountDetail::builder().account_id(&member).email("m@example.com").build())
        .send()
        .await
        .unwrap();
    assert!(out.unprocessed_accounts().is_empty());
    let admin = m.get_administrator_account().detector_id(&mdet).send().await.unwrap();
    assert_eq!(admin.administrator().and_then(|a| a.account_id()), Some(security.as_str()));
    // GuardDuty enables itself in the member asynchronously: Created first, then Enabled
    // (API_Member), and only then among the associated members.
    let status = || async {
        let got = sec_w2.get_members().detector_id(&det_w2).account_ids(&member).send().await.unwrap();
        got.members()[0].relationship_status().unwrap_or_default().to_owned()
    };
    assert_eq!(status().await, "Created");
    assert!(sec_w2.list_members().detector_id(&det_w2).send().await.unwrap().members().is_empty());
    assure_e2e::eventually_async(std::time::Duration::from_secs(20), "the member Enabled", || async {
        match status().await {
            enabled if enabled == "Enabled" => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(sec_w2.list_members().detector_id(&det_w2).send().await.unwrap().members().len(), 1);

    // Publishing destinations: create, list, describe, delete.
    let props = DestinationProperties::builder()
        .destination_arn("arn:aws:s3:::assure-logs")
        .kms_key_arn("arn:aws:kms:us-east-1:111111111111:key/k")
        .build();
    let id = sec
        .create_publishing_destination()
        .detector_id(&det)
        .destination_type(DestinationType::S3)
        .destination_properties(props)
        .send()
        .await
        .unwrap()
        .destination_id()
        .unwrap()
        .to_owned();
    let list = sec.list_publishing_destinations().detector_id(&det).send().await.unwrap();
    assert_eq!(list.destinations()[0].destination_id(), Some(id.as_str()));
    let d = sec.describe_publishing_destination().detector_id(&det).destination_id(&id).send().await.unwrap();
    assert_eq!(d.destination_properties().and_then(|p| p.destination_arn()), Some("arn:aws:s3:::assure-logs"));
    sec.delete_publishing_destination().detector_id(&det).destination_id(&id).send().await.unwrap();
    let err = sec.describe_publishing_destination().detector_id(&det).destination_id(&id).send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "BadRequestException");
}

#[tokio::test(flavor = "multi_thread")]
async fn access_analyzer_organization_analyzers_need_trusted_access_and_a_delegated_admin() {
    let cloud = LocalCloud::start();
    let (security, _, _) = org_accounts(&cloud).await;
    cloud.limits(serde_json::json!({"transitionSeconds": 0.5}));
    let sec = aws_sdk_accessanalyzer::Client::new(&cloud.sdk_config_as(&security, "eu-west-1").await);
    let err = sec.create_analyzer().analyzer_name("org").r#type(AnalyzerType::Organization).send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "ValidationException");

    let orgs = aws_sdk_organizations::Client::new(&cloud.sdk_config().await);
    orgs.enable_aws_service_access().service_principal("access-analyzer.amazonaws.com").send().await.unwrap();
    // Access Analyzer learns of trusted access a moment after Organizations lists it.
    let err = sec.create_analyzer().analyzer_name("org").r#type(AnalyzerType::Organization).send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "ValidationException");
    assure_e2e::eventually_async(
        std::time::Duration::from_secs(10),
        "trusted access known to Access Analyzer",
        || async {
            let err =
                sec.create_analyzer().analyzer_name("org").r#type(AnalyzerType::Organization).send().await.unwrap_err();
            match code(&err.into_service_error()).as_str() {
                "AccessDeniedException" => Ok(()),
                "ValidationException" => Err("still ValidationException".to_owned()),
                other => panic!("refused for another reason: {other}"),
            }
        },
    )
    .await;
    orgs.register_delegated_administrator()
        .account_id(&security)
        .service_principal("access-analyzer.amazonaws.com")
        .send()
        .await
        .unwrap();
    // Access Analyzer learns of the registration through Organizations a moment later: until then
    // the account is any member.
    let err = sec.create_analyzer().analyzer_name("org").r#type(AnalyzerType::Organization).send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "AccessDeniedException");
    let arn = assure_e2e::eventually_async(std::time::Duration::from_secs(10), "the registration known", || async {
        match sec.create_analyzer().analyzer_name("org").r#type(AnalyzerType::Organization).send().await {
            Ok(made) => Ok(made.arn),
            Err(e) => match code(&e.into_service_error()).as_str() {
                "AccessDeniedException" => Err("still AccessDeniedException".to_owned()),
                other => panic!("refused for another reason: {other}"),
            },
        }
    })
    .await;
    assert_eq!(arn.as_deref(), Some(format!("arn:aws:access-analyzer:eu-west-1:{security}:analyzer/org").as_str()));
    let err = sec.create_analyzer().analyzer_name("org").r#type(AnalyzerType::Organization).send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "ConflictException");

    let got = sec.get_analyzer().analyzer_name("org").send().await.unwrap();
    let a = got.analyzer().unwrap();
    assert_eq!(a.r#type(), &AnalyzerType::Organization);
    // CREATING first, then ACTIVE (API_AnalyzerSummary), within a bound.
    assert_eq!(a.status().as_str(), "CREATING");
    assure_e2e::eventually_async(std::time::Duration::from_secs(20), "the analyzer ACTIVE", || async {
        let got = sec.get_analyzer().analyzer_name("org").send().await.unwrap();
        match got.analyzer().unwrap().status().as_str() {
            "ACTIVE" => Ok(()),
            other => Err(other.to_owned()),
        }
    })
    .await;
    // Per region: us-east-1 has none.
    let sec_use1 = aws_sdk_accessanalyzer::Client::new(&cloud.sdk_config_as(&security, "us-east-1").await);
    assert!(sec_use1.list_analyzers().send().await.unwrap().analyzers().is_empty());
    assert_eq!(sec.list_analyzers().send().await.unwrap().analyzers().len(), 1);

    sec.create_archive_rule()
        .analyzer_name("org")
        .rule_name("ignore-org")
        .filter("isPublic", aws_sdk_accessanalyzer::types::Criterion::builder().eq("false").build())
        .send()
        .await
        .unwrap();
    let rules = sec.list_archive_rules().analyzer_name("org").send().await.unwrap();
    assert_eq!(rules.archive_rules()[0].rule_name(), "ignore-org");

    sec.delete_analyzer().analyzer_name("org").send().await.unwrap();
    let err = sec.get_analyzer().analyzer_name("org").send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "ResourceNotFoundException");
}

fn http(endpoint: &str, method: &str, path: &str) -> String {
    assure_e2e::http(endpoint, method, path, "")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_moto_request_recorder_still_records_extension_calls() {
    let cloud = LocalCloud::start();
    http(&cloud.endpoint, "POST", "/moto-api/recorder/start-recording");
    let gd = aws_sdk_guardduty::Client::new(&cloud.sdk_config().await);
    let det = gd.create_detector().enable(true).send().await.unwrap().detector_id().unwrap().to_owned();
    gd.list_members().detector_id(&det).send().await.unwrap();
    http(&cloud.endpoint, "POST", "/moto-api/recorder/stop-recording");
    let recording = http(&cloud.endpoint, "GET", "/moto-api/recorder/download-recording");
    assert!(recording.contains("/detector\""), "moto's own operation is recorded");
    assert!(recording.contains(&format!("/detector/{det}/member")), "the extension's operation is recorded");
}

/// The emulated rate limit answers calls beyond it with Organizations' own throttling error, counts
/// them, and the emulated latency delays every client call.
#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_throttles_with_too_many_requests_and_latency_delays_calls() {
    let cloud = LocalCloud::start();
    cloud.seed();
    cloud.limits(serde_json::json!({"limits": [{"service": "organizations", "rps": 2}]}));
    // No retries: every answer is seen as it is.
    let conf = aws_sdk_organizations::config::Builder::from(&cloud.sdk_config().await)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let orgs = aws_sdk_organizations::Client::from_conf(conf);
    let mut throttled = 0;
    for _ in 0..8 {
        if let Err(e) = orgs.describe_organization().send().await {
            let e = e.into_service_error();
            assert_eq!(e.meta().code(), Some("TooManyRequestsException"), "{e:?}");
            throttled += 1;
        }
    }
    assert!((4..=7).contains(&throttled), "8 calls at once against 2 a second: {throttled} throttled");
    let counters = cloud.limit_counters();
    assert_eq!(counters["throttled"]["organizations"], throttled);
    // Other services are not limited.
    let sts = aws_sdk_sts::Client::new(&cloud.sdk_config().await);
    for _ in 0..8 {
        sts.get_caller_identity().send().await.unwrap();
    }

    cloud.limits(serde_json::json!({"limits": [], "latencyMs": 300}));
    let t = std::time::Instant::now();
    sts.get_caller_identity().send().await.unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(300), "{:?}", t.elapsed());
    cloud.limits(serde_json::json!({}));
    let t = std::time::Instant::now();
    sts.get_caller_identity().send().await.unwrap();
    assert!(t.elapsed() < std::time::Duration::from_millis(300), "latency cleared: {:?}", t.elapsed());
}

/// Designating GuardDuty's delegated administrator registers the account with Organizations for
/// guardduty.amazonaws.com (organizations_permissions.html), so ListDelegatedAdministrators names
/// it; an account the administrator in no Region any more is no longer registered.
#[tokio::test(flavor = "multi_thread")]
async fn a_guardduty_administrator_is_registered_with_organizations_while_it_is_one_somewhere() {
    let cloud = LocalCloud::start();
    let (security, _, _) = org_accounts(&cloud).await;
    let base = cloud.sdk_config().await;
    let gd = |region: &'static str| {
        aws_sdk_guardduty::Client::from_conf(
            aws_sdk_guardduty::config::Builder::from(&base)
                .region(aws_sdk_guardduty::config::Region::new(region))
                .build(),
        )
    };
    let orgs = aws_sdk_organizations::Client::new(&base);
    let registered = || async {
        let out =
            orgs.list_delegated_administrators().service_principal("guardduty.amazonaws.com").send().await.unwrap();
        out.delegated_administrators().iter().filter_map(|a| a.id().map(str::to_owned)).collect::<Vec<_>>()
    };
    assert!(registered().await.is_empty());
    for region in ["us-east-1", "eu-west-1"] {
        gd(region).enable_organization_admin_account().admin_account_id(&security).send().await.unwrap();
    }
    assert_eq!(registered().await, vec![security.clone()]);
    let services = orgs.list_aws_service_access_for_organization().send().await.unwrap();
    assert!(
        services.enabled_service_principals().iter().any(|p| p.service_principal() == Some("guardduty.amazonaws.com")),
        "trusted access enabled"
    );
    gd("us-east-1").disable_organization_admin_account().admin_account_id(&security).send().await.unwrap();
    assert_eq!(registered().await, vec![security.clone()], "still the administrator in eu-west-1");
    gd("eu-west-1").disable_organization_admin_account().admin_account_id(&security).send().await.unwrap();
    assert!(registered().await.is_empty(), "the administrator in no region");
}
