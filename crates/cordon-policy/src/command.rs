//! A shell command line, parsed by a real bash parser into the simple commands it would
//! run, so rules judge each program and its arguments, not the text as a whole.
//!
//! Pipes, `&&`, `||`, `;`, subshells, braces, `if`/`for`/`while`/`case` bodies are walked;
//! quoting is removed; `bash -c`/`sh -c` strings are parsed in turn; wrappers that run
//! another command (`env`, `command`, `exec`, `nice`, `nohup`, `time`, `timeout`, `xargs`,
//! `sudo`)
//! are judged together with the command they run. What cannot be judged without running
//! it (command or process substitution, `eval`, `source`, a command name that is a
//! variable, a function definition, text that does not parse) is reported as such.

use brush_parser::ast;
use brush_parser::word::WordPiece;

/// The longest command text parsed; longer commands cannot be judged.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// How deep `bash -c` strings and compound commands may nest before the command is
/// called unjudgeable.
const MAX_DEPTH: usize = 16;

/// One simple command: a program and its arguments, unquoted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// The program, then its arguments, with quotes removed. An argument whose value is
    /// only known when it runs (`$HOME`, `$'\x70'`) keeps its text, `$` and all.
    pub argv: Vec<String>,
    /// Files its redirections write to (`> out.txt`, `>> log`).
    pub writes: Vec<String>,
    /// The environment variables set for it alone (`LESSOPEN=... less f`), by name.
    pub env: Vec<String>,
}

impl SimpleCommand {
    /// The program's name without its directory (`/usr/bin/git` → `git`).
    pub fn program(&self) -> &str {
        let p = self.argv.first().map(String::as_str).unwrap_or("");
        p.rsplit('/').next().unwrap_or(p)
    }

    /// The arguments rules match against: after the program, and for `git` after its
    /// global options (`git -C dir -c k=v push` is matched as `push`).
    pub fn rule_args(&self) -> &[String] {
        let args = self.argv.get(1..).unwrap_or(&[]);
        if self.program() != "git" {
            return args;
        }
        let mut i = 0;
        while let Some(a) = args.get(i) {
            if !a.starts_with('-') {
                break;
            }
            i += if matches!(
                a.as_str(),
                "-C" | "-c"
                    | "--git-dir"
                    | "--work-tree"
                    | "--namespace"
                    | "--config-env"
                    | "--attr-source"
                    | "--exec-path"
                    | "--super-prefix"
            ) {
                2
            } else {
                1
            };
        }
        args.get(i..).unwrap_or(&[])
    }

    /// The command as one line (arguments joined by spaces).
    pub fn text(&self) -> String {
        self.argv.join(" ")
    }
}

/// A command line, as far as it can be judged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// The simple commands it runs, in order.
    pub commands: Vec<SimpleCommand>,
    /// Why some of it cannot be judged (empty: all of it can).
    pub unknown: Vec<String>,
}

/// Parses `line` as bash into the simple commands it runs.
pub fn parse(line: &str) -> Parsed {
    let mut out = Parsed::default();
    parse_into(line, 0, &mut out);
    out.unknown.sort();
    out.unknown.dedup();
    out
}

fn parse_into(line: &str, depth: usize, out: &mut Parsed) {
    if line.len() > MAX_COMMAND_BYTES {
        out.unknown.push("a command too long to judge".into());
        return;
    }
    if depth > MAX_DEPTH {
        out.unknown.push("commands nested too deep to judge".into());
        return;
    }
    if nesting(line) > MAX_DEPTH || openers(line) > MAX_OPENERS {
        out.unknown.push("commands nested too deep to judge".into());
        return;
    }
    // The parser recurses as the text nests: it gets a stack of its own, well beyond what
    // the bounds above let through, so no text can overflow the caller's.
    let parsed = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cordon-policy-parse".into())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || {
                let options = brush_parser::ParserOptions::default();
                brush_parser::Parser::new(std::io::Cursor::new(line.as_bytes()), &options)
                    .parse_program()
                    .ok()
            })
            .ok()
            .and_then(|t| t.join().ok())
            .flatten()
    });
    match parsed.ok_or(()) {
        Ok(program) => {
            for list in &program.complete_commands {
                walk_list(list, depth, out);
            }
        }
        Err(_) => out.unknown.push("text that does not parse as bash".into()),
    }
}

