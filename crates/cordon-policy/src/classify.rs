//! The risk class of a simple command, from its program and arguments, for commands no
//! rule names. The tables are short and explicit; a policy's rules override them.

use crate::RiskClass;
use crate::command::SimpleCommand;

/// Programs that only read, whatever their arguments (none runs another program or writes
/// a file an argument names; `sed`, `sort`, `find`, `rg` and pagers are judged apart).
const READ_ONLY: &[&str] = &[
    ":",
    "[",
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
    "false",
    "fgrep",
    "file",
    "grep",
    "head",
    "hexdump",
    "id",
    "jq",
    "ls",
    "md5sum",
    "nl",
    "od",
    "printenv",
    "printf",
    "pwd",
    "readlink",
    "realpath",
    "seq",
    "sha1sum",
    "sha256sum",
    "stat",
    "tail",
    "test",
    "tr",
    "true",
    "type",
    "uname",
    "wc",
    "which",
    "whoami",
];

/// Environment variables that make programs run other code, or other programs than named.
const CODE_VARIABLES: &[&str] = &[
    "BASH_ENV",
    "EDITOR",
    "ENV",
    "GIT_ASKPASS",
    "GIT_EDITOR",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "IFS",
    "LD_AUDIT",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "LESSCLOSE",
    "LESSOPEN",
    "MANPAGER",
    "NODE_OPTIONS",
    "PAGER",
    "PATH",
    "PERL5OPT",
    "PROMPT_COMMAND",
    "PS4",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "SSH_ASKPASS",
    "VISUAL",
];

/// Why `command` may run code its words do not show (a sed `e` command, `rg --pre`, git
/// configuration, an environment variable that loads code), or `None`.
pub fn runs_other_code(command: &SimpleCommand) -> Option<String> {
    if let Some(var) = command.env.iter().find(|v| {
        CODE_VARIABLES.contains(&v.as_str()) || v.starts_with("GIT_CONFIG") || v.starts_with("LD_")
    }) {
        return Some(format!(
            "the environment variable {var}, which can make a program run other code"
        ));
    }
    let args: Vec<&str> = command.argv.iter().skip(1).map(String::as_str).collect();
    match command.program() {
        "git" => {
            let globals = &args[..args.len() - command.rule_args().len()];
            let configured = globals
                .iter()
                .any(|a| a.starts_with("-c") || a.starts_with("--config-env"));
            let pager = command
                .rule_args()
                .iter()
                .any(|a| a.starts_with("-O") || a.starts_with("--open-files-in-pager"));
            (configured || pager).then(|| {
                "git configuration or a pager given on the command line, which can run programs"
                    .into()
            })
        }
        "rg" if args.iter().any(|a| a.starts_with("--pre")) => {
            Some("rg --pre, which runs a program on every file".into())
        }
        "sed"
            if sed_scripts(&args)
                .iter()
                .any(|s| sed_commands(s).contains(&'e')) =>
        {
            Some("sed's e command, which runs its text".into())
        }
        _ => None,
    }
}

/// The scripts a sed command line gives: each `-e SCRIPT`, or the first word that is not an
/// option.
fn sed_scripts<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut scripts = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "-e" | "--expression" => {
                scripts.extend(args.get(i + 1));
                i += 2;
            }
            a if a.starts_with("--expression=") => {
                scripts.push(&a["--expression=".len()..]);
                i += 1;
            }
            "-f" | "--file" | "-l" => i += 2,
            a if a.starts_with('-') => i += 1,
            a => {
                if scripts.is_empty() {
                    scripts.push(a);
                }
                break;
            }
        }
    }
    scripts
}

