//! The command line.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// cordon runs AI agents whose every step is recorded in a tamper-evident run log.
///
/// Start with `cordon run "a task"`; then `cordon runs` lists what ran, `cordon show RUN`
/// prints a run's events, and `cordon verify RUN` checks that nobody changed them.
///
/// Exit codes: 0 success, 1 run failed, 2 bad input, 3 budget exceeded, 4 run log tampered,
/// 5 awaiting approval, 125 no sandbox could start, 130 interrupted by Ctrl-C, 141 the reader
/// of stdout went away (`cordon show RUN | head`).
#[derive(Parser)]
#[command(name = "cordon", version, max_term_width = 100)]
pub struct Cli {
    /// The run store (SQLite file), or $CORDON_STORE. Default:
    /// $XDG_STATE_HOME/cordon/cordon.db.
    #[arg(long, global = true, value_name = "FILE")]
    pub store: Option<PathBuf>,

    /// The config file (providers, default model), or $CORDON_CONFIG. Default:
    /// $XDG_CONFIG_HOME/cordon/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The snapshot store: a directory, or object storage as s3://BUCKET/PREFIX, r2://,
    /// gs:// or az://CONTAINER/PREFIX (add ?endpoint=URL&region=NAME for S3-compatible
    /// servers; credentials come from the environment), or $CORDON_SNAPSHOTS. Default:
    /// $XDG_STATE_HOME/cordon/snapshots.
    #[arg(long, global = true, value_name = "DIR|URL")]
    pub snapshots: Option<String>,

    /// The Ed25519 key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes) that
    /// signs each run's head, or $CORDON_SIGNING_KEY. Default: FILE.signing-key.pem beside
    /// the store, made (mode 0600) on first use.
    #[arg(long, global = true, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,

    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Fills the paths not given on the command line from `CORDON_STORE`, `CORDON_CONFIG`
    /// and `CORDON_SNAPSHOTS` (empty means unset). Read here rather than by clap, whose
    /// usage line in an error would otherwise show them as if typed.
    pub fn with_environment(mut self) -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        if self.store.is_none() {
            self.store = var("CORDON_STORE").map(PathBuf::from);
        }
        if self.config.is_none() {
            self.config = var("CORDON_CONFIG").map(PathBuf::from);
        }
        if self.snapshots.is_none() {
            self.snapshots = var("CORDON_SNAPSHOTS").and_then(|v| v.into_string().ok());
        }
        if self.signing_key.is_none() {
            self.signing_key = var("CORDON_SIGNING_KEY").map(PathBuf::from);
        }
        self
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run an agent on a task, streaming its answer and tool calls as they happen.
    ///
    /// Examples:
    ///   cordon run "What is 17 * 23?"                                  (openai, OPENAI_API_KEY)
    ///   cordon run --model ollama:qwen3:8b "Summarise this repo"       (local Ollama)
    ///   cordon run --agent examples/agent.toml --model scripted:examples/script.toml "..."
    #[command(verbatim_doc_comment)]
    Run(RunArgs),

    /// Continue a run that stopped: after a crash, a provider failure, a budget or an approval.
    ///
    /// The run goes on in the sandbox configuration it recorded (root, environment, grants,
    /// read-only paths, tier), in the workspace it last worked in or the last checkpoint
    /// restored; a model response already recorded is never requested again. A run whose
    /// record does not verify is refused (exit 4).
    Resume {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// Raise the limit on model calls (for a run stopped by max_turns).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max_turns: Option<u32>,
        /// Raise (or set) a budget: max_tool_calls, max_input_tokens, max_output_tokens,
        /// max_wall_time_secs or max_cost_usd. Repeatable.
        #[arg(long = "budget", value_name = "NAME=VALUE")]
        budgets: Vec<String>,
        /// Add this user input before the next model call.
        #[arg(long, value_name = "TEXT")]
        input: Option<String>,
        /// Print the new events as JSON Lines instead of text.
        #[arg(long)]
        json: bool,
        /// Where the run goes on: a new or empty directory that the last checkpoint is
        /// restored into. By default the run goes on in the directory it last worked in, when
        /// that still holds what its last checkpoint recorded, and otherwise (after a crash)
        /// in a fresh directory under cordon's state directory, which later resumes use.
        #[arg(long, value_name = "DIR")]
        workspace: Option<PathBuf>,
        /// Use this isolation tier instead of the one the run recorded (to resume on a host
        /// where that tier is not available).
        #[arg(long, value_enum, value_name = "TIER")]
        sandbox: Option<TierArg>,
        /// Kill any one command the model runs after this many seconds (default: what the
        /// run recorded).
        #[arg(long, value_name = "SECS")]
        command_timeout: Option<u64>,
        /// Go on under this policy instead of the one the run recorded (the change is
        /// recorded; calls already waiting for a person still wait): a bare NAME is a pack
        /// (base, dev, stage, prod) or NAME.toml in the config directory's policies/; a path
        /// (./team, team.toml) is a file.
        #[arg(long, value_name = "NAME|FILE")]
        policy: Option<String>,
    },

