//! Building S3 responses: XML bodies, empty answers, ETag quoting.

use crate::error::S3Result;
use axum::body::Body;
use http::{Response, StatusCode, header};

pub type S3Response = Response<Body>;

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
