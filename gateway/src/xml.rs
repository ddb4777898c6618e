//! S3's XML documents: response bodies Kura writes and request bodies it reads.
//! Only shapes live here; the handlers fill them.

use crate::error::{ErrorCode, S3Error, S3Result};
use serde::{Deserialize, Serialize};

/// AWS's `<Error>` document for `err` on `resource`.
pub fn error_document(err: &S3Error, resource: &str, request_id: &str) -> String {
    let escape = |text: &str| quick_xml::escape::escape(text).into_owned();
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
    xml
}

pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Serialises a response document with the XML declaration AWS sends.
pub fn to_xml<T: Serialize>(root: &str, value: &T) -> S3Result<String> {
    let body = quick_xml::se::to_string_with_root(root, value).map_err(S3Error::internal)?;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
    ))
}

/// Request documents nest no deeper than this (S3's deepest, lifecycle rules, needs 6).
const MAX_DEPTH: usize = 32;

/// Parses a request document whose root element must be `root`. Every body Kura parses
/// comes through here: a document that is not well-formed, declares a DTD or entities,
/// uses an unknown entity, nests too deep or does not match the schema is MalformedXML,
/// and the deserializer is never handed anything that could make it panic (if it still
/// did, that too is MalformedXML).
pub fn from_xml<T: for<'de> Deserialize<'de>>(root: &str, body: &[u8]) -> S3Result<T> {
    let malformed = || S3Error::from(ErrorCode::MalformedXML);
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    let (found, leaves) = check_document(text)?;
    if found != root {
        return Err(malformed());
    }
    let text = keep_edge_whitespace(text, &leaves);
    let parsed = std::panic::catch_unwind(|| quick_xml::de::from_str::<T>(&text));
    match parsed {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(malformed()),
        Err(_) => {
            tracing::error!(root, "the XML deserializer panicked on a checked document");
            Err(malformed())
        }
    }
}

/// `text` with the whitespace at either end of each leaf element's text (`leaves`, byte
/// ranges) written as character references. The deserializer trims text, and S3 does not:
/// a key ` a ` in a DeleteObjects request is that key, not `a`. A reference is not
/// whitespace to the trimming, and reads back as the character.
fn keep_edge_whitespace<'a>(
    text: &'a str,
    leaves: &[std::ops::Range<usize>],
) -> std::borrow::Cow<'a, str> {
    let edged = |leaf: &std::ops::Range<usize>| {
        let value = &text[leaf.clone()];
        value.trim_matches(is_xml_space).len() != value.len()
    };
    // Almost every document has none: it goes to the deserializer as it came.
    if !leaves.iter().any(edged) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut kept = String::with_capacity(text.len());
    let mut copied = 0;
    for leaf in leaves {
        let value = &text[leaf.clone()];
        let inner = value.trim_matches(is_xml_space);
        if inner.len() == value.len() {
            continue;
        }
        kept.push_str(&text[copied..leaf.start]);
        let start = value.len() - value.trim_start_matches(is_xml_space).len();
        let references = |edge: &str, kept: &mut String| {
            for c in edge.chars() {
                kept.push_str(&format!("&#{};", u32::from(c)));
            }
        };
        references(&value[..start], &mut kept);
        kept.push_str(inner);
        references(&value[start + inner.len()..], &mut kept);
        copied = leaf.end;
    }
    kept.push_str(&text[copied..]);
    std::borrow::Cow::Owned(kept)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Reads a whole document once: it must be well-formed, without a DTD (so no entity can be
/// declared or expanded), every entity reference one of XML's five, every element closed,
/// and no deeper than [`MAX_DEPTH`]. Returns the root element's local name, and where the
/// text of each element holding only text lies.
fn check_document(text: &str) -> S3Result<(String, Vec<std::ops::Range<usize>>)> {
    use quick_xml::events::Event;
    let malformed = |message: &str| S3Error::new(ErrorCode::MalformedXML, message);
    let mut reader = quick_xml::Reader::from_str(text);
    let (mut depth, mut root) = (0usize, None);
    let mut leaves = Vec::new();
    // The text just read right after a start tag, until its end tag shows it was a leaf's.
    let (mut after_start, mut text_read) = (false, None);
    loop {
        let from = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|_| malformed(ErrorCode::MalformedXML.default_message()))?;
        let was_after_start = std::mem::replace(&mut after_start, false);
        let text_before = text_read.take();
        match event {
            Event::DocType(_) => {
                return Err(malformed(
                    "Document type declarations and entities are not allowed.",
                ));
            }
            Event::Start(_) | Event::Empty(_) if root.is_some() && depth == 0 => {
                return Err(malformed(
                    "The XML document has more than one root element.",
                ));
            }
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(malformed("The XML document is nested too deeply."));
                }
                root.get_or_insert_with(|| local_name(&e));
                after_start = true;
            }
            Event::Empty(e) => {
                root.get_or_insert_with(|| local_name(&e));
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                leaves.extend(text_before);
            }
            Event::Text(e) => {
                e.unescape()
                    .map_err(|_| malformed(ErrorCode::MalformedXML.default_message()))?;
                if was_after_start {
                    text_read = Some(from..reader.buffer_position() as usize);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match root {
        Some(root) if depth == 0 => Ok((root, leaves)),
        _ => Err(malformed(ErrorCode::MalformedXML.default_message())),
    }
}

fn local_name(e: &quick_xml::events::BytesStart) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

#[derive(Serialize)]
pub struct Owner {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "DisplayName")]
    pub display_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAllMyBucketsResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub owner: Owner,
    pub buckets: Buckets,
    /// Where the next page starts, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Serialize)]
pub struct Buckets {
    #[serde(rename = "Bucket")]
    pub bucket: Vec<BucketEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BucketEntry {
    pub name: String,
    pub creation_date: String,
    pub bucket_region: String,
}

#[derive(Serialize)]
pub struct LocationConstraint {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "$text")]
    pub region: String,
}

