//! Exponential backoff between reconnect attempts, after the gRPC connection-backoff
//! document (multiplier 1.6, jitter 0.2), with a short start and cap because a status
//! page should notice a restarted server within seconds, not minutes; and [`jitter`],
//! the one way this project spreads a delay, which the upstream monitor's intervals
//! use too.

use std::time::Duration;

/// The delay policy; [`Backoff::next_delay`] grows the delay, [`Backoff::reset`] starts over.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

/// How much each delay grows over the previous one.
const MULTIPLIER: f64 = 1.6;
/// Each delay is spread by up to this fraction either way, so that many clients
/// dropped by one server restart do not all come back in the same instant.
const JITTER: f64 = 0.2;

impl Default for Backoff {
    /// 0.5 s first, growing to at most 10 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(10))
    }
}

impl Backoff {
    /// A policy that waits `initial` first and never more than `max` (both before jitter).
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            current: initial,
        }
    }

    /// The delay before the next attempt, given a random number in `[0, 1)`.
    pub fn next_with(&mut self, random: f64) -> Duration {
        let base = self.current;
        self.current = scale(base, MULTIPLIER).min(self.max);
        spread(base, JITTER, random)
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.next_with(crate::rt::random())
    }

    /// Starts over from the initial delay: the spec resets the backoff once a message arrives.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// `delay`, moved by up to `fraction` of itself either way, at random.
pub fn jitter(delay: Duration, fraction: f64) -> Duration {
    spread(delay, fraction, crate::rt::random())
}

fn spread(delay: Duration, fraction: f64, random: f64) -> Duration {
    scale(delay, 1.0 + fraction * (2.0 * random - 1.0))
}

/// `delay * factor` to the millisecond. Not `Duration::mul_f64`, whose checks for
/// negative and overflowing results (impossible here) cost the browser module their
/// panic messages; `as u64` saturates instead.
fn scale(delay: Duration, factor: f64) -> Duration {
    Duration::from_millis((delay.as_secs_f64() * factor * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_the_multiplier_up_to_the_cap_then_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(3));
        let delays: Vec<_> = (0..4).map(|_| b.next_with(0.5).as_millis()).collect();
        assert_eq!(delays, [1000, 1600, 2560, 3000]);
        b.reset();
        assert_eq!(b.next_with(0.5), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        assert_eq!(b.next_with(0.0), Duration::from_millis(800));
        assert_eq!(b.next_with(1.0), Duration::from_millis(1200));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let second = Duration::from_secs(1);
        for _ in 0..100 {
            let d = jitter(second, 0.1);
            assert!(
                d >= Duration::from_millis(900) && d <= Duration::from_millis(1100),
                "{d:?}"
            );
        }
    }
}
