//! Latency summaries.

/// Per-login latencies of one case, summarised.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub median_ns: u64,
    pub p99_ns: u64,
    pub mean_ns: u64,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[u64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let mean = sorted.iter().map(|&s| u128::from(s)).sum::<u128>() / sorted.len() as u128;
        Some(Summary {
            n: sorted.len(),
            median_ns: percentile(&sorted, 0.5),
            p99_ns: percentile(&sorted, 0.99),
            mean_ns: mean as u64,
        })
    }

    /// Back to back in one process, a login starts when the previous one ends: the
    /// rate is the inverse of the mean latency.
    pub fn logins_per_second(&self) -> f64 {
        1e9 / self.mean_ns as f64
    }
}

/// Nearest-rank percentile of sorted samples: the smallest sample with at least `q` of
/// all samples at or below it (with 256 samples, p99 is the third-slowest).
fn percentile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
