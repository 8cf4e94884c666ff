//! `ruvector-storage`: see the library's layout map in `src/lib.rs`.

/// glibc malloc with its arenas capped and free pages handed back every
/// metrics tick (mimalloc with `RUVECTOR_STORAGE_ALLOCATOR=mimalloc`): see
/// `alloc::Allocator` for why.
#[global_allocator]
static GLOBAL: ruvector_storage::alloc::Allocator = ruvector_storage::alloc::Allocator;

fn main() -> std::process::ExitCode {
    // Before any thread exists (RocksDB's C++ heap is glibc's whichever
    // allocator Rust uses).
    ruvector_storage::alloc::configure();
    ruvector_storage::cli::main()
}
