//! The request body as handlers consume it: decoded (aws-chunked), verified and measured.
//!
//! [`verified_body`] checks the headers up front, then [`VerifiedBody`] streams the decoded data
//! while checking chunk and trailer signatures, the signed payload SHA-256, Content-MD5, the
//! `x-amz-checksum-*` value (header or trailer) and the declared length. Data is yielded as it
//! arrives, so a consumer must treat what it wrote as provisional until the stream ends without
//! error; only then are the [`BodyDigests`] available.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use axum::body::{Body, BodyDataStream};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::auth::{ChunkedDecoder, PayloadMode, Trailers, malformed_trailer};
use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumHasher};
use crate::error::{ErrorCode, S3Error, S3Result};

const DECODED_CONTENT_LENGTH: &str = "x-amz-decoded-content-length";
const SDK_CHECKSUM_ALGORITHM: &str = "x-amz-sdk-checksum-algorithm";
const TRAILER: &str = "x-amz-trailer";

/// What was received, once the whole body verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyDigests {
    /// Decoded length in bytes.
    pub len: u64,
    /// MD5 of the decoded body (the ETag of a single-part object).
    pub md5: [u8; 16],
    /// The verified (client-sent) or computed checksum, when an algorithm applies.
    pub checksum: Option<Checksum>,
}

/// A cloneable view of a [`VerifiedBody`]'s digests, for when the body itself has been moved
/// into the task that consumes it.
#[derive(Debug, Clone, Default)]
pub struct DigestsHandle(Arc<OnceLock<BodyDigests>>);

impl DigestsHandle {
    /// The digests, once the body's stream has ended successfully.
    pub fn get(&self) -> Option<BodyDigests> {
        self.0.get().cloned()
    }
}

/// The decoded request body: a stream of data chunks. A verification failure is yielded as an
/// `Err` item and ends the stream; the stream only ends cleanly (`None` without a prior error)
/// when everything verified.
pub struct VerifiedBody {
    source: BodyDataStream,
    decoder: Option<ChunkedDecoder>,
    checks: Checks,
    done: bool,
    digests: DigestsHandle,
}

impl VerifiedBody {
    /// The digests; `None` until the stream has ended successfully.
    pub fn digests(&self) -> Option<BodyDigests> {
        self.digests.get()
    }

    /// A handle that yields the digests after the stream ended successfully.
    pub fn digests_handle(&self) -> DigestsHandle {
        self.digests.clone()
    }

    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<S3Result<Bytes>>> {
        loop {
            if let Some(decoder) = &mut self.decoder {
                match decoder.next_data() {
                    Ok(Some(data)) => return Poll::Ready(Some(self.checks.update(data))),
                    Ok(None) => {}
                    Err(err) => return Poll::Ready(Some(Err(err))),
                }
            }
            match ready!(Pin::new(&mut self.source).poll_next(cx)) {
                Some(Ok(frame)) => match &mut self.decoder {
                    Some(decoder) => decoder.feed(frame),
                    None if frame.is_empty() => {}
                    None => return Poll::Ready(Some(self.checks.update(frame))),
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(body_error(err)))),
                None => return Poll::Ready(self.finish().err().map(Err)),
            }
        }
    }

    fn finish(&mut self) -> S3Result<()> {
        let trailers = match &mut self.decoder {
            Some(decoder) => decoder.finish()?,
            None => Vec::new(),
        };
        let digests = self.checks.finish(trailers)?;
        // Set once: `done` stops polling after this.
        let _ = self.digests.0.set(digests);
        Ok(())
    }
}

impl Stream for VerifiedBody {
    type Item = S3Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let item = ready!(this.poll_step(cx));
        if !matches!(item, Some(Ok(_))) {
            this.done = true;
        }
        Poll::Ready(item)
    }
}

