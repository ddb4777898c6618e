//! Request authentication: AWS Signature Version 4 in the `Authorization` header or in presigned
//! query parameters, and the payload mode that tells `crate::body` how to verify the body.

mod chunked;
mod context;
mod sigv2;
mod sigv4;

use http::{HeaderMap, Method, Uri};
use time::OffsetDateTime;

use crate::error::{ErrorCode, S3Error, S3Result};

pub(crate) use chunked::{ChunkedDecoder, Trailers, malformed_trailer};
pub use context::{
    Authenticated, ChunkSigningContext, KeyOwner, PayloadMode, ResolvedKey, SecretStore, Via,
};
use context::{CONTENT_SHA256, UNSIGNED_PAYLOAD};

/// The access key a request says it is signed with (SigV4 or SigV2, header or query),
/// so that it can be looked up before [`authenticate`] checks the signature with it.
pub fn claimed_access_key(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return match value.strip_prefix("AWS ") {
            Some(v2) => v2.trim().split(':').next().map(str::to_owned),
            None => {
                let at = value.find("Credential=")? + "Credential=".len();
                credential_key(value[at..].split([',', ' ']).next()?)
            }
        };
    }
    let query = sigv4::Query::parse(uri.query().unwrap_or(""));
    match query.get("X-Amz-Credential") {
        Some(credential) => credential_key(credential),
        None => query.get("AWSAccessKeyId").map(str::to_owned),
    }
}

/// Verify a request's SigV4 signature (Authorization header or presigned query). A request
/// with no authentication at all is anonymous (authorization decides what it may do); every
/// failure carries the code and message AWS uses.
pub fn authenticate(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    secrets: &dyn SecretStore,
    region: &str,
    now: OffsetDateTime,
) -> S3Result<Authenticated> {
    let query = sigv4::Query::parse(uri.query().unwrap_or(""));
    let request = sigv4::Request {
        method,
        uri,
        headers,
        query: &query,
    };
    let header = headers.get(http::header::AUTHORIZATION);
    match (header, query.is_presigned()) {
        (Some(_), true) => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified",
        )
        .with("ArgumentName", "Authorization")),
        (Some(value), false) => {
            let value = value
                .to_str()
                .map_err(|_| S3Error::from(ErrorCode::AuthorizationHeaderMalformed))?;
            if value.split_whitespace().next() == Some("AWS") {
                let (access_key, user) =
                    sigv2::verify_header(method, uri, headers, &query, value, secrets, now)?;
                return Ok(Authenticated {
                    access_key,
                    user,
                    payload: PayloadMode::Unsigned,
                    via: Via::Header { v4: false },
                });
            }
            // The mechanism is checked first: a SigV2 client sends no x-amz-content-sha256.
            let authorization = sigv4::AuthorizationHeader::parse(value)?;
            let hash = header_payload_hash(headers)?;
            let mode = PayloadHash::parse(hash)?;
            let signed =
                sigv4::verify_header(&request, &authorization, hash, secrets, region, now)?;
            Ok(mode.into_authenticated(signed, Via::Header { v4: true }))
        }
        (None, true) => {
            let hash = query
                .get("X-Amz-Content-Sha256")
                .or_else(|| headers.get(CONTENT_SHA256).and_then(|v| v.to_str().ok()))
                .unwrap_or(UNSIGNED_PAYLOAD);
            let mode = PayloadHash::parse(hash)?;
            let signed = sigv4::verify_presigned(&request, hash, secrets, region, now)?;
            Ok(mode.into_authenticated(signed, Via::Query { v4: true }))
        }
        (None, false) if query.is_presigned_v2() => {
            let (access_key, user) =
                sigv2::verify_presigned(method, uri, headers, &query, secrets, now)?;
            Ok(Authenticated {
                access_key,
                user,
                payload: PayloadMode::Unsigned,
                via: Via::Query { v4: false },
            })
        }
        (None, false) => anonymous(headers),
    }
}

