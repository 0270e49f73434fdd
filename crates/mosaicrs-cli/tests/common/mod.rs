//! Running the `mosaicrs` binary from the CLI's integration tests.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `mosaicrs` binary built for these tests.
pub fn mosaicrs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mosaicrs"))
        .args(args)
        .output()
        .expect("run mosaicrs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as the `&str` argument the command takes.
#[allow(dead_code)] // not every test file passes paths
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
