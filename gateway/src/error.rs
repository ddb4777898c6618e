//! The one S3 error type: every failure a handler can meet becomes an `S3Error`,
//! rendered as AWS's `<Error>` XML with the status code AWS uses for that code.

use http::StatusCode;

macro_rules! error_codes {
    ($($name:ident => $status:ident, $default:literal;)*) => {
        /// S3 error codes Kura answers with, and their HTTP statuses.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($name,)* }

        impl ErrorCode {
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name),)* }
            }
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$name => StatusCode::$status,)* }
            }
            /// AWS's wording, used when the caller has nothing more specific to say.
            pub fn default_message(self) -> &'static str {
                match self { $(ErrorCode::$name => $default,)* }
            }
        }
    };
}

error_codes! {
    AccessControlListNotSupported => BAD_REQUEST, "The bucket does not allow ACLs.";
    AccessDenied => FORBIDDEN, "Access Denied";
    AccessForbidden => FORBIDDEN, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
    AuthorizationHeaderMalformed => BAD_REQUEST, "The authorization header is malformed.";
    AuthorizationQueryParametersError => BAD_REQUEST, "Error parsing the X-Amz-Credential parameter.";
    BadRequest => BAD_REQUEST, "Bad Request";
    BadDigest => BAD_REQUEST, "The Content-MD5 or checksum you specified did not match what we received.";
    BucketAlreadyExists => CONFLICT, "The requested bucket name is not available.";
    BucketAlreadyOwnedByYou => CONFLICT, "Your previous request to create the named bucket succeeded and you already own it.";
    BucketNotEmpty => CONFLICT, "The bucket you tried to delete is not empty.";
    EntityTooLarge => BAD_REQUEST, "Your proposed upload exceeds the maximum allowed size.";
    EntityTooSmall => BAD_REQUEST, "Your proposed upload is smaller than the minimum allowed object size.";
    IllegalLocationConstraintException => BAD_REQUEST, "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to.";
    IncompleteBody => BAD_REQUEST, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    InternalError => INTERNAL_SERVER_ERROR, "We encountered an internal error. Please try again.";
    InvalidAccessKeyId => FORBIDDEN, "The AWS Access Key Id you provided does not exist in our records.";
    InvalidArgument => BAD_REQUEST, "Invalid Argument";
    InvalidBucketAclWithObjectOwnership => BAD_REQUEST, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting";
    InvalidBucketName => BAD_REQUEST, "The specified bucket is not valid.";
    InvalidBucketState => CONFLICT, "The request is not valid with the current state of the bucket.";
    InvalidEncryptionAlgorithmError => BAD_REQUEST, "The encryption request you specified is not valid. The valid value is AES256.";
    InvalidDigest => BAD_REQUEST, "The Content-MD5 you specified is not valid.";
    InvalidLocationConstraint => BAD_REQUEST, "The specified location-constraint is not valid.";
    InvalidPart => BAD_REQUEST, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.";
    InvalidPartNumber => RANGE_NOT_SATISFIABLE, "The requested partnumber is not satisfiable";
    InvalidPartOrder => BAD_REQUEST, "The list of parts was not in ascending order. The parts list must be specified in order by part number.";
    InvalidPolicyDocument => BAD_REQUEST, "The content of the form does not meet the conditions specified in the policy document.";
    InvalidRange => RANGE_NOT_SATISFIABLE, "The requested range is not satisfiable";
    InvalidRequest => BAD_REQUEST, "Invalid Request";
    InvalidURI => BAD_REQUEST, "Couldn't parse the specified URI.";
    InvalidTargetBucketForLogging => BAD_REQUEST, "The target bucket for logging does not exist, is not owned by you, or does not have the appropriate grants for the log-delivery group.";
    InvalidTag => BAD_REQUEST, "The tag provided was not a valid tag.";
    InvalidStorageClass => BAD_REQUEST, "The storage class you specified is not valid.";
    KeyTooLongError => BAD_REQUEST, "Your key is too long.";
    MalformedACLError => BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema";
    MalformedPolicy => BAD_REQUEST, "Policies must be valid JSON and the first byte must be '{'";
    MalformedPOSTRequest => BAD_REQUEST, "The body of your POST request is not well-formed multipart/form-data.";
    MalformedTrailerError => BAD_REQUEST, "The request contained trailing data that was not well-formed or did not conform to our published schema.";
    MalformedXML => BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MaxPostPreDataLengthExceeded => BAD_REQUEST, "Your POST request fields preceding the upload file were too large.";
    MetadataTooLarge => BAD_REQUEST, "Your metadata headers exceed the maximum allowed metadata size.";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "The specified method is not allowed against this resource.";
    MissingContentLength => LENGTH_REQUIRED, "You must provide the Content-Length HTTP header.";
    MissingSecurityHeader => BAD_REQUEST, "Your request is missing a required header.";
    NoSuchBucket => NOT_FOUND, "The specified bucket does not exist";
    NoSuchBucketPolicy => NOT_FOUND, "The bucket policy does not exist";
    NoSuchCORSConfiguration => NOT_FOUND, "The CORS configuration does not exist";
    NoSuchLifecycleConfiguration => NOT_FOUND, "The lifecycle configuration does not exist";
    NoSuchKey => NOT_FOUND, "The specified key does not exist.";
    NoSuchObjectLockConfiguration => NOT_FOUND, "The specified object does not have an ObjectLock configuration";
    NoSuchUpload => NOT_FOUND, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.";
    NoSuchPublicAccessBlockConfiguration => NOT_FOUND, "The public access block configuration was not found";
    NoSuchTagSet => NOT_FOUND, "The TagSet does not exist";
    NoSuchVersion => NOT_FOUND, "The specified version does not exist.";
    NotImplemented => NOT_IMPLEMENTED, "A header you provided implies functionality that is not implemented.";
    NotModified => NOT_MODIFIED, "Not Modified";
    ObjectLockConfigurationNotFoundError => NOT_FOUND, "Object Lock configuration does not exist for this bucket";
    OwnershipControlsNotFoundError => NOT_FOUND, "The bucket ownership controls were not found";
    PolicyTooLarge => BAD_REQUEST, "Policy exceeds the maximum allowed document size.";
    QuotaExceeded => FORBIDDEN, "The bucket's quota does not allow this write.";
    PreconditionFailed => PRECONDITION_FAILED, "At least one of the preconditions you specified did not hold.";
    ConditionalRequestConflict => CONFLICT, "A conflicting operation occurred. If using PutObject you can retry the request. If using CompleteMultipartUpload you might need to retry the upload.";
    RequestTimeout => BAD_REQUEST, "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.";
    RequestHeaderSectionTooLarge => BAD_REQUEST, "Your request header section exceeds the maximum allowed size.";
    RequestTimeTooSkewed => FORBIDDEN, "The difference between the request time and the server's time is too large.";
    ServerSideEncryptionConfigurationNotFoundError => NOT_FOUND, "The server side encryption configuration was not found";
    ServiceUnavailable => SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    SignatureDoesNotMatch => FORBIDDEN, "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    UnexpectedContent => BAD_REQUEST, "This request does not support content";
    UnresolvableGrantByEmailAddress => BAD_REQUEST, "The email address you provided does not match any account on record.";
    XAmzContentSHA256Mismatch => BAD_REQUEST, "The provided 'x-amz-content-sha256' header does not match what was computed.";
}