/// A request without credentials. Its body is still read as `x-amz-content-sha256` says
/// (clients send unsigned aws-chunked bodies with checksum trailers, or a SHA-256 to check);
/// signed chunks cannot come without a signature.
fn anonymous(headers: &HeaderMap) -> S3Result<Authenticated> {
    let mut auth = Authenticated::anonymous();
    let Some(value) = headers.get(CONTENT_SHA256) else {
        return Ok(auth);
    };
    let value = value
        .to_str()
        .map_err(|_| invalid_payload_hash("(not ASCII)"))?;
    auth.payload = match PayloadHash::parse(value)? {
        PayloadHash::Unsigned => PayloadMode::Unsigned,
        PayloadHash::Sha256(hash) => PayloadMode::Sha256(hash),
        PayloadHash::StreamingUnsignedTrailer => PayloadMode::StreamingUnsignedTrailer,
        PayloadHash::StreamingSigned { .. } => {
            return Err(S3Error::new(
                ErrorCode::AccessDenied,
                "Signed aws-chunked bodies need a signed request.",
            ));
        }
    };
    Ok(auth)
}

/// The signature fields of a browser POST form (lower-case names), as given.
pub struct FormSignature<'a> {
    pub policy: Option<&'a str>,
    /// SigV4: `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`.
    pub algorithm: Option<&'a str>,
    pub credential: Option<&'a str>,
    pub amz_date: Option<&'a str>,
    pub signature_v4: Option<&'a str>,
    /// V2: `AWSAccessKeyId`, `signature`.
    pub access_key_v2: Option<&'a str>,
    pub signature_v2: Option<&'a str>,
}

impl FormSignature<'_> {
    /// The access key the form says signed it, to look up before checking the signature.
    pub fn claimed_access_key(&self) -> Option<String> {
        match (self.algorithm, self.credential) {
            (Some(_), Some(credential)) => credential_key(credential),
            _ => self.access_key_v2.map(str::to_owned),
        }
    }
}

/// The access key of a SigV4 credential (`AKID/date/region/service/aws4_request`).
fn credential_key(credential: &str) -> Option<String> {
    credential.rsplitn(5, '/').last().map(str::to_owned)
}

/// Who signed a browser POST form: the user whose key signed its policy document (SigV4 or
/// V2), or anonymous when it carries no credentials at all.
pub fn authenticate_form(
    form: &FormSignature,
    secrets: &dyn SecretStore,
    region: &str,
) -> S3Result<Authenticated> {
    let missing = |what: &str| {
        S3Error::new(
            ErrorCode::InvalidArgument,
            format!("Bucket POST must contain a field named '{what}'.  If it is specified, please check the order of the fields."),
        )
        .with("ArgumentName", what.to_owned())
    };
    let (access_key, user, v4) = match (form.algorithm, form.access_key_v2) {
        (Some(algorithm), _) => {
            if algorithm != "AWS4-HMAC-SHA256" {
                return Err(S3Error::new(
                    ErrorCode::InvalidArgument,
                    "x-amz-algorithm only supports \"AWS4-HMAC-SHA256\"",
                )
                .with("ArgumentName", "x-amz-algorithm"));
            }
            let credential = form.credential.ok_or_else(|| missing("x-amz-credential"))?;
            let date = form.amz_date.ok_or_else(|| missing("x-amz-date"))?;
            let signature = form
                .signature_v4
                .ok_or_else(|| missing("x-amz-signature"))?;
            let policy = form.policy.ok_or_else(|| missing("policy"))?;
            let (key, user) =
                sigv4::verify_form(credential, date, policy, signature, secrets, region)?;
            (key, user, true)
        }
        (None, Some(access_key)) => {
            let signature = form.signature_v2.ok_or_else(|| missing("signature"))?;
            let policy = form.policy.ok_or_else(|| missing("policy"))?;
            let (key, user) = sigv2::verify_form(access_key, policy, signature, secrets)?;
            (key, user, false)
        }
        (None, None) => return Ok(Authenticated::anonymous()),
    };
    Ok(Authenticated {
        access_key,
        user,
        payload: PayloadMode::Unsigned,
        via: Via::Form { v4 },
    })
}

fn header_payload_hash(headers: &HeaderMap) -> S3Result<&str> {
    let missing = || {
        S3Error::new(
            ErrorCode::InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256",
        )
    };
    headers
        .get(CONTENT_SHA256)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| invalid_payload_hash("(not ASCII)"))
}

