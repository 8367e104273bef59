//! systemd integration (`Type=notify`): `READY=1` once migrations ran and the
//! listener is bound, `STATUS=` summaries, `STOPPING=1` on shutdown, and
//! `WATCHDOG=1` only while the scheduler is ticking — a wedged scheduler stops
//! the pings and systemd restarts the process. A slow or hanging *provider* is
//! never a reason (rule 15, docs/rules.md): its pipeline is reported (`/readyz`,
//! `wa_sentinel_provider_cycle_seconds`, `wa_sentinel_provider_breaker_open`),
//! and only a process whose every running pipeline is stuck for 30 minutes,
//! with none finishing, stops the pings. Without `NOTIFY_SOCKET` every
//! call is a no-op.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::supervisor::scheduler::Ticks;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// Ping the watchdog at half its period while the scheduler ticked within
/// the period (or the process is younger than it).
pub fn spawn_watchdog(ticks: Arc<Ticks>, started_ms: i64, shutdown: CancellationToken) {
    let Some(period) = sd_notify::watchdog_enabled() else { return };
    let every = (period / 2).max(Duration::from_millis(100));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let now = crate::clock::now().0;
            let last = ticks.last_tick.load(Ordering::Relaxed).max(started_ms);
            let limit = period.as_millis() as i64;
            if ticks.wedged(now, crate::supervisor::scheduler::STALL_MS) {
                tracing::error!(
                    "every running poll cycle has been stuck for 30 minutes and none finished: withholding the ping"
                );
            } else if now - last <= limit {
                send(&[NotifyState::Watchdog]);
            } else {
                tracing::error!(since_ms = now - last, "scheduler is not ticking: withholding the watchdog ping");
            }
        }
    });
}
