//! The mapping of SDK errors onto assure's closed set of error names.

//! Clients for every account and region, built once, and the mapping of SDK errors onto assure's
//! closed set of error names.

use std::fmt::Display;

use assure_contract::{ErrorName, StepError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::propagation::role_propagating;

/// Error codes that mean "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServerException",
    "InternalException",
    "ConcurrentModificationException",
    "OperationAbortedException",
    "OperationAborted",
    "PriorRequestNotComplete",
];

/// Error codes that mean "you may not".
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthFailure",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
];

/// The error code of an SDK error, if the service sent one.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// The service's code and message of an SDK error, as one line.
pub fn error_message<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    match err {
        SdkError::ServiceError(e) => {
            format!("{}: {}", e.err().code().unwrap_or("?"), e.err().message().unwrap_or_default())
        }
        _ => "no answer from the service".to_owned(),
    }
}

/// Maps an SDK error to one of assure's error names, keeping the service's code and message.
pub fn classify<E>(err: &SdkError<E, HttpResponse>, what: &str) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or("");
            let server_error = service.raw().status().is_server_error();
            let name = if RETRYABLE_CODES.contains(&code) || server_error || role_propagating(code, message) {
                ErrorName::Retryable
            } else if DENIED_CODES.contains(&code) {
                ErrorName::AccessDenied
            } else if code.contains("LimitExceeded")
                || code.contains("Quota")
                // Organizations' limits: ConstraintViolationException with a *_LIMIT_EXCEEDED reason.
                || (code == "ConstraintViolationException" && message.contains("maximum"))
                || code.starts_with("MaxNumberOf")
                || code.starts_with("MaximumNumberOf")
            {
                ErrorName::QuotaExceeded
            } else {
                ErrorName::Internal
            };
            StepError::new(name, format!("{what}: {code}: {message}"))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            StepError::new(ErrorName::Retryable, format!("{what}: {}", chain(err)))
        }
        // A 5xx whose body is not the service's error shape (an overloaded front end answers 503
        // with no body) is as transient as one that is.
        SdkError::ResponseError(r) if r.raw().status().is_server_error() => {
            StepError::new(ErrorName::Retryable, format!("{what}: HTTP {}: {}", r.raw().status().as_u16(), chain(err)))
        }
        // Any other response that could not be read is not transient: retrying would read it again.
        _ => StepError::internal(format!("{what}: {}", chain(err))),
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut src = err.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// `.aws("s3:CreateBucket name")` turns an SDK result into a step result with a named error.
pub trait AwsResultExt<T> {
    fn aws(self, what: impl Display) -> Result<T, StepError>;
}

impl<T, E> AwsResultExt<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn aws(self, what: impl Display) -> Result<T, StepError> {
        self.map_err(|e| classify(&e, &what.to_string()))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A service's answer, as the SDK hands it over.
    pub(in crate::aws) fn answer(
        status: u16,
        code: &str,
    ) -> SdkError<aws_sdk_cloudtrail::operation::create_trail::CreateTrailError, HttpResponse> {
        answer_saying(status, code, "m")
    }

    fn answer_saying(
        status: u16,
        code: &str,
        message: &str,
    ) -> SdkError<aws_sdk_cloudtrail::operation::create_trail::CreateTrailError, HttpResponse> {
        let meta = aws_smithy_types::error::ErrorMetadata::builder().code(code).message(message).build();
        let raw = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("a status"),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(aws_sdk_cloudtrail::operation::create_trail::CreateTrailError::generic(meta), raw)
    }

    #[test]
    fn service_error_codes_are_named_by_what_the_caller_can_do() {
        for (status, code, name) in [
            (400, "ThrottlingException", ErrorName::Retryable),
            (500, "InvalidParameterValue", ErrorName::Retryable),
            (403, "AccessDenied", ErrorName::AccessDenied),
            (400, "LimitExceededException", ErrorName::QuotaExceeded),
            (400, "MaxNumberOfConfigRulesExceededException", ErrorName::QuotaExceeded),
            // CloudTrail's five trails per region: https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html
            (400, "MaximumNumberOfTrailsExceededException", ErrorName::QuotaExceeded),
            (400, "InvalidParameterValue", ErrorName::Internal),
        ] {
            let err = classify(&answer(status, code), "cloudtrail:CreateTrail");
            assert_eq!(err.name, name, "{status} {code}");
            assert_eq!(err.message, format!("cloudtrail:CreateTrail: {code}: m"));
        }
    }

    #[test]
    fn a_role_not_yet_propagated_is_retryable_and_other_invalid_arguments_are_not() {
        let firehose = "Firehose is unable to assume role arn:aws:iam::1:role/r. Please check the role provided.";
        for (code, message, name) in [
            ("InvalidCloudWatchLogsRoleArnException", "Access denied.", ErrorName::Retryable),
            ("InvalidArgumentException", firehose, ErrorName::Retryable),
            ("InvalidArgumentException", "Prefix is not valid", ErrorName::Internal),
        ] {
            assert_eq!(classify(&answer_saying(400, code, message), "x").name, name, "{code}: {message}");
        }
    }
}
