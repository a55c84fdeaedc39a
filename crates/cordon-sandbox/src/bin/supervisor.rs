//! The supervisor as its own program, for the sandbox crate's tests. The `cordon` binary
//! runs the same code as `cordon __supervisor`, and installs it as `cordon-supervisor`.

fn main() -> std::process::ExitCode {
    cordon_sandbox::supervisor::main()
}
