//! `ruvector-storage`: see the library's layout map in `src/lib.rs`.

/// mimalloc: large request buffers and write batches are allocated on one
/// thread and freed on another; glibc's per-thread arenas turn that into
/// mmap/munmap churn and page faults.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ruvector_storage::cli::main()
}