/// The most words that open a nested construct (`if`, `while`, `[[`, `!`...) one command
/// line may hold before it is called too deep to judge.
const MAX_OPENERS: usize = 64;

/// The stack the parser runs on.
const PARSER_STACK: usize = 64 * 1024 * 1024;

/// How many words of `line` open a nested construct: a bound on how deep keywords nest,
/// which the parser's recursion follows.
fn openers(line: &str) -> usize {
    line.split(|c: char| c.is_whitespace() || ";&|()<>".contains(c))
        .filter(|w| {
            matches!(
                *w,
                "if" | "while"
                    | "until"
                    | "for"
                    | "case"
                    | "select"
                    | "[["
                    | "!"
                    | "{"
                    | "function"
                    | "coproc"
                    | "then"
                    | "do"
            )
        })
        .count()
}
/// How deeply brackets nest in `line` (quotes ignored): a bound checked before parsing,
/// whose recursion follows the nesting.
fn nesting(line: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in line.chars() {
        match c {
            '(' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn walk_list(list: &ast::CompoundList, depth: usize, out: &mut Parsed) {
    for ast::CompoundListItem(and_or, _) in &list.0 {
        walk_pipeline(&and_or.first, depth, out);
        for next in &and_or.additional {
            match next {
                ast::AndOr::And(p) | ast::AndOr::Or(p) => walk_pipeline(p, depth, out),
            }
        }
    }
}

fn walk_pipeline(pipeline: &ast::Pipeline, depth: usize, out: &mut Parsed) {
    for command in &pipeline.seq {
        walk_command(command, depth, out);
    }
}

fn walk_command(command: &ast::Command, depth: usize, out: &mut Parsed) {
    match command {
        ast::Command::Simple(simple) => walk_simple(simple, depth, out),
        ast::Command::Compound(compound, redirects) => {
            walk_compound(compound, depth, out);
            if let Some(list) = redirects {
                let mut writes = Vec::new();
                for r in &list.0 {
                    redirect(r, &mut writes, out);
                }
                // Writes of a compound command count as a command of their own.
                if !writes.is_empty() {
                    out.commands.push(SimpleCommand {
                        argv: vec![":".into()],
                        writes,
                        ..SimpleCommand::default()
                    });
                }
            }
        }
        ast::Command::Function(f) => out.unknown.push(format!(
            "a function definition ({}) that could stand in for any program",
            f.fname.value
        )),
        ast::Command::ExtendedTest(test, _) => {
            let text = format!("{test}");
            if text.contains("$(") || text.contains('`') {
                out.unknown.push("command substitution".into());
            }
        }
    }
}

fn walk_compound(compound: &ast::CompoundCommand, depth: usize, out: &mut Parsed) {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        out.unknown.push("commands nested too deep to judge".into());
        return;
    }
    match compound {
        ast::CompoundCommand::Arithmetic(_) | ast::CompoundCommand::ArithmeticForClause(_) => {}
        ast::CompoundCommand::BraceGroup(b) => walk_list(&b.list, depth, out),
        ast::CompoundCommand::Subshell(s) => walk_list(&s.list, depth, out),
        ast::CompoundCommand::ForClause(f) => {
            for w in f.values.iter().flatten() {
                word(&w.value, out);
            }
            walk_list(&f.body.list, depth, out);
        }
        ast::CompoundCommand::CaseClause(c) => {
            word(&c.value.value, out);
            for item in &c.cases {
                if let Some(list) = &item.cmd {
                    walk_list(list, depth, out);
                }
            }
        }
        ast::CompoundCommand::IfClause(i) => {
            walk_list(&i.condition, depth, out);
            walk_list(&i.then, depth, out);
            for e in i.elses.iter().flatten() {
                if let Some(c) = &e.condition {
                    walk_list(c, depth, out);
                }
                walk_list(&e.body, depth, out);
            }
        }
        ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
            walk_list(&w.0, depth, out);
            walk_list(&w.1.list, depth, out);
        }
        ast::CompoundCommand::Coprocess(c) => walk_command(&c.body, depth, out),
    }
}

fn walk_simple(simple: &ast::SimpleCommand, depth: usize, out: &mut Parsed) {
    let mut argv = Vec::new();
    let mut writes = Vec::new();
    let mut env = Vec::new();
    let mut dynamic_name = false;
    let items = simple
        .prefix
        .iter()
        .flat_map(|p| p.0.iter())
        .chain(simple.suffix.iter().flat_map(|s| s.0.iter()));
    // The command's name comes between its prefix and its suffix.
    let mut name_done = false;
    let prefix_len = simple.prefix.as_ref().map_or(0, |p| p.0.len());
    for (i, item) in items.enumerate() {
        if i == prefix_len && !name_done {
            name_done = true;
            if let Some(w) = &simple.word_or_name {
                let (text, dynamic) = word(&w.value, out);
                dynamic_name = dynamic;
                argv.push(text);
            }
        }
        match item {
            ast::CommandPrefixOrSuffixItem::Word(w) => argv.push(word(&w.value, out).0),
            // Before the name, an assignment sets the command's environment; after it,
            // it is an argument (`env A=1`, `make CC=gcc`).
            ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => {
                let (text, _) = word(&w.value, out);
                if i >= prefix_len {
                    argv.push(text);
                } else if let Some((name, _)) = w.value.split_once('=') {
                    env.push(name.trim_end_matches('+').to_string());
                }
            }
            ast::CommandPrefixOrSuffixItem::IoRedirect(r) => redirect(r, &mut writes, out),
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
                out.unknown.push("process substitution".into())
            }
        }
    }
    if !name_done && let Some(w) = &simple.word_or_name {
        let (text, dynamic) = word(&w.value, out);
        dynamic_name = dynamic;
        argv.insert(0, text);
    }
    if argv.is_empty() {
        // Only assignments or redirections: `X=1`, `> file`.
        if !writes.is_empty() {
            out.commands.push(SimpleCommand {
                argv: vec![":".into()],
                writes,
                ..SimpleCommand::default()
            });
        }
        return;
    }
    // A name that expands (`/usr/bin/kube*`) is not known until it runs.
    let name = &argv[0];
    dynamic_name |= name.contains(['*', '?']) || (name.contains('[') && name != "[");
    if dynamic_name {
        out.unknown
            .push(format!("a command name that is a variable ({})", argv[0]));
    }
    walk_wrapped(SimpleCommand { argv, writes, env }, depth, out);
}

