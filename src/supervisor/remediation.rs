//! The remediation hook: the operator's command, run when a
//! provider outage of a cause in `remediate_on` opens and after each cooldown.
//!
//! The attempt (its count and start) is committed by `provider_cycle` before
//! this runs, the same discipline as `last_restart_attempt`: a crash between
//! the commit and the run loses the run, it never repeats it inside the
//! cooldown. The command runs as argv — never through a shell — in its own
//! process group, with a clean environment ([`hook_env`]: `PATH`, `LANG`,
//! `LC_*`, `TZ`, `HOME`, the names listed in `remediate_env`, and
//! `WA_SENTINEL_PROVIDER`, `WA_SENTINEL_CAUSE`, `WA_SENTINEL_OUTAGE_ID` —
//! never the daemon's API keys, tokens or database URL); on timeout the whole
//! group is killed (a `systemctl` or `docker` child included). One run per
//! provider at a time: the next is not scheduled while one runs. The exit code and the
//! first 4 KiB of its output go to the event log (`remediation_result`) and to
//! the provider state, where the next provider notice and the status page
//! read them.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::Supervisor;
use crate::domain::Ts;
use crate::domain::provider::{RemediationPolicy, RemediationRun};

/// How much output is kept (stdout, then stderr).
pub const OUTPUT_LIMIT: usize = 4096;

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// `exit 0`, `exit 3`, `killed by signal 9`, `killed after the 1m timeout`,
    /// `could not start: …` — what people read.
    pub result: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The first [`OUTPUT_LIMIT`] bytes of stdout and stderr (lossy UTF-8).
    pub output: String,
}

impl RunOutcome {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Read all of `r`, keeping the first `limit` bytes (the rest is drained, so
/// a chatty command never blocks on a full pipe).
async fn read_capped(mut r: impl AsyncRead + Unpin, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

/// The remediation command's environment: from the daemon's own (`vars`),
/// only what a command needs to run (`PATH`, `LANG`, `LC_*`, `TZ`, `HOME`) and
/// the names the operator listed in `remediate_env`; then the three
/// `WA_SENTINEL_*` facts of the run. Everything else — the provider API keys,
/// the webhook and admin tokens, notifier URLs, a database URL with its
/// password — stays out.
pub fn hook_env(
    vars: impl IntoIterator<Item = (String, String)>,
    passthrough: &[String],
    facts: [(&str, &str); 3],
) -> Vec<(String, String)> {
    let wanted = |name: &str| {
        matches!(name, "PATH" | "LANG" | "TZ" | "HOME")
            || name.starts_with("LC_")
            || passthrough.iter().any(|p| p == name)
    };
    let mut env: Vec<(String, String)> = vars.into_iter().filter(|(k, _)| wanted(k)).collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()));
    }
    env.retain(|(k, _)| !facts.iter().any(|(f, _)| f == k));
    env.extend(facts.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env.sort();
    env
}

/// Run `argv` with exactly `env` (nothing inherited), in its own process
/// group, for at most `timeout`.
pub async fn run_command(argv: &[String], env: &[(String, String)], timeout: Duration) -> RunOutcome {
    let failed = |why: String| RunOutcome { result: why, exit_code: None, timed_out: false, output: String::new() };
    let Some((program, args)) = argv.split_first() else {
        return failed("could not start: the command is empty".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills the command and its children.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("could not start: {e}")),
    };
    let pgid = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let out = tokio::spawn(read_capped(child.stdout.take().expect("piped"), OUTPUT_LIMIT));
    let err = tokio::spawn(read_capped(child.stderr.take().expect("piped"), OUTPUT_LIMIT));
    let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(s) => (s.ok(), false),
        Err(_) => {
            if let Some(pg) = pgid {
                let _ = rustix::process::kill_process_group(pg, rustix::process::Signal::KILL);
            }
            let _ = child.start_kill();
            (child.wait().await.ok(), true)
        }
    };
    // A grandchild that left the group may hold the pipes open: don't wait for it.
    let grace = Duration::from_secs(2);
    let stdout = tokio::time::timeout(grace, out).await.ok().and_then(Result::ok).unwrap_or_default();
    let stderr = tokio::time::timeout(grace, err).await.ok().and_then(Result::ok).unwrap_or_default();
    let mut bytes = stdout;
    bytes.extend_from_slice(&stderr);
    bytes.truncate(OUTPUT_LIMIT);
    let output = String::from_utf8_lossy(&bytes).into_owned();
    let exit_code = status.and_then(|s| s.code());
    let result = if timed_out {
        format!("killed after the {} timeout", crate::domain::time::human_duration(timeout))
    } else {
        match (exit_code, status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s))) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "ended without an exit status".into(),
        }
    };
    RunOutcome { result, exit_code, timed_out, output }
}

