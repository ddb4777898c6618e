//! Server-side encryption: with customer-provided keys (SSE-C), with the server's master
//! key (SSE-S3) and with KMS keys (SSE-KMS), with RustCrypto's AES-256-GCM and HKDF: no
//! hand-written cryptography.
//!
//! Each object gets a random data key, stored only wrapped (AES-256-GCM) by the customer's
//! key, the master key or a KMS key. Its data is encrypted in blocks of [`PLAIN_BLOCK`] bytes, each sealed with its own
//! tag, so a range read decrypts only the blocks it touches and any tampering is an error,
//! never wrong bytes. A block's nonce is 8 bytes derived from its blob's id (unique per
//! blob) and the block's index, so no nonce repeats under a data key.

use crate::error::{ErrorCode, S3Error, S3Result};
use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use hkdf::Hkdf;
use http::HeaderMap;
use kura_index::Encryption;
use md5::Digest;
use rand::RngCore;
use sha2::Sha256;

/// Plaintext bytes per sealed block, and what a sealed block adds (the tag).
pub const PLAIN_BLOCK: usize = 64 * 1024;
const TAG: usize = 16;
const SEALED_BLOCK: usize = PLAIN_BLOCK + TAG;
/// The algorithm SSE-S3 and SSE-C name.
pub const ALGORITHM: &str = "AES256";
/// Bound into the wrapped key, so it cannot be taken for anything else.
const WRAP_CONTEXT: &[u8] = b"kura sse-c data key";

const ALGORITHM_HEADER: &str = "x-amz-server-side-encryption-customer-algorithm";
const KEY_HEADER: &str = "x-amz-server-side-encryption-customer-key";
const KEY_MD5_HEADER: &str = "x-amz-server-side-encryption-customer-key-md5";

/// A customer's key, checked against its stated MD5.
pub struct CustomerKey {
    key: [u8; 32],
    md5: String,
}

/// An object's data key.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl CustomerKey {
    /// The SSE-C headers of a request, if it has any.
    pub fn from_headers(headers: &HeaderMap) -> S3Result<Option<Self>> {
        Self::parse(headers, [ALGORITHM_HEADER, KEY_HEADER, KEY_MD5_HEADER])
    }

    /// The key of a copy's source (`x-amz-copy-source-server-side-encryption-customer-*`).
    pub fn copy_source(headers: &HeaderMap) -> S3Result<Option<Self>> {
        Self::parse(
            headers,
            [
                "x-amz-copy-source-server-side-encryption-customer-algorithm",
                "x-amz-copy-source-server-side-encryption-customer-key",
                "x-amz-copy-source-server-side-encryption-customer-key-md5",
            ],
        )
    }

    fn parse(
        headers: &HeaderMap,
        [algorithm_header, key_header, md5_header]: [&str; 3],
    ) -> S3Result<Option<Self>> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let (algorithm, key, md5) = (get(algorithm_header), get(key_header), get(md5_header));
        if algorithm.is_none() && key.is_none() && md5.is_none() {
            return Ok(None);
        }
        let invalid = |message: &str| S3Error::new(ErrorCode::InvalidArgument, message);
        if algorithm != Some(ALGORITHM) {
            return Err(S3Error::new(
                ErrorCode::InvalidEncryptionAlgorithmError,
                "The encryption request you specified is not valid. The valid value is AES256.",
            )
            .with("ArgumentName", algorithm_header));
        }
        let key = key
            .and_then(|k| STANDARD.decode(k).ok())
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| invalid("The secret key was invalid for the specified algorithm."))?;
        let computed = STANDARD.encode(md5::Md5::digest(key));
        if md5 != Some(computed.as_str()) {
            return Err(invalid(
                "The calculated MD5 hash of the key did not match the hash that was provided.",
            ));
        }
        Ok(Some(CustomerKey { key, md5: computed }))
    }
}

/// The server's master key. It wraps the data keys of SSE-S3 objects, and Kura's KMS keys
/// are derived from it (HKDF-SHA256 over the key's id), so every gateway that holds it
/// holds the same KMS keys and nothing more needs keeping.
pub struct MasterKey {
    key: [u8; 32],
    /// The KMS key ids writes may name (the default key besides); empty: any id.
    kms_key_ids: Vec<String>,
}

