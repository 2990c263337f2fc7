//! The server under test: started as a child process, watched for its memory.

use anyhow::{bail, Context};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    pub base: String,
    pub pid: u32,
}

impl Server {
    /// Starts `commerce serve` on a free loopback port and waits until it is ready.
    pub async fn start(
        bin: &Path,
        database_url: &str,
        secret: &str,
        db_connections: u32,
    ) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .arg("serve")
            .env("COMMERCE_DATABASE_URL", database_url)
            .env("COMMERCE_LISTEN", format!("127.0.0.1:{port}"))
            .env("COMMERCE_JWT_SECRET", secret)
            .env("COMMERCE_DB_MAX_CONNECTIONS", db_connections.to_string())
            .env("RUST_LOG", "warn")
            // The bench measures throughput: its simulated users write faster than the per-user
            // limit allows a real one to.
            .env("COMMERCE_USER_WRITES_PER_SECOND", "0")
            // The in-process relay: the bench measures this server, not a NATS deployment.
            .env_remove("COMMERCE_NATS_URL")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the server's pid")?;
        let mut server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            pid,
        };
        let client = reqwest::Client::new();
        // Ten seconds: migrations on a fresh database take a moment.
        for _ in 0..200 {
            if let Some(exit) = server.child.try_wait()? {
                bail!("the server exited before it was ready ({exit}); its log is above");
            }
            if let Ok(response) = client
                .get(format!("{}/health/ready", server.base))
                .send()
                .await
            {
                if response.status().is_success() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server at {} did not become ready", server.base)
    }

    /// Kills the server: its database is thrown away, so a graceful drain would only cost time.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// A line of `/proc/<pid>/status` in kB (`VmRSS`: now, `VmHWM`: the peak).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A process's peak RSS during a scenario. The kernel's high-water mark is exact, but only
/// meaningful once reset (writing 5 to `clear_refs`, allowed for our own child); polling `VmRSS`
/// every 50 ms covers kernels that refuse the reset.
pub struct RssSampler {
    pid: u32,
    hwm_reset: bool,
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let peak = Arc::new(AtomicU64::new(status_kb(pid, "VmRSS:").unwrap_or(0)));
        let done = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peak, done) = (peak.clone(), done.clone());
            async move {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(status_kb(pid, "VmRSS:").unwrap_or(0), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        RssSampler {
            pid,
            hwm_reset,
            peak,
            done,
            task,
        }
    }

    /// The peak in MB.
    pub async fn stop(self) -> f64 {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let hwm = match self.hwm_reset {
            true => status_kb(self.pid, "VmHWM:").unwrap_or(0),
            false => 0,
        };
        self.peak.load(Ordering::Relaxed).max(hwm) as f64 / 1024.0
    }
}
