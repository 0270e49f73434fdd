//! Links the crate's tests so that libtorch_cuda stays linked and libtorch is
//! found at run time (see the torch-link crate).

fn main() {
    torch_link::emit_torch_link_args("-tests");
}
