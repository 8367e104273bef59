//! The texts of every notice kind in both languages, and docs/notice-texts.md
//! kept equal to them.

use super::*;
use crate::domain::notice::dedup_key;
use crate::domain::{Notice, NoticeKind, Ts};

const TEXTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/notice-texts.md");

fn notice(kind: NoticeKind, cause: Option<&str>, code: Option<u16>, reason: &str) -> Notice {
    let provider_wide = matches!(
        kind,
        NoticeKind::ProviderUnreachable
            | NoticeKind::ProviderRecovered
            | NoticeKind::SentinelIsolated
            | NoticeKind::ProviderSilent
            | NoticeKind::RemediationExhausted
            | NoticeKind::ProviderVersionChanged
    );
    Notice {
        kind,
        provider: if kind == NoticeKind::SentinelIsolated { "wa-sentinel".into() } else { "evo-main".into() },
        instance: (!provider_wide).then(|| "loja-centro".into()),
        tenant: (!provider_wide).then(|| "acme".into()),
        outage_id: Some("0193abcd".into()),
        started_at: Ts(1_763_719_200_000),
        at: Ts(1_763_721_000_000),
        reason: reason.into(),
        cause: cause.map(str::to_string),
        code,
        restart_attempts: 1,
        max_attempts: 3,
        recovered_by: (kind == NoticeKind::InstanceRecovered).then_some(RecoveredBy::Webhook),
        sequence: u32::from(kind == NoticeKind::Reminder),
        dedup_key: dedup_key("0193abcd", kind, 0),
        remediation: None,
        pair_url: None,
    }
}

fn remediated(mut n: Notice, attempt: u32, result: Option<&str>) -> Notice {
    n.restart_attempts = attempt;
    n.max_attempts = 2;
    n.remediation = Some(Box::new(crate::domain::notice::RemediationNote {
        command: "/usr/bin/systemctl restart evolution-api".into(),
        attempt,
        max_attempts: 2,
        result: result.map(str::to_string),
    }));
    n
}

/// One notice of every kind, and of every cause a kind renders apart.
fn samples() -> Vec<(&'static str, Notice)> {
    use NoticeKind::*;
    vec![
        (
            "instance_down, WhatsApp closed the connection",
            notice(InstanceDown, Some("disconnected"), Some(428), "connection closed (statusReason 428)"),
        ),
        (
            "instance_down, zombie (open but silent)",
            notice(InstanceDown, Some("silent"), None, "no webhook for 30m while open"),
        ),
        (
            "instance_down, session replaced",
            notice(
                InstanceDown,
                Some("replaced"),
                Some(440),
                "connection closed: session replaced by another connection (statusReason 440)",
            ),
        ),
        (
            "instance_logged_out, code 401",
            notice(InstanceLoggedOut, Some("logged_out"), Some(401), "logged out (statusReason 401)"),
        ),
        (
            "instance_logged_out, maybe banned (403)",
            notice(
                InstanceLoggedOut,
                Some("logged_out"),
                Some(403),
                "logged out: forbidden (the number may be banned) (statusReason 403)",
            ),
        ),
        ("instance_logged_out, code 401, with a re-pair link", {
            let mut n = notice(InstanceLoggedOut, Some("logged_out"), Some(401), "logged out (statusReason 401)");
            n.pair_url = Some("https://sentinel.example.com/pair/5b1c…e9".into());
            n
        }),
        (
            "instance_logged_out, never paired",
            notice(InstanceLoggedOut, Some("needs_qr"), None, "never paired: waiting for its first QR code scan"),
        ),
        ("instance_missing", notice(InstanceMissing, Some("missing"), None, "instance not found on the provider")),
        (
            "restart_exhausted",
            notice(RestartExhausted, Some("disconnected"), Some(428), "connection closed (statusReason 428)"),
        ),
        (
            "instance_recovered",
            notice(
                InstanceRecovered,
                Some("disconnected"),
                Some(428),
                "recovered by webhook after connection closed (statusReason 428)",
            ),
        ),
        ("instance_flapping", notice(InstanceFlapping, None, None, "open")),
        (
            "provider_unreachable",
            notice(ProviderUnreachable, Some("unreachable"), None, "every status call failed: unreachable"),
        ),
        (
            "provider_unreachable, unlicensed",
            notice(ProviderUnreachable, Some("unlicensed"), None, "every status call failed: unlicensed"),
        ),
        ("provider_recovered", notice(ProviderRecovered, None, None, "every status call failed: unreachable")),
        (
            "provider_silent, with a remediation command",
            remediated(
                notice(
                    ProviderSilent,
                    Some("silent"),
                    None,
                    "no webhook from any instance for 15m while 12 instance(s) are connected",
                ),
                0,
                None,
            ),
        ),
        (
            "provider_silent, without one",
            notice(
                ProviderSilent,
                Some("silent"),
                None,
                "no webhook from any instance for 15m while 12 instance(s) are connected",
            ),
        ),
        ("provider_recovered, webhooks back after a remediation", {
            let mut n = remediated(notice(ProviderRecovered, None, None, "webhooks flow again"), 1, Some("exit 0"));
            n.recovered_by = Some(RecoveredBy::Webhook);
            n
        }),
        (
            "remediation_exhausted",
            remediated(
                notice(RemediationExhausted, Some("silent"), None, "no webhook from any instance for 15m"),
                2,
                Some("killed after the 1m timeout"),
            ),
        ),
        ("provider_version_changed", {
            let mut n = notice(ProviderVersionChanged, None, None, "version 2.3.6 → 2.3.7");
            n.outage_id = None;
            n
        }),
        ("webhook_repaired", notice(WebhookRepaired, None, None, "no webhook configured")),
        (
            "reminder",
            notice(
                Reminder,
                Some("disconnected"),
                Some(408),
                "connection closed: connection lost / timed out (statusReason 408)",
            ),
        ),
        ("sentinel_isolated", notice(SentinelIsolated, None, None, "3 providers unreachable, no webhook for 10m")),
        ("instance_retired", notice(InstanceRetired, Some("disconnected"), None, "the instance is gone")),
    ]
}

