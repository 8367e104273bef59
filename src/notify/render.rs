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

/// The provider refuses every call for want of a licence (Evolution ≥ 2.4).
fn unlicensed(n: &Notice) -> bool {
    n.reason.contains("LICENSE_REQUIRED")
}

/// What the remediation hook did, as a clause (`None` before its first run).
fn remedy(n: &Notice, lang: Language) -> Option<String> {
    let r = n.remediation.as_ref().filter(|r| r.attempt > 0)?;
    Some(match (lang, &r.result) {
        (Language::En, None) => {
            format!("remediation `{}` run {}/{} (no result recorded)", r.command, r.attempt, r.max_attempts)
        }
        (Language::En, Some(res)) => format!("remediation `{}` run {}/{}: {res}", r.command, r.attempt, r.max_attempts),
        (Language::PtBr, None) => {
            format!("remediação `{}` executada {}/{} (sem resultado registrado)", r.command, r.attempt, r.max_attempts)
        }
        (Language::PtBr, Some(res)) => {
            format!("remediação `{}` executada {}/{}: {res}", r.command, r.attempt, r.max_attempts)
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
                NoticeKind::ProviderUnreachable if unlicensed(n) => (
                    "Provider needs activation".to_string(),
                    format!("{} refuses every call: the Evolution install is not activated (503 LICENSE_REQUIRED); instance verdicts are held", n.provider),
                    format!("Activate the Evolution licence of this install (Evolution 2.4 and later require it), then the provider answers again.{}", remedy_sentence(n, lang)),
                ),
                NoticeKind::ProviderUnreachable => (
                    "Provider unreachable".to_string(),
                    format!("{} is unreachable: {}; instance verdicts are held", n.provider, n.reason),
                    format!("Check the provider server, its API key and its licence. Instances are not restarted meanwhile.{}", remedy_sentence(n, lang)),
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
                    format!("{} sends no webhooks: {}. Its sessions are open, so its webhook dispatcher is probably stuck; instance verdicts are kept and no instance is restarted", n.provider, n.reason),
                    match &n.remediation {
                        Some(r) => format!("wa-sentinel runs the remediation command `{}` (at most {} time(s) for this outage) and checks whether webhooks come back. If they do not, restart the provider server by hand.", r.command, r.max_attempts),
                        None => "Restart the provider server (restarting instances one by one does not help); set `remediate_command` to let wa-sentinel do it.".to_string(),
                    },
                ),
                NoticeKind::RemediationExhausted => (
                    "Remediation exhausted".to_string(),
                    format!("{} is still {} after {a} remediation run(s){}", n.provider, if n.reason.contains("webhook") { "silent" } else { "down" }, remedy_tail(n, lang)),
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
                NoticeKind::ProviderUnreachable if unlicensed(n) => (
                    "Provedor precisa de ativação".to_string(),
                    format!("{} recusa todas as chamadas: a instalação do Evolution não está ativada (503 LICENSE_REQUIRED); os diagnósticos das instâncias estão suspensos", n.provider),
                    format!("Ative a licença desta instalação do Evolution (exigida a partir da versão 2.4); depois disso o provedor volta a responder.{}", remedy_sentence(n, lang)),
                ),
                NoticeKind::ProviderUnreachable => (
                    "Provedor inacessível".to_string(),
                    format!("{} está inacessível: {}; os diagnósticos das instâncias estão suspensos", n.provider, n.reason),
                    format!("Verifique o servidor do provedor, a chave de API e a licença. As instâncias não são reiniciadas enquanto isso.{}", remedy_sentence(n, lang)),
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
                    format!("{} não envia webhooks: {}. As sessões estão abertas, então o envio de webhooks do servidor provavelmente travou; os diagnósticos das instâncias são mantidos e nenhuma instância é reiniciada", n.provider, n.reason),
                    match &n.remediation {
                        Some(r) => format!("O wa-sentinel executa o comando de remediação `{}` (no máximo {} vez(es) nesta queda) e verifica se os webhooks voltam. Se não voltarem, reinicie o servidor do provedor manualmente.", r.command, r.max_attempts),
                        None => "Reinicie o servidor do provedor (reiniciar as instâncias uma a uma não resolve); configure `remediate_command` para o wa-sentinel fazer isso.".to_string(),
                    },
                ),
                NoticeKind::RemediationExhausted => (
                    "Remediação esgotada".to_string(),
                    format!("{} continua {} após {a} execução(ões) da remediação{}", n.provider, if n.reason.contains("webhook") { "em silêncio" } else { "fora do ar" }, remedy_tail(n, lang)),
                    "Sem novas execuções automáticas nesta queda: verifique o servidor do provedor manualmente.".to_string(),
                ),
                NoticeKind::ProviderVersionChanged => (
                    "Versão do provedor mudou".to_string(),
                    format!("{} agora informa {}", n.provider, n.reason.replace("version", "versão")),
                    "Nada a fazer se a atualização foi planejada; se as instâncias passarem a falhar, a nova versão é a primeira suspeita.".to_string(),
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
        "remediation": n.remediation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Ts;
    use crate::domain::notice::RemediationNote;

    fn provider_notice(kind: NoticeKind, reason: &str, remediation: Option<Box<RemediationNote>>) -> Notice {
        Notice {
            kind,
            provider: "evo".into(),
            instance: None,
            tenant: None,
            outage_id: Some("o1".into()),
            started_at: Ts(0),
            at: Ts(20 * 60_000),
            reason: reason.into(),
            restart_attempts: remediation.as_ref().map_or(0, |r| r.attempt),
            max_attempts: remediation.as_ref().map_or(0, |r| r.max_attempts),
            recovered_by: None,
            sequence: 0,
            dedup_key: "k".into(),
            remediation,
        }
    }

    fn note(attempt: u32, result: Option<&str>) -> Option<Box<RemediationNote>> {
        Some(Box::new(RemediationNote {
            command: "/usr/bin/systemctl restart evolution-api".into(),
            attempt,
            max_attempts: 2,
            result: result.map(str::to_string),
        }))
    }

    #[test]
    fn provider_silent_says_what_it_means_and_what_will_be_done() {
        let silent = "no webhook from any instance for 15m while 5 instance(s) are connected";
        let with = provider_notice(NoticeKind::ProviderSilent, silent, note(0, None));
        let en = render(&with, Language::En);
        assert!(en.summary.contains("webhook dispatcher is probably stuck"), "{}", en.summary);
        assert!(en.summary.contains("no instance is restarted"));
        assert!(en.body.contains("runs the remediation command `/usr/bin/systemctl restart evolution-api`"));
        let pt = render(&with, Language::PtBr);
        assert!(pt.summary.contains("nenhuma instância é reiniciada"), "{}", pt.summary);
        assert!(pt.body.contains("executa o comando de remediação `/usr/bin/systemctl restart evolution-api`"));
        let without = provider_notice(NoticeKind::ProviderSilent, silent, None);
        assert!(render(&without, Language::En).body.contains("set `remediate_command`"));
        assert!(render(&without, Language::PtBr).body.contains("configure `remediate_command`"));
    }

    #[test]
    fn recovery_and_exhaustion_say_what_was_run_and_its_result() {
        let mut rec = provider_notice(NoticeKind::ProviderRecovered, "webhooks flow again", note(1, Some("exit 0")));
        rec.recovered_by = Some(RecoveredBy::Webhook);
        assert_eq!(
            render(&rec, Language::En).summary,
            "evo: webhooks flow again after 20m; remediation `/usr/bin/systemctl restart evolution-api` run 1/2: exit 0"
        );
        assert!(render(&rec, Language::PtBr).summary.contains("executada 1/2: exit 0"));
        let ex = provider_notice(
            NoticeKind::RemediationExhausted,
            "no webhook from any instance for 15m",
            note(2, Some("killed after the 1m timeout")),
        );
        let en = render(&ex, Language::En);
        assert!(en.summary.starts_with("evo is still silent after 2 remediation run(s)"), "{}", en.summary);
        assert!(en.summary.ends_with("run 2/2: killed after the 1m timeout"));
        assert!(render(&ex, Language::PtBr).summary.contains("continua em silêncio"));
    }

    #[test]
    fn an_unlicensed_evolution_is_told_to_activate_its_licence() {
        let reason = "every status call answered 503 LICENSE_REQUIRED: the Evolution install needs activation";
        let n = provider_notice(NoticeKind::ProviderUnreachable, reason, None);
        let en = render(&n, Language::En);
        assert_eq!(en.title, "Provider needs activation");
        assert!(en.body.contains("Activate the Evolution licence"));
        assert_eq!(render(&n, Language::PtBr).title, "Provedor precisa de ativação");
        let plain = provider_notice(NoticeKind::ProviderUnreachable, "every status call failed: unreachable", None);
        assert_eq!(render(&plain, Language::En).title, "Provider unreachable");
    }

    #[test]
    fn version_changes_name_both_versions() {
        let mut n = provider_notice(NoticeKind::ProviderVersionChanged, "version 2.3.6 → 2.3.7", None);
        n.outage_id = None;
        assert_eq!(render(&n, Language::En).summary, "evo now reports version 2.3.6 → 2.3.7");
        assert_eq!(render(&n, Language::PtBr).summary, "evo agora informa versão 2.3.6 → 2.3.7");
        assert_eq!(payload(&n, Language::En)["kind"], "provider_version_changed");
    }
}
