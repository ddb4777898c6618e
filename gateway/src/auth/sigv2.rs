//! Legacy SigV2: presigned URLs (`AWSAccessKeyId`, `Expires`, `Signature`), which the aws
//! CLI v1 and boto3 still produce by default for us-east-1 (`aws s3 presign`), and the
//! `Authorization: AWS AccessKeyId:Signature` header of older tools and SDK settings
//! (`signature_version="s3"`). Both sign the path-style resource (`/bucket/key`).

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::context::{KeyOwner, SecretStore};
use super::sigv4::{Query, check_skew, lookup};
use crate::error::{ErrorCode, S3Error, S3Result};

/// Query parameters that are part of the signed resource (botocore's list), in sorted order.
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Verifies a SigV2 presigned URL and returns its access key and user.
pub(super) fn verify_presigned(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &Query,
    secrets: &dyn SecretStore,
    now: OffsetDateTime,
) -> S3Result<(String, String)> {
    let access_key = query.get("AWSAccessKeyId").unwrap_or_default();
    let signature = query.get("Signature").unwrap_or_default();
    let expires = query.get("Expires").ok_or_else(|| {
        S3Error::new(ErrorCode::AccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters")
    })?;
    let expires: i64 = expires.parse().map_err(|_| {
        S3Error::new(
            ErrorCode::AccessDenied,
            "Invalid date (should be seconds since epoch)",
        )
    })?;
    let owner = lookup(secrets, access_key)?;
    if now.unix_timestamp() > expires {
        return Err(S3Error::new(ErrorCode::AccessDenied, "Request has expired")
            .with("Expires", expires.to_string())
            .with("ServerTime", now.unix_timestamp().to_string()));
    }
    let to_sign = strings_to_sign(method, uri, headers, query, &expires.to_string());
    check(access_key, owner, signature, to_sign)
}

/// Verifies a browser POST form's V2 signature: the base64 HMAC-SHA1 of the (base64)
/// policy document. Returns the access key and user.
pub(super) fn verify_form(
    access_key: &str,
    policy: &str,
    signature: &str,
    secrets: &dyn SecretStore,
) -> S3Result<(String, String)> {
    let owner = lookup(secrets, access_key)?;
    check(access_key, owner, signature, vec![policy.to_owned()])
}

/// Verifies `Authorization: AWS AccessKeyId:Signature`, signed over the `Date` header (or an
/// empty date line when `x-amz-date`, then signed among the `x-amz-*` headers, is present).
pub(super) fn verify_header(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &Query,
    authorization: &str,
    secrets: &dyn SecretStore,
    now: OffsetDateTime,
) -> S3Result<(String, String)> {
    let (access_key, signature) = authorization
        .trim()
        .strip_prefix("AWS ")
        .and_then(|credentials| credentials.trim().rsplit_once(':'))
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidArgument,
                "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
            )
            .with("ArgumentName", "Authorization")
        })?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let amz_date = header("x-amz-date");
    let (date_text, date_line) = match (amz_date, header("date")) {
        (Some(amz), _) => (amz, ""),
        (None, Some(date)) => (date, date),
        (None, None) => return Err(missing_date()),
    };
    // HTTP dates (`… GMT`), and the RFC 2822 `+0000` form AWS's examples use.
    let time = httpdate::parse_http_date(date_text.trim())
        .map(OffsetDateTime::from)
        .or_else(|_| OffsetDateTime::parse(date_text.trim(), &Rfc2822))
        .map_err(|_| missing_date())?;
    check_skew(date_text, time, now)?;
    let owner = lookup(secrets, access_key)?;
    let to_sign = strings_to_sign(method, uri, headers, query, date_line.trim());
    check(access_key, owner, signature, to_sign)
}

fn missing_date() -> S3Error {
    S3Error::new(
        ErrorCode::AccessDenied,
        "AWS authentication requires a valid Date or x-amz-date header",
    )
}

