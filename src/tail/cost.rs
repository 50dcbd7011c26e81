//! What a repeated piece of work (a listing, a look at every open file) costs, as the least of
//! its last few measurements: the safety-net intervals are scaled by it, and one measurement
//! made slow by something else (a loaded machine, a descheduled thread) must not put the next
//! listing off by minutes.
//!
//! Owns: the recent measurements. Does not own: what is measured or what the cost is used for.

use std::time::Duration;

/// How many measurements are kept: a cost that really grew (more files) is taken after this
/// many listings.
const KEPT: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct Cost {
    recent: [Option<Duration>; KEPT],
    next: usize,
}

impl Cost {
    pub fn record(&mut self, took: Duration) {
        self.recent[self.next] = Some(took);
        self.next = (self.next + 1) % KEPT;
    }

    /// The least of the recent measurements; zero before the first.
    pub fn get(&self) -> Duration {
        self.recent
            .iter()
            .flatten()
            .min()
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_slow_measurement_does_not_raise_the_cost() {
        let mut c = Cost::default();
        assert_eq!(c.get(), Duration::ZERO);
        c.record(ms(2));
        c.record(ms(5_000));
        assert_eq!(c.get(), ms(2));
    }

    #[test]
    fn a_cost_that_grew_is_taken_once_every_kept_measurement_shows_it() {
        let mut c = Cost::default();
        c.record(ms(2));
        c.record(ms(100));
        c.record(ms(120));
        assert_eq!(c.get(), ms(2));
        c.record(ms(110));
        assert_eq!(c.get(), ms(100));
    }
}
