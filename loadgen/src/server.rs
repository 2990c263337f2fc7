//! The server under test: started as a child process, watched for its memory.

use commerce_test_support::server;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use commerce_test_support::server::Server;

/// Starts `commerce serve` as the bench runs it (the kit's defaults: no per-user write limit,
/// the in-process relay) with `db_connections` connections, and waits until it is ready.
pub async fn start(
    bin: &Path,
    database_url: &str,
    secret: &str,
    db_connections: u32,
) -> anyhow::Result<Server> {
    let (mut command, base) = server::command(bin, database_url);
    command
        .env("COMMERCE_JWT_SECRET", secret)
        .env("COMMERCE_DB_MAX_CONNECTIONS", db_connections.to_string());
    Server::spawn(command, base).await
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
