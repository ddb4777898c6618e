//! PostObject: a browser uploads a file with an HTML form (multipart/form-data), signed by
//! a policy document that says what the form may hold.

use super::meta;
use super::object_lock;
use super::put::{DEFAULT_CHECKSUM, body_version, names_checksum};
use super::request::S3Request;
use super::response::{S3Response, quoted};
use super::store::{Destination, MAX_SINGLE_UPLOAD, or_discard, write_body_unless_empty};
use super::versioning::insert_version_id;
use crate::acl;
use crate::auth::{self, FormSignature, PayloadMode};
use crate::authorize;
use crate::body::verified_body;
use crate::error::{ErrorCode, S3Error, S3Result};
use crate::post_policy::PostPolicy;
use crate::query::Query;
use crate::requester::Requester;
use crate::sse;
use crate::state::S3State;
use crate::tags::{self, MAX_OBJECT_TAGS};
use crate::xml;
use axum::body::Body;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};

/// The form's fields before the file: AWS caps them; Kura allows a little more.
const MAX_FIELDS_BYTES: usize = 64 * 1024;

/// Form fields that become the object's headers as a PUT would send them.
const HEADER_FIELDS: &[&str] = &[
    "cache-control",
    "content-type",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-storage-class",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-algorithm",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];

pub async fn post_object(state: &S3State, mut req: S3Request) -> S3Result<S3Response> {
    let boundary = req
        .header("content-type")
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::PreconditionFailed,
                "Bucket POST must be of the enclosure-type multipart/form-data",
            )
        })?;
    let mut form = multer::Multipart::new(req.take_body(None)?, boundary);
    let mut fields: Vec<(String, String)> = vec![("bucket".into(), req.bucket.clone())];
    let mut size = 0;
    // AWS reads the fields up to the file and ignores any after it.
    let file = loop {
        let Some(field) = form.next_field().await.map_err(malformed)? else {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                "POST requires exactly one file upload per request.",
            )
            .with("ArgumentName", "file"));
        };
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            break field;
        }
        size += name.len();
        let value = read_field(field, &mut size).await?;
        fields.push((name, value));
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let key = field("key")
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidArgument,
                "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
            )
            .with("ArgumentName", "key")
        })?
        .replace("${filename}", file.file_name().unwrap_or_default());
    if key.is_empty() || key.len() > crate::names::MAX_KEY_LEN {
        return Err(
            S3Error::new(ErrorCode::InvalidArgument, "The key is not valid.")
                .with("ArgumentName", "key"),
        );
    }
    let signature = FormSignature {
        policy: field("policy"),
        algorithm: field("x-amz-algorithm"),
        credential: field("x-amz-credential"),
        amz_date: field("x-amz-date"),
        signature_v4: field("x-amz-signature"),
        access_key_v2: field("awsaccesskeyid"),
        signature_v2: field("signature"),
    };
    let signer_key = state.resolve(signature.claimed_access_key()).await?;
    let signer = auth::authenticate_form(&signature, &signer_key, &state.region)?;
    let policy = field("policy").map(PostPolicy::parse).transpose()?;
    if let Some(policy) = &policy {
        // A key condition may be written for the key the object gets (`${filename}`
        // filled in, as radosgw reads it) or for the field as sent (`{"key":
        // "up/${filename}"}`): either reading that holds admits the upload.
        let now = time::OffsetDateTime::now_utc();
        let mut filled = fields.clone();
        if let Some((_, value)) = filled.iter_mut().find(|(n, _)| n == "key") {
            value.clone_from(&key);
        }
        if let Err(refused) = policy.check(now, &filled) {
            policy.check(now, &fields).map_err(|_| refused)?;
        }
    }
    let range = policy.and_then(|p| p.length_range());
    let headers = object_headers(&fields)?;
    let bucket = req.access.bucket()?.clone();
    let query = Query::default();
    let requester = Requester {
        user: signer.user(),
        via: signer.via,
        headers: &headers,
        ..req.requester(&query)
    };
    if !authorize::decide(&bucket, Some(&key), None, &requester, "s3:PutObject") {
        return Err(ErrorCode::AccessDenied.into());
    }
    let mut meta = meta::check_write_headers(&headers)?;
    if let Some(tagging) = field("tagging") {
        meta.tags = tags::from_document(tagging.as_bytes(), MAX_OBJECT_TAGS)?;
    }
    let (owner, acl) = acl::for_new_object(&state.index, &headers, &bucket, &signer.user).await?;
    meta.acl = acl;
    let (data_key, encryption) = sse::for_write(&headers, &bucket, &state.master_key)?.unzip();
    meta.encryption = encryption;
    object_lock::apply(&mut meta, &headers, &bucket, state.index.now_ms())?;
    let want = (!names_checksum(&headers)).then_some(DEFAULT_CHECKSUM);
    let mut body = verified_body(
        Body::from_stream(file),
        &headers,
        PayloadMode::Unsigned,
        want,
    )?;
    let max = range.map_or(MAX_SINGLE_UPLOAD, |(_, max)| max.min(MAX_SINGLE_UPLOAD));
    let dest = Destination::object(&bucket, &key);
    let blob = write_body_unless_empty(state, dest, &mut body, max, data_key.as_ref()).await?;
    let size_ok = match range {
        Some((min, _)) if blob.as_ref().map_or(0, |b| b.len) < min => {
            Err(ErrorCode::EntityTooSmall.into())
        }
        _ => Ok(()),
    };
    or_discard(state, dest, blob.as_ref(), size_ok).await?;
    let version = body_version(blob.as_ref(), &body, meta, &owner)?;
    let put = state
        .index
        .put_object::<S3Error>(&bucket.name, &key, version, |_| Ok(()))
        .await;
    let stored = or_discard(state, dest, blob.as_ref(), put).await?;
    let etag = quoted(&stored.etag);
    let location = format!("/{}/{}", bucket.name, encode(&key).replace("%2F", "/"));
    let mut response = answer(
        field("success_action_redirect").or(field("redirect")),
        field("success_action_status"),
        xml::PostResponse {
            location,
            bucket: bucket.name.clone(),
            key,
            etag,
        },
    )?;
    insert_version_id(
        response.headers_mut(),
        "x-amz-version-id",
        &stored.version_id,
    );
    Ok(response)
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, SET).to_string()
}

