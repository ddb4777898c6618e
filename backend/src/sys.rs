//! The one module where Kura runs `unsafe` code, each part with the invariants that make
//! it sound written beside it: the C allocator's tuning (`limit_malloc_arenas`), and the
//! librados calls of the RADOS backend (`rados`, with the `rados` feature).

/// glibc gives each thread that allocates under contention an arena of its own (up to 8
/// per core), and memory freed into one arena is not reused by another. The `kura`
/// binary allocates through jemalloc, but librados (C++) allocates through glibc from
/// threads of its own; with Rust code on glibc's malloc this kept a gateway's resident
/// memory at twice what it used (a 100k-key reshard under load peaked at 663 MiB, 373 MiB
/// with two arenas). Two arenas keep threads from queueing on one lock while memory stays
/// shared. Caps them at two unless `MALLOC_ARENA_MAX` says otherwise; call it first thing
/// in `main`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only changes the allocator's tuning; it is thread-safe, takes
    // plain integers, and M_ARENA_MAX with a positive value is a documented setting.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Other allocators need nothing.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}

#[cfg(feature = "rados")]
pub(crate) mod rados {
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
    //! - a write or read op is created, filled, performed and released within one function,
    //!   and released on every path; every buffer, key array and `prval` it points to is a
    //!   local of that function, so it outlives the op;
    //! - an omap or xattr iterator is allocated by librados when its read op is filled, read
    //!   only after the op returned success, copied out before it is ended
    //!   (`rados_omap_get_end`, `rados_getxattrs_end`), and ended exactly once on every path
    //!   (also when the op failed);
    //! - a data read lands in the spare capacity of a Vec, and the Vec's length is set to the
    //!   bytes librados reports having copied there, which never exceed the length asked for.
    //!
    //! Calls block until the cluster answers or the configured op timeout passes: callers run
    //! them on blocking threads, never on the async runtime's workers.

    use ceph::rados::{
        rados_conf_read_file, rados_conf_set, rados_connect, rados_create_read_op,
        rados_create_write_op, rados_create2, rados_getxattr, rados_getxattrs_end,
        rados_getxattrs_next, rados_ioctx_create, rados_ioctx_destroy, rados_ioctx_set_namespace,
        rados_ioctx_t, rados_omap_get_end, rados_omap_iter_t, rados_pool_create, rados_pool_lookup,
        rados_read_op_getxattrs, rados_read_op_operate, rados_read_op_read, rados_read_op_t,
        rados_release_read_op, rados_release_write_op, rados_remove, rados_shutdown, rados_stat,
        rados_t, rados_wait_for_latest_osdmap, rados_write_op_create, rados_write_op_operate,
        rados_write_op_setxattr, rados_write_op_t, rados_write_op_write_full, rados_xattrs_iter_t,
    };
    use libc::{c_char, c_int};
    use std::ffi::{CStr, CString};
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

    // The length-taking (`…2`) omap calls of librados.h (Pacific), which the `ceph` crate does
    // not declare: omap keys are binary, so keys are passed with their lengths.
    #[link(name = "rados")]
    unsafe extern "C" {
        fn rados_write_op_omap_set2(
            op: rados_write_op_t,
            keys: *const *const c_char,
            vals: *const *const c_char,
            key_lens: *const usize,
            val_lens: *const usize,
            num: usize,
        );
        fn rados_write_op_omap_rm_keys2(
            op: rados_write_op_t,
            keys: *const *const c_char,
            key_lens: *const usize,
            num: usize,
        );
        fn rados_write_op_omap_cmp2(
            op: rados_write_op_t,
            key: *const c_char,
            comparison: u8,
            val: *const c_char,
            key_len: usize,
            val_len: usize,
            prval: *mut c_int,
        );
        fn rados_read_op_omap_get_vals2(
            op: rados_read_op_t,
            start_after: *const c_char,
            filter_prefix: *const c_char,
            max_return: u64,
            iter: *mut rados_omap_iter_t,
            more: *mut u8,
            prval: *mut c_int,
        );
        fn rados_read_op_omap_get_vals_by_keys2(
            op: rados_read_op_t,
            keys: *const *const c_char,
            num_keys: usize,
            key_lens: *const usize,
            iter: *mut rados_omap_iter_t,
            prval: *mut c_int,
        );
        fn rados_omap_get_next2(
            iter: rados_omap_iter_t,
            key: *mut *mut c_char,
            val: *mut *mut c_char,
            key_len: *mut usize,
            val_len: *mut usize,
        ) -> c_int;
    }

    /// `LIBRADOS_CMPXATTR_OP_EQ`.
    const CMP_EQ: u8 = 1;
    /// `LIBRADOS_CREATE_IDEMPOTENT`.
    const CREATE_IDEMPOTENT: c_int = 0;