/// The KMS key of SSE-KMS writes that name none, as S3 uses the account's `aws/s3` key.
pub const DEFAULT_KMS_KEY: &str = "aws/s3";
/// Bound into every KMS key's derivation, so it yields nothing else.
const KMS_SALT: &[u8] = b"kura sse-kms key";
const KMS: &str = "aws:kms";
/// The longest KMS key id (AWS's KeyId limit).
const MAX_KMS_KEY_ID: usize = 2048;

impl MasterKey {
    pub fn new(key: [u8; 32], kms_key_ids: Vec<String>) -> Self {
        MasterKey { key, kms_key_ids }
    }

    /// Refuses a KMS key id that writes may not name.
    pub fn check_kms_key_id(&self, id: &str) -> S3Result<()> {
        let well_formed = !id.is_empty()
            && id.len() <= MAX_KMS_KEY_ID
            && id.bytes().all(|b| b.is_ascii_graphic());
        let known = self.kms_key_ids.is_empty()
            || id == DEFAULT_KMS_KEY
            || self.kms_key_ids.iter().any(|k| k == id);
        if well_formed && known {
            return Ok(());
        }
        Err(
            S3Error::new(ErrorCode::InvalidArgument, format!("Invalid keyId {id}"))
                .with("ArgumentName", KMS_KEY_HEADER)
                .with("ArgumentValue", id),
        )
    }

    /// The KMS key `id`. Reads derive it whatever the allowed ids: an id taken off the
    /// list stops new writes, not reads of what it encrypted.
    fn kms_key(&self, id: &str) -> S3Result<[u8; 32]> {
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(KMS_SALT), &self.key)
            .expand(id.as_bytes(), &mut key)
            .map_err(|_| S3Error::internal("deriving a KMS key failed"))?;
        Ok(key)
    }
}

/// The encryption a write asks for.
pub enum Protection {
    /// SSE-C: the customer's key.
    Customer(CustomerKey),
    /// SSE-S3: Kura's master key.
    Managed,
    /// SSE-KMS: the KMS key of this id, and whether the write asked for an S3 Bucket Key.
    Kms { id: String, bucket_key: bool },
}

const SSE_HEADER: &str = "x-amz-server-side-encryption";
const KMS_KEY_HEADER: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const BUCKET_KEY_HEADER: &str = "x-amz-server-side-encryption-bucket-key-enabled";

/// Refuses the headers that choose an encryption on a read, as S3 does (a read's
/// encryption is the object's; only SSE-C's key is sent to read).
pub fn refuse_on_read(headers: &HeaderMap) -> S3Result<()> {
    match [SSE_HEADER, KMS_KEY_HEADER]
        .into_iter()
        .find(|name| headers.contains_key(*name))
    {
        Some(name) => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            format!("The {name} header is not supported for this operation."),
        )
        .with("ArgumentName", name)),
        None => Ok(()),
    }
}

/// `x-amz-server-side-encryption-bucket-key-enabled`, if the request has it.
fn bucket_key_header(headers: &HeaderMap) -> S3Result<Option<bool>> {
    let Some(value) = headers.get(BUCKET_KEY_HEADER) else {
        return Ok(None);
    };
    match value.to_str().map(str::to_ascii_lowercase).as_deref() {
        Ok("true") => Ok(Some(true)),
        Ok("false") => Ok(Some(false)),
        _ => Err(S3Error::new(
            ErrorCode::InvalidArgument,
            "The header 'x-amz-server-side-encryption-bucket-key-enabled' shall be Boolean.",
        )
        .with("ArgumentName", BUCKET_KEY_HEADER)),
    }
}

