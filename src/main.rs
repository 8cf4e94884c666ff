//! `ruvector-storage`: see the library's layout map in `src/lib.rs`.

fn main() -> std::process::ExitCode {
    ruvector_storage::cli::main()
}
