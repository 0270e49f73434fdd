//! A real S3-compatible server for tests and benches: `moto` in server mode
//! (through `scripts/moto_server.py`, which serves one request at a time so
//! that conditional writes are atomic, as on S3), started from the project's
//! `.venv` on a free loopback port and killed when the [`Moto`] is dropped.
//!
//! Without `.venv/bin/python` (or without moto in it) [`Moto::start`]
//! prints why and returns `None`, so a test can pass without running;
//! with `MOSAICRS_REQUIRE_MOTO=1` (set by `make test`) it panics instead.
//!
//! ```no_run
//! use mosaicrs::testing::moto::Moto;
//! let Some(moto) = Moto::start() else { return };
//! moto.create_bucket("data");
//! let location = moto.location("s3://data/train");
//! # let _ = location;
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::storage::{Location, StorageOptions};

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
}

/// The project's venv interpreter (`<repo>/.venv/bin/python`).
pub fn venv_python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

impl Moto {
    /// Starts the server and waits until it listens, or returns `None`
    /// (after saying why) when moto is not installed and not required.
    pub fn start() -> Option<Moto> {
        let python = venv_python();
        let required = std::env::var_os("MOSAICRS_REQUIRE_MOTO").is_some();
        let has_moto = python.exists()
            && Command::new(&python)
                .args(["-c", "import moto.server"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !has_moto {
            assert!(
                !required,
                "MOSAICRS_REQUIRE_MOTO is set but {python:?} has no moto"
            );
            eprintln!(
                "SKIPPED: no moto server: {} lacks `moto[server]` (pip install -r scripts/requirements.txt)",
                python.display()
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // One request at a time, so that conditional writes are atomic as on
        // S3 (see the script).
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto_server.py");
        let child = Command::new(&python)
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket with a bare HTTP PUT (moto does not check signatures).
    pub fn create_bucket(&self, bucket: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("reply");
        assert!(reply.starts_with("HTTP/1.1 200"), "create bucket: {reply}");
    }

    /// Storage options that reach this server with test credentials.
    pub fn options(&self) -> StorageOptions {
        self.assignments()
            .iter()
            .map(|a| a.split_once('=').expect("KEY=VALUE"))
            .collect()
    }

    /// The same options as `KEY=VALUE` strings, for `--storage` arguments.
    pub fn assignments(&self) -> Vec<String> {
        vec![
            format!("aws_endpoint={}", self.endpoint()),
            "aws_allow_http=true".into(),
            "aws_access_key_id=testing".into(),
            "aws_secret_access_key=testing-secret".into(),
            "aws_region=us-east-1".into(),
        ]
    }

    /// `url` on this server.
    pub fn location(&self, url: &str) -> Location {
        Location::parse(url, &self.options()).expect("location")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
