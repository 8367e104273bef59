//! Notices for people: a title, a one-line summary and a body with what
//! happened, since when, what wa-sentinel already did and what the operator
//! should do — in English or Brazilian Portuguese — plus the notice JSON (docs/http-api.md#notices)
//! payload of the generic webhook.

mod en;
mod pt_br;

use crate::config::Language;
use crate::domain::health::{Cause, status_code_in};
use crate::domain::notice::RecoveredBy;
use crate::domain::time::human_duration;
use crate::domain::{Notice, NoticeKind};

/// A notice ready for a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub title: String,
    pub summary: String,
    /// Several lines: what, since when, what was done, what to do.
    pub body: String,
    /// What the operator should do, alone (the body's last line).
    pub todo: String,
}

/// Terminal reasons that hint at a ban rather than a plain logout.
fn maybe_banned(n: &Notice) -> bool {
    matches!(n.code.or_else(|| status_code_in(&n.reason)), Some(402 | 403 | 406))
}

/// A WhatsApp disconnect code (Baileys `DisconnectReason`) in the reader's words.
fn code_text(code: u16, lang: Language) -> String {
    let (en, pt) = match code {
        401 => {
            ("the session was ended on the phone or by WhatsApp", "a sessão foi encerrada no celular ou pelo WhatsApp")
        }
        402 => ("the account is locked", "a conta está bloqueada"),
        403 | 406 => {
            ("WhatsApp refused the number, which may be banned", "o WhatsApp recusou o número, que pode estar banido")
        }
        408 => ("the connection was lost or timed out", "a conexão caiu ou expirou"),
        411 => (
            "the phone and the session disagree about linked devices",
            "o celular e a sessão divergem sobre os aparelhos conectados",
        ),
        428 => ("WhatsApp closed the connection", "o WhatsApp fechou a conexão"),
        440 => ("another connection took over the session", "outra conexão assumiu a sessão"),
        500 => ("the session is corrupt", "a sessão está corrompida"),
        503 => ("WhatsApp is unavailable", "o WhatsApp está indisponível"),
        515 => ("WhatsApp asked for a restart", "o WhatsApp pediu um reinício"),
        _ => ("", ""),
    };
    match (lang, en.is_empty()) {
        (Language::En, false) => format!("{en} (code {code})"),
        (Language::En, true) => format!("WhatsApp code {code}"),
        (Language::PtBr, false) => format!("{pt} (código {code})"),
        (Language::PtBr, true) => format!("código {code} do WhatsApp"),
    }
}

/// A cause key (`Notice::cause`) in the reader's words.
fn cause_text(cause: &str, lang: Language) -> Option<&'static str> {
    let (en, pt) = match cause {
        "disconnected" => ("disconnected", "desconectada"),
        "connecting" => ("stuck connecting", "travada conectando"),
        "silent" => ("connected, but no webhook arrives", "conectada, mas nenhum webhook chega"),
        "replaced" => {
            ("another connection keeps taking over the session", "outra conexão assume a sessão repetidamente")
        }
        "needs_qr" => ("waiting for a QR code scan", "aguardando a leitura do QR code"),
        "needs_human" => ("in a state wa-sentinel does not know", "em um estado que o wa-sentinel não conhece"),
        "logged_out" => ("logged out", "desconectada (logout)"),
        "missing" => ("deleted on the provider", "apagada no provedor"),
        "unreachable" => ("does not answer", "não responde"),
        "server_error" => ("answers every call with a server error", "responde a toda chamada com erro de servidor"),
        "unauthorized" => ("refuses the API key", "recusa a chave de API"),
        "unlicensed" => ("is not activated (LICENSE_REQUIRED)", "não está ativado (LICENSE_REQUIRED)"),
        "bad_response" => ("answers with something unexpected", "responde algo inesperado"),
        _ => return None,
    };
    Some(if lang == Language::En { en } else { pt })
}

/// What went wrong, for people: the code explained when there is one, else
/// the cause, else (notices from before causes were recorded) the raw reason.
fn detail(n: &Notice, lang: Language) -> String {
    if let Some(c) = n.code {
        return code_text(c, lang);
    }
    n.cause.as_deref().and_then(|c| cause_text(c, lang)).map_or_else(|| n.reason.clone(), str::to_string)
}

/// Whether restarting can help with this notice's cause.
fn restart_helps(n: &Notice) -> bool {
    n.cause.as_deref().and_then(Cause::parse).is_none_or(|c| c.recovery().is_some())
}

fn who(n: &Notice) -> String {
    match (&n.instance, &n.tenant) {
        (Some(i), Some(t)) => format!("{i} ({t} @ {})", n.provider),
        (Some(i), None) => format!("{i} @ {}", n.provider),
        (None, _) => n.provider.clone(),
    }
}

