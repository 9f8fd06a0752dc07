//! The `cargo-hot` binary: everything lives in the library; this only hands it the arguments.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The reaper is this same executable started with a marker argument, so that killing
    // cargo-hot (even with SIGKILL) still takes every target's process group down.
    if args
        .get(1)
        .is_some_and(|a| a == cargo_hot::process::REAPER_ARG)
    {
        cargo_hot::process::reaper_main();
    }
    std::process::exit(cargo_hot::main_with_args(args));
}
