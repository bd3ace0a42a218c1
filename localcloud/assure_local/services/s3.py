"""Amazon S3: answers whose XML root moto names differently from AWS."""

from __future__ import annotations

import json

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

    def log_permissions(target_bucket, target_prefix):  # type: ignore[no-untyped-def]
        if not target_bucket.policy:
            return False
        doc = json.loads(target_bucket.policy.decode())
        kept = [st for st in doc.get("Statement", []) if isinstance(st.get("Principal"), dict)]
        view = types.SimpleNamespace(policy=json.dumps({"Statement": kept}).encode(),
                                     partition=target_bucket.partition, name=target_bucket.name)
        return original(view, target_prefix)

    s3.FakeBucket._log_permissions_enabled_policy = staticmethod(log_permissions)
