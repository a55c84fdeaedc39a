//! Colour for people at a terminal, and none for pipes, files or `NO_COLOR`.

use std::io::IsTerminal;

/// Whether to colour text, decided once per output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// No colour at all (pipes, files, tests).
    pub const PLAIN: Style = Style { color: false };

    /// Colour when `stream` is a terminal and `NO_COLOR` is unset (<https://no-color.org>).
    pub fn for_stream(stream: &impl IsTerminal) -> Style {
        let off = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: !off && stream.is_terminal(),
        }
    }

    /// The style for stdout.
    pub fn stdout() -> Style {
        Style::for_stream(&std::io::stdout())
    }

    /// The style for stderr.
    pub fn stderr() -> Style {
        Style::for_stream(&std::io::stderr())
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Added lines, success.
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Removed lines, failure.
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Hunk headers, waiting states.
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// What matters most on a line.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Output and other quoted text.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// One line of a patch, coloured as a diff.
    pub fn diff_line(self, line: &str) -> String {
        if line.starts_with("***") {
            self.bold(line)
        } else if line.starts_with('+') {
            self.green(line)
        } else if line.starts_with('-') {
            self.red(line)
        } else if line.starts_with("@@") {
            self.yellow(line)
        } else {
            line.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_adds_no_escapes_and_colour_does() {
        assert_eq!(Style::PLAIN.diff_line("+x"), "+x");
        let c = Style { color: true };
        assert_eq!(c.diff_line("+x"), "\x1b[32m+x\x1b[0m");
        assert_eq!(c.diff_line(" x"), " x");
    }
}
