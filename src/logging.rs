//! Where log lines go and what they look like (`[log]`, README "Logs").
//!
//! - Colours only when stderr is a terminal and `NO_COLOR` is unset or empty;
//!   piped or redirected output never carries escape codes (and values from
//!   providers are sanitised by `tracing-subscriber`, so a log line cannot
//!   smuggle one in either).
//! - Under systemd (`JOURNAL_STREAM` names our stderr) there is no timestamp of
//!   our own, since journald stamps every line, and each line starts with a
//!   syslog priority (`<3>` error … `<7>` debug) which journald strips and
//!   records, so `journalctl -p warning` works. The fields stay in the line
//!   (`instance=… tenant=… outage_id=…`): `journalctl -u wa-sentinel` shows them
//!   without `-o verbose`, and `--grep` finds them.
//! - `format = "json"`: one JSON object per line (`timestamp` unless under
//!   journald, `level`, `target`, the message and every field at the top
//!   level, the enclosing span's fields under `span`) for CloudWatch or Loki.
//! - `RUST_LOG`, when set, replaces `level`. `sqlx` and `tokio_cron_scheduler`
//!   stay at `warn` unless the directives name them.
//!
//! `demo` logs differently ([`init_demo`]): everything to a file, and only the
//! notices to the console unless `--verbose`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, filter};

use crate::config::{LogConfig, LogFormat};

/// Crates that are chatty at `info` and get `warn` unless the level names them.
const QUIET_CRATES: [&str; 2] = ["sqlx", "tokio_cron_scheduler"];

/// The `tracing` target of notices printed by the `log` notifier.
pub const NOTICE_TARGET: &str = "wa_sentinel::notice";

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The filter for `level` (or `RUST_LOG` when set): an `EnvFilter` directive
/// string such as `info` or `info,wa_sentinel::supervisor=debug`.
pub fn filter(level: &str) -> Result<EnvFilter, String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let d = directives(level, rust_log.as_deref());
    EnvFilter::try_new(&d).map_err(|e| format!("`{d}` is not a log filter like \"info\": {e}"))
}

/// `RUST_LOG` (when set and not blank) or `level`, with the chatty crates held
/// at `warn` unless named.
pub fn directives(level: &str, rust_log: Option<&str>) -> String {
    let mut d = rust_log.filter(|v| !v.trim().is_empty()).unwrap_or(level).trim().to_string();
    for krate in QUIET_CRATES {
        if !d.contains(krate) {
            d.push_str(&format!(",{krate}=warn"));
        }
    }
    d
}

/// Colours: stderr is a terminal and `NO_COLOR` is unset or empty (no-color.org).
pub fn colours_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Is stderr connected to journald? `JOURNAL_STREAM` is `DEVICE:INODE` of the
/// stream systemd connected; it is inherited by children whose stderr may be
/// elsewhere, so it counts only when it names our stderr (systemd.exec(5)).
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = value.to_str().and_then(|v| v.split_once(':')) else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return false };
    std::fs::File::from(fd).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Install the process-wide logger for `run` and the one-shot commands.
pub fn init(cfg: &LogConfig) -> Result<(), String> {
    let layer = layer_for(cfg.format, stderr_is_journal(), colours_on_stderr(), std::io::stderr);
    Registry::default().with(layer.with_filter(filter(&cfg.level)?)).try_init().map_err(|e| e.to_string())
}

/// Install the logger for `demo`: the full log (text, no colours) to
/// `log_file`; on the console only the notices, in a bare form, or the full
/// log too with `verbose`.
pub fn init_demo(log_file: &Path, verbose: bool) -> std::io::Result<()> {
    let file = Arc::new(std::fs::File::create(log_file)?);
    let to_file = layer_for(LogFormat::Text, false, false, file).with_filter(demo_filter());
    let console: BoxedLayer = if verbose {
        layer_for(LogFormat::Text, false, colours_on_stderr(), std::io::stderr)
    } else {
        Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stdout)
                .with_ansi(false)
                .without_time()
                .with_level(false)
                .with_target(false)
                .fmt_fields(format::debug_fn(|w, field, value| match field.name() {
                    "message" => write!(w, "{value:?}"),
                    _ => Ok(()),
                }))
                .with_filter(filter::Targets::new().with_target(NOTICE_TARGET, Level::INFO)),
        )
    };
    let console = console.with_filter(demo_filter());
    let layers: Vec<BoxedLayer> = vec![Box::new(to_file), Box::new(console)];
    Registry::default().with(layers).try_init().map_err(std::io::Error::other)
}

fn demo_filter() -> EnvFilter {
    filter("info").unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The text or JSON layer for one writer.
fn layer_for<W>(format: LogFormat, journald: bool, ansi: bool, writer: W) -> BoxedLayer
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi && !journald);
    match (format, journald) {
        (LogFormat::Text, false) => Box::new(base),
        (LogFormat::Text, true) => Box::new(base.without_time().map_event_format(SyslogPriority)),
        (LogFormat::Json, false) => Box::new(json(base)),
        (LogFormat::Json, true) => Box::new(json(base).without_time().map_event_format(SyslogPriority)),
    }
}

fn json<S, W>(
    layer: tracing_subscriber::fmt::Layer<S, format::DefaultFields, format::Format<format::Full>, W>,
) -> tracing_subscriber::fmt::Layer<S, format::JsonFields, format::Format<format::Json>, W> {
    layer.json().flatten_event(true).with_current_span(true).with_span_list(false)
}

/// Prefix each line with its syslog priority for journald (sd-daemon(3)).
struct SyslogPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// syslog(3) priorities: err, warning, info, debug.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_replaces_the_level_and_quiet_crates_stay_at_warn_unless_named() {
        assert_eq!(directives("debug", None), "debug,sqlx=warn,tokio_cron_scheduler=warn");
        assert_eq!(directives("info,sqlx=debug", None), "info,sqlx=debug,tokio_cron_scheduler=warn");
        assert_eq!(directives("info", Some("trace")), "trace,sqlx=warn,tokio_cron_scheduler=warn");
        assert_eq!(directives("info", Some(" ")), "info,sqlx=warn,tokio_cron_scheduler=warn");
    }

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!([Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE].map(priority), [3, 4, 6, 7, 7]);
    }
}