impl Protection {
    /// What a write's headers ask for (SSE-C or `x-amz-server-side-encryption: AES256`),
    /// else what the bucket's default encryption says.
    pub fn for_write(
        headers: &HeaderMap,
        bucket_default: Option<&kura_index::DefaultEncryption>,
    ) -> S3Result<Option<Protection>> {
        let customer = CustomerKey::from_headers(headers)?;
        let managed = headers.get(SSE_HEADER).map(|v| v.to_str().unwrap_or(""));
        let kms_key = headers
            .get(KMS_KEY_HEADER)
            .map(|v| v.to_str().unwrap_or(""));
        if kms_key.is_some() && !managed.is_some_and(|m| m.starts_with(KMS)) {
            return Err(S3Error::new(
                ErrorCode::InvalidArgument,
                "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms",
            )
            .with("ArgumentName", KMS_KEY_HEADER));
        }
        match (customer, managed) {
            (Some(_), Some(_)) => Err(S3Error::new(
                ErrorCode::InvalidArgument,
                "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
            )
            .with("ArgumentName", SSE_HEADER)),
            (Some(customer), None) => Ok(Some(Protection::Customer(customer))),
            (None, Some(ALGORITHM)) => Ok(Some(Protection::Managed)),
            (None, Some(KMS)) => Ok(Some(Protection::Kms {
                id: kms_key.unwrap_or(DEFAULT_KMS_KEY).to_owned(),
                // The bucket's setting holds unless the write says otherwise.
                bucket_key: bucket_key_header(headers)?.unwrap_or_else(|| {
                    bucket_default.is_some_and(|d| d.algorithm == KMS && d.bucket_key_enabled)
                }),
            })),
            (None, Some(other)) if other.starts_with(KMS) => Err(S3Error::new(
                ErrorCode::NotImplemented,
                "Dual-layer server-side encryption (aws:kms:dsse) is not implemented by Kura; use aws:kms or AES256.",
            )),
            (None, Some(other)) => Err(S3Error::new(
                ErrorCode::InvalidArgument,
                "The encryption method specified is not supported",
            )
            .with("ArgumentName", SSE_HEADER)
            .with("ArgumentValue", other)),
            (None, None) => {
                let bucket_key = bucket_key_header(headers)?;
                Ok(bucket_default.map(|default| match default.algorithm.as_str() {
                    KMS => Protection::Kms {
                        id: (default.kms_master_key_id.as_deref())
                            .unwrap_or(DEFAULT_KMS_KEY)
                            .to_owned(),
                        bucket_key: bucket_key.unwrap_or(default.bucket_key_enabled),
                    },
                    _ => Protection::Managed,
                }))
            }
        }
    }
}

fn wrap(wrapping: &[u8; 32], key: &[u8; 32]) -> S3Result<String> {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = Aes256Gcm::new(wrapping.into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: key,
                aad: WRAP_CONTEXT,
            },
        )
        .map_err(|_| S3Error::internal("wrapping a data key failed"))?;
    Ok(STANDARD.encode([&nonce[..], &sealed].concat()))
}

fn unwrap(wrapping: &[u8; 32], wrapped: &str) -> Option<DataKey> {
    let wrapped = STANDARD.decode(wrapped).ok()?;
    let (nonce, sealed) = wrapped.split_at_checked(12)?;
    let key = Aes256Gcm::new(wrapping.into())
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: WRAP_CONTEXT,
            },
        )
        .ok()?;
    Some(DataKey(key.try_into().ok()?))
}

/// A new data key for an object, and how it is recorded (wrapped by the customer's key,
/// the master key or a KMS key).
pub fn new_data_key(
    protection: &Protection,
    master: &MasterKey,
) -> S3Result<(DataKey, Encryption)> {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let mut encryption = Encryption {
        algorithm: ALGORITHM.into(),
        customer_key_md5: None,
        kms_key_id: None,
        bucket_key: false,
        wrapped_key: String::new(),
    };
    encryption.wrapped_key = match protection {
        Protection::Customer(customer) => {
            encryption.customer_key_md5 = Some(customer.md5.clone());
            wrap(&customer.key, &key)?
        }
        Protection::Managed => wrap(&master.key, &key)?,
        Protection::Kms { id, bucket_key } => {
            master.check_kms_key_id(id)?;
            encryption.algorithm = KMS.into();
            encryption.kms_key_id = Some(id.clone());
            encryption.bucket_key = *bucket_key;
            wrap(&master.kms_key(id)?, &key)?
        }
    };
    Ok((DataKey(key), encryption))
}

/// The data key of an object stored with `encryption`. An SSE-C object needs the
/// request's key (refused without one, and with another one); an SSE-S3 or SSE-KMS object
/// is opened with the master key or the KMS key derived from it, and takes no customer key.
pub fn data_key(
    encryption: &Encryption,
    customer: Option<&CustomerKey>,
    master: &MasterKey,
) -> S3Result<DataKey> {
    let Some(stored_md5) = &encryption.customer_key_md5 else {
        if customer.is_some() {
            return Err(not_applicable());
        }
        let wrapping = match &encryption.kms_key_id {
            Some(id) => master.kms_key(id)?,
            None => master.key,
        };
        return unwrap(&wrapping, &encryption.wrapped_key).ok_or_else(|| {
            S3Error::internal("a data key does not open with the master key: was it changed?")
        });
    };
    let customer = customer.ok_or_else(|| {
        S3Error::new(
            ErrorCode::InvalidRequest,
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        )
    })?;
    if customer.md5 != *stored_md5 {
        return Err(ErrorCode::AccessDenied.into());
    }
    unwrap(&customer.key, &encryption.wrapped_key).ok_or_else(|| ErrorCode::AccessDenied.into())
}

