//! Links the benchmark binaries so that libtorch_cuda stays linked (CUDA is
//! found when present) and libtorch is found at run time.

fn main() {
    torch_link::emit_torch_link_args("");
}
