//! Linker arguments for binaries and tests that use tch, emitted from the
//! build scripts of the crates that link libtorch (mosaicrs-tch's tests,
//! mosaicrs-bench, examples/train). Each of those crates depends on
//! `torch-sys` directly, so that its build script sees `DEP_TCH_LIBTORCH_LIB`.
//!
//! torch-sys (links = "tch") tells direct dependents where libtorch lives as
//! `DEP_TCH_LIBTORCH_LIB`. Two things go wrong without help:
//!
//! - the linker's default --as-needed drops libtorch_cuda.so, because no
//!   symbol of it is referenced, and CUDA then silently reads as unavailable;
//! - the binary cannot find libtorch at run time.
//!
//! So: `-Wl,--no-as-needed -ltorch_cuda` when the CUDA library exists, and an
//! rpath to libtorch's folder (the torch wheel's torch/lib), whose own RUNPATH
//! finds the nvidia-* wheels' CUDA libraries.

/// Emits the arguments with `kind` = "" (all link targets of the package) or
/// "-tests" (test targets only), per Cargo's `rustc-link-arg[-KIND]`.
///
/// ```no_run
/// // build.rs of a crate whose binaries use tch:
/// torch_link::emit_torch_link_args("");
/// ```
pub fn emit_torch_link_args(kind: &str) {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib = std::path::PathBuf::from(lib);
    println!("cargo:rustc-link-arg{kind}=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg{kind}=-L{}", lib.display());
        println!("cargo:rustc-link-arg{kind}=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg{kind}=-ltorch_cuda");
        println!("cargo:rustc-link-arg{kind}=-Wl,--as-needed");
    }
}