/// The parsed `x-amz-content-sha256` value, validated before the signature is checked.
enum PayloadHash {
    Unsigned,
    Sha256([u8; 32]),
    StreamingSigned { trailer: bool },
    StreamingUnsignedTrailer,
}

impl PayloadHash {
    fn parse(value: &str) -> S3Result<Self> {
        match value {
            UNSIGNED_PAYLOAD => Ok(Self::Unsigned),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Ok(Self::StreamingSigned { trailer: false }),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
                Ok(Self::StreamingSigned { trailer: true })
            }
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Ok(Self::StreamingUnsignedTrailer),
            "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
            | "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" => Err(S3Error::new(
                ErrorCode::NotImplemented,
                "SigV4a (ECDSA) streaming signatures are not supported.",
            )),
            hex_value => parse_sha256_hex(hex_value)
                .map(Self::Sha256)
                .ok_or_else(|| invalid_payload_hash(hex_value)),
        }
    }

    fn into_authenticated(self, signed: sigv4::Signed, via: Via) -> Authenticated {
        let payload = match self {
            Self::Unsigned => PayloadMode::Unsigned,
            Self::Sha256(hash) => PayloadMode::Sha256(hash),
            Self::StreamingUnsignedTrailer => PayloadMode::StreamingUnsignedTrailer,
            Self::StreamingSigned { trailer } => PayloadMode::StreamingSigned {
                trailer,
                ctx: ChunkSigningContext {
                    signing_key: signed.signing_key,
                    amz_date: signed.amz_date,
                    scope: signed.scope,
                    seed_signature: signed.signature,
                },
            },
        };
        Authenticated {
            access_key: signed.access_key,
            user: signed.user,
            payload,
            via,
        }
    }
}

/// A 64-digit hex SHA-256 (either case, as clients differ).
fn parse_sha256_hex(value: &str) -> Option<[u8; 32]> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(value, &mut hash).ok()?;
    Some(hash)
}

fn invalid_payload_hash(value: &str) -> S3Error {
    S3Error::new(
        ErrorCode::InvalidArgument,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
         STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, \
         STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, \
         STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
    )
    .with("ArgumentName", CONTENT_SHA256)
    .with("ArgumentValue", value)
}

/// Fixtures shared by the auth and body tests: AWS's published examples.
#[cfg(test)]
pub(crate) mod test_support {
    use http::{HeaderMap, HeaderValue, Method, Uri};
    use time::OffsetDateTime;

    use super::{KeyOwner, SecretStore};

    pub const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    pub const EMPTY_SHA256: &str =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// Seed signatures of the two streaming examples.
    pub const STREAMING_SEED: &str =
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    pub const TRAILER_SEED: &str =
        "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";

    pub struct Keys;

    impl SecretStore for Keys {
        fn lookup(&self, access_key: &str) -> Option<KeyOwner> {
            (access_key == ACCESS_KEY).then(|| KeyOwner {
                secret: SECRET.to_owned(),
                user: "tester".to_owned(),
            })
        }
    }

