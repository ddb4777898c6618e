//! The embedded single-node backend: blobs as files, maps as redb tables.

mod maps;
mod sled_import;
mod store;
mod writer;

use crate::blob::{BlockSums, MAGIC, TRAILER_LEN, block_count, blocking, blocking_stream};
use crate::{
    BLOCK_SIZE, BackendError, BlobInfo, BlobStore, BlobStream, BlobWriter, KvStore, Outcome, Page,
    Result, Scan,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Data written by a blob writer before it is handed to the disk in one go.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Blocks read and verified per step of a blob read.
const READ_BLOCKS: u64 = 16;

/// Threads index calls run on. Each call holds a thread while redb works, and requests
/// can ask for far more calls at once than the machine's cores serve: on tokio's shared
/// blocking pool, a 300k-key reshard under 32 writers kept 260 threads, each with its
/// stack and its allocator cache resident. Calls beyond these wait in a queue.
const KV_THREADS: usize = 8;

/// A blocking pool of `KV_THREADS` threads of its own (a runtime that runs no tasks).
struct KvThreads(Option<tokio::runtime::Runtime>);

impl KvThreads {
    fn start() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(KV_THREADS)
            .thread_name("kura-index")
            .build()?;
        Ok(KvThreads(Some(runtime)))
    }
}

impl Drop for KvThreads {
    /// Dropping a runtime waits for its threads, which an async caller must not do.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub struct LocalBackend {
    blobs: PathBuf,
    tmp: PathBuf,
    maps: Arc<maps::Maps>,
    kv_threads: KvThreads,
}

impl LocalBackend {
    /// Opens (or creates) the store under `root`, discarding blobs that were
    /// being written when the process last stopped.
    pub fn open(root: &Path) -> Result<Self> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        for dir in [root, &blobs, &tmp] {
            fs::create_dir_all(dir)?;
        }
        for entry in fs::read_dir(&tmp)? {
            fs::remove_file(entry?.path())?;
        }
        for shard in 0..=255u8 {
            fs::create_dir_all(blobs.join(format!("{shard:02x}")))?;
        }
        sync_dir(&blobs)?;
        sync_dir(root)?;
        let maps = sled_import::open_importing(&root.join("index.redb"), &root.join("index"))?;
        Ok(LocalBackend {
            blobs,
            tmp,
            maps: Arc::new(maps),
            kv_threads: KvThreads::start()?,
        })
    }

    /// Runs an index call on one of the `KV_THREADS` threads.
    async fn kv<T: Send + 'static>(
        &self,
        call: impl FnOnce(&maps::Maps) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let threads = self.kv_threads.0.as_ref().expect("running until dropped");
        let maps = self.maps.clone();
        threads
            .spawn_blocking(move || call(&maps))
            .await
            .map_err(|e| BackendError::Io(std::io::Error::other(e)))?
    }

    fn blob_path(&self, id: &str) -> Result<PathBuf> {
        // Ids are generated here; anything else is refused rather than joined to a path.
        if id.len() < 2 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BackendError::NotFound);
        }
        Ok(self.blobs.join(&id[..2]).join(id))
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[async_trait]
impl BlobStore for LocalBackend {
    async fn create_blob(&self) -> Result<Box<dyn BlobWriter>> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp_path = self.tmp.join(&id);
        let final_path = self.blob_path(&id)?;
        let open_path = tmp_path.clone();
        let file = blocking(move || {
            Ok(OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(open_path)?)
        })
        .await?;
        Ok(Box::new(LocalBlobWriter {
            id,
            tmp_path,
            final_path,
            file: Some(file),
            pending: Vec::new(),
            pending_len: 0,
            sums: BlockSums::default(),
            committed: false,
        }))
    }

    async fn read_blob(&self, id: &str, range: Range<u64>) -> Result<BlobStream> {
        let path = self.blob_path(id)?;
        let id = id.to_owned();
        let (file, layout) = blocking(move || open_blob(&path, &id)).await?;
        Ok(blocking_stream(move |emit| {
            stream_blocks(file, &layout, range, emit)
        }))
    }

    async fn delete_blob(&self, id: &str) -> Result<()> {
        let path = self.blob_path(id)?;
        blocking(move || match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        })
        .await
    }
}

struct LocalBlobWriter {
    id: String,
    tmp_path: PathBuf,
    final_path: PathBuf,
    file: Option<File>,
    pending: Vec<Bytes>,
    pending_len: usize,
    sums: BlockSums,
    committed: bool,
}

impl LocalBlobWriter {
    async fn flush_pending(&mut self) -> Result<()> {
        let mut file = self.file.take().ok_or_else(closed)?;
        let chunks = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let file = blocking(move || {
            for chunk in &chunks {
                file.write_all(chunk)?;
            }
            Ok(file)
        })
        .await?;
        self.file = Some(file);
        Ok(())
    }
}

fn closed() -> BackendError {
    BackendError::Io(std::io::Error::other("blob writer already failed"))
}

