//! The benchmark's markdown table.

use crate::stats::{ms, Summary};

pub struct Row {
    pub backend: &'static str,
    pub scenario: String,
    pub concurrency: usize,
    pub summary: Summary,
    /// Throughput as a fraction of the named ceiling.
    pub ratio: Option<(f64, &'static str)>,
    pub peak_rss_mb: Option<f64>,
    pub invariants: Option<bool>,
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| backend | scenario | conc. | req/s | p50 | p99 | max | vs ceiling | server peak RSS | invariants |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        let s = &row.summary;
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
            row.backend,
            row.scenario,
            row.concurrency,
            s.per_second,
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            row.ratio
                .map(|(r, of)| format!("{:.0} % of {of}", r * 100.0))
                .unwrap_or_else(|| "—".into()),
            row.peak_rss_mb
                .map(|mb| format!("{mb:.1} MB"))
                .unwrap_or_else(|| "—".into()),
            match row.invariants {
                Some(true) => "held",
                Some(false) => "**BROKEN**",
                None => "—",
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Recorder;
    use std::time::Duration;

    #[test]
    fn a_row_shows_throughput_latency_ratio_memory_and_verdict() {
        let mut recorder = Recorder::default();
        recorder.record(Duration::from_millis(2), 200, None);
        let row = Row {
            backend: "sqlite",
            scenario: "detail".into(),
            concurrency: 64,
            summary: recorder.summary(Duration::from_millis(1)),
            ratio: Some((0.8, "HTTP")),
            peak_rss_mb: Some(31.25),
            invariants: Some(false),
        };
        let table = table(&[row]);
        assert!(
            table.contains("| sqlite | detail | 64 | 1000 | 2.00 ms |"),
            "{table}"
        );
        assert!(
            table.contains("80 % of HTTP | 31.2 MB | **BROKEN** |"),
            "{table}"
        );
    }
}
