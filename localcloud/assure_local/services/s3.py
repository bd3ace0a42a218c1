"""Amazon S3: answers whose XML root moto names differently from AWS."""

from __future__ import annotations

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
