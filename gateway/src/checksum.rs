//! S3's additional checksums (`x-amz-checksum-*`): the five algorithms, their wire names,
//! streaming hashers, and how a multipart upload's object checksum is derived from its parts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{ErrorCode, S3Error, S3Result};

/// A checksum algorithm S3 accepts. Serialized as AWS spells it (`CRC32`, `CRC64NVME`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub fn all() -> [Self; 5] {
        use ChecksumAlgorithm::*;
        [Crc32, Crc32c, Crc64Nvme, Sha1, Sha256]
    }

    /// Parses an algorithm name as clients send it (`CRC32`, `crc32c`, …), case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::all()
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
    }

    /// The name AWS uses in XML and header values.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The request/response header (and aws-chunked trailer) carrying this checksum.
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The algorithm whose header is `name` (case-insensitive).
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::all()
            .into_iter()
            .find(|alg| alg.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    pub fn hasher(self) -> ChecksumHasher {
        ChecksumHasher(match self {
            Self::Crc32 => Inner::Crc32(crc32fast::Hasher::new()),
            Self::Crc32c => Inner::Crc32c(0),
            Self::Crc64Nvme => Inner::Crc64Nvme(crc64fast_nvme::Digest::new()),
            Self::Sha1 => Inner::Sha1(sha1::Sha1::new()),
            Self::Sha256 => Inner::Sha256(sha2::Sha256::new()),
        })
    }

    /// Whether a multipart upload may use this algorithm with `ty`: CRC64NVME is full-object
    /// only, the SHAs are composite only, CRC32 and CRC32C do both.
    pub fn supports(self, ty: ChecksumType) -> bool {
        match ty {
            ChecksumType::FullObject => {
                matches!(self, Self::Crc32 | Self::Crc32c | Self::Crc64Nvme)
            }
            ChecksumType::Composite => self != Self::Crc64Nvme,
        }
    }

    /// The type a multipart upload gets when CreateMultipartUpload names only the algorithm.
    pub fn default_type(self) -> ChecksumType {
        match self {
            Self::Crc64Nvme => ChecksumType::FullObject,
            _ => ChecksumType::Composite,
        }
    }

    /// Decodes a wire value (base64 of the raw digest). `None` unless it is canonical base64 of
    /// exactly `digest_len` bytes, which is what S3 demands ("Value for … header is invalid.").
    pub fn decode_value(self, value: &str) -> Option<Vec<u8>> {
        BASE64
            .decode(value.trim())
            .ok()
            .filter(|raw| raw.len() == self.digest_len())
    }

    /// S3's answer to a header value `decode_value` refuses.
    pub fn invalid_value(self) -> S3Error {
        S3Error::new(
            ErrorCode::InvalidRequest,
            format!("Value for {} header is invalid.", self.header_name()),
        )
    }
}

/// How a multipart object's checksum is derived from its parts (`x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChecksumType {
    /// The checksum of every byte of the object, as a single PUT would give.
    FullObject,
    /// The checksum of the concatenated part checksums, suffixed `-<part count>`.
    Composite,
}

impl ChecksumType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullObject => "FULL_OBJECT",
            Self::Composite => "COMPOSITE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        [Self::FullObject, Self::Composite]
            .into_iter()
            .find(|ty| ty.as_str().eq_ignore_ascii_case(s))
    }
}

/// A checksum as S3 shows it: the algorithm and the base64 value (composite: `base64-N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
}

impl Checksum {
    pub fn from_digest(algorithm: ChecksumAlgorithm, digest: &[u8]) -> Self {
        Checksum {
            algorithm,
            value: BASE64.encode(digest),
        }
    }
}

/// An in-progress checksum computation.
pub struct ChecksumHasher(Inner);

enum Inner {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChecksumHasher {
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.0 {
            Inner::Crc32(_) => ChecksumAlgorithm::Crc32,
            Inner::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            Inner::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            Inner::Sha1(_) => ChecksumAlgorithm::Sha1,
            Inner::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Inner::Crc32(h) => h.update(data),
            Inner::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            Inner::Crc64Nvme(h) => h.write(data),
            Inner::Sha1(h) => h.update(data),
            Inner::Sha256(h) => h.update(data),
        }
    }

