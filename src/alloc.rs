//! The process's memory as the kernel and the allocators see it: resident
//! set size, the allocators' own figures (glibc `mallinfo2` for the C/C++
//! heap, mimalloc's commit for the Rust heap), and the two knobs that keep
//! freed memory from staying resident — a cap on malloc arenas, and handing
//! free pages back (`malloc_trim`, `mi_collect`) after a job that allocated
//! a lot. Ground floor: knows nothing of the store.
//!
//! Why these knobs: glibc gives each thread that contends for the heap an
//! arena of its own, up to 8 per core, and returns an arena's free memory to
//! the kernel only from the top of its heap. A daemon with tokio, actix and
//! RocksDB threads, whose jobs (backups, restores, drills, verifies) allocate
//! and free hundreds of MB on whichever thread runs them, keeps that memory
//! resident in many arenas: RSS grows while the live heap does not.

/// The binary's global allocator: the system's (glibc, arenas capped, free
/// pages handed back every second by a [`Trimmer`]), or mimalloc when
/// `RUVECTOR_STORAGE_ALLOCATOR=mimalloc` — chosen once, at the first
/// allocation (before `main`), and never changed, so every block is freed
/// by the allocator that made it. The switch exists to compare the two on
/// one build (`bench --soak`): under the soak's load and schedules
/// mimalloc's median RSS went 127 → 198 MiB in 4 minutes and was still
/// growing; glibc with trimming stayed flat but for the block cache
/// filling (README, Memory).
pub struct Allocator;

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;
static CHOICE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(UNDECIDED);

fn choice() -> u8 {
    use std::sync::atomic::Ordering::Relaxed;
    let c = CHOICE.load(Relaxed);
    if c != UNDECIDED {
        return c;
    }
    // SAFETY: getenv does not allocate; the name is NUL-terminated and the
    // value, when there is one, is read before anything can change it
    // (this runs at the first allocation, before `main`).
    let c = unsafe {
        let v = libc::getenv(c"RUVECTOR_STORAGE_ALLOCATOR".as_ptr());
        if !v.is_null() && std::ffi::CStr::from_ptr(v).to_bytes() == b"mimalloc" {
            MIMALLOC
        } else {
            SYSTEM
        }
    };
    // Threads racing here read the same environment: they agree.
    CHOICE.store(c, Relaxed);
    c
}

/// Which allocator [`Allocator`] uses: "system" or "mimalloc" (read from the
/// environment through `std::env` when nothing was allocated through it
/// yet, as in a library test, whose global allocator is the default one).
pub fn allocator_name() -> &'static str {
    let c = match CHOICE.load(std::sync::atomic::Ordering::Relaxed) {
        UNDECIDED => match std::env::var_os("RUVECTOR_STORAGE_ALLOCATOR") {
            Some(v) if v == "mimalloc" => MIMALLOC,
            _ => SYSTEM,
        },
        c => c,
    };
    if c == MIMALLOC {
        "mimalloc"
    } else {
        "system"
    }
}

// SAFETY: every call goes to the one allocator chosen before the first
// allocation, which upholds GlobalAlloc's contract itself.
unsafe impl std::alloc::GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        match choice() {
            SYSTEM => unsafe { std::alloc::System.alloc(layout) },
            _ => unsafe { mimalloc::MiMalloc.alloc(layout) },
        }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        match choice() {
            SYSTEM => unsafe { std::alloc::System.alloc_zeroed(layout) },
            _ => unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) },
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        match choice() {
            SYSTEM => unsafe { std::alloc::System.dealloc(ptr, layout) },
            _ => unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) },
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        match choice() {
            SYSTEM => unsafe { std::alloc::System.realloc(ptr, layout, new) },
            _ => unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new) },
        }
    }
}

/// Arenas the allocator may use unless `MALLOC_ARENA_MAX` says otherwise.
pub const ARENA_MAX: i32 = 2;

/// Cap the allocator's arenas (at start, before the threads exist). An
/// explicit `MALLOC_ARENA_MAX` in the environment wins (glibc reads it
/// itself). Returns the cap in force, if this build's allocator has one.
pub fn configure() -> Option<i32> {
    if let Some(n) = std::env::var("MALLOC_ARENA_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Some(n);
    }
    glibc::set_arena_max(ARENA_MAX).then_some(ARENA_MAX)
}