/// Wraps the raw request body: decodes aws-chunked when the payload mode is streaming and
/// verifies everything the request claims about its body. `want` names an algorithm to compute
/// even if the client sent no value (from `x-amz-checksum-algorithm`, or the multipart upload's
/// algorithm); a client checksum of another algorithm is refused. Header problems that can be
/// seen up front are returned here; the rest come out of the stream.
pub fn verified_body(
    body: Body,
    headers: &HeaderMap,
    payload: PayloadMode,
    want: Option<ChecksumAlgorithm>,
) -> S3Result<VerifiedBody> {
    let (decoder, sha256, trailer_mode) = match payload {
        PayloadMode::Unsigned => (None, None, false),
        PayloadMode::Sha256(claimed) => (None, Some((Sha256::new(), claimed)), false),
        PayloadMode::StreamingSigned { trailer, ctx } => {
            (Some(ChunkedDecoder::signed(ctx, trailer)), None, trailer)
        }
        PayloadMode::StreamingUnsignedTrailer => {
            (Some(ChunkedDecoder::unsigned_trailer()), None, true)
        }
    };
    let expected_len = match decoder {
        Some(_) => Some(decoded_content_length(headers)?),
        None => content_length(headers)?,
    };
    let checks = Checks {
        len: 0,
        expected_len,
        md5: Md5::new(),
        content_md5: content_md5(headers)?,
        sha256,
        checksum: checksum_check(headers, trailer_mode, want)?,
    };
    Ok(VerifiedBody {
        source: body.into_data_stream(),
        decoder,
        checks,
        done: false,
        digests: DigestsHandle::default(),
    })
}

/// Running digests and what they must match at the end.
struct Checks {
    len: u64,
    expected_len: Option<u64>,
    md5: Md5,
    content_md5: Option<[u8; 16]>,
    sha256: Option<(Sha256, [u8; 32])>,
    checksum: Option<ChecksumCheck>,
}

impl Checks {
    fn update(&mut self, data: Bytes) -> S3Result<Bytes> {
        self.len = self.len.saturating_add(data.len() as u64);
        if self
            .expected_len
            .is_some_and(|expected| self.len > expected)
        {
            return Err(S3Error::new(
                ErrorCode::InvalidRequest,
                "The request body is longer than its declared length \
                 (Content-Length or x-amz-decoded-content-length).",
            ));
        }
        self.md5.update(&data);
        if let Some((hasher, _)) = &mut self.sha256 {
            hasher.update(&data);
        }
        if let Some(check) = &mut self.checksum {
            check.hasher.update(&data);
        }
        Ok(data)
    }

    fn finish(&mut self, trailers: Trailers) -> S3Result<BodyDigests> {
        if self
            .expected_len
            .is_some_and(|expected| self.len < expected)
        {
            return Err(S3Error::from(ErrorCode::IncompleteBody));
        }
        if let Some((hasher, claimed)) = self.sha256.take() {
            let computed: [u8; 32] = hasher.finalize().into();
            if computed != claimed {
                return Err(S3Error::from(ErrorCode::XAmzContentSHA256Mismatch)
                    .with("ClientComputedContentSHA256", hex::encode(claimed))
                    .with("S3ComputedContentSHA256", hex::encode(computed)));
            }
        }
        let md5: [u8; 16] = self.md5.finalize_reset().into();
        if let Some(claimed) = self.content_md5
            && claimed != md5
        {
            return Err(S3Error::new(
                ErrorCode::BadDigest,
                "The Content-MD5 you specified did not match what we received.",
            )
            .with("ExpectedDigest", BASE64.encode(claimed))
            .with("CalculatedDigest", BASE64.encode(md5)));
        }
        let checksum = match self.checksum.take() {
            Some(check) => Some(check.finish(trailers)?),
            None => {
                take_trailer(trailers, None)?;
                None
            }
        };
        Ok(BodyDigests {
            len: self.len,
            md5,
            checksum,
        })
    }
}

/// The checksum being computed and where the client's value (if any) comes from.
struct ChecksumCheck {
    hasher: ChecksumHasher,
    expected: Expected,
}

