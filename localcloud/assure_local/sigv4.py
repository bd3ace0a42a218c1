"""Verification of a request's signature, as AWS verifies it: the local cloud recomputes the
signature from the request it received and the secret access key of the key that signed it.

Signature Version 4, in the Authorization header and in the query string (a presigned URL):
- the canonical request, string to sign and signing key of "Create a signed AWS API request"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html) and
  "Elements of an AWS API request signature"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-signing-elements.html);
- S3's variants: "Authenticating Requests: Using the Authorization Header"
  (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html), "Authenticating
  Requests: Using Query Parameters" (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html)
  and, for chunked uploads, "Signature Calculations for the Authorization Header: Transferring
  Payload in Multiple Chunks" (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html).

The canonical request is built from what the server received, not from what moto or werkzeug made of
it: the path and query string as sent (werkzeug's RAW_URI / REQUEST_URI, not the decoded PATH_INFO),
the signed headers' values as sent (trimmed, sequential spaces collapsed), the body's bytes.
- The canonical URI: S3 uses the path as sent, neither normalized nor encoded again ("Amazon S3 does
  not normalize the path" and each segment is encoded once); every other service normalizes it
  (RFC 3986 dot segments, empty segments) and encodes it again, so that each segment of the path is
  URI-encoded twice ("Each path segment must be URI-encoded twice (except for Amazon S3 which only
  gets URI-encoded once)"). botocore (SigV4Auth vs S3SigV4Auth) and the AWS SDK for Rust
  (aws-sigv4: PercentEncodingMode::Double and UriPathNormalizationMode::Enabled but for S3) do the same.
- The canonical query string: every parameter (a presigned URL's but X-Amz-Signature), its name and
  value URI-encoded (unreserved characters kept), sorted by name then value; a parameter without a
  value has an empty one.
- The payload hash: the x-amz-content-sha256 header's value when the request has one (S3 requires
  it: a hash, UNSIGNED-PAYLOAD, or one of the STREAMING-… values, whose seed signature covers the
  header's value as given; the chunks' own signatures are not checked), UNSIGNED-PAYLOAD for an S3
  presigned URL, the SHA-256 of the body otherwise. A hash in the header must be the body's: S3 answers
  XAmzContentSHA256Mismatch otherwise.
- The time: X-Amz-Date (or the Date header). A request signed more than 15 minutes away from the
  server's clock is refused (S3: RequestTimeTooSkewed; others: "Signature expired" /
  "Signature not yet current"); a presigned URL past X-Amz-Expires (at most 604800 seconds) is
  refused with AccessDenied, "Request has expired".

Clients differ in small ways the specification leaves open (botocore signs a presigned URL's query
string as it is written, the Rust SDK decodes `+` as a space; botocore collapses every kind of white
space in a header's value, the Rust SDK only spaces). When the canonical request as the
specification writes it does not match, those readings are tried too: each still needs the secret.

S3's Signature Version 2 (`Authorization: AWS AKID:signature`, or a URL with AWSAccessKeyId,
Expires and Signature) is verified as "Signing and authenticating REST requests" describes it
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html): HMAC-SHA1 of the
method, Content-MD5, Content-Type, Date (a URL's Expires), the x-amz- headers and the resource
(path and sub-resources).

Signing keys are derived once per (secret, date, region, service) and remembered: the server signs
thousands of requests a test on two cores.
"""

from __future__ import annotations

import base64
import calendar
import datetime
import functools
import hashlib
import hmac
import re
import time
from dataclasses import dataclass, field
from urllib.parse import SplitResult, quote, unquote, unquote_plus, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = 15 * 60
MAX_EXPIRES = 604800
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
ISO_BASIC = "%Y%m%dT%H%M%SZ"
ISO_BASIC_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")

MISMATCH_S3 = ("The request signature we calculated does not match the signature you provided. "
               "Check your key and signing method.")
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