#[derive(Serialize)]
pub struct VersioningConfiguration {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "Status", skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The body of Get/PutObjectLockConfiguration.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectLockConfiguration {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_lock_enabled: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<ObjectLockRule>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectLockRule {
    pub default_retention: Option<DefaultRetention>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DefaultRetention {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub years: Option<i64>,
}

/// The body of Get/PutObjectRetention.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Retention {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain_until_date: Option<String>,
}

/// The body of Get/PutObjectLegalHold.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LegalHold {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    pub status: Option<String>,
}

/// The body of PutBucketVersioning.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersioningRequest {
    pub status: Option<String>,
    #[serde(rename = "MfaDelete")]
    pub mfa_delete: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessControlPolicy {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub owner: Owner,
    pub access_control_list: AccessControlList,
}

#[derive(Serialize)]
pub struct AccessControlList {
    #[serde(rename = "Grant")]
    pub grant: Vec<Grant>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: String,
}

#[derive(Serialize)]
pub struct Grantee {
    #[serde(rename = "@xmlns:xsi")]
    pub xmlns_xsi: &'static str,
    #[serde(rename = "@xsi:type")]
    pub kind: &'static str,
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "DisplayName", skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(rename = "URI", skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl Grantee {
    pub fn user(owner: Owner) -> Self {
        Grantee {
            xmlns_xsi: XSI,
            kind: "CanonicalUser",
            id: Some(owner.id),
            display_name: Some(owner.display_name),
            uri: None,
        }
    }

    pub fn group(uri: String) -> Self {
        Grantee {
            xmlns_xsi: XSI,
            kind: "Group",
            id: None,
            display_name: None,
            uri: Some(uri),
        }
    }
}

impl AccessControlPolicy {
    pub fn new(owner: Owner, grant: Vec<Grant>) -> Self {
        AccessControlPolicy {
            xmlns: NS,
            owner,
            access_control_list: AccessControlList { grant },
        }
    }
}

/// A PutBucketAcl / PutObjectAcl document.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessControlPolicyRequest {
    pub owner: Option<OwnerRequest>,
    pub access_control_list: Option<AccessControlListRequest>,
}

#[derive(Deserialize)]
pub struct OwnerRequest {
    #[serde(rename = "ID")]
    pub id: Option<String>,
}

#[derive(Deserialize)]
pub struct AccessControlListRequest {
    #[serde(rename = "Grant", default)]
    pub grant: Vec<GrantRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantRequest {
    pub grantee: GranteeRequest,
    pub permission: String,
}

#[derive(Deserialize)]
pub struct GranteeRequest {
    #[serde(rename = "@xsi:type", alias = "@type")]
    pub kind: Option<String>,
    #[serde(rename = "ID")]
    pub id: Option<String>,
    #[serde(rename = "EmailAddress")]
    pub email_address: Option<String>,
    #[serde(rename = "URI")]
    pub uri: Option<String>,
}

/// The answer to a browser POST upload with `success_action_status` 201.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PostResponse {
    pub location: String,
    pub bucket: String,
    pub key: String,
    #[serde(rename = "ETag")]
    pub etag: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyStatus {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub is_public: bool,
}

/// OwnershipControls, as answered and as put.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OwnershipControls {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    #[serde(rename = "Rule", default)]
    pub rule: Vec<OwnershipControlsRule>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OwnershipControlsRule {
    pub object_ownership: String,
}

/// PublicAccessBlockConfiguration, as answered and as put (a setting left out is false).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicAccessBlockConfiguration {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    #[serde(default)]
    pub block_public_acls: bool,
    #[serde(default)]
    pub ignore_public_acls: bool,
    #[serde(default)]
    pub block_public_policy: bool,
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Contents {
    pub key: String,
    pub last_modified: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    pub size: u64,
    pub storage_class: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

#[derive(Serialize)]
pub struct CommonPrefix {
    #[serde(rename = "Prefix")]
    pub prefix: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListBucketResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub name: String,
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_continuation_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_count: Option<usize>,
    pub max_keys: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<&'static str>,
    pub is_truncated: bool,
    pub contents: Vec<Contents>,
    pub common_prefixes: Vec<CommonPrefix>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectVersionEntry {
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub last_modified: String,
    #[serde(rename = "ETag", skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<&'static str>,
    pub owner: Owner,
}

/// A `<Version>` or a `<DeleteMarker>`, in key order.
#[derive(Serialize)]
pub enum VersionItem {
    Version(ObjectVersionEntry),
    DeleteMarker(ObjectVersionEntry),
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListVersionsResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub name: String,
    pub prefix: String,
    pub key_marker: String,
    pub version_id_marker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_key_marker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_version_id_marker: Option<String>,
    pub max_keys: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<&'static str>,
    pub is_truncated: bool,
    #[serde(rename = "$value")]
    pub items: Vec<VersionItem>,
    pub common_prefixes: Vec<CommonPrefix>,
}

/// The checksum elements of a result document.
#[derive(Serialize, Default)]
pub struct ChecksumFields {
    #[serde(rename = "ChecksumCRC32", skip_serializing_if = "Option::is_none")]
    pub crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C", skip_serializing_if = "Option::is_none")]
    pub crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME", skip_serializing_if = "Option::is_none")]
    pub crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1", skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256", skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(rename = "ChecksumType", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl From<&kura_index::StoredChecksum> for ChecksumFields {
    fn from(c: &kura_index::StoredChecksum) -> Self {
        ChecksumFields::new(&c.algorithm, c.value.clone(), Some(c.kind.clone()))
    }
}

impl ChecksumFields {
    pub fn new(algorithm: &str, value: String, kind: Option<String>) -> Self {
        let mut fields = ChecksumFields {
            kind,
            ..Default::default()
        };
        let slot = match algorithm {
            "CRC32" => &mut fields.crc32,
            "CRC32C" => &mut fields.crc32c,
            "CRC64NVME" => &mut fields.crc64nvme,
            "SHA1" => &mut fields.sha1,
            _ => &mut fields.sha256,
        };
        *slot = Some(value);
        fields
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CopyResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "ETag")]
    pub etag: String,
    pub last_modified: String,
    #[serde(flatten)]
    pub checksum: ChecksumFields,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InitiateMultipartUploadResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompleteMultipartUploadResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub location: String,
    pub bucket: String,
    pub key: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(flatten)]
    pub checksum: ChecksumFields,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartEntry {
    pub part_number: u32,
    pub last_modified: String,
    #[serde(rename = "ETag")]
    pub etag: String,
    pub size: u64,
    #[serde(flatten)]
    pub checksum: ChecksumFields,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPartsResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    pub initiator: Owner,
    pub owner: Owner,
    pub storage_class: &'static str,
    pub part_number_marker: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_part_number_marker: Option<u32>,
    pub max_parts: usize,
    pub is_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    pub part: Vec<PartEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UploadEntry {
    pub key: String,
    pub upload_id: String,
    pub initiator: Owner,
    pub owner: Owner,
    pub storage_class: &'static str,
    pub initiated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMultipartUploadsResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub bucket: String,
    pub key_marker: String,
    pub upload_id_marker: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_key_marker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_upload_id_marker: Option<String>,
    pub prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    pub max_uploads: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<&'static str>,
    pub is_truncated: bool,
    pub upload: Vec<UploadEntry>,
    pub common_prefixes: Vec<CommonPrefix>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeletedEntry {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_marker: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_marker_version_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteErrorEntry {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub code: String,
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteResult {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub deleted: Vec<DeletedEntry>,
    pub error: Vec<DeleteErrorEntry>,
}

// ---- request documents ----

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CreateBucketConfiguration {
    pub location_constraint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompleteMultipartUpload {
    #[serde(default)]
    pub part: Vec<CompletedPartXml>,
}

#[derive(Deserialize)]
pub struct CompletedPartXml {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "ChecksumCRC32")]
    pub crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C")]
    pub crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME")]
    pub crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1")]
    pub sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256")]
    pub sha256: Option<String>,
}

impl CompletedPartXml {
    /// The part checksum the client states, whichever algorithm it names.
    pub fn checksum(&self) -> Option<&str> {
        [
            &self.crc32,
            &self.crc32c,
            &self.crc64nvme,
            &self.sha1,
            &self.sha256,
        ]
        .into_iter()
        .find_map(|c| c.as_deref())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Delete {
    #[serde(default)]
    pub quiet: bool,
    #[serde(default)]
    pub object: Vec<ObjectIdentifier>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectIdentifier {
    pub key: String,
    pub version_id: Option<String>,
    /// Conditions of a conditional delete.
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    pub last_modified_time: Option<String>,
    pub size: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetObjectAttributesResponse {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(rename = "ETag", skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ChecksumFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_parts: Option<ObjectParts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_size: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectParts {
    pub parts_count: usize,
    pub part_number_marker: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_part_number_marker: Option<u32>,
    pub max_parts: usize,
    pub is_truncated: bool,
    #[serde(rename = "Part")]
    pub part: Vec<ObjectPart>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectPart {
    pub part_number: u32,
    pub size: u64,
    #[serde(flatten)]
    pub checksum: ChecksumFields,
}

/// A bucket's server access logging, as GetBucketLogging answers it (no
/// `LoggingEnabled`: logging is off).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BucketLoggingStatus {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging_enabled: Option<LoggingEnabled>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingEnabled {
    pub target_bucket: String,
    pub target_prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_grants: Option<TargetGrants>,
    pub target_object_key_format: TargetObjectKeyFormat,
}

#[derive(Serialize)]
pub struct TargetGrants {
    #[serde(rename = "Grant")]
    pub grants: Vec<Grant>,
}

/// A PutBucketLogging request's body.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BucketLoggingStatusRequest {
    #[serde(default)]
    pub logging_enabled: Option<LoggingEnabledRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingEnabledRequest {
    pub target_bucket: String,
    pub target_prefix: String,
    #[serde(default)]
    pub target_grants: Option<AccessControlListRequest>,
    #[serde(default)]
    pub target_object_key_format: Option<TargetObjectKeyFormat>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetObjectKeyFormat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple_prefix: Option<Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioned_prefix: Option<PartitionedPrefix>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionedPrefix {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_date_source: Option<String>,
}

/// An element with nothing in it (`<SimplePrefix/>`).
#[derive(Serialize, Deserialize, Default)]
pub struct Empty {}

/// A bucket's CORS configuration, as PutBucketCors sends it and GetBucketCors answers it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CorsConfiguration {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    #[serde(rename = "CORSRule", default)]
    pub rules: Vec<CorsRuleXml>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CorsRuleXml {
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub allowed_method: Vec<String>,
    #[serde(default)]
    pub allowed_origin: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_header: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose_header: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
}

/// A bucket's lifecycle configuration, as PutBucketLifecycleConfiguration sends it and
/// GetBucketLifecycleConfiguration answers it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleConfiguration {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    #[serde(rename = "Rule", default)]
    pub rules: Vec<LifecycleRuleXml>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleRuleXml {
    #[serde(rename = "ID", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<LifecycleFilterXml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<ExpirationXml>,
    #[serde(rename = "Transition", default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<TransitionXml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_expiration: Option<NoncurrentExpirationXml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_upload: Option<AbortIncompleteXml>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleFilterXml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub and: Option<LifecycleAndXml>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_size_greater_than: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_size_less_than: Option<i64>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleAndXml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(rename = "Tag", default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_size_greater_than: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_size_less_than: Option<i64>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ExpirationXml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_object_delete_marker: Option<bool>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TransitionXml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default)]
    pub storage_class: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct NoncurrentExpirationXml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_noncurrent_versions: Option<i64>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AbortIncompleteXml {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_after_initiation: Option<i64>,
}

/// A bucket's default encryption, as PutBucketEncryption sends it and GetBucketEncryption
/// answers it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServerSideEncryptionConfiguration {
    #[serde(rename = "@xmlns", default, skip_deserializing)]
    pub xmlns: &'static str,
    #[serde(rename = "Rule", default)]
    pub rules: Vec<EncryptionRule>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptionRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_server_side_encryption_by_default: Option<EncryptionByDefault>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_key_enabled: Option<bool>,
}

#[derive(Serialize, Deserialize)]
pub struct EncryptionByDefault {
    #[serde(rename = "SSEAlgorithm")]
    pub sse_algorithm: String,
    #[serde(
        rename = "KMSMasterKeyID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kms_master_key_id: Option<String>,
}

/// A tag set, as GetObjectTagging / GetBucketTagging answer it and the Put calls send it.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct TagSet {
    #[serde(rename = "Tag", default)]
    pub tag: Vec<Tag>,
}

#[derive(Serialize, Deserialize, Clone, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tagging {
    #[serde(rename = "@xmlns")]
    pub xmlns: &'static str,
    pub tag_set: TagSet,
}

/// The body of PutObjectTagging and PutBucketTagging.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaggingRequest {
    pub tag_set: TagSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_text_keeps_its_whitespace() {
        let body = "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  \
            <Object><Key> </Key></Object>\n  <Object><Key>_ </Key></Object>\n  \
            <Object><Key>\ta &amp; b\r\n</Key></Object><Object><Key>plain</Key></Object>\n\
            <Quiet>true</Quiet></Delete>";
        let delete: Delete = from_xml("Delete", body.as_bytes()).unwrap();
        let keys: Vec<&str> = delete.object.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, [" ", "_ ", "\ta & b\r\n", "plain"]);
        assert!(delete.quiet);
    }

    #[test]
    fn parses_delete_and_complete_documents() {
        let delete: Delete = from_xml(
            "Delete",
            br#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key><VersionId>null</VersionId></Object></Delete>"#,
        )
        .unwrap();
        assert!(delete.quiet);
        assert_eq!(delete.object[0].key, "a&b");
        assert_eq!(delete.object[1].version_id.as_deref(), Some("null"));
        let complete: CompleteMultipartUpload = from_xml(
            "CompleteMultipartUpload",
            br#"<CompleteMultipartUpload><Part><ETag>"x"</ETag><PartNumber>2</PartNumber><ChecksumCRC32>AAAA</ChecksumCRC32></Part></CompleteMultipartUpload>"#,
        )
        .unwrap();
        assert_eq!(complete.part[0].part_number, 2);
        assert!(from_xml::<Delete>("Delete", b"<Delete><Object>").is_err());
        assert!(from_xml::<Delete>("Delete", b"<Foo><Object><Key>x</Key></Object></Foo>").is_err());
    }

    /// The document that made quick-xml reach `unreachable!` (a DTD inside an element).
    const DTD_IN_ELEMENT: &[u8] = b"<CreateBucketConfiguration><LocationConstraint>us-<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]>east-1</LocationConstraint></CreateBucketConfiguration>";

    #[test]
    fn dtds_entities_and_broken_documents_are_malformed() {
        let code = |body: &[u8]| {
            from_xml::<CreateBucketConfiguration>("CreateBucketConfiguration", body)
                .err()
                .map(|e| e.code)
        };
        let ok = b"<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
        assert_eq!(code(ok), None);
        for bad in [
            DTD_IN_ELEMENT,
            b"<!DOCTYPE x [<!ENTITY a 'b'>]><CreateBucketConfiguration/>",
            b"<CreateBucketConfiguration><LocationConstraint>&a;</LocationConstraint></CreateBucketConfiguration>",
            b"<CreateBucketConfiguration><LocationConstraint>x</CreateBucketConfiguration>",
            b"<CreateBucketConfiguration></CreateBucketConfiguration><CreateBucketConfiguration/>",
            b"<CreateBucketConfiguration>",
            b"",
        ] {
            assert_eq!(code(bad), Some(ErrorCode::MalformedXML), "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!(
            "<CreateBucketConfiguration>{}{}</CreateBucketConfiguration>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        assert_eq!(code(deep.as_bytes()), Some(ErrorCode::MalformedXML));
    }

    /// Mutated, truncated, spliced and oversized variants of every document Kura parses
    /// (bucket configuration, Delete, CompleteMultipartUpload, tagging, CORS, lifecycle,
    /// encryption):
    /// each is parsed or refused with MalformedXML, never a panic.
    #[test]
    fn no_mutated_document_panics_a_parser() {
        fn each<T: for<'de> Deserialize<'de>>(root: &str, seeds: &[&[u8]], rounds: usize) {
            let mut rng = 0x9E37_79B9_7F4A_7C15u64;
            let mut next = move |n: usize| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng % n.max(1) as u64) as usize
            };
            const SPLICES: [&[u8]; 10] = [
                b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
                b"&a;",
                b"&#0;",
                b"&#x110000;",
                b"<![CDATA[x]]>",
                b"<?pi x?>",
                b"<!-- c -->",
                b"</",
                b"\xff\xfe",
                b"<x:y xmlns:x='u'>",
            ];
            for round in 0..rounds {
                let mut doc = seeds[round % seeds.len()].to_vec();
                for _ in 0..1 + next(4) {
                    let at = next(doc.len() + 1);
                    match next(6) {
                        0 => doc.truncate(at),
                        1 if !doc.is_empty() => {
                            let (i, bit) = (at.min(doc.len() - 1), next(8));
                            doc[i] ^= 1 << bit;
                        }
                        2 => {
                            let splice = SPLICES[next(SPLICES.len())];
                            doc.splice(at..at, splice.iter().copied());
                        }
                        3 => {
                            let from = next(doc.len() + 1);
                            let piece = doc[from.min(at)..from.max(at)].to_vec();
                            doc.extend_from_slice(&piece);
                        }
                        4 => doc.insert(at, next(256) as u8),
                        _ => doc.drain(at..(at + next(8)).min(doc.len())).for_each(drop),
                    }
                }
                if round % 97 == 0 {
                    doc = doc.repeat(200);
                }
                if let Err(err) = from_xml::<T>(root, &doc) {
                    assert_eq!(
                        err.code,
                        ErrorCode::MalformedXML,
                        "{}",
                        String::from_utf8_lossy(&doc)
                    );
                }
            }
        }
        each::<CreateBucketConfiguration>(
            "CreateBucketConfiguration",
            &[
                DTD_IN_ELEMENT,
                b"<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>",
            ],
            3000,
        );
        each::<Delete>(
            "Delete",
            &[b"<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key><VersionId>null</VersionId></Object><Object><Key>c</Key></Object></Delete>"],
            3000,
        );
        each::<CompleteMultipartUpload>(
            "CompleteMultipartUpload",
            &[b"<CompleteMultipartUpload><Part><ETag>\"x\"</ETag><PartNumber>2</PartNumber><ChecksumCRC32>AAAA</ChecksumCRC32></Part></CompleteMultipartUpload>"],
            3000,
        );
        each::<TaggingRequest>(
            "Tagging",
            &[b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value/></Tag></TagSet></Tagging>"],
            2000,
        );
        each::<CorsConfiguration>(
            "CORSConfiguration",
            &[b"<CORSConfiguration><CORSRule><ID>r</ID><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><AllowedHeader>x-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>60</MaxAgeSeconds></CORSRule></CORSConfiguration>"],
            2000,
        );
        each::<LifecycleConfiguration>(
            "LifecycleConfiguration",
            &[b"<LifecycleConfiguration><Rule><ID>r</ID><Filter><And><Prefix>logs/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload><Transition><Days>30</Days><StorageClass>STANDARD</StorageClass></Transition></Rule></LifecycleConfiguration>"],
            2000,
        );
        each::<ServerSideEncryptionConfiguration>(
            "ServerSideEncryptionConfiguration",
            &[b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"],
            2000,
        );
        each::<AccessControlPolicyRequest>(
            "AccessControlPolicy",
            &[b"<AccessControlPolicy><Owner><ID>abc</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"><ID>abc</ID></Grantee><Permission>READ</Permission></Grant><Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>WRITE</Permission></Grant></AccessControlList></AccessControlPolicy>"],
            3000,
        );
        each::<OwnershipControls>(
            "OwnershipControls",
            &[b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>"],
            2000,
        );
        each::<PublicAccessBlockConfiguration>(
            "PublicAccessBlockConfiguration",
            &[b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>false</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy><RestrictPublicBuckets>false</RestrictPublicBuckets></PublicAccessBlockConfiguration>"],
            2000,
        );
    }

    #[test]
    fn access_control_policies_as_boto3_sends_them() {
        let doc = br#"<AccessControlPolicy xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="AmazonCustomerByEmail"><EmailAddress>a@b.c</EmailAddress></Grantee><Permission>READ_ACP</Permission></Grant></AccessControlList><Owner><DisplayName>x</DisplayName><ID>abc</ID></Owner></AccessControlPolicy>"#;
        let policy: AccessControlPolicyRequest = from_xml("AccessControlPolicy", doc).unwrap();
        assert_eq!(policy.owner.and_then(|o| o.id).as_deref(), Some("abc"));
        let grants = policy.access_control_list.unwrap().grant;
        assert_eq!(
            grants[0].grantee.kind.as_deref(),
            Some("AmazonCustomerByEmail")
        );
        assert_eq!(grants[0].grantee.email_address.as_deref(), Some("a@b.c"));
        assert_eq!(grants[0].permission, "READ_ACP");
    }

    #[test]
    fn writes_namespaced_documents() {
        let doc = to_xml(
            "ListBucketResult",
            &ListBucketResult {
                xmlns: NS,
                name: "b".into(),
                prefix: String::new(),
                marker: Some(String::new()),
                next_marker: None,
                continuation_token: None,
                next_continuation_token: None,
                start_after: None,
                key_count: None,
                max_keys: 1000,
                delimiter: None,
                encoding_type: None,
                is_truncated: false,
                contents: vec![],
                common_prefixes: vec![CommonPrefix {
                    prefix: "a/".into(),
                }],
            },
        )
        .unwrap();
        assert!(
            doc.contains(r#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#),
            "{doc}"
        );
        assert!(
            doc.contains("<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes>"),
            "{doc}"
        );
        assert!(doc.contains("<IsTruncated>false</IsTruncated>"), "{doc}");
    }
}
