//! Database URLs as they may be shown: the one place that knows where a password can hide in one.
//!
//! A password can sit in the user info of a URL (`postgres://user:pw@host/db`, percent-encoded or not), in a
//! query parameter (`?password=pw`, `?sslpassword=pw`), or in a key/value connection string
//! (`host=h password=pw`, `password='p w'`). [`redact`] masks every one of them; [`secrets`] and [`scrub`]
//! are the last line of defence for messages built from driver errors, which may quote a password in either
//! its written or its decoded form. When a malformed URL leaves doubt about where a password ends, more is
//! masked rather than less. The CLI, the bindings, the stores and xtask all show URLs through here.
//!
//! Only `std` here: xtask compiles this very file as a module of its own (see `xtask/src/main.rs`).

use std::ops::Range;

/// What every secret is replaced with.
pub const MASK: &str = "***";

/// `url` with every password replaced by `***`: the only form of a database URL that may reach a log, an
/// error or `Debug` output. Text without a password comes back unchanged.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    // From the end, so that earlier ranges stay valid.
    for span in secret_spans(url).into_iter().rev() {
        out.replace_range(span, MASK);
    }
    out
}

/// The passwords in `url`, each as written and, where that differs, as a driver would decode it
/// (percent-decoded in a URL, unquoted in a key/value string): the strings no message may contain.
pub fn secrets(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    for span in secret_spans(url) {
        let raw = &url[span];
        let decoded = match raw.strip_prefix('\'') {
            Some(quoted) => unquote(quoted),
            None => percent_decode(raw),
        };
        if decoded != raw && !decoded.is_empty() && !out.contains(&decoded) {
            out.push(decoded);
        }
        if !out.iter().any(|s| s == raw) {
            out.push(raw.to_string());
        }
    }
    out
}

/// `msg` with every one of `secrets` replaced by `***`, longest first, so that no part of a longer secret
/// survives the replacement of a shorter one inside it.
pub fn scrub(msg: &str, secrets: &[String]) -> String {
    let mut ordered: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut msg = msg.to_string();
    for s in ordered {
        if msg.contains(s.as_str()) {
            msg = msg.replace(s.as_str(), MASK);
        }
    }
    msg
}

/// Byte ranges of the password values in `s`, in order and without overlaps.
fn secret_spans(s: &str) -> Vec<Range<usize>> {
    if let Some(i) = s.find("://") {
        return url_spans(s, i + 3);
    }
    match slashless_authority(s) {
        Some(start) => url_spans(s, start),
        None => key_value_spans(s),
    }
}

/// Where the authority of a one-word `scheme:rest` starts when the `//` is missing or short
/// (`postgres:/u:pw@h`, `postgres:u:pw@h`): after the scheme and any slashes.
fn slashless_authority(s: &str) -> Option<usize> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !is_scheme || s.contains(char::is_whitespace) {
        return None;
    }
    let slashes = s[colon + 1..].len() - s[colon + 1..].trim_start_matches('/').len();
    Some(colon + 1 + slashes)
}

/// A URL whose authority starts at `start`: the password of the user info and of every `*password`
/// query parameter.
fn url_spans(s: &str, start: usize) -> Vec<Range<usize>> {
    let rest = &s[start..];
    let mut spans = Vec::new();
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..authority_end].rfind('@') {
        Some(at) => Some(at),
        // No `@` in the authority as a parser sees it, yet one further on after a `:`: most likely a
        // password with an unencoded `/`, `?` or `#` in it (`u:pa/ss@h`). Treat it as one.
        None => rest.rfind('@').filter(|&at| rest[..at].contains(':')),
    };
    let mut host_start = 0;
    if let Some(at) = at {
        if let Some(colon) = rest[..at].find(':') {
            if colon + 1 < at {
                spans.push(start + colon + 1..start + at);
            }
        }
        host_start = at + 1;
    }
    if let Some(q) = rest[host_start..].find('?') {
        let query_start = host_start + q + 1;
        let query_end = rest[query_start..].find('#').map_or(rest.len(), |h| query_start + h);
        let mut pos = query_start;
        for pair in rest[query_start..query_end].split('&') {
            if let Some((key, value)) = pair.split_once('=') {
                if is_password_key(key) && !value.is_empty() {
                    let value_start = start + pos + key.len() + 1;
                    spans.push(value_start..value_start + value.len());
                }
            }
            pos += pair.len() + 1;
        }
    }
    spans
}

/// A libpq-style key/value string: `key=value` pairs apart by white space, spaces allowed around `=`, a
/// value bare or in single quotes with backslash escapes. A token that is no pair is passed over.
fn key_value_spans(s: &str) -> Vec<Range<usize>> {
    let b = s.as_bytes();
    let skip_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        i = skip_space(i);
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &s[key_start..i];
        i = skip_space(i);
        if i >= b.len() || b[i] != b'=' || key.is_empty() {
            // Not a pair: go on after this word.
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            continue;
        }
        i = skip_space(i + 1);
        let value_start = i;
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            // Past the closing quote; an unterminated value runs to the end.
            i = (i + 1).min(b.len());
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        if is_password_key(key) && i > value_start {
            spans.push(value_start..i);
        }
    }
    spans
}

