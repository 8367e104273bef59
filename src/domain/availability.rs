//! Availability, computed once: what share of a window an instance was
//! connected, how often and how long it was down, and how the time splits
//! between its own outages, its provider's outages and maintenance. The status
//! page (uptime bars, 24 h / 30 d figures, tenant summaries), `wa-sentinel
//! report` and `/api/report` all call [`availability`] and [`segments`] over
//! the same [`History`], so their numbers agree.
//!
//! Every instant of the window has exactly one [`State`], decided in this
//! order:
//!
//! 1. **no data** — before the instance was first seen (`created_at`), after
//!    it was retired, or after `now`: nothing is known, nothing is counted;
//! 2. **maintenance** — an operator silenced it: excluded from the
//!    denominator and reported apart (its own outages do not count either);
//! 3. **down** — inside one of the instance's own outages;
//! 4. **provider down** — inside an outage of its provider (the customer's
//!    number was not at fault; counted apart, but not connected either);
//! 5. **up, provider silent** — inside a *silent* outage of its provider:
//!    every session answered `open`, but no webhook arrived. The sessions
//!    were up, so this counts as connected, and is also shown apart
//!    (`provider_silent_ms`): it is not downtime of the instances;
//! 6. **up** — otherwise.
//!
//! Invariants (checked by the property tests below, against a brute-force
//! evaluation instant by instant):
//! - `connected + down + provider_down + maintenance = observed`, each ≥ 0,
//!   and `provider_silent ≤ connected`;
//! - the figures of two adjacent windows add up to those of their union;
//! - overlapping outages count their union once, and as one outage;
//! - an open outage lasts until `now` (or the window's end);
//! - `availability` is in `[0, 1]`, and absent when nothing was counted;
//! - a segment of [`segments`] shows a state iff that state covers some of
//!   its time, and the worst one ([`State`] is ordered by severity).

use serde::Serialize;

use super::Ts;

/// A span of time `[start, end)`; `end: None` is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Ts,
    pub end: Option<Ts>,
}

impl Span {
    fn contains(&self, t: Ts) -> bool {
        self.start <= t && self.end.is_none_or(|e| t < e)
    }

    fn end_or_max(&self) -> i64 {
        self.end.map_or(i64::MAX, |e| e.0)
    }
}

/// What availability depends on, for one instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// When wa-sentinel first saw the instance: nothing is known before.
    pub created_at: Ts,
    /// When it was retired (no longer listed): nothing is known after.
    pub retired_at: Option<Ts>,
    /// The instance's own outages.
    pub outages: Vec<Span>,
    /// Its provider's outages (every instance of the provider unreachable).
    pub provider_outages: Vec<Span>,
    /// Its provider's silent outages (sessions open, no webhooks).
    pub provider_silences: Vec<Span>,
    /// When it was in maintenance.
    pub maintenance: Vec<Span>,
    /// Its outages that ended with the session back (not retired): what
    /// time-to-reconnect is measured over ([`reconnects`]).
    pub ends: Vec<OutageEnd>,
}

/// One outage that ended with the session back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutageEnd {
    pub start: Ts,
    pub end: Ts,
    /// Only a person could end it: logged out, waiting for a QR scan, a
    /// state wa-sentinel does not know (rule 13).
    pub needs_person: bool,
    /// It ended while a re-pair link issued for it had been opened.
    pub via_link: bool,
}

/// How long the outages that needed a person took to reconnect — from the
/// outage's start to the session back — apart from the other outages; per
/// instance, or summed over a tenant with [`Reconnects::add`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reconnects {
    /// Needs-a-person outages that ended (session back) in the window.
    pub needs_person_reconnects: u32,
    /// Their median and longest time from start to reconnection (ms).
    pub reconnect_median_ms: Option<i64>,
    pub reconnect_max_ms: Option<i64>,
    /// Of those, how many ended while a re-pair link issued for them had been opened.
    pub reconnects_via_link: u32,
    /// The other outages that ended in the window: how many, and their mean
    /// time from start to end (ms).
    pub other_recoveries: u32,
    pub other_mttr_ms: Option<i64>,
    /// Every needs-a-person time, sorted (for the median of a sum).
    #[serde(skip)]
    pub durations: Vec<i64>,
    #[serde(skip)]
    pub other_ms: i64,
}

