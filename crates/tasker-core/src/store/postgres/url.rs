//! `postgres://` URLs: parsing, and the one description of where a store's database lives that messages
//! and `Debug` may show.

use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::error::{Error, Result};
use crate::url::{redact, scrub};

/// Where the database lives; all that `Debug` and errors show of a store (never the user or password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    /// `host:port`, or the socket path.
    pub(super) addr: String,
    pub(super) database: String,
}

impl Target {
    pub(super) fn of(options: &PgConnectOptions) -> Target {
        let addr = match options.get_socket() {
            Some(dir) => format!("{}/.s.PGSQL.{}", dir.display(), options.get_port()),
            None if options.get_host().starts_with('/') => {
                format!("{}/.s.PGSQL.{}", options.get_host(), options.get_port())
            }
            None => format!("{}:{}", options.get_host(), options.get_port()),
        };
        // PostgreSQL's default database is the one named like the user.
        let database = options
            .get_database()
            .unwrap_or_else(|| options.get_username())
            .to_string();
        Target { addr, database }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

/// Checks the scheme and parses the URL; the error never shows a password.
pub(super) fn parse_url(url: &str, secrets: &[String]) -> Result<PgConnectOptions> {
    let url = url.trim();
    let shown = scrub(&redact(url), secrets);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::Configuration(format!(
            "invalid postgres url {shown:?}: it must start with postgres:// or postgresql://"
        )));
    }
    PgConnectOptions::from_str(url)
        .map_err(|e| Error::Configuration(scrub(&format!("invalid postgres url {shown:?}: {e}"), secrets)))
}