/// A field's text, read a chunk at a time so that `size` (all fields so far) never grows
/// past the limit, however large a field claims to be.
async fn read_field(mut field: multer::Field<'static>, size: &mut usize) -> S3Result<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        *size += chunk.len();
        if *size > MAX_FIELDS_BYTES {
            return Err(ErrorCode::MaxPostPreDataLengthExceeded.into());
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| {
        S3Error::new(
            ErrorCode::InvalidArgument,
            "Form fields must be UTF-8 text.",
        )
    })
}

fn malformed(err: multer::Error) -> S3Error {
    S3Error::new(
        ErrorCode::MalformedPOSTRequest,
        format!("The body of your POST request is not well-formed multipart/form-data: {err}"),
    )
}

/// The headers a PUT of the same object would carry: `acl` as `x-amz-acl`, the content
/// headers, `x-amz-meta-*`, checksums, encryption and grants.
fn object_headers(fields: &[(String, String)]) -> S3Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        let header = match name.as_str() {
            "acl" => "x-amz-acl",
            n if HEADER_FIELDS.contains(&n) || n.starts_with("x-amz-meta-") => n,
            _ => continue,
        };
        let invalid = || {
            S3Error::new(
                ErrorCode::InvalidArgument,
                format!("The form field {name} is not valid."),
            )
            .with("ArgumentName", name.clone())
        };
        let header = HeaderName::from_bytes(header.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        headers.insert(header, value);
    }
    Ok(headers)
}

/// The answer a form asks for: a redirect (303) to `redirect` with the object's bucket,
/// key and ETag; or `success_action_status` 200 (empty), 201 (a PostResponse document) or
/// 204 (the default).
fn answer(
    redirect: Option<&str>,
    status: Option<&str>,
    doc: xml::PostResponse,
) -> S3Result<S3Response> {
    let (status, location, body) = match (redirect.filter(|u| !u.is_empty()), status) {
        (Some(url), _) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            let target = format!(
                "{url}{sep}bucket={}&key={}&etag={}",
                encode(&doc.bucket),
                encode(&doc.key),
                encode(&doc.etag)
            );
            (StatusCode::SEE_OTHER, target, Body::empty())
        }
        (None, Some("200")) => (StatusCode::OK, doc.location.clone(), Body::empty()),
        (None, Some("201")) => {
            let body = Body::from(xml::to_xml("PostResponse", &doc)?);
            (StatusCode::CREATED, doc.location.clone(), body)
        }
        (None, _) => (StatusCode::NO_CONTENT, doc.location.clone(), Body::empty()),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::ETAG, &doc.etag)
        .header(header::LOCATION, location);
    if status == StatusCode::CREATED {
        builder = builder.header(header::CONTENT_TYPE, "application/xml");
    }
    builder.body(body).map_err(S3Error::internal)
}
