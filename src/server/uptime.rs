//! The uptime figures both admin pages show of an instance's history: the
//! range of the bars (24 h, 7 d, 30 d) and its switch, and the 24 h / 30 d
//! availability, all from [`crate::domain::availability`] (the function
//! behind `wa-sentinel report`).

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::html::{SEGMENTS, legend};
use crate::domain::Ts;
use crate::domain::availability::{Availability, History, State as Seg, availability, segments};
use crate::store::{HistoryFilter, InstanceHistory};

pub const DAY_MS: i64 = 86_400_000;
pub const MONTH_MS: i64 = 30 * DAY_MS;

/// The span of the uptime bars: 24 h by default, or 7 d / 30 d.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Day,
    Week,
    Month,
}

impl Range {
    pub fn parse(s: Option<&str>) -> Range {
        match s {
            Some("7d") => Range::Week,
            Some("30d") => Range::Month,
            _ => Range::Day,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Range::Day => "24 h",
            Range::Week => "7 d",
            Range::Month => "30 d",
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Range::Day => DAY_MS,
            Range::Week => 7 * DAY_MS,
            Range::Month => MONTH_MS,
        }
    }
}

/// What the pages show of one instance's history: the 24 h and 30 d figures
/// and the uptime bar over the chosen range.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub day: Availability,
    pub month: Availability,
    pub bar: Vec<Seg>,
}

impl Figures {
    pub fn of(h: &History, range: Range, now: Ts) -> Figures {
        Figures {
            day: availability(h, Ts(now.0 - DAY_MS), now, now),
            month: availability(h, Ts(now.0 - MONTH_MS), now, now),
            bar: segments(h, Ts(now.0 - range.ms()), now, now, SEGMENTS),
        }
    }
}

/// The histories a page needs (30 days), by instance id.
pub async fn histories_by_id(
    store: &crate::store::Store,
    f: HistoryFilter,
    now: Ts,
) -> crate::store::Result<BTreeMap<String, InstanceHistory>> {
    let rows = store.histories(&f, Ts(now.0 - MONTH_MS), now).await?;
    Ok(rows.into_iter().map(|h| (h.id.clone(), h)).collect())
}

/// The 24 h / 7 d / 30 d switch and the bars' legend; `keep` is the rest of
/// the query string (already percent-encoded, starting with `&`).
pub fn range_switch(range: Range, keep: &str) -> Markup {
    html! {
        div.ranges.muted {
            "Uptime bars over "
            @for r in [Range::Day, Range::Week, Range::Month] {
                @if r == range { b { (r.label()) } } @else { a href={ "?range=" (r.as_str()) (keep) } { (r.label()) } }
            }
        }
        (legend())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_links_the_other_ranges_and_keeps_the_query() {
        let s = range_switch(Range::Week, "&tenant=a%3Cb&x=1").into_string();
        assert!(s.contains("<b>7 d</b>"), "{s}");
        assert!(s.contains("<a href=\"?range=24h&amp;tenant=a%3Cb&amp;x=1\">24 h</a>"), "{s}");
        assert!(s.contains("<a href=\"?range=30d&amp;tenant=a%3Cb&amp;x=1\">30 d</a>"), "{s}");
        assert_eq!(Range::parse(Some("30d")), Range::Month);
        assert_eq!(Range::parse(Some("nonsense")), Range::Day);
    }
}
