//! An authenticated, routed S3 request, and reading its body.

use crate::auth::{Authenticated, PayloadMode, Via};
use crate::authorize::Access;
use crate::body::{VerifiedBody, verified_body};
use crate::checksum::ChecksumAlgorithm;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::query::Query;
use crate::requester::{Client, Requester};
use axum::body::Body;
use http::HeaderMap;

/// An authenticated, routed request.
pub struct S3Request {
    pub parts: http::request::Parts,
    /// What authorization allowed this request to touch.
    pub access: Access,
    pub bucket: String,
    pub key: String,
    pub access_key: String,
    user: String,
    via: Via,
    client: Client,
    /// The unread body and how to verify it; a Mutex only so that `&S3Request`
    /// is `Sync` (the body itself is not) and can be held across awaits.
    pending: std::sync::Mutex<Option<(Body, PayloadMode)>>,
}

impl S3Request {
    pub fn new(
        parts: http::request::Parts,
        access: Access,
        bucket: String,
        key: String,
        (auth, client): (Authenticated, Client),
        body: Body,
    ) -> Self {
        S3Request {
            parts,
            access,
            bucket,
            key,
            access_key: auth.access_key,
            user: auth.user,
            via: auth.via,
            client,
            pending: std::sync::Mutex::new(Some((body, auth.payload))),
        }
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The request body, decoded and verified as its signature mode and
    /// checksum headers demand. Can be taken once.
    pub fn take_body(&mut self, want: Option<ChecksumAlgorithm>) -> S3Result<VerifiedBody> {
        let (body, payload) = self.take_pending()?;
        verified_body(body, &self.parts.headers, payload, want)
    }

    /// The body of a request whose `x-amz-checksum-*` headers describe
    /// something else (CompleteMultipartUpload: the whole object).
    fn take_document_body(&mut self) -> S3Result<VerifiedBody> {
        let mut headers = self.parts.headers.clone();
        for alg in ChecksumAlgorithm::all() {
            headers.remove(alg.header_name());
        }
        let (body, payload) = self.take_pending()?;
        verified_body(body, &headers, payload, None)
    }

    fn take_pending(&mut self) -> S3Result<(Body, PayloadMode)> {
        let pending = self.pending.get_mut().unwrap_or_else(|e| e.into_inner());
        pending
            .take()
            .ok_or_else(|| S3Error::internal("request body taken twice"))
    }

    /// The user the request's key belongs to (empty for an anonymous request).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The request as bucket policies see it, for the decisions made while it is handled
    /// (each key of a DeleteObjects).
    pub fn requester<'a>(&'a self, query: &'a Query) -> Requester<'a> {
        Requester {
            user: (self.via != Via::Anonymous).then_some(self.user.as_str()),
            via: self.via,
            headers: &self.parts.headers,
            query,
            client: self.client,
            object_tags: None,
        }
    }
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
