//! A PostgreSQL server of the test's own, for faults that would disturb every other test on the
//! shared one (stopping it): `initdb` into a temporary directory, started on a free loopback
//! port, removed when dropped. As root it runs as the `postgres` user, as PostgreSQL demands.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl OwnPostgres {
    /// A fresh cluster with a `commerce` database, running. `fsync` is off: the tests using it
    /// stop processes, they do not pull the power.
    pub fn start() -> OwnPostgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("commerce-own-pg")
            .tempdir()
            .expect("temp dir");
        if as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster directory");
        }
        let data = dir.path().join("data");
        run(
            &bin,
            "initdb",
            &["-A", "trust", "-U", "postgres", "-D"],
            &data,
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            dir.path().display()
        );
        let log = dir.path().join("log");
        let mut args = vec!["-w", "-o", &options, "-l"];
        let log = log.to_string_lossy().into_owned();
        args.push(&log);
        args.extend(["start", "-D"]);
        run(&bin, "pg_ctl", &args, &data);
        run(
            &bin,
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "commerce",
            ],
            Path::new(""),
        );
        OwnPostgres { dir, bin, port }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/commerce", self.port)
    }

    /// Sends `signal` to the postmaster and every process it started: SIGSTOP freezes the whole
    /// server as a stalled machine would, SIGCONT lets it go on.
    pub fn signal_all(&self, signal: Signal) {
        let postmaster = self.postmaster();
        let mut pids = children(postmaster);
        pids.push(postmaster);
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    fn postmaster(&self) -> i32 {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).expect("postmaster.pid");
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("a pid on the first line")
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // A stopped server cannot stop: let it go on first.
        self.signal_all(Signal::SIGCONT);
        let data = self.dir.path().join("data");
        let mut command = command(&self.bin, "pg_ctl");
        command
            .args(["-m", "immediate", "-w", "stop", "-D"])
            .arg(&data);
        let _ = command.status();
    }
}

fn as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The newest installed PostgreSQL's programs (Debian keeps them out of PATH).
fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.pop()
        .filter(|d| d.join("initdb").exists())
        .expect("PostgreSQL's server programs (initdb, pg_ctl) under /usr/lib/postgresql")
}

fn command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        Command::new(path)
    }
}

fn run(bin: &Path, program: &str, args: &[&str], last: &Path) {
    let mut command = command(bin, program);
    command.args(args);
    if !last.as_os_str().is_empty() {
        command.arg(last);
    }
    let output = command.output().expect(program);
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Every process whose parent is `parent` (PostgreSQL's backends and workers).
fn children(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command name may hold spaces: fields resume after its ')'.
                    let rest = &stat[stat.rfind(')')? + 2..];
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent)
        })
        .collect()
}
