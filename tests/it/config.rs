//! Configuration (docs/configuration.md): every documented key parses, env overrides the
//! file, secrets are read raw, and each validation error names its key.

// figment's `Jail` closures return figment::Error, which is large; not ours to shrink.
#![allow(clippy::result_large_err)]

use std::path::Path;

use figment::Jail;
use wa_sentinel::config::{self, ConfigError, Language, LogConfig, LogFormat, NotifierTarget, ProviderKind};
use wa_sentinel::domain::NoticeKind;
use wa_sentinel::domain::provider::ProviderCause;

const FULL: &str = include_str!("../fixtures/config-full.toml");

fn set_full_env(jail: &mut Jail) {
    for (k, v) in [
        ("WA_SENTINEL_ADMIN_TOKEN", "admintoken"),
        ("EVO_MAIN_KEY", "evo-key"),
        ("EVO_MAIN_WEBHOOK_TOKEN", "0123456789"),
        ("WAPI_INTEGRATOR_TOKEN", "integrator"),
        ("WAPI_WEBHOOK_TOKEN", "wapi-hook"),
        ("WAPI_TOKEN_3B6XIW", "wapi-inst"),
        ("OPS_SLACK_URL", "https://hooks.slack.com/services/T/B/X"),
        ("HOOK_URL", "https://ops.example.com/hook"),
        ("HOOK_SECRET", "s3cret"),
        ("TG_TOKEN", "123:abc"),
        ("SMTP_PASSWORD", "pw"),
        ("DISCORD_URL", "https://discord.com/api/webhooks/1/x"),
        ("HEARTBEAT_URL", "https://hc-ping.com/0000"),
        ("EVO_MAIN_JWT_KEY", "shared-hs256-secret"),
        ("WAHA_API_KEY", "waha-key"),
        ("WAHA_WEBHOOK_TOKEN", "waha-hook"),
        ("WAHA_HMAC_KEY", "waha-hmac"),
        ("ZAPI_CLIENT_TOKEN", "zapi-client"),
        ("ZAPI_WEBHOOK_TOKEN", "zapi-hook"),
        ("ZAPI_TOKEN_3C2A", "zapi-inst"),
        ("WA_SENTINEL_EVENTS_TOKEN", "reader"),
        ("APP_DATABASE_URL", "postgres://reader:pw@app-db/app"),
        ("APP_EVENTS_URL", "https://app.example.com/wa-sentinel/events"),
        ("APP_EVENTS_SECRET", "whsec"),
    ] {
        jail.set_env(k, v);
    }
}

fn problems(e: ConfigError) -> Vec<(String, String)> {
    e.problems.into_iter().map(|p| (p.key, p.why)).collect()
}

