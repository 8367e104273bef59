//! Every series wa-sentinel exports on `/metrics`, with its help text and
//! unit: Prometheus shows `# HELP` per family, `promtool check metrics` (run
//! in CI on a live daemon's output) requires it, and the alert rules and the
//! dashboard in `contrib/` are checked against exactly these names.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Rendered as a Prometheus summary (quantiles, `_sum`, `_count`).
    Seconds,
}

/// (name, kind, help) of every exported family.
pub const SERIES: &[(&str, Kind, &str)] = &[
    (
        "wa_sentinel_ready",
        Kind::Gauge,
        "1 when /readyz answers 200 (database reachable, migrations current, scheduler ticking), else 0.",
    ),
    (
        "wa_sentinel_provider_up",
        Kind::Gauge,
        "1 when the provider's last poll cycle reached it (state ok, or silent: answering but posting no webhooks), 0 when it was unreachable, unauthorized, unlicensed or answered nonsense.",
    ),
    (
        "wa_sentinel_provider_silent",
        Kind::Gauge,
        "1 while the provider answers polls but no webhook from any of its instances arrives (a provider_silent outage), else 0.",
    ),
    ("wa_sentinel_instances", Kind::Gauge, "Supervised instances by provider and health."),
    ("wa_sentinel_outages_open", Kind::Gauge, "Open (unrecovered) instance outages by provider."),
    ("wa_sentinel_tenant_source_up", Kind::Gauge, "1 when the last read of the tenant source ([tenants]) worked."),
    (
        "wa_sentinel_tenant_source_rows",
        Kind::Gauge,
        "Instance → tenant mappings in the last good read of the tenant source.",
    ),
    (
        "wa_sentinel_tenant_source_errors_total",
        Kind::Counter,
        "Failed reads of the tenant source (the last good mapping stays in force).",
    ),
    (
        "wa_sentinel_instances_need_person",
        Kind::Gauge,
        "Open outages only a person can end (logged out, waiting for a QR scan, unknown state, deleted), by provider.",
    ),
    ("wa_sentinel_outbox_pending", Kind::Gauge, "Notices waiting for delivery in the outbox."),
    (
        "wa_sentinel_provider_breaker_open",
        Kind::Gauge,
        "1 while the provider's circuit breaker holds its instances (no answers), else 0.",
    ),
    ("wa_sentinel_polls_total", Kind::Counter, "Status polls by provider and result."),
    ("wa_sentinel_restarts_total", Kind::Counter, "Recovery calls (restart/reconnect) by provider and result."),
    ("wa_sentinel_webhook_repairs_total", Kind::Counter, "Webhook configs re-applied on a provider."),
    (
        "wa_sentinel_webhooks_received_total",
        Kind::Counter,
        "Authenticated webhooks by provider and event (known event names; anything else is `other`).",
    ),
    (
        "wa_sentinel_webhooks_rejected_total",
        Kind::Counter,
        "Webhooks answered with an error or not processed, by reason.",
    ),
    (
        "wa_sentinel_notifications_total",
        Kind::Counter,
        "Notice deliveries by notifier, kind and result (delivered, retry, dead, handed_over: to the notifier's fallback).",
    ),
    (
        "wa_sentinel_ticks_skipped_total",
        Kind::Counter,
        "Scheduler ticks skipped because the previous run of the job (per provider for polls) was still going.",
    ),
    ("wa_sentinel_poll_duration_seconds", Kind::Seconds, "Duration of one instance's status poll."),
    ("wa_sentinel_poll_cycle_seconds", Kind::Seconds, "Duration of one provider's poll cycle (any provider)."),
    ("wa_sentinel_provider_cycle_seconds", Kind::Seconds, "Duration of one poll cycle, per provider."),
    (
        "wa_sentinel_provider_info",
        Kind::Gauge,
        "1 for the version the provider last reported (Evolution GET /, WAHA /api/server/version), 0 for an earlier one.",
    ),
    (
        "wa_sentinel_remediations_total",
        Kind::Counter,
        "Runs of a provider's remediation command by provider and result (ok, failed, timeout).",
    ),
];

/// Register the help texts with the installed recorder (once per process).
pub fn describe() {
    for &(name, kind, help) in SERIES {
        match kind {
            Kind::Counter => describe_counter!(name, help),
            Kind::Gauge => describe_gauge!(name, help),
            Kind::Seconds => describe_histogram!(name, Unit::Seconds, help),
        }
    }
}

/// The family a sample name belongs to (`x_sum`, `x_count` → `x` for
/// summaries), if it is one of ours.
pub fn family_of(sample: &str) -> Option<&'static str> {
    SERIES.iter().map(|s| s.0).find(|name| {
        sample == *name || sample.strip_prefix(name).is_some_and(|rest| rest == "_sum" || rest == "_count")
    })
}