    /// The raw digest; CRCs are big-endian, as S3 encodes them.
    pub fn finish(self) -> Vec<u8> {
        match self.0 {
            Inner::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            Inner::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            Inner::Crc64Nvme(h) => h.sum64().to_be_bytes().to_vec(),
            Inner::Sha1(h) => h.finalize().to_vec(),
            Inner::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// The object checksum of a completed multipart upload, from each part's raw digest and length
/// in part order. COMPOSITE hashes the concatenated part digests and appends `-N`; FULL_OBJECT
/// combines the part CRCs into the CRC of the whole object without rereading any data.
pub fn combine_parts(
    alg: ChecksumAlgorithm,
    ty: ChecksumType,
    parts: &[(Vec<u8>, u64)],
) -> S3Result<Checksum> {
    if !alg.supports(ty) {
        return Err(S3Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "The {} checksum type cannot be used with the {} checksum algorithm.",
                ty.as_str(),
                alg.as_str().to_ascii_lowercase()
            ),
        ));
    }
    if let Some((digest, _)) = parts.iter().find(|(d, _)| d.len() != alg.digest_len()) {
        // Part digests are ours (computed on upload), so a bad length is a bug, not bad input.
        return Err(S3Error::internal(format!(
            "{} part digest has {} bytes",
            alg.as_str(),
            digest.len()
        )));
    }
    match ty {
        ChecksumType::Composite => {
            let mut hasher = alg.hasher();
            for (digest, _) in parts {
                hasher.update(digest);
            }
            Ok(Checksum {
                algorithm: alg,
                value: format!("{}-{}", BASE64.encode(hasher.finish()), parts.len()),
            })
        }
        ChecksumType::FullObject => {
            let digest = full_object_crc(alg, parts)?;
            Ok(Checksum::from_digest(alg, &digest))
        }
    }
}

/// CRC of the concatenation of the parts, from their CRCs and lengths.
fn full_object_crc(alg: ChecksumAlgorithm, parts: &[(Vec<u8>, u64)]) -> S3Result<Vec<u8>> {
    match alg {
        ChecksumAlgorithm::Crc32 => {
            let mut whole = crc32fast::Hasher::new();
            for (digest, len) in parts {
                let part = crc32fast::Hasher::new_with_initial_len(be_u32(digest)?, *len);
                whole.combine(&part);
            }
            Ok(whole.finalize().to_be_bytes().to_vec())
        }
        ChecksumAlgorithm::Crc32c => {
            let mut whole = 0u32;
            for (digest, len) in parts {
                let len = usize::try_from(*len).map_err(S3Error::internal)?;
                whole = crc32c::crc32c_combine(whole, be_u32(digest)?, len);
            }
            Ok(whole.to_be_bytes().to_vec())
        }
        ChecksumAlgorithm::Crc64Nvme => {
            let mut whole = 0u64;
            for (digest, len) in parts {
                whole = crc64nvme_combine(whole, be_u64(digest)?, *len);
            }
            Ok(whole.to_be_bytes().to_vec())
        }
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => Err(S3Error::internal(
            "full-object checksum requested for a SHA algorithm",
        )),
    }
}

fn be_u32(digest: &[u8]) -> S3Result<u32> {
    <[u8; 4]>::try_from(digest)
        .map(u32::from_be_bytes)
        .map_err(S3Error::internal)
}

fn be_u64(digest: &[u8]) -> S3Result<u64> {
    <[u8; 8]>::try_from(digest)
        .map(u64::from_be_bytes)
        .map_err(S3Error::internal)
}

/// CRC-64/NVME polynomial, bit-reflected (the register shifts right).
const CRC64_NVME_POLY_REFLECTED: u64 = 0x9a6c_9329_ac4b_c9b5;

/// `crc(A ‖ B)` from `crc(A)`, `crc(B)` and `len(B)`, as zlib's `crc32_combine` does it:
/// advance `crc(A)` over `len(B)` zero bytes with GF(2) matrix squaring (O(log len)), then xor.
/// Valid because CRC-64/NVME's init and xorout are both all ones.
fn crc64nvme_combine(crc_a: u64, crc_b: u64, mut len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    // `odd` is the operator for one zero bit; squaring doubles the number of bits it applies.
    let mut odd = [0u64; 64];
    odd[0] = CRC64_NVME_POLY_REFLECTED;
    for (n, row) in odd.iter_mut().enumerate().skip(1) {
        *row = 1 << (n - 1);
    }
    let mut even = gf2_square(&odd); // 2 zero bits
    odd = gf2_square(&even); // 4 zero bits
    let mut crc = crc_a;
    loop {
        // Each round squares the operator (8, 16, … zero bits) and applies it per bit of len_b.
        even = gf2_square(&odd);
        if len_b & 1 != 0 {
            crc = gf2_times(&even, crc);
        }
        len_b >>= 1;
        if len_b == 0 {
            break;
        }
        odd = gf2_square(&even);
        if len_b & 1 != 0 {
            crc = gf2_times(&odd, crc);
        }
        len_b >>= 1;
        if len_b == 0 {
            break;
        }
    }
    crc ^ crc_b
}

fn gf2_times(matrix: &[u64; 64], mut vector: u64) -> u64 {
    let mut sum = 0;
    for row in matrix {
        if vector == 0 {
            break;
        }
        if vector & 1 != 0 {
            sum ^= row;
        }
        vector >>= 1;
    }
    sum
}

fn gf2_square(matrix: &[u64; 64]) -> [u64; 64] {
    let mut square = [0u64; 64];
    for (out, row) in square.iter_mut().zip(matrix) {
        *out = gf2_times(matrix, *row);
    }
    square
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(alg: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut h = alg.hasher();
        h.update(data);
        BASE64.encode(h.finish())
    }

    /// Deterministic pseudo-random bytes (xorshift), so tests need no RNG crate.
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    }

