//! The one place Kura calls librados (through the `ceph` crate's raw declarations): a
//! connected cluster handle and pool handles with the few calls the RADOS backend needs,
//! each turning librados's negative errno returns into errors.
//!
//! Invariants that make the `unsafe` blocks sound:
//! - a `Cluster` owns one `rados_t` that was created and connected successfully; it is
//!   shut down exactly once, in `Drop`, after every `Pool` made from it is gone (each
//!   `Pool` holds an `Arc<Cluster>`);
//! - a `Pool` owns one `rados_ioctx_t` created from its cluster, destroyed exactly once in
//!   `Drop`;
//! - librados documents `rados_t` and `rados_ioctx_t` as safe to use from several threads
//!   at once for the synchronous calls used here, so both types are `Send + Sync`;
//! - every pointer passed in is to a live, correctly sized Rust buffer or a NUL-terminated
//!   `CString` that outlives the call; lengths passed are those buffers' lengths;
//! - a write op is created, filled and released within one function, and released on
//!   every path.
//!
//! Calls block until the cluster answers or the configured op timeout passes: callers run
//! them on blocking threads, never on the async runtime's workers.

use ceph::rados::{
    rados_conf_read_file, rados_conf_set, rados_connect, rados_create_write_op, rados_create2,
    rados_getxattr, rados_ioctx_create, rados_ioctx_destroy, rados_ioctx_t, rados_pool_create,
    rados_pool_lookup, rados_read, rados_release_write_op, rados_remove, rados_shutdown,
    rados_stat, rados_t, rados_write_op_operate, rados_write_op_setxattr,
    rados_write_op_write_full,
};
use std::ffi::CString;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A librados failure: the errno it returned, and what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct RadosError {
    pub what: String,
    #[source]
    pub source: io::Error,
}

impl RadosError {
    fn new(what: impl Into<String>, ret: i64) -> Self {
        RadosError {
            what: what.into(),
            source: io::Error::from_raw_os_error((-ret) as i32),
        }
    }

    /// The errno, positive.
    pub fn errno(&self) -> i32 {
        self.source.raw_os_error().unwrap_or(0)
    }
}

pub type Result<T> = std::result::Result<T, RadosError>;

fn cstring(what: &str, text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| RadosError::new(format!("{what}: NUL in {text:?}"), -22))
}

fn check(what: impl FnOnce() -> String, ret: i64) -> Result<i64> {
    if ret < 0 {
        Err(RadosError::new(what(), ret))
    } else {
        Ok(ret)
    }
}

/// A connected cluster.
pub struct Cluster {
    handle: rados_t,
}

// SAFETY: see the module invariants: librados cluster handles are thread-safe.
unsafe impl Send for Cluster {}
// SAFETY: as above.
unsafe impl Sync for Cluster {}

impl Cluster {
    /// Connects as `client.<user>` with the settings of `conf` (monitors, keyring). Every
    /// monitor and OSD operation then fails with ETIMEDOUT after `timeout` instead of
    /// waiting for a cluster that cannot serve.
    pub fn connect(conf: &Path, user: &str, timeout: Duration) -> Result<Arc<Cluster>> {
        let name = cstring("client name", &format!("client.{user}"))?;
        let cluster_name = cstring("cluster name", "ceph")?;
        let mut handle: rados_t = std::ptr::null_mut();
        // SAFETY: `handle` is a valid out-pointer; the names are NUL-terminated.
        let ret = unsafe { rados_create2(&mut handle, cluster_name.as_ptr(), name.as_ptr(), 0) };
        check(|| "rados_create2".into(), i64::from(ret))?;
        // From here on, Drop shuts the handle down on every path.
        let cluster = Cluster { handle };
        let path = cstring("ceph.conf path", &conf.to_string_lossy())?;
        // SAFETY: a created handle and a NUL-terminated path.
        let ret = unsafe { rados_conf_read_file(cluster.handle, path.as_ptr()) };
        check(|| format!("reading {}", conf.display()), i64::from(ret))?;
        let seconds = timeout.as_secs().max(1).to_string();
        for option in [
            "rados_osd_op_timeout",
            "rados_mon_op_timeout",
            "client_mount_timeout",
        ] {
            cluster.set(option, &seconds)?;
        }
        // SAFETY: a created, configured handle.
        let ret = unsafe { rados_connect(cluster.handle) };
        check(
            || format!("connecting to the cluster of {}", conf.display()),
            i64::from(ret),
        )?;
        Ok(Arc::new(cluster))
    }

