//! How a Kura user appears to S3 clients: a stable, opaque canonical id and a display name.

use crate::xml::Owner;

/// AWS's canonical user id for a Kura user: stable and opaque.
pub fn canonical_id(user: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("kura-user:{user}")))
}

/// The `<Owner>` (or `<Initiator>`) element of a user.
pub fn owner(user: &str) -> Owner {
    Owner {
        id: canonical_id(user),
        display_name: user.to_owned(),
    }
}
