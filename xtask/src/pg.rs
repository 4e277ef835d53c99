//! A throwaway PostgreSQL cluster for tests and benchmarks, stopped and deleted when dropped.
//!
//! If `DATABASE_URL` names a PostgreSQL server, that server is used instead and left alone.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::util;

pub const DATABASE: &str = "tasker_test";

/// How a new cluster writes to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// The server defaults, so benchmark numbers match what a real deployment would see.
    Durable,
    /// No fsync: a crash of a throwaway cluster loses nothing of value, and tests run faster.
    Fast,
}

pub struct PgCluster {
    url: String,
    /// `None` when the server came from `DATABASE_URL` and is not ours to restart or stop.
    server: Option<Server>,
}

impl PgCluster {
    pub fn start(durability: Durability) -> Result<Self> {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if url.starts_with("postgres") {
                println!("using the PostgreSQL server named by DATABASE_URL");
                return Ok(Self { url, server: None });
            }
        }
        let server = Server::start(durability)?;
        let url = format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", server.port);
        Ok(Self {
            url,
            server: Some(server),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A shell command that restarts this cluster, for tests that must see the server go away and come back;
    /// `None` for a server named by `DATABASE_URL`.
    pub fn restart_command(&self) -> Option<String> {
        self.pg_ctl_command(&["restart", "-m", "fast"])
    }

    /// A shell command that stops this cluster (closing every connection), for outage tests; `None` for a
    /// server named by `DATABASE_URL`.
    pub fn stop_command(&self) -> Option<String> {
        self.pg_ctl_command(&["stop", "-m", "fast"])
    }

    /// A shell command that starts this cluster again after [`PgCluster::stop_command`].
    pub fn start_command(&self) -> Option<String> {
        self.pg_ctl_command(&["start"])
    }

    /// The outage commands as environment variables for a test suite: `TASKER_TEST_PG_STOP`,
    /// `TASKER_TEST_PG_START` and `TASKER_TEST_PG_RESTART`, set only when the cluster is ours.
    pub fn outage_env(&self) -> Vec<(&'static str, String)> {
        [
            ("TASKER_TEST_PG_STOP", self.stop_command()),
            ("TASKER_TEST_PG_START", self.start_command()),
            ("TASKER_TEST_PG_RESTART", self.restart_command()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }

    fn pg_ctl_command(&self, action: &[&str]) -> Option<String> {
        let server = self.server.as_ref()?;
        let mut parts: Vec<String> = Vec::new();
        if server.as_postgres {
            parts.extend(["runuser", "-u", "postgres", "--"].map(String::from));
        }
        parts.push(server.bin.join("pg_ctl").display().to_string());
        parts.extend(["-D".into(), server.root.join("data").display().to_string()]);
        parts.extend(["-w", "-t", "60"].map(String::from));
        parts.extend(action.iter().map(|a| a.to_string()));
        if action[0] != "stop" {
            parts.extend(["-l".into(), server.root.join("log").display().to_string()]);
            parts.extend(["-o".into(), server.options()]);
        }
        Some(parts.iter().map(|p| shell_quote(p)).collect::<Vec<_>>().join(" "))
    }

    pub fn restart(&mut self) -> Result<()> {
        match &mut self.server {
            Some(server) => server.restart(),
            None => bail!("cannot restart the server named by DATABASE_URL; it is not ours"),
        }
    }
}

/// A cluster this process started. Its `Drop` does the cleanup, so a half-started cluster is cleaned up too.
struct Server {
    bin: PathBuf,
    /// Holds `data/`, `sock/` and `log`, so one `remove_dir_all` deletes everything.
    root: PathBuf,
    port: u16,
    durability: Durability,
    /// The server refuses to run as root, so as root every server binary runs as the `postgres` user.
    as_postgres: bool,
}

impl Server {
    fn start(durability: Durability) -> Result<Self> {
        let bin = newest_bin_dir()?;
        let as_postgres = effective_uid()? == 0;
        let root = unique_root_dir()?;
        let mut server = Self {
            bin,
            root,
            port: 0,
            durability,
            as_postgres,
        };

        fs::create_dir(server.root.join("sock")).context("could not create the socket dir")?;
        if as_postgres {
            util::output(Command::new("chown").args(["-R", "postgres"]).arg(&server.root))?;
        }
        util::output(
            server
                .server_cmd("initdb")
                .arg("-D")
                .arg(server.root.join("data"))
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]),
        )?;

        // Between finding a free port and the server binding it, another process may take it; try a few.
        let mut attempts = 0;
        loop {
            attempts += 1;
            server.port = free_port()?;
            match server.pg_ctl(&["start"]) {
                Ok(()) => break,
                Err(err) if attempts < 3 && server.log_tail().contains("could not bind") => {
                    println!("port {} was taken, trying another: {err:#}", server.port);
                }
                Err(err) => return Err(err.context(format!("server log:\n{}", server.log_tail()))),
            }
        }
        server.wait_ready()?;
        util::output(server.client_cmd("createdb").arg(DATABASE))?;
        Ok(server)
    }

    fn restart(&mut self) -> Result<()> {
        self.pg_ctl(&["restart", "-m", "fast"])
            .with_context(|| format!("server log:\n{}", self.log_tail()))?;
        self.wait_ready()
    }

    /// Runs `pg_ctl <action>`; start and restart also get the log file and the server options.
    fn pg_ctl(&self, action: &[&str]) -> Result<()> {
        let mut cmd = self.server_cmd("pg_ctl");
        cmd.arg("-D")
            .arg(self.root.join("data"))
            .args(["-w", "-t", "60"])
            .args(action);
        if action[0] != "stop" {
            cmd.arg("-l").arg(self.root.join("log")).args(["-o", &self.options()]);
        }
        util::output(&mut cmd).map(drop)
    }

    /// The server options of `pg_ctl -o`.
    fn options(&self) -> String {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.port,
            self.root.join("sock").display()
        );
        if self.durability == Durability::Fast {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        options
    }

    /// `pg_ctl -w` already waits, but only through the socket; tests connect over TCP, so check that path.
    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !util::succeeds(self.client_cmd("pg_isready").args(["-d", "postgres"])) {
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL on port {} not ready after 30 s; server log:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn server_cmd(&self, tool: &str) -> Command {
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            cmd
        } else {
            Command::new(self.bin.join(tool))
        };
        // The postgres user may not be able to enter the workspace, and initdb complains when it cannot.
        cmd.current_dir(&self.root);
        cmd
    }

    /// Client tools need no special user: the cluster trusts every local TCP connection.
    fn client_cmd(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"]);
        cmd
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.root.join("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The pid file exists exactly while a server may be running on this data dir.
        if self.root.join("data/postmaster.pid").exists() {
            let stopped = self.pg_ctl(&["stop", "-m", "fast"]).or_else(|err| {
                eprintln!("warning: fast stop failed, trying immediate: {err:#}");
                self.pg_ctl(&["stop", "-m", "immediate"])
            });
            if let Err(err) = stopped {
                // Deleting the data dir under a live server would leave an orphan nobody can find.
                eprintln!(
                    "warning: PostgreSQL did not stop; left {} in place: {err:#}",
                    self.root.display()
                );
                return;
            }
        }
        if let Err(err) = fs::remove_dir_all(&self.root) {
            eprintln!("warning: could not remove {}: {err}", self.root.display());
        }
    }
}

/// Debian installs each major version side by side; the newest is the one to test against.
fn newest_bin_dir() -> Result<PathBuf> {
    let versions = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(versions)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().join("bin/pg_ctl").is_file())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.split('.').map(str::parse).collect::<Result<Vec<u32>, _>>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "expected PostgreSQL server binaries in /usr/lib/postgresql/*/bin, found none; install them with \
             `apt-get install postgresql`, or set DATABASE_URL=postgres://... to use a running server"
        ),
    }
}

