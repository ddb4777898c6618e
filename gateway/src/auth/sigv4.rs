//! AWS Signature Version 4 as S3 applies it: canonical request, signing key, and verification
//! of the `Authorization` header and of presigned URLs, with the errors AWS returns.

use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::context::{CONTENT_SHA256, KeyOwner, SecretStore};
use crate::error::{ErrorCode, S3Error, S3Result};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const ECDSA_ALGORITHM: &str = "AWS4-ECDSA-P256-SHA256";
const SERVICE: &str = "s3";
const TERMINATOR: &str = "aws4_request";
const MAX_SKEW: Duration = Duration::minutes(15);
const MAX_EXPIRES_SECS: i64 = 604_800;

const AMZ_DATE_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const ISO_8601_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// RFC 3986 unreserved characters stay; everything else is %XX (uppercase), as SigV4 requires.
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The parts of a request that the signature covers.
pub(super) struct Request<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub query: &'a Query,
}

/// A verified signature and what chunk signing chains from.
pub(super) struct Signed {
    pub access_key: String,
    pub user: String,
    pub signing_key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
    pub signature: String,
}

/// Query parameters, percent-decoded (`+` as space, as form-style clients send it).
pub(super) struct Query {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Query {
    pub fn parse(raw: &str) -> Self {
        let pairs = raw
            .split('&')
            .filter(|param| !param.is_empty())
            .map(|param| {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                (decode_query_component(name), decode_query_component(value))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `name`, if present and UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name.as_bytes())
    }

    pub fn is_presigned(&self) -> bool {
        ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature"]
            .iter()
            .any(|name| self.has(name))
    }

    /// SigV2 query authentication, which Kura (like new AWS regions) does not accept.
    pub fn is_presigned_v2(&self) -> bool {
        self.has("AWSAccessKeyId") && self.has("Signature")
    }

    /// Names and values re-encoded, sorted by name then value; a presigned URL's own
    /// signature is not part of what it signs.
    fn canonical(&self, presigned: bool) -> String {
        let mut encoded: Vec<(String, String)> = self
            .pairs
            .iter()
            .filter(|(name, _)| !(presigned && name == b"X-Amz-Signature"))
            .map(|(name, value)| (uri_encode(name), uri_encode(value)))
            .collect();
        encoded.sort();
        let params: Vec<String> = encoded
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        params.join("&")
    }
}

fn decode_query_component(raw: &str) -> Vec<u8> {
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes()).collect()
}

fn uri_encode(bytes: &[u8]) -> String {
    percent_encode(bytes, URI_ENCODE).to_string()
}

/// The path as clients sign it: each segment encoded once with the unreserved set. Decoding
/// first makes this independent of how much the client escaped on the wire (`!`, `$`, `(`…
/// may arrive raw or escaped) without ever double-encoding; `/` separates segments only
/// where the wire had a literal `/`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| uri_encode(&percent_decode(segment.as_bytes()).collect::<Vec<u8>>()))
        .collect();
    segments.join("/")
}

/// `name:value\n` for each signed header: values trimmed, inner whitespace runs collapsed,
/// repeated headers joined with `,`.
fn canonical_headers(request: &Request<'_>, signed: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values: Vec<&[u8]> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|value| value.as_bytes())
            .collect();
        // HTTP/2 carries the host in the :authority pseudo-header, which hyper puts in the URI.
        if values.is_empty() && name == "host" {
            values.extend(request.uri.authority().map(|a| a.as_str().as_bytes()));
        }
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_collapsed(&mut out, value);
        }
        out.push(b'\n');
    }
    out
}

fn push_collapsed(out: &mut Vec<u8>, value: &[u8]) {
    let words = value
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|word| !word.is_empty());
    for (i, word) in words.enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
}