fn document() -> String {
    let mut out = String::from(
        "# Notice texts\n\nEvery notice kind as an operator reads it, in both languages (`alerts.language`),\n\
         for an outage that began 30 minutes before the notice: first as Slack, Discord, Telegram\n\
         and e-mail show it, then as a `whatsapp` notifier's message (WhatsApp markup: `*bold*`,\n\
         `_italic_`; the last line is the message's reference, here for the number 5511988887777).\n\
         Generated and checked by `cargo test --lib notice_texts` (`UPDATE_NOTICE_TEXTS=1` rewrites\n\
         this file); machines read the JSON payload, whose `reason` keeps the raw English reason.\n",
    );
    for (what, n) in samples() {
        out.push_str(&format!("\n## {what}\n"));
        for (lang, tag) in [(Language::En, "en"), (Language::PtBr, "pt-BR")] {
            let r = render(&n, lang);
            out.push_str(&format!("\n{tag}:\n\n```text\n{}\n{}\n```\n", r.title, r.body));
        }
        for (lang, tag) in [(Language::En, "en"), (Language::PtBr, "pt-BR")] {
            let m = super::super::chat::message(&n, lang, CHAT_TO);
            out.push_str(&format!("\nWhatsApp, {tag}:\n\n```text\n{m}\n```\n"));
        }
    }
    out.push_str(
        "\n## A digest: notices queued within a `whatsapp` notifier's `digest_window`\n\n\
         Up to 15 lines, then a count; the reference line names every notice in it.\n",
    );
    let all: Vec<Notice> = samples().into_iter().map(|(_, n)| n).collect();
    let digest: Vec<Notice> =
        [(0, "loja-centro", "0193abce"), (3, "loja-norte", "0193abcf"), (6, "loja-sul", "0193abd0")]
            .into_iter()
            .map(|(i, inst, outage)| {
                let mut n = all[i].clone();
                n.instance = Some(inst.into());
                n.dedup_key = dedup_key(outage, n.kind, 0);
                n
            })
            .collect();
    let refs: Vec<&Notice> = digest.iter().collect();
    for (lang, tag) in [(Language::En, "en"), (Language::PtBr, "pt-BR")] {
        let m = super::super::chat::digest(&refs, lang, CHAT_TO);
        out.push_str(&format!("\n{tag}:\n\n```text\n{m}\n```\n"));
    }
    out
}

/// The recipient the WhatsApp texts in docs/notice-texts.md are shown for.
const CHAT_TO: &str = "5511988887777";

/// Each text exactly as an operator reads it, kept in
/// docs/notice-texts.md; a change to any text shows up in review.
#[test]
fn notice_texts_match_docs() {
    let now = document();
    if std::env::var_os("UPDATE_NOTICE_TEXTS").is_some() {
        std::fs::write(TEXTS, &now).unwrap();
    }
    let saved = std::fs::read_to_string(TEXTS).unwrap_or_default();
    assert!(saved == now, "docs/notice-texts.md is out of date; rerun with UPDATE_NOTICE_TEXTS=1 and review the diff");
}

/// No phrase said twice, no English reason inside a pt-BR
/// text, and the raw reason is still in the JSON for machines.
#[test]
fn notice_texts_repeat_nothing_and_speak_one_language() {
    for (what, n) in samples() {
        for lang in [Language::En, Language::PtBr] {
            let r = render(&n, lang);
            let s = r.summary.to_lowercase();
            for phrase in ["logged out", "connection closed", "desconectada", "fora do ar"] {
                assert!(s.matches(phrase).count() <= 1, "{what}: {phrase:?} twice in {s:?}");
            }
            assert!(!s.contains("statusreason"), "{what}: {s:?}");
            if lang == Language::PtBr {
                for en in ["logged out", "connection closed", "unreachable", "every status call", "timed out"] {
                    assert!(!s.contains(en), "{what}: English {en:?} in the pt-BR text {s:?}");
                }
            }
        }
        assert_eq!(payload(&n, Language::PtBr)["reason"], n.reason, "{what}");
    }
}