@dataclass
class Failure:
    """Why a request's signature is refused. `kind`:
    - "signature": it does not match (SignatureDoesNotMatch; JSON services InvalidSignatureException);
    - "skewed": signed more than 15 minutes from now (S3 RequestTimeTooSkewed; others the signature
      error, "Signature expired: …");
    - "expired": a presigned URL past its expiry, or not valid yet (S3 AccessDenied);
    - "malformed": the signature's parts are missing or invalid (S3 AuthorizationHeaderMalformed or
      AuthorizationQueryParametersError; others IncompleteSignature);
    - "payload": x-amz-content-sha256 is not the body's hash (S3 XAmzContentSHA256Mismatch);
    - "denied": S3's AccessDenied for a Version 2 request without a date.
    `extra`: the elements S3 adds to its error document."""

    kind: str
    message: str
    presigned: bool = False
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# Pieces


@functools.lru_cache(maxsize=4096)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def uri_encode(data: bytes | str, keep_slash: bool = False) -> str:
    """URI-encode every byte but the unreserved characters (A-Z a-z 0-9 - _ . ~), hex in upper case."""
    return quote(data, safe="/~" if keep_slash else "~")


def remove_dot_segments(path: str) -> str:
    """RFC 3986's "Remove Dot Segments", also dropping empty segments (AWS removes consecutive
    slashes), as botocore's and the Rust SDK's normalization do."""
    if not path:
        return "/"
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
        else:
            out.append(seg)
    result = "/" + "/".join(out)
    if path.endswith("/") and out:
        result += "/"
    return result


def raw_target(environ: dict) -> tuple[str, str]:
    """(path, query string) exactly as the request line had them: the path from RAW_URI (or
    REQUEST_URI; PATH_INFO is decoded), the query string from QUERY_STRING, which WSGI leaves as sent
    (werkzeug's test client leaves it out of RAW_URI)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        return quote(to_bytes(environ.get("PATH_INFO", "") or "/"), safe="/~!$&'()*+,;=:@"), environ.get("QUERY_STRING", "")
    path, query = split_target(raw)
    return path, environ.get("QUERY_STRING", query)


def split_target(raw: str) -> tuple[str, str]:
    raw = raw.partition("#")[0]
    if "://" in raw.partition("?")[0]:
        # The absolute form (`GET http://host/path HTTP/1.1`): the path starts after the authority.
        rest = raw.split("://", 1)[1]
        slash, question = rest.find("/"), rest.find("?")
        if slash < 0 or (0 <= question < slash):
            raw = "/" + rest[question:] if question >= 0 else "/"
        else:
            raw = rest[slash:]
    path, _, query = raw.partition("?")
    return path or "/", query


def query_pairs(query: str) -> list[tuple[str, str]]:
    """The raw (name, value) pairs of a query string, in order; `name` alone has an empty value."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def params(query: str) -> dict[str, str]:
    """A query string's parameters, decoded (`+` kept: AWS's own encoding writes a space %20)."""
    return {unquote(k): unquote(v) for k, v in query_pairs(query)}


def header(environ: dict, name: str) -> str | None:
    """A header's value as received (werkzeug joins repeated headers with commas)."""
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + name.upper().replace("-", "_"))


def trim_spaces(value: str) -> str:
    """Trimall as the specification writes it (and the Rust SDK does): leading and trailing spaces
    removed, sequential spaces made one."""
    return re.sub(" {2,}", " ", value.strip(" "))


def trim_whitespace(value: str) -> str:
    """botocore's reading: every run of white space made one space."""
    return " ".join(value.split())