/// The data key of stored data (an object or an upload's parts) encrypted as `encryption`
/// says, given the key its reader offers (SSE-C); None for unencrypted data, which takes no
/// key.
pub fn key_for(
    encryption: Option<&Encryption>,
    customer: Option<CustomerKey>,
    master: &MasterKey,
) -> S3Result<Option<DataKey>> {
    match (encryption, customer) {
        (Some(encryption), customer) => data_key(encryption, customer.as_ref(), master).map(Some),
        (None, Some(_)) => Err(not_applicable()),
        (None, None) => Ok(None),
    }
}

/// A new data key if a write asks for encryption (or its bucket does by default).
pub fn for_write(
    headers: &HeaderMap,
    bucket: &kura_index::BucketRecord,
    master: &MasterKey,
) -> S3Result<Option<(DataKey, Encryption)>> {
    Protection::for_write(headers, bucket.default_encryption.as_ref())?
        .map(|protection| new_data_key(&protection, master))
        .transpose()
}

/// The headers that tell a client how an object is encrypted.
pub fn answer_headers(headers: &mut HeaderMap, encryption: Option<&Encryption>) {
    let value = http::HeaderValue::from_static;
    match encryption {
        None => {}
        Some(Encryption {
            customer_key_md5: Some(md5),
            ..
        }) => {
            headers.insert(ALGORITHM_HEADER, value(ALGORITHM));
            if let Ok(md5) = http::HeaderValue::from_str(md5) {
                headers.insert(KEY_MD5_HEADER, md5);
            }
        }
        Some(Encryption {
            kms_key_id: Some(id),
            bucket_key,
            ..
        }) => {
            headers.insert(SSE_HEADER, value(KMS));
            if let Ok(id) = http::HeaderValue::from_str(id) {
                headers.insert(KMS_KEY_HEADER, id);
            }
            if *bucket_key {
                headers.insert(BUCKET_KEY_HEADER, value("true"));
            }
        }
        Some(_) => {
            headers.insert(SSE_HEADER, value(ALGORITHM));
        }
    }
}

/// A request naming SSE-C parameters for an object that is not encrypted with them.
pub fn not_applicable() -> S3Error {
    S3Error::new(
        ErrorCode::InvalidRequest,
        "The encryption parameters are not applicable to this object.",
    )
}

fn nonce(blob: &str, block: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&sha2::Sha256::digest(blob.as_bytes())[..8]);
    out[8..].copy_from_slice(&u32::try_from(block).unwrap_or(u32::MAX).to_be_bytes());
    out
}

impl DataKey {
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

/// Seals plaintext into blocks as it streams into one blob.
pub struct Sealer {
    cipher: Aes256Gcm,
    blob: String,
    block: u64,
    pending: BytesMut,
}

impl Sealer {
    pub fn new(key: &DataKey, blob: &str) -> Self {
        Sealer {
            cipher: key.cipher(),
            blob: blob.to_owned(),
            block: 0,
            pending: BytesMut::new(),
        }
    }

    /// The sealed blocks that `data` completes.
    pub fn push(&mut self, data: &[u8]) -> S3Result<Vec<Bytes>> {
        self.pending.extend_from_slice(data);
        let mut out = Vec::new();
        while self.pending.len() >= PLAIN_BLOCK {
            let block = self.pending.split_to(PLAIN_BLOCK);
            out.push(self.seal(block)?);
        }
        Ok(out)
    }

    /// The last, short block, if any.
    pub fn finish(mut self) -> S3Result<Option<Bytes>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let block = std::mem::take(&mut self.pending);
        self.seal(block).map(Some)
    }

    fn seal(&mut self, mut block: BytesMut) -> S3Result<Bytes> {
        let nonce = nonce(&self.blob, self.block);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), b"", &mut block)
            .map_err(|_| S3Error::internal("sealing a block failed"))?;
        block.extend_from_slice(&tag);
        self.block += 1;
        Ok(block.freeze())
    }
}

