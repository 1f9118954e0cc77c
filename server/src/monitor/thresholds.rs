//! The consecutive-result counters behind an upstream's status, counted as
//! Kubernetes and Envoy count them.

use healthweb_client::ServingStatus;

/// `healthy` successes in a row turn an upstream SERVING, `unhealthy` failures in
/// a row NOT_SERVING.
#[derive(Debug, Clone)]
pub struct Thresholds {
    healthy: u32,
    unhealthy: u32,
    pub(super) successes: u32,
    pub(super) failures: u32,
}

impl Thresholds {
    /// Counters for `healthy` successes and `unhealthy` failures in a row.
    pub fn new(healthy: u32, unhealthy: u32) -> Self {
        Self {
            healthy,
            unhealthy,
            successes: 0,
            failures: 0,
        }
    }

    /// Counts one probe result; returns the status it settles, if it settles one.
    pub fn record(&mut self, success: bool) -> Option<ServingStatus> {
        if success {
            self.successes += 1;
            self.failures = 0;
            (self.successes >= self.healthy).then_some(ServingStatus::Serving)
        } else {
            self.failures += 1;
            self.successes = 0;
            (self.failures >= self.unhealthy).then_some(ServingStatus::NotServing)
        }
    }

    /// A status a Watch delivered: taken at once, counters start again from it.
    pub fn take(&mut self, status: ServingStatus) {
        let serving = status == ServingStatus::Serving;
        self.successes = u32::from(serving);
        self.failures = u32::from(!serving);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_count_consecutive_results() {
        let mut t = Thresholds::new(2, 3);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None, "a success resets the failures");
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(ServingStatus::NotServing));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(ServingStatus::Serving));
        t.take(ServingStatus::NotServing);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(ServingStatus::NotServing));
    }
}
