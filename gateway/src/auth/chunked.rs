//! Decoding of aws-chunked bodies: the chunk framing, the chained chunk signatures of
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`, and the trailer section.
//!
//! ```text
//! <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n   … repeated, then the final chunk:
//! 0[;chunk-signature=<sig>]\r\n
//! [x-amz-checksum-crc32:<base64>\r\n x-amz-trailer-signature:<sig>\r\n]\r\n
//! ```
//!
//! Sans-IO: the caller feeds raw body frames and pulls decoded data. Data is passed on as it
//! arrives (zero-copy) and a chunk's signature is checked when the chunk ends, so memory stays
//! bounded by one header line and one trailer section whatever the chunk sizes; the caller must
//! not commit anything before `finish` succeeds.

use bytes::{Buf, Bytes};
use sha2::{Digest, Sha256};

use super::context::ChunkSigningContext;
use super::sigv4::{hmac_sha256, sha256_hex, signatures_match};
use crate::error::{ErrorCode, S3Error, S3Result};

/// Longest chunk header line accepted (a signed one is ~85 bytes).
const MAX_LINE: usize = 4096;
/// Longest trailer section accepted (a checksum and its signature are ~150 bytes).
const MAX_TRAILER_SECTION: usize = 16 * 1024;
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Trailer `(name, value)` pairs, names lowercase, in the order sent.
pub(crate) type Trailers = Vec<(String, String)>;

/// Checks the signature chain: each chunk's signature covers its data and the previous
/// signature, starting from the request's seed signature; the trailer signature ends it.
struct ChunkSigner {
    ctx: ChunkSigningContext,
    previous: String,
}

impl ChunkSigner {
    fn new(ctx: ChunkSigningContext) -> Self {
        let previous = ctx.seed_signature.clone();
        ChunkSigner { ctx, previous }
    }

    fn sign(&self, algorithm: &str, hashes: &str) -> String {
        let string_to_sign = format!(
            "{algorithm}\n{}\n{}\n{}\n{hashes}",
            self.ctx.amz_date, self.ctx.scope, self.previous
        );
        hex::encode(hmac_sha256(
            &self.ctx.signing_key,
            string_to_sign.as_bytes(),
        ))
    }

    fn chunk_signature(&self, data_sha256: &[u8]) -> String {
        let hashes = format!("{}\n{}", sha256_hex(b""), hex::encode(data_sha256));
        self.sign("AWS4-HMAC-SHA256-PAYLOAD", &hashes)
    }

    fn trailer_signature(&self, canonical_trailers: &[u8]) -> String {
        self.sign("AWS4-HMAC-SHA256-TRAILER", &sha256_hex(canonical_trailers))
    }

    fn verify_chunk(&mut self, data_sha256: &[u8], provided: &str) -> S3Result<()> {
        let expected = self.chunk_signature(data_sha256);
        if !signatures_match(&expected, provided) {
            return Err(signature_mismatch("chunk"));
        }
        self.previous = expected;
        Ok(())
    }

    fn verify_trailer(&self, trailers: &Trailers, provided: &str) -> S3Result<()> {
        let canonical: String = trailers
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect();
        if !signatures_match(&self.trailer_signature(canonical.as_bytes()), provided) {
            return Err(signature_mismatch("trailer"));
        }
        Ok(())
    }
}

enum State {
    /// Reading a chunk header line.
    Header,
    /// Inside a chunk's data.
    Data { remaining: u64 },
    /// Expecting the CRLF after a chunk's data; `matched` bytes of it seen so far.
    DataEnd { matched: usize },
    /// After the final (empty) chunk: everything left is the trailer section.
    Trailer,
}

/// An aws-chunked decoder for one request body.
pub(crate) struct ChunkedDecoder {
    input: Bytes,
    state: State,
    line: Vec<u8>,
    signer: Option<ChunkSigner>,
    /// Signed mode: the current chunk's claimed signature and the hash of its data so far.
    pending: Option<(String, Sha256)>,
    trailers_allowed: bool,
    trailer_section: Vec<u8>,
}

