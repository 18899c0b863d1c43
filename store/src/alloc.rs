//! Memory accounting: a counting wrapper around the system allocator.
//!
//! Redis counts every allocation (zmalloc) to report `used_memory` and enforce `maxmemory`. The
//! production binary installs [`CountingAlloc`] as the global allocator; the count is one relaxed
//! atomic add per allocation. Where it is not installed (unit tests), `used_memory` reads 0 and
//! `maxmemory` never triggers. In simulation all nodes share one process, so the figure is the
//! process's, not a node's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static USED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

pub struct CountingAlloc;

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            USED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        USED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            USED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            USED.fetch_sub(layout.size(), Ordering::Relaxed);
            USED.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes currently allocated through the counting allocator.
pub fn used_memory() -> usize {
    USED.load(Ordering::Relaxed)
}

/// Updates and returns the peak (called from the cron and INFO, not per allocation).
pub fn peak_memory() -> usize {
    let used = used_memory();
    PEAK.fetch_max(used, Ordering::Relaxed).max(used)
}