enum Expected {
    /// No client value: computed to be stored.
    Nothing,
    /// From the `x-amz-checksum-*` header, already decoded.
    Header(Vec<u8>),
    /// From the aws-chunked trailer of the same name.
    Trailer,
}

impl ChecksumCheck {
    fn finish(self, trailers: Trailers) -> S3Result<Checksum> {
        let alg = self.hasher.algorithm();
        let claimed = match self.expected {
            Expected::Nothing => take_trailer(trailers, None).map(|_| None)?,
            Expected::Header(raw) => take_trailer(trailers, None).map(|_| Some(raw))?,
            Expected::Trailer => {
                let value = take_trailer(trailers, Some(alg))?.unwrap_or_default();
                let raw = alg.decode_value(&value).ok_or_else(|| {
                    S3Error::new(
                        ErrorCode::InvalidRequest,
                        format!(
                            "Value for {} trailing header is invalid.",
                            alg.header_name()
                        ),
                    )
                })?;
                Some(raw)
            }
        };
        let computed = self.hasher.finish();
        if claimed.is_some_and(|claimed| claimed != computed) {
            return Err(S3Error::new(
                ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    alg.as_str()
                ),
            ));
        }
        Ok(Checksum::from_digest(alg, &computed))
    }
}

/// The value of the one trailer declared in `x-amz-trailer`; any other trailer, or a missing
/// declared one, is malformed.
fn take_trailer(
    trailers: Trailers,
    declared: Option<ChecksumAlgorithm>,
) -> S3Result<Option<String>> {
    let mut trailers = trailers.into_iter();
    match (declared, trailers.next(), trailers.next()) {
        (None, None, _) => Ok(None),
        (Some(alg), Some((name, value)), None) if name == alg.header_name() => Ok(Some(value)),
        _ => Err(malformed_trailer()),
    }
}

/// Which checksum to compute and what to compare it with, from the `x-amz-checksum-*` headers,
/// `x-amz-trailer`, `x-amz-sdk-checksum-algorithm` and `want`, with S3's errors for conflicts.
fn checksum_check(
    headers: &HeaderMap,
    trailer_mode: bool,
    want: Option<ChecksumAlgorithm>,
) -> S3Result<Option<ChecksumCheck>> {
    let in_header = header_checksum(headers)?;
    let in_trailer = declared_trailer(headers, trailer_mode)?;
    if in_header.is_some() && in_trailer.is_some() {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header",
        ));
    }
    let sent = in_header.as_ref().map(|(alg, _)| *alg).or(in_trailer);
    let sdk = sdk_algorithm(headers)?;
    if let (Some(sdk), Some(sent)) = (sdk, sent)
        && sdk != sent
    {
        return Err(invalid_sdk_algorithm());
    }
    let client = sent.or(sdk);
    if let (Some(want), Some(client)) = (want, client)
        && want != client
    {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "Checksum Type mismatch occurred, expected checksum Type: {}, \
                 actual checksum Type: {}",
                want.as_str().to_ascii_lowercase(),
                client.as_str().to_ascii_lowercase()
            ),
        ));
    }
    let Some(alg) = client.or(want) else {
        return Ok(None);
    };
    let expected = match (in_header, in_trailer) {
        (Some((_, raw)), _) => Expected::Header(raw),
        (None, Some(_)) => Expected::Trailer,
        (None, None) => Expected::Nothing,
    };
    Ok(Some(ChecksumCheck {
        hasher: alg.hasher(),
        expected,
    }))
}

