//! The S3 API: one entry point that authenticates and routes each request,
//! and one module per group of operations.

mod bucket;
mod conditions;
mod copy;
mod delete;
mod get;
mod list;
mod meta;
mod multipart;
mod put;
mod store;

pub use bucket::validate_bucket_name;

use crate::auth::{self, PayloadMode};
use crate::body::{VerifiedBody, verified_body};
use crate::checksum::ChecksumAlgorithm;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::identity::{Identities, ROOT_USER};
use crate::metrics::{self, METRICS};
use crate::router::{self, Endpoint, Query};
use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use kura_backend::BlobStore;
use kura_index::{BucketRecord, Index};
use std::sync::Arc;

/// Everything a request handler can reach.
pub struct S3State {
    pub index: Arc<Index>,
    pub blobs: Arc<dyn BlobStore>,
    pub identities: Arc<Identities>,
    pub region: String,
    pub domain: Option<String>,
}

/// AWS's key length limit, in bytes.
const MAX_KEY_LEN: usize = 1024;

/// An authenticated, routed request.
pub struct S3Request {
    pub parts: http::request::Parts,
    pub query: Query,
    pub bucket: String,
    pub key: String,
    pub access_key: String,
    user: String,
    /// The unread body and how to verify it; a Mutex only so that `&S3Request`
    /// is `Sync` (the body itself is not) and can be held across awaits.
    pending: std::sync::Mutex<Option<(Body, PayloadMode)>>,
}

impl S3Request {
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request body, decoded and verified as its signature mode and
    /// checksum headers demand. Can be taken once.
    pub fn take_body(&mut self, want: Option<ChecksumAlgorithm>) -> S3Result<VerifiedBody> {
        let pending = self
            .pending
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (body, payload) =
            pending.ok_or_else(|| S3Error::internal("request body taken twice"))?;
        verified_body(body, &self.parts.headers, payload, want)
    }

    /// The body of a request whose `x-amz-checksum-*` headers describe
    /// something else (CompleteMultipartUpload: the whole object).
    fn take_document_body(&mut self) -> S3Result<VerifiedBody> {
        let mut headers = self.parts.headers.clone();
        for alg in ChecksumAlgorithm::all() {
            headers.remove(alg.header_name());
        }
        let pending = self
            .pending
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (body, payload) =
            pending.ok_or_else(|| S3Error::internal("request body taken twice"))?;
        verified_body(body, &headers, payload, None)
    }

    /// The user the request's key belongs to.
    pub fn user(&self) -> &str {
        &self.user
    }
}

pub type S3Response = Response<Body>;

