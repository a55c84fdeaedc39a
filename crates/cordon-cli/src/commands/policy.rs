//! `cordon policy check` and `cordon policy explain`.

use crate::cli::PolicyCommand;
use crate::exit::Failure;
use crate::render::clip;
use cordon_policy::{Decision, Policy, Request, RiskClass};
use std::path::Path;
use std::process::ExitCode;

/// The policy `name` names (see [`cordon_session::policy::resolve`]), with `config` the
/// config file given, whose directory's `policies/` holds named policies.
pub fn resolve(name: &str, config: Option<&Path>) -> anyhow::Result<Policy> {
    let dir = cordon_session::policy::policies_dir(config);
    Ok(cordon_session::policy::resolve(name, None, dir.as_deref())?)
}

/// Runs a `cordon policy` subcommand.
pub fn run(cmd: PolicyCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { policy, json } => check(&policy, config, json),
        PolicyCommand::Explain {
            policy,
            tool,
            args,
            url,
            method,
            path,
            write,
            json,
            command,
        } => {
            let p = resolve(&policy, config)?;
            let args = args.unwrap_or_else(|| "{}".to_string());
            let method = method.unwrap_or_else(|| "GET".to_string());
            let (subject, decision) = if let Some(tool) = tool {
                let class = builtin_class(&tool);
                (
                    format!("the tool {tool} with {}", clip(&args, 200)),
                    p.decide_call(&tool, &args, class),
                )
            } else if let Some(url) = url {
                let request = Request::from_url(&url, Some(&method)).map_err(|e| {
                    Failure::bad_input(e, "give a URL like https://pypi.org/simple/")
                })?;
                (format!("{method} {url}"), p.decide_request(&request))
            } else if let Some(path) = path {
                let what = if write { "writing" } else { "reading" };
                (format!("{what} {path}"), p.decide_path(&path, write))
            } else {
                let line = command_line(&command);
                (line.clone(), p.decide_command(&line))
            };
            explain(&p, &subject, &decision, json)
        }
    }
}

/// The risk class a tool's calls have in a run: by what the built-in tool of that name says
/// it can change; a tool cordon does not have is taken as reaching outside.
fn builtin_class(tool: &str) -> RiskClass {
    cordon_harness::approval::risk_class(
        cordon_tools::Registry::builtin()
            .get(tool)
            .map(|r| r.effects),
    )
}

/// The words after `--` as one command line: a single word is the line itself; several are
/// joined, each quoted as the shell would need.
fn command_line(words: &[String]) -> String {
    if let [one] = words {
        return one.clone();
    }
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn explain(p: &Policy, subject: &str, d: &Decision, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "policy": p.name(),
                "digest": p.digest(),
                "files": p.sources().iter().map(|s| &s.origin).collect::<Vec<_>>(),
                "subject": subject,
                "verdict": d.verdict,
                "class": d.class,
                "deciding": d.deciding_keys(),
                "approvers": d.approvers(),
                "reasons": d.reasons,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}: {}", clip(subject, 200), d.verdict);
    println!("  class: {}", d.class.as_str().replace('_', " "));
    let approvers = d.approvers();
    if d.verdict == cordon_policy::Verdict::Ask && !approvers.is_empty() {
        println!("  approvers: {}", approvers.join(", "));
    }
    println!("  rules that applied (the strictest decides):");
    for r in &d.reasons {
        let mark = if r.verdict == d.verdict { "*" } else { " " };
        let mut line = format!(
            "  {mark} {:<5}  {}  on {}",
            r.verdict.as_str(),
            clip(&r.rule, 80),
            clip(&r.subject, 120)
        );
        if let Some(why) = &r.why {
            line.push_str(&format!(" — {}", clip(why, 160)));
        }
        if let Some(at) = &r.at {
            line.push_str(&format!(" ({at})"));
        }
        println!("{line}");
    }
    println!(
        "  policy: {} {}",
        p.name(),
        p.digest()
            .map(|d| d.chars().take(19).collect::<String>())
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn check(name: &str, config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let dir = cordon_session::policy::policies_dir(config);
    let Some(loaded) = cordon_session::policy::read(name, None, dir.as_deref()) else {
        let missing = cordon_session::policy::not_found(name, dir.as_deref());
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "policy": name, "valid": false,
                    "problems": [{"at": name, "message": missing.message(), "hint": missing.hint_text()}],
                })
            );
            return Ok(ExitCode::from(crate::exit::BAD_INPUT));
        }
        return Err(missing.into());
    };
    let (policy, mut problems) = match loaded {
        Ok(p) => {
            let failures = p.check_examples();
            (Some(p), failures)
        }
        Err(e) => (None, vec![e]),
    };
    problems.truncate(100);
    if json {
        let counts = policy.as_ref().map(|p| p.rule_counts());
        println!(
            "{}",
            serde_json::json!({
                "policy": name,
                "valid": problems.is_empty(),
                "name": policy.as_ref().map(|p| p.name()),
                "digest": policy.as_ref().and_then(|p| p.digest()),
                "files": policy.as_ref().map(|p| p.sources().iter().map(|s| s.origin.clone()).collect::<Vec<_>>()),
                "rules": counts.map(|c| serde_json::json!({"tool": c[0], "command": c[1], "path": c[2], "network": c[3]})),
                "credentials": policy.as_ref().map(|p| p.credentials().map(|(c, _)| serde_json::json!({
                    "name": c.name, "hosts": c.host.values(), "env": c.env, "header": c.header,
                    "placeholder": c.placeholder(),
                })).collect::<Vec<_>>()),
                "network_needs_namespaces": policy.as_ref().map(|p| p.network_needs_namespaces()),
                "problems": problems.iter().map(|e| serde_json::json!({"at": e.at, "message": e.message, "hint": e.hint})).collect::<Vec<_>>(),
            })
        );
        return Ok(if problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(crate::exit::BAD_INPUT)
        });
    }
    if !problems.is_empty() {
        for e in &problems {
            eprintln!("error: {e}");
            eprintln!("  hint: {}", e.hint);
        }
        return Ok(ExitCode::from(crate::exit::BAD_INPUT));
    }
    let p = policy.expect("a policy without problems was read");
    let [tools, commands, paths, network] = p.rule_counts();
    let files: Vec<&str> = p.sources().iter().map(|s| s.origin.as_str()).collect();
    println!("policy {} is valid ({})", p.name(), files.join(" < "));
    println!(
        "  rules: {tools} tool, {commands} command, {paths} path, {network} network; every example holds"
    );
    if let Some(d) = p.description() {
        println!("  {}", clip(d, 300));
    }
    for (c, _) in p.credentials() {
        let source = match (&c.from_env, &c.from_file, &c.from_command) {
            (Some(v), _, _) => format!("host variable {v}"),
            (_, Some(f), _) => format!("file {f}"),
            (_, _, Some(cmd)) => format!("command {}", cmd.first().map_or("", |s| s.as_str())),
            _ => String::new(),
        };
        println!(
            "  credential {}: to {} only, from the {source}; the sandbox sees {}{}",
            clip(&c.name, 64),
            clip(&c.host.values().join(", "), 200),
            c.placeholder(),
            c.env
                .as_ref()
                .map_or(String::new(), |e| format!(" in {}", clip(e, 64)))
        );
    }
    if p.may_reach_network() && p.network_needs_namespaces() {
        println!("  network: only from the namespaces tier");
    }
    println!(
        "  classes: {}",
        RiskClass::ALL
            .iter()
            .map(|c| format!("{} {}", c.as_str().replace('_', " "), p.class_default(*c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
