"""assure's extension of moto: the AWS operations moto lacks, answered statefully.

A WSGI layer in front of moto's app. It reads the SigV4 credential scope of each request (access key,
region, signing name) and the path; requests it owns are answered here, everything else goes to moto
unchanged. While IAM is enforced, each signed request's signature is verified first, as AWS verifies
it, against the secret of its access key (sigv4.py; SignatureDoesNotMatch and its kin otherwise).
State is kept per calling account and region, as AWS keeps it, and the calling account comes from
moto's own access-key registry, so credentials from sts:AssumeRole act as the assumed account.

Owned operations (REST-JSON, shapes and error codes as in the AWS API references):
- GuardDuty: CreateMembers, GetMembers, ListMembers, DeleteMembers, DisassociateMembers, InviteMembers,
  AcceptAdministratorInvitation, GetAdministratorAccount, DisassociateFromAdministratorAccount,
  ListFilters, EnableOrganizationAdminAccount, DisableOrganizationAdminAccount, ListOrganizationAdminAccounts,
  UpdateOrganizationConfiguration, DescribeOrganizationConfiguration, CreatePublishingDestination,
  ListPublishingDestinations, DescribePublishingDestination, DeletePublishingDestination.
- IAM Access Analyzer: CreateAnalyzer, GetAnalyzer, ListAnalyzers, DeleteAnalyzer, CreateArchiveRule,
  ListArchiveRules.
- CloudWatch over Smithy RPC v2 CBOR: every operation, translated to awsJson1.0 and answered by moto, so the
  SDK (CBOR) and the AWS CLI (JSON) see one store.
- IAM and STS (query protocol, through moto's serializer): PutUserPermissionsBoundary,
  DeleteUserPermissionsBoundary (and CreateUser's PermissionsBoundary); centralized root access:
  EnableOrganizationsRootCredentialsManagement, EnableOrganizationsRootSessions, their Disable twins,
  ListOrganizationsFeatures, sts:AssumeRoot (patch_identity).
- Transitions (TRANSITION): a new analyzer and a new Firehose stream are CREATING, a new GuardDuty
  publishing destination PENDING_VERIFICATION, a member a GuardDuty administrator adds Created, for
  ASSURE_TRANSITION_SECONDS (or /assure-api/limits' transitionSeconds; at least 0.5) before their
  final status, and a CREATING stream takes no data; a delegated administrator registration
  (REGISTERED) and trusted access (TRUSTED) reach the service they name as late.
- /assure-api/health: readiness probe.
- /assure-api/deliveries: what the services' deliveries have queued; POST /assure-api/deliveries/flush
  runs them all now (deliver.py: CloudTrail's log files, after the transition delay).
- /assure-api/root-credentials: an account's root user's access keys, and its password, MFA devices
  and signing certificates (root.py; local only, like /assure-api/account-owner);
  /assure-api/service-credentials: a service's session of a role it was given, optionally for a named
  resource (`sourceArn`); /assure-api/managed-instances: managed instances whose SSM Agent runs with a
  role (deliver_findings.py, with IAM Access Analyzer's findings and Session Manager's sessions).
- /assure-api/schedules: EventBridge's scheduled rules; POST fires one now (schedules.py).
- /assure-api/function-code and /assure-api/event-source-mappings: Lambda's service side, which the
  worker plays: a function's package, and every account's mappings with their functions.
"""

import io
import json
import re
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from moto.core.request import Request
from moto.iam import models as iam_models
from moto.moto_api import recorder