fn canonical_request(
    request: &Request<'_>,
    signed: &[String],
    payload_hash: &str,
    presigned: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for line in [
        request.method.as_str(),
        &canonical_uri(request.uri.path()),
        &request.query.canonical(presigned),
    ] {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.extend(canonical_headers(request, signed));
    out.push(b'\n');
    out.extend_from_slice(signed.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

pub(super) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub(super) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(super) fn signing_key(secret: &str, date: &str, region: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, SERVICE.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Constant-time comparison of a computed lowercase hex signature with the client's.
pub(super) fn signatures_match(expected: &str, provided: &str) -> bool {
    let provided = provided.to_ascii_lowercase();
    expected.as_bytes().ct_eq(provided.as_bytes()).into()
}

/// Which flavour of SigV4 a request uses; AWS words the same mistakes differently for each.
#[derive(Clone, Copy)]
enum Kind {
    Header,
    Query,
    Form,
}

impl Kind {
    fn malformed(self, detail: &str) -> S3Error {
        match self {
            Kind::Header => S3Error::new(
                ErrorCode::AuthorizationHeaderMalformed,
                format!("The authorization header is malformed; {detail}"),
            ),
            Kind::Query => S3Error::new(
                ErrorCode::AuthorizationQueryParametersError,
                format!("Error parsing the X-Amz-Credential parameter; {detail}"),
            ),
            Kind::Form => S3Error::new(
                ErrorCode::InvalidArgument,
                format!("The form's x-amz-credential is not valid; {detail}"),
            )
            .with("ArgumentName", "x-amz-credential"),
        }
    }
}

fn query_error(message: &str) -> S3Error {
    S3Error::new(ErrorCode::AuthorizationQueryParametersError, message)
}

fn sigv4a_not_implemented() -> S3Error {
    S3Error::new(
        ErrorCode::NotImplemented,
        "SigV4a (AWS4-ECDSA-P256-SHA256) signatures are not supported.",
    )
}

/// `<access key>/<yyyymmdd>/<region>/s3/aws4_request`
struct Credential<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
}

impl<'a> Credential<'a> {
    fn parse(value: &'a str, kind: Kind) -> S3Result<Self> {
        let malformed = || {
            kind.malformed(
                "the Credential is mal-formed; expecting \
                 \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
            )
        };
        let mut parts = value.rsplitn(5, '/');
        let (Some(terminator), Some(service), Some(region), Some(date), Some(access_key)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed());
        };
        let date_ok = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
        if access_key.is_empty() || region.is_empty() || !date_ok {
            return Err(malformed());
        }
        Ok(Credential {
            access_key,
            date,
            region,
            service,
            terminator,
        })
    }

    fn check(&self, region: &str, amz_date: &str, kind: Kind) -> S3Result<()> {
        if self.region != region {
            let detail = format!(
                "the region '{}' is wrong; expecting '{region}'",
                self.region
            );
            return Err(kind.malformed(&detail).with("Region", region));
        }
        if self.service != SERVICE {
            let detail = format!(
                "incorrect service \"{}\". This endpoint belongs to \"{SERVICE}\".",
                self.service
            );
            return Err(kind.malformed(&detail));
        }
        if self.terminator != TERMINATOR {
            let detail = format!(
                "incorrect terminal \"{}\". This endpoint uses \"{TERMINATOR}\".",
                self.terminator
            );
            return Err(kind.malformed(&detail));
        }
        if !amz_date.starts_with(self.date) {
            return Err(
                kind.malformed("Invalid credential date. Date is not the same as X-Amz-Date.")
            );
        }
        Ok(())
    }

    fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }
}

fn parse_amz_date(value: &str) -> Option<OffsetDateTime> {
    // The format alone would also accept signed or wider years.
    if value.len() != 16 || !value.is_ascii() {
        return None;
    }
    PrimitiveDateTime::parse(value, AMZ_DATE_FORMAT)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

fn format_time(time: OffsetDateTime, format: &[BorrowedFormatItem<'_>]) -> String {
    time.format(format).unwrap_or_default()
}

/// The request time from `x-amz-date`, else `Date`, and its `yyyymmddThhmmssZ` form.
fn header_request_time(headers: &HeaderMap) -> S3Result<(String, OffsetDateTime)> {
    let invalid = || {
        S3Error::new(
            ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    };
    if let Some(value) = headers.get("x-amz-date") {
        let text = value.to_str().map_err(|_| invalid())?;
        let time = parse_amz_date(text).ok_or_else(invalid)?;
        return Ok((text.to_owned(), time));
    }
    let text = headers
        .get(http::header::DATE)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(invalid)?;
    let time = OffsetDateTime::from(httpdate::parse_http_date(text).map_err(|_| invalid())?);
    Ok((format_time(time, AMZ_DATE_FORMAT), time))
}

pub(super) fn check_skew(
    amz_date: &str,
    time: OffsetDateTime,
    now: OffsetDateTime,
) -> S3Result<()> {
    if (time - now).abs() <= MAX_SKEW {
        return Ok(());
    }
    Err(S3Error::from(ErrorCode::RequestTimeTooSkewed)
        .with("RequestTime", amz_date)
        .with("ServerTime", format_time(now, ISO_8601_FORMAT))
        .with(
            "MaxAllowedSkewMilliseconds",
            MAX_SKEW.whole_milliseconds().to_string(),
        ))
}

fn parse_signed_headers(list: &str, kind: Kind) -> S3Result<Vec<String>> {
    let names: Vec<String> = list
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if names.iter().any(String::is_empty) {
        return Err(kind.malformed("the SignedHeaders list is malformed."));
    }
    Ok(names)
}

/// AWS refuses requests carrying `x-amz-*` headers the signature does not cover (they change
/// what the request does), and the host must always be signed.
fn check_all_signed(headers: &HeaderMap, signed: &[String]) -> S3Result<()> {
    let is_signed = |name: &str| signed.iter().any(|s| s == name);
    let mut unsigned: Vec<&str> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("x-amz-") && *name != CONTENT_SHA256 && !is_signed(name))
        .collect();
    if !is_signed("host") {
        unsigned.insert(0, "host");
    }
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(S3Error::new(
        ErrorCode::AccessDenied,
        "There were headers present in the request which were not signed",
    )
    .with("HeadersNotSigned", unsigned.join(", ")))
}

pub(super) fn lookup(secrets: &dyn SecretStore, access_key: &str) -> S3Result<KeyOwner> {
    secrets.lookup(access_key).ok_or_else(|| {
        S3Error::from(ErrorCode::InvalidAccessKeyId).with("AWSAccessKeyId", access_key)
    })
}

/// Everything the final signature comparison needs.
struct Claim<'a> {
    credential: Credential<'a>,
    amz_date: &'a str,
    signed_headers: &'a [String],
    payload_hash: &'a str,
    signature: &'a str,
    presigned: bool,
}

fn check_signature(request: &Request<'_>, claim: Claim<'_>, owner: KeyOwner) -> S3Result<Signed> {
    let canonical = canonical_request(
        request,
        claim.signed_headers,
        claim.payload_hash,
        claim.presigned,
    );
    let scope = claim.credential.scope();
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        claim.amz_date,
        sha256_hex(&canonical)
    );
    let key = signing_key(
        &owner.secret,
        claim.credential.date,
        claim.credential.region,
    );
    let expected = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    if !signatures_match(&expected, claim.signature) {
        // The same diagnostics AWS returns, so client authors can see what was signed.
        return Err(S3Error::from(ErrorCode::SignatureDoesNotMatch)
            .with("AWSAccessKeyId", claim.credential.access_key)
            .with("StringToSign", string_to_sign)
            .with("SignatureProvided", claim.signature)
            .with("CanonicalRequest", String::from_utf8_lossy(&canonical)));
    }
    Ok(Signed {
        access_key: claim.credential.access_key.to_owned(),
        user: owner.user,
        signing_key: key,
        amz_date: claim.amz_date.to_owned(),
        scope,
        signature: expected,
    })
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
pub(super) struct AuthorizationHeader<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> AuthorizationHeader<'a> {
    pub(super) fn parse(value: &'a str) -> S3Result<Self> {
        let value = value.trim();
        let (algorithm, params) = value.split_once(' ').unwrap_or((value, ""));
        match algorithm {
            ALGORITHM => {}
            ECDSA_ALGORITHM => return Err(sigv4a_not_implemented()),
            _ => {
                return Err(S3Error::new(
                    ErrorCode::InvalidArgument,
                    "Unsupported Authorization Type",
                )
                .with("ArgumentName", "Authorization"));
            }
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for param in params.split(',') {
            match param.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v.trim()),
                Some(("SignedHeaders", v)) => signed_headers = Some(v.trim()),
                Some(("Signature", v)) => signature = Some(v.trim()),
                _ => {}
            }
        }
        match (credential, signed_headers, signature) {
            (Some(credential), Some(signed_headers), Some(signature)) => Ok(Self {
                credential,
                signed_headers,
                signature,
            }),
            _ => Err(Kind::Header.malformed(
                "the authorization header requires three components: \
                 Credential, SignedHeaders, and Signature.",
            )),
        }
    }
}

