//! Why a value from outside was refused ([`ParseError`]), and the bounded-text rule names
//! and clinical text share.

use std::borrow::Cow;

/// Why a value from outside was refused: a stable snake_case `code` naming the rule and
/// the `field` it applies to (a path such as `investigations[1].notes` inside nested
/// bodies). Routes turn it into a `422`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ParseError {
    pub code: &'static str,
    pub field: Cow<'static, str>,
    pub message: String,
}

impl ParseError {
    pub fn new(
        code: &'static str, field: impl Into<Cow<'static, str>>, message: impl Into<String>,
    ) -> Self {
        Self { code, field: field.into(), message: message.into() }
    }

    /// The same rule applied to another field (e.g. a name used as `family_name`).
    pub fn for_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = field.into();
        self
    }
}

/// Trims and checks a bounded single-line or multi-line text; shared by names and
/// clinical text so the rules stay in one place.
pub fn bounded_text(
    raw: &str, field: &'static str, max_chars: usize, multiline: bool,
) -> Result<String, ParseError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(ParseError::new("required", field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(ParseError::new(
            "too_long",
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    let bad = |c: char| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t'));
    if text.chars().any(bad) {
        return Err(ParseError::new("invalid_characters", field, "contains control characters"));
    }
    Ok(text.to_string())
}