/// The single `x-amz-checksum-<alg>` header, decoded.
fn header_checksum(headers: &HeaderMap) -> S3Result<Option<(ChecksumAlgorithm, Vec<u8>)>> {
    let mut sent = ChecksumAlgorithm::all().into_iter().flat_map(|alg| {
        headers
            .get_all(alg.header_name())
            .iter()
            .map(move |v| (alg, v))
    });
    let Some((alg, value)) = sent.next() else {
        return Ok(None);
    };
    if sent.next().is_some() {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    let raw = value
        .to_str()
        .ok()
        .and_then(|value| alg.decode_value(value))
        .ok_or_else(|| alg.invalid_value())?;
    Ok(Some((alg, raw)))
}

/// The checksum announced in `x-amz-trailer`, which only trailer payload modes can carry.
fn declared_trailer(
    headers: &HeaderMap,
    trailer_mode: bool,
) -> S3Result<Option<ChecksumAlgorithm>> {
    let unsupported = || {
        S3Error::new(
            ErrorCode::InvalidRequest,
            "The value specified in the x-amz-trailer header is not supported",
        )
    };
    let mut names = Vec::new();
    for value in headers.get_all(TRAILER) {
        let value = value.to_str().map_err(|_| unsupported())?;
        names.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty()),
        );
    }
    let Some((first, rest)) = names.split_first() else {
        return Ok(None);
    };
    if !trailer_mode {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "x-amz-trailer is only valid with a STREAMING-UNSIGNED-PAYLOAD-TRAILER or \
             STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER x-amz-content-sha256.",
        ));
    }
    let alg = ChecksumAlgorithm::from_header_name(first).ok_or_else(unsupported)?;
    if !rest.is_empty() {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }
    Ok(Some(alg))
}

fn sdk_algorithm(headers: &HeaderMap) -> S3Result<Option<ChecksumAlgorithm>> {
    headers
        .get(SDK_CHECKSUM_ALGORITHM)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(ChecksumAlgorithm::parse)
                .ok_or_else(invalid_sdk_algorithm)
        })
        .transpose()
}

fn invalid_sdk_algorithm() -> S3Error {
    S3Error::new(
        ErrorCode::InvalidRequest,
        "Value for x-amz-sdk-checksum-algorithm header is invalid.",
    )
}

fn content_md5(headers: &HeaderMap) -> S3Result<Option<[u8; 16]>> {
    let Some(value) = headers.get("content-md5") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|value| BASE64.decode(value.trim()).ok())
        .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
        .map(Some)
        .ok_or_else(|| S3Error::from(ErrorCode::InvalidDigest))
}

fn content_length(headers: &HeaderMap) -> S3Result<Option<u64>> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .map(|value| parse_length(value, "Content-Length"))
        .transpose()
}

/// aws-chunked bodies must declare their decoded size, which is the object's size.
fn decoded_content_length(headers: &HeaderMap) -> S3Result<u64> {
    let value = headers.get(DECODED_CONTENT_LENGTH).ok_or_else(|| {
        S3Error::new(
            ErrorCode::MissingContentLength,
            "You must provide the x-amz-decoded-content-length HTTP header.",
        )
    })?;
    parse_length(value, DECODED_CONTENT_LENGTH)
}

fn parse_length(value: &http::HeaderValue, name: &str) -> S3Result<u64> {
    value
        .to_str()
        .ok()
        .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::InvalidArgument,
                format!("Invalid {name} header."),
            )
            .with("ArgumentName", name.to_owned())
        })
}

