//! The Brazilian Portuguese texts of every notice kind.

use super::*;

/// A notice in Brazilian Portuguese.
pub(super) fn render(n: &Notice) -> Rendered {
    let lang = Language::PtBr;
    let Common { w, since, dur, a, m } = common(n);
    // The notice commits with the decision, before the provider call, which
    // may still find nothing to send (a session already starting): "ordered",
    // not "sent".
    let did = match a {
        _ if !restart_helps(n) => "reiniciar não ajuda".to_string(),
        0 => "nenhum reinício enviado ainda".to_string(),
        _ => format!("reinício {a}/{m} solicitado"),
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
