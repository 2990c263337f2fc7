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
        let dir = cluster_dir();
        let data = dir.path().join("data");
        run(
            &bin,
            "initdb",
            &["-A", "trust", "-U", "postgres", "-D"],
            &data,
        );
        let server = OwnPostgres::launch(bin, dir);
        run(
            &server.bin,
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &server.port.to_string(),
                "-U",
                "postgres",
                "commerce",
            ],
            Path::new(""),
        );
        server
    }

    /// A streaming replica of this server (`pg_basebackup -R`), running on a port of its own.
    pub fn standby(&self) -> OwnPostgres {
        let dir = cluster_dir();
        let port = self.port.to_string();
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-X",
            "stream",
            "-R",
            "-D",
        ];
        run(&self.bin, "pg_basebackup", &args, &dir.path().join("data"));
        OwnPostgres::launch(self.bin.clone(), dir)
    }

    /// Starts the cluster in `dir` on a free port.
    fn launch(bin: PathBuf, dir: tempfile::TempDir) -> OwnPostgres {
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            dir.path().display()
        );
        let log = dir.path().join("log").to_string_lossy().into_owned();
        let args = ["-w", "-o", &options, "-l", &log, "start", "-D"];
        run(&bin, "pg_ctl", &args, &dir.path().join("data"));
        OwnPostgres { dir, bin, port }
    }

    /// Stops the server at once, as a crash would (dropping it does too).
    pub fn stop(&self) {
        self.signal_all(Signal::SIGCONT);
        let mut command = command(&self.bin, "pg_ctl");
        command
            .args(["-m", "immediate", "-w", "stop", "-D"])
            .arg(self.dir.path().join("data"));
        let _ = command.status();
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/commerce", self.port)
    }

    /// Sends `signal` to the postmaster and every process it started: SIGSTOP freezes the whole
    /// server as a stalled machine would, SIGCONT lets it go on.
    pub fn signal_all(&self, signal: Signal) {
        // No pid file: the server is not running (stopped already).
        let Some(postmaster) = self.postmaster() else {
            return;
        };
        let mut pids = children(postmaster);
        pids.push(postmaster);
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    fn postmaster(&self) -> Option<i32> {
        let pid_file = self.dir.path().join("data").join("postmaster.pid");
        let text = std::fs::read_to_string(pid_file).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A temporary directory the server's user owns.
fn cluster_dir() -> tempfile::TempDir {
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
    dir
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
