//! Where the CPU went during a timed window, read cheaply from /proc: the PostgreSQL server (the postmaster
//! and every backend), the `tasker worker` processes, this bench process, and the whole machine.
//!
//! Best effort: on a machine without /proc, or with a server this process cannot see (another host, another
//! PID namespace), the parts it cannot read are reported as unknown rather than guessed.

use std::time::Instant;

/// Reads CPU times of the server, the bench and given worker processes.
pub struct CpuProbe {
    /// The postmaster's pid, when the server runs on this machine and is visible in /proc.
    postmaster: Option<u32>,
    /// Clock ticks per second of the times in /proc (`USER_HZ`).
    ticks: f64,
    cores: usize,
}

/// CPU seconds consumed so far, by owner.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    server: Option<f64>,
    bench: Option<f64>,
    /// (busy, total) seconds summed over every CPU of the machine.
    machine: Option<(f64, f64)>,
}

/// CPU used during a window, in CPU seconds, with the window's wall time.
#[derive(Debug, Clone)]
pub struct CpuUsage {
    pub wall: f64,
    pub server: Option<f64>,
    pub workers: Option<f64>,
    pub bench: Option<f64>,
    pub machine_busy: Option<f64>,
    pub machine_total: Option<f64>,
    pub cores: usize,
}

impl CpuProbe {
    /// `backend_pid` is `pg_backend_pid()` of a live connection: its parent is the postmaster. It is only
    /// trusted when both processes are named `postgres` here, so a remote server's pid never matches a local
    /// process by accident.
    pub fn new(backend_pid: Option<u32>) -> CpuProbe {
        let postmaster = backend_pid
            .filter(|&pid| comm(pid).as_deref() == Some("postgres"))
            .and_then(|pid| stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok())))
            .filter(|&ppid| comm(ppid).as_deref() == Some("postgres"));
        CpuProbe {
            postmaster,
            ticks: clock_ticks(),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }

    pub fn sees_server(&self) -> bool {
        self.postmaster.is_some()
    }

    pub fn sample(&self) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            server: self.postmaster.and_then(|pm| self.server_seconds(pm)),
            bench: self.own_seconds("self"),
            machine: self.machine_seconds(),
        }
    }

    /// The CPU of worker processes over their whole life so far (they start inside the window).
    pub fn processes(&self, pids: &[u32]) -> Option<f64> {
        pids.iter()
            .map(|pid| self.own_seconds(&pid.to_string()))
            .sum::<Option<f64>>()
    }

    /// The usage between two samples; `workers` is what [`CpuProbe::processes`] read at the end.
    pub fn usage(&self, from: &CpuSample, to: &CpuSample, workers: Option<f64>) -> CpuUsage {
        let diff = |a: Option<f64>, b: Option<f64>| Some((b? - a?).max(0.0));
        CpuUsage {
            wall: to.at.duration_since(from.at).as_secs_f64(),
            server: diff(from.server, to.server),
            workers,
            bench: diff(from.bench, to.bench),
            machine_busy: diff(from.machine.map(|m| m.0), to.machine.map(|m| m.0)),
            machine_total: diff(from.machine.map(|m| m.1), to.machine.map(|m| m.1)),
            cores: self.cores,
        }
    }

    /// The postmaster's own time, the time of children it has reaped (backends that exited), and the time
    /// of every live child: together every backend's CPU, whether it outlived the window or not.
    fn server_seconds(&self, postmaster: u32) -> Option<f64> {
        let f = stat_fields(postmaster)?;
        let own: f64 = (11..=14).map(|i| field(&f, i)).sum::<Option<f64>>()?;
        let children: f64 = children_of(postmaster)
            .into_iter()
            .filter_map(|pid| {
                let f = stat_fields(pid)?;
                Some(field(&f, 11)? + field(&f, 12)?)
            })
            .sum();
        Some((own + children) / self.ticks)
    }

    /// utime + stime of one process (all its threads).
    fn own_seconds(&self, pid: &str) -> Option<f64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let f = fields_after_comm(&text)?;
        Some((field(&f, 11)? + field(&f, 12)?) / self.ticks)
    }

    fn machine_seconds(&self) -> Option<(f64, f64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is already inside user).
        if v.len() < 8 {
            return None;
        }
        let idle = v[3] + v[4];
        let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        Some((busy / self.ticks, (busy + idle) / self.ticks))
    }
}

impl CpuUsage {
    /// For example `PostgreSQL 1.21 cores · worker processes 0.52 · bench 0.03 · rest of the machine 0.10 ·
    /// machine 93% busy (2 cores)`.
    pub fn show(&self) -> String {
        let per = |cpu: Option<f64>| match cpu {
            Some(c) if self.wall > 0.0 => format!("{:.2}", c / self.wall),
            _ => "unknown".into(),
        };
        let mut parts = vec![format!("PostgreSQL server {}", per(self.server))];
        if let Some(w) = self.workers {
            parts.push(format!("worker processes {}", per(Some(w))));
        }
        parts.push(format!("bench process {}", per(self.bench)));
        let known = [self.server, self.workers.or(Some(0.0)), self.bench]
            .into_iter()
            .sum::<Option<f64>>();
        if let (Some(busy), Some(known)) = (self.machine_busy, known) {
            parts.push(format!("everything else {}", per(Some((busy - known).max(0.0)))));
        }
        let mut s = format!("{} cores", parts.join(" · "));
        if let (Some(busy), Some(total)) = (self.machine_busy, self.machine_total) {
            if total > 0.0 {
                let _ = std::fmt::Write::write_fmt(
                    &mut s,
                    format_args!("; machine {:.0}% busy ({} cores)", busy / total * 100.0, self.cores),
                );
            }
        }
        s
    }
}

/// The fields of /proc/<pid>/stat after `(comm)`: index 0 is the state, 1 the ppid, 11 utime, 12 stime,
/// 13 cutime, 14 cstime.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    fields_after_comm(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The command name may hold spaces and parentheses, so split after its last `)`.
fn fields_after_comm(text: &str) -> Option<Vec<String>> {
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn field(f: &[String], i: usize) -> Option<f64> {
    f.get(i)?.parse().ok()
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn children_of(ppid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid)
                .and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()))
                .is_some_and(|p| p == ppid)
        })
        .collect()
}

/// `USER_HZ` from `getconf CLK_TCK`; 100 on every Linux this runs on when getconf is missing.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let f = fields_after_comm("42 (a (b) c) S 7 42 42 0 -1 0 0 0 0 0 150 25 3 4 20 0").unwrap();
        assert_eq!(f[0], "S");
        assert_eq!(f[1], "7");
        assert_eq!(field(&f, 11), Some(150.0));
        assert_eq!(field(&f, 12), Some(25.0));
        assert_eq!(field(&f, 14), Some(4.0));
    }
}
