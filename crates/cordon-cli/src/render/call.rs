//! A tool call and its result as a person reads them: a command with its directory and exit
//! status, a patch as a diff, an image by name and size, anything else by its arguments.

use super::{Limit, Style, clip, lines_within, plural};
use cordon_tools::exec_report::{ExecReport, ExecStatus};
use serde_json::Value;

/// The arguments as JSON, when they are.
fn json(arguments: &str) -> Option<Value> {
    serde_json::from_str(arguments).ok()
}

/// A patch's text: the arguments as given (custom tool), or their `input` field.
fn patch_text(arguments: &str) -> String {
    json(arguments)
        .and_then(|v| v["input"].as_str().map(str::to_string))
        .unwrap_or_else(|| arguments.to_string())
}

/// The files a patch touches, as `A path`, `M path`, `D path`.
fn patch_files(patch: &str) -> Vec<String> {
    let mut files = Vec::new();
    for line in patch.lines() {
        if let Some(p) = line.strip_prefix("*** Add File: ") {
            files.push(format!("A {p}"));
        } else if let Some(p) = line.strip_prefix("*** Delete File: ") {
            files.push(format!("D {p}"));
        } else if let Some(p) = line.strip_prefix("*** Update File: ") {
            files.push(format!("M {p}"));
        } else if let Some(p) = line.strip_prefix("*** Move to: ")
            && let Some(last) = files.last_mut()
        {
            last.push_str(&format!(" → {p}"));
        }
    }
    files
}

/// What a call asks for, in one line: `$ make test`, `patch M src/lib.rs`, `view a.png`.
pub fn call_line(tool: &str, arguments: &str) -> String {
    let v = json(arguments);
    let field = |name: &str| {
        v.as_ref()
            .and_then(|v| v[name].as_str().map(str::to_string))
    };
    match tool {
        "exec_command" if let Some(cmd) = field("cmd") => format!("$ {}", clip(&cmd, ONE_LINE)),
        "write_stdin" if let Some(v) = &v => {
            let chars = v["chars"].as_str().unwrap_or_default();
            let session = &v["session_id"];
            if chars.is_empty() {
                format!("reads more output of session {session}")
            } else {
                format!(
                    "types {} into session {session}",
                    clip(&format!("{chars:?}"), 120)
                )
            }
        }
        "apply_patch" => {
            let files = patch_files(&patch_text(arguments));
            if files.is_empty() {
                "patch (no files named)".into()
            } else {
                format!("patch {}", clip(&files.join(", "), ONE_LINE))
            }
        }
        "view_image" if let Some(path) = field("path") => format!("view {}", clip(&path, ONE_LINE)),
        _ => clip(arguments, ONE_LINE),
    }
}

/// The lines under a call: where a command runs, a patch's diff, other arguments in full.
pub fn call_details(tool: &str, arguments: &str, style: Style, limit: Limit) -> Vec<String> {
    let v = json(arguments);
    match tool {
        "exec_command" if v.as_ref().is_some_and(|v| v["cmd"].is_string()) => {
            let v = v.unwrap_or_default();
            let mut out = Vec::new();
            let cmd = v["cmd"].as_str().unwrap_or_default();
            if cmd.lines().nth(1).is_some() || cmd.chars().count() > ONE_LINE {
                out.extend(
                    lines_within(cmd, limit)
                        .into_iter()
                        .map(|l| format!("  {l}")),
                );
            }
            let mut how = Vec::new();
            if let Some(dir) = v["workdir"].as_str().filter(|d| !matches!(*d, "" | ".")) {
                how.push(format!("in {dir}"));
            }
            if v["tty"] == true {
                how.push("under a terminal".into());
            }
            if let Some(shell) = v["shell"].as_str() {
                how.push(format!("with {shell}"));
            }
            if v["login"] == false {
                how.push("not a login shell".into());
            }
            if let Some(ms) = v["yield_time_ms"].as_u64() {
                how.push(format!("waits {} for output", seconds(ms as f64 / 1000.0)));
            }
            if !how.is_empty() {
                out.push(style.dim(&how.join(" · ")));
            }
            out
        }
        // A patch is what a person most needs to read whole; only a long one is clipped.
        "apply_patch" => lines_within(&patch_text(arguments), patch_limit(arguments, limit))
            .into_iter()
            .map(|l| style.diff_line(&l))
            .collect(),
        "exec_command" | "write_stdin" | "view_image" => Vec::new(),
        // Arguments that fit on the call's own line are not repeated under it.
        _ if arguments.lines().nth(1).is_none() && arguments.chars().count() <= ONE_LINE => {
            Vec::new()
        }
        _ => {
            let text = v
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| arguments.to_string());
            lines_within(&text, limit)
        }
    }
}

/// The most of a call's arguments shown on its own line.
const ONE_LINE: usize = 160;

/// Patches up to this many lines are shown whole even when texts are clipped.
const PATCH_LINES: usize = 40;

fn patch_limit(arguments: &str, limit: Limit) -> Limit {
    if arguments.lines().count() <= PATCH_LINES {
        Limit::Full
    } else {
        limit
    }
}

/// The most of a result's first line shown on the result's own line.
const RESULT_LINE: usize = 140;

