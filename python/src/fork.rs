//! Fork safety.
//!
//! A forked child inherits the parent's memory but none of its threads. A
//! loader created before the fork would wait forever on worker threads that
//! do not exist in the child, and joining them is undefined behaviour. A
//! `pthread_atfork` child hook bumps [`generation`]; every object that owns
//! threads records the generation it was made in, refuses to run in a child
//! (a `RuntimeError` saying what to do), and is leaked rather than joined
//! when the child drops it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn child_after_fork() {
    // Async-signal-safe: one atomic add, no allocation, no locks.
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Installs the hook (once per process; children inherit it).
pub(crate) fn install() {
    REGISTER.call_once(|| {
        // SAFETY: `child_after_fork` is an `extern "C"` function that only
        // performs an atomic add, which is async-signal-safe as required of
        // code that runs in a forked child of a multithreaded process.
        unsafe {
            libc::pthread_atfork(None, None, Some(child_after_fork));
        }
    });
}

/// How many forks separate this process from the one that loaded the module.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// The message for an object made before a fork and used after it.
pub(crate) const FORKED_MESSAGE: &str =
    "this mosaicrs loader was created before the process forked, and its Rust worker threads \
     do not exist in the child. Create the loader inside the child process, or use the \
     'spawn' start method; with torch.utils.data.DataLoader keep num_workers=0 (mosaicrs's \
     own Rust threads are the workers)";

/// The fork generation, for tests and for the Python side's own checks.
#[pyo3::pyfunction]
pub(crate) fn fork_generation() -> u64 {
    generation()
}