/// Records `command`, and what it runs in turn: a shell's `-c` script, a wrapper's command.
fn walk_wrapped(command: SimpleCommand, depth: usize, out: &mut Parsed) {
    if depth > MAX_DEPTH {
        out.unknown.push("commands nested too deep to judge".into());
        return;
    }
    let program = command.program().to_string();
    let script = match program.as_str() {
        "eval" => {
            out.unknown.push("eval".into());
            None
        }
        "source" | "." => {
            out.unknown
                .push(format!("{program}, which runs a script's text"));
            None
        }
        // `su -c SCRIPT`, `flock FILE -c SCRIPT`: a shell runs the script.
        "su" | "flock" => command
            .argv
            .iter()
            .position(|a| a == "-c" || a == "--command")
            .and_then(|i| command.argv.get(i + 1).cloned()),
        "bash" | "sh" | "zsh" | "dash" | "ksh" => match shell_input(&command.argv) {
            ShellInput::Script(s) => Some(s),
            ShellInput::File => None,
            ShellInput::Stdin => {
                out.unknown.push(format!(
                    "{program} reading commands from its standard input"
                ));
                None
            }
        },
        _ => None,
    };
    let inner = wrapped(&command.argv);
    out.commands.push(command);
    if let Some(script) = script {
        parse_into(&script, depth + 1, out);
    }
    for argv in inner {
        walk_wrapped(
            SimpleCommand {
                argv,
                ..SimpleCommand::default()
            },
            depth + 1,
            out,
        );
    }
}