    #[test]
    fn known_values_of_123456789_match_s3() {
        // The values real S3 returns for the body "123456789" (and the CRC catalogue's check values).
        use ChecksumAlgorithm::*;
        assert_eq!(b64(Crc32, b"123456789"), "y/Q5Jg==");
        assert_eq!(b64(Crc32c, b"123456789"), "4waSgw==");
        assert_eq!(b64(Crc64Nvme, b"123456789"), "rosUhgp5mIg=");
        assert_eq!(b64(Sha1, b"123456789"), "98O8HYCOBHMq32eZZczDTKeuNEE=");
        assert_eq!(
            b64(Sha256, b"123456789"),
            "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU="
        );
    }

    #[test]
    fn known_values_of_hello_world() {
        use ChecksumAlgorithm::*;
        assert_eq!(b64(Crc32, b"hello world"), "DUoRhQ==");
        assert_eq!(b64(Crc32c, b"hello world"), "yZRlqg==");
        let mut h = Crc64Nvme.hasher();
        h.update(b"hello ");
        h.update(b"world!");
        assert_eq!(h.finish(), 0xd9160d1fa8e418e3u64.to_be_bytes());
        assert_eq!(b64(Sha1, b"hello world"), "Kq5sNclPz7QV2+lfQIuc6R7oRu0=");
        assert_eq!(
            hex::encode(Sha256.hasher().finish()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn incremental_updates_equal_one_shot() {
        let data = noise(10_000, 7);
        for alg in ChecksumAlgorithm::all() {
            let mut h = alg.hasher();
            for piece in data.chunks(333) {
                h.update(piece);
            }
            assert_eq!(h.algorithm(), alg);
            assert_eq!(BASE64.encode(h.finish()), b64(alg, &data), "{alg:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for alg in ChecksumAlgorithm::all() {
            assert_eq!(ChecksumAlgorithm::parse(alg.as_str()), Some(alg));
            assert_eq!(
                ChecksumAlgorithm::parse(&alg.as_str().to_ascii_lowercase()),
                Some(alg)
            );
            assert_eq!(
                ChecksumAlgorithm::from_header_name(alg.header_name()),
                Some(alg)
            );
            assert_eq!(alg.hasher().finish().len(), alg.digest_len());
        }
        assert_eq!(ChecksumAlgorithm::parse("MD5"), None);
        assert_eq!(ChecksumAlgorithm::parse(""), None);
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-type"),
            None
        );
        assert_eq!(
            ChecksumType::parse("full_object"),
            Some(ChecksumType::FullObject)
        );
        assert_eq!(
            ChecksumType::parse("COMPOSITE"),
            Some(ChecksumType::Composite)
        );
        assert_eq!(ChecksumType::parse("both"), None);
    }

    #[test]
    fn serde_uses_aws_spelling() {
        let json = serde_json::to_string(&ChecksumAlgorithm::Crc64Nvme).unwrap();
        assert_eq!(json, "\"CRC64NVME\"");
        let json = serde_json::to_string(&ChecksumType::FullObject).unwrap();
        assert_eq!(json, "\"FULL_OBJECT\"");
        let back: ChecksumAlgorithm = serde_json::from_str("\"CRC32C\"").unwrap();
        assert_eq!(back, ChecksumAlgorithm::Crc32c);
    }

    #[test]
    fn decode_value_is_strict() {
        use ChecksumAlgorithm::*;
        assert_eq!(
            Crc32.decode_value("y/Q5Jg=="),
            Some(vec![0xcb, 0xf4, 0x39, 0x26])
        );
        // Cases real S3 answers with "Value for x-amz-checksum-crc32 header is invalid.".
        for bad in [
            "y/Q5Jh==",
            "short===",
            "shrt",
            "toolong=",
            "^^^^^^==",
            "y^/^Q5^J^g==",
            "",
        ] {
            assert_eq!(Crc32.decode_value(bad), None, "{bad}");
        }
        // Right base64, wrong algorithm length.
        assert_eq!(Sha256.decode_value("y/Q5Jg=="), None);
        assert!(Crc64Nvme.decode_value("rosUhgp5mIg=").is_some());
    }

    #[test]
    fn supported_types_follow_aws() {
        use ChecksumAlgorithm::*;
        use ChecksumType::*;
        for alg in [Crc32, Crc32c] {
            assert!(alg.supports(FullObject) && alg.supports(Composite));
            assert_eq!(alg.default_type(), Composite);
        }
        assert!(Crc64Nvme.supports(FullObject) && !Crc64Nvme.supports(Composite));
        assert_eq!(Crc64Nvme.default_type(), FullObject);
        for alg in [Sha1, Sha256] {
            assert!(!alg.supports(FullObject) && alg.supports(Composite));
            assert_eq!(alg.default_type(), Composite);
        }
    }

    fn digest(alg: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut h = alg.hasher();
        h.update(data);
        h.finish()
    }

    fn split_parts(alg: ChecksumAlgorithm, data: &[u8], cuts: &[usize]) -> Vec<(Vec<u8>, u64)> {
        let mut parts = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&data.len())) {
            let part = &data[start..end];
            parts.push((digest(alg, part), part.len() as u64));
            start = end;
        }
        parts
    }

    #[test]
    fn full_object_combination_equals_direct_crc() {
        let data = noise(300_000, 42);
        let cuts_list: [&[usize]; 5] = [
            &[],
            &[1],
            &[100_000, 200_000],
            &[5, 5, 77_777, 299_999],
            &[0, 150_000, 300_000],
        ];
        for alg in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let direct = Checksum::from_digest(alg, &digest(alg, &data));
            for cuts in cuts_list {
                let parts = split_parts(alg, &data, cuts);
                let combined = combine_parts(alg, ChecksumType::FullObject, &parts).unwrap();
                assert_eq!(combined, direct, "{alg:?} cuts {cuts:?}");
            }
        }
    }

