//! Notices for people: a title, a one-line summary and a body with what
//! happened, since when, what wa-sentinel already did and what the operator
//! should do — in English or Brazilian Portuguese — plus the SPEC §4 JSON
//! payload of the generic webhook.

use crate::config::Language;
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
}

/// Terminal reasons that hint at a ban rather than a plain logout.
fn maybe_banned(n: &Notice) -> bool {
    n.reason.contains("statusReason 403")
        || n.reason.contains("statusReason 406")
        || n.reason.contains("statusReason 402")
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

/// Render one notice for people.
pub fn render(n: &Notice, lang: Language) -> Rendered {
    let w = who(n);
    let since = n.started_at.rfc3339();
    let dur = human_duration(n.at.since(n.started_at));
    let (a, m) = (n.restart_attempts, n.max_attempts);
    match lang {
        Language::En => {
            let did = if a > 0 { format!("restart {a}/{m} sent") } else { "no restart sent yet".to_string() };
            let (title, summary, todo) = match n.kind {
                NoticeKind::InstanceDown => (
                    "Instance down".to_string(),
                    format!("{w} is down: {}; {did}", n.reason),
                    "wa-sentinel keeps trying within its cooldown. If it stays down, check the provider server and the phone.".to_string(),
                ),
                NoticeKind::InstanceLoggedOut => (
                    "Instance logged out".to_string(),
                    format!("{w} is logged out: {}; restarts cannot fix this", n.reason),
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
                    "Provider unreachable".to_string(),
                    format!("{} is unreachable: {}; instance verdicts are held", n.provider, n.reason),
                    "Check the provider server, its API key and its licence. Instances are not restarted meanwhile.".to_string(),
                ),
                NoticeKind::ProviderRecovered => (
                    "Provider recovered".to_string(),
                    format!("{} answers again after {dur}", n.provider),
                    "Nothing to do; instances that are still down will be announced on their own.".to_string(),
                ),
                NoticeKind::WebhookRepaired => (
                    "Webhook repaired".to_string(),
                    format!("{w}: webhook config repaired ({})", n.reason),
                    "Nothing to do; if this repeats, something else rewrites the webhook config.".to_string(),
                ),
                NoticeKind::Reminder => (
                    format!("Reminder #{}: still down", n.sequence),
                    format!("{w} is still down after {dur}: {}", n.reason),
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
            let body = format!("{summary}.\nSince: {since} ({dur} ago).\nWhat to do: {todo}");
            Rendered { title, summary, body }
        }
        Language::PtBr => {
            let did =
                if a > 0 { format!("reinício {a}/{m} enviado") } else { "nenhum reinício enviado ainda".to_string() };
            let (title, summary, todo) = match n.kind {
                NoticeKind::InstanceDown => (
                    "Instância fora do ar".to_string(),
                    format!("{w} está fora do ar: {}; {did}", n.reason),
                    "O wa-sentinel continua tentando dentro do intervalo mínimo. Se continuar fora, verifique o servidor do provedor e o celular.".to_string(),
                ),
                NoticeKind::InstanceLoggedOut => (
                    "Instância desconectada (logout)".to_string(),
                    format!("{w} foi desconectada: {}; reiniciar não resolve", n.reason),
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
                    "Provedor inacessível".to_string(),
                    format!("{} está inacessível: {}; os diagnósticos das instâncias estão suspensos", n.provider, n.reason),
                    "Verifique o servidor do provedor, a chave de API e a licença. As instâncias não são reiniciadas enquanto isso.".to_string(),
                ),
                NoticeKind::ProviderRecovered => (
                    "Provedor recuperado".to_string(),
                    format!("{} voltou a responder após {dur}", n.provider),
                    "Nada a fazer; instâncias ainda fora do ar serão avisadas individualmente.".to_string(),
                ),
                NoticeKind::WebhookRepaired => (
                    "Webhook corrigido".to_string(),
                    format!("{w}: configuração de webhook corrigida ({})", n.reason),
                    "Nada a fazer; se repetir, algo está reescrevendo a configuração do webhook.".to_string(),
                ),
                NoticeKind::Reminder => (
                    format!("Lembrete #{}: ainda fora do ar", n.sequence),
                    format!("{w} continua fora do ar após {dur}: {}", n.reason),
                    "Veja o primeiro aviso desta queda para o que fazer.".to_string(),
                ),
                NoticeKind::SentinelIsolated => (
                    "wa-sentinel isolado".to_string(),
                    format!("o wa-sentinel não alcança nenhum provedor e não recebe webhooks: {}; os diagnósticos das instâncias estão suspensos", n.reason),
                    "Verifique a rede da máquina do wa-sentinel (DNS, firewall, rotas de saída) antes de suspeitar dos provedores.".to_string(),
                ),
                NoticeKind::InstanceRetired => (
                    "Instância retirada".to_string(),
                    format!("{w} não é mais supervisionada (apagada no provedor ou removida da configuração); a queda de {dur} foi encerrada"),
                    "Nada a fazer; encerre o incidente. Uma nova instância com o mesmo nome começa com um registro novo.".to_string(),
                ),
            };
            let body = format!("{summary}.\nDesde: {since} (há {dur}).\nO que fazer: {todo}");
            Rendered { title, summary, body }
        }
    }
}

/// The generic webhook payload (SPEC §4).
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
        "restart_attempts": n.restart_attempts,
        "recovered_by": n.recovered_by.map(RecoveredBy::as_str),
        "duration_seconds": n.at.since(n.started_at).as_secs(),
        "summary": r.summary,
        "dedup_key": n.dedup_key,
    })
}