/// Read from /proc because calling geteuid needs unsafe code, which the workspace forbids, and another dependency.
fn effective_uid() -> Result<u32> {
    let status = fs::read_to_string("/proc/self/status").context("could not read /proc/self/status")?;
    let uids = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .context("no Uid line in /proc/self/status")?;
    let effective = uids
        .split_whitespace()
        .nth(1)
        .context("no effective uid in /proc/self/status")?;
    Ok(effective.parse()?)
}

/// Under /tmp, not `$TMPDIR`: every directory above the data dir must be traversable by the postgres user.
/// The short name also keeps the socket path under its 107-byte limit.
fn unique_root_dir() -> Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for attempt in 0..100 {
        let dir = PathBuf::from(format!("/tmp/tasker-pg-{}-{nanos:x}-{attempt}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err).with_context(|| format!("could not create {}", dir.display())),
        }
    }
    bail!("could not find an unused directory name under /tmp")
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("could not bind a local TCP port")?;
    Ok(listener.local_addr()?.port())
}

/// `cargo xtask pg-smoke`: start, query, restart, query, stop, and check the cluster left nothing behind.
pub fn smoke(durability: Durability) -> Result<()> {
    let started = Instant::now();
    let mut pg = PgCluster::start(durability)?;
    println!(
        "started {} in {:.1} s",
        crate::url::redact(pg.url()),
        started.elapsed().as_secs_f64()
    );
    query(&pg, durability)?;

    if pg.server.is_none() {
        println!("restart skipped: DATABASE_URL names a server this task does not own");
        return Ok(());
    }
    let restarted = Instant::now();
    pg.restart()?;
    println!("restarted in {:.1} s", restarted.elapsed().as_secs_f64());
    query(&pg, durability)?;

    let root = pg.server.as_ref().map(|server| server.root.clone());
    drop(pg);
    if let Some(root) = root.filter(|root| root.exists()) {
        bail!(
            "expected {} to be removed when the cluster stopped, found it still there",
            root.display()
        );
    }
    println!("pg-smoke ok: stopped and removed");
    Ok(())
}

fn query(pg: &PgCluster, durability: Durability) -> Result<()> {
    util::run(Command::new("psql").args([pg.url(), "-X", "-v", "ON_ERROR_STOP=1", "-c", "select 1"]))?;
    if pg.server.is_some() {
        let expected = if durability == Durability::Durable { "on" } else { "off" };
        let fsync = util::output(Command::new("psql").args([pg.url(), "-X", "-A", "-t", "-c", "show fsync"]))?;
        if fsync.trim() != expected {
            bail!("expected fsync={expected}, found fsync={}", fsync.trim());
        }
        println!("fsync={expected}, as expected for {durability:?}");
    }
    Ok(())
}

/// Quotes a word for `sh -c`.
fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
