//! Presigned URLs in the legacy SigV2 query form (`AWSAccessKeyId`, `Expires`,
//! `Signature`). The aws CLI v1 and boto3 still produce these by default for
//! us-east-1 (`aws s3 presign`), and AWS accepts them there; Kura accepts them
//! for GET, HEAD and PUT URLs. SigV2 in the Authorization header stays refused.

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::SecretStore;
use super::sigv4::{Query, lookup};
use crate::error::{ErrorCode, S3Error, S3Result};

/// Query parameters that are part of the signed resource, in sorted order.
const SUBRESOURCES: &[&str] = &[
    "acl",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
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
    let to_sign = string_to_sign(method, uri, headers, query, expires);
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(owner.secret.as_bytes()).expect("HMAC takes any key");
    mac.update(to_sign.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        Ok((access_key.to_owned(), owner.user))
    } else {
        Err(S3Error::from(ErrorCode::SignatureDoesNotMatch)
            .with("AWSAccessKeyId", access_key)
            .with("StringToSign", to_sign))
    }
}

fn string_to_sign(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &Query,
    expires: i64,
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
        "{method}\n{}\n{}\n{expires}\n",
        header("content-md5"),
        header("content-type")
    );
    for (name, value) in amz {
        out.push_str(&format!("{name}:{value}\n"));
    }
    out.push_str(uri.path());
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
    use crate::auth::KeyOwner;

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
}
