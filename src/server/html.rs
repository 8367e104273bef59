//! The pieces every admin page shares, in maud (escaped by default; the one
//! `PreEscaped` is the shell's own doctype): the page shell, the stylesheet
//! (served from `/status.css`, so the Content-Security-Policy can stay
//! `default-src 'self'` with no inline style or script), the uptime bar and
//! its legend, and path-segment encoding for links to instances.

use std::fmt::Write;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::domain::Ts;
use crate::domain::availability::State;
use crate::domain::time::human_duration;

/// The policy of every status-page response: nothing but this origin's own
/// resources, no inline script or style, no framing, forms post only here.
pub const CSP: &str = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Segments of an uptime bar.
pub const SEGMENTS: usize = 90;

/// Percent-encode one URL path segment (everything but RFC 3986 unreserved).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The link to an instance's page.
pub fn instance_href(provider: &str, name: &str) -> String {
    format!("/instances/{}/{}", seg(provider), seg(name))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;padding:12px;background:#f6f7f9;color:#1b1f24}\
h1{font-size:1.3em;margin:0 0 8px}h2{font-size:1.1em;margin:18px 0 6px}a{color:#1d4ed8}\
.counts{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}.count{background:#fff;border-radius:6px;padding:6px 10px;box-shadow:0 1px 2px #0002}\
.wrap{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff;font-size:.9em}\
th,td{padding:6px 8px;border-bottom:1px solid #e3e5e8;text-align:left;white-space:nowrap}\
.h{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:.85em}\
.connected{background:#2e8b57}.degraded,.connecting{background:#d08c00}.disconnected,.logged_out{background:#c0392b}\
.missing,.unknown{background:#7f8c8d}form{margin:6px 0}input,select,button{font-size:1em;padding:4px 6px}\
.muted{color:#6b7280;font-size:.85em}.ranges a,.ranges b{margin-right:8px}\
.bar{display:flex;width:180px;height:16px;gap:1px;background:#fff}.bar span{flex-basis:0;min-width:1px;border-radius:1px}\
.bar.wide{width:100%;max-width:720px;height:28px}\
.s-up{background:#2e8b57}.s-down{background:#c0392b}.s-provider_down{background:#e67e22}.s-provider_silent{background:#9ccc65}\
.s-maintenance{background:#5b7fd6}.s-no_data{background:#d5d8dc}\
.legend b{font-weight:normal;white-space:nowrap;margin-right:10px}\
.legend i{display:inline-block;width:10px;height:10px;margin-right:3px;border-radius:2px}\
.card{background:#fff;border-radius:6px;padding:10px 12px;box-shadow:0 1px 2px #0002;margin:8px 0}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0}dt{color:#6b7280}dd{margin:0}\
.actions{display:flex;flex-wrap:wrap;gap:10px}.actions form{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 2px #0002;margin:0}\
.note{background:#fff8e1;border-left:4px solid #d08c00;padding:8px 10px;margin:8px 0}\
.note.ok{background:#e8f5e9;border-color:#2e8b57}.note.err{background:#fdecea;border-color:#c0392b}\
code.link{word-break:break-all;font-size:1.05em}\
@media (max-width:600px){.bar{width:120px}td,th{padding:5px 6px}}";

/// `/status.css`: the one stylesheet, with a flex-grow class per run length
/// of an uptime bar (`.g1` … `.g90`; style attributes would need `'unsafe-inline'`).
pub fn stylesheet() -> String {
    let mut css = String::from(STYLE);
    for n in 1..=SEGMENTS {
        let _ = write!(css, ".g{n}{{flex-grow:{n}}}");
    }
    css
}

/// A whole page: the shell around `body`, refreshed every 15 s if asked.
pub fn shell(title: &str, body: Markup, refresh: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh { meta http-equiv="refresh" content="15"; }
                title { (title) }
                link rel="stylesheet" href="/status.css";
            }
            body { (body) }
        }
    }
}

/// A short page that says one thing (a refusal, an error) under the name.
pub fn message(status: StatusCode, body: Markup) -> Response {
    respond(status, shell("wa-sentinel", html! { h1 { "wa-sentinel" } (body) }, false))
}

/// An HTML answer with the page's security headers.
pub fn respond(status: StatusCode, page: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        ],
        page.into_string(),
    )
        .into_response()
}

fn state_label(s: State) -> &'static str {
    match s {
        State::NoData => "no data",
        State::Up => "connected",
        State::ProviderSilent => "connected, provider silent",
        State::Maintenance => "maintenance",
        State::ProviderDown => "provider down",
        State::Down => "down",
    }
}

/// An uptime bar over `[from, to)`: runs of equal segments drawn as one
/// element each, with the run's time span and state as its tooltip.
pub fn bar(segments: &[State], from: Ts, to: Ts, wide: bool) -> Markup {
    let n = segments.len().max(1) as i64;
    let at = |i: usize| Ts(from.0 + (to.0 - from.0) * i as i64 / n).rfc3339();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let s = segments[i];
        let run = segments[i..].iter().take_while(|x| **x == s).count();
        runs.push((s, i, run));
        i += run;
    }
    html! {
        div.bar.wide[wide] role="img" aria-label={ "uptime from " (from.rfc3339()) " to " (to.rfc3339()) } {
            @for (s, i, run) in runs {
                span class={ "s-" (s.as_str()) " g" (run) }
                    title={ (state_label(s)) " · " (at(i)) " → " (at(i + run)) } {}
            }
        }
    }
}

/// The legend under a bar.
pub fn legend() -> Markup {
    let states =
        [State::Up, State::ProviderSilent, State::Down, State::ProviderDown, State::Maintenance, State::NoData];
    html! {
        div.muted.legend {
            @for s in states { b { i class={ "s-" (s.as_str()) } {} (state_label(s)) } }
        }
    }
}

/// `3m ago`, or a dash.
pub fn ago(now: Ts, t: Option<Ts>) -> String {
    match t {
        Some(t) => format!("{} ago", human_duration(now.since(t))),
        None => "—".to_string(),
    }
}

/// A human duration of milliseconds.
pub fn dur_ms(ms: i64) -> String {
    human_duration(std::time::Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_names_are_encoded() {
        assert_eq!(seg("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(instance_href("evo", "x<y"), "/instances/evo/x%3Cy");
    }

    #[test]
    fn a_bar_draws_runs_not_segments() {
        let s = [State::Up, State::Up, State::Down, State::Up];
        let b = bar(&s, Ts(0), Ts(4000), false).into_string();
        assert_eq!(b.matches("<span").count(), 3);
        assert!(b.contains("class=\"s-up g2\"") && b.contains("class=\"s-down g1\""), "{b}");
        assert!(b.starts_with("<div class=\"bar\" role=\"img\""), "{b}");
        assert!(bar(&s, Ts(0), Ts(4000), true).into_string().starts_with("<div class=\"bar wide\""));
        assert!(stylesheet().contains(".g90{flex-grow:90}"));
    }

    #[test]
    fn the_shell_escapes_its_title_and_refreshes_only_when_asked() {
        let page = shell("a <b> & \"c\"", html! { p { "x" } }, false).into_string();
        assert!(page.starts_with("<!DOCTYPE html><html lang=\"en\">"), "{page}");
        assert!(page.contains("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>"), "{page}");
        assert!(!page.contains("http-equiv"));
        assert!(shell("t", html! {}, true).into_string().contains("<meta http-equiv=\"refresh\" content=\"15\">"));
    }
}