pub async fn handle(
    state: Arc<S3State>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<S3Response, std::convert::Infallible> {
    let started = std::time::Instant::now();
    let tracker = metrics::RequestTracker::begin();
    let request_id = new_request_id();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let continue_state = ContinueState::of(&parts.headers);
    let resource = parts.uri.path().to_owned();
    let (operation, result) = dispatch(&state, parts, metrics::received(body), &request_id).await;
    let mut response = result.unwrap_or_else(|err| {
        METRICS.s3_error(err.code);
        error_response(&err, &resource, &request_id, method == Method::HEAD)
    });
    let close = continue_state.may_have_skipped(response.status());
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amz-request-id", id.clone());
        headers.insert("x-amz-id-2", id);
    }
    headers.insert(header::SERVER, HeaderValue::from_static("Kura"));
    if close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    tracing::info!(
        request_id,
        operation,
        method = %method,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    Ok(tracker.finish(operation, response))
}

/// Whether a request asked for `100 Continue`. hyper sends it only once the
/// body is read, so an empty body or an early error answers without it. The
/// aws CLI's botocore then keeps that answer's status line for the next
/// response on the same connection (botocore issue 3755); closing the
/// connection after such answers keeps it from misreading the next one.
enum ContinueState {
    NotAsked,
    Asked { empty_body: bool },
}

impl ContinueState {
    fn of(headers: &HeaderMap) -> Self {
        let asked = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !asked {
            return ContinueState::NotAsked;
        }
        let empty_body = headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        ContinueState::Asked { empty_body }
    }

    fn may_have_skipped(&self, status: StatusCode) -> bool {
        match self {
            ContinueState::NotAsked => false,
            ContinueState::Asked { empty_body } => *empty_body || !status.is_success(),
        }
    }
}

async fn dispatch(
    state: &S3State,
    parts: http::request::Parts,
    body: Body,
    request_id: &str,
) -> (&'static str, S3Result<S3Response>) {
    let query = Query::parse(parts.uri.query());
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if parts.uri.path().starts_with(crate::admin::api::PREFIX) {
        return (
            "Admin",
            Ok(crate::admin::api::handle(state, parts, body, request_id).await),
        );
    }
    let (bucket, key) = router::locate(host, state.domain.as_deref(), parts.uri.path());
    let copy_source = parts.headers.contains_key("x-amz-copy-source");
    let route = match router::route(&parts.method, bucket, key, &query, copy_source) {
        Ok(route) => route,
        Err(err) => return ("Unknown", Err(err)),
    };
    let name = route.endpoint.name();
    let auth = match state.authenticate(&parts) {
        Ok(auth) => auth,
        Err(err) => return (name, Err(err)),
    };
    if route.key.as_ref().is_some_and(|k| k.len() > MAX_KEY_LEN) {
        return (name, Err(ErrorCode::KeyTooLongError.into()));
    }
    let req = S3Request {
        parts,
        query,
        bucket: route.bucket.unwrap_or_default(),
        key: route.key.unwrap_or_default(),
        access_key: auth.access_key,
        user: auth.user,
        pending: std::sync::Mutex::new(Some((body, auth.payload))),
    };
    (name, run(state, route.endpoint, req).await)
}

async fn run(state: &S3State, endpoint: Endpoint, req: S3Request) -> S3Result<S3Response> {
    match endpoint {
        Endpoint::ListBuckets => bucket::list_buckets(state, req).await,
        Endpoint::CreateBucket => bucket::create_bucket(state, req).await,
        Endpoint::HeadBucket => bucket::head_bucket(state, req).await,
        Endpoint::DeleteBucket => bucket::delete_bucket(state, req).await,
        Endpoint::GetBucketLocation => bucket::get_bucket_location(state, req).await,
        Endpoint::GetBucketVersioning => bucket::get_bucket_versioning(state, req).await,
        Endpoint::GetBucketAcl => bucket::get_bucket_acl(state, req).await,
        Endpoint::PutBucketAcl => bucket::put_bucket_acl(state, req).await,
        Endpoint::ListObjects => list::list_objects(state, req).await,
        Endpoint::ListObjectsV2 => list::list_objects_v2(state, req).await,
        Endpoint::ListObjectVersions => list::list_object_versions(state, req).await,
        Endpoint::ListMultipartUploads => multipart::list_multipart_uploads(state, req).await,
        Endpoint::DeleteObjects => delete::delete_objects(state, req).await,
        Endpoint::PutObject => put::put_object(state, req).await,
        Endpoint::CopyObject => copy::copy_object(state, req).await,
        Endpoint::GetObject => get::get_object(state, req, false).await,
        Endpoint::HeadObject => get::get_object(state, req, true).await,
        Endpoint::DeleteObject => delete::delete_object(state, req).await,
        Endpoint::GetObjectAcl => get::get_object_acl(state, req).await,
        Endpoint::PutObjectAcl => get::put_object_acl(state, req).await,
        Endpoint::CreateMultipartUpload => multipart::create_multipart_upload(state, req).await,
        Endpoint::UploadPart {
            upload_id,
            part_number,
        } => multipart::upload_part(state, req, &upload_id, &part_number).await,
        Endpoint::UploadPartCopy {
            upload_id,
            part_number,
        } => copy::upload_part_copy(state, req, &upload_id, &part_number).await,
        Endpoint::CompleteMultipartUpload { upload_id } => {
            multipart::complete_multipart_upload(state, req, &upload_id).await
        }
        Endpoint::AbortMultipartUpload { upload_id } => {
            multipart::abort_multipart_upload(state, req, &upload_id).await
        }
        Endpoint::ListParts { upload_id } => multipart::list_parts(state, req, &upload_id).await,
    }
}

impl S3State {
    /// Checks a request's signature (S3 and admin API alike) against the keys, now.
    pub fn authenticate(&self, parts: &http::request::Parts) -> S3Result<auth::Authenticated> {
        auth::authenticate(
            &parts.method,
            &parts.uri,
            &parts.headers,
            self.identities.as_ref(),
            &self.region,
            time::OffsetDateTime::now_utc(),
        )
    }

    /// The bucket a request names, if it exists and the requester may use it.
    pub fn authorized_bucket(&self, req: &S3Request) -> S3Result<BucketRecord> {
        self.authorize(&req.bucket, req.user())
    }

    pub fn authorize(&self, bucket: &str, user: &str) -> S3Result<BucketRecord> {
        let record = self.index.bucket(bucket)?;
        if !may_use(&record, user) {
            return Err(ErrorCode::AccessDenied.into());
        }
        Ok(record)
    }
}

/// The one access rule: a bucket is its owner's, the administrator's, and its grantees'
/// (only the owner and the administrator may delete it).
pub fn may_use(bucket: &BucketRecord, user: &str) -> bool {
    bucket.owner == user || user == ROOT_USER || bucket.grants.iter().any(|u| u == user)
}

fn error_response(err: &S3Error, resource: &str, request_id: &str, head: bool) -> S3Response {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId>",
        err.code.as_str(),
        escape(&err.message),
        escape(resource),
        request_id
    );
    for (name, value) in &err.extra {
        xml.push_str(&format!("<{name}>{}</{name}>", escape(value)));
    }
    xml.push_str("</Error>");
    let mut builder = Response::builder().status(err.status());
    if err.code == ErrorCode::InvalidRange
        && let Some((_, size)) = err.extra.iter().find(|(n, _)| *n == "ActualObjectSize")
    {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes */{size}"));
    }
    let no_body = head || err.status() == StatusCode::NOT_MODIFIED;
    let body = if no_body {
        Body::empty()
    } else {
        Body::from(xml)
    };
    builder
        .header(header::CONTENT_TYPE, "application/xml")
        .body(body)
        .expect("error responses are well-formed")
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

fn new_request_id() -> String {
    let id = uuid::Uuid::new_v4();
    hex::encode_upper(&id.as_bytes()[..8])
}

/// A `200 OK` with an XML body.
pub fn xml_ok(xml: String) -> S3Result<S3Response> {
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(xml))
        .expect("static headers are valid"))
}

/// An empty response with the given status.
pub fn empty(status: StatusCode) -> S3Response {
    Response::builder()
        .status(status)
        .body(Body::empty())
        .expect("empty response is valid")
}

/// AWS's canonical user id for a Kura user: stable and opaque.
pub fn canonical_id(user: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("kura-user:{user}")))
}

pub fn owner(user: &str) -> crate::xml::Owner {
    crate::xml::Owner {
        id: canonical_id(user),
        display_name: user.to_owned(),
    }
}

/// `Last-Modified` style date (RFC 7231).
pub fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

/// XML timestamp as S3 writes it: `2009-10-12T17:50:30.000Z`.
pub fn iso8601(ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// Strips the quotes (and a weak-validator prefix) clients put around ETags.
pub fn unquote(etag: &str) -> &str {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

/// Reads a small request body (an XML document) whole, refusing more than `limit` bytes.
pub async fn read_small_body(req: &mut S3Request, limit: usize) -> S3Result<bytes::Bytes> {
    use futures::StreamExt;
    let mut stream = req.take_document_body()?;
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(S3Error::new(
                ErrorCode::MalformedXML,
                "The XML document is too large.",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