/// The command letters a sed script uses, and its `s` commands' flags (`e` runs text, `w`
/// writes a file). Approximate, and on the side of seeing too much.
fn sed_commands(script: &str) -> Vec<char> {
    let mut letters = Vec::new();
    for part in script.split([';', '\n', '{', '}']) {
        let part = part.trim_start();
        // Skip an address: line numbers, `$`, ranges, `/regex/`.
        let body = part.trim_start_matches(|c: char| c.is_ascii_digit() || "$,!~+ ".contains(c));
        let body = match body.strip_prefix('/') {
            Some(rest) => rest.split_once('/').map_or("", |(_, after)| after),
            None => body,
        };
        let mut chars = body.trim_start_matches([',', '!', ' ']).chars();
        let Some(command) = chars.next() else {
            continue;
        };
        letters.push(command);
        if command == 's'
            && let Some(delim) = chars.next()
        {
            let rest: String = chars.collect();
            if let Some(flags) = rest.splitn(3, delim).nth(2) {
                letters.extend(flags.chars().filter(|c| c.is_ascii_alphabetic()));
            }
        }
    }
    letters
}

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
const GIT_NETWORK: &[&str] = &[
    "clone",
    "fetch",
    "ls-remote",
    "pull",
    "push",
    "send-pack",
    "submodule",
    "subtree",
];

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
        "git" => git(command.rule_args()),
        p if NETWORK.contains(&p) => RiskClass::Network,
        "rsync" if args.iter().any(|a| a.contains(':')) => RiskClass::Network,
        p if CREDENTIALS.contains(&p) => RiskClass::CredentialUse,
        "find"
            if has(&[
                "-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf",
                "-fls",
            ]) =>
        {
            RiskClass::WorkspaceWrite
        }
        "find" => RiskClass::ReadOnly,
        "sed"
            if short('i')
                || args.iter().any(|a| a.starts_with("--in-place"))
                || sed_scripts(&args)
                    .iter()
                    .any(|s| sed_commands(s).iter().any(|c| matches!(c, 'w' | 'W' | 'e'))) =>
        {
            RiskClass::WorkspaceWrite
        }
        "sed" => RiskClass::ReadOnly,
        "sort" if short('o') || args.iter().any(|a| a.starts_with("--output")) => {
            RiskClass::WorkspaceWrite
        }
        "sort" => RiskClass::ReadOnly,
        "rg" if !args.iter().any(|a| a.starts_with("--pre")) => RiskClass::ReadOnly,
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

/// The class of `git` with `args`, its arguments after its own options.
fn git(args: &[String]) -> RiskClass {
    let Some(sub) = args.first().map(String::as_str) else {
        return RiskClass::ReadOnly;
    };
    let rest: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let rest = rest.as_slice();
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
        _ if rest.iter().any(|a| a.starts_with("--output")) => RiskClass::WorkspaceWrite,
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
            ("sed -n 1p f", RiskClass::ReadOnly),
            ("sed 's/a/b/w out' f", RiskClass::WorkspaceWrite),
            ("sort -o out f", RiskClass::WorkspaceWrite),
            ("find . -fprintf out x", RiskClass::WorkspaceWrite),
            ("git log --output=out", RiskClass::WorkspaceWrite),
            (
                "git --namespace x push --force origin",
                RiskClass::Destructive,
            ),
            ("git send-pack origin main", RiskClass::Network),
            ("less f", RiskClass::WorkspaceWrite),
        ];
        for (line, want) in table {
            let p = parse(line);
            assert_eq!(classify(&p.commands[0]), *want, "{line}");
        }
        let code = |line: &str| parse(line).commands.iter().find_map(runs_other_code);
        for line in [
            "echo x | sed 'e touch X'",
            "sed -n '1e rm -rf x' f",
            "sed 's/x/id/e' f",
            "LESSOPEN='|rm -rf ~ %s' less f",
            "GIT_EXTERNAL_DIFF=x git diff",
            "LD_PRELOAD=./x.so ls",
            "git -c core.fsmonitor='touch X' status",
            "git --config-env x=HOME push",
            "git grep --open-files-in-pager=rm x",
            "rg --pre rm x .",
        ] {
            assert!(code(line).is_some(), "{line}");
        }
        for line in ["sed -n 's/a/b/p' f", "FOO=1 make", "git status", "rg x ."] {
            assert!(code(line).is_none(), "{line}");
        }
    }
}
