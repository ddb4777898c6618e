//! Harness for end-to-end tests and benchmarks: starts a real `kura` process on free
//! loopback ports with a temporary data directory, or attaches to a running server.
//!
//! The binary is `$KURA_BIN`, else `kura` in the cargo profile directory of the running
//! test or bench executable (`target/debug/kura` for `cargo test`, `target/release/kura`
//! for `cargo bench`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Root credentials given to every server the harness starts.
pub const ROOT_ACCESS_KEY: &str = "KURATESTROOTACCESS01";
/// Secret matching [`ROOT_ACCESS_KEY`].
pub const ROOT_SECRET_KEY: &str = "kura-test-root-secret-key-0123456789abcd";
/// Region a default `kura serve` answers for.
pub const REGION: &str = "us-east-1";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const LOG_TAIL_LINES: usize = 60;

/// Where an S3 server listens and the credentials to use with it.
#[derive(Clone, Debug)]
pub struct S3Target {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl S3Target {
    /// A Rust AWS SDK client for this server: path-style addressing, its region and keys.
    pub fn sdk_client(&self) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        let credentials = Credentials::new(
            &self.access_key,
            &self.secret_key,
            None,
            None,
            "kura-conformance",
        );
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Attaches to an already-running server (e.g. for benchmarks).
    pub fn attach(endpoint: &str, access_key: &str, secret_key: &str) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: REGION.to_owned(),
        }
    }
}

/// A `kura serve` child process owning a temporary data directory.
///
/// Dropping it kills the process (SIGKILL) and removes the data directory; if the
/// current thread is panicking, the tail of the server log is printed first.
pub struct KuraProcess {
    bin: PathBuf,
    dir: TempDir,
    s3_addr: SocketAddr,
    ops_addr: SocketAddr,
    target: S3Target,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl KuraProcess {
    /// Starts a server and waits until `/readyz` answers 200.
    pub fn start() -> Self {
        Self::start_with_env(&[])
    }

    /// Like [`KuraProcess::start`], with extra environment variables (e.g.
    /// `KURA_MAX_OBJECTS_PER_SHARD`), kept across restarts.
    pub fn start_with_env(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kura-conformance-")
            .tempdir()
            .expect("create temporary directory");
        let s3_addr = free_loopback_addr();
        let ops_addr = free_loopback_addr();
        let endpoint = format!("http://{s3_addr}");
        let mut process = Self {
            bin: kura_bin(),
            dir,
            s3_addr,
            ops_addr,
            target: S3Target::attach(&endpoint, ROOT_ACCESS_KEY, ROOT_SECRET_KEY),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
        };
        process.spawn();
        process
    }

    pub fn target(&self) -> &S3Target {
        &self.target
    }

    /// S3 endpoint URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.target.endpoint
    }

    /// Base URL of the ops listener (probes, metrics).
    pub fn ops_url(&self) -> String {
        format!("http://{}", self.ops_addr)
    }

    /// The ops listener (probes, `/metrics`).
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_addr
    }

    /// The `kura` binary this server runs (also the admin CLI).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("kura.log")
    }

    /// Operating-system process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Graceful shutdown: SIGTERM, then wait (bounded) for the process to exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("kura is not running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", child.id());
        match wait_with_timeout(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                kill_and_reap(&mut child);
                panic!("kura did not exit within {STOP_TIMEOUT:?} of SIGTERM");
            }
        }
    }

    /// Crash: SIGKILL the process and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kura is not running");
        kill_and_reap(&mut child);
    }

    /// Stops the server gracefully if it runs, then starts it again on the same data
    /// directory and ports, and waits until it is ready.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    fn spawn(&mut self) {
        let data_dir = self.data_dir();
        let log = self.open_log();
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--s3-addr")
            .arg(self.s3_addr.to_string())
            .arg("--ops-addr")
            .arg(self.ops_addr.to_string())
            .env("KURA_ROOT_ACCESS_KEY", &self.target.access_key)
            .env("KURA_ROOT_SECRET_KEY", &self.target.secret_key)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready();
    }

    fn open_log(&self) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open kura log file")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child_exit_status() {
                self.child = None;
                panic!(
                    "kura exited before becoming ready ({status}); log:\n{}",
                    self.log_tail()
                );
            }
            if http_get_status(self.ops_addr, "/readyz") == Some(200) {
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        panic!(
            "kura not ready within {READY_TIMEOUT:?}; log:\n{}",
            self.log_tail()
        );
    }

    fn child_exit_status(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().expect("poll kura process")
    }

    /// The last lines the server wrote to stdout and stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for KuraProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            kill_and_reap(child);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- kura log ({}) ---\n{}",
                self.endpoint(),
                self.log_tail()
            );
        }
    }
}

/// `$KURA_BIN`, else `kura` in the profile directory of the current executable
/// (`<target>/<profile>/deps/<test>` → `<target>/<profile>/kura`).
fn kura_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("KURA_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("locate current executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("executable lives in <target>/<profile>/deps");
    let bin = profile_dir.join("kura");
    assert!(
        bin.is_file(),
        "kura binary not found at {}: build it first (`cargo build -p kura`, or \
         `cargo build --release -p kura` for benches) or set KURA_BIN",
        bin.display()
    );
    bin
}

fn free_loopback_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("reserve a free loopback port")
}

fn kill_and_reap(child: &mut Child) {
    // An error means the process has already exited; reaping below still applies.
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("poll kura process") {
            return Some(status);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    None
}

/// Status code of a plain HTTP/1.1 GET on a new connection (as a probe
/// makes it), or `None` if the server does not answer within 2 s.
pub fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    // "HTTP/1.1 200 OK\r\n..."
    let status = response.get(9..12)?;
    std::str::from_utf8(status).ok()?.parse().ok()
}
