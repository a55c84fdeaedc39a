//! The sandbox supervisor as a program of its own, installed beside `cordon`: it starts in a
//! fraction of the time the whole `cordon` binary takes, and it is also every command's
//! shim. `cordon` uses it when it reports the same build, and runs itself as the supervisor
//! (`cordon __supervisor`) otherwise.

fn main() -> std::process::ExitCode {
    cordon_sandbox::supervisor::main()
}
