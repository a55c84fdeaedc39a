//! `cordon approve`, `cordon reject` and `cordon pause`: a person's decisions on a run, from
//! any process; the session library records them.

use super::Paths;
use crate::render::clip;
use cordon_core::state::Awaiting;
use cordon_harness::approval::describe_rule;
use std::process::ExitCode;

/// Who is deciding: `--as`, else this OS user.
fn decider(as_name: Option<String>) -> String {
    as_name.unwrap_or_else(|| {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::getuid())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()))
    })
}

/// Prints one waiting call as a person deciding on it needs to see it: its id, tool, the
/// rules that asked, and its arguments.
pub fn describe_waiting(call: &str, waiting: &Awaiting) {
    let rules: Vec<String> = waiting.rules.iter().map(|r| describe_rule(r)).collect();
    eprintln!(
        "  {call}  {}  (asked by: {})",
        clip(&waiting.tool, 64),
        rules.join("; ")
    );
    let args = arguments_text(&waiting.arguments);
    for line in args.lines().take(20) {
        eprintln!("      {}", clip(line, 200));
    }
    if args.lines().count() > 20 {
        eprintln!("      … (`cordon show RUN --json` has the whole call)");
    }
}

/// A call's arguments as a person reads them: a command's text as is, other JSON pretty.
fn arguments_text(arguments: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(v) => match v.get("cmd").and_then(|c| c.as_str()) {
            Some(cmd) if v.as_object().is_some_and(|o| o.len() == 1) => format!("$ {cmd}"),
            _ => serde_json::to_string_pretty(&v).unwrap_or_else(|_| arguments.to_string()),
        },
        Err(_) => arguments.to_string(),
    }
}

/// Approves one waiting call, or all of them.
pub async fn approve(
    paths: &Paths<'_>,
    run: &str,
    call: Option<&str>,
    always: bool,
    as_name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    let (run_id, approved) = session
        .approve(run, call, always, &decider(as_name))
        .await?;
    for a in approved {
        let scope = if !always {
            String::new()
        } else if a.always_rules.is_empty() {
            " (this call only: the request did not record which rule it matched)".into()
        } else {
            format!(
                ", and from now on in this run {}",
                a.always_rules
                    .iter()
                    .map(|r| describe_rule(r))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        println!(
            "approved {} ({}){scope}",
            a.call_id,
            clip(&a.waiting.tool, 64)
        );
    }
    eprintln!("continue with: cordon resume {run_id}");
    Ok(ExitCode::SUCCESS)
}

/// Rejects a waiting call; the model is told.
pub async fn reject(
    paths: &Paths<'_>,
    run: &str,
    call: &str,
    message: Option<String>,
    as_name: Option<String>,
) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    let run_id = session
        .reject(run, call, &message.unwrap_or_default(), &decider(as_name))
        .await?;
    println!("rejected {call}");
    eprintln!("continue with: cordon resume {run_id}");
    Ok(ExitCode::SUCCESS)
}

/// Asks a running run to pause after its current step, whichever process runs it.
pub async fn pause(paths: &Paths<'_>, run: &str) -> anyhow::Result<ExitCode> {
    let session = super::session(paths).await?;
    let run_id = session.request_pause(run).await?;
    println!("asked run {run_id} to pause after its current step");
    eprintln!("once it has: cordon resume {run_id}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_shown_as_its_text() {
        assert_eq!(
            arguments_text(r#"{"cmd":"rm -rf build"}"#),
            "$ rm -rf build"
        );
        assert!(arguments_text(r#"{"cmd":"ls","workdir":"src"}"#).contains("\"workdir\""));
        assert_eq!(arguments_text("*** Begin Patch"), "*** Begin Patch");
    }
}