    /// Approve a tool call a run is waiting on (all of them without CALL), or let its
    /// sandbox reach a host (--host); then `cordon resume`.
    ///
    /// An approval binds to the call's exact arguments. A host allowed with --host is
    /// reached through the run's egress proxy for the rest of the run, where the policy
    /// leaves it to a person or to its default; a rule's deny stands.
    Approve {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// The call's id (as `cordon show` or the run's output names it).
        #[arg(conflicts_with = "host")]
        call: Option<String>,
        /// Let the run's sandbox reach this host (a name or an address, no port) for the
        /// rest of the run, as the egress proxy's refusal suggests.
        #[arg(long, value_name = "HOST", conflicts_with = "always")]
        host: Option<String>,
        /// Also approve, for the rest of this run, later calls that match the same approval
        /// rule (the tool rule or command pattern that asked for this call; never wider).
        #[arg(long)]
        always: bool,
        /// Who decides (default: this OS user).
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Print each decision as a JSON line.
        #[arg(long)]
        json: bool,
    },

    /// Reject a tool call a run is waiting on; the model is told. Then `cordon resume`.
    Reject {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// The call's id.
        call: String,
        /// What the model is told.
        #[arg(long)]
        message: Option<String>,
        /// Who decides (default: this OS user).
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Print the decision as a JSON line.
        #[arg(long)]
        json: bool,
    },

    /// List every tool call waiting for a person, across runs, with what it would do and
    /// which rule asked.
    Approvals {
        /// One JSON line per waiting call.
        #[arg(long)]
        json: bool,
    },

    /// Ask a running run to pause after its current step, from any terminal or process.
    ///
    /// The process running it records the pause (exit 130 there); `cordon resume` continues.
    Pause {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// A JSON object instead of text.
        #[arg(long)]
        json: bool,
    },

