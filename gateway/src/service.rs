//! The S3 listener's request layer: request ids, metrics, the admin API's prefix, routing,
//! authentication, authorization, CORS headers of actual cross-origin requests, S3 error
//! responses, and panics turned into 500s. Every request passes here exactly once.

use crate::access_log::{self, Answer, Logged};
use crate::auth::Authenticated;
use crate::authorize::{Scope, authorize, permission};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::metrics::{self, METRICS};
use crate::names::MAX_KEY_LEN;
use crate::query::Query;
use crate::requester::{Client, Requester};
use crate::router::{self, Route};
use crate::s3::{self, S3Request, S3Response};
use crate::state::S3State;
use crate::{admin, cors, xml};
use axum::body::Body;
use futures::FutureExt;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use std::sync::Arc;

/// Answers one request that came from `peer`.
pub async fn handle(
    state: Arc<S3State>,
    peer: Option<std::net::SocketAddr>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<S3Response, std::convert::Infallible> {
    let started = std::time::Instant::now();
    let tracker = metrics::RequestTracker::begin();
    let request_id = new_request_id();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let continue_state = ContinueState::of(&parts.headers);
    let resource = parts.uri.path().to_owned();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    let client = Client::of(peer, &parts.headers, &state.trusted_proxies);
    let dispatched = dispatch(&state, parts, client, metrics::received(body), &request_id);
    let mut handled = unless_panicked(dispatched, &request_id).await;
    let operation = handled.operation;
    let logged = handled.logged.take();
    let error_code = handled.result.as_ref().err().map(|e| e.code.as_str());
    let mut response = handled.result.unwrap_or_else(|err| {
        METRICS.s3_error(err.code);
        error_response(&err, &resource, &request_id, method == Method::HEAD)
    });
    if let (Some(origin), Some(bucket)) = (&origin, &handled.bucket)
        && operation != "PreflightRequest"
    {
        add_cors_headers(&state, bucket, origin, &method, &mut response).await;
    }
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
    if let Some(logged) = &logged {
        let answer = Answer {
            request_id: &request_id,
            operation,
            error_code,
            response: &response,
            started,
        };
        let at_ms = state.index.now_ms();
        access_log::record(&state.access_logs, at_ms, logged, &answer);
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

/// What became of a request: its operation (for logs and metrics), the bucket it named,
/// its answer, and what its bucket's access log needs of it (if that bucket logs).
struct Handled {
    operation: &'static str,
    bucket: Option<String>,
    result: S3Result<S3Response>,
    logged: Option<Logged>,
}

impl Handled {
    fn new(operation: &'static str, bucket: Option<String>, result: S3Result<S3Response>) -> Self {
        Handled {
            operation,
            bucket,
            result,
            logged: None,
        }
    }

    fn logged(self, logged: Option<Logged>) -> Self {
        Handled { logged, ..self }
    }
}

/// What the access log of a request refused before it reached its bucket's record needs:
/// the bucket is read again for it (only if it exists and logs does it count).
async fn refused(
    state: &S3State,
    route: &Route,
    auth: &Authenticated,
    parts: &http::request::Parts,
    client: Client,
) -> Option<Logged> {
    let bucket = state.index.bucket(route.bucket.as_deref()?).await.ok();
    Logged::of(bucket.as_ref(), auth, route.key.as_deref(), (parts, client))
}

/// An actual cross-origin request (one with `Origin`) gets the `Access-Control-*` headers
/// of the bucket rule that allows it, whatever its answer, so browsers can read errors too.
async fn add_cors_headers(
    state: &S3State,
    bucket: &str,
    origin: &HeaderValue,
    method: &Method,
    response: &mut S3Response,
) {
    let Ok(origin) = origin.to_str() else { return };
    let Ok(record) = state.index.bucket(bucket).await else {
        return;
    };
    let Some(rules) = &record.cors else { return };
    let request = cors::CorsRequest {
        origin,
        method: method.as_str(),
        headers: Vec::new(),
    };
    if let Some(rule) = cors::find(rules, &request) {
        cors::apply(response.headers_mut(), rule, &request, false);
    }
}

/// Runs a request's handling; a panic in it becomes a logged 500 InternalError answer
/// instead of a dropped connection (the panic stays confined to this request).
async fn unless_panicked(handling: impl Future<Output = Handled>, request_id: &str) -> Handled {
    match std::panic::AssertUnwindSafe(handling).catch_unwind().await {
        Ok(answer) => answer,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(request_id, panic = what, "request handling panicked");
            Handled::new("Unknown", None, Err(ErrorCode::InternalError.into()))
        }
    }
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
    client: Client,
    body: Body,
    request_id: &str,
) -> Handled {
    let query = Query::parse(parts.uri.query());
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if parts.uri.path().starts_with(admin::PREFIX) {
        let answer = admin::handle(state, parts, body, request_id).await;
        return Handled::new("Admin", None, Ok(answer));
    }
    let (bucket, key) = match router::locate(host, state.domain.as_deref(), parts.uri.path()) {
        Ok(location) => location,
        Err(err) => return Handled::new("Unknown", None, Err(err)),
    };
    // A header that is not text still names a copy: it is refused as an invalid source.
    let copy_source = parts
        .headers
        .get("x-amz-copy-source")
        .map(|v| v.to_str().unwrap_or_default());
    let route = match router::route(&parts.method, bucket.clone(), key, &query, copy_source) {
        Ok(route) => route,
        Err(err) => return Handled::new("Unknown", bucket, Err(err)),
    };
    let name = route.endpoint.name();
    let failed = |err| Handled::new(name, route.bucket.clone(), Err(err));
    let auth = if permission(&route.endpoint).scope == Scope::Public {
        Authenticated::anonymous()
    } else {
        match state.authenticate(&parts).await {
            Ok(auth) => auth,
            Err(err) => {
                let anonymous = Authenticated::anonymous();
                let logged = refused(state, &route, &anonymous, &parts, client).await;
                return failed(err).logged(logged);
            }
        }
    };
    if route.key.as_ref().is_some_and(|k| k.len() > MAX_KEY_LEN) {
        return failed(ErrorCode::KeyTooLongError.into());
    }
    let requester = Requester {
        user: auth.user(),
        via: auth.via,
        headers: &parts.headers,
        query: &query,
        client,
        object_tags: None,
    };
    let access = match authorize(state, &requester, &route).await {
        Ok(access) => access,
        Err(err) => {
            let logged = refused(state, &route, &auth, &parts, client).await;
            return failed(err).logged(logged);
        }
    };
    let key = route.key.as_deref();
    let logged = Logged::of(access.bucket_record(), &auth, key, (&parts, client)).map(|l| Logged {
        acl_required: access.acl_required(),
        ..l
    });
    let bucket = route.bucket.clone();
    let req = S3Request::new(
        parts,
        access,
        route.bucket.unwrap_or_default(),
        route.key.unwrap_or_default(),
        (auth, client),
        body,
    );
    Handled::new(name, bucket, s3::run(state, route.endpoint, req).await).logged(logged)
}

fn error_response(err: &S3Error, resource: &str, request_id: &str, head: bool) -> S3Response {
    let mut builder = Response::builder().status(err.status());
    if err.code == ErrorCode::InvalidRange
        && let Some((_, size)) = err.extra.iter().find(|(n, _)| *n == "ActualObjectSize")
    {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes */{size}"));
    }
    for (name, value) in &err.headers {
        builder = builder.header(*name, value);
    }
    let no_body = head || err.status() == StatusCode::NOT_MODIFIED;
    let body = if no_body {
        Body::empty()
    } else {
        Body::from(xml::error_document(err, resource, request_id))
    };
    builder
        .header(header::CONTENT_TYPE, "application/xml")
        .body(body)
        .expect("error responses are well-formed")
}

fn new_request_id() -> String {
    let id = uuid::Uuid::new_v4();
    hex::encode_upper(&id.as_bytes()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_an_internal_error() {
        let handled = unless_panicked(async { panic!("handler bug") }, "REQ").await;
        assert_eq!(handled.result.unwrap_err().code, ErrorCode::InternalError);
        let ok = async { Handled::new("HeadBucket", None, Ok(S3Response::default())) };
        let handled = unless_panicked(ok, "REQ").await;
        assert_eq!(handled.operation, "HeadBucket");
        assert!(handled.result.is_ok());
    }
}
