//! Uptime from a service's timeline: how much of a window it was SERVING, and the
//! worst status it had there. Pure arithmetic on rows, tested here.
//!
//! A row's status holds from its `at_ms` to the next row's. Folded rows (a
//! flapping service) count as their worst status from `at_ms` to `until_ms`, and
//! as `to` after. Time in SERVICE_UNKNOWN (not registered, or before history
//! begins) is not recorded time: uptime is SERVING time over recorded time.
//! Time inside a maintenance window is reported apart: neither recorded nor
//! SERVING, and no part of the worst status.

use healthweb_proto::pb::health_check_response::ServingStatus;

use super::store::Row;

/// What a window held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// Milliseconds SERVING.
    pub serving_ms: i64,
    /// Milliseconds with a recorded status.
    pub recorded_ms: i64,
    /// The worst recorded status, if any time was recorded.
    pub worst: Option<i32>,
    /// Changes that happened in the window.
    pub changes: u32,
    /// Milliseconds with a recorded status inside maintenance windows (not in
    /// `recorded_ms`).
    pub maintenance_ms: i64,
}

impl Span {
    /// SERVING time over recorded time; 0 when nothing was recorded.
    pub fn serving(&self) -> f64 {
        if self.recorded_ms == 0 {
            0.0
        } else {
            self.serving_ms as f64 / self.recorded_ms as f64
        }
    }
}

/// How bad a status is, for "worst": SERVING < UNKNOWN < NOT_SERVING.
fn badness(status: i32) -> u8 {
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Serving) => 0,
        Ok(ServingStatus::Unknown) => 1,
        _ => 2,
    }
}

/// The worse of two statuses.
pub fn worse(a: i32, b: i32) -> i32 {
    if badness(b) > badness(a) { b } else { a }
}

fn recorded(status: i32) -> bool {
    status != ServingStatus::ServiceUnknown as i32
}

/// What `[start, end)` held, from `rows` (oldest first; the first may be before
/// `start`, giving the status there), with `maintenance` (sorted, disjoint
/// stretches) apart.
pub fn span(rows: &[Row], start: i64, end: i64, maintenance: &[(i64, i64)]) -> Span {
    let mut span = Span::default();
    let add = |span: &mut Span, status: i32, from: i64, to: i64| {
        let (from, to) = (from.max(start), to.min(end));
        if to <= from || !recorded(status) {
            return;
        }
        let held: i64 = maintenance
            .iter()
            .map(|&(m_from, m_to)| (to.min(m_to) - from.max(m_from)).max(0))
            .sum();
        span.maintenance_ms += held;
        let length = to - from - held;
        if length <= 0 {
            return;
        }
        span.recorded_ms += length;
        if status == ServingStatus::Serving as i32 {
            span.serving_ms += length;
        }
        span.worst = Some(span.worst.map_or(status, |w| worse(w, status)));
    };
    for (i, row) in rows.iter().enumerate() {
        let next = rows.get(i + 1).map_or(end, |r| r.at_ms).max(row.at_ms);
        if (start..end).contains(&row.at_ms) {
            span.changes += row.count;
            // A burst folded into one instant still marks its window.
            if row.count > 1 && recorded(row.worst) {
                span.worst = Some(span.worst.map_or(row.worst, |w| worse(w, row.worst)));
            }
        }
        let calm = row.until_ms.clamp(row.at_ms, next);
        add(&mut span, row.worst, row.at_ms, calm);
        add(&mut span, row.to, calm, next);
    }
    span
}