    /// List runs, newest first.
    Runs {
        /// Only runs with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Print a run's events.
    Show {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// One tool call's id: print its whole recorded input and output, and what was
        /// decided about it.
        call: Option<String>,
        /// Every call's whole input and output, every answer's whole text (by default long
        /// ones show their first and last lines).
        #[arg(long)]
        full: bool,
        /// The events as JSON Lines, exactly as stored.
        #[arg(long)]
        json: bool,
        /// Under each model response, what the server sent as it came (kept when decoding
        /// met anything unexpected, or always with `record_raw = true` for the provider),
        /// and what cordon noticed reading it.
        #[arg(long)]
        raw: bool,
    },

    /// Check a run's record and name the first thing that does not hold.
    ///
    /// Every stored event must decode, the hash chain must hold from the first event to the
    /// last, the run's head record (its event count and last hash, kept beside the store)
    /// must match its last event, and the head's signature must be the store's key's (or the
    /// key given with --key). Exit 0 when all of that holds, 4 when not. The README lists
    /// exactly what this catches and what it cannot.
    ///
    /// With --bundle, checks an evidence bundle (from `cordon export`) instead, with no store:
    /// every line must be as cordon wrote it, the events must chain, and the head's signature
    /// must hold (by the key given with --key, else by the key the bundle names, which says
    /// only that the bundle is whole).
    Verify {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        #[arg(required_unless_present_any = ["all", "bundle"])]
        run: Option<String>,
        /// Check every run in the store.
        #[arg(long, conflicts_with = "run")]
        all: bool,
        /// An evidence bundle to check (`-` reads stdin).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["run", "all"])]
        bundle: Option<PathBuf>,
        /// The public key to trust (a PEM file, a key file, or ed25519:HEX): the head must
        /// carry a valid signature by it. Default: the store's own key, when it has one.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        /// A JSON object instead of a sentence.
        #[arg(long)]
        json: bool,
    },

    /// The figures across runs: outcomes, failures, approvals, denials, tokens, cost, time
    ///
    /// Computed from the runs' logs: runs by status, the completion rate of those that ended,
    /// failure classes, approvals asked for and how long they waited, how often a person had
    /// to act, denials by rule, network requests refused, tokens and cost per completed run
    /// (cost from the config's `[prices]`), and p50/p95 durations less the waits for people.
    ///
    /// Examples:
    ///   cordon stats --since 7d
    ///   cordon stats --agent reviewer --json
    #[command(verbatim_doc_comment)]
    Stats {
        /// Only runs started within this long before now (`24h`, `7d`, `30m`).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// Only runs of this agent (its name, as `cordon show` prints it).
        #[arg(long, value_name = "NAME")]
        agent: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },

    /// Draw a run as a timeline: model calls, tools, approvals and waits, with durations
    ///
    /// Each line is a span: when it started (from the run's start), how long it took, a bar
    /// on the run's time scale (░ a wait for a person), and what it was. The spans are
    /// derived from the run's log, named as OpenTelemetry's GenAI conventions name them.
    Trace {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// The spans as JSON Lines (name, kind, start and end in ms, attributes, parent).
        #[arg(long)]
        json: bool,
        /// Send the run's spans to the OpenTelemetry collector the OTEL_EXPORTER_OTLP_*
        /// variables name (again: a run's spans keep their ids), instead of drawing them.
        #[arg(long, conflicts_with = "json")]
        otlp: bool,
    },

    /// Write a run as one self-contained HTML page for people who were not there
    ///
    /// The page shows the run's timeline as a chart, each tool call with its arguments,
    /// output, policy decision and approval, the workspace's changes between checkpoints as
    /// diffs, approvals with who and when, policy and network decisions, budgets used and
    /// cost, artifacts, and whether the record verifies. It loads nothing from the network.
    Report {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// Where to write the page. An existing file is not overwritten.
        #[arg(long, value_name = "FILE")]
        html: PathBuf,
    },

    /// Write a run as one evidence bundle, to check on another machine with no store
    ///
    /// The bundle holds the run's events as stored (with the manifest's text, the policy and
    /// the artifacts' digests), its signed head, the store's public key, and the listings of
    /// the snapshots its checkpoints took. `cordon verify --bundle FILE --key KEY` checks it
    /// anywhere. A run that does not verify, or whose head is not signed, is not exported.
    ///
    /// Example:
    ///   cordon export last --bundle run.bundle && cordon key > store.pub.pem
    #[command(verbatim_doc_comment)]
    Export {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// Where to write it (`-` for stdout). An existing file is not overwritten.
        #[arg(long, value_name = "FILE")]
        bundle: PathBuf,
        /// A JSON object about what was written instead of a sentence.
        #[arg(long)]
        json: bool,
    },

    /// List the artifacts a run collected from its outputs, or copy them out.
    ///
    /// A run collects the files under its manifest's `outputs` when it completes: path, size,
    /// SHA-256 and media type, recorded in its log. --export copies them into a new or empty
    /// directory, each checked against its recorded digest, from the workspace or, when a
    /// file there changed since, from the run's checkpoints.
    Artifacts {
        /// The run: its id, `last` (the newest), its start, or a unique piece of its random end.
        run: String,
        /// Copy them into this directory (new or empty).
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// One JSON object per artifact instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Print the public key that checks this store's signed run heads
    ///
    /// The key is printed as PEM, to hand to whoever verifies the store's bundles (`cordon
    /// verify --bundle FILE --key KEY.pem`).
    Key {
        /// `ed25519:HEX` and where the key is, as JSON, instead of PEM.
        #[arg(long)]
        json: bool,
    },

    /// Measure cordon itself.
    #[command(subcommand)]
    Bench(BenchCommand),

    /// Run commands in a sandbox by hand: to debug a policy, or from scripts.
    #[command(subcommand)]
    Sandbox(SandboxCommand),

    /// Apply an apply_patch-format patch to a directory, all or nothing.
    ///
    /// Prints what it did (`A path`, `M path`, `D path`). On any error the directory is left
    /// unchanged: exit 1 when the patch does not fit the files, 2 when it is malformed.
    ApplyPatch {
        /// The directory the patch's paths are relative to.
        #[arg(long, default_value = ".", value_name = "DIR")]
        root: PathBuf,
        /// The patch file, or - (the default) for standard input.
        #[arg(default_value = "-", value_name = "PATCH_FILE")]
        patch: String,
    },

    /// Workspace snapshots: content-addressed, incremental, restorable.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),

    /// Work with workspace manifests.
    #[command(subcommand)]
    Manifest(ManifestCommand),

    /// Check policy files, and ask a policy what it decides and why
    ///
    /// A policy is TOML: `[[tool]]`, `[[command]]`, `[[path]]` and `[[network]]` rules, decisions per
    /// risk class, and what to do with commands that cannot be judged. The strictest rule
    /// wins (deny, then ask, then allow). Packs built in: base, dev, stage, prod.
    ///
    /// Examples:
    ///   cordon policy check policies/team.toml
    ///   cordon policy explain --policy stage -- git push origin main
    ///   cordon policy explain --policy team.toml --path secrets/token --write
    #[command(subcommand, verbatim_doc_comment)]
    Policy(PolicyCommand),

    /// Check which isolation tiers work on this host, and an agent's MCP servers and skills
    ///
    /// Which sandbox tiers start here, what each enforces and what it cannot. With --agent,
    /// also the agent file's MCP servers (where each runs, and whether those outside the
    /// sandbox start and which tools they list) and its skills.
    Doctor {
        /// A JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Also check this agent file's MCP servers and skills.
        #[arg(long, value_name = "FILE")]
        agent: Option<PathBuf>,
    },

    /// Print a shell completion script: `cordon completions bash > /etc/bash_completion.d/cordon`,
    /// or `source <(cordon completions zsh)`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot a directory now (incremental against the newest snapshot of the store).
    Take {
        /// The directory.
        dir: PathBuf,
        /// Leave out this workspace-relative path (repeatable).
        #[arg(long, value_name = "PATH")]
        exclude: Vec<String>,
        /// Leave out what matches this gitignore-style pattern, like target/ or *.log
        /// (repeatable).
        #[arg(long, value_name = "PATTERN")]
        exclude_pattern: Vec<String>,
        /// Also leave out what the directory's own .gitignore files ignore.
        #[arg(long)]
        gitignore: bool,
        /// A JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List snapshots, newest first, with the runs whose checkpoints they are.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print a snapshot's paths.
    Show {
        /// The snapshot's id, or enough of its start to be unique.
        id: String,
        /// The whole snapshot as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a snapshot into an empty (or new) directory.
    Restore {
        /// The snapshot's id, or enough of its start to be unique.
        id: String,
        /// Where to restore it.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// A JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete snapshots, and the contents no other snapshot refers to.
    ///
    /// The last checkpoint of a run that can still be resumed is kept unless --force is
    /// given: without it, that run could not go on.
    Delete {
        /// Snapshot ids, or enough of each one's start to be unique.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Delete even a snapshot an unfinished run needs to resume.
        #[arg(long)]
        force: bool,
        /// A JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete stored contents no snapshot refers to; with a rule, old snapshots first.
    ///
    /// With --keep-last and --older-than, a snapshot is deleted only when both let it go
    /// (it is not among its run's newest N, and it is older than the age given). The last
    /// checkpoint of a run that can still be resumed is always kept.
    Gc {
        /// Keep each run's newest N checkpoints (and the newest N snapshots no run took); at
        /// least 1.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        keep_last: Option<u64>,
        /// Keep snapshots newer than this: 30d, 12h, 2weeks, 90min.
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
        /// Say what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// A JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file and everything it extends, and run its rules' examples.
    ///
    /// Exit 0 when it is valid and every `match`/`not_match` example holds; 2, with each
    /// problem's file, line and column, when not.
    Check {
        /// The policy: a bare NAME is a pack (base, dev, stage, prod) or NAME.toml in the
        /// config directory's policies/; a path (./team, team.toml) is a file.
        policy: String,
        /// One JSON object: the policy's files and rule counts, or every problem.
        #[arg(long)]
        json: bool,
    },
    /// Print what a policy decides on a command, a tool call, a URL or a path, and which
    /// rules made the decision.
    #[command(group(clap::ArgGroup::new("subject").required(true).args(["command", "tool", "url", "path"])))]
    Explain {
        /// The policy: a bare NAME is a pack (base, dev, stage, prod) or NAME.toml in the
        /// config directory's policies/; a path (./team, team.toml) is a file.
        #[arg(long, value_name = "NAME|FILE")]
        policy: String,
        /// A tool call: the tool's name (with --args).
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        /// The tool call's arguments, as the model sends them (JSON for most tools; default
        /// `{}`).
        #[arg(long, value_name = "JSON", requires = "tool", conflicts_with_all = ["command", "url", "path"])]
        args: Option<String>,
        /// A network request to this URL.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// The request's HTTP method, with --url (default GET).
        #[arg(long, value_name = "METHOD", requires = "url", conflicts_with_all = ["command", "tool", "path"])]
        method: Option<String>,
        /// Reading a workspace path (with --write, writing it).
        #[arg(long, value_name = "PATH")]
        path: Option<String>,
        /// With --path: judge a write instead of a read.
        #[arg(long, requires = "path", conflicts_with_all = ["command", "tool", "url"])]
        write: bool,
        /// One JSON object: the decision, its class and every rule that applied.
        #[arg(long)]
        json: bool,
        /// A shell command line, after `--` (one argument is taken as a whole line).
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum ManifestCommand {
    /// Check a manifest and print the workspace it declares as a tree.
    ///
    /// Exit 0 when it is valid; 2, with every problem's file, line and column, when not.
    Check {
        /// The manifest (TOML; .json and .yaml by extension).
        file: PathBuf,
        /// One JSON object: the workspace's entries, or `valid: false` and every problem.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum SandboxCommand {
    /// Run one command in a fresh sandbox and exit with its status.
    ///
    /// Exit status: the command's; 128+N if signal N killed it; 124 if --timeout killed it;
    /// 125 if the sandbox could not start.
    ///
    /// Example: cordon sandbox exec --workspace . -- sh -c 'ls -la; id'
    Exec {
        #[command(flatten)]
        sandbox: SandboxArgs,
        /// Kill the command's whole process group after this many seconds.
        #[arg(long, default_value_t = 600, value_name = "SECS")]
        timeout: u64,
        /// Run the command under a pseudo-terminal, connected to this one.
        #[arg(long)]
        tty: bool,
        /// The command and its arguments.
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Open an interactive shell (bash -l) in a fresh sandbox.
    Shell {
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
}

/// Where and how a sandbox is built.
#[derive(Args, Clone)]
pub struct SandboxArgs {
    /// The directory the sandbox works in (read-write unless --read-only). Default: the current directory.
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Mount the workspace read-only.
    #[arg(long)]
    pub read_only: bool,
    /// The isolation tier: auto (namespaces where they work, else landlock), namespaces,
    /// landlock, or unconfined (no isolation at all; only when you mean it).
    #[arg(long, value_enum, default_value_t = TierArg::Auto)]
    pub sandbox: TierArg,
    /// Build a fresh workspace from this manifest (in --workspace, which must then be empty,
    /// or in a new directory under cordon's state directory).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum TierArg {
    Auto,
    Namespaces,
    Landlock,
    Unconfined,
}

#[derive(Args)]
pub struct RunArgs {
    /// The task for the agent; `-` reads it from stdin.
    #[arg(required_unless_present = "task_file")]
    pub task: Option<String>,

    /// Read the task from this file (for tasks too long for a command line).
    #[arg(long, value_name = "FILE", conflicts_with = "task")]
    pub task_file: Option<PathBuf>,

    /// The agent file (TOML: name, model, instructions, max_turns, tools, model_settings,
    /// budgets, approvals, output, checkpoints; see the README).
    #[arg(long, value_name = "FILE")]
    pub agent: Option<PathBuf>,

    /// The model as PROVIDER:MODEL: openai:gpt-5-mini (Responses API), openai-chat:gpt-4.1
    /// (Chat Completions), ollama:qwen3:8b, scripted:SCRIPT.toml or scripted-chat:SCRIPT.toml
    /// (the built-in scripted server), or a provider from the config file.
    #[arg(long, short, value_name = "PROVIDER:MODEL")]
    pub model: Option<String>,

    /// Override the agent's limit on model calls.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turns: Option<u32>,

    /// Print the run's events as JSON Lines (one per event, as stored) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Where the shell tools (exec_command, write_stdin) run.
    #[command(flatten)]
    pub sandbox: SandboxArgs,

    /// Kill any one command the model runs after this many seconds.
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    pub command_timeout: u64,

    /// The policy every tool call is judged by (over the agent file's `policy`): a bare NAME
    /// is a pack (base, dev, stage, prod) or NAME.toml in the config directory's policies/;
    /// a path (./team, team.toml) is a file. Without one, calls run unless `[approvals]` ask.
    #[arg(long, value_name = "NAME|FILE")]
    pub policy: Option<String>,

    /// Carry on the conversation of an ended run (`last`, an id or a piece of one): the new
    /// run starts from its history, and the task is the next message. The link is recorded
    /// in both runs.
    #[arg(long = "continue", value_name = "RUN")]
    pub continues: Option<String>,

    /// The conversation this run belongs to, by name: it carries on the conversation's
    /// newest run (the first run of a name starts the conversation).
    #[arg(long, value_name = "NAME")]
    pub conversation: Option<String>,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// A scripted session of many turns (one tool call each) with zero model delay, the run
    /// log on disk, at a short and a long length side by side: per-turn time (whole run,
    /// median, p95) and how much more a turn costs in the long run.
    Harness {
        /// How many model turns in the long run.
        #[arg(long, default_value_t = 200)]
        turns: u32,
        /// How many model turns in the short run it is compared with.
        #[arg(long, default_value_t = 20)]
        short: u32,
        /// The wire protocol to use.
        #[arg(long, value_enum, default_value_t = ApiArg::Responses)]
        api: ApiArg,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Snapshots: a workspace of mixed files (large and small); full snapshot time and
    /// throughput, a checkpoint after a 1 MiB change, and restore time.
    Snapshot {
        /// The workspace's size, in MiB.
        #[arg(long, default_value_t = 1024)]
        mib: u32,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manifest materialization: a local_dir of many files copied into a fresh sandbox's
    /// workspace; reports time and throughput.
    Manifest {
        /// How many files.
        #[arg(long, default_value_t = 10_000)]
        files: u32,
        /// Their total size, in MiB.
        #[arg(long, default_value_t = 200)]
        mib: u32,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The egress proxy: what it adds to a request (median, p99) against the same request
    /// made directly, forwarded (plain HTTP) and through a CONNECT tunnel (HTTPS), to an
    /// upstream on loopback; and the throughput of one large download through a tunnel.
    Egress {
        /// Requests to time each way.
        #[arg(long, default_value_t = 1000)]
        requests: u32,
        /// The download's size, in MiB.
        #[arg(long, default_value_t = 100)]
        mib: u32,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evidence costs per event: appending to the run log with and without signing the head
    /// (each event flushed alone, the worst case), one signature, and redacting an event with
    /// the known secrets alone and with the token detectors.
    Evidence {
        /// Events (and redactions) to time each way.
        #[arg(long, default_value_t = 2000)]
        events: u32,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sandbox costs: create to a finished `true` (median, p95); the extra cost of one exec
    /// in a running sandbox over spawning /bin/true directly; and `cordon sandbox exec` as a
    /// user sees it (process start to first output) beside plain `bwrap --unshare-all`
    /// measured the same way in the same run, with their ratio.
    Sandbox {
        /// Sandboxes to create, and execs to time.
        #[arg(long, default_value_t = 50)]
        iterations: u32,
        /// The isolation tier to measure.
        #[arg(long, value_enum, default_value_t = TierArg::Namespaces)]
        sandbox: TierArg,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ApiArg {
    Responses,
    Chat,
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StatusArg {
    Running,
    Completed,
    Failed,
    BudgetExceeded,
    AwaitingApproval,
    Paused,
    Interrupted,
}

/// An age like `30d`, `12h`, `2weeks` or `90min`.
fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{e}: write an age like 30d, 12h, 2weeks or 90min"))
}
