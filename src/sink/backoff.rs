//! The Java agent's send backoff (reference 5.5), per flow. No IO; the caller sleeps.
//!
//! `delay = min(max, initial x 2^(max(0, round(failures) - 1)))`, times a jitter factor in
//! [0.7, 1.3). A failed call adds 1 to `failures`, a partial success adds the failed fraction,
//! a full success divides `failures` by 10 (to 0 below 1).

use std::time::Duration;

/// Jitter bounds (Java `AsyncPublisherThrottler`: +/- 30 %).
const JITTER: (f64, f64) = (0.7, 1.3);
/// Success divides the failure count by this (Java `recoveryFactor` default).
const RECOVERY_FACTOR: f64 = 10.0;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: f64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            failures: 0.0,
        }
    }

    pub fn failures(&self) -> f64 {
        self.failures
    }

    /// A call failed as a whole.
    pub fn on_failure(&mut self) {
        self.failures += 1.0;
    }

    /// A call returned with `failed` of `total` records refused.
    pub fn on_partial(&mut self, failed: usize, total: usize) {
        if total > 0 {
            self.failures += failed as f64 / total as f64;
        }
    }

    /// Every record of a call was accepted.
    pub fn on_success(&mut self) {
        self.failures /= RECOVERY_FACTOR;
        if self.failures < 1.0 {
            self.failures = 0.0;
        }
    }

    /// The wait before the next call, without jitter.
    pub fn base_delay(&self) -> Duration {
        if self.failures <= 0.0 {
            return Duration::ZERO;
        }
        let exponent = (self.failures.round() as i64 - 1).clamp(0, 30) as u32;
        self.initial.saturating_mul(1u32 << exponent).min(self.max)
    }

    /// The wait before the next call, with jitter from `unit` in [0, 1).
    pub fn delay(&self, unit: f64) -> Duration {
        let factor = JITTER.0 + (JITTER.1 - JITTER.0) * unit.clamp(0.0, 1.0);
        self.base_delay().mul_f64(factor)
    }

    /// The longest wait; used for errors only an operator can fix.
    pub fn max(&self) -> Duration {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_worked_values() {
        // Reference 5.5: initial 100, max 1000, no jitter: 1->100, 2->200, 3->400, 4->800, 5->1000.
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(b.base_delay(), Duration::ZERO);
        let expected = [100, 200, 400, 800, 1000, 1000];
        for ms in expected {
            b.on_failure();
            assert_eq!(b.base_delay(), Duration::from_millis(ms));
        }
    }

    #[test]
    fn success_recovers_and_partial_failures_count_fractions() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(10_000));
        for _ in 0..10 {
            b.on_failure();
        }
        b.on_success();
        assert_eq!(b.failures(), 1.0);
        b.on_success();
        assert_eq!(b.failures(), 0.0);
        b.on_partial(3, 10);
        b.on_partial(3, 10);
        assert!((b.failures() - 0.6).abs() < 1e-9);
        assert_eq!(b.base_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_within_thirty_percent() {
        let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_millis(10_000));
        b.on_failure();
        assert_eq!(b.delay(0.0), Duration::from_millis(700));
        assert_eq!(b.delay(0.5), Duration::from_millis(1000));
        assert!(b.delay(0.999) < Duration::from_millis(1300));
    }
}