fn how(r: Option<RecoveredBy>, lang: Language) -> &'static str {
    match (r, lang) {
        (Some(RecoveredBy::Webhook), Language::En) => "a webhook proved it alive",
        (Some(RecoveredBy::Restart), Language::En) => "the recovery action worked",
        (Some(RecoveredBy::Manual), Language::En) => "a manual action",
        (Some(RecoveredBy::Retired), Language::En) => "the instance was retired",
        (_, Language::En) => "it came back by itself (seen by a poll)",
        (Some(RecoveredBy::Webhook), Language::PtBr) => "um webhook provou que está ativa",
        (Some(RecoveredBy::Restart), Language::PtBr) => "a ação de recuperação funcionou",
        (Some(RecoveredBy::Manual), Language::PtBr) => "uma ação manual",
        (Some(RecoveredBy::Retired), Language::PtBr) => "a instância foi retirada",
        (_, Language::PtBr) => "voltou sozinha (vista por uma verificação)",
    }
}

/// A provider's failure for people ("does not answer"); the raw reason for
/// notices queued before causes were recorded.
fn provider_detail(n: &Notice, lang: Language) -> String {
    match n.cause.as_deref().and_then(|c| cause_text(c, lang)) {
        Some(t) => t.to_string(),
        None if lang == Language::En => format!("is unreachable: {}", n.reason),
        None => format!("está inacessível: {}", n.reason),
    }
}

/// A remediation result (`exit 0`, `killed after the 1m timeout`, …) in the
/// reader's language.
fn result_text(res: &str, lang: Language) -> String {
    if lang == Language::En {
        return res.to_string();
    }
    if let Some(c) = res.strip_prefix("exit ") {
        format!("código de saída {c}")
    } else if let Some(t) = res.strip_prefix("killed after the ").and_then(|r| r.strip_suffix(" timeout")) {
        format!("encerrado após o tempo limite de {t}")
    } else if let Some(sig) = res.strip_prefix("killed by signal ") {
        format!("encerrado pelo sinal {sig}")
    } else if let Some(why) = res.strip_prefix("could not start: ") {
        format!("não pôde ser iniciado ({why})")
    } else {
        res.to_string()
    }
}

/// What the remediation hook did, as a clause (`None` before its first run).
fn remedy(n: &Notice, lang: Language) -> Option<String> {
    let r = n.remediation.as_ref().filter(|r| r.attempt > 0)?;
    let (cmd, at, max) = (&r.command, r.attempt, r.max_attempts);
    Some(match (lang, &r.result) {
        (Language::En, None) => format!("remediation `{cmd}` run {at}/{max} (no result recorded)"),
        (Language::En, Some(res)) => format!("remediation `{cmd}` run {at}/{max}: {res}"),
        (Language::PtBr, None) => format!("remediação `{cmd}` executada {at}/{max} (sem resultado registrado)"),
        (Language::PtBr, Some(res)) => {
            format!("remediação `{cmd}` executada {at}/{max}: {}", result_text(res, lang))
        }
    })
}

/// What the remediation hook does or did, as a sentence after a text
/// (empty without one).
fn remedy_sentence(n: &Notice, lang: Language) -> String {
    let Some(r) = &n.remediation else { return String::new() };
    match (lang, remedy(n, lang)) {
        (Language::En, None) => {
            format!(" wa-sentinel runs the remediation command `{}` (at most {} time(s)).", r.command, r.max_attempts)
        }
        (Language::En, Some(done)) => format!(" Last {done}."),
        (Language::PtBr, None) => {
            format!(
                " O wa-sentinel executa o comando de remediação `{}` (no máximo {} vez(es)).",
                r.command, r.max_attempts
            )
        }
        (Language::PtBr, Some(done)) => format!(" Última {done}."),
    }
}

/// `remedy` as a tail after a summary (empty without one).
fn remedy_tail(n: &Notice, lang: Language) -> String {
    remedy(n, lang).map(|r| format!("; {r}")).unwrap_or_default()
}

/// What every language's text is built from.
struct Common {
    /// `instance (tenant @ provider)`.
    w: String,
    since: String,
    dur: String,
    /// Restarts sent, and the budget.
    a: u32,
    m: u32,
}

fn common(n: &Notice) -> Common {
    Common {
        w: who(n),
        since: n.started_at.rfc3339(),
        dur: human_duration(n.at.since(n.started_at)),
        a: n.restart_attempts,
        m: n.max_attempts,
    }
}

/// Render one notice for people.
pub fn render(n: &Notice, lang: Language) -> Rendered {
    match lang {
        Language::En => en::render(n),
        Language::PtBr => pt_br::render(n),
    }
}

/// The generic webhook payload (docs/http-api.md#notices).
pub fn payload(n: &Notice, lang: Language) -> serde_json::Value {
    let r = render(n, lang);
    serde_json::json!({
        "kind": n.kind.as_str(),
        "severity": n.severity(),
        "provider": n.provider,
        "instance": n.instance,
        "tenant": n.tenant,
        "outage_id": n.outage_id,
        "started_at": n.started_at.rfc3339(),
        "at": n.at.rfc3339(),
        "reason": n.reason,
        "cause": n.cause,
        "code": n.code,
        "restart_attempts": n.restart_attempts,
        "recovered_by": n.recovered_by.map(RecoveredBy::as_str),
        "duration_seconds": n.at.since(n.started_at).as_secs(),
        "summary": r.summary,
        "dedup_key": n.dedup_key,
        "remediation": n.remediation,
        "pair_url": n.pair_url,
    })
}

#[cfg(test)]
mod tests;
