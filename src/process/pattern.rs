//! Java `java.util.regex` semantics for the patterns a flow configures, on the `regex` crate.
//!
//! Owns: turning a pattern (`matchPattern`, `delimiter`, `multiLineStartPattern`,
//! `fileFooterPattern`, and the built-in LOGTOJSON patterns) into a compiled [`Regex`] that
//! matches what the Java agent's `Pattern` matches, and the three ways the Java agent applies one
//! ([`Anchoring`]). Does not own: the syntax check of the configuration (the config module
//! validates the patterns with `regex`, so they are in its syntax).
//!
//! What the port rewrites, outside and inside character classes (Java defaults, no flags):
//! - `\w \W \d \D \s \S` are ASCII-only in Java: `\w` = `[a-zA-Z_0-9]`, `\d` = `[0-9]`,
//!   `\s` = `[ \t\n\x0B\f\r]`. They become the ASCII classes `[:word:]`, `[:digit:]`,
//!   `[:space:]` (the same sets; negations stay Unicode-wide, as Java's `\W` matches `é`).
//! - `.` does not match the Java line terminators `\n \r U+0085 U+2028 U+2029` (Rust's `.`
//!   excludes only `\n`). This is why a CRLF line never matches a LOGTOJSON format: its `\r`
//!   stays at the end after the `\n` is stripped. Not rewritten when the pattern sets the `s`
//!   flag somewhere (then every `.` is Rust's, close to Java's DOTALL).
//! - With [`Anchoring::Prefix`] (Java `lookingAt()` on a line that still has its `\n`), `$`
//!   becomes "optionally one final line terminator, then the end", as Java's `$` matches before a
//!   final terminator. Not rewritten under the `m` flag.
//!
//! Left as they are, with the differences they keep:
//! - `\b` is Unicode-aware in Rust; Java 8 to 18 decide word characters with
//!   `Character.isLetterOrDigit` (also Unicode), Java 19+ with ASCII `\w`. Irrelevant for the
//!   built-in formats (every `\b` there sits between an ASCII letter and a separator).
//! - `$` for [`Anchoring::Full`] and [`Anchoring::Search`]: Java's also matches before a final
//!   line terminator, which under `matches()` only matters if the pattern then consumes that
//!   terminator (`a$\r`), and in a split delimiter is unheard of.
//! - `(?i)` folds Unicode case in Rust, ASCII only in Java.
//! - Java-only syntax (possessive quantifiers, lookaround, back references, `\Q..\E`) was already
//!   refused by the config check.

use regex::Regex;

/// How a pattern is applied to a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchoring {
    /// Java `Matcher.matches()`: the whole text.
    Full,
    /// Java `Matcher.lookingAt()`: a prefix of the text.
    Prefix,
    /// Java `Matcher.find()`: anywhere (as `String.split` uses it).
    Search,
}

/// The Java line terminators `.` must not match, as a class body.
const NOT_LINE_TERMINATOR: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";
/// Java's `$` without MULTILINE: at the end, or before one final line terminator.
const JAVA_DOLLAR: &str = r"(?:\r\n|[\n\r\x{85}\x{2028}\x{2029}])?\z";

/// Compiles `pattern` with Java semantics, anchored as Java applies it.
pub fn compile(pattern: &str, anchoring: Anchoring) -> Result<Regex, String> {
    let ported = port(pattern, anchoring == Anchoring::Prefix);
    // Under `(?x)` a `#` comment runs to the end of the line: end it before our `)`.
    let close = if turns_on(pattern, 'x', true) {
        "\n)"
    } else {
        ")"
    };
    let anchored = match anchoring {
        Anchoring::Full => format!(r"\A(?:{ported}{close}\z"),
        Anchoring::Prefix => format!(r"\A(?:{ported}{close}"),
        Anchoring::Search => ported,
    };
    Regex::new(&anchored).map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))
}

/// Rewrites the parts of `pattern` whose meaning differs between Java and `regex` (see the
/// module header). `prefix` selects the `lookingAt()` form of `$`.
pub fn port(pattern: &str, prefix: bool) -> String {
    let dotall = turns_on(pattern, 's', false);
    let multiline = turns_on(pattern, 'm', false);
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut chars = pattern.chars().peekable();
    // Nesting depth of `[...]` classes (`regex` allows nested classes).
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                match (ascii_class(next), depth) {
                    (Some(name), 0) => {
                        out.push('[');
                        out.push_str(name);
                        out.push(']');
                    }
                    (Some(name), _) => out.push_str(name),
                    (None, _) => {
                        out.push('\\');
                        out.push(next);
                    }
                }
            }
            '[' if depth > 0 && chars.peek() == Some(&':') => {
                // An ASCII class such as `[:alpha:]` inside a class: copied whole.
                out.push('[');
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            '[' => {
                depth += 1;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                // A `]` first in a class is a literal.
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if depth > 0 => {
                depth -= 1;
                out.push(']');
            }
            '.' if depth == 0 && !dotall => out.push_str(NOT_LINE_TERMINATOR),
            '$' if depth == 0 && prefix && !multiline => out.push_str(JAVA_DOLLAR),
            _ => out.push(c),
        }
    }
    out
}