    #[test]
    fn crc64_combine_matches_direct_crc_for_multi_megabyte_parts() {
        // Lengths with many bits set exercise every squaring round of the combine.
        let crc = |data: &[u8]| {
            let mut digest = crc64fast_nvme::Digest::new();
            digest.write(data);
            digest.sum64()
        };
        let data = noise(5 * 1024 * 1024 + 4093, 11);
        let (a, b) = data.split_at(1_234_567);
        let combined = crc64nvme_combine(crc(a), crc(b), b.len() as u64);
        assert_eq!(combined, crc(&data));
        assert_eq!(crc64nvme_combine(crc(a), crc(b""), 0), crc(a));
        // Part lengths far beyond memory still finish (the work is logarithmic).
        let huge = crc64nvme_combine(crc(a), crc(b), u64::MAX);
        assert_eq!(huge, crc64nvme_combine(crc(a), crc(b), u64::MAX));
    }

    #[test]
    fn composite_is_hash_of_part_digests_with_count() {
        let data = noise(50_000, 3);
        for alg in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Sha1,
            ChecksumAlgorithm::Sha256,
        ] {
            let parts = split_parts(alg, &data, &[10_000, 30_000]);
            let concatenated: Vec<u8> = parts.iter().flat_map(|(d, _)| d.clone()).collect();
            let expected = format!("{}-3", BASE64.encode(digest(alg, &concatenated)));
            let got = combine_parts(alg, ChecksumType::Composite, &parts).unwrap();
            assert_eq!(got.algorithm, alg);
            assert_eq!(got.value, expected);
        }
    }

    #[test]
    fn composite_of_single_known_part() {
        // One part "123456789": CRC32 digest cbf43926; composite = crc32(those 4 bytes) + "-1".
        let parts = vec![(vec![0xcb, 0xf4, 0x39, 0x26], 9)];
        let got = combine_parts(ChecksumAlgorithm::Crc32, ChecksumType::Composite, &parts).unwrap();
        let expected = b64(ChecksumAlgorithm::Crc32, &[0xcb, 0xf4, 0x39, 0x26]);
        assert_eq!(got.value, format!("{expected}-1"));
    }

    #[test]
    fn unsupported_combinations_are_rejected() {
        let parts = vec![(vec![0; 32], 1)];
        for (alg, ty) in [
            (ChecksumAlgorithm::Sha256, ChecksumType::FullObject),
            (ChecksumAlgorithm::Sha1, ChecksumType::FullObject),
            (ChecksumAlgorithm::Crc64Nvme, ChecksumType::Composite),
        ] {
            let err = combine_parts(alg, ty, &parts).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest, "{alg:?} {ty:?}");
        }
        let wrong_len = vec![(vec![0; 3], 1)];
        let err = combine_parts(
            ChecksumAlgorithm::Crc32,
            ChecksumType::FullObject,
            &wrong_len,
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::InternalError);
    }

    #[test]
    fn empty_object_full_object_crc_is_zero() {
        let got = combine_parts(ChecksumAlgorithm::Crc32, ChecksumType::FullObject, &[]).unwrap();
        assert_eq!(got.value, b64(ChecksumAlgorithm::Crc32, b""));
    }
}