    /// Extended attributes as read: (name, value).
    pub type Xattrs = Vec<(String, Vec<u8>)>;

    /// Omap entries as read: (key, value) in key order.
    pub type OmapEntries = Vec<(Vec<u8>, Vec<u8>)>;

    /// A page of omap entries read in one operation.
    pub struct OmapPage {
        /// The entries asked for by key that exist.
        pub by_key: OmapEntries,
        /// The entries after the start key.
        pub after: OmapEntries,
        /// Whether entries beyond `after` remain.
        pub more: bool,
    }

    /// Pointer and length arrays for a list of byte strings, as librados's `…2` calls take them.
    fn pointers(items: &[&[u8]]) -> (Vec<*const c_char>, Vec<usize>) {
        items
            .iter()
            .map(|item| (item.as_ptr().cast::<c_char>(), item.len()))
            .unzip()
    }

    /// A copy of the `len` bytes at `ptr` (which librados may leave null when `len` is 0).
    ///
    /// # Safety
    /// Unless `len` is 0, `ptr` points to `len` readable bytes.
    unsafe fn copied(ptr: *const c_char, len: usize) -> Vec<u8> {
        if len == 0 {
            return Vec::new();
        }
        // SAFETY: as the caller promises.
        unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }.to_vec()
    }

    /// Copies every entry out of `iter` and ends it.
    ///
    /// # Safety
    /// `iter` is an iterator filled by a read op that returned success, not yet ended.
    unsafe fn drain(iter: rados_omap_iter_t) -> Result<OmapEntries> {
        let mut out = Vec::new();
        loop {
            let (mut key, mut val) = (std::ptr::null_mut(), std::ptr::null_mut());
            let (mut key_len, mut val_len) = (0usize, 0usize);
            // SAFETY: valid out-pointers; librados fills them from the live iterator.
            let ret = unsafe {
                rados_omap_get_next2(iter, &mut key, &mut val, &mut key_len, &mut val_len)
            };
            if ret < 0 {
                // SAFETY: ended once, here, on the error path.
                unsafe { rados_omap_get_end(iter) };
                return Err(RadosError::new("reading omap entries", i64::from(ret)));
            }
            if key.is_null() {
                break;
            }
            // SAFETY: librados hands out `key_len`/`val_len` readable bytes, valid until the
            // iterator ends; they are copied before that.
            out.push(unsafe { (copied(key, key_len), copied(val, val_len)) });
        }
        // SAFETY: ended once, here, after the last read.
        unsafe { rados_omap_get_end(iter) };
        Ok(out)
    }

    /// Copies every attribute out of `iter` and ends it.
    ///
    /// # Safety
    /// `iter` is an iterator filled by a read op that returned success, not yet ended.
    unsafe fn drain_xattrs(iter: rados_xattrs_iter_t) -> Result<Xattrs> {
        let mut out = Vec::new();
        loop {
            let (mut name, mut val, mut len) = (std::ptr::null(), std::ptr::null(), 0usize);
            // SAFETY: valid out-pointers; librados fills them from the live iterator.
            let ret = unsafe { rados_getxattrs_next(iter, &mut name, &mut val, &mut len) };
            if ret < 0 {
                // SAFETY: ended once, here, on the error path.
                unsafe { rados_getxattrs_end(iter) };
                return Err(RadosError::new(
                    "reading extended attributes",
                    i64::from(ret),
                ));
            }
            if name.is_null() {
                break;
            }
            // SAFETY: librados hands out a NUL-terminated name and `len` readable value bytes,
            // valid until the next call on the iterator; both are copied before that.
            out.push(unsafe {
                (
                    CStr::from_ptr(name).to_string_lossy().into_owned(),
                    copied(val, len),
                )
            });
        }
        // SAFETY: ended once, here, after the last read.
        unsafe { rados_getxattrs_end(iter) };
        Ok(out)
    }

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
            let ret =
                unsafe { rados_create2(&mut handle, cluster_name.as_ptr(), name.as_ptr(), 0) };
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

        /// Fetches the cluster's latest OSD map from a monitor and waits until this client
        /// has it. librados asks for new maps when it learns that its own is stale, which it
        /// does not after a whole-cluster restart: the map it holds still says "up" at the
        /// OSDs' old addresses, and every op times out against them until told otherwise.
        pub fn wait_for_latest_osdmap(&self) -> Result<()> {
            // SAFETY: a connected handle.
            let ret = unsafe { rados_wait_for_latest_osdmap(self.handle) };
            check(|| "fetching the latest OSD map".into(), i64::from(ret)).map(drop)
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

        /// A handle on the objects of namespace `namespace` (empty: the default one) of an
        /// existing pool.
        pub fn pool(self: &Arc<Self>, pool: &str, namespace: &str) -> Result<Pool> {
            let name = cstring("pool name", pool)?;
            let space = cstring("namespace", namespace)?;
            let mut ioctx: rados_ioctx_t = std::ptr::null_mut();
            // SAFETY: a connected handle, a NUL-terminated name and a valid out-pointer.
            let ret = unsafe { rados_ioctx_create(self.handle, name.as_ptr(), &mut ioctx) };
            check(|| format!("opening pool {pool}"), i64::from(ret))?;
            // SAFETY: a created ioctx (not yet shared) and a NUL-terminated name, which
            // librados copies.
            unsafe { rados_ioctx_set_namespace(ioctx, space.as_ptr()) };
            Ok(Pool {
                cluster: self.clone(),
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
        cluster: Arc<Cluster>,
        ioctx: rados_ioctx_t,
    }

    // SAFETY: see the module invariants: librados ioctx handles are thread-safe.
    unsafe impl Send for Pool {}
    // SAFETY: as above.
    unsafe impl Sync for Pool {}

    impl Pool {
        /// The cluster this pool is on.
        pub fn cluster(&self) -> &Cluster {
            &self.cluster
        }

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
                let ret = rados_write_op_operate(
                    op,
                    self.ioctx,
                    object.as_ptr(),
                    std::ptr::null_mut(),
                    0,
                );
                rados_release_write_op(op);
                ret
            };
            if ret < 0 { Err(i64::from(ret)) } else { Ok(()) }
        }

        /// In one atomic operation on `oid` (created if missing): checks that every key of
        /// `guards` holds exactly its value (a missing key compares as empty), then sets `sets`
        /// and removes `removes`. Ok(false) when a guard failed and nothing changed. Returns
        /// once every replica in the acting set has it.
        pub fn omap_write(
            &self,
            oid: &str,
            guards: &[(&[u8], &[u8])],
            sets: &[(&[u8], &[u8])],
            removes: &[&[u8]],
        ) -> Result<bool> {
            let object = cstring("object name", oid)?;
            let (set_keys, set_key_lens) =
                pointers(&sets.iter().map(|(k, _)| *k).collect::<Vec<_>>());
            let (set_vals, set_val_lens) =
                pointers(&sets.iter().map(|(_, v)| *v).collect::<Vec<_>>());
            let (rm_keys, rm_key_lens) = pointers(removes);
            let mut guard_rets: Vec<c_int> = vec![0; guards.len()];
            // SAFETY: the op is created, filled with pointers into `guards`, `sets`, `removes`
            // and the arrays above (all alive until the op is released below) and released on
            // every path; `guard_rets` has one slot per guard.
            let ret = unsafe {
                let op = rados_create_write_op();
                rados_write_op_create(op, CREATE_IDEMPOTENT, std::ptr::null());
                for ((key, value), prval) in guards.iter().zip(guard_rets.iter_mut()) {
                    rados_write_op_omap_cmp2(
                        op,
                        key.as_ptr().cast(),
                        CMP_EQ,
                        value.as_ptr().cast(),
                        key.len(),
                        value.len(),
                        prval,
                    );
                }
                if !sets.is_empty() {
                    rados_write_op_omap_set2(
                        op,
                        set_keys.as_ptr(),
                        set_vals.as_ptr(),
                        set_key_lens.as_ptr(),
                        set_val_lens.as_ptr(),
                        sets.len(),
                    );
                }
                if !removes.is_empty() {
                    rados_write_op_omap_rm_keys2(
                        op,
                        rm_keys.as_ptr(),
                        rm_key_lens.as_ptr(),
                        removes.len(),
                    );
                }
                let ret = rados_write_op_operate(
                    op,
                    self.ioctx,
                    object.as_ptr(),
                    std::ptr::null_mut(),
                    0,
                );
                rados_release_write_op(op);
                ret
            };
            match i64::from(ret) {
                r if r >= 0 => Ok(true),
                r if r == -i64::from(libc::ECANCELED) => Ok(false),
                r => Err(RadosError::new(format!("writing omap of {oid}"), r)),
            }
        }

        /// In one read of `oid`'s omap: the entries of `keys` that exist, and up to `max`
        /// entries with keys after `start_after` that start with `prefix`. A missing object has
        /// no entries.
        pub fn omap_read(
            &self,
            oid: &str,
            keys: &[&[u8]],
            start_after: &CStr,
            prefix: &CStr,
            max: u64,
        ) -> Result<OmapPage> {
            let object = cstring("object name", oid)?;
            let (key_ptrs, key_lens) = pointers(keys);
            let (mut by_key_iter, mut after_iter): (rados_omap_iter_t, rados_omap_iter_t) =
                (std::ptr::null_mut(), std::ptr::null_mut());
            let (mut by_key_ret, mut after_ret, mut more): (c_int, c_int, u8) = (0, 0, 0);
            // SAFETY: the op is created, filled with pointers to `keys`, the arrays above, the
            // C strings and the out-slots (all alive until it is released below), performed and
            // released; the iterators it allocates are drained or ended below on every path.
            let ret = unsafe {
                let op = rados_create_read_op();
                if !keys.is_empty() {
                    rados_read_op_omap_get_vals_by_keys2(
                        op,
                        key_ptrs.as_ptr(),
                        keys.len(),
                        key_lens.as_ptr(),
                        &mut by_key_iter,
                        &mut by_key_ret,
                    );
                }
                if max > 0 {
                    rados_read_op_omap_get_vals2(
                        op,
                        start_after.as_ptr(),
                        prefix.as_ptr(),
                        max,
                        &mut after_iter,
                        &mut more,
                        &mut after_ret,
                    );
                }
                let ret = rados_read_op_operate(op, self.ioctx, object.as_ptr(), 0);
                rados_release_read_op(op);
                ret
            };
            let failed = [ret, by_key_ret, after_ret].into_iter().find(|r| *r < 0);
            if let Some(err) = failed {
                for iter in [by_key_iter, after_iter] {
                    if !iter.is_null() {
                        // SAFETY: each allocated iterator is ended once, on this failure path.
                        unsafe { rados_omap_get_end(iter) };
                    }
                }
                return match i64::from(err) {
                    r if r == -i64::from(libc::ENOENT) => Ok(OmapPage {
                        by_key: Vec::new(),
                        after: Vec::new(),
                        more: false,
                    }),
                    r => Err(RadosError::new(format!("reading omap of {oid}"), r)),
                };
            }
            let drain_some = |iter: rados_omap_iter_t| {
                if iter.is_null() {
                    Ok(Vec::new())
                } else {
                    // SAFETY: the op succeeded; each iterator is drained (and ended) once.
                    unsafe { drain(iter) }
                }
            };
            let by_key = drain_some(by_key_iter);
            let after = drain_some(after_iter);
            Ok(OmapPage {
                by_key: by_key?,
                after: after?,
                more: more != 0,
            })
        }

        /// Up to `len` bytes of `oid` from `offset` (fewer at the object's end).
        pub fn read(&self, oid: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
            Ok(self.read_op(oid, offset, len, false)?.0)
        }

        /// In one read operation: up to `len` bytes of `oid` from `offset`, and all of its
        /// extended attributes (name, value).
        pub fn read_with_xattrs(
            &self,
            oid: &str,
            offset: u64,
            len: usize,
        ) -> Result<(Vec<u8>, Xattrs)> {
            self.read_op(oid, offset, len, true)
        }

        fn read_op(
            &self,
            oid: &str,
            offset: u64,
            len: usize,
            xattrs: bool,
        ) -> Result<(Vec<u8>, Xattrs)> {
            let object = cstring("object name", oid)?;
            // Not zeroed: librados copies the bytes read in, and only those count.
            let mut buf: Vec<u8> = Vec::with_capacity(len);
            let mut iter: rados_xattrs_iter_t = std::ptr::null_mut();
            let (mut read_len, mut read_ret, mut xattrs_ret): (usize, c_int, c_int) = (0, 0, 0);
            // SAFETY: the op is created, filled with pointers to `buf`'s `len` spare bytes and
            // the out-slots (all alive until it is released below), performed and released;
            // the iterator it may allocate is drained or ended below on every path.
            let ret = unsafe {
                let op = rados_create_read_op();
                if xattrs {
                    rados_read_op_getxattrs(op, &mut iter, &mut xattrs_ret);
                }
                if len > 0 {
                    rados_read_op_read(
                        op,
                        offset,
                        len,
                        buf.as_mut_ptr().cast(),
                        &mut read_len,
                        &mut read_ret,
                    );
                }
                let ret = rados_read_op_operate(op, self.ioctx, object.as_ptr(), 0);
                rados_release_read_op(op);
                ret
            };
            if let Some(err) = [ret, xattrs_ret, read_ret].into_iter().find(|r| *r < 0) {
                if !iter.is_null() {
                    // SAFETY: ended once, on this failure path.
                    unsafe { rados_getxattrs_end(iter) };
                }
                return Err(RadosError::new(format!("reading {oid}"), i64::from(err)));
            }
            // SAFETY: librados copied `read_len` (at most `len`) bytes into the spare capacity.
            unsafe { buf.set_len(read_len.min(len)) };
            let attrs = if iter.is_null() {
                Vec::new()
            } else {
                // SAFETY: the op succeeded; the iterator is drained (and ended) once.
                unsafe { drain_xattrs(iter) }?
            };
            Ok((buf, attrs))
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
}
