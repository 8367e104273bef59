//! Notices as WhatsApp messages (the `whatsapp` notifier): short, in the
//! notice's language, in WhatsApp's own markup (`*bold*`, `_italic_`), no
//! HTML. One notice is one message ([`message`]); notices that pile up
//! within a notifier's `digest_window` go out as one [`digest`].
//!
//! Every message ends with a reference line (`ref ws#1a2b3c`): a short hash
//! of the notice's dedup key and the recipient ([`reference()`]). People can
//! tell a repeat from a new notice by it, and after a send whose answer was
//! lost wa-sentinel finds its own message by it before sending again.

use sha2::Digest as _;

use super::channels::clip;
use super::render::render;
use crate::config::Language;
use crate::domain::{Notice, Severity};

/// Messages are kept under this many characters (UTF-16 units), the
/// reference line apart: far below WhatsApp's 65,536, and a screen or two.
pub const TEXT_MAX: usize = 4096;

/// A digest lists this many notices; the rest are counted.
pub const DIGEST_LINES: usize = 15;

/// A digest line is cut to this many characters.
const LINE_MAX: usize = 240;

/// `ws#` and six hex digits of SHA-256(dedup key, recipient): distinct per
/// notice and recipient, so a message found for one recipient never stands
/// for another's.
pub fn reference(dedup_key: &str, to: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(dedup_key.as_bytes());
    h.update(b"\n");
    h.update(to.as_bytes());
    let d = h.finalize();
    format!("ws#{:02x}{:02x}{:02x}", d[0], d[1], d[2])
}

fn mark(n: &Notice) -> &'static str {
    match n.severity() {
        Severity::Critical => "🔴",
        Severity::Warning => "🟡",
        Severity::Info => "🟢",
    }
}

/// When the trouble began, for people: `2025-11-21 10:00 UTC`.
fn when(n: &Notice) -> String {
    chrono::DateTime::from_timestamp_millis(n.started_at.0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| n.started_at.rfc3339())
}

/// One notice for chat, without its reference line. A re-pair link comes
/// last and whole: the text above it is what gets cut when too long.
pub fn chat(n: &Notice, lang: Language) -> String {
    let r = render(n, lang);
    let dur = crate::domain::time::human_duration(n.at.since(n.started_at));
    let since = match lang {
        Language::En => format!("_Since {} ({dur} ago)_", when(n)),
        Language::PtBr => format!("_Desde {} (há {dur})_", when(n)),
    };
    let text = format!("{} *{}*\n{}.\n{since}\n{}", mark(n), r.title, r.summary, r.todo);
    match &n.pair_url {
        None => clip(&text, TEXT_MAX),
        Some(url) => {
            let link = match lang {
                Language::En => format!("To reconnect, open {url}"),
                Language::PtBr => format!("Para reconectar, abra {url}"),
            };
            let room = TEXT_MAX.saturating_sub(link.encode_utf16().count() + 1);
            format!("{}\n{link}", clip(&text, room))
        }
    }
}

/// One notice as a message to one recipient.
pub fn message(n: &Notice, lang: Language, to: &str) -> String {
    format!("{}\nref {}", chat(n, lang), reference(&n.dedup_key, to))
}

/// Several notices as one message to one recipient: a count, one line per
/// notice (its summary) up to [`DIGEST_LINES`], how many more, and every
/// notice's reference.
pub fn digest(notices: &[&Notice], lang: Language, to: &str) -> String {
    let head = match lang {
        Language::En => format!("*wa-sentinel: {} notices*", notices.len()),
        Language::PtBr => format!("*wa-sentinel: {} avisos*", notices.len()),
    };
    let mut lines = vec![head];
    for n in notices.iter().take(DIGEST_LINES) {
        lines.push(clip(&format!("{} {}", mark(n), render(n, lang).summary), LINE_MAX));
    }
    let more = notices.len().saturating_sub(DIGEST_LINES);
    if more > 0 {
        lines.push(match lang {
            Language::En => format!("…and {more} more: the status page has them all."),
            Language::PtBr => format!("…e mais {more}: a página de status mostra todos."),
        });
    }
    let refs: Vec<String> = notices.iter().map(|n| reference(&n.dedup_key, to)).collect();
    format!("{}\nref {}", clip(&lines.join("\n"), TEXT_MAX), refs.join(" "))
}

