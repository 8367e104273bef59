//! The event stream a SaaS application follows to keep its own `status`
//! column true: every health transition, outage opened or closed, maintenance
//! on or off and tenant change — not only the once-per-outage notices people
//! get. [`of_step`] derives a committed step's events (pure); the store
//! numbers them in commit order in the same transaction; subscribers get them
//! pushed through the outbox, and `GET /api/events` lets anyone pull them.

use super::health::{Change, InstanceState};
use super::{Health, InstanceKey, Ts};

/// The kinds of events, as the `event` field and the `events` filter of a
/// subscriber name them.
pub const KINDS: [&str; 6] =
    ["health_changed", "outage_opened", "outage_closed", "maintenance_on", "maintenance_off", "tenant_changed"];

/// One event, before the store numbers it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StreamEvent {
    pub event: &'static str,
    pub provider: String,
    pub instance: String,
    pub tenant: String,
    /// health_changed: the health before and after; tenant_changed: the
    /// tenant before and after.
    pub from: Option<String>,
    pub to: Option<String>,
    /// The open outage's cause (health_changed, outage_*), else `None`.
    pub cause: Option<String>,
    pub reason: Option<String>,
    pub outage_id: Option<String>,
    /// outage_closed: how it ended.
    pub recovered_by: Option<String>,
    /// maintenance_on: until when.
    pub until: Option<String>,
    #[serde(serialize_with = "rfc3339")]
    pub at: Ts,
}

fn rfc3339<S: serde::Serializer>(t: &Ts, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.rfc3339_millis())
}

impl StreamEvent {
    fn new(event: &'static str, key: &InstanceKey, tenant: &str, at: Ts) -> StreamEvent {
        StreamEvent {
            event,
            provider: key.provider.clone(),
            instance: key.name.clone(),
            tenant: tenant.to_string(),
            from: None,
            to: None,
            cause: None,
            reason: None,
            outage_id: None,
            recovered_by: None,
            until: None,
            at,
        }
    }

    /// The JSON a subscriber receives or `GET /api/events` returns, with its
    /// sequence number.
    pub fn json(&self, seq: i64) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("an event serialises");
        v["seq"] = serde_json::json!(seq);
        v
    }

    /// A tenant change of an instance.
    pub fn tenant_changed(key: &InstanceKey, from: &str, to: &str, source: &str, at: Ts) -> StreamEvent {
        StreamEvent {
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            reason: Some(format!("tenant from {source}")),
            ..StreamEvent::new("tenant_changed", key, to, at)
        }
    }
}

/// The events of one committed step of an instance: `state` is the state
/// after it, `prev_outage` the outage open before it (a closing step no
/// longer has it in `state`).
pub fn of_step(
    changes: &[Change],
    state: &InstanceState,
    prev_cause: Option<&str>,
    key: &InstanceKey,
    tenant: &str,
    at: Ts,
) -> Vec<StreamEvent> {
    let cause = state.outage.as_ref().map(|o| o.cause.as_str().to_string()).or(prev_cause.map(str::to_string));
    let outage_id = state.outage.as_ref().map(|o| o.id.clone());
    let mut out = Vec::new();
    for c in changes {
        match c {
            Change::HealthChanged { from, to, reason } => out.push(StreamEvent {
                from: Some(from.as_str().to_string()),
                to: Some(to.as_str().to_string()),
                cause: if *to == Health::Connected { None } else { cause.clone() },
                reason: Some(reason.clone()),
                outage_id: outage_id.clone(),
                ..StreamEvent::new("health_changed", key, tenant, at)
            }),
            Change::OutageOpened { id, cause } => out.push(StreamEvent {
                cause: Some(cause.as_str().to_string()),
                reason: state.outage.as_ref().map(|o| o.reason.clone()),
                outage_id: Some(id.clone()),
                ..StreamEvent::new("outage_opened", key, tenant, at)
            }),
            Change::OutageClosed { id, recovered_by } => out.push(StreamEvent {
                cause: prev_cause.map(str::to_string),
                outage_id: Some(id.clone()),
                recovered_by: Some(recovered_by.as_str().to_string()),
                ..StreamEvent::new("outage_closed", key, tenant, at)
            }),
            Change::MaintenanceSet { until: Some(u) } => out
                .push(StreamEvent { until: Some(u.rfc3339()), ..StreamEvent::new("maintenance_on", key, tenant, at) }),
            Change::MaintenanceSet { until: None } => out.push(StreamEvent::new("maintenance_off", key, tenant, at)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::{Ctx, Observation, step};
    use crate::domain::{Policy, ProviderStatus};

    #[test]
    fn a_drop_and_its_recovery_are_a_health_change_and_an_outage_each_way() {
        let key = InstanceKey::new("evo", "tenant_2_inst_1");
        let p = Policy { down_after: 1, ..Policy::default() };
        let s0 = InstanceState::new(Ts(0));
        let ctx = |now, id| Ctx {
            now: Ts(now),
            key: &key,
            tenant: "tenant_2",
            new_id: id,
            may_recover: true,
            watching_since: Ts(0),
        };
        let up = step(&s0, Observation::Polled(ProviderStatus::Connected), &ctx(1, "a"), &p);
        let down =
            step(&up.state, Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) }), &ctx(2, "o1"), &p);
        let ev = of_step(&down.changes, &down.state, None, &key, "tenant_2", Ts(2));
        let names: Vec<&str> = ev.iter().map(|e| e.event).collect();
        assert_eq!(names, vec!["health_changed", "outage_opened"]);
        assert_eq!(
            (ev[0].from.as_deref(), ev[0].to.as_deref(), ev[0].cause.as_deref()),
            (Some("connected"), Some("disconnected"), Some("disconnected"))
        );
        assert_eq!(ev[1].outage_id.as_deref(), Some("o1"));
        let back = step(&down.state, Observation::Polled(ProviderStatus::Connected), &ctx(3, "x"), &p);
        let ev = of_step(&back.changes, &back.state, Some("disconnected"), &key, "tenant_2", Ts(3));
        let names: Vec<&str> = ev.iter().map(|e| e.event).collect();
        assert_eq!(names, vec!["health_changed", "outage_closed"]);
        assert_eq!(ev[1].recovered_by.as_deref(), Some("restart"));
        let json = ev[1].json(7);
        assert_eq!(json["seq"], 7);
        assert_eq!(json["at"], "1970-01-01T00:00:00.003Z");
        assert_eq!(json["cause"], "disconnected");
    }
}
