//! The daemon under test as a child process (its config, its log, its CPU and memory), and the bare axum server it is measured against.

use super::*;

/// The real daemon as a child process; killed on drop.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
    pub(crate) port: u16,
}

#[derive(Clone, Debug)]
pub(crate) struct Cycle {
    pub(crate) polled: u64,
    pub(crate) changed: u64,
    pub(crate) took_ms: u64,
}

pub(crate) struct DaemonConfig<'a> {
    pub(crate) db_url: &'a str,
    pub(crate) port: u16,
    pub(crate) sim: &'a Simulator,
    pub(crate) schedule: &'a str,
    pub(crate) sink: Option<&'a str>,
    pub(crate) supervisor_extra: &'a str,
    pub(crate) extra: &'a str,
}

pub(crate) fn config_text(c: &DaemonConfig) -> String {
    let notifier = c
        .sink
        .map(|s| format!("[[notifiers]]\nname = \"sink\"\nkind = \"webhook\"\nurl = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[database]
url = "{db}"
[server]
listen = "127.0.0.1:{port}"
admin_token = "{ADMIN_TOKEN}"
[supervisor]
poll_schedule = "{schedule}"
request_timeout = "10s"
{sup_extra}
[alerts]
flap_threshold = 0
retry_min_delay = "1s"
[[providers]]
name = "evo"
kind = "evolution"
base_url = "{base}"
api_version = "v2"
api_key = "{key}"
webhook_token = "{WEBHOOK_TOKEN}"
discover = true
{notifier}
{extra}
"#,
        db = c.db_url,
        port = c.port,
        schedule = c.schedule,
        sup_extra = c.supervisor_extra,
        base = c.sim.base_url(),
        key = c.sim.api_key(),
        extra = c.extra,
    )
}

/// The daemon's command, under `BENCH_DAEMON_WRAPPER` (e.g. `valgrind
/// --tool=massif`) when set.
pub(crate) fn daemon_command() -> Command {
    let wrapper = std::env::var("BENCH_DAEMON_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    match words.next() {
        Some(w) => {
            let mut c = Command::new(w);
            c.args(words).arg(env!("CARGO_BIN_EXE_wa-sentinel"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_wa-sentinel")),
    }
}

/// `wa-sentinel --config cfg run`, its log (plain text, `rust_log`) to `log`.
/// `BENCH_DAEMON_WRAPPER="valgrind --tool=callgrind …"` runs it under a profiler.
pub(crate) fn spawn_daemon(cfg: &Path, log: &Path, rust_log: &str) -> Result<Child> {
    daemon_command()
        .arg("--config")
        .arg(cfg)
        .arg("run")
        .env_remove("WA_SENTINEL_CONFIG")
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        // As the shipped systemd unit runs it (systemd/wa-sentinel.service).
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .context("spawn wa-sentinel")
}

impl Daemon {
    pub(crate) fn spawn(dir: &Path, c: &DaemonConfig) -> Result<Daemon> {
        let cfg = dir.join("config.toml");
        std::fs::write(&cfg, config_text(c))?;
        let log = dir.join("daemon.log");
        let child = spawn_daemon(&cfg, &log, "info,sqlx=warn,tokio_cron_scheduler=warn")?;
        Ok(Daemon { child, log, port: c.port })
    }

    /// On SQLite in `dir`, no notifier, one poll cycle at start-up (then hourly).
    pub(crate) fn plain(dir: &Path, sim: &Simulator) -> Result<Daemon> {
        let db = format!("sqlite://{}/bench.db", dir.display());
        let cfg = DaemonConfig {
            db_url: &db,
            port: free_port()?,
            sim,
            schedule: "0 0 * * * *",
            sink: None,
            supervisor_extra: "",
            extra: "",
        };
        Daemon::spawn(dir, &cfg)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_text(&self) -> String {
        strip_ansi(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    pub(crate) fn tail(&self) -> String {
        let t = self.log_text();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    pub(crate) fn cycles(&self) -> Vec<Cycle> {
        self.log_text()
            .lines()
            .filter(|l| l.contains("poll cycle done"))
            .map(|l| Cycle {
                polled: field(l, "polled").unwrap_or(0),
                changed: field(l, "changed").unwrap_or(0),
                took_ms: field(l, "took_ms").unwrap_or(0),
            })
            .collect()
    }

    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            bail!("the daemon exited ({st}):\n{}", self.tail());
        }
        Ok(())
    }

    /// Wait for the listener and the first poll cycle that saw `n` instances.
    pub(crate) async fn ready(&mut self, n: usize, limit: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if self.cycles().iter().any(|c| c.polled as usize >= n) {
                break;
            }
            if start.elapsed() > limit {
                bail!("no poll cycle over {n} instances within {limit:?}:\n{}", self.tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wait_tcp(self.port, limit).await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Under a profiler, SIGTERM (graceful: the profile gets written); else SIGKILL.
        if std::env::var_os("BENCH_DAEMON_WRAPPER").is_some() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bare comparison server: this executable re-invoked as `bare-server PORT`.
pub(crate) struct Bare {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Bare {
    pub(crate) async fn spawn() -> Result<Bare> {
        let port = free_port()?;
        let child = Command::new(std::env::current_exe()?)
            .arg("bare-server")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("spawn the bare server")?;
        let b = Bare { child, port };
        wait_tcp(port, Duration::from_secs(10)).await?;
        Ok(b)
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn bare_server(port: u16) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        async fn ok(_body: axum::body::Bytes) -> axum::http::StatusCode {
            axum::http::StatusCode::OK
        }
        let app = axum::Router::new().route("/webhooks/{provider}/{token}", axum::routing::post(ok));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