/// The message for these notices: one notice's own text, or a digest.
pub fn compose(notices: &[&Notice], lang: Language, to: &str) -> String {
    match notices {
        [one] => message(one, lang, to),
        many => digest(many, lang, to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::notice::dedup_key;
    use crate::domain::{NoticeKind, Ts};

    fn notice(kind: NoticeKind, instance: &str) -> Notice {
        Notice {
            kind,
            provider: "evo-main".into(),
            instance: Some(instance.into()),
            tenant: Some("acme".into()),
            outage_id: Some(format!("o-{instance}")),
            started_at: Ts(1_763_719_200_000),
            at: Ts(1_763_721_000_000),
            reason: "connection closed (statusReason 428)".into(),
            cause: Some("disconnected".into()),
            code: Some(428),
            restart_attempts: 1,
            max_attempts: 3,
            recovered_by: None,
            sequence: 0,
            dedup_key: dedup_key(&format!("o-{instance}"), kind, 0),
            remediation: None,
            pair_url: None,
        }
    }

    #[test]
    fn a_re_pair_link_comes_whole_before_the_reference_even_under_a_huge_name() {
        let mut n = notice(NoticeKind::InstanceLoggedOut, "loja-centro");
        n.pair_url = Some("https://sentinel.example.com/pair/abc123".into());
        let m = message(&n, Language::En, "5511988887777");
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[lines.len() - 2], "To reconnect, open https://sentinel.example.com/pair/abc123", "{m}");
        assert!(m.contains("Send the link below"), "{m}");
        let pt = message(&n, Language::PtBr, "5511988887777");
        assert!(pt.contains("\nPara reconectar, abra https://sentinel.example.com/pair/abc123\nref ws#"), "{pt}");
        n.instance = Some("é".repeat(10_000));
        let m = message(&n, Language::En, "5511988887777");
        let (text, _) = m.rsplit_once('\n').unwrap();
        assert!(text.encode_utf16().count() <= TEXT_MAX);
        assert!(text.ends_with("\nTo reconnect, open https://sentinel.example.com/pair/abc123"), "{text}");
        assert!(!message(&notice(NoticeKind::InstanceDown, "x"), Language::En, "y").contains("reconnect, open"));
    }

    #[test]
    fn references_differ_per_notice_and_per_recipient_and_are_stable() {
        let a = reference("outage:1:instance_down", "5511988887777");
        assert_eq!(a, reference("outage:1:instance_down", "5511988887777"));
        assert_ne!(a, reference("outage:1:instance_down", "5511977776666"));
        assert_ne!(a, reference("outage:1:instance_recovered", "5511988887777"));
        assert!(a.starts_with("ws#") && a.len() == 9 && a[3..].bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    }

    #[test]
    fn a_message_is_bold_title_summary_since_what_to_do_and_reference() {
        let n = notice(NoticeKind::InstanceDown, "loja-centro");
        let m = message(&n, Language::En, "5511988887777");
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[0], "🔴 *Instance down*");
        assert!(lines[1].starts_with("loja-centro (acme @ evo-main) is down"), "{m}");
        assert_eq!(lines[2], "_Since 2025-11-21 10:00 UTC (30m ago)_");
        assert_eq!(lines.last().unwrap(), &format!("ref {}", reference(&n.dedup_key, "5511988887777")));
        assert!(!m.contains('<'), "no HTML: {m}");
        let pt = message(&n, Language::PtBr, "5511988887777");
        assert!(pt.starts_with("🔴 *Instância fora do ar*\n"), "{pt}");
        assert!(pt.contains("_Desde 2025-11-21 10:00 UTC (há 30m)_"), "{pt}");
    }

    #[test]
    fn a_digest_lists_fifteen_counts_the_rest_and_carries_every_reference() {
        let ns: Vec<Notice> = (0..20).map(|i| notice(NoticeKind::InstanceDown, &format!("shop-{i:02}"))).collect();
        let refs: Vec<&Notice> = ns.iter().collect();
        let d = digest(&refs, Language::En, "5511988887777");
        assert!(d.starts_with("*wa-sentinel: 20 notices*\n"), "{d}");
        assert_eq!(d.lines().filter(|l| l.starts_with("🔴 shop-")).count(), DIGEST_LINES);
        assert!(d.contains("…and 5 more"), "{d}");
        for n in &ns {
            assert!(d.contains(&reference(&n.dedup_key, "5511988887777")), "{d}");
        }
        let pt = digest(&refs, Language::PtBr, "5511988887777");
        assert!(pt.starts_with("*wa-sentinel: 20 avisos*\n") && pt.contains("…e mais 5"), "{pt}");
        assert_eq!(compose(&refs[..1], Language::En, "x"), message(&ns[0], Language::En, "x"));
    }

    #[test]
    fn a_huge_instance_name_is_cut_but_the_reference_survives() {
        let mut n = notice(NoticeKind::InstanceDown, "x");
        n.instance = Some("é".repeat(10_000));
        let m = message(&n, Language::En, "5511988887777");
        let (text, tail) = m.rsplit_once('\n').unwrap();
        assert!(text.encode_utf16().count() <= TEXT_MAX);
        assert_eq!(tail, format!("ref {}", reference(&n.dedup_key, "5511988887777")));
    }
}
