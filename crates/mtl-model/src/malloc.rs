//! Telling glibc's allocator to keep freed memory for reuse.
//!
//! Why: candle allocates a fresh buffer for every tensor op, many of them
//! larger than glibc's default mmap threshold, so each step maps pages,
//! faults them in zeroed and unmaps them again. On the 2-core machine this
//! project is measured on, that churn cost a fifth of a BiLSTM training
//! step (`cargo xtask bench train`). Keeping freed memory in the heap makes
//! the next step's buffers come from memory that is already mapped.

/// Raises the mmap threshold to glibc's maximum (32 MiB on 64-bit), and the
/// trim threshold and top pad so that freed memory stays in the process.
/// Call it first thing in `main`, before any thread starts. Elsewhere than
/// on glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MIB: libc::c_int = 1 << 20;
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before other threads exist. A refused value leaves the default.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MIB);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 512 * MIB);
            libc::mallopt(libc::M_TOP_PAD, 64 * MIB);
        }
    }
}