/// Where a shell takes the commands it runs from.
enum ShellInput {
    /// `-c SCRIPT`.
    Script(String),
    /// A script file, named by its first argument: its text is not seen.
    File,
    /// Its standard input (no `-c`, no file): whatever is piped in.
    Stdin,
}

/// What `bash ARGS` runs: `-c SCRIPT` (options before `-c` allowed, as in `bash -lc`), a
/// script file, or its standard input.
fn shell_input(argv: &[String]) -> ShellInput {
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        if a.starts_with('-') && !a.starts_with("--") && a.contains('c') {
            return match args.next() {
                Some(script) => ShellInput::Script(script.clone()),
                None => ShellInput::Stdin,
            };
        }
        if a == "-s" {
            return ShellInput::Stdin;
        }
        if !a.starts_with('-') && !a.starts_with('+') {
            return ShellInput::File;
        }
    }
    ShellInput::Stdin
}

/// The commands a wrapper runs: `env X=1 cmd`, `timeout 5 cmd`, `xargs -n1 cmd`, each
/// `find -exec cmd {} ;`...
fn wrapped(argv: &[String]) -> Vec<Vec<String>> {
    let Some(program) = argv.first().and_then(|p| p.rsplit('/').next()) else {
        return Vec::new();
    };
    let rest = &argv[1..];
    if program == "find" {
        let mut inner = Vec::new();
        let mut args = rest.iter();
        while let Some(a) = args.next() {
            if matches!(a.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                let cmd: Vec<String> = args
                    .by_ref()
                    .take_while(|a| !matches!(a.as_str(), ";" | "+"))
                    .cloned()
                    .collect();
                if !cmd.is_empty() {
                    inner.push(cmd);
                }
            }
        }
        return inner;
    }
    // Each wrapper's short options that take a value in the next word (`sudo -u root`).
    let takes_value: &[&str] = match program {
        "env" => &["-u", "-C", "-S", "--unset", "--chdir", "--split-string"],
        "sudo" => &[
            "-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-U", "-T", "--user", "--group",
        ],
        "doas" => &["-u", "-C"],
        "nice" => &["-n", "--adjustment"],
        "timeout" => &["-s", "-k", "--signal", "--kill-after"],
        "xargs" => &[
            "-n",
            "-I",
            "-L",
            "-P",
            "-s",
            "-d",
            "-E",
            "-a",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
        ],
        "stdbuf" => &["-i", "-o", "-e"],
        "time" => &["-f", "-o", "--format", "--output"],
        "exec" => &["-a"],
        "watch" => &["-n", "-d", "--interval"],
        "flock" | "chroot" => &[
            "-w",
            "-E",
            "--timeout",
            "--conflict-exit-code",
            "--userspec",
        ],
        "ionice" => &["-c", "-n", "-p", "--class", "--classdata"],
        "taskset" => &["-c", "--cpu-list"],
        "command" | "nohup" | "setsid" | "chrt" | "busybox" => &[],
        _ => return Vec::new(),
    };
    let mut i = 0;
    while let Some(a) = rest.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        if program == "env" && a.contains('=') && !a.starts_with('-') {
            i += 1;
            continue;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        // `env -S 'rm -rf /'` splits its value into the command it runs.
        if program == "env" && (a == "-S" || a == "--split-string") {
            return rest
                .get(i + 1)
                .map(|s| {
                    let mut argv: Vec<String> = s.split_whitespace().map(str::to_string).collect();
                    argv.extend(rest[i + 2..].iter().cloned());
                    vec![argv]
                })
                .unwrap_or_default();
        }
        i += if takes_value.contains(&a.as_str()) {
            2
        } else {
            1
        };
    }
    // `timeout [OPTIONS] DURATION COMMAND`, `flock [OPTIONS] FILE COMMAND`, `chroot DIR
    // COMMAND`: one word before the command.
    if matches!(program, "timeout" | "flock" | "chroot" | "chrt")
        || (program == "taskset" && !rest[..i.min(rest.len())].iter().any(|a| a == "-c"))
    {
        i += 1;
    }
    match rest.get(i..) {
        Some(inner) if !inner.is_empty() => vec![inner.to_vec()],
        _ => Vec::new(),
    }
}

