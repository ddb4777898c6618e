//! Object and bucket tags as AWS limits them: how many, how long, which characters, and
//! the `x-amz-tagging` header's URL-encoded form.

use crate::error::{ErrorCode, S3Error, S3Result};

/// Tags per object, and per bucket.
pub const MAX_OBJECT_TAGS: usize = 10;
pub const MAX_BUCKET_TAGS: usize = 50;
/// Unicode characters in a key, and in a value.
const MAX_KEY_CHARS: usize = 128;
const MAX_VALUE_CHARS: usize = 256;

pub type Tags = Vec<(String, String)>;

/// Letters and digits of any script, white space, and `+ - = . _ : / @`.
fn allowed(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "+-=._:/@".contains(c))
}

/// Checks a tag set against AWS's rules; `max` is [`MAX_OBJECT_TAGS`] or [`MAX_BUCKET_TAGS`].
pub fn validate(tags: &Tags, max: usize) -> S3Result<()> {
    if tags.len() > max {
        let what = if max == MAX_OBJECT_TAGS {
            "Object"
        } else {
            "Bucket"
        };
        return Err(S3Error::new(
            ErrorCode::BadRequest,
            format!("{what} tags cannot be greater than {max}"),
        ));
    }
    let invalid = |message: &str| S3Error::new(ErrorCode::InvalidTag, message);
    for (i, (key, value)) in tags.iter().enumerate() {
        let key_chars = key.chars().count();
        if !(1..=MAX_KEY_CHARS).contains(&key_chars) || !allowed(key) {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if key.starts_with("aws:") {
            return Err(invalid("Your TagKey cannot be prefixed with aws:"));
        }
        if value.chars().count() > MAX_VALUE_CHARS || !allowed(value) {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if tags[..i].iter().any(|(k, _)| k == key) {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// The tags of an `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded), checked as object
/// tags. No header: no tags.
pub fn from_header(header: Option<&str>) -> S3Result<Tags> {
    let Some(header) = header else {
        return Ok(Vec::new());
    };
    let malformed = || {
        S3Error::new(
            ErrorCode::InvalidArgument,
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.",
        )
        .with("ArgumentName", "x-amz-tagging")
        .with("ArgumentValue", header)
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| malformed())
    };
    let mut tags = Tags::new();
    for pair in header.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (decode(key)?, decode(value)?);
        if tags.iter().any(|(k, _)| *k == key) {
            return Err(malformed());
        }
        tags.push((key, value));
    }
    validate(&tags, MAX_OBJECT_TAGS)?;
    Ok(tags)
}

/// The tags of a Tagging document (PutObjectTagging's body, a POST form's `tagging`
/// field), checked against `max`.
pub fn from_document(body: &[u8], max: usize) -> S3Result<Tags> {
    let request: crate::xml::TaggingRequest = crate::xml::from_xml("Tagging", body)?;
    let tags: Tags = request
        .tag_set
        .tag
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    validate(&tags, max)?;
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn aws_limits() {
        assert!(validate(&tags(&[("Project", "x-1"), ("größe", "Köln / 2 = ok")]), 10).is_ok());
        let code = |t: &Tags, max| validate(t, max).unwrap_err().code;
        let eleven: Tags = (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        assert_eq!(code(&eleven, MAX_OBJECT_TAGS), ErrorCode::BadRequest);
        assert!(validate(&eleven, MAX_BUCKET_TAGS).is_ok());
        for bad in [
            tags(&[("", "v")]),
            tags(&[(&"k".repeat(129), "v")]),
            tags(&[("k", &"v".repeat(257))]),
            tags(&[("k*", "v")]),
            tags(&[("aws:x", "v")]),
            tags(&[("k", "v"), ("k", "w")]),
        ] {
            assert_eq!(
                code(&bad, MAX_OBJECT_TAGS),
                ErrorCode::InvalidTag,
                "{bad:?}"
            );
        }
        assert!(validate(&tags(&[(&"k".repeat(128), &"v".repeat(256))]), 10).is_ok());
    }

    #[test]
    fn header_form() {
        assert_eq!(
            from_header(Some("a=1&b%20c=d+e&empty=")).unwrap(),
            tags(&[("a", "1"), ("b c", "d e"), ("empty", "")])
        );
        assert!(from_header(None).unwrap().is_empty());
        assert_eq!(
            from_header(Some("a=1&a=2")).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            from_header(Some("a=%FF")).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
