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
    pub async fn start(bin: &Path, database_url: &str, secret: &str) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(bin)
            .arg("serve")
            .env("COMMERCE_DATABASE_URL", database_url)
            .env("COMMERCE_LISTEN", format!("127.0.0.1:{port}"))
            .env("COMMERCE_JWT_SECRET", secret)
            .env("RUST_LOG", "warn")
            .env_remove("COMMERCE_NATS_URL")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("the server's pid")?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            pid,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
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

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// The resident set size of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Samples a process's RSS every 50 ms while a scenario runs; `stop` returns the peak in MB.
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let (peak, done) = (
            Arc::new(AtomicU64::new(rss_kb(pid))),
            Arc::new(AtomicBool::new(false)),
        );
        let task = tokio::spawn({
            let (peak, done) = (peak.clone(), done.clone());
            async move {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        RssSampler { peak, done, task }
    }

    pub async fn stop(self) -> f64 {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }
}
