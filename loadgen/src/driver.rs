//! Drives load: `concurrency` workers, each one request in flight at a time, until the budget is
//! spent. The same driver runs HTTP scenarios and the database ceiling, so the two measure alike.

use indicatif::{ProgressBar, ProgressStyle};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::{Recorder, Summary};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    For(Duration),
    Requests(u64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    pub concurrency: usize,
    pub budget: Budget,
    /// Requests per second offered on a fixed schedule (open loop); `None` sends the next request
    /// as soon as the previous answer came (closed loop).
    pub rate: Option<f64>,
}

/// What one request got back.
pub struct Answer {
    pub status: u16,
    /// The problem `code` of an error.
    pub code: Option<String>,
}

/// One worker's state: it sends request number `turn` and says what came back (`None`: no answer
/// at all, such as a refused connection or a timeout).
pub trait Worker: Send + 'static {
    fn step(&mut self, turn: u64) -> impl Future<Output = Option<Answer>> + Send;
}

/// Runs the workers under `load` and hands them back (with what they kept) with the measurements.
pub async fn drive<W: Worker>(label: &str, load: Load, workers: Vec<W>) -> (Summary, Vec<W>) {
    let progress = progress_bar(label, load.budget);
    let tickets = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let (tickets, progress) = (tickets.clone(), progress.clone());
            tokio::spawn(async move {
                let mut recorder = Recorder::default();
                while let Some((turn, due)) = next_turn(&tickets, started, load.budget, load.rate) {
                    tokio::time::sleep_until(due.into()).await;
                    // Latency from when the request was due, not when it was sent: in an open
                    // loop a stalled server otherwise hides the queue it causes.
                    match worker.step(turn).await {
                        Some(answer) => {
                            recorder.record(due.elapsed(), answer.status, answer.code.as_deref());
                            if (200..300).contains(&answer.status) {
                                recorder.won(turn, started.elapsed());
                            }
                        }
                        None => recorder.failed(),
                    }
                    match load.budget {
                        Budget::Requests(_) => progress.inc(1),
                        Budget::For(_) => {
                            progress.set_position(started.elapsed().as_millis() as u64)
                        }
                    }
                }
                (recorder, worker)
            })
        })
        .collect();
    let mut total = Recorder::default();
    let mut workers = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (recorder, worker) = task.await.expect("a load worker panicked");
        total.merge(&recorder);
        workers.push(worker);
    }
    progress.finish_and_clear();
    (total.summary(started.elapsed()), workers)
}

/// The next request's number and when it is due, or `None` once the budget is spent.
fn next_turn(
    tickets: &AtomicU64,
    started: Instant,
    budget: Budget,
    rate: Option<f64>,
) -> Option<(u64, Instant)> {
    let turn = tickets.fetch_add(1, Ordering::Relaxed);
    let due = match rate {
        Some(rate) => started + Duration::from_secs_f64(turn as f64 / rate),
        None => Instant::now(),
    };
    let within = match budget {
        Budget::Requests(n) => turn < n,
        Budget::For(duration) => due < started + duration,
    };
    within.then_some((turn, due))
}

fn progress_bar(label: &str, budget: Budget) -> ProgressBar {
    let (length, unit) = match budget {
        Budget::Requests(n) => (n, "requests"),
        Budget::For(duration) => (duration.as_millis() as u64, "ms"),
    };
    // indicatif draws on stderr and stays silent when that is not a terminal.
    let bar = ProgressBar::new(length);
    let template = format!("{{msg:>28}} [{{bar:40}}] {{pos}}/{{len}} {unit}");
    bar.set_style(ProgressStyle::with_template(&template).expect("a valid template"));
    bar.set_message(label.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    impl Worker for Echo {
        async fn step(&mut self, turn: u64) -> Option<Answer> {
            (!turn.is_multiple_of(10)).then_some(Answer {
                status: 200,
                code: None,
            })
        }
    }

    #[tokio::test]
    async fn a_request_budget_is_spent_exactly_across_workers() {
        let load = Load {
            concurrency: 4,
            budget: Budget::Requests(100),
            rate: None,
        };
        let (summary, workers) = drive("echo", load, (0..4).map(|_| Echo).collect()).await;
        assert_eq!(workers.len(), 4);
        assert_eq!(summary.requests, 90);
        assert_eq!(summary.errors, 10);
    }

    #[tokio::test]
    async fn an_open_loop_keeps_to_its_schedule() {
        let load = Load {
            concurrency: 2,
            budget: Budget::For(Duration::from_millis(200)),
            rate: Some(100.0),
        };
        let (summary, _) = drive("echo", load, vec![Echo, Echo]).await;
        // 20 requests are due in 200 ms at 100/s; one in ten is counted as unanswered.
        assert_eq!(summary.requests + summary.errors, 20);
    }

    #[test]
    fn turns_stop_at_the_budget() {
        let tickets = AtomicU64::new(0);
        let started = Instant::now();
        let budget = Budget::Requests(2);
        assert!(next_turn(&tickets, started, budget, None).is_some());
        assert!(next_turn(&tickets, started, budget, None).is_some());
        assert!(next_turn(&tickets, started, budget, None).is_none());
        let paced = Budget::For(Duration::from_secs(1));
        let tickets = AtomicU64::new(9);
        let (_, due) = next_turn(&tickets, started, paced, Some(10.0)).unwrap();
        assert_eq!(due - started, Duration::from_millis(900));
        assert!(next_turn(&tickets, started, paced, Some(10.0)).is_none());
    }
}
