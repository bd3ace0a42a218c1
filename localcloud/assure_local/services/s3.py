"""Amazon S3: answers whose XML root moto names differently from AWS."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from assure_local.aws_request import Req
from assure_local.core import replace
from assure_local.deliver_services import install, mine
from assure_local.rules import Refusal, missing_principal

# S3 answers whose XML root moto names differently from AWS: (query, moto's root, AWS's root).
S3_ROOTS = [("versioning", b"GetBucketVersioningResponse", b"VersioningConfiguration")]


def fix_s3_root(environ: dict, chunks: list[bytes]) -> list[bytes]:
    if environ.get("REQUEST_METHOD") != "GET":
        return chunks
    query = environ.get("QUERY_STRING", "")
    for q, wrong, right in S3_ROOTS:
        if query == q:
            body = b"".join(chunks)
            return [body.replace(b"<" + wrong, b"<" + right, 1).replace(b"</" + wrong + b">", b"</" + right + b">", 1)]
    return chunks


def patch_moto() -> None:
    """S3: log delivery's check of a target bucket's policy."""
    # S3: moto's check that a log target bucket admits S3's log delivery crashes (HTTP 500) on any
    # statement whose Principal is the string "*", such as a TLS-only deny. AWS accepts those.
    import types

    from moto.s3 import models as s3

    original = s3.FakeBucket._log_permissions_enabled_policy

    def log_permissions(target_bucket, target_prefix):
        if not target_bucket.policy:
            return False
        doc = json.loads(target_bucket.policy.decode())
        kept = [st for st in doc.get("Statement", []) if isinstance(st.get("Principal"), dict)]
        view = types.SimpleNamespace(policy=json.dumps({"Statement": kept}).encode(),
                                     partition=target_bucket.partition, name=target_bucket.name)
        return original(view, target_prefix)  # type: ignore[arg-type]  # reads only these three attributes

    replace(s3.FakeBucket, "_log_permissions_enabled_policy", staticmethod(log_permissions))


def s3_bucket_policy(req: Req, account: str, raw: bytes) -> Refusal | None:
    # PutBucketPolicy: "Invalid principal in policy" when a principal it names does not exist (or was
    # deleted): https://repost.aws/knowledge-center/s3-invalid-principal-in-policy-error
    # (API: https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketPolicy.html, error MalformedPolicy).
    bucket, _, key = unquote(req.path).lstrip("/").partition("/")
    if req.service != "s3" or req.method != "PUT" or "policy" not in (req.query or {}) or not bucket or key:
        return None
    if missing_principal(raw.decode(errors="replace")):
        return Refusal(400, "MalformedPolicy", "Invalid principal in policy")
    return None


def s3_expected_bucket_owner(req: Req, account: str, raw: bytes) -> Refusal | None:
    # The bucket owner condition: "If the bucket is owned by a different account, the request fails
    # with an HTTP 403 (Access Denied) error", for every bucket and object operation that carries
    # x-amz-expected-bucket-owner, and, for the source of a copy, x-amz-source-expected-bucket-owner
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-owner-condition.html). A value that
    # is not an account ID: 400 InvalidBucketOwnerAWSAccountID
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList).
    if req.service != "s3":
        return None
    headers = req.headers or {}
    checks = []
    bucket = unquote(req.path).lstrip("/").partition("/")[0]
    if bucket and "x-amz-expected-bucket-owner" in headers:
        checks.append((bucket, headers["x-amz-expected-bucket-owner"]))
    source = headers.get("x-amz-copy-source")
    if source and "x-amz-source-expected-bucket-owner" in headers:
        checks.append((unquote(source).lstrip("/").partition("/")[0], headers["x-amz-source-expected-bucket-owner"]))
    if not checks:
        return None
    from moto.s3.models import s3_backends

    for name, expected in checks:
        expected = expected.strip()
        if not re.fullmatch(r"\d{12}", expected):
            return Refusal(400, "InvalidBucketOwnerAWSAccountID",
                           "The value of the expected bucket owner parameter must be an AWS Account ID...")
        owner = s3_backends.bucket_accounts.get(name)
        if owner is not None and owner[1] != expected:
            return Refusal(403, "AccessDenied", "Access Denied")
    return None


def patch_s3_bucket_policy() -> None:
    """moto evaluates a bucket's policy itself before it serves an object (FakeBucket.get_permission):
    it matches no Principal but "*", reads no request context, and turns any statement whose Condition
    it cannot satisfy into a deny, even an Allow. So the policies the delivering services' guides give
    (GuardDuty's "Deny non-HTTPS access", conditioned on aws:SecureTransport) refused every read of
    the objects delivered. While IAM is enforced the extension has already authorized the request
    against the whole policy (authz.authorize, as S3 does:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-auth-workflow-object-operation.html),
    the anonymous user's requests included (Extension.unsigned), so moto's second, cruder evaluation
    answers "permitted" (what reaches moto was allowed). Without enforcement (`--no-iam`) nothing is
    authorized, bucket policies included: moto's evaluation would refuse every read of a TLS-only
    bucket (the pipeline's artifacts and checkpoints), which AWS never does over TLS."""
    from moto.iam.access_control import PermissionResult
    from moto.s3 import models as s3_models

    original = s3_models.FakeBucket.get_permission
    if mine(original):
        return

    def get_permission(self, action, resource):
        del self, action, resource
        return PermissionResult.PERMITTED

    install(s3_models.FakeBucket, "get_permission", get_permission)