/// Verify `Authorization` header authentication.
pub(super) fn verify_header(
    request: &Request<'_>,
    auth: &AuthorizationHeader<'_>,
    payload_hash: &str,
    secrets: &dyn SecretStore,
    region: &str,
    now: OffsetDateTime,
) -> S3Result<Signed> {
    let credential = Credential::parse(auth.credential, Kind::Header)?;
    let signed_headers = parse_signed_headers(auth.signed_headers, Kind::Header)?;
    let (amz_date, time) = header_request_time(request.headers)?;
    credential.check(region, &amz_date, Kind::Header)?;
    check_skew(&amz_date, time, now)?;
    let owner = lookup(secrets, credential.access_key)?;
    check_all_signed(request.headers, &signed_headers)?;
    let claim = Claim {
        credential,
        amz_date: &amz_date,
        signed_headers: &signed_headers,
        payload_hash,
        signature: auth.signature,
        presigned: false,
    };
    check_signature(request, claim, owner)
}

/// Verify a browser POST form's SigV4 signature: the hex HMAC of the (base64) policy
/// document under the signing key its `x-amz-credential` names. Returns the access key and
/// user.
pub(super) fn verify_form(
    credential: &str,
    amz_date: &str,
    policy: &str,
    signature: &str,
    secrets: &dyn SecretStore,
    region: &str,
) -> S3Result<(String, String)> {
    let credential = Credential::parse(credential, Kind::Form)?;
    parse_amz_date(amz_date).ok_or_else(|| {
        Kind::Form
            .malformed("x-amz-date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    credential.check(region, amz_date, Kind::Form)?;
    let owner = lookup(secrets, credential.access_key)?;
    let key = signing_key(&owner.secret, credential.date, credential.region);
    let expected = hex::encode(hmac_sha256(&key, policy.as_bytes()));
    if !signatures_match(&expected, signature) {
        return Err(S3Error::from(ErrorCode::SignatureDoesNotMatch)
            .with("AWSAccessKeyId", credential.access_key.to_owned())
            .with("StringToSign", policy.to_owned()));
    }
    Ok((credential.access_key.to_owned(), owner.user))
}

/// Verify presigned-URL (query string) authentication.
pub(super) fn verify_presigned(
    request: &Request<'_>,
    payload_hash: &str,
    secrets: &dyn SecretStore,
    region: &str,
    now: OffsetDateTime,
) -> S3Result<Signed> {
    let query = request.query;
    match query.get("X-Amz-Algorithm") {
        Some(ALGORITHM) | None => {}
        Some(ECDSA_ALGORITHM) => return Err(sigv4a_not_implemented()),
        Some(_) => {
            return Err(query_error(
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
            ));
        }
    }
    let (Some(_), Some(credential), Some(amz_date), Some(expires), Some(signed), Some(signature)) = (
        query.get("X-Amz-Algorithm"),
        query.get("X-Amz-Credential"),
        query.get("X-Amz-Date"),
        query.get("X-Amz-Expires"),
        query.get("X-Amz-SignedHeaders"),
        query.get("X-Amz-Signature"),
    ) else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, \
             X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, \
             and X-Amz-Expires parameters.",
        ));
    };
    let credential = Credential::parse(credential, Kind::Query)?;
    let time = parse_amz_date(amz_date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires = parse_expires(expires)?;
    credential.check(region, amz_date, Kind::Query)?;
    check_validity_window(time, expires, now)?;
    let owner = lookup(secrets, credential.access_key)?;
    let signed_headers = parse_signed_headers(signed, Kind::Query)?;
    check_all_signed(request.headers, &signed_headers)?;
    let claim = Claim {
        credential,
        amz_date,
        signed_headers: &signed_headers,
        payload_hash,
        signature,
        presigned: true,
    };
    check_signature(request, claim, owner)
}

fn parse_expires(value: &str) -> S3Result<i64> {
    let seconds: i64 = value
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if seconds < 0 {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    if seconds == 0 {
        return Err(query_error("X-Amz-Expires must be at least 1 second"));
    }
    if seconds > MAX_EXPIRES_SECS {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 7 days",
        ));
    }
    Ok(seconds)
}