    fn set(&self, option: &str, value: &str) -> Result<()> {
        let (name, text) = (cstring("option", option)?, cstring("value", value)?);
        // SAFETY: a created handle and NUL-terminated strings.
        let ret = unsafe { rados_conf_set(self.handle, name.as_ptr(), text.as_ptr()) };
        check(|| format!("setting {option}"), i64::from(ret)).map(drop)
    }

    /// Whether the pool exists.
    pub fn pool_exists(&self, pool: &str) -> Result<bool> {
        let name = cstring("pool name", pool)?;
        // SAFETY: a connected handle and a NUL-terminated name.
        let ret = unsafe { rados_pool_lookup(self.handle, name.as_ptr()) };
        match ret {
            r if r >= 0 => Ok(true),
            r if r == -i64::from(libc::ENOENT) => Ok(false),
            r => Err(RadosError::new(format!("looking up pool {pool}"), r)),
        }
    }

    /// Creates a pool with the cluster's defaults (an existing one is left as it is).
    pub fn create_pool(&self, pool: &str) -> Result<()> {
        let name = cstring("pool name", pool)?;
        // SAFETY: a connected handle and a NUL-terminated name.
        let ret = unsafe { rados_pool_create(self.handle, name.as_ptr()) };
        match i64::from(ret) {
            r if r >= 0 || r == -i64::from(libc::EEXIST) => Ok(()),
            r => Err(RadosError::new(format!("creating pool {pool}"), r)),
        }
    }