#[test]
fn every_documented_key_parses() {
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", FULL)?;
        set_full_env(jail);
        let c = config::load(Some(Path::new("config.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(c.database.max_connections, 4);
        assert_eq!(c.server.listen.port(), 9090);
        assert_eq!(c.server.admin_listen, Some("127.0.0.1:9091".parse().unwrap()));
        assert_eq!(c.server.public_url.as_deref(), Some("https://sentinel.example.com"), "trailing slash trimmed");
        assert_eq!(c.server.admin_token.as_ref().unwrap().expose(), "admintoken");
        assert_eq!(c.server.max_body, 1024 * 1024);
        assert_eq!(c.server.events_token.as_ref().unwrap().expose(), "reader");
        let src = c.tenants.source.as_ref().expect("[tenants] source");
        assert_eq!((src.refresh.as_secs(), src.statement_timeout.as_secs()), (120, 3));
        assert!(src.query.starts_with("SELECT provider"));
        assert_eq!(c.subscribers.len(), 1);
        assert_eq!(c.subscribers[0].outbox_name(), "subscriber:app");
        assert!(c.subscribers[0].accepts("outage_opened", "tenant_1"));
        assert!(
            !c.subscribers[0].accepts("maintenance_on", "tenant_1") && !c.subscribers[0].accepts("outage_opened", "t2")
        );
        let pattern = c.providers[0].tenant_pattern.as_ref().expect("tenant_pattern");
        assert_eq!(pattern.tenant_of("tenant_4_inst_2").as_deref(), Some("tenant_4"));
        assert_eq!(c.supervisor.request_timeout.as_secs(), 5);
        assert_eq!(
            (c.supervisor.concurrency, c.supervisor.per_provider_concurrency, c.supervisor.recovery_concurrency),
            (32, 8, 2)
        );
        assert_eq!(c.supervisor.settle_delay.as_secs(), 15);
        assert_eq!(c.supervisor.retention.as_secs(), 7 * 86_400);
        assert_eq!(c.policy.down_after, 3);
        assert_eq!(c.policy.stale_webhook_after.as_secs(), 7200);
        assert_eq!(c.policy.cooldown.as_secs(), 600);
        assert_eq!(c.policy.max_attempts_per_outage, 5);
        assert_eq!(c.policy.backoff_factor, 1.5);
        assert_eq!(c.policy.max_cooldown.as_secs(), 7200);
        assert_eq!(c.policy.reset_after.as_secs(), 1800);
        assert_eq!(c.policy.flap_window.as_secs(), 900);
        assert_eq!(c.policy.flap_threshold, 6);
        assert_eq!(c.policy.reminder_every.as_secs(), 3600);
        assert!(!c.alerts.group_provider_outage);
        assert_eq!(c.alerts.language, Language::PtBr);
        assert_eq!(c.alerts.retry_min_delay.as_secs(), 1);
        assert_eq!(c.alerts.retry_max_delay.as_secs(), 300);
        assert_eq!(c.alerts.delivery_max_age.as_secs(), 12 * 3600);
        assert!(c.pairing.enabled);
        assert_eq!(c.pairing.link_ttl.as_secs(), 12 * 3600);
        assert_eq!(c.pairing.causes.len(), 3);
        assert!(c.webhook.by_events && c.webhook.base64);
        assert_eq!(c.webhook.events, vec!["MESSAGES_UPSERT", "CONNECTION_UPDATE"]);
        assert_eq!(c.providers.len(), 4);
        assert_eq!((c.providers[2].kind, c.providers[3].kind), (ProviderKind::Waha, ProviderKind::Zapi));
        assert_eq!(c.providers[2].webhook_hmac_key.as_ref().unwrap().expose(), "waha-hmac");
        assert_eq!(c.providers[3].base_url, "https://api.z-api.io", "Z-API's default base_url");
        assert_eq!(c.providers[3].client_token.as_ref().unwrap().expose(), "zapi-client");
        assert_eq!(c.instances[2].token.as_ref().unwrap().expose(), "zapi-inst");
        assert_eq!(c.providers[0].kind, ProviderKind::Evolution);
        assert_eq!(c.providers[0].webhook_token.expose(), "0123456789", "an all-digit token stays a string");
        assert_eq!(c.providers[1].webhook_body_key, "url");
        let h = &c.providers[0].health;
        assert_eq!((h.silent_after.as_secs(), h.silent_min_instances), (20 * 60, 5));
        let r = h.remediation.as_ref().expect("remediate_command set");
        assert_eq!(r.command, ["/usr/bin/systemctl", "restart", "evolution-api"]);
        assert_eq!((r.timeout.as_secs(), r.cooldown.as_secs(), r.max_attempts), (90, 45 * 60, 3));
        assert_eq!(r.on, [ProviderCause::Silent, ProviderCause::Unreachable]);
        assert!(c.providers[1].health.silent_after.is_zero(), "0s turns silence detection off");
        let d = &c.providers[2].health;
        assert_eq!((d.silent_after.as_secs(), d.silent_min_instances, d.remediation.is_none()), (15 * 60, 3, true));
        assert_eq!(c.providers[0].webhook_jwt_key.as_ref().unwrap().expose(), "shared-hs256-secret");
        assert_eq!(c.selfcheck.heartbeat_url.as_ref().unwrap().expose(), "https://hc-ping.com/0000");
        assert_eq!(c.selfcheck.quiet_after.as_secs(), 600);
        assert_eq!(c.log, LogConfig { format: LogFormat::Json, level: "debug,wa_sentinel::supervisor=trace".into() });
        assert_eq!(c.instances[1].token.as_ref().unwrap().expose(), "wapi-inst");
        assert_eq!(c.instances[0].labels.get("plan").map(String::as_str), Some("pro"));
        assert_eq!(c.notifiers.len(), 8);
        let hook = &c.notifiers[1];
        assert!(matches!(&hook.target, NotifierTarget::Webhook { secret: Some(_), .. }));
        assert!(hook.accepts(NoticeKind::InstanceDown, Some("tenant_1")));
        assert!(!hook.accepts(NoticeKind::InstanceDown, Some("tenant_2")));
        assert!(!hook.accepts(NoticeKind::InstanceFlapping, Some("tenant_1")));
        assert!(!hook.accepts(NoticeKind::InstanceDown, None), "a tenant-scoped notifier: no provider-wide notices");
        assert!(c.notifiers[0].accepts(NoticeKind::ProviderUnreachable, None), "tenants = [\"*\"]: they do");
        assert!(c.notifiers[2].accepts(NoticeKind::ProviderUnreachable, None), "scoped, provider_notices = true");
        assert!(!c.notifiers[2].accepts(NoticeKind::InstanceDown, Some("tenant_1")));
        assert!(
            !c.notifiers[4].accepts(NoticeKind::ProviderUnreachable, None),
            "every tenant, provider_notices = false"
        );
        assert!(matches!(&c.notifiers[3].target, NotifierTarget::Email { port: 2525, .. }));
        match &c.notifiers[6].target {
            NotifierTarget::WhatsApp { provider, instance, to, digest_window, min_gap } => {
                assert_eq!((provider.as_str(), instance.as_str()), ("zapi", "3C2A1B0F9E8D7C6B5A4F3E2D1C0B9A88"));
                assert_eq!(to, &["5511988887777", "120363019502650977-group"]);
                assert_eq!((digest_window.as_secs(), min_gap.as_secs()), (10, 5));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.notifiers[6].fallback.as_deref(), Some("pager"));
        assert!(c.notifiers[7].fallback_only && !c.notifiers[7].accepts(NoticeKind::InstanceDown, Some("tenant_1")));
        Ok(())
    });
}

#[test]
fn the_shipped_config_validates_with_no_environment() {
    Jail::expect_with(|jail| {
        let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml")).unwrap();
        jail.create_file("config.toml", &shipped)?;
        let c = config::load(Some(Path::new("config.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(c.notifiers.len(), 1, "no notifier configured: the console `log` notifier");
        assert_eq!(c.notifiers[0].kind_name(), "log");
        Ok(())
    });
}

#[test]
fn environment_overrides_the_file_and_unrelated_variables_are_ignored() {
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", FULL)?;
        set_full_env(jail);
        jail.set_env("WA_SENTINEL_SUPERVISOR__DOWN_AFTER", "7");
        jail.set_env("WA_SENTINEL_DATABASE__URL", "postgres://postgres@127.0.0.1/test");
        jail.set_env("WA_SENTINEL_CONFIG", "elsewhere.toml");
        jail.set_env("WA_SENTINEL_TEST_POSTGRES", "postgres://x");
        let c = config::load(Some(Path::new("config.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(c.policy.down_after, 7);
        assert!(c.database.url.starts_with("postgres://"));
        Ok(())
    });
}

#[test]
fn unknown_keys_are_errors_naming_the_key() {
    Jail::expect_with(|jail| {
        jail.create_file("config.toml", "[supervisor]\ndown_aftr = 3\n")?;
        let e = config::load(Some(Path::new("config.toml"))).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("down_aftr") && text.contains("config.toml"), "{text}");
        jail.set_env("WA_SENTINEL_SUPERVISOR__BOGUS", "1");
        jail.create_file("config.toml", "")?;
        let text = config::load(Some(Path::new("config.toml"))).unwrap_err().to_string();
        assert!(text.contains("bogus"), "{text}");
        Ok(())
    });
}

#[test]
fn a_missing_file_is_an_error_not_a_silent_default() {
    Jail::expect_with(|_jail| {
        let text = config::load(Some(Path::new("nope.toml"))).unwrap_err().to_string();
        assert!(text.contains("nope.toml") && text.contains("not found"), "{text}");
        Ok(())
    });
}

#[test]
fn each_validation_error_names_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("[supervisor]\ndown_after = 0\n", "supervisor.down_after", "at least 1"),
        ("[supervisor]\npoll_schedule = \"every minute\"\n", "supervisor.poll_schedule", "cron"),
        ("[supervisor]\nrequest_timeout = \"soon\"\n", "supervisor.request_timeout", "duration"),
        ("[supervisor]\nrequest_timeout = \"0s\"\n", "supervisor.request_timeout", "greater than zero"),
        ("[restart]\nbackoff_factor = 0.5\n", "restart.backoff_factor", ">= 1.0"),
        ("[alerts]\nlanguage = \"fr\"\n", "alerts.language", "pt-BR"),
        ("[alerts]\nflap_threshold = 1\n", "alerts.flap_threshold", "at least 2"),
        ("[server]\nlisten = \"localhost\"\n", "server.listen", "address"),
        ("[server]\nmax_body = \"lots\"\n", "server.max_body", "size"),
        ("[server]\nadmin_listen = \"loopback\"\n", "server.admin_listen", "address"),
        ("[server]\nadmin_listen = \"127.0.0.1:8080\"\n", "server.admin_listen", "own address"),
        ("[server]\nadmin_token_env = \"NOT_SET_ANYWHERE\"\n", "server.admin_token", "NOT_SET_ANYWHERE"),
        ("[database]\nurl = \"mysql://x\"\n", "database.url", "sqlite:"),
        ("[log]\nformat = \"logfmt\"\n", "log.format", "\"json\""),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nsilent_after = \"soon\"\n",
            "providers[0].silent_after",
            "duration",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nsilent_min_instances = 0\n",
            "providers[0].silent_min_instances",
            "at least 1",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nremediate_command = []\n",
            "providers[0].remediate_command",
            "argv",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nremediate_cooldown = \"10m\"\n",
            "providers[0].remediate_cooldown",
            "without `remediate_command`",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nremediate_command = [\"/bin/true\"]\nremediate_on = [\"always\"]\n",
            "providers[0].remediate_on[0]",
            "\"unreachable\"",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nremediate_command = [\"/bin/true\"]\nremediate_max_attempts = 0\n",
            "providers[0].remediate_max_attempts",
            "at least 1",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nremediate_command = [\"/bin/true\"]\nremediate_timeout = \"0s\"\n",
            "providers[0].remediate_timeout",
            "greater than zero",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nsilent_after = \"0s\"\nremediate_command = [\"/bin/true\"]\n",
            "providers[0].remediate_on",
            "silence detection is off",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nremediate_command = [\"/bin/true\"]\nremediate_timeout = \"30m\"\nremediate_cooldown = \"30m\"\n",
            "providers[0].remediate_timeout",
            "not shorter than remediate_cooldown",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\nremediate_command = [\"/bin/true\"]\nremediate_env = [\"DOCKER HOST\"]\n",
            "providers[0].remediate_env[0]",
            "not an environment variable name",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\ntenant_pattern = \"^([a-z]+)_inst$\"\n",
            "providers[0].tenant_pattern",
            "no group named `tenant`",
        ),
        ("[tenants]\nsource_url = \"mysql://x/y\"\n", "tenants.source_url", "must be a PostgreSQL URL"),
        ("[[subscribers]]\nname = \"app\"\nurl = \"https://a/b\"\n", "subscribers[0].secret", "is required"),
        (
            "[[subscribers]]\nname = \"app\"\nurl = \"https://a/b\"\nsecret = \"s\"\nevents = [\"health\"]\n",
            "subscribers[0].events[0]",
            "is not an event",
        ),
        ("[log]\nlevel = \"info,[\"\n", "log.level", "log filter"),
        ("[webhook]\nevents = [\"messages.upsert\"]\n", "webhook.events[0]", "UPPER_SNAKE"),
        // The event name a real Evolution 2.3.6 rejected with a 400 on every audit.
        (
            "[webhook]\nevents = [\"MESSAGES_UPSERT\", \"CONNECTION_UPDATES\"]\n\
             [[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\n",
            "webhook.events[1]",
            "did you mean `CONNECTION_UPDATE`",
        ),
        (
            "[webhook]\nevents = [\"STATUS_INSTANCE\"]\n\
             [[providers]]\nname = \"e\"\nkind = \"evolution\"\napi_version = \"v1\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\n",
            "webhook.events[0]",
            "Evolution API v1 accepts",
        ),
        (
            "[webhook]\nevents = [\"STATUS_INSTANCE\"]\n\
             [[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\n",
            "webhook.events[0]",
            "pin its api_version = \"v2\"",
        ),
        (
            "[[providers]]\nname = \"Evo Main\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\n",
            "providers[0].name",
            "lowercase",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\n\
             [[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\n",
            "providers[1].name",
            "unique",
        ),
        ("[[providers]]\nname = \"e\"\nkind = \"gowa\"\nbase_url = \"https://e\"\n", "providers[0].kind", "zapi"),
        ("[[providers]]\nname = \"e\"\nkind = \"waha\"\nwebhook_token = \"t\"\n", "providers[0].base_url", "required"),
        (
            "[[providers]]\nname = \"w\"\nkind = \"waha\"\nbase_url = \"http://w\"\nwebhook_token = \"t\"\nclient_token = \"c\"\n",
            "providers[0].client_token",
            "only Z-API",
        ),
        (
            "[[providers]]\nname = \"z\"\nkind = \"zapi\"\nwebhook_token = \"t\"\nwebhook_hmac_key = \"k\"\n",
            "providers[0].webhook_hmac_key",
            "only WAHA",
        ),
        (
            "[[providers]]\nname = \"z\"\nkind = \"zapi\"\nwebhook_token = \"t\"\ndiscover = true\n",
            "providers[0].discover",
            "[[instances]]",
        ),
        (
            "[[providers]]\nname = \"z\"\nkind = \"zapi\"\nwebhook_token = \"t\"\napi_key = \"k\"\n",
            "providers[0].api_key",
            "client_token_env",
        ),
        (
            "[[providers]]\nname = \"z\"\nkind = \"zapi\"\nwebhook_token = \"t\"\n[[instances]]\nprovider = \"z\"\nname = \"ID\"\n",
            "instances[0].token",
            "URL path",
        ),
        (
            "[[providers]]\nname = \"w\"\nkind = \"waha\"\nbase_url = \"http://w\"\nwebhook_token = \"t\"\n\
             [[instances]]\nprovider = \"w\"\nname = \"s\"\ntoken = \"x\"\n",
            "instances[0].token",
            "API key",
        ),
        (
            "[[providers]]\nname = \"w\"\nkind = \"waha\"\nbase_url = \"http://w\"\nwebhook_token = \"t\"\nwebhook_body_key = \"url\"\n",
            "providers[0].webhook_body_key",
            "only W-API",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\nwebhook_token = \"t\"\n",
            "providers[0].api_key",
            "api_key_env",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"ftp://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\n",
            "providers[0].base_url",
            "http",
        ),
        (
            "[[providers]]\nname = \"e\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\n",
            "providers[0].webhook_token",
            "secret token",
        ),
        ("[[instances]]\nprovider = \"ghost\"\nname = \"i\"\n", "instances[0].provider", "ghost"),
        (
            "[[providers]]\nname = \"w\"\nkind = \"wapi\"\nbase_url = \"https://w\"\nwebhook_token = \"t\"\n\
             [[instances]]\nprovider = \"w\"\nname = \"ID\"\n",
            "instances[0].token",
            "Bearer token",
        ),
        ("[[notifiers]]\nname = \"n\"\nkind = \"pager\"\n", "notifiers[0].kind", "one of"),
        ("[[notifiers]]\nname = \"n\"\nkind = \"slack\"\n", "notifiers[0].url", "required"),
        ("[[notifiers]]\nname = \"n\"\nkind = \"log\"\nkinds = [\"down\"]\n", "notifiers[0].kinds[0]", "notice kind"),
        (
            "[[notifiers]]\nname = \"n\"\nkind = \"slack\"\nurl = \"https://h\"\nchat_id = \"1\"\n",
            "notifiers[0].chat_id",
            "not used",
        ),
        ("[[notifiers]]\nname = \"n\"\nkind = \"telegram\"\nbot_token = \"b\"\n", "notifiers[0].chat_id", "required"),
    ];
    for (toml, key, why) in cases {
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", toml)?;
            let e = config::load(Some(Path::new("config.toml"))).expect_err(toml);
            let ps = problems(e);
            assert!(
                ps.iter().any(|(k, w)| k == key && w.contains(why)),
                "config:\n{toml}\nexpected key `{key}` with `{why}`, got {ps:?}"
            );
            Ok(())
        });
    }
}

#[test]
fn check_config_output_redacts_secrets() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "config.toml",
            "[database]\nurl = \"postgres://u:hunter2@db/x\"\n[server]\nadmin_token = \"topsecret\"\n\
             [[providers]]\nname = \"z\"\nkind = \"zapi\"\nwebhook_token = \"t\"\nclient_token = \"zapiclient\"\n\
             [[providers]]\nname = \"w\"\nkind = \"waha\"\nbase_url = \"http://w\"\nwebhook_token = \"t\"\nwebhook_hmac_key = \"wahahmac\"\n\
             [[instances]]\nprovider = \"z\"\nname = \"ID\"\ntoken = \"zapiinstance\"\n",
        )?;
        let c = config::load(Some(Path::new("config.toml"))).map_err(|e| e.to_string())?;
        let out = config::redacted_toml(&c.raw);
        assert!(!out.contains("hunter2") && !out.contains("topsecret"), "{out}");
        for secret in ["zapiclient", "wahahmac", "zapiinstance"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("[redacted]"));
        Ok(())
    });
}

/// Providers and instances a `whatsapp` notifier can name, for the tests below.
const OPS: &str = "[[providers]]\nname = \"evo\"\nkind = \"evolution\"\nbase_url = \"https://e\"\napi_key = \"k\"\nwebhook_token = \"t\"\n\
                   [[providers]]\nname = \"z\"\nkind = \"zapi\"\nwebhook_token = \"t\"\n\
                   [[instances]]\nprovider = \"evo\"\nname = \"ops\"\n\
                   [[instances]]\nprovider = \"z\"\nname = \"ZOPS\"\ntoken = \"zt\"\n";

#[test]
fn a_whatsapp_notifier_with_a_fallback_validates_with_its_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "config.toml",
            &format!(
                "{OPS}[[notifiers]]\nname = \"ops-wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
                 to = [\"+5511988887777\", \"120363025246125486@g.us\"]\nfallback = \"ops-mail\"\n\
                 [[notifiers]]\nname = \"ops-mail\"\nkind = \"log\"\nfallback_only = true\n\
                 [[notifiers]]\nname = \"acme-wa\"\nkind = \"whatsapp\"\nprovider = \"z\"\ninstance = \"ZOPS\"\n\
                 to = [\"120363019502650977-group\"]\ntenants = [\"acme\"]\nfallback = \"ops-wa\"\n\
                 digest_window = \"0s\"\nmin_gap = \"10s\"\n"
            ),
        )?;
        let c = config::load(Some(Path::new("config.toml"))).map_err(|e| e.to_string())?;
        let wa = &c.notifiers[0];
        assert_eq!(wa.kind_name(), "whatsapp");
        match &wa.target {
            NotifierTarget::WhatsApp { provider, instance, to, digest_window, min_gap } => {
                assert_eq!((provider.as_str(), instance.as_str()), ("evo", "ops"));
                assert_eq!(to, &["5511988887777", "120363025246125486@g.us"], "the `+` is dropped");
                assert_eq!((digest_window.as_secs(), min_gap.as_secs()), (5, 3), "the defaults");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(wa.fallback.as_deref(), Some("ops-mail"));
        assert!(wa.accepts(NoticeKind::InstanceDown, Some("t")));
        let only = &c.notifiers[1];
        assert!(only.fallback_only);
        assert!(!only.accepts(NoticeKind::InstanceDown, Some("t")), "a fallback_only notifier is routed nothing");
        assert!(!only.accepts(NoticeKind::ProviderUnreachable, None));
        match &c.notifiers[2].target {
            NotifierTarget::WhatsApp { digest_window, min_gap, .. } => {
                assert_eq!((digest_window.as_secs(), min_gap.as_secs()), (0, 10));
            }
            other => panic!("{other:?}"),
        }
        Ok(())
    });
}

#[test]
fn whatsapp_notifier_errors_name_their_key() {
    let wa = |extra: &str| {
        format!(
            "{OPS}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n{extra}"
        )
    };
    let to = "to = [\"5511988887777\"]\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{OPS}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\ninstance = \"ops\"\n{to}"),
            "notifiers[0].provider",
            "required",
        ),
        (
            format!("{OPS}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"ghost\"\ninstance = \"ops\"\n{to}"),
            "notifiers[0].provider",
            "not the name of a configured provider",
        ),
        (
            format!("{OPS}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"shop\"\n{to}"),
            "notifiers[0].instance",
            "[[instances]]",
        ),
        (wa(""), "notifiers[0].to", "required"),
        (wa("to = []\n"), "notifiers[0].to", "at least one"),
        (wa("to = [\"11 98888-7777\"]\n"), "notifiers[0].to[0]", "E.164"),
        (wa("to = [\"5511988887777\", \"123\"]\n"), "notifiers[0].to[1]", "E.164"),
        (wa("to = [\"120363019502650977-group\"]\n"), "notifiers[0].to[0]", "@g.us"),
        (
            format!("{OPS}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"z\"\ninstance = \"ZOPS\"\nto = [\"120363025246125486@g.us\"]\n"),
            "notifiers[0].to[0]",
            "-group",
        ),
        (wa(&format!("{to}fallback = \"nobody\"\n")), "notifiers[0].fallback", "not the name of another notifier"),
        (wa(&format!("{to}fallback = \"wa\"\n")), "notifiers[0].fallback", "its own fallback"),
        (
            format!(
                "{}fallback = \"wa2\"\n[[notifiers]]\nname = \"wa2\"\nkind = \"whatsapp\"\nprovider = \"z\"\ninstance = \"ZOPS\"\n\
                 to = [\"5511988887777\"]\nfallback = \"wa\"\n",
                wa(to)
            ),
            "notifiers[0].fallback",
            "cycle",
        ),
        (
            "[[notifiers]]\nname = \"s\"\nkind = \"slack\"\nurl = \"https://h\"\nfallback = \"l\"\n[[notifiers]]\nname = \"l\"\nkind = \"log\"\n"
                .to_string(),
            "notifiers[0].fallback",
            "not used by a `slack` notifier",
        ),
        ("[[notifiers]]\nname = \"l\"\nkind = \"log\"\nfallback_only = true\n".to_string(), "notifiers[0].fallback_only", "names `l`"),
        (wa(&format!("{to}min_gap = \"2m\"\n")), "notifiers[0].min_gap", "at most 1m"),
        (wa(&format!("{to}digest_window = \"soon\"\n")), "notifiers[0].digest_window", "duration"),
        (wa(&format!("{to}digest_window = \"10m\"\n")), "notifiers[0].digest_window", "at most 1m"),
        (
            "[[notifiers]]\nname = \"l\"\nkind = \"log\"\ninstance = \"ops\"\n".to_string(),
            "notifiers[0].instance",
            "not used by a `log` notifier",
        ),
    ];
    for (toml, key, why) in cases {
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", &toml)?;
            let e = config::load(Some(Path::new("config.toml"))).expect_err(&toml);
            let ps = problems(e);
            assert!(
                ps.iter().any(|(k, w)| k == key && w.contains(why)),
                "config:\n{toml}\nexpected key `{key}` with `{why}`, got {ps:?}"
            );
            Ok(())
        });
    }
}

