//! Built-in tools that touch nothing outside cordon: safe to offer without a sandbox.

use crate::{FunctionTool, Tool, ToolError};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// Arguments of `calculator`.
#[derive(Deserialize, JsonSchema)]
pub struct CalculatorArgs {
    /// An arithmetic expression: numbers, + - * / % ^, parentheses, sqrt(...).
    pub expression: String,
}

/// Arguments of `current_time` (none).
#[derive(Deserialize, JsonSchema)]
pub struct NoArgs {}

/// `calculator`: evaluates arithmetic exactly as written.
pub fn calculator() -> Arc<dyn Tool> {
    Arc::new(FunctionTool::new(
        "calculator",
        "Evaluates an arithmetic expression exactly as written and returns the number.",
        |a: CalculatorArgs| async move {
            evaluate(&a.expression)
                .map(format_number)
                .map_err(|e| ToolError::Failed(e.0))
        },
    ))
}

/// `current_time`: the date and time in UTC.
pub fn current_time() -> Arc<dyn Tool> {
    Arc::new(FunctionTool::new(
        "current_time",
        "Returns the current date and time in UTC (RFC 3339).",
        |_: NoArgs| async move {
            time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| ToolError::Failed(e.to_string()))
        },
    ))
}

/// What is wrong with an arithmetic expression, saying where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

impl From<String> for ExprError {
    fn from(message: String) -> Self {
        ExprError(message)
    }
}

impl From<&str> for ExprError {
    fn from(message: &str) -> Self {
        ExprError(message.to_string())
    }
}

/// Evaluates an arithmetic expression.
pub fn evaluate(expr: &str) -> Result<f64, ExprError> {
    let mut p = Parser {
        chars: expr.chars().filter(|c| !c.is_whitespace()).collect(),
        pos: 0,
    };
    let v = p.sum()?;
    if p.pos < p.chars.len() {
        return Err(ExprError::from(format!(
            "unexpected '{}' at position {} of '{expr}'",
            p.chars[p.pos],
            p.pos + 1
        )));
    }
    if !v.is_finite() {
        return Err(ExprError::from(format!(
            "'{expr}' has no finite value (division by zero?)"
        )));
    }
    Ok(v)
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn sum(&mut self) -> Result<f64, ExprError> {
        let mut v = self.product()?;
        loop {
            if self.eat('+') {
                v += self.product()?;
            } else if self.eat('-') {
                v -= self.product()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn product(&mut self) -> Result<f64, ExprError> {
        let mut v = self.power()?;
        loop {
            if self.eat('*') {
                v *= self.power()?;
            } else if self.eat('/') {
                v /= self.power()?;
            } else if self.eat('%') {
                v %= self.power()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn power(&mut self) -> Result<f64, ExprError> {
        let base = self.unary()?;
        if self.eat('^') {
            return Ok(base.powf(self.power()?));
        }
        Ok(base)
    }

    fn unary(&mut self) -> Result<f64, ExprError> {
        if self.eat('-') {
            return Ok(-self.unary()?);
        }
        if self.eat('+') {
            return self.unary();
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<f64, ExprError> {
        if self.eat('(') {
            let v = self.sum()?;
            return if self.eat(')') {
                Ok(v)
            } else {
                Err("missing ')'".into())
            };
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.pos += 1;
        }
        if self.pos > start {
            let name: String = self.chars[start..self.pos].iter().collect();
            if name != "sqrt" || !self.eat('(') {
                return Err(ExprError::from(format!(
                    "unknown name '{name}' (only sqrt(...) is known)"
                )));
            }
            let v = self.sum()?;
            return if self.eat(')') {
                Ok(v.sqrt())
            } else {
                Err("missing ')' after sqrt(".into())
            };
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if text.is_empty() {
            return Err(match self.peek() {
                Some(c) => format!(
                    "expected a number at position {}, found '{c}'",
                    self.pos + 1
                )
                .into(),
                None => "the expression ends where a number was expected".into(),
            });
        }
        text.parse()
            .map_err(|_| format!("'{text}' is not a number").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_follows_precedence() {
        assert_eq!(evaluate("17 * 23 + 4").unwrap(), 395.0);
        assert_eq!(evaluate("-(2 + 3) * 2 ^ 3 ^ 2 / 512").unwrap(), -5.0);
        assert_eq!(evaluate("sqrt(16) + 7 % 4").unwrap(), 7.0);
        assert_eq!(format_number(evaluate("1/4").unwrap()), "0.25");
        assert_eq!(format_number(395.0), "395");
    }

    #[test]
    fn bad_expressions_say_where() {
        assert!(evaluate("2 +").unwrap_err().0.contains("ends"));
        assert!(evaluate("2 $ 3").unwrap_err().0.contains("position 2"));
        assert!(evaluate("1/0").unwrap_err().0.contains("finite"));
        assert!(evaluate("cos(1)").unwrap_err().0.contains("cos"));
    }
}