/// Where the sealed blocks holding plaintext `range` of a blob are, and what of them to keep.
pub struct SealedRange {
    /// The stored bytes to read.
    pub stored: std::ops::Range<u64>,
    first_block: u64,
    /// Plaintext bytes to drop from the first block, and to hand out in all.
    skip: usize,
    take: u64,
}

pub fn sealed_range(range: std::ops::Range<u64>) -> SealedRange {
    let first = range.start / PLAIN_BLOCK as u64;
    let last = range.end.div_ceil(PLAIN_BLOCK as u64);
    SealedRange {
        stored: first * SEALED_BLOCK as u64..last * SEALED_BLOCK as u64,
        first_block: first,
        skip: (range.start - first * PLAIN_BLOCK as u64) as usize,
        take: range.end - range.start,
    }
}

/// Opens the sealed blocks `stored` streams (read from `range.stored` of `blob`) and hands
/// out the plaintext of the range; a block that fails its tag ends the stream with an error.
pub fn open_stream<S, E>(
    stored: S,
    key: DataKey,
    blob: String,
    range: SealedRange,
) -> impl Stream<Item = Result<Bytes, S3Error>> + Send + Unpin + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Into<S3Error>,
{
    struct State<S> {
        stored: S,
        cipher: Aes256Gcm,
        blob: String,
        block: u64,
        buf: BytesMut,
        skip: usize,
        left: u64,
        ended: bool,
    }
    let state = State {
        stored,
        cipher: key.cipher(),
        blob,
        block: range.first_block,
        buf: BytesMut::new(),
        skip: range.skip,
        left: range.take,
        ended: false,
    };
    Box::pin(futures::stream::unfold(state, |mut s| async move {
        while s.left > 0 && !s.ended {
            if s.buf.len() < SEALED_BLOCK {
                match s.stored.next().await {
                    Some(Ok(chunk)) => {
                        s.buf.extend_from_slice(&chunk);
                        continue;
                    }
                    Some(Err(err)) => {
                        s.ended = true;
                        return Some((Err(err.into()), s));
                    }
                    None if s.buf.len() <= TAG => {
                        s.ended = true;
                        let err = S3Error::internal("an encrypted blob ended early");
                        return Some((Err(err), s));
                    }
                    None => {}
                }
            }
            let mut block = s.buf.split_to(s.buf.len().min(SEALED_BLOCK));
            let tag = block.split_off(block.len() - TAG);
            let nonce = nonce(&s.blob, s.block);
            s.block += 1;
            if s.cipher
                .decrypt_in_place_detached(
                    Nonce::from_slice(&nonce),
                    b"",
                    &mut block,
                    tag[..].into(),
                )
                .is_err()
            {
                s.ended = true;
                tracing::error!(
                    blob = s.blob,
                    "an encrypted block failed its tag; not served"
                );
                let err = S3Error::new(
                    ErrorCode::InternalError,
                    "The stored data failed its integrity check and was not served.",
                );
                return Some((Err(err), s));
            }
            let start = std::mem::take(&mut s.skip).min(block.len());
            let end = (start as u64 + s.left).min(block.len() as u64) as usize;
            s.left -= (end - start) as u64;
            return Some((Ok(block.freeze().slice(start..end)), s));
        }
        None
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        (pairs.iter())
            .map(|(n, v)| (http::HeaderName::from_static(n), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn a_kms_key_without_kms_and_encryption_headers_on_reads_are_refused() {
        let refused = |h: &HeaderMap| Protection::for_write(h, None).err().map(|e| e.code);
        let key_only = headers(&[(KMS_KEY_HEADER, "k")]);
        assert_eq!(refused(&key_only), Some(ErrorCode::InvalidArgument));
        let aes_and_key = headers(&[(SSE_HEADER, "AES256"), (KMS_KEY_HEADER, "k")]);
        assert_eq!(refused(&aes_and_key), Some(ErrorCode::InvalidArgument));
        let aes = headers(&[(SSE_HEADER, "AES256")]);
        assert!(matches!(
            Protection::for_write(&aes, None),
            Ok(Some(Protection::Managed))
        ));
        assert_eq!(
            refuse_on_read(&aes).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        assert!(refuse_on_read(&headers(&[])).is_ok());
    }

    fn customer(byte: u8) -> CustomerKey {
        let key = [byte; 32];
        CustomerKey {
            key,
            md5: STANDARD.encode(md5::Md5::digest(key)),
        }
    }

    async fn open_range(
        sealed: &[Bytes],
        key: &DataKey,
        range: std::ops::Range<u64>,
    ) -> S3Result<Vec<u8>> {
        let all: Vec<u8> = sealed.iter().flat_map(|b| b.to_vec()).collect();
        let r = sealed_range(range);
        let end = (r.stored.end as usize).min(all.len());
        let stored = Bytes::copy_from_slice(&all[r.stored.start as usize..end]);
        // Hand the stored bytes over in odd-sized pieces, as a blob read might.
        let pieces: Vec<Result<Bytes, S3Error>> = stored
            .chunks(7_777)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut stream = open_stream(
            futures::stream::iter(pieces),
            key.clone(),
            "blob-1".into(),
            r,
        );
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn sealed_blocks_open_by_range_and_detect_tampering() {
        let master = MasterKey::new([9; 32], Vec::new());
        let (key, encryption) = new_data_key(&Protection::Customer(customer(1)), &master).unwrap();
        let data: Vec<u8> = (0..3 * PLAIN_BLOCK + 123)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut sealer = Sealer::new(&key, "blob-1");
        let mut sealed = Vec::new();
        for piece in data.chunks(10_000) {
            sealed.extend(sealer.push(piece).unwrap());
        }
        sealed.extend(sealer.finish().unwrap());
        assert_eq!(sealed.len(), 4);
        let len = data.len() as u64;
        for (a, b) in [
            (0, len),
            (5, 6),
            (PLAIN_BLOCK as u64 - 1, PLAIN_BLOCK as u64 + 1),
            (len - 3, len),
        ] {
            assert_eq!(
                open_range(&sealed, &key, a..b).await.unwrap(),
                &data[a as usize..b as usize]
            );
        }
        let mut tampered = sealed.clone();
        let mut block = tampered[1].to_vec();
        block[100] ^= 1;
        tampered[1] = block.into();
        assert!(open_range(&tampered, &key, 0..len).await.is_err());
        assert!(open_range(&tampered, &key, 0..10).await.is_ok());
        // The data key opens only with the customer's key...
        let code = |e: S3Result<DataKey>| e.err().map(|e| e.code);
        assert!(data_key(&encryption, Some(&customer(1)), &master).is_ok());
        let other = data_key(&encryption, Some(&customer(2)), &master);
        assert_eq!(code(other), Some(ErrorCode::AccessDenied));
        let without = data_key(&encryption, None, &master);
        assert_eq!(code(without), Some(ErrorCode::InvalidRequest));
        // ...and an SSE-S3 one only with the master key, without a customer key.
        let (_, managed) = new_data_key(&Protection::Managed, &master).unwrap();
        assert!(data_key(&managed, None, &master).is_ok());
        let with_customer = data_key(&managed, Some(&customer(1)), &master);
        assert_eq!(code(with_customer), Some(ErrorCode::InvalidRequest));
        let other_master = data_key(&managed, None, &MasterKey::new([8; 32], Vec::new()));
        assert_eq!(code(other_master), Some(ErrorCode::InternalError));
    }

    #[test]
    fn kms_keys_are_derived_per_id_and_listed_ids_bound_writes_not_reads() {
        let kms = |id: &str| Protection::Kms {
            id: id.into(),
            bucket_key: false,
        };
        let any = MasterKey::new([9; 32], Vec::new());
        let (key, stored) = new_data_key(&kms("testkey-1"), &any).unwrap();
        assert_eq!(stored.algorithm, KMS);
        assert_eq!(stored.kms_key_id.as_deref(), Some("testkey-1"));
        assert_eq!(data_key(&stored, None, &any).unwrap().0, key.0);
        // Another id is another key: a record naming it does not open.
        let mut renamed = stored.clone();
        renamed.kms_key_id = Some("testkey-2".into());
        assert!(data_key(&renamed, None, &any).is_err());
        assert!(data_key(&stored, Some(&customer(1)), &any).is_err());
        let mut answer = HeaderMap::new();
        answer_headers(&mut answer, Some(&stored));
        assert_eq!(answer[SSE_HEADER], KMS);
        assert_eq!(answer[KMS_KEY_HEADER], "testkey-1");
        // With a list, writes may name only its ids and the default key; reads of what an
        // id off the list encrypted still open.
        let listed = MasterKey::new([9; 32], vec!["testkey-2".into()]);
        assert!(new_data_key(&kms("testkey-1"), &listed).is_err());
        assert!(new_data_key(&kms("testkey-2"), &listed).is_ok());
        assert!(new_data_key(&kms(DEFAULT_KMS_KEY), &listed).is_ok());
        assert_eq!(data_key(&stored, None, &listed).unwrap().0, key.0);
        assert!(any.check_kms_key_id("").is_err());
        assert!(any.check_kms_key_id("a key").is_err());
    }

    #[test]
    fn a_bucket_key_is_asked_for_by_header_or_bucket_default_and_echoed() {
        let default = |bucket_key_enabled| kura_index::DefaultEncryption {
            algorithm: KMS.into(),
            kms_master_key_id: None,
            bucket_key_enabled,
        };
        let bucket_key =
            |pairs: &[(&'static str, &str)], default: Option<&_>| match Protection::for_write(
                &headers(pairs),
                default,
            ) {
                Ok(Some(Protection::Kms { bucket_key, .. })) => Ok(bucket_key),
                Ok(_) => Ok(false),
                Err(e) => Err(e.code),
            };
        let kms = (SSE_HEADER, KMS);
        assert_eq!(bucket_key(&[kms], None), Ok(false));
        assert_eq!(
            bucket_key(&[kms, (BUCKET_KEY_HEADER, "true")], None),
            Ok(true)
        );
        assert_eq!(bucket_key(&[], Some(&default(true))), Ok(true));
        assert_eq!(bucket_key(&[kms], Some(&default(true))), Ok(true));
        let off = (BUCKET_KEY_HEADER, "FALSE");
        assert_eq!(bucket_key(&[off], Some(&default(true))), Ok(false));
        let bad = (BUCKET_KEY_HEADER, "yes");
        assert_eq!(
            bucket_key(&[kms, bad], None),
            Err(ErrorCode::InvalidArgument)
        );
        let master = MasterKey::new([9; 32], Vec::new());
        let asked = Protection::Kms {
            id: DEFAULT_KMS_KEY.into(),
            bucket_key: true,
        };
        let (_, stored) = new_data_key(&asked, &master).unwrap();
        let mut answer = HeaderMap::new();
        answer_headers(&mut answer, Some(&stored));
        assert_eq!(answer[BUCKET_KEY_HEADER], "true");
    }

    #[test]
    fn kms_is_chosen_by_header_or_by_the_bucket_default() {
        let chosen = |pairs: &[(&'static str, &str)], default: Option<(&str, Option<&str>)>| {
            let default = default.map(|(algorithm, id)| kura_index::DefaultEncryption {
                algorithm: algorithm.into(),
                kms_master_key_id: id.map(str::to_owned),
                bucket_key_enabled: false,
            });
            match Protection::for_write(&headers(pairs), default.as_ref()) {
                Ok(Some(Protection::Kms { id, .. })) => Ok(Some(id)),
                Ok(_) => Ok(None),
                Err(e) => Err(e.code),
            }
        };
        let named = [(SSE_HEADER, KMS), (KMS_KEY_HEADER, "k1")];
        assert_eq!(chosen(&named, None), Ok(Some("k1".into())));
        assert_eq!(
            chosen(&[(SSE_HEADER, KMS)], None),
            Ok(Some(DEFAULT_KMS_KEY.into()))
        );
        let by_bucket = Some((KMS, Some("k2")));
        assert_eq!(chosen(&[], by_bucket), Ok(Some("k2".into())));
        let unnamed = Some((KMS, None));
        assert_eq!(chosen(&[], unnamed), Ok(Some(DEFAULT_KMS_KEY.into())));
        assert_eq!(
            chosen(&named, Some(("AES256", None))),
            Ok(Some("k1".into()))
        );
        let dsse = [(SSE_HEADER, "aws:kms:dsse")];
        assert_eq!(chosen(&dsse, None), Err(ErrorCode::NotImplemented));
        let key_alone = [(KMS_KEY_HEADER, "k1")];
        assert_eq!(chosen(&key_alone, None), Err(ErrorCode::InvalidArgument));
    }
}
