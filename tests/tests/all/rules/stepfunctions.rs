//! Step Functions' own checks.

use assure_e2e::LocalCloud;

use super::*;

/// Step Functions fails an execution whose state passes 256 KiB with States.DataLimitExceeded:
/// a Pass state that doubles a 150 KB input.
#[tokio::test(flavor = "multi_thread")]
async fn a_state_over_256_kib_fails_the_execution_with_data_limit_exceeded() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| {
        let (code, out, err) = aws_cli(&cloud, &admin, args);
        assert_eq!(code, 0, "{}: {err}", args[..2].join(" "));
        out.trim().to_owned()
    };
    let definition = serde_json::json!({"StartAt": "Double", "States": {
        "Double": {"Type": "Pass", "Parameters": {"a.$": "$.x", "b.$": "$.x"}, "End": true}}});
    let machine = state_machine(&cloud, &admin, "doubles", &definition, None);
    let dir = std::env::temp_dir().join(format!("assure-data-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let execution = |name: &str, bytes: usize| {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, serde_json::json!({"x": "x".repeat(bytes)}).to_string()).unwrap();
        let input = format!("file://{}", file.display());
        let arn = ok(&[
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            &machine,
            "--name",
            name,
            "--input",
            &input,
            "--query",
            "executionArn",
            "--output",
            "text",
        ]);
        assure_e2e::eventually(std::time::Duration::from_secs(10), &format!("{name} finished"), || {
            let status = ok(&[
                "stepfunctions",
                "describe-execution",
                "--execution-arn",
                &arn,
                "--query",
                "[status,error]",
                "--output",
                "text",
            ]);
            if status.starts_with("RUNNING") {
                Err(status)
            } else {
                Ok(status)
            }
        })
    };
    assert!(execution("small", 100_000).starts_with("SUCCEEDED"), "200 KB of state is within the limit");
    let big = execution("big", 150_000);
    assert!(big.starts_with("FAILED") && big.contains("States.DataLimitExceeded"), "{big}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A retried `.waitForTaskToken` attempt is a new task with a token of its own; the failed attempt's
/// token is closed, and answering it again is refused `TaskTimedOut` (API_SendTaskSuccess).
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_callback_task_sends_a_new_token_and_the_old_one_is_closed() {
    let cloud = LocalCloud::start();
    let admin = credentials(&cloud.sdk_config().await).await;
    let ok = |args: &[&str]| cli_ok(&cloud, &admin, args);
    let queue = ok(&["sqs", "create-queue", "--queue-name", "callbacks", "--query", "QueueUrl", "--output", "text"]);
    let send = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}]}"#;
    // Retried after a second: in moto the retried attempt read the first attempt's failure at once,
    // so this execution had failed before a second message could be answered.
    let definition = serde_json::json!({"StartAt": "Work", "States": {"Work": {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 1, "BackoffRate": 1.0, "MaxAttempts": 2}],
        "End": true}}});
    let machine = state_machine(&cloud, &admin, "callbacks", &definition, Some(send));
    let execution = ok(&[
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        &machine,
        "--query",
        "executionArn",
        "--output",
        "text",
    ]);
    let next_token = || {
        let out = ok(&["sqs", "receive-message", "--queue-url", &queue, "--wait-time-seconds", "10"]);
        let message: serde_json::Value = serde_json::from_str(&out).expect("a message");
        let m = &message["Messages"][0];
        ok(&["sqs", "delete-message", "--queue-url", &queue, "--receipt-handle", m["ReceiptHandle"].as_str().unwrap()]);
        let body: serde_json::Value = serde_json::from_str(m["Body"].as_str().unwrap()).unwrap();
        body["token"].as_str().unwrap().to_owned()
    };
    let first = next_token();
    ok(&["stepfunctions", "send-task-failure", "--task-token", &first, "--error", "Again"]);
    let second = next_token();
    assert_ne!(first, second, "the retried attempt has a token of its own");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let status = |arn: &str| {
        ok(&["stepfunctions", "describe-execution", "--execution-arn", arn, "--query", "status", "--output", "text"])
    };
    assert_eq!(status(&execution), "RUNNING", "the retried attempt waits for its own answer");
    cli_refused(
        &cloud,
        &admin,
        &["stepfunctions", "send-task-success", "--task-token", &first, "--task-output", "{}"],
        "(TaskTimedOut)",
    );
    ok(&["stepfunctions", "send-task-success", "--task-token", &second, "--task-output", r#"{"done":true}"#]);
    let finished =
        assure_e2e::eventually(std::time::Duration::from_secs(10), "the execution finished", || {
            match status(&execution) {
                running if running == "RUNNING" => Err(running),
                done => Ok(done),
            }
        });
    assert_eq!(finished, "SUCCEEDED");
}
