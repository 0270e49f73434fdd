//! Memory for the row blocks a loader keeps for its whole life, carved from
//! large chunks backed by transparent huge pages.
//!
//! A global shuffle reads one random row per sample from blocks that
//! together hold the whole dataset's features. With 4 KiB pages nearly every
//! such read also misses the TLB and walks the page table; a record batch's
//! block (512 KiB for 8,192 rows of 64 bytes) is too small for a 2 MiB page
//! of its own. Blocks carved one after another from 2 MiB-aligned chunks
//! marked `MADV_HUGEPAGE` share huge pages, as a numpy array of the same
//! rows does (numpy asks for huge pages for arrays of 4 MiB and more).
//!
//! Carving only moves forward: the space of a block is given back when the
//! chunk's last block is dropped. That suits blocks kept until their loader
//! is dropped, not blocks that come and go.

use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// A huge page, the alignment of a chunk.
const HUGE_PAGE: usize = 2 << 20;

/// Size of a shared chunk; a request of a quarter of it or more gets a chunk
/// of its own, so that at most a quarter of a chunk is left unused when the
/// next block does not fit.
const CHUNK: usize = 32 << 20;

/// Alignment of each piece: a cache line.
const LINE: usize = 64;

/// Hands out disjoint, zero-filled pieces of huge-page-backed chunks.
#[derive(Debug, Default)]
pub(crate) struct RowArena {
    /// The chunk being carved and the bytes of it already handed out.
    current: Mutex<Option<(Arc<Chunk>, usize)>>,
}

impl RowArena {
    /// A zero-filled piece of `bytes` bytes aligned to a cache line, or
    /// `None` where the system gives no such memory (then the caller
    /// allocates as usual).
    pub(crate) fn piece(&self, bytes: usize) -> Option<Piece> {
        let bytes = bytes.max(1).next_multiple_of(LINE);
        if bytes >= CHUNK / 4 {
            let chunk = Arc::new(Chunk::map(bytes)?);
            return Some(Piece::of(chunk, 0, bytes));
        }
        // A panic elsewhere cannot leave the pair half-changed.
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((chunk, used)) = current.as_mut() {
            if *used + bytes <= chunk.len {
                let piece = Piece::of(Arc::clone(chunk), *used, bytes);
                *used += bytes;
                return Some(piece);
            }
        }
        let chunk = Arc::new(Chunk::map(CHUNK)?);
        *current = Some((Arc::clone(&chunk), bytes));
        Some(Piece::of(chunk, 0, bytes))
    }
}

/// An anonymous mapping whose first `len` bytes start on a huge page.
#[derive(Debug)]
struct Chunk {
    /// The whole mapping (with the slack in front of the aligned start).
    map: NonNull<u8>,
    map_len: usize,
    /// The aligned start and the usable length.
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: a chunk is plain memory owned by this value; the pieces cut from
// it are disjoint, and each piece's owner alone writes its bytes.
unsafe impl Send for Chunk {}
// SAFETY: as above; `Chunk` itself only reads its own fields.
unsafe impl Sync for Chunk {}

impl Chunk {
    /// `len` bytes (zero-filled by the kernel) from a huge-page boundary;
    /// `None` where mapping fails or the platform has no such mapping.
    #[cfg(target_os = "linux")]
    fn map(len: usize) -> Option<Chunk> {
        let map_len = len.checked_add(HUGE_PAGE)?;
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory; failure is checked below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return None;
        }
        let map = NonNull::new(map.cast::<u8>())?;
        let skip = map.as_ptr().align_offset(HUGE_PAGE).min(HUGE_PAGE);
        // SAFETY: `skip < HUGE_PAGE` and the mapping is `len + HUGE_PAGE`
        // bytes long, so `start..start + len` lies within it.
        let start = unsafe { map.add(skip) };
        // SAFETY: the range lies within the mapping made above; the advice
        // only changes how the kernel backs it (a kernel without
        // transparent huge pages refuses, with no effect).
        unsafe {
            libc::madvise(start.as_ptr().cast(), len, libc::MADV_HUGEPAGE);
        }
        Some(Chunk {
            map,
            map_len,
            start,
            len,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn map(_len: usize) -> Option<Chunk> {
        None
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        // SAFETY: the mapping was made by `map` with this address and length,
        // and no piece outlives the chunk (each holds an `Arc` of it).
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

/// Bytes of a chunk that no other piece overlaps; the chunk lives as long
/// as its pieces.
#[derive(Debug)]
pub(crate) struct Piece {
    chunk: Arc<Chunk>,
    offset: usize,
    len: usize,
}

// SAFETY: a piece is the only handle on its bytes (pieces of one chunk are
// disjoint), so moving it to another thread is moving owned memory.
unsafe impl Send for Piece {}
// SAFETY: shared references only read the bytes (writes need `&mut`).
unsafe impl Sync for Piece {}

impl Piece {
    /// Bytes `offset..offset + len` of `chunk` (within its length: the
    /// arena hands out no more).
    fn of(chunk: Arc<Chunk>, offset: usize, len: usize) -> Piece {
        Piece { chunk, offset, len }
    }

    /// The first byte.
    fn at(&self) -> *mut u8 {
        // SAFETY: `offset + len <= chunk.len`, so the sum stays within the
        // chunk's mapping.
        unsafe { self.chunk.start.as_ptr().add(self.offset) }
    }

    /// The piece's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The piece as a mutable byte slice.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `at()..at() + len` lies in the chunk, which `self.chunk`
        // keeps mapped; the kernel zero-filled it, so every byte is
        // initialized; no other piece overlaps it and `&mut self` makes
        // this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.at(), self.len) }
    }

    /// The piece as a byte slice.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: as in `bytes_mut`, with only shared references alive.
        unsafe { std::slice::from_raw_parts(self.at(), self.len) }
    }

    /// The chunk start, for tests.
    #[cfg(test)]
    fn chunk_start(&self) -> usize {
        self.chunk.start.as_ptr() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_disjoint_zeroed_aligned_and_outlive_the_arena() {
        let arena = RowArena::default();
        let mut pieces: Vec<Piece> = [100, 4096, 1 << 20, CHUNK / 4, 70, CHUNK - 10]
            .into_iter()
            .map(|n| arena.piece(n).expect("an anonymous mapping"))
            .collect();
        drop(arena);
        let mut spans = Vec::new();
        for (k, piece) in pieces.iter_mut().enumerate() {
            assert_eq!(piece.chunk_start() % HUGE_PAGE, 0);
            let bytes = piece.bytes_mut();
            assert_eq!(bytes.as_ptr() as usize % LINE, 0);
            assert!(bytes.iter().all(|&b| b == 0), "piece {k} is zero-filled");
            bytes.fill(k as u8 + 1);
            spans.push((bytes.as_ptr() as usize, bytes.len()));
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "pieces overlap: {w:?}");
        }
        for (k, piece) in pieces.iter().enumerate() {
            assert!(piece.bytes().iter().all(|&b| b == k as u8 + 1));
        }
        // The first three share a chunk; the quarter-chunk one has its own.
        assert_eq!(pieces[0].chunk_start(), pieces[2].chunk_start());
        assert_ne!(pieces[3].chunk_start(), pieces[0].chunk_start());
    }
}
