//! GetObjectAttributes: an object's ETag, checksum, parts, storage class and size, without
//! its data.

use super::request::S3Request;
use super::response::S3Response;
use super::versioning::{object_version, version_header};
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::params::MAX_PARTS;
use crate::sse::{self, CustomerKey};
use crate::state::S3State;
use crate::timefmt::http_date;
use crate::xml::{self, ChecksumFields, NS};
use http::{Response, StatusCode, header};

/// What `x-amz-object-attributes` may ask for.
const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

fn invalid(name: &'static str, value: &str, message: &str) -> S3Error {
    S3Error::new(ErrorCode::InvalidArgument, message)
        .with("ArgumentName", name)
        .with("ArgumentValue", value)
}

/// The attributes asked for, each one of [`ATTRIBUTES`].
fn wanted(req: &S3Request) -> S3Result<Vec<&'static str>> {
    let raw = req.header("x-amz-object-attributes").unwrap_or("");
    let mut wanted = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let known = ATTRIBUTES.iter().find(|a| **a == name).ok_or_else(|| {
            invalid(
                "x-amz-object-attributes",
                raw,
                "Invalid attribute name specified.",
            )
        })?;
        wanted.push(*known);
    }
    if wanted.is_empty() {
        return Err(invalid(
            "x-amz-object-attributes",
            raw,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        ));
    }
    Ok(wanted)
}

fn number(req: &S3Request, name: &'static str, default: usize) -> S3Result<usize> {
    match req.header(name) {
        None => Ok(default),
        Some(raw) => raw.trim().parse().map_err(|_| {
            invalid(
                name,
                raw,
                &format!("Provided {name} not an integer or within integer range"),
            )
        }),
    }
}

pub async fn get_object_attributes(
    state: &S3State,
    req: S3Request,
    version_id: Option<&str>,
) -> S3Result<S3Response> {
    let wanted = wanted(&req)?;
    let max_parts = number(&req, "x-amz-max-parts", MAX_PARTS)?.min(MAX_PARTS);
    let marker = u32::try_from(number(&req, "x-amz-part-number-marker", 0)?).unwrap_or(u32::MAX);
    let version = object_version(state, &req, version_id).await?;
    // As for a GET, an SSE-C object's attributes are for the holder of its key only.
    let customer = CustomerKey::from_headers(req.headers())?;
    sse::key_for(
        version.meta.encryption.as_ref(),
        customer,
        &state.master_key,
    )?;
    let asked = |name: &str| wanted.contains(&name);
    let object_parts = (asked("ObjectParts") && version.multipart).then(|| {
        let algorithm = version.checksum.as_ref().map(|c| c.algorithm.as_str());
        let after: Vec<_> = (1u32..)
            .zip(&version.parts)
            .filter(|(n, _)| *n > marker)
            .collect();
        let shown = &after[..after.len().min(max_parts)];
        let is_truncated = after.len() > shown.len();
        xml::ObjectParts {
            parts_count: version.parts.len(),
            part_number_marker: marker,
            next_part_number_marker: shown.last().map(|(n, _)| *n).filter(|_| is_truncated),
            max_parts,
            is_truncated,
            // AWS lists parts only for objects uploaded with a checksum.
            part: shown
                .iter()
                .filter_map(|(n, part)| {
                    let value = part.checksum.clone()?;
                    Some(xml::ObjectPart {
                        part_number: *n,
                        size: part.size,
                        checksum: ChecksumFields::new(algorithm?, value, None),
                    })
                })
                .collect(),
        }
    });
    let doc = xml::GetObjectAttributesResponse {
        xmlns: NS,
        etag: asked("ETag").then(|| version.etag.clone()),
        checksum: version
            .checksum
            .as_ref()
            .filter(|_| asked("Checksum"))
            .map(ChecksumFields::from),
        object_parts,
        storage_class: asked("StorageClass").then_some("STANDARD"),
        object_size: asked("ObjectSize").then_some(version.size),
    };
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/xml")
        .header(header::LAST_MODIFIED, http_date(version.last_modified_ms()));
    Ok(version_header(response, &version.version_id)
        .body(xml::to_xml("GetObjectAttributesResponse", &doc)?.into())
        .expect("valid headers"))
}
