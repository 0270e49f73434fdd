//! Native objects owned by the JVM through `long` handles: task writers and scans.
//!
//! A handle is `Box::into_raw` of a [`Slot`], cast to `jlong`. The JVM keeps
//! it in an `AtomicLong` and swaps it to 0 before handing it to the one
//! export that consumes it, so a handle is freed exactly once, and 0 always
//! means "closed": [`Handle::close`] of 0 does nothing, so closing is
//! idempotent. Every slot starts with the tag of its kind, which each use
//! checks, so a writer handle passed where a scan is expected is an error,
//! not a misread object.

use std::marker::PhantomData;

use jni::sys::jlong;
use mosaicrs::Error;

use crate::error::{BridgeError, BridgeResult};

/// A kind of object that the JVM may own through a [`Handle`].
pub(crate) trait Owned: Sized {
    /// What the object is, for messages ("task writer", "scan").
    const WHAT: &'static str;
    /// Distinct per kind; stored first in every slot.
    const TAG: u64;
}

/// The heap cell behind a handle: the kind's tag, then the object.
///
/// `repr(C)` puts `tag` at offset 0 for every `T`, so the tag of any slot
/// can be read through a pointer to a slot of another kind.
#[repr(C)]
struct Slot<T> {
    tag: u64,
    value: T,
}

/// A JVM-held handle to a `T` (0 once closed).
pub(crate) struct Handle<T: Owned> {
    raw: jlong,
    kind: PhantomData<fn() -> T>,
}

// Not derived: a derive would require `T: Copy`; the handle is a number.
impl<T: Owned> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Owned> Copy for Handle<T> {}

impl<T: Owned> Handle<T> {
    /// Moves `value` to the heap and returns the handle the JVM will hold.
    pub(crate) fn create(value: T) -> jlong {
        Box::into_raw(Box::new(Slot { tag: T::TAG, value })) as jlong
    }

    /// The handle the JVM passed in.
    pub(crate) fn from_raw(raw: jlong) -> Self {
        Handle {
            raw,
            kind: PhantomData,
        }
    }

    fn closed() -> BridgeError {
        Error::Internal(format!(
            "the native mosaicrs {} was already closed (handle 0); this is a connector bug",
            T::WHAT
        ))
        .into()
    }

    /// The slot pointer, after checking the tag.
    ///
    /// # Safety
    ///
    /// `self.raw` must be 0 or a value returned by [`Handle::create`] (of any
    /// kind) that has not been consumed yet.
    unsafe fn slot(&self) -> BridgeResult<*mut Slot<T>> {
        if self.raw == 0 {
            return Err(Self::closed());
        }
        let ptr = self.raw as *mut Slot<T>;
        // SAFETY: by this function's contract `ptr` points to a live slot;
        // `tag` is its first field whatever its kind (`repr(C)`).
        let tag = unsafe { std::ptr::addr_of!((*ptr).tag).read() };
        if tag != T::TAG {
            return Err(Error::Internal(format!(
                "a handle passed as a native mosaicrs {} is not one; this is a connector bug",
                T::WHAT
            ))
            .into());
        }
        Ok(ptr)
    }

    /// Borrows the object behind the handle.
    ///
    /// # Safety
    ///
    /// The handle must be 0 or live (from [`Handle::create`], not yet passed
    /// to [`Handle::take`] or [`Handle::close`]), and no other thread may use
    /// it during the borrow. The JVM side guarantees this: a task's writer or
    /// scan is used by its task thread only, and the handle is swapped to 0
    /// before it is consumed.
    pub(crate) unsafe fn borrow<'a>(self) -> BridgeResult<&'a mut T> {
        // SAFETY: this function's contract is `slot`'s.
        let ptr = unsafe { self.slot() }?;
        // SAFETY: `ptr` is a live slot of kind `T` (tag checked), used by
        // this thread only (this function's contract).
        Ok(unsafe { &mut (*ptr).value })
    }

    /// Takes back ownership of the object; 0 is an error.
    ///
    /// # Safety
    ///
    /// As for [`Handle::borrow`]; afterwards the handle must not be used
    /// again (the JVM has already replaced it with 0).
    pub(crate) unsafe fn take(self) -> BridgeResult<T> {
        // SAFETY: this function's contract is `slot`'s.
        let ptr = unsafe { self.slot() }?;
        // SAFETY: `ptr` came from `Box::into_raw` in `create` for a `Slot<T>`
        // (tag checked) and is consumed here exactly once.
        Ok(unsafe { Box::from_raw(ptr) }.value)
    }

    /// Frees the object; a handle of 0 (already closed) is ignored.
    ///
    /// # Safety
    ///
    /// As for [`Handle::take`].
    pub(crate) unsafe fn close(self) -> BridgeResult<()> {
        if self.raw == 0 {
            return Ok(());
        }
        // SAFETY: this function's contract is `take`'s.
        drop(unsafe { self.take() }?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counter(u32);
    impl Owned for Counter {
        const WHAT: &'static str = "counter";
        const TAG: u64 = 0x6d6f_7361_6963_0001;
    }
    struct Other;
    impl Owned for Other {
        const WHAT: &'static str = "other";
        const TAG: u64 = 0x6d6f_7361_6963_0002;
    }

    #[test]
    fn a_handle_borrows_takes_and_closes_once() {
        let raw = Handle::create(Counter(1));
        let handle = Handle::<Counter>::from_raw(raw);
        // SAFETY: `raw` is live and used by this thread only.
        unsafe {
            handle.borrow().unwrap().0 += 1;
            assert_eq!(handle.borrow().unwrap().0, 2);
            assert!(Handle::<Other>::from_raw(raw).borrow().is_err());
            assert_eq!(handle.take().unwrap().0, 2);
        }
        let zero = Handle::<Counter>::from_raw(0);
        // SAFETY: 0 is never dereferenced.
        unsafe {
            assert!(zero.borrow().is_err());
            assert!(zero.take().is_err());
            zero.close().unwrap();
            zero.close().unwrap();
        }
        let raw = Handle::create(Counter(3));
        // SAFETY: `raw` is live; closed once, then its copy is 0.
        unsafe { Handle::<Counter>::from_raw(raw).close().unwrap() };
    }
}
