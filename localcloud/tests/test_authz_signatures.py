"""What each request is authorized against, and the requests refused before any policy is read (continued: Signatures, Transitions)."""

import base64
import json
import time
import unittest

from assure_local import core, knobs, principals
from tests import authz_client
from tests.authz_client import (
    ACCOUNT,
    FORM,
    REGION,
    SECRETS,
    TRUST_ACCOUNT,
    WHO_AM_I,
    assume,
    auth,
    bad_signatures,
    call,
    firehose,
    json_call,
    limits,
    make_role,
    minutes_ago,
    presign,
    rest,
    service_trust,
    sign,
)


def setUpModule() -> None:
    authz_client.setUpModule()


class Signatures(unittest.TestCase):
    """Every signed request's signature is verified against its access key's secret, as AWS verifies
    it (sigv4.py: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html,
    https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html,
    https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html). Requests are signed
    by botocore's signers, as the AWS CLI signs them; each test breaks one part of the signature."""

    @classmethod
    def setUpClass(cls):
        admin = auth("testing", "s3")
        call("PUT", "/sig-test", admin)
        call("PUT", "/sig-test/k", admin, b"hi")

    def test_a_wrong_secret_is_refused_in_each_protocols_shape(self):
        before = bad_signatures()
        assert call("POST", "/", dict(auth("testing", "sts"), **{"Content-Type": FORM}), WHO_AM_I)[0] == 200
        status, body = call("POST", "/", dict(auth("testing", "sts", secret="wrong"), **{"Content-Type": FORM}), WHO_AM_I)
        assert status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in body
        assert "The request signature we calculated does not match the signature you provided. Check your AWS " \
                      "Secret Access Key and signing method. Consult the service documentation for details." in body
        assert "The Canonical String for this request should have been" in body
        status, body = call("GET", "/sig-test/k", auth("testing", "s3", secret="wrong"))
        assert status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in body
        assert "<StringToSign>AWS4-HMAC-SHA256\n" in body
        kms = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"}
        assert call("POST", "/", dict(auth("testing", "kms"), **kms), "{}")[0] == 200
        status, body = call("POST", "/", dict(auth("testing", "kms", secret="wrong"), **kms), "{}")
        assert (status, json.loads(body)["__type"]) == (400, "InvalidSignatureException")
        assert bad_signatures() == before + 3

    def test_a_session_signs_with_its_own_secret(self):
        key, token = assume(make_role("sig-session", TRUST_ACCOUNT))
        headers = {"Content-Type": FORM, "X-Amz-Security-Token": token}
        assert call("POST", "/", dict(auth(key, "sts"), **headers), WHO_AM_I)[0] == 200
        status, body = call("POST", "/", dict(auth(key, "sts", secret="testing"), **headers), WHO_AM_I)
        assert status == 403, "the administrator's secret is not the session's"
        assert "<Code>SignatureDoesNotMatch</Code>" in body

    def test_a_service_session_is_verified_too(self):
        from assure_local import core

        role = make_role("sig-service", service_trust("states.amazonaws.com"))
        session = principals.service_session("states.amazonaws.com", role, "states")
        core.SERVICE_KEYS.add(session.access_key_id)
        SECRETS[session.access_key_id] = session.secret_access_key
        headers = {"Content-Type": FORM, "X-Amz-Security-Token": session.session_token}
        assert call("POST", "/", dict(auth(session.access_key_id, "sqs"), **headers), "Action=ListQueues")[0] == 200
        status, body = call("POST", "/", dict(auth(session.access_key_id, "sqs", secret="wrong"), **headers),
                            "Action=ListQueues")
        assert status == 403
        assert "SignatureDoesNotMatch" in body

    def test_a_body_changed_after_signing_is_refused(self):
        headers = sign("POST", "/", "", {"Content-Type": FORM}, WHO_AM_I, "testing", "sts")
        assert call("POST", "/", headers, WHO_AM_I)[0] == 200
        status, body = call("POST", "/", headers, WHO_AM_I.replace("2011-06-15", "2011-06-16"))
        assert status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in body
        # S3 signs the body's hash in x-amz-content-sha256, and checks the body against it.
        headers = sign("PUT", "/sig-test/tampered", "", {}, b"original", "testing", "s3")
        status, body = call("PUT", "/sig-test/tampered", headers, b"tampered")
        assert status == 400
        assert "<Code>XAmzContentSHA256Mismatch</Code>" in body
        assert call("GET", "/sig-test/tampered", auth("testing", "s3"))[0] == 404, "nothing was written"

    def test_a_signed_header_changed_after_signing_is_refused(self):
        headers = sign("POST", "/", "", {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"},
                       "{}", "testing", "kms")
        assert "x-amz-target" in headers["Authorization"]
        assert call("POST", "/", dict(headers, **{"X-Unsigned": "anything"}), "{}")[0] == 200, \
                         "a header the signature does not name may change"
        status, body = call("POST", "/", dict(headers, **{"X-Amz-Target": "TrentService.ListAliases"}), "{}")
        assert (status, json.loads(body)["__type"]) == (400, "InvalidSignatureException")
        headers = sign("GET", "/sig-test/k", "", {"x-amz-expected-bucket-owner": ACCOUNT}, b"", "testing", "s3")
        assert call("GET", "/sig-test/k", headers) == (200, "hi")
        status, body = call("GET", "/sig-test/k", dict(headers, **{"x-amz-expected-bucket-owner": "111111111111"}))
        assert status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in body

    def test_a_request_signed_twenty_minutes_ago_is_refused(self):
        status, body = call("GET", "/sig-test/k", auth("testing", "s3", when=minutes_ago(20)))
        assert status == 403
        assert "<Code>RequestTimeTooSkewed</Code>" in body
        assert "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>" in body
        status, body = call("POST", "/", dict(auth("testing", "sts", when=minutes_ago(20)), **{"Content-Type": FORM}), WHO_AM_I)
        assert status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in body
        assert "Signature expired: " in body
        status, body = call("POST", "/", dict(auth("testing", "sts", when=minutes_ago(-20)), **{"Content-Type": FORM}), WHO_AM_I)
        assert "Signature not yet current: " in body, "twenty minutes ahead"
        assert call("GET", "/sig-test/k", auth("testing", "s3", when=minutes_ago(10))) == (200, "hi"), \
                         "within fifteen minutes"

    def test_presigned_urls(self):
        assert call("GET", "/sig-test/k", query=presign("/sig-test/k")) == (200, "hi")
        status, body = call("GET", "/sig-test/k", query=presign("/sig-test/k", secret="wrong"))
        assert status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in body
        good = presign("/sig-test/k")
        forged = good[:-6] + ("000000" if not good.endswith("000000") else "111111")
        assert "<Code>SignatureDoesNotMatch</Code>" in call("GET", "/sig-test/k", query=forged)[1]
        assert "<Code>SignatureDoesNotMatch</Code>" in call("GET", "/sig-test/other", query=good)[1], \
                      "a URL signs one object"
        status, body = call("GET", "/sig-test/k", query=presign("/sig-test/k", expires=60, when=minutes_ago(2)))
        assert status == 403
        assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in body
        status, body = call("GET", "/sig-test/k", query=presign("/sig-test/k", expires=604801))
        assert status == 400
        assert "<Code>AuthorizationQueryParametersError</Code>" in body

    def test_an_unsigned_payload_is_allowed(self):
        headers = sign("PUT", "/sig-test/unsigned", "", {}, b"free", "testing", "s3", options={"unsigned_payload": True})
        assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
        assert call("PUT", "/sig-test/unsigned", headers, b"free")[0] == 200
        assert call("GET", "/sig-test/unsigned", auth("testing", "s3")) == (200, "free")

    def test_a_path_with_characters_that_need_encoding(self):
        from urllib.parse import quote

        path = "/sig-test/" + quote("a b/c+d=e", safe="/~")
        assert path == "/sig-test/a%20b/c%2Bd%3De"
        assert call("PUT", path, auth("testing", "s3"), b"odd")[0] == 200
        assert call("GET", path, auth("testing", "s3")) == (200, "odd")
        assert call("GET", path, query=presign(path)) == (200, "odd")
        status, body = call("GET", "/sig-test", auth("testing", "s3"), query="list-type=2&prefix=a%20b%2F")
        assert status == 200
        assert "<Key>a b/c+d=e</Key>" in body
        # Elsewhere the path is encoded twice in the canonical request (an analyzer's name with a colon).
        status, body = call("GET", "/analyzer/a%3Ab", auth("testing", "access-analyzer"))
        assert "Signature" not in body
        status, body = call("GET", "/analyzer/a%3Ab", auth("testing", "access-analyzer", secret="wrong"))
        assert (status, json.loads(body)["__type"]) == (403, "InvalidSignatureException")
        assert "\nGET\n/analyzer/a%253Ab\n" in "\n" + json.loads(body)["message"].split("'")[1]

    def test_a_streaming_upload_is_verified_by_its_seed_signature(self):
        # The seed signature covers x-amz-content-sha256 as given (sigv4-streaming.html); the chunks'
        # own signatures are not checked. botocore's plain SigV4Auth signs the header's value as given.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from werkzeug.test import EnvironBuilder

        from assure_local import sigv4

        body = b"5;chunk-signature=00\r\nhello\r\n0;chunk-signature=00\r\n\r\n"
        headers = {"X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "Content-Encoding": "aws-chunked",
                   "X-Amz-Decoded-Content-Length": "5"}

        def environ(secret: str) -> dict:
            request = AWSRequest(method="PUT", url="http://localhost/sig-test/streamed", headers=dict(headers), data=body)
            SigV4Auth(Credentials("testing", secret), "s3", REGION).add_auth(request)
            return EnvironBuilder("/sig-test/streamed", method="PUT", headers=dict(request.headers.items()),
                                  data=body).get_environ()

        assert sigv4.verify(environ("testing"), body, "testing") is None
        assert getattr(sigv4.verify(environ("wrong"), body, "testing"), "kind", None) == "signature"

    def test_s3_signature_version_2(self):
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html
        from botocore.auth import HmacV1Auth, HmacV1QueryAuth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        def signed(secret: str) -> dict:
            request = AWSRequest(method="GET", url="http://localhost/sig-test/k")
            HmacV1Auth(Credentials("testing", secret)).add_auth(request)
            return dict(request.headers.items())

        assert call("GET", "/sig-test/k", signed("testing")) == (200, "hi")
        status, body = call("GET", "/sig-test/k", signed("wrong"))
        assert status == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in body

        def presigned(expires: int) -> str:
            request = AWSRequest(method="GET", url="http://localhost/sig-test/k")
            HmacV1QueryAuth(Credentials("testing", "testing"), expires=expires).add_auth(request)
            return request.url.split("?", 1)[1]

        assert call("GET", "/sig-test/k", query=presigned(60)) == (200, "hi")
        assert "Request has expired" in call("GET", "/sig-test/k", query=presigned(-60))[1]


class Transitions(unittest.TestCase):
    """What is created is not final at once (core.TRANSITION): an analyzer is CREATING, then ACTIVE
    (https://docs.aws.amazon.com/access-analyzer/latest/APIReference/API_AnalyzerSummary.html); a
    Firehose stream CREATING, then ACTIVE, taking data only then
    (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html); a GuardDuty
    publishing destination PENDING_VERIFICATION, then what GuardDuty finds
    (https://docs.aws.amazon.com/guardduty/latest/APIReference/API_Destination.html). The tests shorten
    the transition to its minimum, 0.5 s, and wait 0.7 s."""

    WAIT = 0.7

    def setUp(self):
        from assure_local import rules

        self.propagation = rules.PROPAGATION["seconds"]
        limits("POST", {"transitionSeconds": 0.5, "iamPropagationSeconds": 0})

    def tearDown(self):
        # The transition back to its default, IAM's propagation delay as it was.
        limits("POST", {"iamPropagationSeconds": self.propagation})

    def test_the_setting_has_a_minimum_and_a_default(self):

        assert limits("GET")["transitionSeconds"] == 0.5
        assert limits("POST", {"transitionSeconds": 0})["transitionSeconds"] == 0.5, "none may turn it off"
        assert limits("POST", {"transitionSeconds": -3})["transitionSeconds"] == 0.5
        assert limits("POST", {"transitionSeconds": 1.5})["transitionSeconds"] == 1.5
        assert limits("POST", {})["transitionSeconds"] == knobs.DEFAULT_TRANSITION, "unnamed: the default"
        assert limits("POST", {"transitionSeconds": 0.75})["transitionSeconds"] == 0.75
        assert limits("DELETE")["transitionSeconds"] == knobs.DEFAULT_TRANSITION, "DELETE: the default"
        assert knobs.DEFAULT_TRANSITION >= core.MIN_TRANSITION
        # Set to 0, a new analyzer is still CREATING at first.
        limits("POST", {"transitionSeconds": 0})
        assert rest("PUT", "access-analyzer", "/analyzer", {"analyzerName": "t-zero", "type": "ACCOUNT"})[0] == 200
        assert rest("GET", "access-analyzer", "/analyzer/t-zero")[1]["analyzer"]["status"] == "CREATING"
        assert rest("DELETE", "access-analyzer", "/analyzer/t-zero")[0] == 200, "DeleteAnalyzer names no refusal"

    def test_an_analyzer_is_creating_then_active(self):
        status, body = rest("PUT", "access-analyzer", "/analyzer", {"analyzerName": "t-analyzer", "type": "ACCOUNT"})
        assert status == 200, body
        statuses = lambda: (rest("GET", "access-analyzer", "/analyzer/t-analyzer")[1]["analyzer"]["status"],
                            [a["status"] for a in rest("GET", "access-analyzer", "/analyzer")[1]["analyzers"]
                             if a["name"] == "t-analyzer"])
        assert statuses() == ("CREATING", ["CREATING"]), "GetAnalyzer and ListAnalyzers agree"
        # The API reference names no refusal while CREATING: an archive rule is taken.
        status, body = rest("PUT", "access-analyzer", "/analyzer/t-analyzer/archive-rule",
                            {"ruleName": "r", "filter": {"isPublic": {"eq": ["false"]}}})
        assert status == 200, body
        time.sleep(self.WAIT)
        assert statuses() == ("ACTIVE", ["ACTIVE"])
        limits("POST", {"transitionSeconds": 5, "iamPropagationSeconds": 0})
        assert statuses() == ("ACTIVE", ["ACTIVE"]), "a later setting never turns a final status back"
        assert rest("DELETE", "access-analyzer", "/analyzer/t-analyzer")[0] == 200

    def test_a_firehose_stream_is_creating_then_active_and_takes_data_only_then(self):
        role = make_role("t-firehose", service_trust("firehose.amazonaws.com", {"StringEquals": {"sts:ExternalId": ACCOUNT}}))
        admin = auth("testing", "s3")
        assert call("PUT", "/t-firehose-bucket", admin)[0] == 200
        status, body = firehose("CreateDeliveryStream", {
            "DeliveryStreamName": "t-stream", "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {"RoleARN": role, "BucketARN": "arn:aws:s3:::t-firehose-bucket"}})
        assert status == 200, body
        describe = lambda: firehose("DescribeDeliveryStream", {"DeliveryStreamName": "t-stream"})[1][
            "DeliveryStreamDescription"]["DeliveryStreamStatus"]
        objects = lambda: call("GET", "/t-firehose-bucket", admin, query="list-type=2")[1].count("<Key>")
        record = {"Data": base64.b64encode(b"{}").decode()}
        assert describe() == "CREATING"
        for operation, body in (("PutRecord", {"DeliveryStreamName": "t-stream", "Record": record}),
                                ("PutRecordBatch", {"DeliveryStreamName": "t-stream", "Records": [record]})):
            status, answer = firehose(operation, body)
            assert (status, answer.get("__type")) == (400, "ResourceNotFoundException"), operation
        status, answer = firehose("DeleteDeliveryStream", {"DeliveryStreamName": "t-stream"})
        assert (status, answer.get("__type")) == (400, "ResourceInUseException"), "a CREATING stream stays"
        logs = lambda target, body: json_call(f"Logs_20140328.{target}", "logs", body)
        assert logs("CreateLogGroup", {"logGroupName": "t-group"})[0] == 200
        subscription = {"logGroupName": "t-group", "filterName": "all", "filterPattern": "",
                        "destinationArn": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/t-stream", "roleArn": role}
        status, text = logs("PutSubscriptionFilter", subscription)
        assert (status, json.loads(text).get("__type")) == (400, "InvalidParameterException"), \
                         "CloudWatch Logs' test message cannot be delivered"
        assert objects() == 0, "a CREATING stream delivers nothing"

        time.sleep(self.WAIT)
        assert describe() == "ACTIVE"
        status, body = firehose("PutRecord", {"DeliveryStreamName": "t-stream", "Record": record})
        assert status == 200, body
        assert objects() == 1, "an ACTIVE stream delivers"
        assert logs("PutSubscriptionFilter", subscription)[0] == 200
        assert firehose("DeleteDeliveryStream", {"DeliveryStreamName": "t-stream"})[0] == 200

    def test_a_publishing_destination_is_pending_verification_then_publishing(self):
        region = "eu-west-3"
        status, body = rest("POST", "guardduty", "/detector", {"enable": True}, region)
        assert status == 200, body
        detector = body["detectorId"]
        service = {"Service": "guardduty.amazonaws.com"}
        bucket_policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": service, "Action": ["s3:PutObject", "s3:GetBucketLocation"],
             "Resource": ["arn:aws:s3:::t-findings", "arn:aws:s3:::t-findings/*"]}]}
        admin = auth("testing", "s3")
        assert call("PUT", "/t-findings", admin)[0] == 200
        assert call("PUT", "/t-findings", admin, json.dumps(bucket_policy), query="policy")[0] == 200
        key_policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": service, "Action": "kms:GenerateDataKey", "Resource": "*"}]}
        headers = dict(auth("testing", "kms", region), **{"Content-Type": "application/x-amz-json-1.1",
                                                         "X-Amz-Target": "TrentService.CreateKey"})
        status, text = call("POST", "/", headers, json.dumps({"Policy": json.dumps(key_policy)}))
        assert status == 200, text
        key = json.loads(text)["KeyMetadata"]["Arn"]
        status, body = rest("POST", "guardduty", f"/detector/{detector}/publishingDestination", {
            "destinationType": "S3",
            "destinationProperties": {"destinationArn": "arn:aws:s3:::t-findings/guardduty", "kmsKeyArn": key}}, region)
        assert status == 200, body
        destination = body["destinationId"]

        def statuses():
            listed = rest("GET", "guardduty", f"/detector/{detector}/publishingDestination", region=region)[1]
            described = rest("GET", "guardduty", f"/detector/{detector}/publishingDestination/{destination}", region=region)[1]
            return [d["status"] for d in listed["destinations"]], described["status"], described["publishingFailureStartTimestamp"]

        assert statuses() == (["PENDING_VERIFICATION"], "PENDING_VERIFICATION", 0), \
                         "List and Describe agree; nothing has failed yet"
        time.sleep(self.WAIT)
        assert statuses() == (["PUBLISHING"], "PUBLISHING", 0)
        # Once verified, the status is what GuardDuty finds: a bucket policy that refuses it.
        assert call("DELETE", "/t-findings", admin, query="policy")[0] == 204
        assert statuses()[1] == "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
        assert rest("DELETE", "guardduty", f"/detector/{detector}/publishingDestination/{destination}",
                              region=region)[0] == 200