    /// A handle on an existing pool.
    pub fn pool(self: &Arc<Self>, pool: &str) -> Result<Pool> {
        let name = cstring("pool name", pool)?;
        let mut ioctx: rados_ioctx_t = std::ptr::null_mut();
        // SAFETY: a connected handle, a NUL-terminated name and a valid out-pointer.
        let ret = unsafe { rados_ioctx_create(self.handle, name.as_ptr(), &mut ioctx) };
        check(|| format!("opening pool {pool}"), i64::from(ret))?;
        Ok(Pool {
            _cluster: self.clone(),
            ioctx,
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SAFETY: the handle was created; every Pool (holding an Arc of this) is gone.
        unsafe { rados_shutdown(self.handle) }
    }
}

/// A handle on one pool of a connected cluster.
pub struct Pool {
    /// Keeps the cluster connected until this pool's ioctx is destroyed.
    _cluster: Arc<Cluster>,
    ioctx: rados_ioctx_t,
}

// SAFETY: see the module invariants: librados ioctx handles are thread-safe.
unsafe impl Send for Pool {}
// SAFETY: as above.
unsafe impl Sync for Pool {}

impl Pool {
    /// Replaces `oid`'s data with `data` and sets the extended attributes `xattrs`, in one
    /// atomic operation: the object never exists with the data and not the attributes.
    /// Returns once every replica in the acting set has it.
    pub fn write_full(&self, oid: &str, data: &[u8], xattrs: &[(&str, &[u8])]) -> Result<()> {
        self.write_op(oid, Some(data), xattrs)
            .map_err(|ret| RadosError::new(format!("writing {oid}"), ret))
    }

    /// Sets one extended attribute of an existing object.
    pub fn set_xattr(&self, oid: &str, name: &str, value: &[u8]) -> Result<()> {
        self.write_op(oid, None, &[(name, value)])
            .map_err(|ret| RadosError::new(format!("setting {name} on {oid}"), ret))
    }

    /// One atomic write operation on `oid`: its whole data replaced by `data` (if given) and
    /// `xattrs` set. Fails with librados's negative return.
    fn write_op(
        &self,
        oid: &str,
        data: Option<&[u8]>,
        xattrs: &[(&str, &[u8])],
    ) -> std::result::Result<(), i64> {
        let invalid = -i64::from(libc::EINVAL);
        let object = CString::new(oid).map_err(|_| invalid)?;
        let names = xattrs
            .iter()
            .map(|(name, _)| CString::new(*name).map_err(|_| invalid))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // SAFETY: the op is created here, filled with pointers to `data`, `names` and the
        // xattr values, which all outlive `rados_write_op_operate`, and released on every path.
        let ret = unsafe {
            let op = rados_create_write_op();
            if let Some(data) = data {
                rados_write_op_write_full(op, data.as_ptr().cast(), data.len());
            }
            for (name, (_, value)) in names.iter().zip(xattrs) {
                rados_write_op_setxattr(op, name.as_ptr(), value.as_ptr().cast(), value.len());
            }
            let ret =
                rados_write_op_operate(op, self.ioctx, object.as_ptr(), std::ptr::null_mut(), 0);
            rados_release_write_op(op);
            ret
        };
        if ret < 0 { Err(i64::from(ret)) } else { Ok(()) }
    }

    /// Up to `len` bytes of `oid` from `offset` (fewer at the object's end).
    pub fn read(&self, oid: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let object = cstring("object name", oid)?;
        let mut buf = vec![0u8; len];
        // SAFETY: `buf` is `len` writable bytes; librados writes at most `len`.
        let ret = unsafe {
            rados_read(
                self.ioctx,
                object.as_ptr(),
                buf.as_mut_ptr().cast(),
                len,
                offset,
            )
        };
        let read = check(|| format!("reading {oid}"), i64::from(ret))?;
        buf.truncate(read as usize);
        Ok(buf)
    }

    /// An extended attribute of `oid`, at most `max` bytes long.
    pub fn xattr(&self, oid: &str, name: &str, max: usize) -> Result<Vec<u8>> {
        let (object, attr) = (cstring("object name", oid)?, cstring("xattr name", name)?);
        let mut buf = vec![0u8; max];
        // SAFETY: `buf` is `max` writable bytes; librados writes at most `max`.
        let ret = unsafe {
            rados_getxattr(
                self.ioctx,
                object.as_ptr(),
                attr.as_ptr(),
                buf.as_mut_ptr().cast(),
                max,
            )
        };
        let read = check(|| format!("reading {name} of {oid}"), i64::from(ret))?;
        buf.truncate(read as usize);
        Ok(buf)
    }

    /// The size of `oid`, or None if it does not exist.
    pub fn size(&self, oid: &str) -> Result<Option<u64>> {
        let object = cstring("object name", oid)?;
        let (mut size, mut mtime) = (0u64, 0 as libc::time_t);
        // SAFETY: valid out-pointers for size and mtime.
        let ret = unsafe { rados_stat(self.ioctx, object.as_ptr(), &mut size, &mut mtime) };
        match i64::from(ret) {
            r if r >= 0 => Ok(Some(size)),
            r if r == -i64::from(libc::ENOENT) => Ok(None),
            r => Err(RadosError::new(format!("stat of {oid}"), r)),
        }
    }

    /// Removes `oid`; a missing object is not an error.
    pub fn remove(&self, oid: &str) -> Result<()> {
        let object = cstring("object name", oid)?;
        // SAFETY: a NUL-terminated name.
        let ret = unsafe { rados_remove(self.ioctx, object.as_ptr()) };
        match i64::from(ret) {
            r if r >= 0 || r == -i64::from(libc::ENOENT) => Ok(()),
            r => Err(RadosError::new(format!("removing {oid}"), r)),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: the ioctx was created and is destroyed once; the cluster is still alive.
        unsafe { rados_ioctx_destroy(self.ioctx) }
    }
}