/// `n` equal buckets from `start` to `end`, each with what it held.
pub fn buckets(
    rows: &[Row],
    start: i64,
    end: i64,
    n: usize,
    maintenance: &[(i64, i64)],
) -> Vec<(i64, i64, Span)> {
    let width = ((end - start) as f64 / n as f64).max(1.0);
    (0..n)
        .map(|i| {
            let from = start + (width * i as f64) as i64;
            let to = if i + 1 == n {
                end
            } else {
                start + (width * (i + 1) as f64) as i64
            };
            // The row in effect at `from`, and every row up to `to`.
            let first = rows.partition_point(|r| r.at_ms <= from).saturating_sub(1);
            let last = rows.partition_point(|r| r.at_ms < to);
            (
                from,
                to,
                span(&rows[first..last.max(first)], from, to, maintenance),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVING: i32 = ServingStatus::Serving as i32;
    const NOT: i32 = ServingStatus::NotServing as i32;
    const GONE: i32 = ServingStatus::ServiceUnknown as i32;

    fn at(at_ms: i64, to: i32) -> Row {
        Row {
            event: format!("e{at_ms}"),
            replica: "r".into(),
            service: "a".into(),
            at_ms,
            until_ms: at_ms,
            from: GONE,
            to,
            worst: to,
            cause: 0,
            detail: String::new(),
            count: 1,
        }
    }

    #[test]
    fn serving_time_over_recorded_time() {
        // Registered at 100 SERVING, down from 400 to 600, removed at 900.
        let rows = [
            at(100, SERVING),
            at(400, NOT),
            at(600, SERVING),
            at(900, GONE),
        ];
        let whole = span(&rows, 0, 1000, &[]);
        assert_eq!((whole.serving_ms, whole.recorded_ms), (600, 800));
        assert_eq!(whole.worst, Some(NOT));
        assert_eq!(whole.changes, 4);
        // A window that starts inside: the status there comes from the row before.
        let late = span(&rows[2..], 700, 1000, &[]);
        assert_eq!((late.serving_ms, late.recorded_ms), (200, 200));
        assert_eq!(late.worst, Some(SERVING));
        assert_eq!(span(&rows, 0, 50, &[]), Span::default());
    }

    #[test]
    fn a_folded_burst_counts_as_its_worst() {
        let mut burst = at(200, SERVING);
        burst.until_ms = 300;
        burst.worst = NOT;
        burst.count = 40;
        let rows = [at(0, SERVING), burst];
        let s = span(&rows, 0, 1000, &[]);
        assert_eq!((s.serving_ms, s.recorded_ms), (900, 1000));
        assert_eq!(s.worst, Some(NOT));
        assert_eq!(s.changes, 41);
    }

    #[test]
    fn buckets_cover_the_window_each_with_its_worst() {
        let rows = [at(0, SERVING), at(250, NOT), at(260, SERVING)];
        let bars = buckets(&rows, 0, 1000, 4, &[]);
        let worst: Vec<_> = bars.iter().map(|(_, _, s)| s.worst).collect();
        assert_eq!(
            worst,
            [Some(SERVING), Some(NOT), Some(SERVING), Some(SERVING)]
        );
        assert_eq!(bars[1].2.changes, 2);
        assert_eq!((bars[0].0, bars[3].1), (0, 1000));
        // Before history begins, nothing is recorded.
        let late = [at(600, SERVING)];
        assert_eq!(buckets(&late, 0, 1000, 2, &[])[0].2.worst, None);
    }

    #[test]
    fn maintenance_is_apart_neither_down_nor_up() {
        // Down from 400 to 600, inside a window from 300 to 700.
        let rows = [at(0, SERVING), at(400, NOT), at(600, SERVING)];
        let s = span(&rows, 0, 1000, &[(300, 700)]);
        assert_eq!(
            (s.serving_ms, s.recorded_ms, s.maintenance_ms),
            (600, 600, 400)
        );
        assert_eq!(s.worst, Some(SERVING));
        assert_eq!(s.serving(), 1.0);
        // Down past the window's end: that part counts.
        let s = span(&rows, 0, 1000, &[(300, 500)]);
        assert_eq!(
            (s.serving_ms, s.recorded_ms, s.maintenance_ms),
            (700, 800, 200)
        );
        assert_eq!(s.worst, Some(NOT));
        // Before history begins a window holds nothing recorded.
        assert_eq!(span(&rows[2..], 0, 1000, &[(0, 500)]).maintenance_ms, 0);
    }
}