impl ChunkedDecoder {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (`trailers_allowed: false`) or `…-TRAILER`.
    pub(crate) fn signed(ctx: ChunkSigningContext, trailers_allowed: bool) -> Self {
        Self::new(Some(ChunkSigner::new(ctx)), trailers_allowed)
    }

    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    pub(crate) fn unsigned_trailer() -> Self {
        Self::new(None, true)
    }

    fn new(signer: Option<ChunkSigner>, trailers_allowed: bool) -> Self {
        ChunkedDecoder {
            input: Bytes::new(),
            state: State::Header,
            line: Vec::new(),
            signer,
            pending: None,
            trailers_allowed,
            trailer_section: Vec::new(),
        }
    }

    /// Adds the next frame of raw body. Call after `next_data` returned `Ok(None)`.
    pub(crate) fn feed(&mut self, frame: Bytes) {
        if self.input.is_empty() {
            self.input = frame;
        } else {
            let mut joined = Vec::with_capacity(self.input.len() + frame.len());
            joined.extend_from_slice(&self.input);
            joined.extend_from_slice(&frame);
            self.input = joined.into();
        }
    }

    /// The next piece of decoded data, or `Ok(None)` when more input is needed.
    pub(crate) fn next_data(&mut self) -> S3Result<Option<Bytes>> {
        while !self.input.is_empty() {
            match self.state {
                State::Header => {
                    if let Some(line) = self.take_line()? {
                        self.start_chunk(&line)?;
                    }
                }
                State::Data { remaining } => return Ok(Some(self.take_data(remaining))),
                State::DataEnd { matched } => self.take_data_end(matched)?,
                State::Trailer => {
                    if self.trailer_section.len() + self.input.len() > MAX_TRAILER_SECTION {
                        return Err(malformed_trailer());
                    }
                    self.trailer_section.extend_from_slice(&self.input);
                    self.input.clear();
                }
            }
        }
        Ok(None)
    }

    /// At the end of the body: checks that the encoding was complete and returns the
    /// verified trailers.
    pub(crate) fn finish(&mut self) -> S3Result<Trailers> {
        if !matches!(self.state, State::Trailer) {
            return Err(S3Error::from(ErrorCode::IncompleteBody));
        }
        let (trailers, signature) = parse_trailer_section(&self.trailer_section)?;
        if !self.trailers_allowed {
            return match (trailers.is_empty(), signature) {
                (true, None) => Ok(trailers),
                _ => Err(malformed(
                    "trailers require a STREAMING-…-TRAILER x-amz-content-sha256",
                )),
            };
        }
        if let Some(signer) = &self.signer
            && (!trailers.is_empty() || signature.is_some())
        {
            let signature = signature.ok_or_else(|| {
                S3Error::new(
                    ErrorCode::SignatureDoesNotMatch,
                    "The trailer signature (x-amz-trailer-signature) is missing.",
                )
            })?;
            signer.verify_trailer(&trailers, &signature)?;
        }
        Ok(trailers)
    }

