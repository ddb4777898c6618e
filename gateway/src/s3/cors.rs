//! GetBucketCors, PutBucketCors, DeleteBucketCors, and the preflight `OPTIONS` request
//! browsers send before a cross-origin request.

use super::request::{S3Request, read_small_body};
use super::response::{S3Response, empty, xml_ok};
use crate::cors::{self, CorsRequest};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::state::S3State;
use crate::xml::{self, NS};
use http::StatusCode;
use kura_index::CorsRule;

/// 100 rules with their origins and headers fit well within this.
const MAX_BODY: usize = 256 * 1024;

pub async fn get_bucket_cors(req: S3Request) -> S3Result<S3Response> {
    let bucket = req.access.bucket()?;
    let Some(rules) = &bucket.cors else {
        return Err(S3Error::from(ErrorCode::NoSuchCORSConfiguration)
            .with("BucketName", bucket.name.clone()));
    };
    let rules = rules
        .iter()
        .map(|r| xml::CorsRuleXml {
            id: r.id.clone(),
            allowed_method: r.allowed_methods.clone(),
            allowed_origin: r.allowed_origins.clone(),
            allowed_header: r.allowed_headers.clone(),
            expose_header: r.expose_headers.clone(),
            max_age_seconds: r.max_age_seconds,
        })
        .collect();
    xml_ok(xml::to_xml(
        "CORSConfiguration",
        &xml::CorsConfiguration { xmlns: NS, rules },
    )?)
}

pub async fn put_bucket_cors(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let body = read_small_body(&mut req, MAX_BODY).await?;
    let config: xml::CorsConfiguration = xml::from_xml("CORSConfiguration", &body)?;
    let rules: Vec<CorsRule> = config
        .rules
        .into_iter()
        .map(|r| CorsRule {
            id: r.id,
            allowed_methods: r.allowed_method,
            allowed_origins: r.allowed_origin,
            allowed_headers: r.allowed_header,
            expose_headers: r.expose_header,
            max_age_seconds: r.max_age_seconds,
        })
        .collect();
    cors::validate(&rules)?;
    state
        .index
        .update_bucket(&req.bucket, |record| record.cors = Some(rules.clone()))
        .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn delete_bucket_cors(state: &S3State, req: S3Request) -> S3Result<S3Response> {
    state
        .index
        .update_bucket(&req.bucket, |record| record.cors = None)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Answers a preflight from the bucket's rules: 200 with the `Access-Control-*` headers of
/// the first rule that allows the origin, method and headers asked about, else 403.
pub async fn preflight(req: S3Request) -> S3Result<S3Response> {
    let bad = |message: &str| S3Error::new(ErrorCode::BadRequest, message);
    let origin = req
        .header("origin")
        .ok_or_else(|| bad("Insufficient information. Origin request header needed."))?;
    let method = req
        .header("access-control-request-method")
        .ok_or_else(|| bad("Invalid Access-Control-Request-Method: null"))?;
    let request = CorsRequest {
        origin,
        method,
        headers: cors::requested_headers(req.headers()),
    };
    let bucket = req.access.bucket()?;
    let Some(rules) = &bucket.cors else {
        return Err(S3Error::new(
            ErrorCode::AccessForbidden,
            "CORSResponse: CORS is not enabled for this bucket.",
        ));
    };
    let rule = cors::find(rules, &request).ok_or(ErrorCode::AccessForbidden)?;
    let mut response = empty(StatusCode::OK);
    cors::apply(response.headers_mut(), rule, &request, true);
    Ok(response)
}