#[async_trait]
impl BlobWriter for LocalBlobWriter {
    fn id(&self) -> &str {
        &self.id
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        self.sums.update(&data);
        self.pending_len += data.len();
        self.pending.push(data);
        if self.pending_len >= WRITE_BUFFER {
            self.flush_pending().await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<BlobInfo> {
        let len = self.sums.len;
        let footer = std::mem::take(&mut self.sums).footer();
        self.pending.push(Bytes::from(footer));
        self.flush_pending().await?;
        let file = self.file.take().ok_or_else(closed)?;
        let (tmp, dest) = (self.tmp_path.clone(), self.final_path.clone());
        blocking(move || {
            file.sync_all()?;
            fs::rename(&tmp, &dest)?;
            sync_dir(dest.parent().expect("blob paths have a parent"))?;
            Ok(())
        })
        .await?;
        self.committed = true;
        Ok(BlobInfo {
            id: self.id.clone(),
            len,
        })
    }
}

impl Drop for LocalBlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

struct BlobLayout {
    id: String,
    data_len: u64,
}

fn open_blob(path: &Path, id: &str) -> Result<(File, BlobLayout)> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => BackendError::NotFound,
        _ => e.into(),
    })?;
    let corrupt = || BackendError::Corrupt(format!("blob {id}: bad footer"));
    let file_len = file.metadata()?.len();
    if file_len < TRAILER_LEN {
        return Err(corrupt());
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(file_len - TRAILER_LEN))?;
    file.read_exact(&mut trailer)?;
    let data_len = u64::from_le_bytes(trailer[..8].try_into().expect("8 bytes"));
    let expected_len = data_len
        .checked_add(block_count(data_len) * 4 + TRAILER_LEN)
        .ok_or_else(corrupt)?;
    if &trailer[8..] != MAGIC || expected_len != file_len {
        return Err(corrupt());
    }
    Ok((
        file,
        BlobLayout {
            id: id.to_owned(),
            data_len,
        },
    ))
}

/// Reads `range` block by block, verifying each block before handing out any
/// of its bytes. `emit` returns false when the reader has gone away.
fn stream_blocks(
    mut file: File,
    layout: &BlobLayout,
    range: Range<u64>,
    mut emit: impl FnMut(Bytes) -> bool,
) -> Result<()> {
    let end = range.end.min(layout.data_len);
    if range.start >= end {
        return Ok(());
    }
    let first = range.start / BLOCK_SIZE;
    let last = (end - 1) / BLOCK_SIZE;
    let mut sums = vec![0u8; ((last - first + 1) * 4) as usize];
    file.seek(SeekFrom::Start(layout.data_len + first * 4))?;
    file.read_exact(&mut sums)?;

    let mut block = first;
    while block <= last {
        let step_end = (block + READ_BLOCKS).min(last + 1);
        let start = block * BLOCK_SIZE;
        let stop = (step_end * BLOCK_SIZE).min(layout.data_len);
        let mut buf = vec![0u8; (stop - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        for (i, chunk) in buf.chunks(BLOCK_SIZE as usize).enumerate() {
            let idx = ((block - first) as usize + i) * 4;
            let stored = u32::from_le_bytes(sums[idx..idx + 4].try_into().expect("4 bytes"));
            if crc32c::crc32c(chunk) != stored {
                return Err(BackendError::Corrupt(format!(
                    "blob {} block {}",
                    layout.id,
                    block + i as u64
                )));
            }
        }
        let from = range.start.max(start) - start;
        let to = end.min(stop) - start;
        let mut bytes = Bytes::from(buf);
        bytes.truncate(to as usize);
        if !emit(bytes.slice(from as usize..)) {
            return Ok(());
        }
        block = step_end;
    }
    Ok(())
}

#[async_trait]
impl KvStore for LocalBackend {
    async fn get(&self, map: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut values = self.get_many(map, &[key.to_vec()]).await?;
        Ok(values.pop().flatten())
    }

    async fn get_many(&self, map: &str, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let (map, keys) = (map.to_owned(), keys.to_vec());
        self.kv(move |maps| maps.get_many(&map, &keys)).await
    }

    async fn scan(&self, map: &str, scan: &Scan) -> Result<Page> {
        let (map, scan) = (map.to_owned(), scan.clone());
        self.kv(move |maps| maps.scan(&map, &scan)).await
    }

    async fn write(&self, map: &str, write: crate::Write) -> Result<Outcome> {
        if write.is_empty() {
            return Ok(Outcome::Applied);
        }
        self.maps.write(map.to_owned(), write).await
    }

    async fn drop_map(&self, map: &str) -> Result<()> {
        self.maps.drop_map(map.to_owned()).await
    }

    async fn sync(&self) -> Result<()> {
        self.maps.sync().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uncommitted_blobs_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::open(dir.path()).unwrap();
        let mut writer = backend.create_blob().await.unwrap();
        writer.write(Bytes::from_static(b"partial")).await.unwrap();
        let id = writer.id().to_owned();
        drop(writer);
        assert!(matches!(
            backend.read_blob(&id, 0..7).await.err(),
            Some(BackendError::NotFound)
        ));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
