//! Validation of `[[providers]]` (kinds, URLs, credentials, webhook settings,
//! provider health and its remediation hook) and of `[[instances]]`, which
//! name a configured provider.

use super::*;

impl Validator<'_> {
    pub(super) fn providers(&mut self, raws: &[raw::RawProvider]) -> Vec<ProviderConfig> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, p) in raws.iter().enumerate() {
            let k = |f: &str| format!("providers[{i}].{f}");
            if !is_url_safe_name(&p.name) {
                self.bad(k("name"), format!("`{}`: use lowercase letters, digits, `_` and `-` only", p.name));
            } else if !seen.insert(p.name.clone()) {
                self.bad(k("name"), format!("`{}` is used by another provider; names must be unique", p.name));
            }
            let kind = match p.kind.as_str() {
                "evolution" => ProviderKind::Evolution,
                "wapi" => ProviderKind::Wapi,
                "waha" => ProviderKind::Waha,
                "zapi" => ProviderKind::Zapi,
                other => {
                    self.bad(k("kind"), format!("`{other}`: must be \"evolution\", \"wapi\", \"waha\" or \"zapi\""));
                    continue;
                }
            };
            let base_url = match (kind, p.base_url.trim()) {
                (ProviderKind::Zapi, "") => ZAPI_BASE_URL.to_string(),
                (_, "") => {
                    self.bad(k("base_url"), "required: the provider's address, e.g. \"http://127.0.0.1:8080\"");
                    String::new()
                }
                (_, u) => {
                    self.url(&k("base_url"), u);
                    u.trim_end_matches('/').to_string()
                }
            };
            let api_version = match (kind, p.api_version.as_deref()) {
                (ProviderKind::Evolution, None | Some("auto")) => ApiVersion::Auto,
                (ProviderKind::Evolution, Some("v1")) => ApiVersion::V1,
                (ProviderKind::Evolution, Some("v2")) => ApiVersion::V2,
                (ProviderKind::Evolution, Some(other)) => {
                    self.bad(k("api_version"), format!("`{other}`: must be \"auto\", \"v1\" or \"v2\""));
                    ApiVersion::Auto
                }
                (_, None) => ApiVersion::Auto,
                (_, Some(_)) => {
                    self.bad(k("api_version"), "only Evolution providers have an api_version");
                    ApiVersion::Auto
                }
            };
            let api_key = self.secret(&k("api_key"), "api_key", &p.api_key, &p.api_key_env, &p.api_key_file);
            if kind == ProviderKind::Evolution && api_key.is_none() && !self.has_problem(&k("api_key")) {
                self.bad(k("api_key"), "Evolution needs its global API key: set `api_key_env` or `api_key_file`");
            }
            if kind == ProviderKind::Zapi && api_key.is_some() {
                self.bad(
                    k("api_key"),
                    "Z-API has no server key: put each instance token in [[instances]] `token_env` and the \
                     account security token in `client_token_env`",
                );
            }
            if kind != ProviderKind::Wapi && p.webhook_body_key.is_some() {
                self.bad(k("webhook_body_key"), "only W-API providers use webhook_body_key");
            }
            let webhook_token = self.secret(
                &k("webhook_token"),
                "webhook_token",
                &p.webhook_token,
                &p.webhook_token_env,
                &p.webhook_token_file,
            );
            let webhook_token = match webhook_token {
                Some(t) => t,
                None => {
                    if !self.has_problem(&k("webhook_token")) {
                        self.bad(
                            k("webhook_token"),
                            "the receiver URL needs a secret token: set `webhook_token_env` or `webhook_token_file`",
                        );
                    }
                    continue;
                }
            };
            let webhook_bearer = self.secret(
                &k("webhook_bearer"),
                "webhook_bearer",
                &p.webhook_bearer,
                &p.webhook_bearer_env,
                &p.webhook_bearer_file,
            );
            let webhook_jwt_key = self.secret(
                &k("webhook_jwt_key"),
                "webhook_jwt_key",
                &p.webhook_jwt_key,
                &p.webhook_jwt_key_env,
                &p.webhook_jwt_key_file,
            );
            if kind != ProviderKind::Evolution && (webhook_bearer.is_some() || webhook_jwt_key.is_some()) {
                self.bad(
                    k("webhook_bearer"),
                    format!(
                        "{} sends no Bearer headers; only Evolution v2 uses webhook_bearer / webhook_jwt_key",
                        kind.as_str()
                    ),
                );
            }
            let webhook_hmac_key = self.secret(
                &k("webhook_hmac_key"),
                "webhook_hmac_key",
                &p.webhook_hmac_key,
                &p.webhook_hmac_key_env,
                &p.webhook_hmac_key_file,
            );
            if kind != ProviderKind::Waha && webhook_hmac_key.is_some() {
                self.bad(k("webhook_hmac_key"), "only WAHA signs its webhooks (HMAC-SHA512); remove webhook_hmac_key*");
            }
            let client_token = self.secret(
                &k("client_token"),
                "client_token",
                &p.client_token,
                &p.client_token_env,
                &p.client_token_file,
            );
            if kind != ProviderKind::Zapi && client_token.is_some() {
                self.bad(k("client_token"), "only Z-API uses a Client-Token; remove client_token*");
            }
            if p.discover && kind == ProviderKind::Wapi && api_key.is_none() {
                self.bad(k("discover"), "W-API discovery needs the integrator token in `api_key_env`/`api_key_file`");
            }
            if p.discover && kind == ProviderKind::Zapi {
                self.bad(k("discover"), "Z-API has no API to list instances: list each one under [[instances]]");
            }
            let health = self.provider_health(p, &k);
            let default_tenant = p.default_tenant.clone().unwrap_or_else(|| "unassigned".into());
            if default_tenant.trim().is_empty() {
                self.bad(k("default_tenant"), "must not be empty");
            }
            out.push(ProviderConfig {
                name: p.name.clone(),
                kind,
                base_url,
                api_version,
                api_key,
                webhook_token,
                discover: p.discover,
                default_tenant,
                webhook_body_key: p.webhook_body_key.clone().unwrap_or_else(|| "value".into()),
                webhook_bearer,
                webhook_jwt_key,
                webhook_hmac_key,
                client_token,
                health,
                tenant_pattern: self.tenant_pattern(&k("tenant_pattern"), p.tenant_pattern.as_deref()),
            });
        }
        out
    }

    /// `silent_after`, `silent_min_instances` and the `remediate_*` keys of one provider.
    pub(super) fn provider_health(&mut self, p: &raw::RawProvider, k: &dyn Fn(&str) -> String) -> ProviderPolicy {
        let silent_after = self.duration(&k("silent_after"), p.silent_after.as_deref().unwrap_or("15m"));
        let silent_min_instances = self.at_least(&k("silent_min_instances"), p.silent_min_instances.unwrap_or(3), 1);
        let Some(command) = &p.remediate_command else {
            for (key, set) in [
                ("remediate_timeout", p.remediate_timeout.is_some()),
                ("remediate_cooldown", p.remediate_cooldown.is_some()),
                ("remediate_max_attempts", p.remediate_max_attempts.is_some()),
                ("remediate_on", p.remediate_on.is_some()),
                ("remediate_env", p.remediate_env.is_some()),
            ] {
                if set {
                    self.bad(k(key), "has no effect without `remediate_command`");
                }
            }
            return ProviderPolicy { silent_after, silent_min_instances, remediation: None };
        };
        if command.first().is_none_or(|c| c.trim().is_empty()) {
            self.bad(
                k("remediate_command"),
                "must be an argv list with the program first, e.g. [\"/usr/bin/systemctl\", \"restart\", \"evolution-api\"]",
            );
        }
        let timeout = self.positive_duration(&k("remediate_timeout"), p.remediate_timeout.as_deref().unwrap_or("60s"));
        let cooldown =
            self.positive_duration(&k("remediate_cooldown"), p.remediate_cooldown.as_deref().unwrap_or("30m"));
        let max_attempts = self.at_least(&k("remediate_max_attempts"), p.remediate_max_attempts.unwrap_or(2), 1);
        if !self.has_problem(&k("remediate_timeout"))
            && !self.has_problem(&k("remediate_cooldown"))
            && timeout >= cooldown
        {
            self.bad(
                k("remediate_timeout"),
                format!(
                    "{} is not shorter than remediate_cooldown ({}): a run could still be going when the next is due; \
                     make the timeout shorter than the cooldown",
                    crate::domain::time::human_duration(timeout),
                    crate::domain::time::human_duration(cooldown)
                ),
            );
        }
        let env = p.remediate_env.clone().unwrap_or_default();
        for (i, name) in env.iter().enumerate() {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.bad(
                    format!("{}[{i}]", k("remediate_env")),
                    format!("`{name}` is not an environment variable name (letters, digits, `_`)"),
                );
            }
        }
        let mut on = Vec::new();
        for (i, c) in p.remediate_on.clone().unwrap_or_else(|| vec!["silent".into()]).iter().enumerate() {
            match ProviderCause::parse(c) {
                Some(cause @ (ProviderCause::Silent | ProviderCause::Unreachable)) if !on.contains(&cause) => {
                    on.push(cause)
                }
                Some(ProviderCause::Silent | ProviderCause::Unreachable) => {}
                _ => self.bad(
                    format!("{}[{i}]", k("remediate_on")),
                    format!("`{c}`: must be \"silent\" or \"unreachable\""),
                ),
            }
        }
        if on.contains(&ProviderCause::Silent) && silent_after.is_zero() {
            self.bad(k("remediate_on"), "names `silent`, but silence detection is off (`silent_after = \"0s\"`)");
        }
        let remediation = RemediationPolicy { command: command.clone(), timeout, cooldown, max_attempts, on, env };
        ProviderPolicy { silent_after, silent_min_instances, remediation: Some(remediation) }
    }

    pub(super) fn instances(&mut self, raws: &[raw::RawInstance], providers: &[ProviderConfig]) -> Vec<InstanceConfig> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, r) in raws.iter().enumerate() {
            let k = |f: &str| format!("instances[{i}].{f}");
            let Some(p) = providers.iter().find(|p| p.name == r.provider) else {
                self.bad(k("provider"), format!("`{}` is not the name of a configured provider", r.provider));
                continue;
            };
            if r.name.trim().is_empty() || r.name.contains('/') {
                self.bad(k("name"), format!("`{}`: must be non-empty and contain no `/`", r.name));
            } else if !seen.insert((r.provider.clone(), r.name.clone())) {
                self.bad(k("name"), format!("`{}/{}` is listed twice", r.provider, r.name));
            }
            if r.tenant.as_deref().is_some_and(|t| t.trim().is_empty()) {
                self.bad(k("tenant"), "must not be empty");
            }
            let token = self.secret(&k("token"), "token", &r.token, &r.token_env, &r.token_file);
            match p.kind {
                ProviderKind::Wapi if token.is_none() && !p.discover && !self.has_problem(&k("token")) => {
                    self.bad(k("token"), "a W-API instance needs its Bearer token: set `token_env` or `token_file`")
                }
                ProviderKind::Zapi if token.is_none() && !self.has_problem(&k("token")) => self.bad(
                    k("token"),
                    "a Z-API instance needs its instance token (it goes in the URL path): set `token_env` or `token_file`",
                ),
                ProviderKind::Evolution | ProviderKind::Waha if token.is_some() => self.bad(
                    k("token"),
                    format!("{} instances use the provider's API key; remove `token*`", p.kind.as_str()),
                ),
                _ => {}
            }
            out.push(InstanceConfig {
                provider: r.provider.clone(),
                name: r.name.clone(),
                tenant: r.tenant.clone(),
                labels: r.labels.clone(),
                token,
            });
        }
        out
    }
}
