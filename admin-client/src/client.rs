//! The admin API client: builds requests under `/_kura/admin/v1`, signs them with SigV4 exactly
//! like S3 requests (service `s3`, `x-amz-content-sha256` = hex SHA-256 of the body), sends
//! them and turns the API's JSON errors into [`AdminError`].

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderValue, Method, Request, Uri, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::Value;

/// Where every admin call lives on the S3 listener.
pub const API_PREFIX: &str = "/_kura/admin/v1";

/// Path segments are encoded as SigV4 canonical URIs are: everything but `A-Za-z0-9-._~`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An access key and its secret. The secret never appears in `Debug` output.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The API refused the call with one of its JSON errors.
    #[error("{code}: {message}{}", hint(.code, *.anonymous))]
    Api {
        status: u16,
        code: String,
        message: String,
        /// The request was sent without credentials.
        anonymous: bool,
    },
    /// The server answered something that is not the admin API's JSON.
    #[error("unexpected answer from {url}: HTTP {status}: {body}")]
    Unexpected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("cannot reach the admin API at {url}: {}", causes(.source))]
    Transport { url: String, source: reqwest::Error },
    #[error("invalid endpoint {0:?}: expected http://host[:port] or https://host[:port]")]
    Endpoint(String),
    #[error("cannot use the CA bundle {path}: {reason}")]
    CaBundle { path: String, reason: String },
    #[error("cannot sign the request: {0}")]
    Signing(String),
}

fn hint(code: &str, anonymous: bool) -> &'static str {
    if anonymous && code == "AccessDenied" {
        "\n(no credentials were given: use --access-key and --secret-key, or set \
         KURA_ADMIN_ACCESS_KEY and KURA_ADMIN_SECRET_KEY)"
    } else {
        ""
    }
}

/// An error and its causes, `outer: inner: innermost` (reqwest's own message alone hides
/// whether DNS, the connection or the TLS handshake failed).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The admin API's error body.
#[derive(Deserialize)]
struct ApiError {
    code: String,
    #[serde(default)]
    message: String,
}

/// Builds, signs and sends admin API calls to one server.
pub struct Client {
    endpoint: String,
    region: String,
    credentials: Option<Credentials>,
    http: reqwest::Client,
}