impl Reconnects {
    /// Add another instance's (a tenant's line): the median and maximum are
    /// recomputed over every outage.
    pub fn add(&mut self, o: &Reconnects) {
        self.durations.extend_from_slice(&o.durations);
        self.durations.sort_unstable();
        self.reconnects_via_link += o.reconnects_via_link;
        self.other_recoveries += o.other_recoveries;
        self.other_ms += o.other_ms;
        self.finish();
    }

    fn finish(&mut self) {
        let d = &self.durations;
        self.needs_person_reconnects = d.len() as u32;
        self.reconnect_max_ms = d.last().copied();
        self.reconnect_median_ms = match d.len() {
            0 => None,
            n if n % 2 == 1 => Some(d[n / 2]),
            n => Some((d[n / 2 - 1] + d[n / 2]) / 2),
        };
        self.other_mttr_ms = (self.other_recoveries > 0).then(|| self.other_ms / i64::from(self.other_recoveries));
    }
}

/// Time-to-reconnect over `[from, to)` as known at `now`: the outages that
/// ended in the window (and before `now`), each measured from its start.
pub fn reconnects(h: &History, from: Ts, to: Ts, now: Ts) -> Reconnects {
    let mut r = Reconnects::default();
    for e in h.ends.iter().filter(|e| e.end >= from && e.end < to && e.end <= now && e.end >= e.start) {
        let d = e.end.0 - e.start.0;
        if e.needs_person {
            r.durations.push(d);
            r.reconnects_via_link += u32::from(e.via_link);
        } else {
            r.other_recoveries += 1;
            r.other_ms += d;
        }
    }
    r.durations.sort_unstable();
    r.finish();
    r
}

/// The state of an instant, ordered by severity: a segment of the uptime bar
/// shows the greatest state found in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not observed (before creation, after retirement, in the future).
    NoData,
    Up,
    /// Up, while its provider was silent (sessions open, no webhooks).
    ProviderSilent,
    Maintenance,
    ProviderDown,
    Down,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::NoData => "no_data",
            State::Up => "up",
            State::ProviderSilent => "provider_silent",
            State::Maintenance => "maintenance",
            State::ProviderDown => "provider_down",
            State::Down => "down",
        }
    }
}

/// One constant stretch of a timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub start: Ts,
    pub end: Ts,
    pub state: State,
}

/// The figures of one instance (or, summed with [`Availability::add`], of a
/// tenant) over one window. Durations in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Availability {
    /// Time of the window in which the instance existed and was observed.
    pub observed_ms: i64,
    /// Of which in maintenance: shown apart, not in the denominator.
    pub maintenance_ms: i64,
    /// Of which connected.
    pub connected_ms: i64,
    /// Of the connected time, how much its provider was silent (sessions
    /// open, no webhooks): up, but shown apart.
    pub provider_silent_ms: i64,
    /// Of which inside the instance's own outages.
    pub down_ms: i64,
    /// Of which inside its provider's outages (and not its own).
    pub provider_down_ms: i64,
    /// `connected / (observed − maintenance)`, in `[0, 1]`; `None` when that
    /// denominator is zero (not observed, or in maintenance throughout).
    pub availability: Option<f64>,
    /// The instance's own outages with down time in the window (overlapping
    /// outage records count once).
    pub outages: u32,
    /// Its provider's outages with provider-down time in the window.
    pub provider_outages: u32,
    /// Mean down time, in the window, of the outages that ended in it.
    pub mttr_ms: Option<i64>,
    /// The longest down time of one outage in the window (open ones included).
    pub longest_outage_ms: Option<i64>,
    /// Outages that ended in the window, and their down time (for MTTR of a sum).
    #[serde(skip)]
    pub recovered: u32,
    #[serde(skip)]
    pub recovered_ms: i64,
}

impl Availability {
    /// Add another instance's figures (a tenant's summary): durations and
    /// counts add up; availability and MTTR are recomputed from the sums.
    pub fn add(&mut self, o: &Availability) {
        self.observed_ms += o.observed_ms;
        self.maintenance_ms += o.maintenance_ms;
        self.connected_ms += o.connected_ms;
        self.provider_silent_ms += o.provider_silent_ms;
        self.down_ms += o.down_ms;
        self.provider_down_ms += o.provider_down_ms;
        self.outages += o.outages;
        self.provider_outages += o.provider_outages;
        self.recovered += o.recovered;
        self.recovered_ms += o.recovered_ms;
        self.longest_outage_ms = self.longest_outage_ms.max(o.longest_outage_ms);
        self.finish();
    }

