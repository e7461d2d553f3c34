//! The package's allocator: a free list per power-of-two size class, fed
//! from pages the module grows. A freed block waits for the next request
//! of its class (nothing leaks: memory is bounded by the most each class
//! has held at once); blocks are never split or merged, which keeps this
//! to a few dozen instructions where a coalescing free list weighs
//! ~0.5 KB of WebAssembly. Allocation is rare here (a few per step), and
//! a block's rounding up costs at most its size again.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32::memory_grow;
use core::cell::UnsafeCell;
use core::ptr::null_mut;

const PAGE: usize = 65_536;

/// The heap; see the module.
pub struct Heap(UnsafeCell<Blocks>);

struct Blocks {
    /// The first free block of each class (0: none); each free block
    /// holds the address of the next.
    free: [usize; usize::BITS as usize],
    /// The unused rest of the pages grown so far: from `top` to `end`.
    top: usize,
    end: usize,
}

// SAFETY: the package's WebAssembly is single-threaded (built without
// `atomics`): one call at a time touches the heap.
unsafe impl Sync for Heap {}

impl Heap {
    pub const fn new() -> Heap {
        Heap(UnsafeCell::new(Blocks {
            free: [0; usize::BITS as usize],
            top: 0,
            end: 0,
        }))
    }
}

/// The class of a layout: blocks of 2^class bytes, at least 8 (a free
/// block's link).
fn class(layout: Layout) -> usize {
    let size = layout.size().max(8);
    (usize::BITS - (size - 1).leading_zeros()) as usize
}

unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded (see `Sync`), and no reference to the
        // blocks outlives this call.
        let blocks = unsafe { &mut *self.0.get() };
        let class = class(layout);
        let Some(&head) = blocks.free.get(class) else {
            return null_mut();
        };
        // Every block is aligned to 8 (sizes are multiples of 8 from page
        // boundaries), as much as the package's types need.
        if layout.align() > 8 {
            return null_mut();
        }
        if head != 0 {
            // SAFETY: a free block holds the address of the next.
            blocks.free[class] = unsafe { *(head as *const usize) };
            return head as *mut u8;
        }
        let size = 1usize << class;
        if blocks.top as u64 + size as u64 > blocks.end as u64 {
            // Room for the block (a power of two: whole pages past 64 KiB).
            let pages = size / PAGE + 1;
            let previous = memory_grow(0, pages);
            if previous == usize::MAX {
                return null_mut();
            }
            let grown = previous * PAGE;
            if grown != blocks.end {
                // Not after the rest (the first growth): start there.
                blocks.top = grown;
            }
            blocks.end = grown + pages * PAGE;
        }
        let start = blocks.top;
        blocks.top = start + size;
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`.
        let blocks = unsafe { &mut *self.0.get() };
        if let Some(head) = blocks.free.get_mut(class(layout)) {
            // SAFETY: the block is the caller's to give back, at least 8
            // bytes and aligned for a `usize`.
            unsafe { *(ptr as *mut usize) = *head };
            *head = ptr as usize;
        }
    }
}