/// Hand free heap pages back to the kernel: all of glibc's heap, and the
/// calling thread's mimalloc heap (`mi_collect` reaches no other thread's).
pub fn trim() {
    glibc::trim();
    // SAFETY: mi_collect only walks mimalloc's own free lists.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Hands free heap pages back ([`trim`]) every `every` on a thread of its
/// own, until dropped. Jobs allocate and free tens of MB within seconds; a
/// trim only at the metrics tick (every 10 s) let the heap refill between
/// ticks, so the median RSS sat near the jobs' peak (README, Memory).
pub struct Trimmer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trimmer {
    /// Start trimming; `None` when `every` is zero (trimming off) or the
    /// thread cannot be spawned (said in the log).
    pub fn start(every: std::time::Duration) -> Option<Trimmer> {
        use std::sync::atomic::Ordering;
        if every.is_zero() {
            return None;
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("heap-trim".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(every);
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let t = std::time::Instant::now();
                    trim();
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    if ms >= 50.0 {
                        tracing::warn!(ms, "handing free heap pages back took long");
                    }
                }
            });
        match spawned {
            Ok(thread) => Some(Trimmer {
                stop,
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the heap trimmer; free pages stay resident until a job ends");
                None
            }
        }
    }
}

impl Drop for Trimmer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The allocators' own figures, bytes. RocksDB's C++ heap (memtables,
/// caches, table readers) is always glibc's; Rust's is glibc's too unless
/// [`Allocator`] chose mimalloc.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AllocatorStats {
    /// glibc malloc: in use by the program (allocated and not freed).
    pub malloc_allocated: u64,
    /// glibc malloc: taken from the kernel (arenas plus mmapped blocks),
    /// `malloc_allocated` plus the free memory it keeps.
    pub malloc_resident: u64,
    /// mimalloc: memory it has committed (in use plus what it keeps).
    pub mimalloc_committed: u64,
}

impl AllocatorStats {
    /// Memory both allocators hold from the kernel.
    pub fn resident(&self) -> u64 {
        self.malloc_resident + self.mimalloc_committed
    }
}

/// The allocators' figures (None where glibc's are not available).
pub fn allocator() -> Option<AllocatorStats> {
    let (malloc_allocated, malloc_resident) = glibc::stats()?;
    let mut committed = 0usize;
    // SAFETY: every out-parameter but one is null (allowed); `committed`
    // is a valid usize for the call to write.
    unsafe {
        libmimalloc_sys::mi_process_info(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut committed,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    Some(AllocatorStats {
        malloc_allocated,
        malloc_resident,
        mimalloc_committed: committed as u64,
    })
}

/// This process's resident set size, bytes (`/proc/self/statm`).
pub fn process_rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The resident set size of another process, bytes (`/proc/PID/statm`).
pub fn rss_of(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {

    pub fn set_arena_max(n: i32) -> bool {
        // SAFETY: mallopt only sets an allocator parameter.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
    }

    pub fn trim() {
        // SAFETY: malloc_trim walks the allocator's own free lists.
        unsafe { libc::malloc_trim(0) };
    }

    /// (allocated, resident)
    pub fn stats() -> Option<(u64, u64)> {
        // SAFETY: mallinfo2 only reads the allocator's counters (under its
        // locks) into the returned struct.
        let m = unsafe { libc::mallinfo2() };
        Some(((m.uordblks + m.hblkhd) as u64, (m.arena + m.hblkhd) as u64))
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {

    pub fn set_arena_max(_n: i32) -> bool {
        false
    }

    pub fn trim() {}

    pub fn stats() -> Option<(u64, u64)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figures_move_with_the_heap() {
        let rss = process_rss().expect("linux has /proc/self/statm");
        assert!(rss > 1 << 20, "{rss}");
        assert_eq!(rss_of(std::process::id()).map(|r| r > 0), Some(true));
        // 256 MiB glibc must account for while it is live. The figures are
        // the whole process's and other tests run alongside: the check is
        // tried a few times and must hold once (a broken figure never does).
        let accounted = (0..5).any(|_| {
            let Some(before) = allocator().map(|a| a.malloc_allocated) else {
                return false;
            };
            let block = std::hint::black_box(vec![1u8; 256 << 20]);
            let during = allocator().map_or(0, |a| a.malloc_allocated);
            drop(block);
            let after = allocator().map_or(u64::MAX, |a| a.malloc_allocated);
            during >= before + (200 << 20) && after.saturating_add(200 << 20) <= during
        });
        assert!(accounted, "glibc's figures did not follow a 256 MiB block");
        // mimalloc's commit follows a block taken from it directly.
        let before = allocator().expect("glibc").mimalloc_committed;
        // SAFETY: a fresh 64 MiB block, written whole, then freed once.
        unsafe {
            let p = libmimalloc_sys::mi_malloc(64 << 20) as *mut u8;
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 1, 64 << 20);
            let during = allocator().expect("glibc").mimalloc_committed;
            assert!(during >= before + (60 << 20), "{before} → {during}");
            libmimalloc_sys::mi_free(p as *mut std::ffi::c_void);
        }
    }
}
