//! Turning Rust failures into Java exceptions.
//!
//! Every export runs its body through [`guard`]. An `Err` becomes an
//! exception of the class that matches the error's category; a panic becomes
//! `MosaicrsInternalException`. Either way the export returns a neutral value
//! and the JVM sees the pending exception when the native call returns.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use jni::JNIEnv;
use mosaicrs::ErrorCategory;

/// Thrown for bad options, schemas, save-mode conflicts: the caller's input.
pub(crate) const INVALID_INPUT_CLASS: &str = "io/mosaicrs/spark/jni/MosaicrsInvalidInputException";
/// Thrown for missing, unreadable or corrupt files and refused OS calls.
pub(crate) const IO_CLASS: &str = "io/mosaicrs/spark/jni/MosaicrsIOException";
/// Thrown when another writer changed the dataset between this write's read
/// of the index and its commit (a subclass of the I/O exception).
pub(crate) const CONFLICT_CLASS: &str = "io/mosaicrs/spark/jni/MosaicrsConflictException";
/// Thrown when the version asked for (`versionAsOf`, `timestampAsOf`) is
/// not kept: never committed, or removed by vacuum (a subclass of the I/O
/// exception).
pub(crate) const VERSION_NOT_FOUND_CLASS: &str =
    "io/mosaicrs/spark/jni/MosaicrsVersionNotFoundException";
/// Thrown for bugs: broken invariants, JNI failures, panics.
pub(crate) const INTERNAL_CLASS: &str = "io/mosaicrs/spark/jni/MosaicrsInternalException";

/// Every exception class an export throws, by what it stands for (the
/// [`ErrorCategory`] names, `Conflict` and `VersionNotFound`).
pub(crate) const EXCEPTION_CLASSES: [(&str, &str); 5] = [
    ("InvalidInput", INVALID_INPUT_CLASS),
    ("Io", IO_CLASS),
    ("Conflict", CONFLICT_CLASS),
    ("VersionNotFound", VERSION_NOT_FOUND_CLASS),
    ("Internal", INTERNAL_CLASS),
];

/// Everything an export can fail with.
#[derive(Debug)]
pub(crate) enum BridgeError {
    /// An error from the mosaicrs library.
    Core(mosaicrs::Error),
    /// A JNI call failed; if it left a Java exception pending, that one is kept.
    Jni(jni::errors::Error),
}

impl From<mosaicrs::Error> for BridgeError {
    fn from(e: mosaicrs::Error) -> Self {
        BridgeError::Core(e)
    }
}

impl From<jni::errors::Error> for BridgeError {
    fn from(e: jni::errors::Error) -> Self {
        BridgeError::Jni(e)
    }
}

/// Result type of the code behind the exports.
pub(crate) type BridgeResult<T> = Result<T, BridgeError>;

impl BridgeError {
    /// Binary name of the Java exception class for this error.
    pub(crate) fn exception_class(&self) -> &'static str {
        match self {
            BridgeError::Core(mosaicrs::Error::Conflict { .. }) => CONFLICT_CLASS,
            BridgeError::Core(mosaicrs::Error::VersionNotFound { .. }) => VERSION_NOT_FOUND_CLASS,
            BridgeError::Core(e) => match e.category() {
                ErrorCategory::InvalidInput => INVALID_INPUT_CLASS,
                ErrorCategory::Io => IO_CLASS,
                ErrorCategory::Internal => INTERNAL_CLASS,
            },
            BridgeError::Jni(_) => INTERNAL_CLASS,
        }
    }

    /// The message the Java exception carries.
    pub(crate) fn message(&self) -> String {
        match self {
            BridgeError::Core(e) => e.to_string(),
            BridgeError::Jni(e) => format!("JNI call failed in the mosaicrs native library: {e}"),
        }
    }
}

