//! Naming rules AWS applies to buckets and keys.

use crate::error::{ErrorCode, S3Result};

/// AWS's key length limit, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// S3's bucket naming rules (general purpose buckets).
pub fn validate_bucket_name(name: &str) -> S3Result<()> {
    let bytes = name.as_bytes();
    let allowed = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-');
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ip_like = name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok());
    let reserved = ["xn--", "sthree-", "amzn-s3-demo-"]
        .iter()
        .any(|p| name.starts_with(p))
        || ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|s| name.ends_with(s));
    let valid = (3..=63).contains(&name.len())
        && allowed
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        // Each dot-separated label begins and ends with a letter or digit (DNS).
        && !name.contains(".-")
        && !name.contains("-.")
        && !ip_like
        && !reserved;
    if valid {
        Ok(())
    } else {
        Err(ErrorCode::InvalidBucketName.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for ok in ["abc", "my-bucket.1", "a".repeat(63).as_str(), "1bucket"] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "foo.-bar",
            "foo-.bar",
            "192.168.1.1",
            "xn--ab",
            &"a".repeat(64),
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