/// `password`, `sslpassword`, `PGPASSWORD`, …: any key that names a password.
fn is_password_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("password")
}

/// The text of a single-quoted value (after its opening quote), with `\'` and `\\` unescaped.
fn unquote(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '\'' => break,
            c => out.push(c),
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_passwords_are_masked() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgresql://u:secret@h/db"), "postgresql://u:***@h/db");
        assert_eq!(redact("postgres://u:p%40ss@h/db?x=1"), "postgres://u:***@h/db?x=1");
        // An unencoded `@` belongs to the password: the host is after the last one.
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        // So do an unencoded `/`, `?` or `#`, where a strict parser would lose track.
        assert_eq!(redact("postgres://u:pa/ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u:p?ss#x@h/db"), "postgres://u:***@h/db");
        // A password with a `:` in it is masked whole.
        assert_eq!(redact("postgres://u:a:b@h/db"), "postgres://u:***@h/db");
        // A slip in the `//` does not expose the password.
        assert_eq!(redact("postgres:/u:pw@h/db"), "postgres:/u:***@h/db");
        assert_eq!(redact("postgres:u:pw@h/db"), "postgres:u:***@h/db");
        // Text before the scheme is kept, as in `NAME=url` words on a command line.
        assert_eq!(
            redact("TASKER_TEST_PG_URL=postgres://u:pw@127.0.0.1:5/db"),
            "TASKER_TEST_PG_URL=postgres://u:***@127.0.0.1:5/db"
        );
    }

    #[test]
    fn query_string_passwords_are_masked() {
        assert_eq!(
            redact("postgres://u@h/db?password=x1&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(
            redact("postgres://u:a@h/db?sslmode=disable&password=b%26c#frag"),
            "postgres://u:***@h/db?sslmode=disable&password=***#frag"
        );
        assert_eq!(
            redact("postgres://h/db?sslpassword=k&PASSWORD=p"),
            "postgres://h/db?sslpassword=***&PASSWORD=***"
        );
        assert_eq!(redact("postgres://h/db?password="), "postgres://h/db?password=");
    }

    #[test]
    fn key_value_passwords_are_masked() {
        assert_eq!(
            redact("host=h port=5432 user=u password=pw dbname=db"),
            "host=h port=5432 user=u password=*** dbname=db"
        );
        assert_eq!(redact("password = pw host=h"), "password = *** host=h");
        assert_eq!(redact(r"host=h password='p w\'x' user=u"), "host=h password=*** user=u");
        assert_eq!(redact("password='unterminated"), "password=***");
        assert_eq!(redact("PGPASSWORD=secret"), "PGPASSWORD=***");
        assert_eq!(redact("host=h sslpassword=k"), "host=h sslpassword=***");
    }

    #[test]
    fn text_without_a_password_is_unchanged() {
        for s in [
            "postgres://u@h/db",
            "postgres://h:5432/db?sslmode=require",
            "sqlite://tasker.db",
            "sqlite::memory:",
            "sqlite:tasker.db",
            "memory:",
            "mailto:someone@example.com",
            "docs/benchmarks.md",
            "host=h user=u",
            "--features=x",
            "",
        ] {
            assert_eq!(redact(s), s);
        }
    }

    #[test]
    fn no_form_leaks_its_secret() {
        for url in [
            "postgres://u:s3cr3t@h/db",
            "postgresql://u:s3cr3t@h:1/db?x=y",
            "postgres://u@h/db?password=s3cr3t",
            "host=h password=s3cr3t",
            "host=h password = 's3cr3t'",
            "postgres://u:s3cr3t@h/db?password=s3cr3t",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("s3cr3t"), "{url} -> {shown}");
            assert!(shown.contains(MASK), "{url} -> {shown}");
        }
    }

    #[test]
    fn secrets_are_found_in_written_and_decoded_form() {
        assert_eq!(
            secrets("postgres://u:p%40ss@h/db"),
            vec!["p@ss".to_string(), "p%40ss".to_string()]
        );
        assert_eq!(
            secrets("postgres://u@h/db?password=x1&sslmode=disable"),
            vec!["x1".to_string()]
        );
        assert_eq!(
            secrets(r"host=h password='a \'b'"),
            vec!["a 'b".to_string(), r"'a \'b'".to_string()]
        );
        // The same password twice is listed once.
        assert_eq!(secrets("postgres://u:x@h/db?password=x"), vec!["x".to_string()]);
        assert!(secrets("postgres://u@h:5432/db").is_empty());
        assert!(secrets("postgres://h/db?user=u").is_empty());
    }

    #[test]
    fn scrub_replaces_every_secret_longest_first() {
        assert_eq!(
            scrub("a p@ss b p%40ss", &secrets("postgres://u:p%40ss@h/db")),
            "a *** b ***"
        );
        // A short secret inside a longer one must not leave the rest of the longer one behind.
        let s = vec!["pw".to_string(), "pw%21x".to_string()];
        assert_eq!(scrub("got pw%21x", &s), "got ***");
        assert_eq!(scrub("nothing here", &[String::new()]), "nothing here");
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
    }
}