/// An S3 error response. `extra` carries the additional XML elements AWS includes
/// for some codes (e.g. `ArgumentName`, `ServerTime`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct S3Error {
    pub code: ErrorCode,
    pub message: String,
    pub extra: Vec<(&'static str, String)>,
    /// Response headers besides the error document (`x-amz-delete-marker`, …).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        S3Error {
            code,
            message: message.into(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with(mut self, element: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((element, value.into()));
        self
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        S3Error::from(ErrorCode::InternalError)
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl From<ErrorCode> for S3Error {
    fn from(code: ErrorCode) -> Self {
        S3Error::new(code, code.default_message())
    }
}

impl From<kura_index::IndexError> for S3Error {
    fn from(err: kura_index::IndexError) -> Self {
        use kura_index::IndexError as E;
        match err {
            E::NoSuchBucket => ErrorCode::NoSuchBucket.into(),
            E::BucketNotEmpty => ErrorCode::BucketNotEmpty.into(),
            E::NoSuchUpload => ErrorCode::NoSuchUpload.into(),
            E::BucketExists { .. } => ErrorCode::BucketAlreadyExists.into(),
            E::QuotaExceeded => ErrorCode::QuotaExceeded.into(),
            E::PreconditionFailed => ErrorCode::PreconditionFailed.into(),
            E::ObjectLocked(why) => S3Error::new(
                ErrorCode::AccessDenied,
                format!("Access Denied because object protected by object lock: {why}."),
            ),
            E::Busy => S3Error::new(
                ErrorCode::ServiceUnavailable,
                "The index is busy with this key. Please retry.",
            ),
            E::Backend(err) => err.into(),
            other => S3Error::internal(other),
        }
    }
}

impl From<kura_backend::BackendError> for S3Error {
    fn from(err: kura_backend::BackendError) -> Self {
        match err {
            kura_backend::BackendError::NotFound => S3Error::new(
                ErrorCode::InternalError,
                "The object's data is missing from storage.",
            ),
            kura_backend::BackendError::Corrupt(what) => {
                tracing::error!(%what, "blob checksum mismatch; refusing to serve it");
                S3Error::new(
                    ErrorCode::InternalError,
                    "The stored data failed its integrity check and was not served.",
                )
            }
            kura_backend::BackendError::Unavailable(what) => {
                tracing::warn!(%what, "storage unavailable");
                S3Error::new(
                    ErrorCode::ServiceUnavailable,
                    "The storage cluster cannot serve this request now. Please retry.",
                )
            }
            other => S3Error::internal(other),
        }
    }
}

pub type S3Result<T> = Result<T, S3Error>;
