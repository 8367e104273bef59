//! The re-pair links on an instance's page (operators'): the links issued
//! for it and what became of each, the forms that issue and revoke them, and
//! the page that shows a new link once. Rendered with maud (escaped by
//! default), inside the status page's shell.

use maud::{Markup, html};

use super::html::{ago, shell};
use crate::domain::Ts;
use crate::domain::pairing::link_state;
use crate::store::PairLinkRecord;

fn at(ms: i64) -> String {
    Ts(ms).rfc3339()
}

/// The links of one record, newest first, with their state now.
pub fn section(links: &[PairLinkRecord], connected: bool, now: Ts, enabled: bool) -> Markup {
    html! {
        h2 { "Re-pair links" }
        @if !enabled {
            div.note { "Re-pair links are off: they need " code { "server.public_url" } " (and " code { "pairing.enabled" } " left on)." }
        }
        div.wrap {
            table {
                thead { tr { th { "Issued" } th { "By" } th { "Works until" } th { "State" } th { "Opened" } th { "Views" } th { "Codes" } th { "Link id" } } }
                tbody {
                    @for l in links {
                        tr {
                            td { (at(l.created_at)) }
                            td { (l.created_by) }
                            td { (at(l.expires_at)) }
                            td { (link_state(&l.facts(), connected, now).as_str()) }
                            td { (ago(now, l.first_viewed_at.map(Ts))) }
                            td { (l.views) }
                            td { (l.codes) }
                            td.muted { (l.id) }
                        }
                    }
                    @if links.is_empty() {
                        tr { td.muted colspan="8" { "No link issued for this record." } }
                    }
                }
            }
        }
    }
}

/// The forms that issue a link and revoke the usable ones (CSRF like every action).
pub fn actions(base: &str, csrf: &str) -> Markup {
    html! {
        form method="post" action={ (base) "/pair-link" } {
            input type="hidden" name="csrf" value=(csrf);
            label { "Re-pair link for "
                select name="duration" {
                    option value="1h" { "1h" }
                    option value="2h" selected { "2h" }
                    option value="24h" { "24h" }
                }
            }
            " "
            button type="submit" { "Create re-pair link" }
        }
        form method="post" action={ (base) "/pair-revoke" } {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { "Revoke re-pair links" }
        }
    }
}

/// A new link, shown once: the database keeps only its hash.
pub fn minted(instance: &str, url: &str, expires_at: Ts, back: &str) -> Markup {
    let body: Markup = html! {
        div.muted { a href=(back) { "← " (instance) } }
        h1 { "Re-pair link for " (instance) }
        div.note.ok {
            p { "Send this link to whoever holds the phone. It is shown only now: wa-sentinel keeps a hash of it, not the link." }
            p { code.link { (url) } }
            p { "It works until " (expires_at.rfc3339()) " UTC, until the number is connected, or until revoked from the instance's page." }
        }
        p { a href=(back) { "Back to the instance" } }
    };
    shell(&format!("wa-sentinel: re-pair link for {instance}"), body, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_links_table_escapes_and_says_each_state() {
        let l = PairLinkRecord {
            id: "0193-link".into(),
            token_hash: "h".into(),
            instance_id: "i".into(),
            provider: "evo".into(),
            outage_id: None,
            created_by: "<api>".into(),
            created_at: 0,
            expires_at: 1_000,
            revoked_at: None,
            connected_at: None,
            started_at: None,
            first_viewed_at: Some(10),
            views: 3,
            codes: 1,
        };
        let s = section(std::slice::from_ref(&l), false, Ts(500), true).into_string();
        assert!(s.contains("&lt;api&gt;") && s.contains("<td>live</td>") && !s.contains("<api>"), "{s}");
        assert!(section(&[l], false, Ts(2_000), true).into_string().contains("<td>expired</td>"));
        let page = minted("evo/a<b", "https://x.example/pair/abc", Ts(0), "/instances/evo/a%3Cb").into_string();
        assert!(page.contains("evo/a&lt;b") && page.contains("https://x.example/pair/abc"), "{page}");
    }
}