    /// A complete CRLF-terminated line without its CRLF, or `None` if more input is needed.
    fn take_line(&mut self) -> S3Result<Option<Vec<u8>>> {
        let newline = self.input.iter().position(|b| *b == b'\n');
        let take = newline.map_or(self.input.len(), |at| at + 1);
        if self.line.len() + take > MAX_LINE {
            return Err(malformed("chunk header line too long"));
        }
        self.line.extend_from_slice(&self.input.split_to(take));
        if newline.is_none() {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        line.pop();
        if line.pop() != Some(b'\r') {
            return Err(malformed("chunk header line must end with CRLF"));
        }
        Ok(Some(line))
    }

    fn start_chunk(&mut self, line: &[u8]) -> S3Result<()> {
        let (size, signature) = parse_chunk_header(line, self.signer.is_some())?;
        if size > 0 {
            self.pending = signature.map(|signature| (signature, Sha256::new()));
            self.state = State::Data { remaining: size };
            return Ok(());
        }
        if let (Some(signer), Some(signature)) = (&mut self.signer, signature) {
            signer.verify_chunk(&Sha256::digest(b""), &signature)?;
        }
        self.state = State::Trailer;
        Ok(())
    }

    fn take_data(&mut self, remaining: u64) -> Bytes {
        let n = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(self.input.len());
        let data = self.input.split_to(n);
        if let Some((_, hasher)) = &mut self.pending {
            hasher.update(&data);
        }
        // n <= remaining, and usize always fits in u64 on supported targets.
        let remaining = remaining - n as u64;
        self.state = match remaining {
            0 => State::DataEnd { matched: 0 },
            _ => State::Data { remaining },
        };
        data
    }

    fn take_data_end(&mut self, matched: usize) -> S3Result<()> {
        let expected = b"\r\n".get(matched..).unwrap_or_default();
        let n = expected.len().min(self.input.len());
        if self.input.get(..n) != expected.get(..n) {
            return Err(malformed("chunk data must be followed by CRLF"));
        }
        self.input.advance(n);
        if matched + n < 2 {
            self.state = State::DataEnd {
                matched: matched + n,
            };
            return Ok(());
        }
        if let (Some(signer), Some((signature, hasher))) = (&mut self.signer, self.pending.take()) {
            signer.verify_chunk(&hasher.finalize(), &signature)?;
        }
        self.state = State::Header;
        Ok(())
    }
}

/// `<hex size>[;chunk-signature=<hex>]`; the signature is required when signed.
fn parse_chunk_header(line: &[u8], signed: bool) -> S3Result<(u64, Option<String>)> {
    let line = std::str::from_utf8(line).map_err(|_| malformed("chunk header is not ASCII"))?;
    let (size, extensions) = line.split_once(';').unwrap_or((line, ""));
    let size_ok =
        !size.is_empty() && size.len() <= 16 && size.bytes().all(|b| b.is_ascii_hexdigit());
    let size = size_ok
        .then(|| u64::from_str_radix(size, 16).ok())
        .flatten()
        .ok_or_else(|| malformed("invalid chunk size"))?;
    if !signed {
        return Ok((size, None));
    }
    let signature = extensions
        .split(';')
        .find_map(|ext| ext.trim().strip_prefix("chunk-signature="))
        .ok_or_else(|| {
            S3Error::new(
                ErrorCode::SignatureDoesNotMatch,
                "A chunk of the signed streaming payload has no chunk-signature.",
            )
        })?;
    Ok((size, Some(signature.to_owned())))
}

/// `name:value` lines and the trailer signature if any. Lenient about framing that carries no
/// meaning (bare LF, blank lines, a missing final blank line), but every line must be complete.
fn parse_trailer_section(section: &[u8]) -> S3Result<(Trailers, Option<String>)> {
    let text = std::str::from_utf8(section).map_err(|_| malformed_trailer())?;
    let (lines, unterminated) = text.rsplit_once('\n').unwrap_or(("", text));
    if !unterminated.trim_end_matches('\r').is_empty() {
        return Err(malformed_trailer());
    }
    let mut trailers: Trailers = Vec::new();
    let mut signature = None;
    for line in lines.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or_else(malformed_trailer)?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if name.is_empty() || trailers.iter().any(|(seen, _)| *seen == name) {
            return Err(malformed_trailer());
        }
        if name == TRAILER_SIGNATURE {
            if signature.replace(value).is_some() {
                return Err(malformed_trailer());
            }
        } else {
            trailers.push((name, value));
        }
    }
    Ok((trailers, signature))
}

fn malformed(detail: &str) -> S3Error {
    S3Error::new(
        ErrorCode::InvalidRequest,
        format!("The aws-chunked request body is malformed: {detail}."),
    )
}

/// AWS's wording for MalformedTrailerError (a code error.rs does not have yet).
pub(crate) fn malformed_trailer() -> S3Error {
    ErrorCode::MalformedTrailerError.into()
}