def to_bytes(text: str) -> bytes:
    """WSGI strings hold the bytes received as Latin-1 characters."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def iso(ts: float) -> str:
    return time.strftime(ISO_BASIC, time.gmtime(ts))


def parse_iso(value: str) -> float | None:
    """`YYYYMMDDTHHMMSSZ` as a timestamp (not time.strptime, whose first calls race in threads)."""
    m = ISO_BASIC_RE.match(value or "")
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def same(mine: str, provided: str) -> bool:
    """A constant-time comparison of two signatures (the provided one may hold any character)."""
    return hmac.compare_digest(mine.encode(), provided.encode("utf-8", "replace"))


def parse_http_date(value: str) -> float | None:
    from email.utils import parsedate_to_datetime

    try:
        d = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.UTC)
    return d.timestamp()


# ---------------------------------------------------------------------------------------------------
# Signature Version 4


@dataclass
class SigV4:
    """The signature a request carries, and where."""

    key: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    timestamp: str
    presigned: bool
    expires: int | None = None


def parse_v4(environ: dict) -> SigV4 | Failure | None:
    """The request's Signature Version 4 (None: it has none)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.startswith(ALGORITHM):
        fields: dict[str, str] = {}
        for part in auth[len(ALGORITHM):].split(","):
            name, eq, value = part.strip().partition("=")
            if eq:
                fields[name.strip()] = value.strip()
        missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in fields]
        if missing:
            return Failure("malformed", "Authorization header requires " + ", ".join(f"'{n}'" for n in missing)
                           + f" parameter. Authorization={auth}")
        scope = fields["Credential"].split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return Failure("malformed", "Authorization header is malformed; the Credential is mal-formed; "
                           f"expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\". Credential={fields['Credential']}")
        timestamp = environ.get("HTTP_X_AMZ_DATE")
        if timestamp is None and environ.get("HTTP_DATE"):
            when = parse_http_date(environ["HTTP_DATE"])
            timestamp = iso(when) if when is not None else None
        if not timestamp or parse_iso(timestamp) is None:
            return Failure("malformed", "Authorization header requires existence of either a 'X-Amz-Date' or a "
                           "'Date' header.")
        return SigV4(scope[0], scope[1], scope[2], scope[3], fields["SignedHeaders"].lower().split(";"),
                     fields["Signature"].lower(), timestamp, False)
    query = raw_target(environ)[1]
    if "X-Amz-Credential" not in query and "X-Amz-Signature" not in query:
        return None
    q = params(query)
    if q.get("X-Amz-Algorithm") != ALGORITHM:
        return Failure("malformed", "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"", presigned=True)
    missing = [n for n in ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date")
               if n not in q]
    if missing:
        return Failure("malformed", "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                       "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires "
                       "parameters.", presigned=True)
    scope = q["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return Failure("malformed", "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
                       "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".", presigned=True)
    if parse_iso(q["X-Amz-Date"]) is None:
        return Failure("malformed", "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
                       presigned=True)
    expires = None
    if "X-Amz-Expires" in q:
        try:
            expires = int(q["X-Amz-Expires"])
        except ValueError:
            return Failure("malformed", "X-Amz-Expires should be a number", presigned=True)
        if expires < 0:
            return Failure("malformed", "X-Amz-Expires must be non-negative", presigned=True)
        if expires > MAX_EXPIRES:
            return Failure("malformed", f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES}",
                           presigned=True)
    return SigV4(scope[0], scope[1], scope[2], scope[3], q["X-Amz-SignedHeaders"].lower().split(";"),
                 q["X-Amz-Signature"].lower(), q["X-Amz-Date"], True, expires)


def canonical_uris(path: str, service: str) -> list[str]:
    """The canonical URI: the specification's reading first."""
    if service == "s3":
        # As sent; and, for a client that left a reserved character unencoded, as S3 would encode it.
        return unique([path or "/", uri_encode(unquote_to_bytes(path or "/"), keep_slash=True)])
    normalized = remove_dot_segments(path)
    return unique([uri_encode(normalized, keep_slash=True),
                   uri_encode(uri_encode(unquote_to_bytes(normalized), keep_slash=True), keep_slash=True)])


def canonical_queries(query: str, presigned: bool) -> list[str]:
    pairs = [(k, v) for k, v in query_pairs(query) if not (presigned and unquote(k) == "X-Amz-Signature")]
    spec = sorted((uri_encode(unquote_to_bytes(k)), uri_encode(unquote_to_bytes(v))) for k, v in pairs)
    variants = [spec, sorted(pairs)]
    if "+" in query:
        variants.append(sorted((uri_encode(unquote_plus(k)), uri_encode(unquote_plus(v))) for k, v in pairs))
    return unique(["&".join(f"{k}={v}" for k, v in pairs) for pairs in variants])


def canonical_headers(environ: dict, names: list[str]) -> list[str]:
    values = [(n, header(environ, n)) for n in names]
    spaces = "".join(f"{n}:{trim_spaces(v or '')}\n" for n, v in values)
    whitespace = "".join(f"{n}:{trim_whitespace(v or '')}\n" for n, v in values)
    return unique([spaces, whitespace])


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def verify_v4(environ: dict, body: bytes | None, secret: str, sig: SigV4, now: float) -> Failure | None:
    presigned = sig.presigned
    signed_at = parse_iso(sig.timestamp)
    assert signed_at is not None
    s3 = sig.service == "s3"
    # The time first: a request signed too long ago (or ahead) is refused whatever its signature.
    if presigned:
        if sig.expires is not None and now > signed_at + sig.expires:
            return Failure("expired", "Request has expired", True, {
                "X-Amz-Expires": str(sig.expires),
                "Expires": datetime.datetime.fromtimestamp(signed_at + sig.expires, datetime.UTC)
                .strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        if signed_at > now + MAX_SKEW:
            return Failure("expired", "Request is not valid yet", True)
    elif abs(now - signed_at) > MAX_SKEW:
        if s3:
            return Failure("skewed", "The difference between the request time and the current time is too large.",
                           False, {"RequestTime": sig.timestamp, "ServerTime": datetime.datetime.fromtimestamp(
                               now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "MaxAllowedSkewMilliseconds": str(MAX_SKEW * 1000)})
        if signed_at < now:
            return Failure("skewed", f"Signature expired: {sig.timestamp} is now earlier than "
                           f"{iso(now - MAX_SKEW)} ({iso(now)} - 15 min.)")
        return Failure("skewed", f"Signature not yet current: {sig.timestamp} is still later than "
                       f"{iso(now + MAX_SKEW)} ({iso(now)} + 15 min.)")
    if sig.date != sig.timestamp[:8]:
        if s3:
            return Failure("malformed", "Invalid credential date. Date is not the same as X-Amz-Date.", presigned)
        return Failure("signature", f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                       f"from HTTP: '{sig.date}' != '{sig.timestamp[:8]}', from '{sig.timestamp}'.", presigned)
    if "host" not in sig.signed_headers:
        return Failure("malformed", "Query-string authentication requires the Host header to be signed." if presigned
                       else "The Authorization header must sign the Host header.", presigned)

    # The payload's hash.
    declared = header(environ, "x-amz-content-sha256")
    if declared is not None:
        payload = declared
        if body is not None and HEX64.match(declared) and hashlib.sha256(body).hexdigest() != declared.lower():
            if s3:
                return Failure("payload", "The provided 'x-amz-content-sha256' header does not match what was computed.",
                               presigned, {"ClientComputedContentSHA256": declared,
                                           "S3ComputedContentSHA256": hashlib.sha256(body).hexdigest()})
            # Elsewhere the body's own hash is what the signature covers.
            payload = hashlib.sha256(body).hexdigest()
    elif presigned and s3:
        payload = UNSIGNED_PAYLOAD
    else:
        payload = hashlib.sha256(body or b"").hexdigest()

    method = environ.get("REQUEST_METHOD", "GET").upper()
    path, query = raw_target(environ)
    names = sorted(set(sig.signed_headers))
    signed = ";".join(sig.signed_headers)
    scope = f"{sig.date}/{sig.region}/{sig.service}/aws4_request"
    key = signing_key(secret, sig.date, sig.region, sig.service)
    first: tuple[str, str] | None = None
    uris, queries = canonical_uris(path, sig.service), canonical_queries(query, presigned)
    for headers in canonical_headers(environ, names):
        for uri in uris:
            for q in queries:
                creq = f"{method}\n{uri}\n{q}\n{headers}\n{signed}\n{payload}"
                sts = "\n".join([ALGORITHM, sig.timestamp, scope, hashlib.sha256(to_bytes(creq)).hexdigest()])
                mine = hmac.new(key, sts.encode("utf-8"), hashlib.sha256).hexdigest()
                if same(mine, sig.signature):
                    return None
                if first is None:
                    first = (creq, sts)
    assert first is not None
    creq, sts = first
    if s3:
        return Failure("signature", MISMATCH_S3, presigned, {
            "AWSAccessKeyId": sig.key, "StringToSign": sts, "SignatureProvided": sig.signature,
            "CanonicalRequest": creq})
    # As AWS's own answers do (services on the query and JSON protocols), the message tells what the
    # canonical request and the string to sign should have been.
    return Failure("signature", f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{creq}'\n\n"
                   f"The String-to-Sign should have been\n'{sts}'\n", presigned)


# ---------------------------------------------------------------------------------------------------
# S3's Signature Version 2


def verify_v2(environ: dict, secret: str, now: float) -> Failure | None:
    from botocore.auth import HmacV1Auth

    auth = environ.get("HTTP_AUTHORIZATION", "")
    path, query = raw_target(environ)
    q = params(query)
    amz = {}
    # moto's request handler keeps headers whose names have underscores (S3 metadata), and their names.
    preserved = environ.get("moto.preserved_header_names") or {}
    for name, value in environ.items():
        if name.startswith("HTTP_X_AMZ_"):
            amz[str(preserved.get(name) or name[5:].replace("_", "-")).lower()] = trim_whitespace(value)
    if auth.startswith("AWS "):
        presigned = False
        provided = auth[4:].rpartition(":")[2].strip()
        when_text = environ.get("HTTP_X_AMZ_DATE") or environ.get("HTTP_DATE")
        when = parse_http_date(when_text) if when_text else None
        if when is None:
            return Failure("denied", "AWS authentication requires a valid Date or x-amz-date header")
        if abs(now - when) > MAX_SKEW:
            return Failure("skewed", "The difference between the request time and the current time is too large.",
                           False, {"RequestTime": when_text, "ServerTime": datetime.datetime.fromtimestamp(
                               now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "MaxAllowedSkewMilliseconds": str(MAX_SKEW * 1000)})
        # With x-amz-date, the Date line may be empty (the x-amz-date header is signed with the others).
        dates = unique([environ.get("HTTP_DATE", "")] + ([""] if environ.get("HTTP_X_AMZ_DATE") else []))
        md5, ctype = environ.get("HTTP_CONTENT_MD5", ""), environ.get("CONTENT_TYPE", "")
    else:
        presigned = True
        provided = q.get("Signature", "")
        try:
            expires = int(q.get("Expires", ""))
        except ValueError:
            return Failure("malformed", "Query-string authentication requires the Signature, Expires and "
                           "AWSAccessKeyId parameters", True)
        if now > expires:
            return Failure("expired", "Request has expired", True, {
                "Expires": datetime.datetime.fromtimestamp(expires, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        dates = [str(expires)]
        # A presigned URL carries the headers it was signed with as parameters.
        for name, value in q.items():
            if name.lower().startswith("x-amz-"):
                amz.setdefault(name.lower(), value.strip())
        md5 = q.get("content-md5", environ.get("HTTP_CONTENT_MD5", ""))
        ctype = q.get("content-type", environ.get("CONTENT_TYPE", ""))

    resource = HmacV1Auth(None).canonical_resource(SplitResult("", "", path, query, ""))
    custom = "".join(f"{k}:{amz[k]}\n" for k in sorted(amz))
    method = environ.get("REQUEST_METHOD", "GET").upper()
    first = None
    for date in dates:
        sts = f"{method}\n{md5.strip()}\n{ctype.strip()}\n{date}\n{custom}{resource}"
        mine = base64.b64encode(hmac.new(secret.encode("utf-8"), to_bytes(sts), hashlib.sha1).digest()).decode()
        if same(mine, provided):
            return None
        first = first or sts
    key = auth[4:].rpartition(":")[0] if not presigned else q.get("AWSAccessKeyId", "")
    return Failure("signature", MISMATCH_S3, presigned, {"AWSAccessKeyId": key, "StringToSign": first,
                                                           "SignatureProvided": provided})


# ---------------------------------------------------------------------------------------------------


def verify(environ: dict, body: bytes | None, secret: str, now: float | None = None) -> Failure | None:
    """None when the request's signature is the one `secret` makes of the request as received (and
    is within its time), else why not. `body`: the request's bytes (None: not known, a chunked
    transfer; a hash in x-amz-content-sha256 is then taken as given)."""
    now = time.time() if now is None else now
    v4 = parse_v4(environ)
    if isinstance(v4, Failure):
        return v4
    if v4 is not None:
        return verify_v4(environ, body, secret, v4, now)
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth.startswith("AWS ") or "AWSAccessKeyId" in raw_target(environ)[1]:
        return verify_v2(environ, secret, now)
    return Failure("malformed", "The request carries no signature this server can read.")