    /// The ratios, from the sums.
    fn finish(&mut self) {
        let counted = self.observed_ms - self.maintenance_ms;
        self.availability = (counted > 0).then(|| self.connected_ms as f64 / counted as f64);
        self.mttr_ms = (self.recovered > 0).then(|| self.recovered_ms / i64::from(self.recovered));
    }
}

/// The state of one instant (see the module docs for the order).
fn state_at(h: &History, t: Ts, now: Ts) -> State {
    if t < h.created_at || h.retired_at.is_some_and(|r| t >= r) || t >= now {
        State::NoData
    } else if h.maintenance.iter().any(|s| s.contains(t)) {
        State::Maintenance
    } else if h.outages.iter().any(|s| s.contains(t)) {
        State::Down
    } else if h.provider_outages.iter().any(|s| s.contains(t)) {
        State::ProviderDown
    } else if h.provider_silences.iter().any(|s| s.contains(t)) {
        State::ProviderSilent
    } else {
        State::Up
    }
}

/// The window `[from, to)` cut into constant stretches (adjacent stretches
/// of one state merged). Empty when `to <= from`.
pub fn timeline(h: &History, from: Ts, to: Ts, now: Ts) -> Vec<Piece> {
    if to <= from {
        return Vec::new();
    }
    let spans = h.outages.iter().chain(&h.provider_outages).chain(&h.provider_silences).chain(&h.maintenance);
    let mut cuts: Vec<i64> = spans
        .flat_map(|s| [Some(s.start.0), s.end.map(|e| e.0)])
        .flatten()
        .chain([Some(h.created_at.0), h.retired_at.map(|r| r.0), Some(now.0)].into_iter().flatten())
        .filter(|t| *t > from.0 && *t < to.0)
        .chain([from.0, to.0])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Piece> = Vec::with_capacity(cuts.len());
    for w in cuts.windows(2) {
        // No cut lies inside (w[0], w[1]): the state at its start holds throughout.
        let (start, end) = (Ts(w[0]), Ts(w[1]));
        let state = state_at(h, start, now);
        match out.last_mut() {
            Some(last) if last.state == state => last.end = end,
            _ => out.push(Piece { start, end, state }),
        }
    }
    out
}

/// Overlapping (or touching) spans merged into episodes, as `(start, end)`
/// with an open end as `i64::MAX`; empty spans dropped.
fn episodes(spans: &[Span]) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = spans.iter().map(|s| (s.start.0, s.end_or_max())).filter(|(s, e)| e > s).collect();
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Time of `state` in the timeline within `[s, e)`.
fn time_in(pieces: &[Piece], state: State, s: i64, e: i64) -> i64 {
    pieces.iter().filter(|p| p.state == state).map(|p| (p.end.0.min(e) - p.start.0.max(s)).max(0)).sum()
}

/// The figures of one instance over `[from, to)`, as known at `now`.
pub fn availability(h: &History, from: Ts, to: Ts, now: Ts) -> Availability {
    let pieces = timeline(h, from, to, now);
    let mut a = Availability::default();
    for p in &pieces {
        let d = p.end.0 - p.start.0;
        match p.state {
            State::NoData => continue,
            State::Up => a.connected_ms += d,
            State::ProviderSilent => {
                a.connected_ms += d;
                a.provider_silent_ms += d;
            }
            State::Maintenance => a.maintenance_ms += d,
            State::ProviderDown => a.provider_down_ms += d,
            State::Down => a.down_ms += d,
        }
        a.observed_ms += d;
    }
    // Where observation ends in this window: an outage ending after it has
    // not ended as far as this window knows.
    let observed_end = pieces.iter().rfind(|p| p.state != State::NoData).map_or(from.0, |p| p.end.0);
    for (s, e) in episodes(&h.outages) {
        let down = time_in(&pieces, State::Down, s, e);
        if down > 0 {
            a.outages += 1;
            a.longest_outage_ms = a.longest_outage_ms.max(Some(down));
            if e <= observed_end {
                a.recovered += 1;
                a.recovered_ms += down;
            }
        }
    }
    for (s, e) in episodes(&h.provider_outages) {
        if time_in(&pieces, State::ProviderDown, s, e) > 0 {
            a.provider_outages += 1;
        }
    }
    a.finish();
    a
}