/// Compares `signature` with the HMAC-SHA1 of each string to sign under the key's secret.
fn check(
    access_key: &str,
    owner: KeyOwner,
    signature: &str,
    to_sign: Vec<String>,
) -> S3Result<(String, String)> {
    let matches = |text: &String| {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(owner.secret.as_bytes())
            .expect("HMAC takes any key");
        mac.update(text.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
    };
    if to_sign.iter().any(matches) {
        return Ok((access_key.to_owned(), owner.user));
    }
    Err(S3Error::from(ErrorCode::SignatureDoesNotMatch)
        .with("AWSAccessKeyId", access_key)
        .with(
            "StringToSign",
            to_sign.into_iter().next().unwrap_or_default(),
        ))
}

/// The request signed over its path, and for a bucket (`/bucket`) also over `/bucket/`:
/// AWS documents both forms and botocore signs the second.
fn strings_to_sign(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &Query,
    date: &str,
) -> Vec<String> {
    let path = uri.path();
    let mut resources = vec![path.to_owned()];
    if path.len() > 1 && !path[1..].contains('/') {
        resources.push(format!("{path}/"));
    }
    resources
        .iter()
        .map(|resource| string_to_sign(method, resource, headers, query, date))
        .collect()
}

/// `date` is the `Expires` of a presigned URL, or the `Date` header.
fn string_to_sign(
    method: &Method,
    resource: &str,
    headers: &HeaderMap,
    query: &Query,
    date: &str,
) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
    };
    let mut amz: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        if name.as_str().starts_with("x-amz-") {
            let value = String::from_utf8_lossy(value.as_bytes()).trim().to_owned();
            match amz.iter_mut().find(|(n, _)| n == name.as_str()) {
                Some((_, joined)) => {
                    joined.push(',');
                    joined.push_str(&value);
                }
                None => amz.push((name.as_str().to_owned(), value)),
            }
        }
    }
    amz.sort();
    let mut out = format!(
        "{method}\n{}\n{}\n{date}\n",
        header("content-md5"),
        header("content-type")
    );
    for (name, value) in amz {
        out.push_str(&format!("{name}:{value}\n"));
    }
    out.push_str(resource);
    let subresources: Vec<String> = SUBRESOURCES
        .iter()
        .filter_map(|name| {
            query.get(name).map(|v| {
                if v.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{name}={v}")
                }
            })
        })
        .collect();
    if !subresources.is_empty() {
        out.push('?');
        out.push_str(&subresources.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subresources_are_sorted_as_signers_sort_them() {
        assert!(SUBRESOURCES.windows(2).all(|w| w[0] < w[1]));
        assert!(SUBRESOURCES.contains(&"cors") && SUBRESOURCES.contains(&"object-lock"));
    }

    struct One;
    impl SecretStore for One {
        fn lookup(&self, key: &str) -> Option<KeyOwner> {
            (key == "AKIAIOSFODNN7EXAMPLE").then(|| KeyOwner {
                secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
                user: "tester".to_owned(),
            })
        }
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    /// A URL presigned by botocore's `HmacV1QueryAuth` (what `aws s3 presign`
    /// uses), with a space in the key and a response override.
    #[test]
    fn botocore_presigned_url_verifies() {
        let uri: Uri = "/awsexamplebucket1/photos/puppy%20dog.jpg?response-content-type=text%2Fplain&AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=Orl%2FJTsJxFLwr8b0qH%2Bll%2FnybOo%3D&Expires=1175139620"
            .parse()
            .unwrap();
        let query = Query::parse(uri.query().unwrap());
        let key = verify_presigned(
            &Method::GET,
            &uri,
            &HeaderMap::new(),
            &query,
            &One,
            at(1175139000),
        )
        .unwrap();
        assert_eq!(
            key,
            ("AKIAIOSFODNN7EXAMPLE".to_owned(), "tester".to_owned())
        );

        let late = verify_presigned(
            &Method::GET,
            &uri,
            &HeaderMap::new(),
            &query,
            &One,
            at(1175139621),
        );
        assert_eq!(late.unwrap_err().code, ErrorCode::AccessDenied);
        let other: Uri = "/awsexamplebucket1/photos/kitten.jpg?response-content-type=text%2Fplain&AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=Orl%2FJTsJxFLwr8b0qH%2Bll%2FnybOo%3D&Expires=1175139620"
            .parse()
            .unwrap();
        let forged = verify_presigned(
            &Method::GET,
            &other,
            &HeaderMap::new(),
            &query,
            &One,
            at(1175139000),
        );
        assert_eq!(forged.unwrap_err().code, ErrorCode::SignatureDoesNotMatch);
    }

    /// AWS's SigV2 header example (Amazon S3 developer guide, "Object GET").
    #[test]
    fn header_signature_of_the_aws_example() {
        let uri: Uri = "/johnsmith/photos/puppy.jpg".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let query = Query::parse("");
        let verify = |auth: &str, now: OffsetDateTime| {
            verify_header(&Method::GET, &uri, &headers, &query, auth, &One, now)
        };
        let good = "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=";
        let (key, user) = verify(good, at(1175024202)).unwrap();
        assert_eq!(
            (key.as_str(), user.as_str()),
            ("AKIAIOSFODNN7EXAMPLE", "tester")
        );
        let wrong = "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMV=";
        let err = verify(wrong, at(1175024202)).unwrap_err();
        assert_eq!(err.code, ErrorCode::SignatureDoesNotMatch);
        let err = verify(good, at(1175024202 + 16 * 60)).unwrap_err();
        assert_eq!(err.code, ErrorCode::RequestTimeTooSkewed);
        let err = verify("AWS no-colon", at(1175024202)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        let err = verify("AWS NOSUCHKEY:abc=", at(1175024202)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidAccessKeyId);
    }
}
