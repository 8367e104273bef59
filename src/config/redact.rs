//! The configuration as `check-config` prints it: every inline secret and
//! the database password redacted.

use super::RawConfig;

/// The effective configuration as TOML with every inline secret and the
/// database password redacted (`check-config`).
pub fn redacted_toml(raw: &RawConfig) -> String {
    let mut r = raw.clone();
    let red = |s: &mut Option<String>| {
        if s.is_some() {
            *s = Some("[redacted]".into());
        }
    };
    r.database.url = redact_url_password(&r.database.url);
    red(&mut r.server.admin_token);
    red(&mut r.server.events_token);
    red(&mut r.selfcheck.heartbeat_url);
    red(&mut r.tenants.source_url);
    for s in &mut r.subscribers {
        red(&mut s.url);
        red(&mut s.secret);
    }
    for p in &mut r.providers {
        red(&mut p.api_key);
        red(&mut p.webhook_token);
        red(&mut p.webhook_bearer);
        red(&mut p.webhook_jwt_key);
        red(&mut p.webhook_hmac_key);
        red(&mut p.client_token);
    }
    for i in &mut r.instances {
        red(&mut i.token);
    }
    for n in &mut r.notifiers {
        red(&mut n.url);
        red(&mut n.secret);
        red(&mut n.bot_token);
        red(&mut n.password);
    }
    toml::to_string_pretty(&r).unwrap_or_else(|e| format!("# cannot render the config: {e}\n"))
}

/// `postgres://user:pw@host/db` → `postgres://user:[redacted]@host/db`.
pub fn redact_url_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("[redacted]"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
