//! Validation of the top-level sections (`[database]`, `[server]`,
//! `[supervisor]`, `[restart]`, `[alerts]`, `[selfcheck]`, `[log]`,
//! `[pairing]`) and the assembly of the whole [`Config`]; providers,
//! instances and notifiers have their own files.

use super::*;

impl Validator<'_> {
    pub(super) fn config(&mut self, r: &RawConfig) -> Option<Config> {
        // [database]
        let db_url = r.database.url.trim().to_string();
        if !(db_url.starts_with("sqlite:") || db_url.starts_with("postgres://") || db_url.starts_with("postgresql://"))
        {
            self.bad("database.url", "must start with sqlite:, postgres:// or postgresql://");
        }
        self.at_least("database.max_connections", r.database.max_connections, 1);

        // [server]
        let listen = r.server.listen.parse::<SocketAddr>().unwrap_or_else(|e| {
            self.bad("server.listen", format!("`{}` is not an address like 127.0.0.1:8080: {e}", r.server.listen));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let admin_listen = r.server.admin_listen.as_ref().and_then(|a| match a.parse::<SocketAddr>() {
            Ok(addr) if addr == listen => {
                self.bad(
                    "server.admin_listen",
                    format!("`{a}` is server.listen too: give the admin surface its own address"),
                );
                None
            }
            Ok(addr) => Some(addr),
            Err(e) => {
                self.bad("server.admin_listen", format!("`{a}` is not an address like 127.0.0.1:8081: {e}"));
                None
            }
        });
        let public_url = r.server.public_url.as_ref().map(|u| u.trim_end_matches('/').to_string());
        if let Some(u) = &public_url {
            self.url("server.public_url", u);
        }
        let admin_token = self.secret(
            "server.admin_token",
            "admin_token",
            &r.server.admin_token,
            &r.server.admin_token_env,
            &r.server.admin_token_file,
        );
        let events_token = self.secret(
            "server.events_token",
            "events_token",
            &r.server.events_token,
            &r.server.events_token_env,
            &r.server.events_token_file,
        );
        let max_body = match r.server.max_body.parse::<bytesize::ByteSize>() {
            Ok(b) if b.as_u64() >= 1024 => b.as_u64() as usize,
            Ok(_) => {
                self.bad("server.max_body", "must be at least 1KiB");
                0
            }
            Err(e) => {
                self.bad("server.max_body", format!("`{}` is not a size like \"2MiB\": {e}", r.server.max_body));
                0
            }
        };

        // [supervisor]
        let s = &r.supervisor;
        for (key, expr) in [
            ("supervisor.poll_schedule", &s.poll_schedule),
            ("supervisor.webhook_audit_schedule", &s.webhook_audit_schedule),
        ] {
            if let Err(e) = check_cron(expr) {
                self.bad(key, e);
            }
        }
        let supervisor = SupervisorConfig {
            poll_schedule: s.poll_schedule.clone(),
            webhook_audit_schedule: s.webhook_audit_schedule.clone(),
            request_timeout: self.positive_duration("supervisor.request_timeout", &s.request_timeout),
            concurrency: self.at_least("supervisor.concurrency", s.concurrency, 1) as usize,
            per_provider_concurrency: self.at_least(
                "supervisor.per_provider_concurrency",
                s.per_provider_concurrency,
                1,
            ) as usize,
            recovery_concurrency: self.at_least("supervisor.recovery_concurrency", s.recovery_concurrency, 1) as usize,
            settle_delay: self.duration("supervisor.settle_delay", &s.settle_delay),
            retention: self.duration("supervisor.retention", &s.retention),
        };

        // [restart] + [alerts] -> Policy
        let rs = &r.restart;
        let al = &r.alerts;
        if !(rs.backoff_factor.is_finite() && rs.backoff_factor >= 1.0) {
            self.bad("restart.backoff_factor", format!("must be a number >= 1.0, got {}", rs.backoff_factor));
        }
        if al.flap_threshold == 1 {
            self.bad("alerts.flap_threshold", "must be 0 (off) or at least 2: one transition is not flapping");
        }
        let policy = Policy {
            down_after: self.at_least("supervisor.down_after", s.down_after, 1),
            stale_webhook_after: self.duration("supervisor.stale_webhook_after", &s.stale_webhook_after),
            cooldown: self.positive_duration("restart.cooldown", &rs.cooldown),
            max_attempts_per_outage: rs.max_attempts_per_outage,
            backoff_factor: rs.backoff_factor,
            max_cooldown: self.positive_duration("restart.max_cooldown", &rs.max_cooldown),
            reset_after: self.duration("restart.reset_after", &rs.reset_after),
            flap_window: self.positive_duration("alerts.flap_window", &al.flap_window),
            flap_threshold: al.flap_threshold,
            reminder_every: self.duration("alerts.reminder_every", &al.reminder_every),
            replaced_limit: 2,
        };
        let language = match al.language.as_str() {
            "en" => Language::En,
            "pt-BR" | "pt-br" | "pt_BR" => Language::PtBr,
            other => {
                self.bad("alerts.language", format!("`{other}`: must be \"en\" or \"pt-BR\""));
                Language::En
            }
        };

        // [webhook]
        if r.webhook.events.is_empty() {
            self.bad("webhook.events", "must name at least one event (e.g. \"CONNECTION_UPDATE\")");
        }
        for (i, e) in r.webhook.events.iter().enumerate() {
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit()) {
                self.bad(
                    format!("webhook.events[{i}]"),
                    format!("`{e}`: events are UPPER_SNAKE_CASE, e.g. MESSAGES_UPSERT"),
                );
            }
        }

        let heartbeat_url = self.secret(
            "selfcheck.heartbeat_url",
            "heartbeat_url",
            &r.selfcheck.heartbeat_url,
            &r.selfcheck.heartbeat_url_env,
            &r.selfcheck.heartbeat_url_file,
        );
        if let Some(u) = &heartbeat_url {
            self.url("selfcheck.heartbeat_url", u.expose());
        }
        let selfcheck = SelfcheckConfig {
            heartbeat_url,
            quiet_after: self.positive_duration("selfcheck.quiet_after", &r.selfcheck.quiet_after),
        };
        let log = self.log(&r.log);
        let pairing = self.pairing(&r.pairing, public_url.is_some());
        let providers = self.providers(&r.providers);
        // Each provider kind accepts its own event names: name
        // the bad entry now rather than fail every audit with a 400 later.
        for (i, e) in r.webhook.events.iter().enumerate() {
            if let Some(why) = providers.iter().find_map(|p| events::rejection(p, e)) {
                self.bad(format!("webhook.events[{i}]"), why);
            }
        }
        let instances = self.instances(&r.instances, &providers);
        let mut notifiers = self.notifiers(&r.notifiers, &providers, &instances);
        if r.notifiers.is_empty() {
            // With nothing configured, notices still show up: on the console.
            notifiers.push(NotifierConfig {
                name: "log".into(),
                target: NotifierTarget::Log,
                tenants: None,
                kinds: None,
                provider_notices: true,
                fallback: None,
                fallback_only: false,
            });
        }

        Some(Config {
            database: DatabaseConfig { url: db_url, max_connections: r.database.max_connections },
            server: ServerConfig { listen, admin_listen, public_url, admin_token, events_token, max_body },
            supervisor,
            policy,
            alerts: AlertsConfig {
                group_provider_outage: al.group_provider_outage,
                language,
                retry_min_delay: self.positive_duration("alerts.retry_min_delay", &al.retry_min_delay),
                retry_max_delay: self.positive_duration("alerts.retry_max_delay", &al.retry_max_delay),
                delivery_max_age: self.positive_duration("alerts.delivery_max_age", &al.delivery_max_age),
            },
            webhook: DesiredWebhook {
                events: r.webhook.events.clone(),
                by_events: r.webhook.by_events,
                base64: r.webhook.base64,
            },
            selfcheck,
            log,
            pairing,
            providers,
            instances,
            notifiers,
            tenants: self.tenants(&r.tenants),
            subscribers: self.subscribers(&r.subscribers),
            raw: r.clone(),
        })
    }

    pub(super) fn pairing(&mut self, r: &raw::RawPairing, has_public_url: bool) -> PairingConfig {
        use crate::domain::pairing::PAIRABLE;
        if r.enabled == Some(true) && !has_public_url {
            self.bad(
                "pairing.enabled",
                "needs server.public_url: every link is <public_url>/pair/<token>; set it, or pairing.enabled = false",
            );
        }
        let link_ttl = self.positive_duration("pairing.link_ttl", &r.link_ttl);
        if link_ttl > Duration::from_secs(7 * 86_400) {
            self.bad("pairing.link_ttl", "at most 7d: a link is a credential to the customer's WhatsApp account");
        }
        let mut causes = Vec::new();
        for (i, c) in r.causes.iter().enumerate() {
            match crate::domain::health::Cause::parse(c).filter(|c| PAIRABLE.contains(c)) {
                Some(c) if !causes.contains(&c) => causes.push(c),
                Some(_) => {}
                None => self.bad(
                    format!("pairing.causes[{i}]"),
                    format!("`{c}`: a QR scan can end only logged_out, needs_qr and needs_human outages"),
                ),
            }
        }
        PairingConfig { enabled: r.enabled.unwrap_or(has_public_url) && has_public_url, link_ttl, causes }
    }

    pub(super) fn log(&mut self, r: &raw::RawLog) -> LogConfig {
        let format = match r.format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                self.bad("log.format", format!("`{other}`: must be \"text\" or \"json\""));
                LogFormat::Text
            }
        };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&r.level) {
            self.bad(
                "log.level",
                format!("`{}` is not a log filter like \"info\" or \"info,sqlx=debug\": {e}", r.level),
            );
        }
        LogConfig { format, level: r.level.clone() }
    }
}