from assure_local import authz, aws_request, core, deliver, pipeline, policies, principals, schedules, stack_model
from assure_local.core import (
    ADMINISTRATOR,
    LOCK,
    REST_JSON,
    SCOPE,
    SERVICE_KEYS,
    ApiError,
    Call,
    Credential,
    credential_of,
    organization_of,
    session_token,
)
from assure_local.deliver_services import log
from assure_local.errors import service_error
from assure_local.knobs import Faults, Limits
from assure_local.principals import service_session
from assure_local.services import cloudtrail_logs, ssm
from assure_local.services.access_analyzer import AccessAnalyzer
from assure_local.services.account import Accounts
from assure_local.services.cloudwatch import CborBridge, patch_cloudwatch
from assure_local.services.config import patch_config
from assure_local.services.guardduty import GuardDuty
from assure_local.services.guardduty_findings import patch_guardduty
from assure_local.services.s3 import S3_ROOTS, fix_s3_root, patch_s3_bucket_policy
from assure_local.services.sns import patch_sns

# ---------------------------------------------------------------------------------------------------
# GuardDuty


# ---------------------------------------------------------------------------------------------------
# IAM Access Analyzer


# ---------------------------------------------------------------------------------------------------
# AWS Account Management: Regions an account has enabled. moto has no Account service.
# https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html: Regions introduced
# after 20 March 2019 are opt-in, every other Region is ENABLED_BY_DEFAULT and cannot be disabled.
# An account of the local cloud starts with its opt-in Regions ENABLED (an organization that onboards
# into them has enabled them; on AWS a new account has them DISABLED); DisableRegion turns one off,
# and then every call the account makes in that Region is refused as AWS refuses it, with the
# protocol's invalid-token error ("The security token included in the request is invalid."): AWS
# does not know the account there. The API reference: ListRegions, GetRegionOptStatus, EnableRegion,
# DisableRegion (https://docs.aws.amazon.com/accounts/latest/reference/API_Operations.html).


# ---------------------------------------------------------------------------------------------------
# Smithy RPC v2 CBOR, the protocol the current AWS SDKs speak to CloudWatch. moto speaks JSON and query
# for it, and so does the AWS CLI: a store of our own would be seen by the SDK alone. So a CBOR request
# is translated to the same operation in awsJson1.0 and answered by moto, and moto's answer is parsed
# with the service's model and encoded back to CBOR: one store, every protocol a client may use.
# The protocol: https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html


# ---------------------------------------------------------------------------------------------------
# Fixes to moto's answers, where they differ from AWS in ways the Rust SDK notices


def patch_moto() -> None:
    """moto's fixes, service by service (services/), in the order they wrap each other's."""
    from assure_local import deliver_findings, organizations, stacksets
    from assure_local.services import cloudtrail, config, firehose, identity, logs, s3, stepfunctions
    from assure_local.services import organizations as org_fixes

    org_fixes.patch_registrations()
    org_fixes.patch_trusted_access()
    logs.patch_log_group_keys()
    stacksets.patch()
    organizations.patch()
    stepfunctions.lambdas_pollers_are_the_workers()
    identity.iam_lists_what_it_holds()
    stepfunctions.distributed_map_results_are_written()
    # CloudTrail: GetTrailStatus answers what the trail's deliveries recorded (deliver.py: each log
    # file written or refused, LatestDeliveryError the S3 error of the last attempt), and GetTrail,
    # GetTrailStatus, GetEventSelectors and GetInsightSelectors take a shadow trail's ARN
    # (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html).
    cloudtrail_logs.patch_cloudtrail()
    config.patch_moto()
    org_fixes.patch_moto()
    stepfunctions.patch_moto()
    s3.patch_moto()
    cloudtrail.patch_moto()
    identity.patch_moto()
    firehose.patch_moto()
    identity.patch_identity()
    # Config's snapshots and aggregator, GuardDuty's sample findings and their export, CloudWatch's
    # alarm actions and history, SNS's deliveries: deliver_services.py.
    patch_deliveries()
    # IAM Access Analyzer's findings and their events, EventBridge's bus and Firehose targets,
    # Session Manager's sessions and logs: services/ssm.py; EventBridge's targets: events.py.
    deliver_findings.install()


