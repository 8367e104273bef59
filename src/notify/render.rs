//! Notices for people: a title, a one-line summary and a body with what
//! happened, since when, what wa-sentinel already did and what the operator
//! should do — in English or Brazilian Portuguese — plus the notice JSON (docs/http-api.md#notices)
//! payload of the generic webhook.

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

/// Render one notice for people.
pub fn render(n: &Notice, lang: Language) -> Rendered {
    let w = who(n);
    let since = n.started_at.rfc3339();
    let dur = human_duration(n.at.since(n.started_at));
    let (a, m) = (n.restart_attempts, n.max_attempts);
    match lang {
        Language::En => {
            let did = match a {
                _ if !restart_helps(n) => "restarts would not help".to_string(),
                0 => "no restart sent yet".to_string(),
                _ => format!("restart {a}/{m} sent"),
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
        Language::PtBr => {
            let did = match a {
                _ if !restart_helps(n) => "reiniciar não ajuda".to_string(),
                0 => "nenhum reinício enviado ainda".to_string(),
                _ => format!("reinício {a}/{m} enviado"),
            };
            let d = detail(n, lang);
            let (title, summary, todo) = match n.kind {
                NoticeKind::InstanceDown => (
                    "Instância fora do ar".to_string(),
                    format!("{w} está fora do ar: {d}; {did}"),
                    match n.cause.as_deref() {
                        Some("replaced") => "Outro cliente usa a mesma sessão (WhatsApp Web, um segundo servidor, uma cópia da sessão): desligue-o. Reiniciar pioraria.",
                        _ if !restart_helps(n) => "Verifique a instância no provedor: o estado dela precisa de uma pessoa.",
                        _ => "O wa-sentinel continua tentando dentro do intervalo mínimo. Se continuar fora, verifique o servidor do provedor e o celular.",
                    }
                    .to_string(),
                ),
                NoticeKind::InstanceLoggedOut if n.cause.as_deref() == Some("needs_qr") => (
                    "Instância aguardando QR code".to_string(),
                    format!("{w} aguarda a leitura do QR code; reiniciar não resolve"),
                    "Leia o QR code no provedor para conectar o celular.".to_string(),
                ),
                NoticeKind::InstanceLoggedOut => (
                    "Instância desconectada (logout)".to_string(),
                    match n.code {
                        Some(c) => format!("{w} foi desconectada: {}; reiniciar não resolve", code_text(c, lang)),
                        None => format!("{w} foi desconectada; reiniciar não resolve"),
                    },
                    if maybe_banned(n) {
                        "O número pode ter sido banido ou restrito pelo WhatsApp: verifique no celular antes de ler um novo QR code.".to_string()
                    } else {
                        "Leia o QR code novamente no provedor para reconectar o celular.".to_string()
                    },
                ),
                NoticeKind::InstanceMissing => (
                    "Instância não encontrada".to_string(),
                    format!("{w} não existe mais em {}", n.provider),
                    "Recrie a instância no provedor ou remova-a da configuração.".to_string(),
                ),
                NoticeKind::RestartExhausted => (
                    "Tentativas de recuperação esgotadas".to_string(),
                    format!("{w} continua fora do ar após {a} tentativa(s) de recuperação; sem novos reinícios automáticos"),
                    "Verifique a instância no provedor manualmente; `wa-sentinel restart --force` tenta de novo.".to_string(),
                ),
                NoticeKind::InstanceRecovered => (
                    "Instância recuperada".to_string(),
                    format!("{w} voltou após {dur}: {}", how(n.recovered_by, lang)),
                    "Nada a fazer.".to_string(),
                ),
                NoticeKind::InstanceFlapping => (
                    "Instância instável".to_string(),
                    format!("{w} cai e volta repetidamente; avisos individuais de queda/retorno estão pausados"),
                    "Verifique a conexão do celular e se outro cliente usa a mesma sessão.".to_string(),
                ),
                NoticeKind::ProviderUnreachable => (
                    match n.cause.as_deref() {
                        Some("unauthorized") => "Provedor recusa a chave de API",
                        Some("unlicensed") => "Provedor precisa de ativação",
                        Some("bad_response") => "Provedor responde de forma inesperada",
                        Some("server_error") => "Provedor falha em toda chamada",
                        _ => "Provedor inacessível",
                    }
                    .to_string(),
                    format!("{} {}; os diagnósticos das instâncias estão suspensos", n.provider, provider_detail(n, lang)),
                    match n.cause.as_deref() {
                        Some("unlicensed") => "Ative a instalação (Evolution 2.4 ou posterior exige licença); o wa-sentinel retoma sozinho. As instâncias não são reiniciadas enquanto isso.",
                        Some("unauthorized") => "Verifique a chave de API do provedor na configuração (api_key / api_key_env). As instâncias não são reiniciadas enquanto isso.",
                        _ => "Verifique o servidor do provedor, a chave de API e a licença. As instâncias não são reiniciadas enquanto isso.",
                    }
                    .to_string()
                        + &remedy_sentence(n, lang),
                ),
                NoticeKind::ProviderRecovered if n.recovered_by == Some(RecoveredBy::Webhook) => (
                    "Provedor recuperado".to_string(),
                    format!("{}: os webhooks voltaram a chegar após {dur}{}", n.provider, remedy_tail(n, lang)),
                    "Nada a fazer; instâncias ainda fora do ar serão avisadas individualmente.".to_string(),
                ),
                NoticeKind::ProviderRecovered => (
                    "Provedor recuperado".to_string(),
                    format!("{} voltou a responder após {dur}", n.provider),
                    "Nada a fazer; instâncias ainda fora do ar serão avisadas individualmente.".to_string(),
                ),
                NoticeKind::ProviderSilent => (
                    "Provedor em silêncio".to_string(),
                    format!("{} não envia webhooks, embora as sessões estejam abertas: o envio de webhooks do servidor provavelmente travou; os diagnósticos das instâncias são mantidos e nenhuma instância é reiniciada", n.provider),
                    match &n.remediation {
                        Some(r) => format!("O wa-sentinel executa o comando de remediação `{}` (no máximo {} vez(es) nesta queda) e verifica se os webhooks voltam. Se não voltarem, reinicie o servidor do provedor manualmente.", r.command, r.max_attempts),
                        None => "Reinicie o servidor do provedor (reiniciar as instâncias uma a uma não resolve); configure `remediate_command` para o wa-sentinel fazer isso.".to_string(),
                    },
                ),
                NoticeKind::RemediationExhausted => (
                    "Remediação esgotada".to_string(),
                    format!("{} continua {} após {a} execução(ões) da remediação{}", n.provider, if n.cause.as_deref() == Some("silent") { "em silêncio" } else { "inacessível" }, remedy_tail(n, lang)),
                    "Sem novas execuções automáticas nesta queda: verifique o servidor do provedor manualmente.".to_string(),
                ),
                NoticeKind::ProviderVersionChanged => (
                    "Versão do provedor mudou".to_string(),
                    format!("{} agora informa {}", n.provider, n.reason.replacen("version", "versão", 1)),
                    "Nada a fazer se a atualização foi planejada; se as instâncias passarem a falhar, a nova versão é a primeira suspeita.".to_string(),
                ),
                NoticeKind::WebhookRepaired => (
                    "Webhook corrigido".to_string(),
                    // The detail is the provider's config diff, in English: the JSON `reason` has it.
                    format!("{w}: configuração de webhook corrigida"),
                    "Nada a fazer; se repetir, algo está reescrevendo a configuração do webhook.".to_string(),
                ),
                NoticeKind::Reminder => (
                    format!("Lembrete #{}: ainda fora do ar", n.sequence),
                    format!("{w} continua fora do ar após {dur}: {d}"),
                    "Veja o primeiro aviso desta queda para o que fazer.".to_string(),
                ),
                NoticeKind::SentinelIsolated => (
                    "wa-sentinel isolado".to_string(),
                    "o wa-sentinel não alcança nenhum provedor e não recebe webhooks; os diagnósticos das instâncias estão suspensos".to_string(),
                    "Verifique a rede da máquina do wa-sentinel (DNS, firewall, rotas de saída) antes de suspeitar dos provedores.".to_string(),
                ),
                NoticeKind::InstanceRetired => (
                    "Instância retirada".to_string(),
                    format!("{w} não é mais supervisionada (apagada no provedor ou removida da configuração); a queda de {dur} foi encerrada"),
                    "Nada a fazer; encerre o incidente. Uma nova instância com o mesmo nome começa com um registro novo.".to_string(),
                ),
            };
            let todo = match &n.pair_url {
                Some(_) if !maybe_banned(n) => "Envie o link abaixo a quem está com o celular: a pessoa abre o link em qualquer aparelho e lê o QR code com o WhatsApp, ou pede um código de pareamento.".to_string(),
                _ => todo,
            };
            let mut body = format!("{summary}.\nDesde: {since} (há {dur}).\nO que fazer: {todo}");
            if let Some(url) = &n.pair_url {
                body.push_str(&format!("\nPara reconectar, abra {url}"));
            }
            Rendered { title, summary, body, todo }
        }
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
mod tests {
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
        assert!(
            saved == now,
            "docs/notice-texts.md is out of date; rerun with UPDATE_NOTICE_TEXTS=1 and review the diff"
        );
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
}