/// A finished call: one line (`exit 0 · 310 ms · 12 lines`, `error: ...`, `Done. M a.txt`)
/// and the lines under it (a command's output, its first and last lines unless `limit` is
/// full; the rest of any other output).
pub fn result(r: &ResultView<'_>, style: Style, limit: Limit) -> (String, Vec<String>) {
    let report = matches!(r.tool, "exec_command" | "write_stdin")
        .then(|| ExecReport::parse(r.output))
        .flatten();
    let (line, body) = match report {
        Some(report) if !r.is_error && !r.not_run => (exec_line(&report, style), report.output),
        _ => {
            let mut line = clip(r.output, RESULT_LINE);
            if r.not_run {
                line = style.yellow(&format!("not run: {line}"));
            } else if r.is_error {
                // Failed calls' output says so itself ("error: ..."): not twice.
                let said = line.strip_prefix("error: ").unwrap_or(&line);
                line = style.red(&format!("error: {said}"));
            }
            for image in r.images {
                line.push_str(&format!(" · {}", image_label(image)));
            }
            // The first line is on the result's own line, unless it was cut there and the
            // whole is asked for.
            let (first, rest) = r.output.split_once('\n').unwrap_or((r.output, ""));
            let body = if limit == Limit::Full && first.chars().count() > RESULT_LINE {
                r.output.to_string()
            } else {
                rest.to_string()
            };
            (line, body)
        }
    };
    let details = lines_within(&body, limit)
        .into_iter()
        .map(|l| style.dim(&format!("│ {l}")))
        .collect();
    (line, details)
}

/// A command's status, time and output size in one line.
fn exec_line(report: &ExecReport, style: Style) -> String {
    let status = match &report.status {
        ExecStatus::Exited(0) => style.green("exit 0"),
        ExecStatus::Exited(c) => style.red(&format!("exit {c}")),
        ExecStatus::Signaled(s) => match report.timed_out_after() {
            Some(secs) => style.red(&format!("timed out after {secs} s (killed)")),
            None => style.red(&format!("killed by signal {s}")),
        },
        ExecStatus::Running(id) => style.yellow(&format!("still running as session {id}")),
        ExecStatus::Ended(how) => style.red(how),
    };
    let lines = match report.output.lines().count() as u64 {
        0 => "no output".to_string(),
        n => plural(n, "line", "lines"),
    };
    let mut line = format!("{status} · {} · {lines}", seconds(report.wall_secs));
    if report.dropped_bytes > 0 {
        line.push_str(&format!(" · {} bytes not kept", report.dropped_bytes));
    }
    line
}

/// A recorded result, as `tool_result` stores it.
pub struct ResultView<'a> {
    /// The tool that answered.
    pub tool: &'a str,
    /// What the model read.
    pub output: &'a str,
    /// Images sent with it, as `data:` URLs.
    pub images: &'a [String],
    /// Whether the call failed.
    pub is_error: bool,
    /// Whether cordon answered without running it.
    pub not_run: bool,
}

/// `image/png, 12.3 KiB` for a `data:` URL.
fn image_label(url: &str) -> String {
    let (head, data) = url.split_once(',').unwrap_or(("", url));
    let mime = head
        .strip_prefix("data:")
        .and_then(|h| h.split(';').next())
        .unwrap_or("image");
    format!("{mime} image, {}", bytes((data.len() as u64 / 4) * 3))
}

/// Seconds, to a precision that suits their size.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

/// A byte count in the unit that suits it.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return plural(n, "byte", "bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_read_as_what_they_do() {
        assert_eq!(
            call_line("exec_command", r#"{"cmd":"make test"}"#),
            "$ make test"
        );
        assert_eq!(
            call_line(
                "apply_patch",
                "*** Begin Patch\n*** Update File: a.rs\n*** Move to: b.rs\n@@\n-x\n+y\n*** Add File: c\n+z\n*** End Patch"
            ),
            "patch M a.rs → b.rs, A c"
        );
        assert_eq!(
            call_line("write_stdin", r#"{"session_id":3,"chars":"y\n"}"#),
            r#"types "y\n" into session 3"#
        );
        assert_eq!(call_line("calculator", r#"{"a":1}"#), r#"{"a":1}"#);
        assert!(
            call_details("calculator", r#"{"a":1}"#, Style::PLAIN, Limit::Full).is_empty(),
            "short arguments are not repeated"
        );
        let long = format!(r#"{{"a":"{}","b":2}}"#, "x".repeat(200));
        assert_eq!(
            call_details("calculator", &long, Style::PLAIN, Limit::Full).len(),
            4,
            "long ones are shown whole, pretty"
        );
        assert_eq!(
            call_details(
                "exec_command",
                r#"{"cmd":"ls","workdir":"src","tty":true}"#,
                Style::PLAIN,
                Limit::Clip
            ),
            vec!["in src · under a terminal"]
        );
    }

    #[test]
    fn a_command_result_shows_its_status_time_and_output() {
        let report = ExecReport {
            chunk_id: "x".into(),
            wall_secs: 0.5,
            status: ExecStatus::Exited(2),
            original_tokens: 1,
            dropped_bytes: 0,
            output: (1..=10).map(|i| format!("line {i}\n")).collect(),
        }
        .to_string();
        let r = ResultView {
            tool: "exec_command",
            output: &report,
            images: &[],
            is_error: false,
            not_run: false,
        };
        let (line, shown) = result(&r, Style::PLAIN, Limit::Clip);
        assert_eq!(line, "exit 2 · 500 ms · 10 lines");
        assert_eq!(shown.first().unwrap(), "│ line 1");
        assert_eq!(shown.last().unwrap(), "│ line 10");
        assert!(
            shown.iter().any(|l| l.contains("4 more lines")),
            "{shown:?}"
        );
        assert_eq!(result(&r, Style::PLAIN, Limit::Full).1.len(), 10);
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(
            image_label("data:image/png;base64,AAAA"),
            "image/png image, 3 bytes"
        );
    }
}