# ---------------------------------------------------------------------------------------------------
# Fault injection, for tests and operators: POST /assure-api/faults with
#   {"rules": [{"service": "config" | "*", "operation": "PutDeliveryChannel" | "*", "error": "throttle" |
#               "5xx" | "AccessDenied" | "delay", "rate": 0.2, "count": 100, "caller": "assure-step-alarms",
#               "delayMs": 8000}]}
# answers matching calls with that error at that rate, at most `count` times (`caller`, optional: only
# calls whose principal's or session's ARN contains it); "delay" instead holds the call `delayMs` and
# then serves it (a slow call, for tests of what happens meanwhile); DELETE clears the rules,
# GET shows them with how often each fired. Only clients' calls are affected, never moto's own
# internal calls (Step Functions sending task messages).


# ---------------------------------------------------------------------------------------------------
# Rate limits and latency, to emulate AWS for tests and the benchmark: POST /assure-api/limits with
#   {"limits": [{"service": "organizations", "rps": 5}], "latencyMs": 50}
# answers a service's calls beyond `rps` per second (a token bucket holding one second's worth) with
# that service's throttling error (Organizations: TooManyRequestsException), and delays every client
# call by latencyMs; iamPropagationSeconds sets how long a new role stays unusable to services (rules.py),
# transitionSeconds how long a new analyzer, Firehose stream or GuardDuty publishing destination stays
# in its first status (TRANSITION, above; at least MIN_TRANSITION).
# GET shows the settings and, per service, the calls allowed and throttled; DELETE
# clears. Like faults, only clients' calls count, never moto's calls to itself.


# ---------------------------------------------------------------------------------------------------
# WSGI