/// The window `[from, to)` cut into `n` equal segments (the uptime bar), each
/// the worst [`State`] found in it; a segment shorter than a millisecond is
/// [`State::NoData`].
pub fn segments(h: &History, from: Ts, to: Ts, now: Ts, n: usize) -> Vec<State> {
    let pieces = timeline(h, from, to, now);
    let len = i128::from((to.0 - from.0).max(0));
    let bound = |i: usize| from.0 + i64::try_from(len * i as i128 / n.max(1) as i128).unwrap_or(i64::MAX);
    let mut out = Vec::with_capacity(n);
    let mut first = 0;
    for i in 0..n {
        let (s, e) = (bound(i), bound(i + 1));
        // Pieces are sorted and contiguous: skip those that end before this segment.
        while first < pieces.len() && pieces[first].end.0 <= s {
            first += 1;
        }
        let worst = pieces[first..]
            .iter()
            .take_while(|p| p.start.0 < e)
            .map(|p| p.state)
            .max()
            .filter(|_| e > s)
            .unwrap_or(State::NoData);
        out.push(worst);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn span(s: i64, e: Option<i64>) -> Span {
        Span { start: Ts(s), end: e.map(Ts) }
    }

    const H: i64 = 3_600_000;

    #[test]
    fn a_day_with_one_outage_one_maintenance_and_one_provider_outage() {
        let h = History {
            created_at: Ts(0),
            retired_at: None,
            outages: vec![span(2 * H, Some(3 * H))],
            provider_outages: vec![span(10 * H, Some(10 * H + H / 2))],
            provider_silences: vec![],
            maintenance: vec![span(20 * H, Some(22 * H))],
            ends: vec![],
        };
        let a = availability(&h, Ts(0), Ts(24 * H), Ts(30 * H));
        assert_eq!(a.observed_ms, 24 * H);
        assert_eq!(a.maintenance_ms, 2 * H);
        assert_eq!(a.down_ms, H);
        assert_eq!(a.provider_down_ms, H / 2);
        assert_eq!(a.connected_ms, 24 * H - 2 * H - H - H / 2);
        assert_eq!((a.outages, a.provider_outages), (1, 1));
        assert_eq!(a.mttr_ms, Some(H));
        assert_eq!(a.longest_outage_ms, Some(H));
        let share = a.availability.unwrap();
        assert!((share - 20.5 / 22.0).abs() < 1e-12, "{share}");
    }

    /// A provider silent half the day: its sessions answered `open`, so the
    /// instance was up — availability stays whole, the silence is a figure
    /// of its own (it was read as 50 % down before).
    #[test]
    fn a_silent_provider_is_not_downtime_of_its_instances() {
        let h = History { provider_silences: vec![span(0, Some(12 * H))], ..History::default() };
        let a = availability(&h, Ts(0), Ts(24 * H), Ts(24 * H));
        assert_eq!(a.availability, Some(1.0));
        assert_eq!((a.connected_ms, a.provider_silent_ms, a.provider_down_ms), (24 * H, 12 * H, 0));
        // An own outage inside the silence is still down time.
        let h = History { outages: vec![span(H, Some(2 * H))], ..h };
        assert_eq!(availability(&h, Ts(0), Ts(24 * H), Ts(24 * H)).down_ms, H);
        let s = segments(&h, Ts(0), Ts(24 * H), Ts(24 * H), 24);
        assert_eq!((s[0], s[1], s[12]), (State::ProviderSilent, State::Down, State::Up));
    }

    #[test]
    fn an_open_outage_lasts_until_now_and_has_no_recovery_time() {
        let h = History { outages: vec![span(5 * H, None)], ..History::default() };
        let a = availability(&h, Ts(0), Ts(24 * H), Ts(8 * H));
        assert_eq!((a.observed_ms, a.down_ms, a.outages), (8 * H, 3 * H, 1));
        assert_eq!(a.mttr_ms, None, "not recovered yet");
        assert_eq!(a.longest_outage_ms, Some(3 * H));
    }

    #[test]
    fn an_instance_in_maintenance_throughout_has_no_availability() {
        let h = History { maintenance: vec![span(0, None)], outages: vec![span(H, None)], ..History::default() };
        let a = availability(&h, Ts(0), Ts(H * 2), Ts(H * 2));
        assert_eq!(a.availability, None);
        assert_eq!((a.outages, a.down_ms, a.maintenance_ms), (0, 0, 2 * H));
    }

    #[test]
    fn segments_show_the_worst_state_of_each_stretch() {
        let h = History {
            created_at: Ts(10),
            outages: vec![span(35, Some(36))],
            maintenance: vec![span(50, Some(60))],
            provider_outages: vec![span(55, Some(80))],
            ..History::default()
        };
        let s = segments(&h, Ts(0), Ts(100), Ts(90), 10);
        use State::*;
        assert_eq!(s, vec![NoData, Up, Up, Down, Up, Maintenance, ProviderDown, ProviderDown, Up, NoData]);
        assert_eq!(segments(&h, Ts(0), Ts(5), Ts(90), 10).iter().filter(|s| **s == NoData).count(), 10);
    }

    /// Span lists over a small grid (instants 0..60), open ends included.
    fn spans() -> impl Strategy<Value = Vec<Span>> {
        proptest::collection::vec((0i64..60, proptest::option::weighted(0.8, 0i64..25)), 0..5)
            .prop_map(|v| v.into_iter().map(|(s, d)| span(s, d.map(|d| s + d))).collect())
    }

    fn history() -> impl Strategy<Value = History> {
        (0i64..40, proptest::option::weighted(0.2, 20i64..70), spans(), spans(), spans(), spans()).prop_map(
            |(created, retired, outages, provider_outages, provider_silences, maintenance)| History {
                created_at: Ts(created),
                retired_at: retired.map(Ts),
                outages,
                provider_outages,
                provider_silences,
                maintenance,
                ends: vec![],
            },
        )
    }

    /// The states instant by instant (milliseconds on the small grid).
    fn brute(h: &History, from: i64, to: i64, now: i64) -> Vec<State> {
        (from..to).map(|t| state_at(h, Ts(t), Ts(now))).collect()
    }

    #[test]
    fn needs_a_person_outages_report_their_time_to_reconnect_apart() {
        let end = |s: i64, e: i64, needs_person: bool, via_link: bool| OutageEnd {
            start: Ts(s),
            end: Ts(e),
            needs_person,
            via_link,
        };
        let h = History {
            ends: vec![
                end(0, 10 * H, true, true),
                end(H, 3 * H, true, false),
                end(2 * H, 4 * H, true, true),
                end(5 * H, 5 * H + 60_000, false, false),
                end(6 * H, 6 * H + 180_000, false, false),
                end(0, 30 * H, true, true), // ends after the window
            ],
            ..History::default()
        };
        let r = reconnects(&h, Ts(0), Ts(24 * H), Ts(40 * H));
        assert_eq!(r.needs_person_reconnects, 3);
        assert_eq!(r.reconnect_median_ms, Some(2 * H));
        assert_eq!(r.reconnect_max_ms, Some(10 * H));
        assert_eq!(r.reconnects_via_link, 2);
        assert_eq!((r.other_recoveries, r.other_mttr_ms), (2, Some(120_000)));
        // A tenant: the median of every outage, not of the instances' medians.
        let mut t = Reconnects::default();
        t.add(&r);
        t.add(&reconnects(
            &History { ends: vec![end(0, H, true, false)], ..History::default() },
            Ts(0),
            Ts(24 * H),
            Ts(40 * H),
        ));
        assert_eq!((t.needs_person_reconnects, t.reconnect_median_ms), (4, Some(2 * H)), "H, 2H, 2H, 10H");
        assert_eq!(t.reconnects_via_link, 2);
        let none = reconnects(&History::default(), Ts(0), Ts(H), Ts(H));
        assert_eq!((none.reconnect_median_ms, none.reconnect_max_ms, none.other_mttr_ms), (None, None, None));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// Durations match an instant-by-instant count, add up to the observed
        /// time, and the share is within [0, 1] (or absent with nothing counted).
        #[test]
        fn durations_match_the_instants(h in history(), from in -5i64..70, len in 0i64..80, now in 0i64..90) {
            let to = from + len;
            let a = availability(&h, Ts(from), Ts(to), Ts(now));
            let b = brute(&h, from, to, now);
            let count = |s: State| b.iter().filter(|x| **x == s).count() as i64;
            prop_assert_eq!(a.connected_ms, count(State::Up) + count(State::ProviderSilent));
            prop_assert_eq!(a.provider_silent_ms, count(State::ProviderSilent));
            prop_assert_eq!(a.down_ms, count(State::Down));
            prop_assert_eq!(a.provider_down_ms, count(State::ProviderDown));
            prop_assert_eq!(a.maintenance_ms, count(State::Maintenance));
            prop_assert_eq!(a.observed_ms, len - count(State::NoData));
            prop_assert_eq!(a.connected_ms + a.down_ms + a.provider_down_ms + a.maintenance_ms, a.observed_ms);
            // Before creation nothing is counted: created inside the window
            // means at most `to - created` observed.
            prop_assert!(a.observed_ms <= (to - h.created_at.0.max(from)).max(0));
            match a.availability {
                Some(x) => prop_assert!((0.0..=1.0).contains(&x) && a.observed_ms > a.maintenance_ms),
                None => prop_assert_eq!(a.observed_ms, a.maintenance_ms),
            }
            if let (Some(m), Some(l)) = (a.mttr_ms, a.longest_outage_ms) {
                prop_assert!(m <= l && l <= a.down_ms);
            }
            prop_assert!(a.recovered <= a.outages);
            prop_assert_eq!(a.outages == 0, a.down_ms == 0);
        }

        /// Outages counted = maximal runs of down time in the brute-force
        /// timeline, once touching and overlapping records are merged — a run
        /// split only by maintenance is still one outage.
        #[test]
        fn overlapping_outages_count_once(h in history(), from in -5i64..70, len in 0i64..80, now in 0i64..90) {
            let to = from + len;
            let a = availability(&h, Ts(from), Ts(to), Ts(now));
            let eps = episodes(&h.outages);
            let expected = eps
                .iter()
                .filter(|(s, e)| (from..to).any(|t| t >= *s && t < *e && state_at(&h, Ts(t), Ts(now)) == State::Down))
                .count() as u32;
            prop_assert_eq!(a.outages, expected);
            prop_assert!(a.outages as usize <= h.outages.len());
        }

        /// Two adjacent windows add up to their union.
        #[test]
        fn adjacent_windows_add_up(h in history(), from in -5i64..40, l1 in 0i64..40, l2 in 0i64..40, now in 0i64..90) {
            let (mid, to) = (from + l1, from + l1 + l2);
            let whole = availability(&h, Ts(from), Ts(to), Ts(now));
            let mut parts = availability(&h, Ts(from), Ts(mid), Ts(now));
            parts.add(&availability(&h, Ts(mid), Ts(to), Ts(now)));
            prop_assert_eq!(whole.observed_ms, parts.observed_ms);
            prop_assert_eq!(whole.connected_ms, parts.connected_ms);
            prop_assert_eq!(whole.provider_silent_ms, parts.provider_silent_ms);
            prop_assert_eq!(whole.down_ms, parts.down_ms);
            prop_assert_eq!(whole.provider_down_ms, parts.provider_down_ms);
            prop_assert_eq!(whole.maintenance_ms, parts.maintenance_ms);
            // An outage across the boundary shows in both halves.
            prop_assert!(parts.outages >= whole.outages);
        }

        /// Each segment is the worst state among its instants.
        #[test]
        fn segments_are_the_worst_instant(h in history(), from in -5i64..40, len in 0i64..80, now in 0i64..90, n in 1usize..30) {
            let to = from + len;
            let seg = segments(&h, Ts(from), Ts(to), Ts(now), n);
            prop_assert_eq!(seg.len(), n);
            for (i, got) in seg.iter().enumerate() {
                let s = from + len * i as i64 / n as i64;
                let e = from + len * (i as i64 + 1) / n as i64;
                let want = (s..e).map(|t| state_at(&h, Ts(t), Ts(now))).max().unwrap_or(State::NoData);
                prop_assert_eq!(*got, want, "segment {} [{}, {})", i, s, e);
            }
        }
    }
}