/// `[pairing]`: on by default only with `server.public_url` (the base of
/// every link); asked for without it, a cause a QR scan cannot end, or a
/// link that would live longer than a week: each an error naming its key.
#[test]
fn pairing_needs_a_public_url_and_takes_only_causes_a_scan_ends() {
    let load = |toml: &str| {
        let raw: config::RawConfig = ::toml::from_str(toml).unwrap();
        config::validate(raw, &|_| "test".into())
    };
    let on = load("[server]\npublic_url = \"https://s.example.com\"\n").unwrap();
    assert!(on.pairing.enabled && on.pairing.link_ttl.as_secs() == 86_400, "on by default with a public URL");
    assert!(!load("").unwrap().pairing.enabled, "off without one");
    assert!(
        !load("[server]\npublic_url = \"https://s.example.com\"\n[pairing]\nenabled = false\n")
            .unwrap()
            .pairing
            .enabled
    );
    let bad = problems(
        load("[pairing]\nenabled = true\nlink_ttl = \"30d\"\ncauses = [\"disconnected\", \"needs_qr\"]\n").unwrap_err(),
    );
    let keys: Vec<&str> = bad.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["pairing.enabled", "pairing.link_ttl", "pairing.causes[0]"], "{bad:?}");
    assert!(bad[0].1.contains("server.public_url"), "{bad:?}");
}
