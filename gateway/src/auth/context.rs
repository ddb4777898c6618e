//! What authentication needs (a way to look up keys) and what it yields (who signed the
//! request, and how its body is protected).

use std::fmt;

/// Where secrets come from (the identity store).
pub trait SecretStore: Send + Sync {
    /// An access key id's secret and user, or None if the key is unknown or revoked.
    fn lookup(&self, access_key: &str) -> Option<KeyOwner>;
}

/// The one access key a request claims, and what looking it up gave (None: unknown or
/// revoked): looked up before the signature is checked, since the lookup is I/O.
pub struct ResolvedKey {
    pub access_key: String,
    pub owner: Option<KeyOwner>,
}

impl SecretStore for ResolvedKey {
    fn lookup(&self, access_key: &str) -> Option<KeyOwner> {
        (access_key == self.access_key)
            .then(|| self.owner.clone())
            .flatten()
    }
}

/// What one lookup of an access key gives: its secret to check signatures with, and the
/// user the request then acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub secret: String,
    pub user: String,
}

/// Who made a request: the user whose signature verified, or anonymous (no credentials).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub access_key: String,
    /// The user; empty for an anonymous request.
    pub user: String,
    pub payload: PayloadMode,
    pub via: Via,
}

impl Authenticated {
    /// A request without credentials: no user, and a body nobody signed. What it may do
    /// is decided like any other request's (ACLs and policies that grant to everyone).
    pub fn anonymous() -> Self {
        Authenticated {
            access_key: String::new(),
            user: String::new(),
            payload: PayloadMode::Unsigned,
            via: Via::Anonymous,
        }
    }

    /// The user, or None for an anonymous request.
    pub fn user(&self) -> Option<&str> {
        (self.via != Via::Anonymous).then_some(self.user.as_str())
    }
}

/// How a request was signed, as policy conditions see it (`s3:authType`,
/// `s3:signatureversion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Anonymous,
    Header {
        v4: bool,
    },
    Query {
        v4: bool,
    },
    /// A browser POST form (its policy document's signature).
    Form {
        v4: bool,
    },
}

impl Via {
    pub fn auth_type(self) -> Option<&'static str> {
        match self {
            Via::Anonymous => None,
            Via::Header { .. } => Some("REST-HEADER"),
            Via::Query { .. } => Some("REST-QUERY-STRING"),
            Via::Form { .. } => Some("POST"),
        }
    }

    pub fn signature_version(self) -> Option<&'static str> {
        match self {
            Via::Anonymous => None,
            Via::Header { v4 } | Via::Query { v4 } | Via::Form { v4 } => {
                Some(if v4 { "AWS4-HMAC-SHA256" } else { "AWS" })
            }
        }
    }
}

/// How the request body is protected, from `x-amz-content-sha256` (or `X-Amz-Content-Sha256`
/// in a presigned URL).
#[derive(Debug, Clone)]
pub enum PayloadMode {
    /// `UNSIGNED-PAYLOAD` (the default for presigned URLs): the body is not covered.
    Unsigned,
    /// A hex SHA-256 of the body: the body must hash to it.
    Sha256([u8; 32]),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: aws-chunked with chained chunk signatures.
    StreamingSigned {
        trailer: bool,
        ctx: ChunkSigningContext,
    },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked without signatures, checksum trailer.
    StreamingUnsignedTrailer,
}

/// What the chunk decoder needs to verify chunk and trailer signatures: they chain from the
/// request's own (seed) signature and reuse its signing key, date and scope.
#[derive(Clone)]
pub struct ChunkSigningContext {
    pub(crate) signing_key: [u8; 32],
    pub(crate) amz_date: String,
    pub(crate) scope: String,
    pub(crate) seed_signature: String,
}

impl fmt::Debug for ChunkSigningContext {
    // The signing key stands in for the secret for a day: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigningContext")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("seed_signature", &self.seed_signature)
            .finish_non_exhaustive()
    }
}

pub(super) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub(super) const CONTENT_SHA256: &str = "x-amz-content-sha256";
