//! The real `commerce` binary as a child process: started on a free loopback port, waited for
//! until `/health/ready` answers, killed when done.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a server may take to become ready: migrations on a fresh database take a moment,
/// and a loaded machine stretches it.
pub const READY_WITHIN: Duration = Duration::from_secs(30);

/// The `commerce` binary: `COMMERCE_BIN` if set, else `commerce` in the directory of the running
/// executable or one above it (a test runs from `target/<profile>/deps/`).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("COMMERCE_BIN") {
        return Ok(bin.into());
    }
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("commerce"))
        .find(|bin| bin.is_file())
        .with_context(|| {
            format!(
                "no `commerce` binary beside {} (build it with `cargo build -p commerce`, or set COMMERCE_BIN)",
                exe.display()
            )
        })
}

/// `bin serve` on a free loopback port, and the base URL it will answer on: logging warnings,
/// without the per-user write limit (tests and loads write faster than a person), with the
/// in-process outbox relay (no NATS), stdout discarded, killed if dropped. The caller adds the
/// secret and anything else before [`Server::spawn`].
pub fn command(bin: &Path, database_url: &str) -> (Command, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port();
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .env("COMMERCE_DATABASE_URL", database_url)
        .env("COMMERCE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .env("COMMERCE_USER_WRITES_PER_SECOND", "0")
        .env_remove("COMMERCE_NATS_URL")
        .stdout(Stdio::null())
        .kill_on_drop(true);
    (command, format!("http://127.0.0.1:{port}"))
}

/// A running server.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Server {
    /// Spawns `command` (from [`command`]) and waits until the server is ready.
    pub async fn spawn(mut command: Command, base: String) -> anyhow::Result<Server> {
        let child = command.spawn().context("starting the commerce binary")?;
        let mut server = Server { child, base };
        server.wait_ready().await?;
        Ok(server)
    }

    /// `bin serve` on `database_url` with `secret`, ready.
    pub async fn start(bin: &Path, database_url: &str, secret: &str) -> anyhow::Result<Server> {
        let (mut command, base) = command(bin, database_url);
        command.env("COMMERCE_JWT_SECRET", secret);
        Server::spawn(command, base).await
    }

    /// Waits until `/health/ready` answers 2xx; fails at once if the process exits first.
    pub async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if let Some(exit) = self.child.try_wait()? {
                bail!("the server exited before it was ready ({exit}); its log is above");
            }
            let ready = client
                .get(format!("{}/health/ready", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server at {} did not become ready", self.base)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `127.0.0.1:<port>`, for raw sockets.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// Kills the server (SIGKILL) and reaps it: a crash, or an end that needs no drain.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}