fn signature_mismatch(what: &str) -> S3Error {
    S3Error::new(
        ErrorCode::SignatureDoesNotMatch,
        format!(
            "The {what} signature we calculated does not match the signature you provided. \
             Check your key and signing method."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sigv4::signing_key;
    use crate::auth::test_support::{SECRET, STREAMING_SEED as SEED, TRAILER_SEED};
    use crate::auth::test_support::{streaming_body, trailer_body};

    fn ctx(seed: &str) -> ChunkSigningContext {
        ChunkSigningContext {
            signing_key: signing_key(SECRET, "20130524", "us-east-1"),
            amz_date: "20130524T000000Z".to_owned(),
            scope: "20130524/us-east-1/s3/aws4_request".to_owned(),
            seed_signature: seed.to_owned(),
        }
    }

    /// Feeds `body` in frames of `frame` bytes; returns the data and the finish result.
    fn decode(
        mut decoder: ChunkedDecoder,
        body: &[u8],
        frame: usize,
    ) -> (Vec<u8>, S3Result<Trailers>) {
        let mut out = Vec::new();
        for piece in body.chunks(frame.max(1)) {
            decoder.feed(Bytes::copy_from_slice(piece));
            loop {
                match decoder.next_data() {
                    Ok(Some(data)) => {
                        assert!(!data.is_empty());
                        out.extend_from_slice(&data);
                    }
                    Ok(None) => break,
                    Err(err) => return (out, Err(err)),
                }
            }
        }
        let result = decoder.finish();
        (out, result)
    }

    // AWS "Signature Calculations for the Authorization Header: Transferring Payload in
    // Multiple Chunks": 65536 + 1024 bytes of 'a', chained from the request's seed signature.
    const SIG_1: &str = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
    const SIG_2: &str = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
    const SIG_FINAL: &str = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";

    #[test]
    fn aws_chunk_signature_vectors() {
        let mut signer = ChunkSigner::new(ctx(SEED));
        assert_eq!(
            signer.chunk_signature(&Sha256::digest([b'a'; 65536])),
            SIG_1
        );
        signer
            .verify_chunk(&Sha256::digest([b'a'; 65536]), SIG_1)
            .unwrap();
        assert_eq!(signer.chunk_signature(&Sha256::digest([b'a'; 1024])), SIG_2);
        signer
            .verify_chunk(&Sha256::digest([b'a'; 1024]), SIG_2)
            .unwrap();
        assert_eq!(signer.chunk_signature(&Sha256::digest(b"")), SIG_FINAL);
    }

    #[test]
    fn decodes_the_aws_example_at_any_framing() {
        let body = streaming_body();
        for frame in [1, 2, 7, 85, 86, 4096, 65536, 70000, body.len()] {
            let decoder = ChunkedDecoder::signed(ctx(SEED), false);
            let (data, result) = decode(decoder, &body, frame);
            assert_eq!(
                result.unwrap(),
                Vec::<(String, String)>::new(),
                "frame {frame}"
            );
            assert_eq!(data, vec![b'a'; 66560], "frame {frame}");
        }
    }

    #[test]
    fn trailer_signature_vector() {
        // Trailing headers first/second/third after the AWS example's final chunk, as signed by
        // the AWS CRT signer's tests.
        let mut body = streaming_body();
        body.truncate(body.len() - 2);
        body.extend_from_slice(
            b"first:1st\r\nsecond:2nd\r\nthird:3rd\r\nx-amz-trailer-signature:\
              df5735bd9f3295cd9386572292562fefc93ba94e80a0a1ddcbd652c4e0a75e6c\r\n\r\n",
        );
        let (data, result) = decode(ChunkedDecoder::signed(ctx(SEED), true), &body, 1000);
        assert_eq!(data.len(), 66560);
        let trailers = result.unwrap();
        assert_eq!(trailers.len(), 3);
        assert_eq!(trailers[1], ("second".to_owned(), "2nd".to_owned()));
    }

    #[test]
    fn decodes_the_aws_trailer_example_in_both_framings() {
        for blank in [false, true] {
            let body = trailer_body(blank);
            for frame in [1, 13, 4096, body.len()] {
                let decoder = ChunkedDecoder::signed(ctx(TRAILER_SEED), true);
                let (data, result) = decode(decoder, &body, frame);
                assert_eq!(data, vec![b'a'; 66560]);
                assert_eq!(
                    result.unwrap(),
                    vec![("x-amz-checksum-crc32c".to_owned(), "sOO8/Q==".to_owned())]
                );
            }
        }
    }

    #[test]
    fn tampered_trailer_is_refused() {
        let body = trailer_body(false);
        let tampered = String::from_utf8(body)
            .unwrap()
            .replace("sOO8/Q==", "sOO8/A==");
        let decoder = ChunkedDecoder::signed(ctx(TRAILER_SEED), true);
        let (_, result) = decode(decoder, tampered.as_bytes(), 4096);
        assert_eq!(result.unwrap_err().code, ErrorCode::SignatureDoesNotMatch);

        let body = String::from_utf8(trailer_body(false)).unwrap();
        let cut = body.find("x-amz-trailer-signature").unwrap();
        let unsigned = format!("{}\r\n", &body[..cut]);
        let decoder = ChunkedDecoder::signed(ctx(TRAILER_SEED), true);
        let (_, result) = decode(decoder, unsigned.as_bytes(), 4096);
        assert_eq!(result.unwrap_err().code, ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn trailers_are_refused_without_trailer_mode() {
        let mut body = streaming_body();
        body.truncate(body.len() - 2);
        body.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
        let (_, result) = decode(ChunkedDecoder::signed(ctx(SEED), false), &body, 4096);
        assert_eq!(result.unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn corrupted_data_or_signatures_are_refused() {
        let body = streaming_body();
        // A flipped data byte in each chunk.
        for at in [100, 88 + 65536 + 2 + 86 + 10] {
            let mut bad = body.clone();
            bad[at] = b'b';
            let (_, result) = decode(ChunkedDecoder::signed(ctx(SEED), false), &bad, 4096);
            assert_eq!(
                result.unwrap_err().code,
                ErrorCode::SignatureDoesNotMatch,
                "{at}"
            );
        }
        // Wrong seed: the first chunk fails.
        let (data, result) = decode(ChunkedDecoder::signed(ctx(SIG_1), false), &body, 4096);
        assert_eq!(result.unwrap_err().code, ErrorCode::SignatureDoesNotMatch);
        assert!(data.len() <= 65536);
        // Chunks reordered / final signature replaced.
        let swapped = String::from_utf8(body.clone())
            .unwrap()
            .replace(SIG_FINAL, SIG_2);
        let (_, result) = decode(
            ChunkedDecoder::signed(ctx(SEED), false),
            swapped.as_bytes(),
            4096,
        );
        assert_eq!(result.unwrap_err().code, ErrorCode::SignatureDoesNotMatch);
        // No signature at all in signed mode.
        let unsigned = b"5\r\nhello\r\n0\r\n\r\n";
        let (_, result) = decode(ChunkedDecoder::signed(ctx(SEED), false), unsigned, 4096);
        assert_eq!(result.unwrap_err().code, ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn every_truncation_fails() {
        let body = trailer_body(false);
        let text = String::from_utf8(body.clone()).unwrap();
        // Cut right after the final chunk, the encoding is complete but has no trailer: the
        // decoder accepts it and returns no trailers (the body layer then misses the declared one).
        let final_chunk_end = text.find("x-amz-checksum-crc32c").unwrap();
        let decoder = ChunkedDecoder::signed(ctx(TRAILER_SEED), true);
        assert!(
            decode(decoder, &body[..final_chunk_end], 4096)
                .1
                .unwrap()
                .is_empty()
        );
        // Cutting only the final blank line is tolerated: the trailer is complete and signed.
        let complete_trailer = body.len() - 2;
        let decoder = ChunkedDecoder::signed(ctx(TRAILER_SEED), true);
        assert_eq!(
            decode(decoder, &body[..complete_trailer], 4096)
                .1
                .unwrap()
                .len(),
            1
        );
        // Anywhere else, it fails.
        let cuts = (0..complete_trailer)
            .step_by(97)
            .chain(complete_trailer - 300..complete_trailer)
            .filter(|cut| *cut != final_chunk_end);
        for cut in cuts {
            let decoder = ChunkedDecoder::signed(ctx(TRAILER_SEED), true);
            let (_, result) = decode(decoder, &body[..cut], 4096);
            assert!(result.is_err(), "cut at {cut} was accepted");
        }
    }

    #[test]
    fn truncation_before_the_final_chunk_is_incomplete_body() {
        let body = streaming_body();
        for cut in [0, 10, 100, 65536 + 85, 65536 + 87, body.len() - 90] {
            let (_, result) = decode(ChunkedDecoder::signed(ctx(SEED), false), &body[..cut], 4096);
            assert_eq!(result.unwrap_err().code, ErrorCode::IncompleteBody, "{cut}");
        }
    }

    #[test]
    fn unsigned_trailer_mode() {
        let body = b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        for frame in 1..body.len() {
            let (data, result) = decode(ChunkedDecoder::unsigned_trailer(), body, frame);
            assert_eq!(data, b"hello world");
            assert_eq!(
                result.unwrap(),
                vec![("x-amz-checksum-crc32".to_owned(), "DUoRhQ==".to_owned())]
            );
        }
        // Several chunks, uppercase hex, no trailer at all.
        let body = b"A\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n";
        let (data, result) = decode(ChunkedDecoder::unsigned_trailer(), body, 3);
        assert_eq!(data, b"0123456789!");
        assert!(result.unwrap().is_empty());
    }

    #[test]
    fn malformed_framing_is_refused() {
        let cases: [&[u8]; 12] = [
            b"x\r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"10000000000000000\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nno-colon-here\r\n\r\n",
            b"5\r\nhello\r\n0\r\na:1\r\na:2\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\xff:1\r\n\r\n",
        ];
        for body in cases {
            let (_, result) = decode(ChunkedDecoder::unsigned_trailer(), body, 4096);
            let err = result.unwrap_err();
            assert!(
                matches!(
                    err.code,
                    ErrorCode::InvalidRequest | ErrorCode::MalformedTrailerError
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn oversized_lines_and_trailers_are_refused() {
        let mut long_line = vec![b'0'; MAX_LINE + 10];
        long_line.extend_from_slice(b"5\r\nhello\r\n");
        let (_, result) = decode(ChunkedDecoder::unsigned_trailer(), &long_line, 100);
        assert_eq!(result.unwrap_err().code, ErrorCode::InvalidRequest);

        let mut long_trailer = b"5\r\nhello\r\n0\r\n".to_vec();
        long_trailer.extend(std::iter::repeat_n(b'a', MAX_TRAILER_SECTION + 1));
        let (_, result) = decode(ChunkedDecoder::unsigned_trailer(), &long_trailer, 1000);
        assert_eq!(result.unwrap_err().code, ErrorCode::MalformedTrailerError);
    }

    #[test]
    fn huge_declared_chunk_streams_without_buffering() {
        // A 2^40-byte chunk claim: data flows through as it comes and the end is incomplete.
        let mut body = b"10000000000\r\n".to_vec();
        body.extend_from_slice(&[7u8; 10_000]);
        let (data, result) = decode(ChunkedDecoder::unsigned_trailer(), &body, 1000);
        assert_eq!(data.len(), 10_000);
        assert_eq!(result.unwrap_err().code, ErrorCode::IncompleteBody);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"0123456789abcdef;=\r\n:xchunk-signature";
        for _ in 0..2000 {
            let len = (next() % 200) as usize;
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        r as u8
                    } else {
                        alphabet[(r as usize / 4) % alphabet.len()]
                    }
                })
                .collect();
            let frame = (next() % 17 + 1) as usize;
            let _ = decode(ChunkedDecoder::unsigned_trailer(), &body, frame);
            let _ = decode(ChunkedDecoder::signed(ctx(SEED), true), &body, frame);
        }
    }
}