/// The ASCII class (as it is written inside brackets) of a Java class escape.
fn ascii_class(escape: char) -> Option<&'static str> {
    Some(match escape {
        'w' => "[:word:]",
        'W' => "[:^word:]",
        'd' => "[:digit:]",
        'D' => "[:^digit:]",
        's' => "[:space:]",
        'S' => "[:^space:]",
        _ => return None,
    })
}

/// True when an inline flag group of `pattern` (`(?s)` and, unless `global_only`, `(?is:...)`)
/// turns `flag` on. A rough scan: a flag group written inside a class or after a backslash would
/// also count, which only makes the port keep `regex`'s own meaning of `.` or `$`.
fn turns_on(pattern: &str, flag: char, global_only: bool) -> bool {
    let mut rest = pattern;
    while let Some(i) = rest.find("(?") {
        let group = &rest[i + 2..];
        let end = group.find([')', ':']).unwrap_or(group.len());
        let global = group[end..].starts_with(')');
        let on = group[..end].split('-').next().unwrap_or_default();
        let flags_only = on.chars().all(|c| c.is_ascii_alphabetic());
        if flags_only && on.contains(flag) && (global || !global_only) {
            return true;
        }
        rest = group;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_escapes_become_ascii() {
        assert_eq!(
            port(r"\w+\d\s\S", false),
            r"[[:word:]]+[[:digit:]][[:space:]][[:^space:]]"
        );
        assert_eq!(port(r"[\w\-.]", false), r"[[:word:]\-.]");
        assert_eq!(port(r"[^\d]x", false), r"[^[:digit:]]x");
        assert_eq!(port(r"[]a][[:alpha:]b]", false), r"[]a][[:alpha:]b]");
        assert_eq!(port(r"\\w\.\x{41}", false), r"\\w\.\x{41}");
        let w = compile(r"\w+", Anchoring::Full).unwrap();
        assert!(w.is_match("abc_09"));
        assert!(!w.is_match("é"));
        let d = compile(r"\d", Anchoring::Full).unwrap();
        assert!(!d.is_match("٣")); // ARABIC-INDIC DIGIT THREE is a Unicode digit
        let not_w = compile(r"\W", Anchoring::Full).unwrap();
        assert!(not_w.is_match("é"));
    }

    #[test]
    fn dot_does_not_match_java_line_terminators() {
        let re = compile("a.b", Anchoring::Full).unwrap();
        assert!(re.is_match("axb"));
        assert!(re.is_match("a\tb"));
        for t in ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"] {
            assert!(!re.is_match(&format!("a{t}b")), "{t:?}");
        }
        let dotall = compile("(?s)a.b", Anchoring::Full).unwrap();
        assert!(dotall.is_match("a\rb"));
    }

    #[test]
    fn anchorings() {
        let full = compile("ab|abc", Anchoring::Full).unwrap();
        assert!(full.is_match("abc"));
        assert!(!full.is_match("abcd"));
        let prefix = compile("ab|x", Anchoring::Prefix).unwrap();
        assert!(prefix.is_match("abz\n"));
        assert!(!prefix.is_match("zab\n"));
        // Java's `$` matches before a final line terminator.
        let dashes = compile("-{3}$", Anchoring::Prefix).unwrap();
        assert!(dashes.is_match("---\n"));
        assert!(dashes.is_match("---\r\n"));
        assert!(dashes.is_match("---"));
        assert!(!dashes.is_match("----\n"));
        let search = compile(",", Anchoring::Search).unwrap();
        assert_eq!(search.find("a,b").map(|m| m.start()), Some(1));
    }

    #[test]
    fn flag_scan() {
        assert!(turns_on("(?s)a", 's', false));
        assert!(turns_on("x(?is:a)", 's', false));
        assert!(!turns_on("x(?is:a)", 's', true));
        assert!(turns_on("(?ix)a", 'x', true));
        assert!(!turns_on("(?-s)a", 's', false));
        assert!(!turns_on("(?:a)", 's', false));
        assert!(!turns_on("(?P<name>a)", 's', false));
    }

    #[test]
    fn verbose_patterns_keep_their_anchors() {
        let re = compile("(?x) a b # a comment", Anchoring::Full).unwrap();
        assert!(re.is_match("ab"));
        assert!(!re.is_match("abc"));
        let re = compile("(?x) a # start", Anchoring::Prefix).unwrap();
        assert!(re.is_match("abc\n"));
    }
}