impl Client {
    /// `endpoint` is the server's S3 URL (`http://127.0.0.1:9000`); without credentials,
    /// requests go out unsigned (and the server refuses them). An https endpoint's
    /// certificate must chain to the system's CAs or to one in `ca_bundle` (a PEM file).
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: Option<Credentials>,
        ca_bundle: Option<&Path>,
    ) -> Result<Self, AdminError> {
        let endpoint = endpoint.trim_end_matches('/');
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| AdminError::Endpoint(endpoint.to_owned()))?;
        let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
        let path_ok = uri.path().is_empty() || uri.path() == "/";
        if !scheme_ok || uri.host().is_none() || !path_ok || uri.query().is_some() {
            return Err(AdminError::Endpoint(endpoint.to_owned()));
        }
        let mut http = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
        if let Some(path) = ca_bundle {
            for certificate in read_ca_bundle(path)? {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build().map_err(|source| AdminError::Transport {
            url: endpoint.to_owned(),
            source,
        })?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            region: region.to_owned(),
            credentials,
            http,
        })
    }

    /// Send one call. `segments` are the path below the API prefix (each one percent-encoded
    /// here), `query` an already-encoded query string. Returns the JSON answer, or None for
    /// an answer without a body (204).
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Option<Value>, AdminError> {
        let request = self.request(method, segments, query, body, SystemTime::now())?;
        let url = request.uri().to_string();
        let transport = |source| AdminError::Transport {
            url: url.clone(),
            source,
        };
        let request = reqwest::Request::try_from(request).map_err(transport)?;
        let response = self.http.execute(request).await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        let json = || serde_json::from_slice::<Value>(&bytes).ok();
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(None);
            }
            return json()
                .map(Some)
                .ok_or_else(|| unexpected(&url, status, &bytes));
        }
        match serde_json::from_slice::<ApiError>(&bytes) {
            Ok(err) => Err(AdminError::Api {
                status: status.as_u16(),
                code: err.code,
                message: err.message,
                anonymous: self.credentials.is_none(),
            }),
            Err(_) => Err(unexpected(&url, status, &bytes)),
        }
    }

    /// The request a call sends at `now`: URL, `Host`, `Content-Type` for a body, and the
    /// SigV4 signature when there are credentials.
    pub fn request(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&str>,
        body: Option<&Value>,
        now: SystemTime,
    ) -> Result<Request<Vec<u8>>, AdminError> {
        let url = self.url(segments, query);
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        build_request(
            method,
            &url,
            body,
            self.credentials.as_ref(),
            &self.region,
            now,
        )
    }

    fn url(&self, segments: &[&str], query: Option<&str>) -> String {
        let mut url = format!("{}{API_PREFIX}", self.endpoint);
        for segment in segments {
            url.push('/');
            url.extend(utf8_percent_encode(segment, SEGMENT));
        }
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

fn read_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, AdminError> {
    let error = |reason: String| AdminError::CaBundle {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(certificates)
}

fn unexpected(url: &str, status: reqwest::StatusCode, body: &[u8]) -> AdminError {
    const SHOWN: usize = 300;
    let text = String::from_utf8_lossy(body);
    let mut shown: String = text.chars().take(SHOWN).collect();
    if text.chars().count() > SHOWN {
        shown.push('…');
    }
    AdminError::Unexpected {
        url: url.to_owned(),
        status: status.as_u16(),
        body: shown,
    }
}

/// The request for `url` with its `Host` and, for a body, `Content-Type: application/json`;
/// signed with SigV4 at `now` when there are credentials.
fn build_request(
    method: Method,
    url: &str,
    body: Vec<u8>,
    credentials: Option<&Credentials>,
    region: &str,
    now: SystemTime,
) -> Result<Request<Vec<u8>>, AdminError> {
    let bad_url = || AdminError::Endpoint(url.to_owned());
    let uri: Uri = url.parse().map_err(|_| bad_url())?;
    let host = uri.authority().ok_or_else(bad_url)?.as_str();
    let mut request = Request::builder().method(method).uri(&uri).header(
        header::HOST,
        HeaderValue::from_str(host).map_err(|_| bad_url())?,
    );
    if !body.is_empty() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let mut request = request.body(body).map_err(|_| bad_url())?;
    if let Some(credentials) = credentials {
        sign_request(&mut request, credentials, region, now)?;
    }
    Ok(request)
}

/// Sign as the AWS SDKs sign S3 requests: the path as sent (no normalisation, no double
/// encoding), and an `x-amz-content-sha256` header with the body's hex SHA-256.
fn sign_request(
    request: &mut Request<Vec<u8>>,
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<(), AdminError> {
    let signing_error = |e: &dyn fmt::Display| AdminError::Signing(e.to_string());
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key,
        &credentials.secret_key,
        None,
        None,
        "kura-admin",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| signing_error(&e))?
        .into();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        headers,
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| signing_error(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(&e))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS_KEY: &str = "KURAADMINTEST";
    const SECRET: &str = "secret/with+odd=chars";

    fn credentials(secret: &str) -> Credentials {
        Credentials {
            access_key: ACCESS_KEY.into(),
            secret_key: secret.into(),
        }
    }

    fn client() -> Client {
        Client::new("http://127.0.0.1:9000/", "us-east-1", None, None).unwrap()
    }

    #[test]
    fn encodes_path_segments_like_sigv4() {
        let client = client();
        assert_eq!(
            client.url(&["users", "a@b.c_d-e~f"], None),
            "http://127.0.0.1:9000/_kura/admin/v1/users/a%40b.c_d-e~f"
        );
        assert_eq!(
            client.url(&["buckets", "photos"], Some("purge=true")),
            "http://127.0.0.1:9000/_kura/admin/v1/buckets/photos?purge=true"
        );
    }

    #[test]
    fn refuses_endpoints_that_are_not_base_urls() {
        for bad in [
            "127.0.0.1:9000",
            "ftp://host",
            "http://host/path",
            "http://host?x=1",
            "",
        ] {
            assert!(
                matches!(
                    Client::new(bad, "us-east-1", None, None),
                    Err(AdminError::Endpoint(_))
                ),
                "{bad:?} accepted"
            );
        }
        assert!(Client::new("https://kura.example:443", "us-east-1", None, None).is_ok());
    }

    #[test]
    fn a_ca_bundle_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for path in [&empty, &missing] {
            assert!(matches!(
                Client::new("https://h", "us-east-1", None, Some(path)),
                Err(AdminError::CaBundle { .. })
            ));
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let text = format!("{:?}", credentials(SECRET));
        assert!(
            text.contains(ACCESS_KEY) && !text.contains(SECRET),
            "{text}"
        );
    }
}