/// A failure reading the raw body: a body limit from the tower stack, or a client that went
/// away or sent less than it declared.
fn body_error(err: axum::Error) -> S3Error {
    let inner = err.into_inner();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*inner);
    while let Some(err) = cause {
        if err.is::<http_body_util::LengthLimitError>() {
            return S3Error::from(ErrorCode::EntityTooLarge);
        }
        cause = err.source();
    }
    tracing::debug!(error = %inner, "reading the request body failed");
    S3Error::from(ErrorCode::IncompleteBody)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::{self, Keys, example_time, headers};
    use crate::auth::{Authenticated, authenticate};
    use futures::StreamExt;

    const HELLO_MD5: &str = "5eb63bbbe01eeed093cb22bb8f5acdc3";
    const HELLO_SHA256: &str = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";

    /// Drains the stream; checks that an error ends it and leaves no digests.
    fn collect(mut body: VerifiedBody) -> (Vec<u8>, S3Result<BodyDigests>) {
        let handle = body.digests_handle();
        futures::executor::block_on(async move {
            let mut data = Vec::new();
            while let Some(item) = body.next().await {
                match item {
                    Ok(bytes) => data.extend_from_slice(&bytes),
                    Err(err) => {
                        assert!(
                            body.next().await.is_none(),
                            "stream continued after an error"
                        );
                        assert!(body.digests().is_none() && handle.get().is_none());
                        return (data, Err(err));
                    }
                }
            }
            assert!(body.next().await.is_none());
            let digests = body.digests().expect("digests after a clean end");
            assert_eq!(handle.get().as_ref(), Some(&digests));
            (data, Ok(digests))
        })
    }

    /// A body delivered in frames of `frame` bytes.
    fn framed(data: &[u8], frame: usize) -> Body {
        let frames: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(frame.max(1))
            .map(|piece| Ok(Bytes::copy_from_slice(piece)))
            .collect();
        Body::from_stream(futures::stream::iter(frames))
    }

    fn run(
        data: &[u8],
        pairs: &[(&str, &str)],
        payload: PayloadMode,
        want: Option<ChecksumAlgorithm>,
    ) -> (Vec<u8>, S3Result<BodyDigests>) {
        let body = verified_body(Body::from(data.to_vec()), &headers(pairs), payload, want)
            .expect("headers accepted");
        collect(body)
    }

    fn setup_error(pairs: &[(&str, &str)], payload: PayloadMode) -> S3Error {
        match verified_body(Body::empty(), &headers(pairs), payload, None) {
            Ok(_) => panic!("headers {pairs:?} were accepted"),
            Err(err) => err,
        }
    }

    fn sha256_mode(hex_hash: &str) -> PayloadMode {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex_hash, &mut hash).unwrap();
        PayloadMode::Sha256(hash)
    }

    #[test]
    fn verified_body_is_send_static_and_unpin() {
        fn assert_traits<T: Send + Unpin + 'static>() {}
        assert_traits::<VerifiedBody>();
        assert_traits::<DigestsHandle>();
    }

    #[test]
    fn plain_body_is_measured() {
        let (data, digests) = run(b"hello world", &[], PayloadMode::Unsigned, None);
        assert_eq!(data, b"hello world");
        let digests = digests.unwrap();
        assert_eq!(digests.len, 11);
        assert_eq!(hex::encode(digests.md5), HELLO_MD5);
        assert_eq!(digests.checksum, None);

        let (data, digests) = run(b"", &[("content-length", "0")], PayloadMode::Unsigned, None);
        assert!(data.is_empty());
        assert_eq!(digests.unwrap().len, 0);
    }

    #[test]
    fn content_md5() {
        let good = [("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==")];
        assert!(
            run(b"hello world", &good, PayloadMode::Unsigned, None)
                .1
                .is_ok()
        );

        let bad = [("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")];
        let err = run(b"hello world", &bad, PayloadMode::Unsigned, None)
            .1
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadDigest);
        assert!(
            err.extra
                .contains(&("CalculatedDigest", "XrY7u+Ae7tCTyyK7j1rNww==".to_owned()))
        );

        for malformed in ["not base64!", "AAAA", ""] {
            let err = setup_error(&[("content-md5", malformed)], PayloadMode::Unsigned);
            assert_eq!(err.code, ErrorCode::InvalidDigest, "{malformed}");
        }
    }

    #[test]
    fn signed_payload_hash() {
        let (_, digests) = run(b"hello world", &[], sha256_mode(HELLO_SHA256), None);
        assert!(digests.is_ok());
        let other = test_support::EMPTY_SHA256;
        let err = run(b"hello world", &[], sha256_mode(other), None)
            .1
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::XAmzContentSHA256Mismatch);
        assert_eq!(
            err.extra[0],
            ("ClientComputedContentSHA256", other.to_owned())
        );
        assert_eq!(
            err.extra[1],
            ("S3ComputedContentSHA256", HELLO_SHA256.to_owned())
        );
    }

    #[test]
    fn checksum_header_is_verified() {
        let good = [("x-amz-checksum-crc32", "DUoRhQ==")];
        let digests = run(b"hello world", &good, PayloadMode::Unsigned, None)
            .1
            .unwrap();
        let checksum = digests.checksum.unwrap();
        assert_eq!(checksum.algorithm, ChecksumAlgorithm::Crc32);
        assert_eq!(checksum.value, "DUoRhQ==");

        let bad = [("x-amz-checksum-crc32", "AAAAAA==")];
        let err = run(b"hello world", &bad, PayloadMode::Unsigned, None)
            .1
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::BadDigest);
        assert_eq!(
            err.message,
            "The CRC32 you specified did not match the calculated checksum."
        );

        let err = setup_error(
            &[("x-amz-checksum-crc32", "y/Q5Jh==")],
            PayloadMode::Unsigned,
        );
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert_eq!(
            err.message,
            "Value for x-amz-checksum-crc32 header is invalid."
        );

        let two = [
            ("x-amz-checksum-crc32", "DUoRhQ=="),
            ("x-amz-checksum-sha1", "AAAA"),
        ];
        let err = setup_error(&two, PayloadMode::Unsigned);
        assert_eq!(
            err.message,
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        );
        let repeated = [
            ("x-amz-checksum-crc32", "DUoRhQ=="),
            ("x-amz-checksum-crc32", "DUoRhQ=="),
        ];
        assert_eq!(
            setup_error(&repeated, PayloadMode::Unsigned).code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn algorithm_selection() {
        // The SDK header alone: computed and returned.
        let sdk = [("x-amz-sdk-checksum-algorithm", "crc32c")];
        let digests = run(b"hello world", &sdk, PayloadMode::Unsigned, None)
            .1
            .unwrap();
        assert_eq!(digests.checksum.unwrap().value, "yZRlqg==");
        // `want` alone: computed.
        let digests = run(
            b"123456789",
            &[],
            PayloadMode::Unsigned,
            Some(ChecksumAlgorithm::Crc64Nvme),
        );
        assert_eq!(digests.1.unwrap().checksum.unwrap().value, "rosUhgp5mIg=");
        // `want` agreeing with the client's value: verified.
        let crc = [("x-amz-checksum-crc32", "DUoRhQ==")];
        assert!(
            run(
                b"hello world",
                &crc,
                PayloadMode::Unsigned,
                Some(ChecksumAlgorithm::Crc32)
            )
            .1
            .is_ok()
        );

        let mismatch = [
            ("x-amz-sdk-checksum-algorithm", "SHA1"),
            ("x-amz-checksum-crc32", "DUoRhQ=="),
        ];
        let err = setup_error(&mismatch, PayloadMode::Unsigned);
        assert_eq!(
            err.message,
            "Value for x-amz-sdk-checksum-algorithm header is invalid."
        );
        let unknown = [("x-amz-sdk-checksum-algorithm", "MD5")];
        assert_eq!(
            setup_error(&unknown, PayloadMode::Unsigned).code,
            ErrorCode::InvalidRequest
        );

        let err = match verified_body(
            Body::empty(),
            &headers(&crc),
            PayloadMode::Unsigned,
            Some(ChecksumAlgorithm::Crc32c),
        ) {
            Err(err) => err,
            Ok(_) => panic!("mismatch accepted"),
        };
        assert_eq!(
            err.message,
            "Checksum Type mismatch occurred, expected checksum Type: crc32c, \
             actual checksum Type: crc32"
        );
    }

    #[test]
    fn declared_length_is_enforced() {
        let short = [("content-length", "20")];
        let err = run(b"hello world", &short, PayloadMode::Unsigned, None)
            .1
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::IncompleteBody);
        let long = [("content-length", "5")];
        let (data, result) = run(b"hello world", &long, PayloadMode::Unsigned, None);
        assert_eq!(result.unwrap_err().code, ErrorCode::InvalidRequest);
        assert!(data.is_empty());
        let invalid = [("content-length", "-1")];
        assert_eq!(
            setup_error(&invalid, PayloadMode::Unsigned).code,
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn body_read_errors() {
        let frames: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"hello")),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "gone",
            )),
        ];
        let body = Body::from_stream(futures::stream::iter(frames));
        let verified = verified_body(body, &HeaderMap::new(), PayloadMode::Unsigned, None).unwrap();
        let (data, result) = collect(verified);
        assert_eq!(data, b"hello");
        assert_eq!(result.unwrap_err().code, ErrorCode::IncompleteBody);

        let limited = http_body_util::Limited::new(Body::from(vec![0u8; 100]), 10);
        let verified = verified_body(
            Body::new(limited),
            &HeaderMap::new(),
            PayloadMode::Unsigned,
            None,
        )
        .unwrap();
        assert_eq!(
            collect(verified).1.unwrap_err().code,
            ErrorCode::EntityTooLarge
        );
    }

    fn streaming(trailer: bool) -> (HeaderMap, PayloadMode) {
        let (method, uri, headers) = test_support::streaming_request(trailer);
        let Authenticated { payload, .. } =
            authenticate(&method, &uri, &headers, &Keys, "us-east-1", example_time()).unwrap();
        (headers, payload)
    }

    #[test]
    fn aws_streaming_example_end_to_end() {
        let body = test_support::streaming_body();
        for frame in [1, 100, 8192, 65536, body.len()] {
            let (headers, payload) = streaming(false);
            let verified = verified_body(framed(&body, frame), &headers, payload, None).unwrap();
            let (data, digests) = collect(verified);
            assert_eq!(data, vec![b'a'; 66560]);
            let digests = digests.unwrap();
            assert_eq!(digests.len, 66560);
            assert_eq!(digests.checksum, None);
        }
    }

    #[test]
    fn aws_trailer_example_end_to_end() {
        for blank in [false, true] {
            let (headers, payload) = streaming(true);
            let body = Body::from(test_support::trailer_body(blank));
            let verified = verified_body(body, &headers, payload, None).unwrap();
            let (data, digests) = collect(verified);
            assert_eq!(data.len(), 66560);
            let checksum = digests.unwrap().checksum.unwrap();
            // The CRC32C the example's trailer carries really is the body's.
            assert_eq!(checksum.algorithm, ChecksumAlgorithm::Crc32c);
            assert_eq!(checksum.value, "sOO8/Q==");
        }
    }

    #[test]
    fn streaming_failures_leave_no_digests() {
        let (headers, payload) = streaming(false);
        let mut body = test_support::streaming_body();
        body[1000] = b'b';
        let verified = verified_body(Body::from(body), &headers, payload, None).unwrap();
        assert_eq!(
            collect(verified).1.unwrap_err().code,
            ErrorCode::SignatureDoesNotMatch
        );

        // Declared decoded length differs from the data.
        for declared in ["66561", "66559"] {
            let (mut headers, payload) = streaming(false);
            headers.insert(DECODED_CONTENT_LENGTH, declared.parse().unwrap());
            let body = Body::from(test_support::streaming_body());
            let verified = verified_body(body, &headers, payload, None).unwrap();
            assert!(collect(verified).1.is_err(), "{declared}");
        }

        let (mut headers, payload) = streaming(false);
        headers.remove(DECODED_CONTENT_LENGTH);
        match verified_body(Body::empty(), &headers, payload, None) {
            Err(err) => assert_eq!(err.code, ErrorCode::MissingContentLength),
            Ok(_) => panic!("missing decoded length accepted"),
        }

        // Truncated anywhere: never a clean end.
        let full = test_support::trailer_body(false);
        for cut in (0..full.len() - 2).step_by(4999).chain([full.len() - 20]) {
            let (headers, payload) = streaming(true);
            let body = Body::from(full[..cut].to_vec());
            let verified = verified_body(body, &headers, payload, None).unwrap();
            assert!(collect(verified).1.is_err(), "cut at {cut}");
        }
    }

    const UNSIGNED_TRAILER_BODY: &[u8] =
        b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";

    fn unsigned_trailer(body: &[u8], pairs: &[(&str, &str)]) -> S3Result<BodyDigests> {
        let headers = headers(pairs);
        let verified = verified_body(
            Body::from(body.to_vec()),
            &headers,
            PayloadMode::StreamingUnsignedTrailer,
            None,
        )?;
        collect(verified).1
    }

    #[test]
    fn unsigned_trailer_checksums() {
        let declared = [
            ("x-amz-decoded-content-length", "11"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ];
        let digests = unsigned_trailer(UNSIGNED_TRAILER_BODY, &declared).unwrap();
        assert_eq!(digests.checksum.unwrap().value, "DUoRhQ==");
        assert_eq!(hex::encode(digests.md5), HELLO_MD5);

        let wrong = String::from_utf8_lossy(UNSIGNED_TRAILER_BODY).replace("DUoRhQ==", "AAAAAA==");
        let err = unsigned_trailer(wrong.as_bytes(), &declared).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadDigest);

        let invalid = String::from_utf8_lossy(UNSIGNED_TRAILER_BODY).replace("DUoRhQ==", "DUoR");
        let err = unsigned_trailer(invalid.as_bytes(), &declared).unwrap_err();
        assert_eq!(
            err.message,
            "Value for x-amz-checksum-crc32 trailing header is invalid."
        );

        let missing = b"b\r\nhello world\r\n0\r\n\r\n";
        assert_eq!(
            unsigned_trailer(missing, &declared).unwrap_err().code,
            ErrorCode::MalformedTrailerError
        );

        // A trailer that x-amz-trailer did not announce.
        let undeclared = [("x-amz-decoded-content-length", "11")];
        assert!(unsigned_trailer(UNSIGNED_TRAILER_BODY, &undeclared).is_err());
        let other = [
            ("x-amz-decoded-content-length", "11"),
            ("x-amz-trailer", "x-amz-checksum-sha256"),
        ];
        assert!(unsigned_trailer(UNSIGNED_TRAILER_BODY, &other).is_err());
    }

    #[test]
    fn trailer_header_validation() {
        let mode = || PayloadMode::StreamingUnsignedTrailer;
        let length = ("x-amz-decoded-content-length", "11");
        let err = setup_error(&[length, ("x-amz-trailer", "x-amz-checksum-md5")], mode());
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        let two = ("x-amz-trailer", "x-amz-checksum-crc32, x-amz-checksum-sha1");
        assert_eq!(
            setup_error(&[length, two], mode()).code,
            ErrorCode::InvalidRequest
        );
        let with_header = [
            length,
            ("x-amz-trailer", "x-amz-checksum-crc32"),
            ("x-amz-checksum-crc32", "DUoRhQ=="),
        ];
        assert_eq!(
            setup_error(&with_header, mode()).message,
            "Expecting a single x-amz-checksum- header"
        );
        // Without a trailer payload mode, a trailer could never arrive.
        let err = setup_error(
            &[("x-amz-trailer", "x-amz-checksum-crc32")],
            PayloadMode::Unsigned,
        );
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn garbage_bodies_never_panic_or_succeed_by_accident() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut body = UNSIGNED_TRAILER_BODY.to_vec();
            let flips = next() % 4 + 1;
            for _ in 0..flips {
                let at = (next() as usize) % body.len();
                body[at] = next() as u8;
            }
            let declared = [
                ("x-amz-decoded-content-length", "11"),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ];
            if let Ok(digests) = unsigned_trailer(&body, &declared) {
                // Only a flip that left the meaning intact may pass.
                assert_eq!(digests.checksum.unwrap().value, "DUoRhQ==");
                assert_eq!(hex::encode(digests.md5), HELLO_MD5);
            }
        }
    }
}