    /// 2013-05-24T00:00:00Z, the time of every AWS example.
    pub fn example_time() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_369_353_600).unwrap()
    }

    pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    pub fn authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders={signed_headers},Signature={signature}"
        )
    }

    /// The streaming PUT of the AWS examples: without trailer (seed `STREAMING_SEED`) or with
    /// an `x-amz-checksum-crc32c` trailer (seed `TRAILER_SEED`).
    pub fn streaming_request(trailer: bool) -> (Method, Uri, HeaderMap) {
        let (mode, signed, seed) = if trailer {
            (
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                "content-encoding;host;x-amz-content-sha256;x-amz-date;\
                 x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
                TRAILER_SEED,
            )
        } else {
            (
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                 x-amz-decoded-content-length;x-amz-storage-class",
                STREAMING_SEED,
            )
        };
        let auth = authorization(signed, seed);
        let mut pairs = vec![
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("authorization", auth.as_str()),
            ("x-amz-content-sha256", mode),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
        ];
        if trailer {
            pairs.push(("x-amz-trailer", "x-amz-checksum-crc32c"));
        } else {
            pairs.push(("content-length", "66824"));
        }
        let uri = "/examplebucket/chunkObject.txt".parse().unwrap();
        (Method::PUT, uri, headers(&pairs))
    }

    /// Body of the streaming example: 65536 + 1024 bytes of `a`.
    pub fn streaming_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(
            b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n",
        );
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(
            b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n",
        );
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(
            b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
        );
        body
    }

    /// Body of the trailer example, optionally with the blank line some writers put between
    /// the final chunk and the trailer.
    pub fn trailer_body(blank_line_before_trailer: bool) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(
            b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n",
        );
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(
            b"\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n",
        );
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(
            b"\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n",
        );
        if blank_line_before_trailer {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(
            b"x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:\
              d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n",
        );
        body
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use time::Duration;

    fn auth(method: Method, uri: &str, headers: &HeaderMap) -> S3Result<Authenticated> {
        auth_at(method, uri, headers, example_time())
    }

    fn auth_at(
        method: Method,
        uri: &str,
        headers: &HeaderMap,
        now: OffsetDateTime,
    ) -> S3Result<Authenticated> {
        let uri: Uri = uri.parse().unwrap();
        authenticate(&method, &uri, headers, &Keys, "us-east-1", now)
    }

    fn code(result: S3Result<Authenticated>) -> ErrorCode {
        result.unwrap_err().code
    }

    /// AWS "Example: GET Object" (header auth).
    fn get_object_headers() -> HeaderMap {
        let auth = authorization(
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        );
        headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", &auth),
        ])
    }

    #[test]
    fn aws_get_object_example() {
        let ok = auth(Method::GET, "/test.txt", &get_object_headers()).unwrap();
        assert_eq!(ok.access_key, ACCESS_KEY);
        let PayloadMode::Sha256(hash) = ok.payload else {
            panic!("expected a SHA-256 payload, got {:?}", ok.payload);
        };
        assert_eq!(hex::encode(hash), EMPTY_SHA256);
    }

    #[test]
    fn aws_put_object_example_with_date_header_and_dollar_key() {
        let value = authorization(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        );
        let headers = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            (
                "x-amz-content-sha256",
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            ),
            ("authorization", &value),
        ]);
        // `$` raw or escaped on the wire: the canonical URI is `/test%24file.text` either way.
        auth(Method::PUT, "/test$file.text", &headers).unwrap();
        auth(Method::PUT, "/test%24file.text", &headers).unwrap();
    }

    #[test]
    fn aws_get_bucket_lifecycle_and_list_objects_examples() {
        let lifecycle = authorization(
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        );
        let list = authorization(
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        );
        for (uri, auth_value) in [("/?lifecycle", lifecycle), ("/?max-keys=2&prefix=J", list)] {
            let headers = headers(&[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY_SHA256),
                ("x-amz-date", "20130524T000000Z"),
                ("authorization", &auth_value),
            ]);
            auth(Method::GET, uri, &headers).unwrap();
        }
    }

    #[test]
    fn non_ascii_key_signed_by_botocore() {
        // A key with a space and an umlaut, region eu-ro-1, cross-checked against botocore.
        let body_hash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let value = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/eu-ro-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=1cf7be2fd79ce71a437208f41cfce6e098f007fabc74f44da5055c35a5c62529"
        );
        let headers = headers(&[
            ("host", "s3api-eu-ro-1.runpod.io"),
            ("x-amz-content-sha256", body_hash),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", &value),
        ]);
        let uri: Uri = "/vol123/models/loras/a%20b%C3%A4.safetensors"
            .parse()
            .unwrap();
        authenticate(
            &Method::PUT,
            &uri,
            &headers,
            &Keys,
            "eu-ro-1",
            example_time(),
        )
        .unwrap();
    }

    #[test]
    fn aws_presigned_example() {
        let uri = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
                   &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
                   &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
                   &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let headers = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let ok = auth(Method::GET, uri, &headers).unwrap();
        assert_eq!(ok.access_key, ACCESS_KEY);
        assert!(matches!(ok.payload, PayloadMode::Unsigned));
        // Valid until the last second, from up to 15 minutes before it was signed.
        let last = example_time() + Duration::seconds(86400);
        assert!(auth_at(Method::GET, uri, &headers, last).is_ok());
        assert!(
            auth_at(
                Method::GET,
                uri,
                &headers,
                example_time() - Duration::minutes(14)
            )
            .is_ok()
        );

        let err = auth_at(Method::GET, uri, &headers, last + Duration::seconds(1)).unwrap_err();
        assert_eq!(err.code, ErrorCode::AccessDenied);
        assert_eq!(err.message, "Request has expired");
        assert!(
            err.extra
                .contains(&("Expires", "2013-05-25T00:00:00Z".to_owned()))
        );
        assert!(err.extra.contains(&("X-Amz-Expires", "86400".to_owned())));

        let early = example_time() - Duration::minutes(16);
        let err = auth_at(Method::GET, uri, &headers, early).unwrap_err();
        assert_eq!(err.code, ErrorCode::AccessDenied);

        // Another method, path or host breaks the signature.
        assert_eq!(
            code(auth(Method::PUT, uri, &headers)),
            ErrorCode::SignatureDoesNotMatch
        );
        let other = uri.replace("/test.txt", "/test2.txt");
        assert_eq!(
            code(auth(Method::GET, &other, &headers)),
            ErrorCode::SignatureDoesNotMatch
        );
        let other_host = test_support::headers(&[("host", "evil.example.com")]);
        assert_eq!(
            code(auth(Method::GET, uri, &other_host)),
            ErrorCode::SignatureDoesNotMatch
        );
        // So does an added query parameter.
        let extra = format!("{uri}&x-id=GetObject");
        assert_eq!(
            code(auth(Method::GET, &extra, &headers)),
            ErrorCode::SignatureDoesNotMatch
        );
    }

    #[test]
    fn presigned_parameter_errors() {
        let base = |expires: &str| {
            format!(
                "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
                 &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
                 &X-Amz-Date=20130524T000000Z&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host\
                 &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            )
        };
        let headers = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        for expires in ["0", "604801", "-5", "soon"] {
            assert_eq!(
                code(auth(Method::GET, &base(expires), &headers)),
                ErrorCode::AuthorizationQueryParametersError,
                "{expires}"
            );
        }
        let missing = base("86400").replace("&X-Amz-Date=20130524T000000Z", "");
        assert_eq!(
            code(auth(Method::GET, &missing, &headers)),
            ErrorCode::AuthorizationQueryParametersError
        );
        let no_algorithm = base("86400").replace("X-Amz-Algorithm=AWS4-HMAC-SHA256&", "");
        assert_eq!(
            code(auth(Method::GET, &no_algorithm, &headers)),
            ErrorCode::AuthorizationQueryParametersError
        );
        let sigv4a = base("86400").replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
        assert_eq!(
            code(auth(Method::GET, &sigv4a, &headers)),
            ErrorCode::NotImplemented
        );
        let region = base("86400").replace("us-east-1", "us-west-2");
        let err = auth(Method::GET, &region, &headers).unwrap_err();
        assert_eq!(err.code, ErrorCode::AuthorizationQueryParametersError);
        assert_eq!(err.extra, vec![("Region", "us-east-1".to_owned())]);
        let unknown = base("86400").replace("AKIAIOSFODNN7EXAMPLE", "AKIDUNKNOWN");
        assert_eq!(
            code(auth(Method::GET, &unknown, &headers)),
            ErrorCode::InvalidAccessKeyId
        );
        // An x-amz header the URL did not sign.
        let mut acl = headers.clone();
        acl.insert("x-amz-acl", "public-read".parse().unwrap());
        assert_eq!(
            code(auth(Method::GET, &base("86400"), &acl)),
            ErrorCode::AccessDenied
        );
    }

    #[test]
    fn presigned_with_a_payload_hash_requires_the_body_to_match() {
        // X-Amz-Content-Sha256 in a presigned URL is signed like any query parameter and
        // becomes the payload mode; it does not match the example signature.
        let uri = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
                   &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
                   &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
                   &X-Amz-Content-Sha256=UNSIGNED-PAYLOAD\
                   &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let headers = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        assert_eq!(
            code(auth(Method::GET, uri, &headers)),
            ErrorCode::SignatureDoesNotMatch
        );
        let bad = uri.replace("UNSIGNED-PAYLOAD", "nothex");
        assert_eq!(
            code(auth(Method::GET, &bad, &headers)),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn aws_streaming_examples_give_chunk_signing_contexts() {
        for (trailer, seed) in [(false, STREAMING_SEED), (true, TRAILER_SEED)] {
            let (method, uri, headers) = streaming_request(trailer);
            let ok =
                authenticate(&method, &uri, &headers, &Keys, "us-east-1", example_time()).unwrap();
            let PayloadMode::StreamingSigned { trailer: t, ctx } = ok.payload else {
                panic!("expected streaming, got {:?}", ok.payload);
            };
            assert_eq!(t, trailer);
            assert_eq!(ctx.seed_signature, seed);
            assert_eq!(ctx.scope, "20130524/us-east-1/s3/aws4_request");
            assert_eq!(ctx.amz_date, "20130524T000000Z");
            assert!(!format!("{ctx:?}").contains("signing_key"));
        }
    }

    #[test]
    fn payload_hash_values() {
        let mut headers = get_object_headers();
        let mut with_hash = |value: &str| {
            headers.insert("x-amz-content-sha256", value.parse().unwrap());
            code(auth(Method::GET, "/test.txt", &headers))
        };
        // Valid forms get as far as the signature check.
        for valid in [
            "UNSIGNED-PAYLOAD",
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            &EMPTY_SHA256.to_ascii_uppercase(),
        ] {
            assert_eq!(
                with_hash(valid),
                ErrorCode::SignatureDoesNotMatch,
                "{valid}"
            );
        }
        for invalid in ["", "abc", "unsigned-payload", &EMPTY_SHA256[1..]] {
            assert_eq!(with_hash(invalid), ErrorCode::InvalidArgument, "{invalid}");
        }
        assert_eq!(
            with_hash("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"),
            ErrorCode::NotImplemented
        );
        let mut missing = get_object_headers();
        missing.remove("x-amz-content-sha256");
        assert_eq!(
            code(auth(Method::GET, "/test.txt", &missing)),
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn header_auth_errors() {
        let good = get_object_headers();
        let anonymous = auth(Method::GET, "/test.txt", &HeaderMap::new()).unwrap();
        assert_eq!(anonymous.via, Via::Anonymous);
        assert_eq!(anonymous.user(), None);
        let trailer = headers(&[("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")]);
        let anonymous = auth(Method::PUT, "/test.txt", &trailer).unwrap();
        assert!(matches!(
            anonymous.payload,
            PayloadMode::StreamingUnsignedTrailer
        ));
        let signed_chunks =
            headers(&[("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")]);
        assert_eq!(
            code(auth(Method::PUT, "/test.txt", &signed_chunks)),
            ErrorCode::AccessDenied
        );
        let nonsense = headers(&[("x-amz-content-sha256", "nonsense")]);
        assert_eq!(
            code(auth(Method::PUT, "/test.txt", &nonsense)),
            ErrorCode::InvalidArgument
        );

        let mut tampered = good.clone();
        tampered.insert("range", "bytes=0-99".parse().unwrap());
        let err = auth(Method::GET, "/test.txt", &tampered).unwrap_err();
        assert_eq!(err.code, ErrorCode::SignatureDoesNotMatch);
        let names: Vec<&str> = err.extra.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "AWSAccessKeyId",
                "StringToSign",
                "SignatureProvided",
                "CanonicalRequest"
            ]
        );
        assert!(err.extra[3].1.contains("range:bytes=0-99"));

        let replace_auth = |from: &str, to: &str| {
            let mut headers = good.clone();
            let value = good["authorization"].to_str().unwrap().replace(from, to);
            headers.insert("authorization", value.parse().unwrap());
            headers
        };
        let unknown = replace_auth(ACCESS_KEY, "AKIDUNKNOWN");
        let err = auth(Method::GET, "/test.txt", &unknown).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidAccessKeyId);
        assert_eq!(
            err.extra,
            vec![("AWSAccessKeyId", "AKIDUNKNOWN".to_owned())]
        );

        let uppercase = replace_auth("f0e8bdb87c", "F0E8BDB87C");
        assert!(auth(Method::GET, "/test.txt", &uppercase).is_ok());

        let region = replace_auth("us-east-1", "eu-west-1");
        let err = auth(Method::GET, "/test.txt", &region).unwrap_err();
        assert_eq!(err.code, ErrorCode::AuthorizationHeaderMalformed);
        assert_eq!(err.extra, vec![("Region", "us-east-1".to_owned())]);

        let service = replace_auth("/s3/", "/ec2/");
        assert_eq!(
            code(auth(Method::GET, "/test.txt", &service)),
            ErrorCode::AuthorizationHeaderMalformed
        );
        let mut v2 = good.clone();
        v2.insert(
            "authorization",
            "AWS AKIAIOSFODNN7EXAMPLE:c2lnbmF0dXJl".parse().unwrap(),
        );
        v2.remove("x-amz-content-sha256");
        v2.remove("x-amz-date");
        v2.insert("date", "Fri, 24 May 2013 00:00:00 GMT".parse().unwrap());
        // SigV2 is checked as SigV2 (not refused as a malformed SigV4 header).
        let err = auth(Method::GET, "/test.txt", &v2).unwrap_err();
        assert_eq!(err.code, ErrorCode::SignatureDoesNotMatch);
        let sigv4a = replace_auth("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
        assert_eq!(
            code(auth(Method::GET, "/test.txt", &sigv4a)),
            ErrorCode::NotImplemented
        );
        let unsigned_host = replace_auth("host;range", "range");
        assert_eq!(
            code(auth(Method::GET, "/test.txt", &unsigned_host)),
            ErrorCode::AccessDenied
        );

        let mut no_date = good.clone();
        no_date.remove("x-amz-date");
        assert_eq!(
            code(auth(Method::GET, "/test.txt", &no_date)),
            ErrorCode::AccessDenied
        );
        let mut bad_date = good.clone();
        bad_date.insert("x-amz-date", "yesterday".parse().unwrap());
        assert_eq!(
            code(auth(Method::GET, "/test.txt", &bad_date)),
            ErrorCode::AccessDenied
        );

        let mut meta = good.clone();
        meta.insert("x-amz-meta-owner", "mallory".parse().unwrap());
        let err = auth(Method::GET, "/test.txt", &meta).unwrap_err();
        assert_eq!(err.code, ErrorCode::AccessDenied);
        assert_eq!(
            err.extra,
            vec![("HeadersNotSigned", "x-amz-meta-owner".to_owned())]
        );

        let mut both = good.clone();
        both.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        let err = auth(
            Method::GET,
            "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256",
            &both,
        );
        assert_eq!(code(err), ErrorCode::InvalidArgument);

        let mut non_ascii = good.clone();
        non_ascii.insert(
            "authorization",
            HeaderValue::from_bytes(b"AWS4\xff").unwrap(),
        );
        assert_eq!(
            code(auth(Method::GET, "/test.txt", &non_ascii)),
            ErrorCode::AuthorizationHeaderMalformed
        );

        // SigV2 presigned URLs are verified (see sigv2.rs); an unknown key is refused.
        let sigv2_query = "/test.txt?AWSAccessKeyId=AKID&Expires=1&Signature=abc";
        assert_eq!(
            code(auth(Method::GET, sigv2_query, &HeaderMap::new())),
            ErrorCode::InvalidAccessKeyId
        );
    }

    #[test]
    fn clock_skew_limit_is_fifteen_minutes() {
        let headers = get_object_headers();
        let at =
            |offset: Duration| auth_at(Method::GET, "/test.txt", &headers, example_time() + offset);
        assert!(at(Duration::minutes(15)).is_ok());
        assert!(at(-Duration::minutes(15)).is_ok());
        for offset in [
            Duration::minutes(16),
            -Duration::minutes(16),
            Duration::days(3),
        ] {
            let err = at(offset).unwrap_err();
            assert_eq!(err.code, ErrorCode::RequestTimeTooSkewed);
            assert_eq!(err.extra[0], ("RequestTime", "20130524T000000Z".to_owned()));
            assert_eq!(err.extra[1].0, "ServerTime");
            assert_eq!(
                err.extra[2],
                ("MaxAllowedSkewMilliseconds", "900000".to_owned())
            );
        }
    }

    use http::HeaderValue;
}