impl Supervisor {
    /// Run `provider`'s remediation command for `run` (already committed with
    /// start `started`) and record its outcome.
    pub(super) async fn remediate(self: &Arc<Self>, provider: &str, run: RemediationRun, started: Ts) {
        // Marked running by the caller before this task started; unmarked
        // however this ends.
        struct Running<'a>(&'a Supervisor, &'a str);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.remediating.lock().expect("remediating lock").remove(self.1);
            }
        }
        let _running = Running(self, provider);
        let Some(r) = self.cfg.providers.iter().find(|p| p.name == provider).and_then(|p| p.health.remediation.clone())
        else {
            return;
        };
        if !self.remediation_delay.is_zero() {
            tokio::time::sleep(self.remediation_delay).await;
        }
        let outcome = self.run_remediation(provider, &run, &r).await;
        let label = if outcome.timed_out {
            "timeout"
        } else if outcome.succeeded() {
            "ok"
        } else {
            "failed"
        };
        metrics::counter!("wa_sentinel_remediations_total", "provider" => provider.to_string(), "result" => label)
            .increment(1);
        if outcome.succeeded() {
            tracing::info!(outage_id = %run.outage_id, attempt = run.attempt, result = %outcome.result, "remediation command done");
        } else {
            tracing::warn!(outage_id = %run.outage_id, attempt = run.attempt, result = %outcome.result, output = %outcome.output, "remediation command failed");
        }
        let detail = serde_json::json!({
            "outage_id": run.outage_id,
            "cause": run.cause.as_str(),
            "attempt": run.attempt,
            "command": r.display(),
            "result": outcome.result,
            "exit_code": outcome.exit_code,
            "timed_out": outcome.timed_out,
            "output": outcome.output,
        });
        if let Err(e) =
            self.store.record_remediation_result(provider, started, &outcome.result, &detail, self.now()).await
        {
            tracing::error!(error = %e, "cannot record the remediation result");
        }
    }

    async fn run_remediation(&self, provider: &str, run: &RemediationRun, r: &RemediationPolicy) -> RunOutcome {
        let facts = [
            ("WA_SENTINEL_PROVIDER", provider),
            ("WA_SENTINEL_CAUSE", run.cause.as_str()),
            ("WA_SENTINEL_OUTAGE_ID", run.outage_id.as_str()),
        ];
        let env = hook_env(std::env::vars(), &r.env, facts);
        run_command(&r.command, &env, r.timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[tokio::test]
    async fn exit_code_output_and_environment_are_captured() {
        let o = run_command(
            &sh("echo \"$WA_SENTINEL_PROVIDER/$WA_SENTINEL_CAUSE\"; echo oops >&2; exit 3"),
            &env(&[("WA_SENTINEL_PROVIDER", "evo"), ("WA_SENTINEL_CAUSE", "silent"), ("PATH", "/usr/bin:/bin")]),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.result, "exit 3");
        assert_eq!(o.exit_code, Some(3));
        assert_eq!(o.output, "evo/silent\noops\n");
    }

    /// The hook gets what it needs to run and what the operator passed on
    /// purpose; never the daemon's secrets (measured before: a hook that
    /// dumped `env` received the provider key, the webhook and admin tokens,
    /// the notifier URLs and the database URL with its password).
    #[tokio::test]
    async fn the_hook_gets_a_clean_environment_without_the_daemons_secrets() {
        let daemon = env(&[
            ("PATH", "/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("LC_TIME", "pt_BR.UTF-8"),
            ("HOME", "/var/lib/wa-sentinel"),
            ("EVO_API_KEY", "evo-secret"),
            ("WA_SENTINEL_DATABASE__URL", "postgres://u:pw@db/x"),
            ("OPS_SLACK_URL", "https://hooks.slack.com/secret"),
            ("DOCKER_HOST", "unix:///run/docker.sock"),
            ("WA_SENTINEL_PROVIDER", "forged"),
        ]);
        let facts = [("WA_SENTINEL_PROVIDER", "evo"), ("WA_SENTINEL_CAUSE", "silent"), ("WA_SENTINEL_OUTAGE_ID", "o1")];
        let built = hook_env(daemon, &["DOCKER_HOST".to_string()], facts);
        let o = run_command(&["/usr/bin/env".into()], &built, Duration::from_secs(10)).await;
        let mut seen: Vec<&str> = o.output.lines().collect();
        seen.sort();
        assert_eq!(
            seen,
            vec![
                "DOCKER_HOST=unix:///run/docker.sock",
                "HOME=/var/lib/wa-sentinel",
                "LANG=C.UTF-8",
                "LC_TIME=pt_BR.UTF-8",
                "PATH=/usr/bin:/bin",
                "WA_SENTINEL_CAUSE=silent",
                "WA_SENTINEL_OUTAGE_ID=o1",
                "WA_SENTINEL_PROVIDER=evo",
            ]
        );
        // Without a PATH of its own, the hook still finds its programs.
        assert!(hook_env(Vec::new(), &[], facts).iter().any(|(k, v)| k == "PATH" && v.contains("/usr/bin")));
    }

    #[tokio::test]
    async fn output_is_capped_at_4_kib_and_a_chatty_command_still_finishes() {
        let o = run_command(
            &sh("head -c 200000 /dev/zero | tr '\\0' x"),
            &env(&[("PATH", "/usr/bin:/bin")]),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(o.result, "exit 0");
        assert_eq!(o.output.len(), OUTPUT_LIMIT);
    }

    #[tokio::test]
    async fn a_missing_program_is_reported_not_panicked() {
        let o = run_command(&["/nonexistent/remedy".into()], &[], Duration::from_secs(1)).await;
        assert!(o.result.starts_with("could not start:"), "{}", o.result);
        assert_eq!(o.exit_code, None);
    }

    #[tokio::test]
    async fn a_hanging_command_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let started = std::time::Instant::now();
        let o = run_command(&sh(&script), &env(&[("PATH", "/usr/bin:/bin")]), Duration::from_millis(500)).await;
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(o.timed_out);
        assert_eq!(o.result, "killed after the 0s timeout");
        let child: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // The group was killed: the backgrounded `sleep` is gone too (reaped by init, or a zombie).
        let gone = (0..40).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'));
            if alive {
                std::thread::sleep(Duration::from_millis(50));
            }
            !alive
        });
        assert!(gone, "the child {child} of the hanging command survived");
    }
}
