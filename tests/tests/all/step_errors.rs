//! The control steps' error paths and takeovers, through the SDK against wiremock: a foreign
//! GuardDuty administrator, Config under other names, Config's one-per-region quotas, AccessDenied
//! in one region, throttling, the SCP quota, and another account's organization trail.

use assure_contract::{ErrorName, ExistingTrails, Region, RunInput};
use assure_core::controls::{cloudtrail, config, guardduty, scps, Known};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::errors::{aws_for, json_error, key_in_place, organizations, run, CALLER};

fn region(r: &str) -> Region {
    r.parse().unwrap()
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// A run where the caller is also the target, so the step's calls need no assumed role.
fn self_run() -> RunInput {
    let mut r = run();
    r.account = CALLER.parse().unwrap();
    r
}

/// GuardDuty in `region` with detector d1 under `admin`.
async fn guardduty_with_admin(server: &MockServer, admin: &str) {
    let get =
        |p: &str, body: serde_json::Value| Mock::given(method("GET")).and(path(p.to_owned())).respond_with(ok(body));
    get("/detector", json!({"detectorIds": ["d1"]})).mount(server).await;
    get("/detector/d1", json!({"status": "ENABLED", "serviceRole": "r", "findingPublishingFrequency": "SIX_HOURS"}))
        .mount(server)
        .await;
    get(
        "/detector/d1/administrator",
        json!({"administrator": {"accountId": admin, "relationshipStatus": "Enabled", "invitationId": "i"}}),
    )
    .mount(server)
    .await;
    get("/detector/d1/filter", json!({"filterNames": ["keep-me"]})).mount(server).await;
    // A saved filter, not a suppression rule (its action is NOOP): kept as it is.
    get(
        "/detector/d1/filter/keep-me",
        json!({"name": "keep-me", "action": "NOOP", "rank": 1, "findingCriteria": {"criterion": {}}}),
    )
    .mount(server)
    .await;
    get(
        "/detector/d1/publishingDestination",
        json!({"destinations": [{"destinationId": "p1", "destinationType": "S3", "status": "PUBLISHING"}]}),
    )
    .mount(server)
    .await;
    get("/detector/d1/member", json!({"members": []})).mount(server).await;
}

#[tokio::test]
async fn a_foreign_guardduty_administrator_is_left_and_the_detector_recorded() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    guardduty_with_admin(&server, "999988887777").await;
    Mock::given(method("POST"))
        .and(path("/detector/d1/administrator/disassociate"))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let out = guardduty::stop_foreign(&aws, &self_run(), &region("eu-west-1"), Known::default()).await.unwrap();
    assert_eq!(out.changes.len(), 1, "{:?}", out.changes);
    assert_eq!(out.changes[0].action, "disassociate");
    assert_eq!(out.changes[0].before, json!("999988887777"));
    // The detector, its filters and its publishing destinations are recorded, and kept.
    let d = &out.snapshot["detectors"][0];
    assert_eq!(d["filters"], json!(["keep-me"]));
    assert_eq!(d["suppressionRules"], json!([]), "a NOOP filter suppresses nothing");
    assert_eq!(d["publishingDestinations"], json!(["p1"]));
    assert_eq!(d["administrator"]["accountId"], "999988887777");
    let deletes =
        server.received_requests().await.unwrap().into_iter().filter(|r| r.method.as_str() == "DELETE").count();
    assert_eq!(deletes, 0, "nothing is deleted");
}

