//! The risk class of a simple command, from its program and arguments, for commands no
//! rule names. The tables are short and explicit; a policy's rules override them.

use crate::RiskClass;
use crate::command::SimpleCommand;

/// Programs that only read (given no argument that makes them write, see [`classify`]).
const READ_ONLY: &[&str] = &[
    ":",
    "basename",
    "cat",
    "cd",
    "cmp",
    "column",
    "comm",
    "cut",
    "date",
    "df",
    "diff",
    "dirname",
    "du",
    "echo",
    "egrep",
    "env",
    "false",
    "fgrep",
    "file",
    "find",
    "grep",
    "head",
    "hexdump",
    "id",
    "jq",
    "less",
    "ls",
    "md5sum",
    "more",
    "nl",
    "od",
    "printenv",
    "printf",
    "pwd",
    "readlink",
    "realpath",
    "rg",
    "sed",
    "seq",
    "sha1sum",
    "sha256sum",
    "sort",
    "stat",
    "tail",
    "test",
    "[",
    "tr",
    "tree",
    "true",
    "type",
    "uname",
    "uniq",
    "wc",
    "which",
    "whoami",
    "xxd",
];

/// `git` subcommands that only read.
const GIT_READ: &[&str] = &[
    "blame",
    "branch",
    "cat-file",
    "describe",
    "diff",
    "grep",
    "log",
    "ls-files",
    "ls-tree",
    "rev-parse",
    "shortlog",
    "show",
    "status",
    "tag",
];

/// `git` subcommands that reach the network.
const GIT_NETWORK: &[&str] = &["clone", "fetch", "ls-remote", "pull", "push", "submodule"];

/// Programs that reach the network whatever their arguments.
const NETWORK: &[&str] = &[
    "curl", "ftp", "nc", "ncat", "netcat", "scp", "sftp", "ssh", "telnet", "wget",
];

/// Package managers, and their subcommands that download or publish.
const PACKAGES: &[(&str, &[&str])] = &[
    ("pip", &["install", "download", "wheel"]),
    ("pip3", &["install", "download", "wheel"]),
    ("npm", &["install", "i", "ci", "add", "publish", "update"]),
    ("pnpm", &["install", "i", "add", "publish", "update"]),
    ("yarn", &["install", "add", "publish", "upgrade"]),
    ("cargo", &["install", "publish", "fetch", "update"]),
    ("go", &["get", "install"]),
    ("gem", &["install", "push"]),
    ("apt", &["install", "update", "upgrade"]),
    ("apt-get", &["install", "update", "upgrade"]),
    ("docker", &["pull", "push", "login"]),
];

/// Programs that use credentials of their own (cloud, forge, infrastructure and database
/// clients, package publishers).
const CREDENTIALS: &[&str] = &[
    "aws",
    "az",
    "gcloud",
    "gh",
    "gsutil",
    "helm",
    "kubectl",
    "mysql",
    "psql",
    "pulumi",
    "terraform",
    "twine",
    "vault",
];

/// Programs whose effect a checkpoint of the workspace cannot undo.
const DESTRUCTIVE: &[&str] = &[
    "dd", "halt", "kill", "killall", "mkfs", "pkill", "poweroff", "reboot", "shred", "shutdown",
    "wipefs",
];

