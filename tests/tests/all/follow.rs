//! Following a run reads only its new events (`runs::history_after`), through the SDK against
//! wiremock: newest first, down to the last event seen, an event a page repeats reported once, and
//! a refused read named.

use assure_contract::ErrorName;
use assure_core::pipeline::runs::history_after;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::errors::{aws_for, json_error};

const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:assure-onboarding:r-1";

fn events(ids: &[i64]) -> serde_json::Value {
    json!(ids
        .iter()
        .map(|id| json!({"id": id, "previousEventId": id - 1, "timestamp": 1.8e9, "type": "TaskSucceeded"}))
        .collect::<Vec<_>>())
}

fn history() -> wiremock::MockBuilder {
    Mock::given(method("POST")).and(header("x-amz-target", "AWSStepFunctions.GetExecutionHistory"))
}

#[tokio::test]
async fn only_new_events_are_read_newest_first_and_a_repeated_one_is_reported_once() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    // Two events were added between the pages, so the second page repeats event 7.
    history()
        .and(body_string_contains("\"nextToken\":\"page-2\""))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"events": events(&[7, 6, 5]), "nextToken": "page-3"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    history()
        .and(body_string_contains("\"reverseOrder\":true"))
        .and(body_string_contains("\"maxResults\":25"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"events": events(&[9, 8, 7]), "nextToken": "page-2"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    // Event 5 is the last one seen: the third page is never asked for.
    let new = history_after(&aws, ARN, 5).await.unwrap();
    assert_eq!(new.iter().map(|e| e.id()).collect::<Vec<_>>(), vec![6, 7, 8, 9]);
}

#[tokio::test]
async fn a_refused_history_read_is_named() {
    let server = MockServer::start().await;
    let aws = aws_for(&server).await;
    history()
        .respond_with(json_error(400, "AccessDeniedException", "not authorized to perform: states:GetExecutionHistory"))
        .mount(&server)
        .await;
    let e = history_after(&aws, ARN, 0).await.unwrap_err();
    assert_eq!(e.name, ErrorName::AccessDenied, "{e:?}");
    assert!(e.message.contains("states:GetExecutionHistory"), "{}", e.message);
}