thread_local! {
    /// Where and with what backtrace this thread last panicked, recorded by
    /// the panic hook for the exception that [`guard`] throws.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static PANIC_HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that records the panic's
/// location and a backtrace for the Java exception, then runs the hook that
/// was there before (by default, printing to the executor's stderr).
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let trace = Backtrace::force_capture();
            LAST_PANIC.with(|last| {
                *last.borrow_mut() = Some(format!("{location}\nRust backtrace:\n{trace}"));
            });
            previous(info);
        }));
    });
}

/// Runs an export's body: returns its value, or throws and returns `on_error`.
///
/// Panics are caught here, so none crosses the FFI boundary (which would
/// abort the executor's JVM); the exception carries the panic's message,
/// location and Rust backtrace.
pub(crate) fn guard<'local, T>(
    env: &mut JNIEnv<'local>,
    on_error: T,
    body: impl FnOnce(&mut JNIEnv<'local>) -> BridgeResult<T>,
) -> T {
    install_panic_hook();
    match catch_unwind(AssertUnwindSafe(|| body(env))) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            throw(env, error.exception_class(), &error.message());
            on_error
        }
        Err(payload) => {
            let detail = LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_default();
            let message = format!(
                "panic in the mosaicrs native library: {}{detail}",
                panic_message(payload.as_ref())
            );
            throw(env, INTERNAL_CLASS, &message);
            on_error
        }
    }
}

/// Throws `class(message)` unless a Java exception is already pending.
fn throw(env: &mut JNIEnv<'_>, class: &str, message: &str) {
    // A pending exception came from the JVM itself (for example an
    // OutOfMemoryError during a JNI call) and says more than we could.
    if env.exception_check().unwrap_or(false) {
        return;
    }
    if env.throw_new(class, message).is_err() {
        // Our exception class could not be instantiated (a broken jar): make
        // sure the JVM still sees a failure, with the message.
        let _ = env.exception_clear();
        let _ = env.throw_new("java/lang/RuntimeException", message);
    }
}

/// The text of a panic payload (`&str` or `String`), if it has one.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_map_to_specific_exception_classes() {
        let invalid = BridgeError::from(mosaicrs::Error::InvalidArgument("shardSize".into()));
        assert_eq!(invalid.exception_class(), INVALID_INPUT_CLASS);
        assert!(invalid.message().contains("shardSize"));

        let io = BridgeError::from(mosaicrs::Error::MissingShard {
            path: "/d/part-x.arrow".into(),
        });
        assert_eq!(io.exception_class(), IO_CLASS);
        assert!(io.message().contains("/d/part-x.arrow"));

        let conflict = BridgeError::from(mosaicrs::Error::Conflict {
            path: "/d".into(),
            detail: "the index was replaced during the commit".into(),
        });
        assert_eq!(conflict.exception_class(), CONFLICT_CLASS);
        assert!(conflict.message().contains("replaced during the commit"));

        let gone = BridgeError::from(mosaicrs::Error::VersionNotFound {
            path: "/d".into(),
            version: 3,
            oldest_kept: Some(5),
        });
        assert_eq!(gone.exception_class(), VERSION_NOT_FOUND_CLASS);
        assert!(gone.message().contains("version 3"), "{}", gone.message());

        let internal = BridgeError::from(mosaicrs::Error::Internal("bug".into()));
        assert_eq!(internal.exception_class(), INTERNAL_CLASS);

        let jni = BridgeError::from(jni::errors::Error::NullPtr("env"));
        assert_eq!(jni.exception_class(), INTERNAL_CLASS);
    }

    #[test]
    fn the_hook_records_location_and_backtrace() {
        install_panic_hook();
        let _ = catch_unwind(|| panic!("recorded"));
        let detail = LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap();
        assert!(detail.contains("error.rs"), "{detail}");
        assert!(detail.contains("Rust backtrace"), "{detail}");
    }

    #[test]
    fn panic_payloads_keep_their_text() {
        let caught = catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "boom 7");
        let caught = catch_unwind(|| std::panic::panic_any(42_u8)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "(no message)");
    }
}