/// Records what a redirection writes, and anything in it that cannot be judged.
fn redirect(r: &ast::IoRedirect, writes: &mut Vec<String>, out: &mut Parsed) {
    match r {
        ast::IoRedirect::File(_, kind, target) => match target {
            ast::IoFileRedirectTarget::Filename(w) => {
                let (text, _) = word(&w.value, out);
                let writing = !matches!(kind, ast::IoFileRedirectKind::Read);
                if writing && text.contains(['*', '?', '[']) {
                    out.unknown.push("a redirection to a pattern".into());
                }
                if writing && text != "/dev/null" {
                    writes.push(text);
                }
            }
            ast::IoFileRedirectTarget::Fd(_) => {}
            // `>& file` writes the file (`>&2`, `>&-` only point at descriptors).
            ast::IoFileRedirectTarget::Duplicate(w) => {
                let (text, _) = word(&w.value, out);
                if !text.chars().all(|c| c.is_ascii_digit() || c == '-') && text != "/dev/null" {
                    writes.push(text);
                }
            }
            ast::IoFileRedirectTarget::ProcessSubstitution(..) => {
                out.unknown.push("process substitution".into())
            }
        },
        ast::IoRedirect::HereDocument(_, doc) => {
            if doc.requires_expansion {
                word(&doc.doc.value, out);
            }
        }
        ast::IoRedirect::HereString(_, w) => {
            word(&w.value, out);
        }
        ast::IoRedirect::OutputAndError(w, _) => {
            let (text, _) = word(&w.value, out);
            if text != "/dev/null" {
                writes.push(text);
            }
        }
    }
}

/// A word with its quoting removed, and whether its value depends on a variable. Command
/// substitutions in it are recorded as unjudgeable.
fn word(raw: &str, out: &mut Parsed) -> (String, bool) {
    let options = brush_parser::ParserOptions::default();
    match brush_parser::word::parse(raw, &options) {
        Ok(pieces) => {
            let mut text = String::new();
            let mut dynamic = false;
            for p in &pieces {
                piece(raw, p, &mut text, &mut dynamic, out);
            }
            (text, dynamic)
        }
        Err(_) => {
            out.unknown
                .push(format!("a word that does not parse ({raw})"));
            (raw.to_string(), true)
        }
    }
}

