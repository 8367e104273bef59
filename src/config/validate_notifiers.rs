//! Validation of `[[notifiers]]`: each kind's target, the routing filters,
//! the `whatsapp` kind's ops instance and recipients, and the `fallback`
//! chains between notifiers.

use super::*;

impl Validator<'_> {
    pub(super) fn notifiers(
        &mut self,
        raws: &[raw::RawNotifier],
        providers: &[ProviderConfig],
        instances: &[InstanceConfig],
    ) -> Vec<NotifierConfig> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, n) in raws.iter().enumerate() {
            let k = |f: &str| format!("notifiers[{i}].{f}");
            if !is_url_safe_name(&n.name) {
                self.bad(k("name"), format!("`{}`: use lowercase letters, digits, `_` and `-` only", n.name));
            } else if !seen.insert(n.name.clone()) {
                self.bad(k("name"), format!("`{}` is used by another notifier; names must be unique", n.name));
            }
            let tenants = match &n.tenants {
                None => None,
                Some(ts) if ts.iter().any(|t| t == "*") => None,
                Some(ts) if ts.is_empty() => {
                    self.bad(k("tenants"), "an empty list matches nothing; use [\"*\"] for every tenant");
                    None
                }
                Some(ts) => Some(ts.clone()),
            };
            let kinds = match &n.kinds {
                None => None,
                Some(ks) if ks.iter().any(|t| t == "*") => None,
                Some(ks) => Some(
                    ks.iter()
                        .enumerate()
                        .filter_map(|(j, s)| {
                            let parsed = NoticeKind::parse(s);
                            if parsed.is_none() {
                                let known: Vec<_> = NoticeKind::ALL.iter().map(|k| k.as_str()).collect();
                                self.bad(
                                    format!("notifiers[{i}].kinds[{j}]"),
                                    format!("`{s}` is not a notice kind ({})", known.join(", ")),
                                );
                            }
                            parsed
                        })
                        .collect(),
                ),
            };
            let url = self.secret(&k("url"), "url", &n.url, &n.url_env, &n.url_file);
            let secret = self.secret(&k("secret"), "secret", &n.secret, &n.secret_env, &n.secret_file);
            let bot_token =
                self.secret(&k("bot_token"), "bot_token", &n.bot_token, &n.bot_token_env, &n.bot_token_file);
            let password = self.secret(&k("password"), "password", &n.password, &n.password_env, &n.password_file);
            if let Some(u) = &url {
                self.url(&k("url"), u.expose());
            }
            // Keys that belong to other kinds are mistakes, not decoration.
            let used: &[&str] = match n.kind.as_str() {
                "webhook" => &["url", "secret"],
                "slack" | "discord" => &["url"],
                "telegram" => &["bot_token", "chat_id", "api_base"],
                "email" => &["smtp_host", "smtp_port", "smtp_tls", "username", "password", "from", "to"],
                "whatsapp" => &["provider", "instance", "to", "fallback", "digest_window", "min_gap"],
                "log" => &[],
                other => {
                    self.bad(
                        k("kind"),
                        format!("`{other}`: must be one of webhook, slack, discord, telegram, email, whatsapp, log"),
                    );
                    continue;
                }
            };
            let present = [
                ("url", url.is_some()),
                ("secret", secret.is_some()),
                ("bot_token", bot_token.is_some()),
                ("chat_id", n.chat_id.is_some()),
                ("api_base", n.api_base.is_some()),
                ("smtp_host", n.smtp_host.is_some()),
                ("smtp_port", n.smtp_port.is_some()),
                ("smtp_tls", n.smtp_tls.is_some()),
                ("username", n.username.is_some()),
                ("password", password.is_some()),
                ("from", n.from.is_some()),
                ("to", n.to.is_some()),
                ("provider", n.provider.is_some()),
                ("instance", n.instance.is_some()),
                ("fallback", n.fallback.is_some()),
                ("digest_window", n.digest_window.is_some()),
                ("min_gap", n.min_gap.is_some()),
            ];
            for (field, is_set) in present {
                if is_set && !used.contains(&field) {
                    self.bad(k(field), format!("not used by a `{}` notifier", n.kind));
                }
            }
            let missing = |v: &mut Self, field: &str| {
                if !v.has_problem(&k(field)) {
                    v.bad(k(field), format!("required for a `{}` notifier", n.kind));
                }
            };
            let target = match n.kind.as_str() {
                "webhook" => match url {
                    Some(url) => NotifierTarget::Webhook { url, secret },
                    None => {
                        missing(self, "url");
                        continue;
                    }
                },
                "slack" | "discord" => match url {
                    Some(url) if n.kind == "slack" => NotifierTarget::Slack { url },
                    Some(url) => NotifierTarget::Discord { url },
                    None => {
                        missing(self, "url");
                        continue;
                    }
                },
                "telegram" => match (bot_token, &n.chat_id) {
                    (Some(bot_token), Some(chat_id)) => {
                        let api_base = n.api_base.clone().unwrap_or_else(|| "https://api.telegram.org".into());
                        self.url(&k("api_base"), &api_base);
                        NotifierTarget::Telegram { bot_token, chat_id: chat_id.clone(), api_base }
                    }
                    (b, c) => {
                        if b.is_none() {
                            missing(self, "bot_token");
                        }
                        if c.is_none() {
                            missing(self, "chat_id");
                        }
                        continue;
                    }
                },
                "email" => {
                    let tls = match n.smtp_tls.as_deref().unwrap_or("starttls") {
                        "starttls" => SmtpTls::StartTls,
                        "tls" => SmtpTls::Tls,
                        "none" => SmtpTls::None,
                        other => {
                            self.bad(k("smtp_tls"), format!("`{other}`: must be \"starttls\", \"tls\" or \"none\""));
                            SmtpTls::StartTls
                        }
                    };
                    let (Some(host), Some(from), Some(to)) = (&n.smtp_host, &n.from, &n.to) else {
                        for (f, set) in
                            [("smtp_host", n.smtp_host.is_some()), ("from", n.from.is_some()), ("to", n.to.is_some())]
                        {
                            if !set {
                                missing(self, f);
                            }
                        }
                        continue;
                    };
                    if to.is_empty() {
                        self.bad(k("to"), "must list at least one address");
                    }
                    if password.is_some() != n.username.is_some() {
                        self.bad(k("username"), "give both `username` and a `password*`, or neither");
                    }
                    let port = n.smtp_port.unwrap_or(match tls {
                        SmtpTls::StartTls => 587,
                        SmtpTls::Tls => 465,
                        SmtpTls::None => 25,
                    });
                    NotifierTarget::Email {
                        host: host.clone(),
                        port,
                        tls,
                        username: n.username.clone(),
                        password,
                        from: from.clone(),
                        to: to.clone(),
                    }
                }
                "whatsapp" => match self.whatsapp(i, n, providers, instances) {
                    Some(t) => t,
                    None => continue,
                },
                _ => NotifierTarget::Log,
            };
            let provider_notices = n.provider_notices.unwrap_or(tenants.is_none());
            out.push(NotifierConfig {
                name: n.name.clone(),
                target,
                tenants,
                kinds,
                provider_notices,
                fallback: n.fallback.clone(),
                fallback_only: n.fallback_only.unwrap_or(false),
            });
        }
        self.fallbacks(raws);
        out
    }

    /// A `whatsapp` notifier's target: a configured provider, an instance of
    /// it listed in `[[instances]]` (wa-sentinel must watch the instance it
    /// sends through), recipients in that provider's forms, its pacing.
    pub(super) fn whatsapp(
        &mut self,
        i: usize,
        n: &raw::RawNotifier,
        providers: &[ProviderConfig],
        instances: &[InstanceConfig],
    ) -> Option<NotifierTarget> {
        let k = |f: &str| format!("notifiers[{i}].{f}");
        let Some(pname) = &n.provider else {
            self.bad(k("provider"), "required for a `whatsapp` notifier: the provider that sends its messages");
            return None;
        };
        let Some(p) = providers.iter().find(|p| &p.name == pname) else {
            self.bad(k("provider"), format!("`{pname}` is not the name of a configured provider"));
            return None;
        };
        let Some(iname) = &n.instance else {
            self.bad(k("instance"), "required for a `whatsapp` notifier: the instance that sends its messages");
            return None;
        };
        match instances.iter().find(|x| &x.provider == pname && &x.name == iname) {
            None => self.bad(
                k("instance"),
                format!(
                    "`{iname}` is not listed in [[instances]] under provider `{pname}`: list it there, so                      wa-sentinel watches the instance it sends through"
                ),
            ),
            Some(x) if p.kind == ProviderKind::Wapi && x.token.is_none() => self.bad(
                k("instance"),
                format!("a W-API instance sends with its own Bearer token: set `token_env` on `{iname}` in [[instances]]"),
            ),
            Some(_) => {}
        }
        let mut to = Vec::new();
        match &n.to {
            None => self.bad(k("to"), "required for a `whatsapp` notifier: the numbers or groups to tell"),
            Some(list) if list.is_empty() => self.bad(k("to"), "must list at least one number or group"),
            Some(list) => {
                for (j, r) in list.iter().enumerate() {
                    match recipients::recipient(p.kind, r) {
                        Ok(norm) => to.push(norm),
                        Err(why) => self.bad(format!("notifiers[{i}].to[{j}]"), why),
                    }
                }
            }
        }
        let digest_window = self.duration(&k("digest_window"), n.digest_window.as_deref().unwrap_or("5s"));
        if digest_window > Duration::from_secs(60) {
            self.bad(k("digest_window"), "must be at most 1m: a notice waits that long before it is sent");
        }
        let min_gap = self.duration(&k("min_gap"), n.min_gap.as_deref().unwrap_or("3s"));
        if min_gap > Duration::from_secs(60) {
            self.bad(k("min_gap"), "must be at most 1m: every notice behind the first waits that long per message");
        }
        Some(NotifierTarget::WhatsApp { provider: pname.clone(), instance: iname.clone(), to, digest_window, min_gap })
    }

    /// Across notifiers: each `fallback` names another notifier, the chains
    /// end (no cycle), and each `fallback_only` notifier is someone's fallback.
    pub(super) fn fallbacks(&mut self, raws: &[raw::RawNotifier]) {
        let index = |name: &str| raws.iter().position(|n| n.name == name);
        for (i, n) in raws.iter().enumerate() {
            let Some(f) = &n.fallback else { continue };
            if f == &n.name {
                self.bad(format!("notifiers[{i}].fallback"), "a notifier cannot be its own fallback");
            } else if index(f).is_none() {
                self.bad(format!("notifiers[{i}].fallback"), format!("`{f}` is not the name of another notifier"));
            }
        }
        let mut reported: HashSet<usize> = HashSet::new();
        for start in 0..raws.len() {
            let mut chain = vec![start];
            let mut at = start;
            while let Some(next) = raws[at].fallback.as_deref().and_then(index).filter(|&j| j != at) {
                if let Some(pos) = chain.iter().position(|&c| c == next) {
                    let cycle = &chain[pos..];
                    if cycle.iter().all(|c| !reported.contains(c)) {
                        reported.extend(cycle.iter().copied());
                        let first = *cycle.iter().min().expect("a cycle has members");
                        let names: Vec<&str> = cycle.iter().chain([&next]).map(|&c| raws[c].name.as_str()).collect();
                        self.bad(
                            format!("notifiers[{first}].fallback"),
                            format!(
                                "{}: fallbacks form a cycle, so a notice none of them can deliver would never settle;                                  end the chain with a notifier that has no fallback",
                                names.join(" → ")
                            ),
                        );
                    }
                    break;
                }
                chain.push(next);
                at = next;
            }
        }
        for (i, n) in raws.iter().enumerate() {
            if n.fallback_only == Some(true) && !raws.iter().any(|o| o.fallback.as_deref() == Some(&n.name)) {
                self.bad(
                    format!("notifiers[{i}].fallback_only"),
                    format!("no notifier names `{}` as its `fallback`, so it would receive nothing", n.name),
                );
            }
        }
    }
}
