//! With the `tch` feature, link the crate's tests so that libtorch_cuda stays
//! linked and libtorch is found at run time (see build_support/torch_link.rs).
//! Without it, this does nothing.

include!("build_support/torch_link.rs");

fn main() {
    // Only the tests use tch; the `mosaicrs` CLI must not depend on libtorch.
    emit_torch_link_args("-tests");
}