fn piece(
    raw: &str,
    p: &brush_parser::word::WordPieceWithSource,
    text: &mut String,
    dynamic: &mut bool,
    out: &mut Parsed,
) {
    match &p.piece {
        WordPiece::Text(s) => {
            // `{rm,-rf,/}` and `rm {-rf,} /` become other words when they run.
            if let Some(open) = s.find('{')
                && let Some(close) = s[open..].find('}')
                && (s[open..open + close].contains(',') || s[open..open + close].contains(".."))
            {
                out.unknown.push("brace expansion".into());
            }
            text.push_str(s)
        }
        WordPiece::SingleQuotedText(s) => text.push_str(s),
        // `$'\x70ush'` is decoded when it runs: kept as written, `$` and all.
        WordPiece::AnsiCQuotedText(s) if s.contains('\\') => {
            *dynamic = true;
            text.push_str(&format!("$'{s}'"));
        }
        WordPiece::AnsiCQuotedText(s) => text.push_str(s),
        WordPiece::EscapeSequence(s) => text.push_str(s.strip_prefix('\\').unwrap_or(s)),
        WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
            for i in inner {
                piece(raw, i, text, dynamic, out);
            }
        }
        WordPiece::TildeExpansion(_) => text.push('~'),
        WordPiece::ParameterExpansion(_) | WordPiece::ArithmeticExpression(_) => {
            *dynamic = true;
            let written = raw.get(p.start_index..p.end_index).unwrap_or("$?");
            // `${x:--rf}`, `${x/a/b}`, `${!x}`: their value is a computation, not a name.
            if let Some(inner) = written.strip_prefix("${").and_then(|w| w.strip_suffix('}'))
                && !inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                out.unknown
                    .push("a parameter expansion that computes a value".into());
            }
            text.push_str(written);
        }
        WordPiece::CommandSubstitution(_) | WordPiece::BackquotedCommandSubstitution(_) => {
            *dynamic = true;
            out.unknown.push("command substitution".into());
            text.push_str(raw.get(p.start_index..p.end_index).unwrap_or("$(?)"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(line: &str) -> Vec<String> {
        parse(line).commands.iter().map(|c| c.text()).collect()
    }

    #[test]
    fn lists_pipes_and_quoting_become_simple_commands() {
        let table: &[(&str, &[&str])] = &[
            ("ls -la", &["ls -la"]),
            (
                "git status && git push origin main",
                &["git status", "git push origin main"],
            ),
            (
                "cat a | grep 'x y' | wc -l",
                &["cat a", "grep x y", "wc -l"],
            ),
            ("make; echo \"done now\"", &["make", "echo done now"]),
            ("false || rm -rf build", &["false", "rm -rf build"]),
            ("(cd sub && make)", &["cd sub", "make"]),
            ("{ echo a; echo b; }", &["echo a", "echo b"]),
            ("if test -f x; then rm x; fi", &["test -f x", "rm x"]),
            ("for f in a b; do cat $f; done", &["cat $f"]),
            ("FOO=1 make test", &["make test"]),
            ("cat <<EOF\nhello\nEOF", &["cat"]),
            (
                "bash -lc 'git push --force'",
                &["bash -lc git push --force", "git push --force"],
            ),
            (
                "env A=1 timeout 5 rm -rf /",
                &[
                    "env A=1 timeout 5 rm -rf /",
                    "timeout 5 rm -rf /",
                    "rm -rf /",
                ],
            ),
            (
                "find . -name x | xargs -n1 rm",
                &["find . -name x", "xargs -n1 rm", "rm"],
            ),
            (
                "find . -name '*.o' -exec rm -rf {} \\; -print",
                &["find . -name *.o -exec rm -rf {} ; -print", "rm -rf {}"],
            ),
            ("bash build.sh", &["bash build.sh"]),
            (
                "sudo -u root rm -rf /",
                &["sudo -u root rm -rf /", "rm -rf /"],
            ),
            ("nice -n 5 git push", &["nice -n 5 git push", "git push"]),
            (
                "timeout -s KILL 5 make",
                &["timeout -s KILL 5 make", "make"],
            ),
            ("timeout -k 5 10 make", &["timeout -k 5 10 make", "make"]),
            ("xargs -I {} rm {}", &["xargs -I {} rm {}", "rm {}"]),
            ("env -u X -C / rm x", &["env -u X -C / rm x", "rm x"]),
            ("env -S 'rm -rf /'", &["env -S rm -rf /", "rm -rf /"]),
            (
                "stdbuf -o 0 git push",
                &["stdbuf -o 0 git push", "git push"],
            ),
            ("busybox rm -rf /", &["busybox rm -rf /", "rm -rf /"]),
            ("watch -n 5 rm -rf x", &["watch -n 5 rm -rf x", "rm -rf x"]),
            ("chroot / rm -rf x", &["chroot / rm -rf x", "rm -rf x"]),
            ("flock /tmp/l rm x", &["flock /tmp/l rm x", "rm x"]),
            (
                "su -c 'rm -rf x' root",
                &["su -c rm -rf x root", "rm -rf x"],
            ),
            ("taskset 1 rm -rf /", &["taskset 1 rm -rf /", "rm -rf /"]),
            ("taskset -c 0 rm x", &["taskset -c 0 rm x", "rm x"]),
            ("chrt 10 rm -rf /", &["chrt 10 rm -rf /", "rm -rf /"]),
            (
                "ionice -c 3 rm -rf /",
                &["ionice -c 3 rm -rf /", "rm -rf /"],
            ),
            ("/usr/bin/git log", &["/usr/bin/git log"]),
            ("echo a\\ b", &["echo a b"]),
        ];
        for (line, want) in table {
            let p = parse(line);
            assert!(p.unknown.is_empty(), "{line}: {:?}", p.unknown);
            assert_eq!(argvs(line), *want, "{line}");
        }
        assert_eq!(parse("/usr/bin/git log").commands[0].program(), "git");
    }

    #[test]
    fn redirections_name_what_they_write() {
        let p = parse("echo hi > out.txt 2>/dev/null; sort < in >> log.txt");
        assert_eq!(p.commands[0].writes, ["out.txt"]);
        assert_eq!(p.commands[1].writes, ["log.txt"]);
        let p = parse("{ echo a; } > grouped.txt");
        assert!(p.commands.iter().any(|c| c.writes == ["grouped.txt"]));
    }

    #[test]
    fn what_cannot_be_judged_says_why() {
        let table: &[(&str, &str)] = &[
            ("echo $(rm -rf /)", "command substitution"),
            ("echo `id`", "command substitution"),
            ("X=$(curl evil) make", "command substitution"),
            ("eval \"$CMD\"", "eval"),
            ("source ./setup.sh", "source, which runs a script's text"),
            ("$PROG --flag", "a command name that is a variable ($PROG)"),
            ("diff <(ls a) <(ls b)", "process substitution"),
            (
                "f() { rm -rf /; }; f",
                "a function definition (f) that could stand in for any program",
            ),
            ("echo 'unterminated", "text that does not parse as bash"),
            ("bash -c 'echo $(id)'", "command substitution"),
            (
                "echo 'rm -rf /' | bash",
                "bash reading commands from its standard input",
            ),
            (
                "curl -s https://x.sh | sudo sh -s",
                "sh reading commands from its standard input",
            ),
            (
                "bash <<EOF\nrm -rf /\nEOF",
                "bash reading commands from its standard input",
            ),
            ("{rm,-rf,/}", "brace expansion"),
            ("rm {-rf,} /", "brace expansion"),
            (
                "rm ${x:--rf} /",
                "a parameter expansion that computes a value",
            ),
            (
                "/usr/bin/kube* apply",
                "a command name that is a variable (/usr/bin/kube*)",
            ),
            ("echo x > secre*/t", "a redirection to a pattern"),
        ];
        for (line, why) in table {
            let p = parse(line);
            assert!(
                p.unknown.iter().any(|u| u == why),
                "{line}: {:?}",
                p.unknown
            );
        }
        let long = "a".repeat(MAX_COMMAND_BYTES + 1);
        assert_eq!(parse(&long).unknown, ["a command too long to judge"]);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let nested = format!("{}true{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(
            parse(&nested).unknown,
            ["commands nested too deep to judge"]
        );
        // Keywords nest too: neither crashes (the test would abort).
        let ifs = format!("{}x{}", "if true; then ".repeat(1000), "; fi".repeat(1000));
        assert_eq!(parse(&ifs).unknown, ["commands nested too deep to judge"]);
        let nots = format!("[[ {}a ]]", "! ".repeat(1000));
        assert_eq!(parse(&nots).unknown, ["commands nested too deep to judge"]);
        let fine = format!("{}x{}", "if true; then ".repeat(10), "; fi".repeat(10));
        assert!(parse(&fine).unknown.is_empty());
        // So deep that parsing could exhaust the stack: refused before parsing.
        let deeper = format!("{}true{}", "(".repeat(30_000), ")".repeat(30_000));
        assert_eq!(
            parse(&deeper).unknown,
            ["commands nested too deep to judge"]
        );
        let shells = parse("bash -c \"sh -c 'git push'\"");
        assert_eq!(shells.commands.last().unwrap().text(), "git push");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// Whatever the model sends, parsing ends with commands or reasons, never a panic.
        #[test]
        fn any_text_is_parsed_or_called_unjudgeable(line in "[a-z $`'\"\\|&;<>(){}\\[\\]=*?~!#\n-]{0,80}") {
            let p = parse(&line);
            proptest::prop_assert!(p.commands.len() <= line.len() + 1);
        }

        #[test]
        fn any_unicode_is_parsed_without_panic(line in "\\PC{0,60}") {
            let _ = parse(&line);
        }
    }
}