/// A presigned URL is valid from its date (give or take the clock skew) until it expires.
fn check_validity_window(
    signed_at: OffsetDateTime,
    expires: i64,
    now: OffsetDateTime,
) -> S3Result<()> {
    if signed_at - now > MAX_SKEW {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            "Request is not valid yet",
        ));
    }
    let expiry = signed_at + Duration::seconds(expires);
    if now > expiry {
        return Err(S3Error::new(ErrorCode::AccessDenied, "Request has expired")
            .with("X-Amz-Expires", expires.to_string())
            .with("Expires", format_time(expiry, ISO_8601_FORMAT))
            .with("ServerTime", format_time(now, ISO_8601_FORMAT)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uri_encodes_each_segment_once() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/test$file.text"), "/test%24file.text");
        assert_eq!(canonical_uri("/test%24file.text"), "/test%24file.text");
        // Not normalised: empty segments, dot segments and trailing slashes are kept.
        assert_eq!(canonical_uri("/b//k/./../x/"), "/b//k/./../x/");
        // An escaped slash stays inside its segment.
        assert_eq!(canonical_uri("/b/a%2Fb"), "/b/a%2Fb");
        assert_eq!(canonical_uri("/b/a%2fb"), "/b/a%2Fb");
        // Invalid escapes are literal percent signs.
        assert_eq!(canonical_uri("/b/%zz"), "/b/%25zz");
        assert_eq!(canonical_uri("/b/100%"), "/b/100%25");
    }

    #[test]
    fn canonical_uri_is_the_same_for_raw_and_escaped_special_characters() {
        // Keys with space, +, =, unicode, ~, !, ', (, ), * — SDKs escape all but `~`.
        let escaped = "/bucket/a%20b%2Bc%3Dd~%21%27%28%29%2A%C3%BC.txt";
        assert_eq!(canonical_uri(escaped), escaped);
        assert_eq!(canonical_uri("/bucket/a%20b+c=d~!'()*%C3%BC.txt"), escaped);
        // Lowercase escapes and needlessly escaped unreserved characters normalise too.
        assert_eq!(canonical_uri("/bucket/%7e%41"), "/bucket/~A");
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        let q = Query::parse("prefix=J&max-keys=2");
        assert_eq!(q.canonical(false), "max-keys=2&prefix=J");
        // Bare names get an empty value; sorting is by encoded name, then value.
        let q = Query::parse("uploads&b=2&a=2&a=1");
        assert_eq!(q.canonical(false), "a=1&a=2&b=2&uploads=");
        let q = Query::parse("prefix=a%20b*~&z=1&%C3%A4=1");
        assert_eq!(q.canonical(false), "%C3%A4=1&prefix=a%20b%2A~&z=1");
        // `+` is a space; an escaped plus stays a plus.
        let q = Query::parse("prefix=a+b&delimiter=%2B");
        assert_eq!(q.canonical(false), "delimiter=%2B&prefix=a%20b");
        assert_eq!(q.get("prefix"), Some("a b"));
        // A presigned URL does not sign its own signature.
        let q = Query::parse("X-Amz-Signature=abc&X-Amz-Date=1");
        assert_eq!(q.canonical(true), "X-Amz-Date=1");
        assert_eq!(q.canonical(false), "X-Amz-Date=1&X-Amz-Signature=abc");
        assert_eq!(Query::parse("").canonical(false), "");
        assert_eq!(Query::parse("&&").canonical(false), "");
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.com".parse().unwrap());
        headers.append("x-amz-meta-a", "  one   two\t three ".parse().unwrap());
        headers.append("x-amz-meta-a", "four".parse().unwrap());
        let uri: Uri = "/".parse().unwrap();
        let query = Query::parse("");
        let request = Request {
            method: &Method::GET,
            uri: &uri,
            headers: &headers,
            query: &query,
        };
        let signed = [
            "host".to_owned(),
            "x-amz-meta-a".to_owned(),
            "x-amz-missing".to_owned(),
        ];
        let got = canonical_headers(&request, &signed);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "host:example.com\nx-amz-meta-a:one two three,four\nx-amz-missing:\n"
        );
    }

    #[test]
    fn host_falls_back_to_the_uri_authority() {
        let headers = HeaderMap::new();
        let uri: Uri = "http://bucket.s3.local:9000/key".parse().unwrap();
        let query = Query::parse("");
        let request = Request {
            method: &Method::GET,
            uri: &uri,
            headers: &headers,
            query: &query,
        };
        let got = canonical_headers(&request, &["host".to_owned()]);
        assert_eq!(got, b"host:bucket.s3.local:9000\n");
    }

    #[test]
    fn signing_key_matches_aws_example() {
        // From the AWS "Examples of how to derive a signing key" page.
        let key = hmac_sha256(
            &hmac_sha256(
                &hmac_sha256(
                    &hmac_sha256(b"AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", b"20120215"),
                    b"us-east-1",
                ),
                b"iam",
            ),
            b"aws4_request",
        );
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        let s3_key = signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
        );
        assert_eq!(s3_key.len(), 32);
    }

    #[test]
    fn credential_parsing() {
        let c = Credential::parse("AKID/20130524/us-east-1/s3/aws4_request", Kind::Header).unwrap();
        assert_eq!(
            (c.access_key, c.date, c.region, c.service, c.terminator),
            ("AKID", "20130524", "us-east-1", "s3", "aws4_request")
        );
        assert_eq!(c.scope(), "20130524/us-east-1/s3/aws4_request");
        for bad in [
            "",
            "AKID",
            "AKID/20130524/us-east-1/s3",
            "/20130524/us-east-1/s3/aws4_request",
            "AKID/2013052/us-east-1/s3/aws4_request",
            "AKID/2013052x/us-east-1/s3/aws4_request",
            "AKID/20130524//s3/aws4_request",
        ] {
            let err = Credential::parse(bad, Kind::Header).err().unwrap();
            assert_eq!(err.code, ErrorCode::AuthorizationHeaderMalformed, "{bad}");
            let err = Credential::parse(bad, Kind::Query).err().unwrap();
            assert_eq!(
                err.code,
                ErrorCode::AuthorizationQueryParametersError,
                "{bad}"
            );
        }
    }

    #[test]
    fn credential_checks_use_aws_wording() {
        let c = Credential::parse("AKID/20130524/eu-west-1/s3/aws4_request", Kind::Header).unwrap();
        let err = c
            .check("us-east-1", "20130524T000000Z", Kind::Header)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::AuthorizationHeaderMalformed);
        assert_eq!(
            err.message,
            "The authorization header is malformed; the region 'eu-west-1' is wrong; \
             expecting 'us-east-1'"
        );
        assert_eq!(err.extra, vec![("Region", "us-east-1".to_owned())]);

        let c = Credential::parse("AKID/20130524/us-east-1/ec2/aws4_request", Kind::Query).unwrap();
        let err = c
            .check("us-east-1", "20130524T000000Z", Kind::Query)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::AuthorizationQueryParametersError);
        assert!(
            err.message.contains("incorrect service \"ec2\""),
            "{}",
            err.message
        );

        let c = Credential::parse("AKID/20130524/us-east-1/s3/aws5_request", Kind::Header).unwrap();
        let err = c
            .check("us-east-1", "20130524T000000Z", Kind::Header)
            .unwrap_err();
        assert!(
            err.message.contains("incorrect terminal"),
            "{}",
            err.message
        );

        let c = Credential::parse("AKID/20130525/us-east-1/s3/aws4_request", Kind::Header).unwrap();
        let err = c
            .check("us-east-1", "20130524T000000Z", Kind::Header)
            .unwrap_err();
        assert!(
            err.message.contains("Invalid credential date"),
            "{}",
            err.message
        );
    }

    #[test]
    fn authorization_header_parsing() {
        let a = AuthorizationHeader::parse(
            "AWS4-HMAC-SHA256 Credential=A/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-date,Signature=abc",
        )
        .unwrap();
        assert_eq!(a.credential, "A/20130524/us-east-1/s3/aws4_request");
        assert_eq!(a.signed_headers, "host;x-amz-date");
        assert_eq!(a.signature, "abc");

        let code = |v: &str| AuthorizationHeader::parse(v).err().map(|e| e.code);
        assert_eq!(code("Bearer token"), Some(ErrorCode::InvalidArgument));
        assert_eq!(code(""), Some(ErrorCode::InvalidArgument));
        assert_eq!(
            code("AWS4-ECDSA-P256-SHA256 Credential=x"),
            Some(ErrorCode::NotImplemented)
        );
        assert_eq!(
            code("AWS4-HMAC-SHA256 Credential=x, Signature=y"),
            Some(ErrorCode::AuthorizationHeaderMalformed)
        );
        assert_eq!(
            code("AWS4-HMAC-SHA256"),
            Some(ErrorCode::AuthorizationHeaderMalformed)
        );
    }

    #[test]
    fn signed_headers_parsing() {
        assert_eq!(
            parse_signed_headers("host;X-Amz-Date", Kind::Header).unwrap(),
            vec!["host", "x-amz-date"]
        );
        for bad in ["", "host;", ";host", "host;;x-amz-date"] {
            assert!(parse_signed_headers(bad, Kind::Header).is_err(), "{bad}");
        }
    }

    #[test]
    fn unsigned_amz_headers_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "h".parse().unwrap());
        headers.insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        headers.insert("x-amz-date", "d".parse().unwrap());
        headers.insert("content-type", "text/plain".parse().unwrap());
        let signed = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(check_all_signed(&headers, &signed(&["host", "x-amz-date"])).is_ok());

        headers.insert("x-amz-acl", "public-read".parse().unwrap());
        let err = check_all_signed(&headers, &signed(&["host", "x-amz-date"])).unwrap_err();
        assert_eq!(err.code, ErrorCode::AccessDenied);
        assert_eq!(
            err.extra,
            vec![("HeadersNotSigned", "x-amz-acl".to_owned())]
        );

        let err = check_all_signed(&headers, &signed(&["x-amz-acl", "x-amz-date"])).unwrap_err();
        assert_eq!(err.extra, vec![("HeadersNotSigned", "host".to_owned())]);
    }

    #[test]
    fn amz_dates() {
        let t = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_369_353_600);
        assert_eq!(format_time(t, AMZ_DATE_FORMAT), "20130524T000000Z");
        assert_eq!(format_time(t, ISO_8601_FORMAT), "2013-05-24T00:00:00Z");
        for bad in [
            "",
            "20130524",
            "20130524T000000",
            "2013-05-24T00:00:00Z",
            "20131324T000000Z",
            "20130524T250000Z",
            "+0130524T000000Z",
            "20130524T000000Zé",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn expires_bounds() {
        assert_eq!(parse_expires("1").unwrap(), 1);
        assert_eq!(parse_expires("604800").unwrap(), 604_800);
        for bad in [
            "0",
            "-1",
            "604801",
            "abc",
            "",
            "1.5",
            "99999999999999999999",
        ] {
            let err = parse_expires(bad).unwrap_err();
            assert_eq!(
                err.code,
                ErrorCode::AuthorizationQueryParametersError,
                "{bad}"
            );
        }
    }

    #[test]
    fn signature_comparison() {
        assert!(signatures_match("abc123", "abc123"));
        assert!(signatures_match("abc123", "ABC123"));
        assert!(!signatures_match("abc123", "abc124"));
        assert!(!signatures_match("abc123", "abc12"));
        assert!(!signatures_match("abc123", ""));
    }
}