class Extension:
    def __init__(self, moto_app: Callable) -> None:
        self.moto_app = moto_app
        self.services: dict[str, Any] = {
            "guardduty": GuardDuty(),
            "access-analyzer": AccessAnalyzer(),
            "account": Accounts(),
        }
        self.cbor = CborBridge()
        self.faults = Faults()
        self.limits = Limits()
        self.iam_counts = {"allowed": 0, "denied": 0, "unknownKeys": 0, "unsigned": 0, "badSignatures": 0}
        self.compiled = {
            signing: [(m, re.compile(p + "$"), h) for m, p, h in svc.routes]
            for signing, svc in self.services.items()
        }

    @staticmethod
    def signing(environ: dict) -> str | None:
        scope = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        return scope.group(3) if scope else None

    def rewrite(self, environ: dict, start_response: Callable, fix: Callable) -> list[bytes]:
        """Runs moto, then fixes its body (and Content-Length) before answering."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = list(self.moto_app(environ, capture))
        body = b"".join(fix(environ, chunks))
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]

    def route(self, environ: dict) -> tuple[Any, str, dict] | None:
        signing = self.signing(environ)
        if signing not in self.services:
            return None
        method = environ.get("REQUEST_METHOD", "GET")
        path = unquote(environ.get("PATH_INFO", ""))
        for m, pattern, handler in self.compiled[signing]:
            match = pattern.match(path)
            if m == method and match:
                return getattr(self.services[signing], handler), signing, match.groupdict()
        return None

    def faults_api(self, environ: dict, start_response: Callable) -> list[bytes]:
        method = environ.get("REQUEST_METHOD")
        # Read the body whatever the method: an unread body can keep the client waiting.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if method == "POST":
            doc = json.loads(raw or b"{}")
            rules = []
            for r in doc.get("rules", []):
                rules.append({"service": r.get("service", "*"), "operation": r.get("operation", "*"),
                              "error": r.get("error", "throttle"), "rate": float(r.get("rate", 1.0)),
                              "count": int(r.get("count", 1)), "caller": r.get("caller"),
                              "delayMs": int(r.get("delayMs", 0)), "fired": 0})
            with LOCK:
                self.faults.rules = rules
        elif method == "DELETE":
            with LOCK:
                self.faults.rules = []
        with LOCK:
            return self.respond(start_response, 200, {"rules": list(self.faults.rules)})

    def limits_api(self, environ: dict, start_response: Callable) -> list[bytes]:
        method = environ.get("REQUEST_METHOD")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if method == "POST":
            self.limits.set(json.loads(raw or b"{}"))
        elif method == "DELETE":
            self.limits.set({})
        return self.respond(start_response, 200, self.limits.state())

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        # Each answered request is also a CloudTrail event (deliver.recorded).
        return deliver.recorded(self.answer, environ, start_response)

    def answer(self, environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO") == "/assure-api/health":
            return self.respond(start_response, 200, {"ok": True})
        if environ.get("PATH_INFO") == "/assure-api/faults":
            return self.faults_api(environ, start_response)
        if environ.get("PATH_INFO") == "/assure-api/limits":
            return self.limits_api(environ, start_response)
        if environ.get("PATH_INFO") == "/assure-api/iam":
            return self.respond(start_response, 200, {"enforced": policies.enabled(), **self.iam_counts})
        if environ.get("PATH_INFO") == "/assure-api/service-credentials":
            return self.service_credentials(environ, start_response)
        if environ.get("PATH_INFO") == "/assure-api/function-code":
            return self.function_code(environ, start_response)
        if environ.get("PATH_INFO") == "/assure-api/event-source-mappings":
            return self.event_source_mappings(environ, start_response)
        if environ.get("PATH_INFO") == "/assure-api/account-owner":
            return self.account_owner(environ, start_response)
        if environ.get("PATH_INFO") == "/assure-api/root-credentials":
            return self.root_credentials(environ, start_response)
        if environ.get("PATH_INFO") == "/assure-api/schedules":
            return schedules.api(environ, start_response)
        if environ.get("PATH_INFO") == "/assure-api/managed-instances":

            return ssm.managed_instances_api(environ, start_response)
        cred = credential_of(environ)
        if cred is None:
            refused = self.unsigned(environ, start_response)
            if refused is not None:
                return refused
        # moto's own calls to itself: sessions of the roles Step Functions runs tasks as (authorized,
        # but outside the latency, limit and fault knobs), and, only while IAM is not enforced, the
        # fixed key "ak" moto's Step Functions interpreter signs with when no role is given to it
        # (run_tasks_as_the_execution_role gives it one whenever IAM is on). With IAM on, "ak" is a key
        # the local cloud never issued, refused like any other.
        service_call = cred is not None and cred.key in SERVICE_KEYS
        moto_internal = cred is not None and cred.key == "ak" and not policies.enabled()
        client_call = cred is not None and not service_call and not moto_internal
        if (client_call or service_call) and cred is not None:
            request = pipeline.Request(self, environ, start_response, cred, client_call)
            refused = pipeline.run(request)
            if refused is not None:
                return refused
        if self.signing(environ) == "s3" and environ.get("REQUEST_METHOD") == "PUT" and (
            environ.get("HTTP_IF_MATCH") or environ.get("HTTP_IF_NONE_MATCH")
        ):
            # S3 conditional writes are atomic on AWS; moto checks, then writes. Hold the lock across both.
            with LOCK:
                return list(self.moto_app(environ, start_response))
        bridged = self.cbor.owns(environ)
        if bridged and self.signing(environ) == "monitoring":
            return self.cbor(self.moto_app, environ, start_response, "monitoring", bridged)
        if cred is not None and cred.service == "ssm":

            answered = ssm.answer(environ, start_response, cred)
            if answered is not None:
                return answered
        if cred is not None and cred.service == "cloudformation" and (client_call or service_call):
            from assure_local import stacks, stacksets

            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            with LOCK:
                secret = principals.secret_of(cred.key)
            caller = stack_model.Caller(cred.key, secret or "", session_token(environ))
            answered = stacks.handle(environ, start_response, raw, iam_models.get_account_id_from(cred.key),
                                     cred.region, caller, stacksets.answer_cloudformation)
            if answered is not None:
                return answered
            environ["wsgi.input"] = io.BytesIO(raw)
        routed = self.route(environ)
        if routed is None:
            if self.signing(environ) == "s3" and environ.get("QUERY_STRING") in [q for q, _, _ in S3_ROOTS]:
                return self.rewrite(environ, start_response, fix_s3_root)
            return self.moto_app(environ, start_response)
        handler, _signing, params = routed
        recorder._record_request(Request(environ))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        body = json.loads(raw) if raw.strip() else {}
        assert cred is not None  # routed by its signature's service
        call = Call(
            account=iam_models.get_account_id_from(cred.key),
            region=cred.region,
            method=environ["REQUEST_METHOD"],
            path=environ.get("PATH_INFO", ""),
            query=parse_qs(environ.get("QUERY_STRING", "")),
            body=body,
        )
        try:
            with LOCK:
                result = handler(call, **params)
            return self.respond(start_response, 200, result)
        except ApiError as err:
            body = {"message": err.message, "Message": err.message, **err.extra}
            if "type" in err.extra:
                body["__type"] = err.extra["type"]
                del body["type"]
            return self.respond(start_response, err.status, body, error=err.code)

    def validate(self, environ: dict, start_response: Callable, cred: Credential | None) -> list[bytes] | None:
        """The service's own checks of the request (pipeline.validate_request)."""
        return pipeline.validate_request(environ, start_response, cred)

    def unsigned(self, environ: dict, start_response: Callable) -> list[bytes] | None:
        """A request that carries no signature. AWS refuses it, in the protocol's shape, with
        MissingAuthenticationToken: "The request must contain either a valid (registered) AWS access
        key ID or X.509 certificate", HTTP 403
        (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html), except where a service
        serves unsigned requests: S3 as the anonymous user, whom only a bucket policy granting "*"
        admits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html), and
        STS's AssumeRoleWithWebIdentity and AssumeRoleWithSAML, whose callers prove who they are with
        an identity provider's token (principals.federated). None to go on to moto, or the refusal.

        The local cloud's own endpoints (/assure-api/…, answered before this), moto's (/moto-api/…:
        its recorder, which the tests read) and the instance metadata service (/latest/…, unsigned on
        EC2 too) are not AWS APIs and stay open, as before. With IAM enforcement off, unsigned requests
        go on to moto, as every other request does."""
        path = environ.get("PATH_INFO", "")
        if path.startswith(("/moto-api", "/latest/")) or path == "/favicon.ico" or not policies.enabled():
            return None

        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        target = environ.get("HTTP_X_AMZ_TARGET")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        action = (query.get("Action") or [""])[0]
        if not action and raw and b"Action=" in raw:
            action = (parse_qs(raw.decode(errors="replace")).get("Action") or [""])[0]
        if action in principals.FEDERATED_ACTIONS and not target:
            req = environ["assure.request"] = aws_request.parse_request(environ, raw, "sts", "us-east-1")
            with LOCK:
                refusal = principals.federated(req)
            if refusal is not None:
                self.iam_counts["denied"] += 1
                return service_error(start_response, environ, "sts", *refusal)
            self.iam_counts["allowed"] += 1
            return self.validate(environ, start_response, None)
        if target or action or "/operation/" in path:
            # A JSON, Smithy RPC v2 CBOR or query request: every such API wants a signature. JSON
            # services answer 400 MissingAuthenticationTokenException ("Request must contain a valid
            # (registered) AWS Access Key ID",
            # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html);
            # query services 403 MissingAuthenticationToken (CommonErrors, above).
            self.iam_counts["unsigned"] += 1
            if target or "/operation/" in path:
                return service_error(start_response, environ, "", 400, "MissingAuthenticationTokenException",
                                     "Request must contain a valid (registered) AWS Access Key ID.")
            return service_error(start_response, environ, "", 403, "MissingAuthenticationToken",
                                 "Request is missing Authentication Token")
        from moto.s3.models import s3_backends

        bucket = unquote(path).lstrip("/").partition("/")[0]
        method = environ.get("REQUEST_METHOD", "GET")
        if bucket not in s3_backends.bucket_accounts and any(
            aws_request.rest_operation(service, method, unquote(path), b"")[0] for service in REST_JSON
        ):
            # GuardDuty, IAM Access Analyzer and Account Management (REST-JSON) share S3's shape on
            # the one endpoint: a path that is one of their operations' and names no bucket is theirs.
            # Their front end answers as API Gateway's does: 403, "Missing Authentication Token".
            self.iam_counts["unsigned"] += 1
            return service_error(start_response, environ, "guardduty", 403, "MissingAuthenticationTokenException",
                                 "Missing Authentication Token")
        # Everything else is S3's (REST: a bucket and key in the path): the anonymous user.
        req = environ["assure.request"] = aws_request.parse_request(environ, raw, "s3", "us-east-1")
        if bucket and bucket not in s3_backends.bucket_accounts and req.method != "PUT":
            return None  # NoSuchBucket: S3 says so whoever asks
        with LOCK:
            denial = authz.authorize(principals.ANONYMOUS, req)
        if denial is not None:
            self.iam_counts["denied"] += 1
            return service_error(start_response, environ, "s3", 403, "AccessDenied", "Access Denied")
        self.iam_counts["allowed"] += 1
        return self.validate(environ, start_response, None)

    def read_json(self, environ: dict) -> dict:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        return json.loads(raw or b"{}")

    def service_credentials(self, environ: dict, start_response: Callable) -> list[bytes]:
        """POST {"service": "lambda.amazonaws.com", "roleArn": ..., "sessionName": ..., "sourceArn": ...}:
        what a service does to act as a role it was given (Lambda assuming a function's execution role):
        the role's trust policy must admit the service principal. The worker plays Lambda with it.

        `sourceArn` (optional) names the resource the service acts for (a CloudTrail trail, a Firehose
        delivery stream, an EventBridge rule, a Config aggregator); the request then carries the keys
        that service documents sending (principals.SERVICE_SOURCE_KEYS: aws:SourceArn, aws:SourceAccount,
        sts:ExternalId), and no others. Without it the request carries what it always did,
        aws:SourceAccount (the role's account)."""
        doc = self.read_json(environ)
        service, role_arn = str(doc.get("service", "")), str(doc.get("roleArn", ""))
        source = doc.get("sourceArn")
        if source is not None and not (isinstance(source, str) and source.startswith("arn:")):
            return self.respond(start_response, 400, {"message": "sourceArn: an ARN"}, error="ValidationError")
        try:
            session = service_session(service, role_arn, str(doc.get("sessionName") or service.split(".")[0]), source)
        except ApiError as e:
            return self.respond(start_response, e.status, {"message": e.message}, error=e.code)
        return self.respond(start_response, 200, {"AccessKeyId": session.access_key_id,
                                                  "SecretAccessKey": session.secret_access_key,
                                                  "SessionToken": session.session_token})

    def function_code(self, environ: dict, start_response: Callable) -> list[bytes]:
        """POST {"functionArn": ...}: the function's deployment package (the zip CreateFunction or
        UpdateFunctionCode gave it), as Lambda's service side fetches it to start an execution
        environment. The worker plays Lambda with it: it runs the package's `bootstrap`."""
        doc = self.read_json(environ)
        arn = str(doc.get("functionArn", ""))
        parts = arn.split(":")
        if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
            return self.respond(start_response, 400, {"message": "functionArn: a function's ARN"},
                                error="ValidationError")
        from moto.awslambda.models import lambda_backends

        with LOCK:
            try:
                function = lambda_backends[parts[4]][parts[3]].get_function(parts[6])
            except Exception:  # noqa: BLE001 - moto's not-found
                function = None
            code = getattr(function, "code_bytes", None) if function is not None else None
        if not code:
            return self.respond(start_response, 404, {"message": f"no package for {arn}"},
                                error="ResourceNotFoundException")
        start_response("200 OK", [("Content-Type", "application/zip"), ("Content-Length", str(len(code)))])
        return [code]

    def event_source_mappings(self, environ: dict, start_response: Callable) -> list[bytes]:
        """POST {}: every event source mapping of every account and Region, each as
        ListEventSourceMappings describes it, with its function's configuration as GetFunction
        describes it ("Function"): what Lambda's service side polls and runs, whichever account the
        pipeline is deployed in. The worker plays Lambda with it."""
        from moto.awslambda.models import lambda_backends

        out = []
        with LOCK:
            for _account, regions in list(lambda_backends.items()):
                for _region, backend in list(regions.items()):
                    for esm in list(getattr(backend, "_event_source_mappings", {}).values()):
                        mapping = esm.get_configuration()
                        try:
                            function = backend.get_function(esm.function_arn)
                            mapping["Function"] = function.get_configuration()
                        except Exception:  # noqa: BLE001, S112 - a function deleted since
                            continue
                        out.append(mapping)
        return self.respond(start_response, 200, {"EventSourceMappings": out})

    def account_owner(self, environ: dict, start_response: Callable) -> list[bytes]:
        """POST {"account": ID}: access keys of an administrator user of an account outside the
        organization (the seed's foreign GuardDuty administrator): the local stand-in for the owner of
        another AWS account signing in. The organization's own accounts are reached as on AWS, through
        OrganizationAccountAccessRole."""
        doc = self.read_json(environ)
        account = str(doc.get("account", ""))
        if not re.fullmatch(r"\d{12}", account):
            return self.respond(start_response, 400, {"message": "account: 12 digits"}, error="ValidationError")
        if organization_of(account) is not None:
            # An account of an organization has no stand-in owner: its administrators are reached
            # through OrganizationAccountAccessRole, which the organization's SCPs bind.
            return self.respond(start_response, 409, {"message": f"account {account} is in an organization: "
                                                      "assume its OrganizationAccountAccessRole instead"},
                                error="Conflict")
        from moto.iam.models import iam_backends

        with LOCK:
            backend = iam_backends[account]["aws"]
            name = "account-owner"
            if name not in backend.users:
                backend.create_user(region_name="us-east-1", user_name=name, path="/", tags=[])
                backend.put_user_policy(name, "AdministratorAccess", json.dumps(ADMINISTRATOR))
            # IAM allows a user two access keys (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
            # a third sign-in (a third seed) retires the oldest, as an owner rotating keys would.
            keys = backend.list_access_keys(name)
            if len(keys) >= 2:
                oldest = min(keys, key=lambda k: k.create_date)
                backend.delete_access_key(oldest.access_key_id, name)
            key = backend.create_access_key(name)
        return self.respond(start_response, 200, {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key})

    def root_credentials(self, environ: dict, start_response: Callable) -> list[bytes]:
        """POST {"account": ID}: access keys of the account's root user, as its owner makes them
        (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_add-key.html): the local
        stand-in for signing in as root. The root user is allowed everything in its account by identity
        (no IAM policy), is bound by the SCPs of a member account (never the management account's), and
        may not call sts:AssumeRole or sts:AssumeRoot (authz.authorize). Local only, like
        /assure-api/account-owner.

        The root user's other credentials (password, MFA devices, signing certificates): a POST with
        those fields seeds them, GET ?account=ID answers them (root.credentials_api)."""
        from assure_local import root

        method = environ.get("REQUEST_METHOD", "GET")
        try:
            doc = self.read_json(environ) if method != "GET" else {}
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            return self.respond(start_response, 400, {"message": "a JSON object"}, error="ValidationError")
        status, body = root.credentials_api(method, parse_qs(environ.get("QUERY_STRING", "")), doc)
        return self.respond(start_response, status, body, error="ValidationError" if status >= 400 else None)

    respond = staticmethod(core.respond)




def patch_deliveries() -> None:
    """Installs the operations and the deliveries; again, only what is not installed (`install`)."""
    try:
        patch_config()
        patch_guardduty()
        patch_cloudwatch()
        patch_sns()
        patch_s3_bucket_policy()
    except Exception:
        log(f"deliver_services: patch failed:\n{traceback.format_exc()}")
        raise