/// The class of one simple command.
pub fn classify(command: &SimpleCommand) -> RiskClass {
    let program = command.program();
    let args: Vec<&str> = command.argv.iter().skip(1).map(String::as_str).collect();
    let has = |flags: &[&str]| args.iter().any(|a| flags.contains(a));
    let short = |letter: char| {
        args.iter()
            .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains(letter))
    };
    let base = match program {
        p if DESTRUCTIVE.contains(&p) || p.starts_with("mkfs.") => RiskClass::Destructive,
        "rm" if short('r') || short('R') || short('f') || has(&["--recursive", "--force"]) => {
            RiskClass::Destructive
        }
        "chmod" | "chown" | "chgrp" if short('R') || has(&["--recursive"]) => {
            RiskClass::Destructive
        }
        "git" => git(&args),
        p if NETWORK.contains(&p) => RiskClass::Network,
        "rsync" if args.iter().any(|a| a.contains(':')) => RiskClass::Network,
        p if CREDENTIALS.contains(&p) => RiskClass::CredentialUse,
        "find" if has(&["-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint"]) => {
            RiskClass::WorkspaceWrite
        }
        "sed" if short('i') || args.iter().any(|a| a.starts_with("--in-place")) => {
            RiskClass::WorkspaceWrite
        }
        p if READ_ONLY.contains(&p) => RiskClass::ReadOnly,
        p => match PACKAGES.iter().find(|(name, _)| *name == p) {
            Some((_, subcommands)) if args.iter().any(|a| subcommands.contains(a)) => {
                RiskClass::Network
            }
            _ => RiskClass::WorkspaceWrite,
        },
    };
    // A command that writes a file through a redirection writes the workspace at least.
    if !command.writes.is_empty() && base == RiskClass::ReadOnly {
        RiskClass::WorkspaceWrite
    } else {
        base
    }
}

fn git(args: &[&str]) -> RiskClass {
    // The subcommand is the first argument that is not an option (or an option's value).
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        // `-C DIR`, `-c KEY=VALUE` take a value.
        if matches!(args[i], "-C" | "-c") {
            i += 1;
        }
        i += 1;
    }
    let Some(sub) = args.get(i).copied() else {
        return RiskClass::ReadOnly;
    };
    let rest = &args[i + 1..];
    let forced = rest
        .iter()
        .any(|a| matches!(*a, "-f" | "--force" | "--force-with-lease") || a.starts_with("+"));
    match sub {
        "push" if forced => RiskClass::Destructive,
        "reset" if rest.contains(&"--hard") => RiskClass::Destructive,
        "clean" if rest.iter().any(|a| a.starts_with('-') && a.contains('f')) => {
            RiskClass::Destructive
        }
        s if GIT_NETWORK.contains(&s) => RiskClass::Network,
        s if GIT_READ.contains(&s) && rest.is_empty() => RiskClass::ReadOnly,
        "branch" | "tag" => RiskClass::WorkspaceWrite,
        s if GIT_READ.contains(&s) => RiskClass::ReadOnly,
        _ => RiskClass::WorkspaceWrite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse;

    #[test]
    fn commands_fall_in_the_classes_people_expect() {
        let table: &[(&str, RiskClass)] = &[
            ("ls -la", RiskClass::ReadOnly),
            ("cat a.txt", RiskClass::ReadOnly),
            ("git status", RiskClass::ReadOnly),
            ("git -C sub log --oneline", RiskClass::ReadOnly),
            ("git branch", RiskClass::ReadOnly),
            ("git branch new", RiskClass::WorkspaceWrite),
            ("echo hi > out.txt", RiskClass::WorkspaceWrite),
            ("sed -i s/a/b/ f", RiskClass::WorkspaceWrite),
            ("find . -delete", RiskClass::WorkspaceWrite),
            ("cargo build", RiskClass::WorkspaceWrite),
            ("rm notes.txt", RiskClass::WorkspaceWrite),
            ("rm -rf build", RiskClass::Destructive),
            ("git push --force origin main", RiskClass::Destructive),
            ("git push origin +main", RiskClass::Destructive),
            ("git reset --hard HEAD~1", RiskClass::Destructive),
            ("git push origin main", RiskClass::Network),
            ("git clone https://example.com/r.git", RiskClass::Network),
            ("curl -sS https://example.com", RiskClass::Network),
            ("pip install requests", RiskClass::Network),
            ("pip list", RiskClass::WorkspaceWrite),
            ("npm ci", RiskClass::Network),
            ("gh pr create", RiskClass::CredentialUse),
            ("terraform destroy -auto-approve", RiskClass::CredentialUse),
            ("psql -c 'drop table users'", RiskClass::CredentialUse),
            ("kill -9 1", RiskClass::Destructive),
            ("mkfs.ext4 /dev/sda", RiskClass::Destructive),
        ];
        for (line, want) in table {
            let p = parse(line);
            assert_eq!(classify(&p.commands[0]), *want, "{line}");
        }
    }
}
