//! `sqlite:` URLs: where the database lives.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Where the database lives; all that `Debug` shows of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Location {
    Memory,
    File(PathBuf),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory => f.write_str(":memory:"),
            Location::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Parses `sqlite://path`, `sqlite:///abs/path`, `sqlite:path` and `sqlite::memory:`.
pub(super) fn parse_url(url: &str) -> Result<Location> {
    let bad = |why: &str| {
        Error::Configuration(format!(
            "invalid sqlite url {:?}: {why} (expected sqlite://path/to/file.db, sqlite:///abs/path.db or sqlite::memory:)",
            crate::url::redact(url)
        ))
    };
    let rest = url
        .trim()
        .strip_prefix("sqlite:")
        .ok_or_else(|| bad("it must start with sqlite:"))?;
    if rest == ":memory:" || rest == "//:memory:" {
        return Ok(Location::Memory);
    }
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.contains('?') || path.contains('#') {
        return Err(bad("query parameters and fragments are not supported"));
    }
    if path.is_empty() {
        return Err(bad("the path is empty"));
    }
    Ok(Location::File(PathBuf::from(path)))
}