#[tokio::test]
async fn the_security_account_as_administrator_is_kept() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    guardduty_with_admin(&server, "333333333333").await;
    Mock::given(method("POST"))
        .and(path("/detector/d1/administrator/disassociate"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let out = guardduty::stop_foreign(&aws, &self_run(), &region("eu-west-1"), Known::default()).await.unwrap();
    assert!(out.changes.is_empty(), "{:?}", out.changes);
}

#[tokio::test]
async fn access_denied_in_one_region_fails_that_region_only() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    Mock::given(header_regex("authorization", "/eu-west-1/guardduty/"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-amzn-ErrorType", "AccessDeniedException")
                .set_body_json(json!({"message": "denied by an SCP"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    guardduty_with_admin(&server, "333333333333").await;
    let err = guardduty::stop_foreign(&aws, &self_run(), &region("eu-west-1"), Known::default()).await.unwrap_err();
    assert_eq!(err.name, ErrorName::AccessDenied, "{err}");
    assert!(err.message.contains("guardduty:ListDetectors"), "{err}");
    guardduty::stop_foreign(&aws, &self_run(), &region("us-east-1"), Known::default())
        .await
        .expect("us-east-1 is allowed");
}

#[tokio::test]
async fn guardduty_throttling_is_retryable() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    Mock::given(method("GET"))
        .and(path("/detector"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-amzn-ErrorType", "TooManyRequestsException")
                .set_body_json(json!({"message": "rate exceeded"})),
        )
        .mount(&server)
        .await;
    let err = guardduty::stop_foreign(&aws, &self_run(), &region("us-east-1"), Known::default()).await.unwrap_err();
    assert_eq!(err.name, ErrorName::Retryable, "{err}");
}

async fn config_op(server: &MockServer, op: &str, response: ResponseTemplate) -> Mock {
    let _ = server;
    Mock::given(method("POST"))
        .and(header("x-amz-target", format!("StarlingDoveService.{op}").as_str()))
        .respond_with(response)
}

/// Config in a non-home region with a recorder and channel under the account's own names.
async fn config_brownfield(server: &MockServer) {
    key_in_place(server).await;
    Mock::given(method("POST"))
        .and(body_string_contains("Action=GetRole"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<GetRoleResponse><GetRoleResult><Role><Path>/aws-service-role/config.amazonaws.com/</Path>\
             <RoleName>AWSServiceRoleForConfig</RoleName><RoleId>AROA</RoleId>\
             <Arn>arn:aws:iam::123456789012:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig</Arn>\
             <CreateDate>2024-01-01T00:00:00Z</CreateDate></Role></GetRoleResult></GetRoleResponse>",
        ))
        .mount(server)
        .await;
    config_op(server, "DescribeConfigurationRecorders", ok(json!({"ConfigurationRecorders": [
        {"name": "legacy-recorder", "roleARN": "arn:aws:iam::123456789012:role/legacy", "recordingGroup": {"allSupported": false}}]})))
        .await
        .mount(server)
        .await;
    config_op(
        server,
        "DescribeDeliveryChannels",
        ok(json!({"DeliveryChannels": [{"name": "legacy-channel", "s3BucketName": "legacy-bucket"}]})),
    )
    .await
    .mount(server)
    .await;
    config_op(
        server,
        "DescribeConfigurationRecorderStatus",
        ok(json!({"ConfigurationRecordersStatus": [{"name": "legacy-recorder", "recording": true}]})),
    )
    .await
    .mount(server)
    .await;
}

#[tokio::test]
async fn an_existing_config_recorder_and_channel_are_adopted_under_their_names() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    config_brownfield(&server).await;
    Mock::given(header("x-amz-target", "StarlingDoveService.PutConfigurationRecorder"))
        .and(body_string_contains("\"name\":\"legacy-recorder\""))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(header("x-amz-target", "StarlingDoveService.PutDeliveryChannel"))
        .and(body_string_contains("\"name\":\"legacy-channel\""))
        .and(body_string_contains(format!("\"s3BucketName\":\"assure-logs-{CALLER}-us-east-1\"")))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let out = config::apply(&aws, &self_run(), &region("us-west-2"), Known::default()).await.unwrap();
    let resources: Vec<&str> = out.changes.iter().map(|c| c.resource.as_str()).collect();
    assert_eq!(resources, ["config:recorder/legacy-recorder", "config:deliveryChannel/legacy-channel"]);
    assert_eq!(out.snapshot["deliveryChannel"]["s3BucketName"], "legacy-bucket", "the old channel is the snapshot");
}

#[tokio::test]
async fn config_one_per_region_quotas_are_quota_exceeded() {
    for (op, code) in [
        ("PutConfigurationRecorder", "MaxNumberOfConfigurationRecordersExceededException"),
        ("PutDeliveryChannel", "MaxNumberOfDeliveryChannelsExceededException"),
    ] {
        let server = MockServer::start().await;
        let aws = aws_for(&server).await;
        config_brownfield(&server).await;
        Mock::given(header("x-amz-target", format!("StarlingDoveService.{op}").as_str()))
            .respond_with(json_error(400, code, "only one per region"))
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(header_regex("x-amz-target", "StarlingDoveService.Put"))
            .respond_with(ok(json!({})))
            .mount(&server)
            .await;
        let err = config::apply(&aws, &self_run(), &region("us-west-2"), Known::default()).await.unwrap_err();
        assert_eq!(err.name, ErrorName::QuotaExceeded, "{op}: {err}");
        assert!(err.message.contains(code), "{err}");
    }
}

#[tokio::test]
async fn the_scp_quota_fails_before_anything_is_attached() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    organizations(&server, "ListPolicies", ok(json!({"Policies": []}))).await;
    let four: Vec<_> = (1..=4)
        .map(|i| json!({"Id": format!("p-{i}"), "Name": format!("customer-{i}"), "Type": "SERVICE_CONTROL_POLICY"}))
        .collect();
    organizations(&server, "ListPoliciesForTarget", ok(json!({"Policies": four}))).await;
    for op in ["CreatePolicy", "AttachPolicy", "UpdatePolicy"] {
        Mock::given(header("x-amz-target", format!("AWSOrganizationsV20161128.{op}").as_str()))
            .respond_with(ok(json!({})))
            .expect(0)
            .mount(&server)
            .await;
    }
    let err = scps::apply(&aws, &run()).await.unwrap_err();
    assert_eq!(err.name, ErrorName::QuotaExceeded, "{err}");
    assert!(
        err.message
            .contains("has 4 service control policies attached (customer-1, customer-2, customer-3, customer-4)"),
        "{err}"
    );
    assert!(err.message.contains("limit of 5 per target"), "{err}");
}

#[test]
fn every_scp_fits_aws_size_limit_and_exempts_only_assure_roles() {
    for (name, _, doc) in scps::policies(&run()) {
        let text = doc.to_string();
        println!("{name}: {} of {} characters", text.len(), scps::MAX_POLICY_CHARS);
        assert!(text.len() <= scps::MAX_POLICY_CHARS, "{name} is {} characters", text.len());
        for st in doc["Statement"].as_array().unwrap() {
            assert_eq!(st["Effect"], "Deny", "{name}: SCPs only deny");
            if let Some(exempt) = st["Condition"]["ArnNotLike"]["aws:PrincipalARN"].as_array() {
                let exempt: Vec<&str> = exempt.iter().map(|e| e.as_str().unwrap()).collect();
                // The member role by its exact name (a pattern such as assure-* would exempt any
                // role an administrator named so); the StackSet that deploys the member role may
                // also change that role and its stack, and nothing else.
                let sid = st["Sid"].as_str().unwrap_or_default();
                let expected: &[&str] =
                    if matches!(sid, "ProtectStacks" | "ProtectRoles" | "ProtectAssureRoles" | "NoStackSetRole") {
                        &["arn:aws:iam::*:role/AssureExecutionRole", "arn:aws:iam::*:role/stacksets-exec-*"]
                    } else {
                        &["arn:aws:iam::*:role/AssureExecutionRole"]
                    };
                assert_eq!(exempt, expected, "{name} {sid}");
            }
        }
    }
}

/// The account's own trail is retired (recorded whole, then deleted) by default or stopped with
/// `existing_trails = stop`; an organization trail of another account is neither, only reported.
#[tokio::test]
async fn another_accounts_organization_trail_is_left_alone() {
    for mode in [ExistingTrails::Retire, ExistingTrails::Stop] {
        let server = MockServer::start().await;
        let aws = aws_for(&server).await;
        let ct = |op: &str| {
            Mock::given(method("POST")).and(header("x-amz-target", format!("CloudTrail_20131101.{op}").as_str()))
        };
        let ours = format!("arn:aws:cloudtrail:us-east-1:{CALLER}:trail/assure-trail");
        let org = "arn:aws:cloudtrail:us-east-1:999999999999:trail/their-org-trail";
        let own = format!("arn:aws:cloudtrail:us-east-1:{CALLER}:trail/legacy");
        ct("DescribeTrails")
            .and(body_string_contains("trailNameList"))
            .respond_with(ok(
                json!({"trailList": [{"Name": "assure-trail", "TrailARN": ours, "HomeRegion": "us-east-1"}]}),
            ))
            .with_priority(1)
            .mount(&server)
            .await;
        ct("DescribeTrails")
            .respond_with(ok(json!({"trailList": [
                {"Name": "assure-trail", "TrailARN": ours, "HomeRegion": "us-east-1"},
                {"Name": "their-org-trail", "TrailARN": org, "HomeRegion": "us-east-1", "IsOrganizationTrail": true},
                {"Name": "legacy", "TrailARN": own, "HomeRegion": "us-east-1", "S3BucketName": "team-logs"}]})))
            .mount(&server)
            .await;
        // ListTrails names the account's trails (the other account's organization trail may or may
        // not be among them: the home region's DescribeTrails lists it either way).
        ct("ListTrails")
            .respond_with(ok(json!({"Trails": [
                {"Name": "assure-trail", "TrailARN": ours, "HomeRegion": "us-east-1"},
                {"Name": "legacy", "TrailARN": own, "HomeRegion": "us-east-1"}]})))
            .mount(&server)
            .await;
        ct("GetTrailStatus").respond_with(ok(json!({"IsLogging": true}))).mount(&server).await;
        ct("GetEventSelectors")
            .respond_with(ok(
                json!({"TrailARN": ours, "EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": true}]}),
            ))
            .mount(&server)
            .await;
        ct("GetInsightSelectors")
            .respond_with(
                ResponseTemplate::new(400)
                    .insert_header("content-type", "application/x-amz-json-1.1")
                    .set_body_json(json!({"__type": "InsightNotEnabledException", "message": "no insights"})),
            )
            .mount(&server)
            .await;
        ct("ListTags")
            .respond_with(ok(
                json!({"ResourceTagList": [{"ResourceId": own, "TagsList": [{"Key": "team", "Value": "a"}]}]}),
            ))
            .mount(&server)
            .await;
        let (retire, stop) = if mode == ExistingTrails::Retire { (1, 0) } else { (0, 1) };
        for op in ["StopLogging", "DeleteTrail"] {
            ct(op).and(body_string_contains(org)).respond_with(ok(json!({}))).expect(0).mount(&server).await;
        }
        ct("DeleteTrail")
            .and(body_string_contains("trail/legacy"))
            .respond_with(ok(json!({})))
            .expect(retire)
            .mount(&server)
            .await;
        ct("StopLogging")
            .and(body_string_contains("trail/legacy"))
            .respond_with(ok(json!({})))
            .expect(stop)
            .mount(&server)
            .await;
        let mut run = self_run();
        run.existing_trails = mode;
        let out = cloudtrail::stop_others(&aws, &run).await.unwrap();
        assert_eq!(out.snapshot["leftAlone"][0]["arn"], org, "{mode:?}");
        if mode == ExistingTrails::Retire {
            let retired = &out.snapshot["retired"][0];
            assert_eq!(
                (&retired["trailArn"], &retired["s3BucketName"], &retired["isLogging"], &retired["tags"]),
                (&json!(own), &json!("team-logs"), &json!(true), &json!([{"key": "team", "value": "a"}])),
                "recorded whole before it is deleted"
            );
            assert_eq!(out.snapshot["stopped"], json!([]));
        } else {
            assert_eq!(out.snapshot["stopped"][0]["arn"], json!(own));
            assert_eq!(out.snapshot["retired"], json!([]));
        }
    }
}

#[tokio::test]
async fn own_trails_keep_logging_until_the_assure_trail_logs() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    Mock::given(header("x-amz-target", "CloudTrail_20131101.DescribeTrails"))
        .respond_with(ok(json!({"trailList": []})))
        .mount(&server)
        .await;
    Mock::given(header("x-amz-target", "CloudTrail_20131101.StopLogging"))
        .respond_with(ok(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let err = cloudtrail::stop_others(&aws, &self_run()).await.unwrap_err();
    assert_eq!(err.name, ErrorName::Retryable, "{err}");
    assert!(err.message.contains("keep logging"), "{err}");
}

/// Reading a filter to tell a suppression rule from a saved filter: GuardDuty refusing it fails the
/// step as access denied, naming the call and the filter, before anything changes.
#[tokio::test]
async fn a_filter_guardduty_will_not_show_is_access_denied_naming_it() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    Mock::given(method("GET"))
        .and(path("/detector/d1/filter/keep-me"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-amzn-ErrorType", "AccessDeniedException")
                .set_body_json(json!({"message": "not authorized to perform: guardduty:GetFilter"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    guardduty_with_admin(&server, "999988887777").await;
    Mock::given(method("POST")).respond_with(ok(json!({}))).expect(0).mount(&server).await;
    let err = guardduty::stop_foreign(&aws, &self_run(), &region("eu-west-1"), Known::default()).await.unwrap_err();
    assert_eq!(err.name, ErrorName::AccessDenied, "{err}");
    assert!(err.message.contains("guardduty:GetFilter keep-me"), "{err}");
}

/// The logging and security accounts' policies: Organizations refusing their attachment fails the
/// step as access denied, naming the call, the policy and the account (the account's own three
/// are attached first).
#[tokio::test]
async fn a_refused_attachment_to_the_security_account_is_access_denied_naming_it() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    let run = run();
    let listed: Vec<_> = scps::policies(&run)
        .iter()
        .enumerate()
        .map(|(i, (n, _, _))| json!({"Id": format!("p-{i}"), "Name": n, "Type": "SERVICE_CONTROL_POLICY"}))
        .collect();
    organizations(&server, "ListPolicies", ok(json!({"Policies": listed}))).await;
    for (i, (name, _, doc)) in scps::policies(&run).iter().enumerate() {
        Mock::given(header("x-amz-target", "AWSOrganizationsV20161128.DescribePolicy"))
            .and(body_string_contains(format!("\"p-{i}\"").as_str()))
            .respond_with(ok(json!({"Policy": {"PolicySummary": {"Id": format!("p-{i}"), "Name": name}, "Content": doc.to_string()}})))
            .mount(&server)
            .await;
    }
    organizations(&server, "ListPoliciesForTarget", ok(json!({"Policies": []}))).await;
    Mock::given(header("x-amz-target", "AWSOrganizationsV20161128.AttachPolicy"))
        .and(body_string_contains(run.org.security.as_str()))
        .respond_with(json_error(400, "AccessDeniedException", "You don't have permissions to access this resource."))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(header("x-amz-target", "AWSOrganizationsV20161128.AttachPolicy"))
        .respond_with(ok(json!({})))
        .mount(&server)
        .await;
    let err = scps::apply(&aws, &run).await.unwrap_err();
    assert_eq!(err.name, ErrorName::AccessDenied, "{err}");
    assert!(
        err.message.contains(&format!("organizations:AttachPolicy assure-protect-access {}", run.org.security)),
        "{err}"
    );
}
