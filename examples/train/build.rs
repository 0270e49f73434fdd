//! Links the training and benchmark binaries so that libtorch_cuda stays
//! linked (CUDA is found when present) and libtorch is found at run time.

include!("../../rust-core/build_support/torch_link.rs");

fn main() {
    emit_torch_link_args("");
}
