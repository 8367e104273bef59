//! The English texts of every notice kind.

use super::*;

/// A notice in English.
pub(super) fn render(n: &Notice) -> Rendered {
    let lang = Language::En;
    let Common { w, since, dur, a, m } = common(n);
    // The notice commits with the decision, before the provider call, which
    // may still find nothing to send (a session already starting): "ordered",
    // not "sent".
    let did = match a {
        _ if !restart_helps(n) => "restarts would not help".to_string(),
        0 => "no restart sent yet".to_string(),
        _ => format!("restart {a}/{m} ordered"),
    };
    let d = detail(n, lang);
    let (title, summary, todo) = match n.kind {
        NoticeKind::InstanceDown => (
            "Instance down".to_string(),
            format!("{w} is down: {d}; {did}"),
            match n.cause.as_deref() {
                Some("replaced") => "Another client uses the same session (WhatsApp Web, a second server, a copied session): stop it. Restarts would make it worse.",
                _ if !restart_helps(n) => "Look at the instance on the provider: its state needs a person.",
                _ => "wa-sentinel keeps trying within its cooldown. If it stays down, check the provider server and the phone.",
            }
            .to_string(),
        ),
        NoticeKind::InstanceLoggedOut if n.cause.as_deref() == Some("needs_qr") => (
            "Instance waits for a QR code".to_string(),
            format!("{w} is waiting for a QR code scan; restarts cannot fix this"),
            "Scan the QR code on the provider to connect the phone.".to_string(),
        ),
        NoticeKind::InstanceLoggedOut => (
            "Instance logged out".to_string(),
            match n.code {
                Some(c) => format!("{w} is logged out: {}; restarts cannot fix this", code_text(c, lang)),
                None => format!("{w} is logged out; restarts cannot fix this"),
            },
            if maybe_banned(n) {
                "The number may be banned or restricted by WhatsApp: check it on the phone before scanning a new QR code.".to_string()
            } else {
                "Scan the QR code again on the provider to reconnect the phone.".to_string()
            },
        ),
        NoticeKind::InstanceMissing => (
            "Instance missing".to_string(),
            format!("{w} does not exist on {} any more", n.provider),
            "Recreate the instance on the provider, or remove it from the configuration.".to_string(),
        ),
        NoticeKind::RestartExhausted => (
            "Recovery attempts exhausted".to_string(),
            format!("{w} is still down after {a} recovery attempt(s); no more automatic restarts"),
            "Look at the instance on the provider by hand; `wa-sentinel restart --force` tries again.".to_string(),
        ),
        NoticeKind::InstanceRecovered => (
            "Instance recovered".to_string(),
            format!("{w} is back after {dur}: {}", how(n.recovered_by, lang)),
            "Nothing to do.".to_string(),
        ),
        NoticeKind::InstanceFlapping => (
            "Instance flapping".to_string(),
            format!("{w} keeps dropping and coming back; individual down/up notices are paused"),
            "Check the phone's connection and whether another client uses the same session.".to_string(),
        ),
        NoticeKind::ProviderUnreachable => (
            match n.cause.as_deref() {
                Some("unauthorized") => "Provider refuses the API key",
                Some("unlicensed") => "Provider needs activation",
                Some("bad_response") => "Provider answers unexpectedly",
                Some("server_error") => "Provider fails every call",
                _ => "Provider unreachable",
            }
            .to_string(),
            format!("{} {}; instance verdicts are held", n.provider, provider_detail(n, lang)),
            match n.cause.as_deref() {
                Some("unlicensed") => "Activate the install (Evolution 2.4 and later need a licence); wa-sentinel resumes by itself. Instances are not restarted meanwhile.",
                Some("unauthorized") => "Check the provider's API key in the configuration (api_key / api_key_env). Instances are not restarted meanwhile.",
                _ => "Check the provider server, its API key and its licence. Instances are not restarted meanwhile.",
            }
            .to_string()
                + &remedy_sentence(n, lang),
        ),
        NoticeKind::ProviderRecovered if n.recovered_by == Some(RecoveredBy::Webhook) => (
            "Provider recovered".to_string(),
            format!("{}: webhooks flow again after {dur}{}", n.provider, remedy_tail(n, lang)),
            "Nothing to do; instances that are still down will be announced on their own.".to_string(),
        ),
        NoticeKind::ProviderRecovered => (
            "Provider recovered".to_string(),
            format!("{} answers again after {dur}", n.provider),
            "Nothing to do; instances that are still down will be announced on their own.".to_string(),
        ),
        NoticeKind::ProviderSilent => (
            "Provider silent".to_string(),
            format!("{} sends no webhooks although its sessions are open: its webhook dispatcher is probably stuck; instance verdicts are kept and no instance is restarted", n.provider),
            match &n.remediation {
                Some(r) => format!("wa-sentinel runs the remediation command `{}` (at most {} time(s) for this outage) and checks whether webhooks come back. If they do not, restart the provider server by hand.", r.command, r.max_attempts),
                None => "Restart the provider server (restarting instances one by one does not help); set `remediate_command` to let wa-sentinel do it.".to_string(),
            },
        ),
        NoticeKind::RemediationExhausted => (
            "Remediation exhausted".to_string(),
            format!("{} is still {} after {a} remediation run(s){}", n.provider, if n.cause.as_deref() == Some("silent") { "silent" } else { "down" }, remedy_tail(n, lang)),
            "No more automatic runs for this outage: look at the provider server by hand.".to_string(),
        ),
        NoticeKind::ProviderVersionChanged => (
            "Provider version changed".to_string(),
            format!("{} now reports {}", n.provider, n.reason),
            "Nothing to do if the upgrade was planned; if instances misbehave from now on, the new version is the first suspect.".to_string(),
        ),
        NoticeKind::WebhookRepaired => (
            "Webhook repaired".to_string(),
            format!("{w}: webhook config repaired ({})", n.reason),
            "Nothing to do; if this repeats, something else rewrites the webhook config.".to_string(),
        ),
        NoticeKind::Reminder => (
            format!("Reminder #{}: still down", n.sequence),
            format!("{w} is still down after {dur}: {d}"),
            "See the first notice of this outage for what to do.".to_string(),
        ),
        NoticeKind::SentinelIsolated => (
            "wa-sentinel cut off".to_string(),
            format!("wa-sentinel reaches no provider and receives no webhooks: {}; instance verdicts are held", n.reason),
            "Check the network of the machine wa-sentinel runs on (DNS, firewall, outbound routes) before suspecting the providers.".to_string(),
        ),
        NoticeKind::InstanceRetired => (
            "Instance retired".to_string(),
            format!("{w} is no longer supervised (deleted on the provider or removed from the configuration); its outage of {dur} is closed"),
            "Nothing to do; close the incident. A new instance under the same name starts with a fresh record.".to_string(),
        ),
    };
    let todo = match &n.pair_url {
        Some(_) if !maybe_banned(n) => "Send the link below to whoever holds the phone: they open it on any device and scan the QR code with WhatsApp, or ask it for a pairing code.".to_string(),
        _ => todo,
    };
    let mut body = format!("{summary}.\nSince: {since} ({dur} ago).\nWhat to do: {todo}");
    if let Some(url) = &n.pair_url {
        body.push_str(&format!("\nTo reconnect, open {url}"));
    }
    Rendered { title, summary, body, todo }
}
