//! Storage on SQLite and PostgreSQL: the same test bodies on both backends.

use std::collections::BTreeMap;

use wa_sentinel::domain::health::{Ctx, Observation};
use wa_sentinel::domain::{InstanceKey, Policy, ProviderStatus, Ts, WebhookSignal, step};
use wa_sentinel::store::{InstanceFilter, InstanceRecord, OutboxEntry, Store, StoreError};

use crate::on_both_backends;

on_both_backends!(
    a_retired_instance_keeps_its_history_and_its_name_gets_a_fresh_row,
    instances_are_inserted_and_rediscovered,
    state_and_outbox_commit_together,
    a_failure_rolls_back_state_and_outbox,
    a_stale_version_is_a_conflict_and_writes_nothing,
    outage_history_newest_first,
    last_restart_attempt_round_trips,
    outbox_claim_deliver_retry_dead,
    last_webhook_never_moves_backwards,
    migrations_are_current_and_idempotent,
    sessions_expire_and_belong_to_one_admin_token,
    availability_from_stored_outages_maintenance_and_provider_outages,
    action_requests_are_taken_once_and_expire,
    a_handed_over_notice_reaches_the_fallback_once_with_its_key,
    receipts_are_kept_by_the_claim_holder_and_deferred_rows_wait,
);

fn key() -> InstanceKey {
    InstanceKey::new("evo", "tenant_1_inst_1")
}

fn outbox_for(out: &wa_sentinel::domain::StepOutput) -> Vec<OutboxEntry> {
    out.notices()
        .map(|n| OutboxEntry {
            dedup_key: n.dedup_key.clone(),
            notifier: "ops".into(),
            kind: n.kind.as_str().into(),
            payload: serde_json::to_string(n).unwrap(),
        })
        .collect()
}

/// Step the stored instance once and commit; returns the fresh record.
async fn observe(store: &Store, at: i64, obs: Observation, id: &str) -> InstanceRecord {
    let rec = store.instance(&key()).await.unwrap().unwrap();
    let k = key();
    let ctx = Ctx { now: Ts(at), key: &k, tenant: &rec.tenant, new_id: id, may_recover: true, watching_since: Ts(0) };
    let out = step(&rec.state, obs, &ctx, &Policy { down_after: 1, ..Policy::default() });
    store.commit_step(&rec, &out, &outbox_for(&out), Ts(at)).await.unwrap();
    store.instance(&key()).await.unwrap().unwrap()
}

async fn instances_are_inserted_and_rediscovered(store: Store) {
    let mut labels = BTreeMap::new();
    labels.insert("plan".to_string(), "pro".to_string());
    let a = store.ensure_instance(&key(), "tenant_1", &labels, "config", None, Ts(1)).await.unwrap();
    assert_eq!(a.tenant, "tenant_1");
    assert_eq!(a.labels.get("plan").map(String::as_str), Some("pro"));
    assert_eq!(a.state.health.as_str(), "unknown");
    // Rediscovery is idempotent and keeps the id; a new mapping moves the tenant.
    let b = store.ensure_instance(&key(), "tenant_1", &labels, "config", None, Ts(2)).await.unwrap();
    assert_eq!(a.id, b.id);
    let c = store.ensure_instance(&key(), "tenant_9", &BTreeMap::new(), "discovered", None, Ts(3)).await.unwrap();
    assert_eq!(c.id, a.id);
    assert_eq!(c.tenant, "tenant_9");
    assert_eq!(c.source, "discovered");
    store
        .ensure_instance(&InstanceKey::new("evo", "other"), "unassigned", &BTreeMap::new(), "discovered", None, Ts(3))
        .await
        .unwrap();
    let all = store.instances(&InstanceFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let t9 = store.instances(&InstanceFilter { tenant: Some("tenant_9".into()), ..Default::default() }).await.unwrap();
    assert_eq!(t9.len(), 1);
}

/// A retired row keeps its history, and the same name seen again
/// starts with a fresh record — no inherited outage, budget or cooldown.
async fn a_retired_instance_keeps_its_history_and_its_name_gets_a_fresh_row(store: Store) {
    store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", Some("uuid-1"), Ts(0)).await.unwrap();
    let down =
        observe(&store, 1000, Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) }), "o1").await;
    assert_eq!(down.state.restart_attempts, 1);
    assert_eq!(down.provider_id.as_deref(), Some("uuid-1"));
    let k = key();
    let ctx =
        Ctx { now: Ts(2000), key: &k, tenant: &down.tenant, new_id: "x", may_recover: true, watching_since: Ts(0) };
    let out = step(&down.state, Observation::Retired, &ctx, &Policy::default());
    store.commit_step_and(&down, &out, &outbox_for(&out), Ts(2000), true, &[]).await.unwrap();
    assert!(store.instance(&key()).await.unwrap().is_none(), "a retired instance is not present");
    assert!(store.instances(&InstanceFilter::default()).await.unwrap().is_empty(), "nor listed, nor counted");
    let (health, open) = store.gauge_counts_of("evo").await.unwrap();
    assert!(health.is_empty() && open == 0, "{health:?} {open:?}");
    let history = store.outages(Some(&key()), false, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].recovered_by.as_deref(), Some("retired"));
    assert!(store.outages(None, true, 10).await.unwrap().is_empty(), "no outage left open");
    // One time format wherever a user reads JSON (`history --json`, `/api/outages`).
    let j = serde_json::to_value(&history[0]).unwrap();
    assert_eq!(j["started_at"], "1970-01-01T00:00:01Z");
    assert_eq!(j["ended_at"], "1970-01-01T00:00:02Z");

    let fresh = store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", Some("uuid-2"), Ts(3000)).await;
    let fresh = fresh.unwrap();
    assert_ne!(fresh.id, down.id, "a new row");
    assert!(fresh.state.outage.is_none());
    assert_eq!(fresh.state.restart_attempts, 0);
    assert_eq!(fresh.state.last_restart_attempt, None);
    assert_eq!(fresh.provider_id.as_deref(), Some("uuid-2"));
    assert_eq!(store.outages(Some(&key()), false, 10).await.unwrap().len(), 1, "the old history stays readable");
}

async fn state_and_outbox_commit_together(store: Store) {
    store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    let rec =
        observe(&store, 1000, Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) }), "o1").await;
    let o = rec.state.outage.as_ref().expect("outage stored and joined back");
    assert_eq!(o.id, "o1");
    assert!(o.down_notified);
    assert_eq!(o.restart_attempts, 1);
    assert_eq!(
        store.outbox_all().await.unwrap(),
        vec![("outage:o1:instance_down".into(), "ops".into(), "pending".into())]
    );
    // A replayed notice is not queued twice for the same notifier.
    let dup = OutboxEntry {
        dedup_key: "outage:o1:instance_down".into(),
        notifier: "ops".into(),
        kind: "instance_down".into(),
        payload: "{}".into(),
    };
    store.enqueue(&[dup.clone(), OutboxEntry { notifier: "mail".into(), ..dup }], Ts(2000)).await.unwrap();
    assert_eq!(store.outbox_all().await.unwrap().len(), 2, "same key, other notifier: its own row");
    let rec = observe(&store, 3000, Observation::Webhook(WebhookSignal::Alive), "o2").await;
    assert!(rec.state.outage.is_none());
    let hist = store.outages(Some(&key()), false, 10).await.unwrap();
    assert_eq!(hist[0].recovered_by.as_deref(), Some("webhook"));
    assert_eq!(hist[0].ended_at, Some(Ts(3000)));
    let events = store.events(&rec.id, 50).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"outage_opened") && kinds.contains(&"outage_closed") && kinds.contains(&"recovery_scheduled"),
        "{kinds:?}"
    );
}

async fn a_failure_rolls_back_state_and_outbox(store: Store) {
    store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    observe(&store, 1000, Observation::Polled(ProviderStatus::Disconnected { reason: None }), "dup").await;
    observe(&store, 2000, Observation::Polled(ProviderStatus::Connected), "x").await;
    let before = store.instance(&key()).await.unwrap().unwrap();
    let outbox_before = store.outbox_all().await.unwrap();
    // Opening a second outage with an id that already exists fails inside the
    // transaction, after the instance row was updated: everything must roll back.
    let k = key();
    let ctx =
        Ctx { now: Ts(3000), key: &k, tenant: "tenant_1", new_id: "dup", may_recover: true, watching_since: Ts(0) };
    let out = step(
        &before.state,
        Observation::Polled(ProviderStatus::LoggedOut { reason: Some(401) }),
        &ctx,
        &Policy::default(),
    );
    assert!(out.notices().count() > 0);
    let err = store.commit_step(&before, &out, &outbox_for(&out), Ts(3000)).await;
    assert!(matches!(err, Err(StoreError::Database(_))), "{err:?}");
    let after = store.instance(&key()).await.unwrap().unwrap();
    assert_eq!(after.version, before.version);
    assert_eq!(after.state, before.state);
    assert_eq!(store.outbox_all().await.unwrap(), outbox_before);
}

async fn a_stale_version_is_a_conflict_and_writes_nothing(store: Store) {
    store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    let stale = store.instance(&key()).await.unwrap().unwrap();
    observe(&store, 1000, Observation::Polled(ProviderStatus::Connected), "a").await;
    let k = key();
    let ctx = Ctx { now: Ts(2000), key: &k, tenant: "tenant_1", new_id: "b", may_recover: true, watching_since: Ts(0) };
    let out = step(&stale.state, Observation::Polled(ProviderStatus::NotFound), &ctx, &Policy::default());
    let err = store.commit_step(&stale, &out, &outbox_for(&out), Ts(2000)).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert!(store.outbox_all().await.unwrap().is_empty());
    assert!(store.outages(None, false, 10).await.unwrap().is_empty());
}

async fn outage_history_newest_first(store: Store) {
    store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    observe(&store, 1000, Observation::Polled(ProviderStatus::Disconnected { reason: None }), "first").await;
    observe(&store, 2000, Observation::Polled(ProviderStatus::Connected), "-").await;
    observe(&store, 3000, Observation::Polled(ProviderStatus::LoggedOut { reason: Some(401) }), "second").await;
    let all = store.outages(Some(&key()), false, 10).await.unwrap();
    assert_eq!(all.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), vec!["second", "first"]);
    assert_eq!(all[0].cause, "logged_out");
    assert_eq!(all[1].recovered_by.as_deref(), Some("restart"));
    let open = store.outages(None, true, 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].instance.as_deref(), Some("tenant_1_inst_1"));
    assert_eq!(open[0].tenant.as_deref(), Some("tenant_1"));
}

async fn last_restart_attempt_round_trips(store: Store) {
    store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    let rec = observe(
        &store,
        1_763_719_200_123,
        Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) }),
        "o",
    )
    .await;
    assert_eq!(rec.state.last_restart_attempt, Some(Ts(1_763_719_200_123)));
    assert_eq!(rec.state.restart_attempts, 1);
    let again = store.instance(&key()).await.unwrap().unwrap();
    assert_eq!(again.state, rec.state, "the whole state survives a round trip");
}

async fn outbox_claim_deliver_retry_dead(store: Store) {
    let e = |k: &str, n: &str| OutboxEntry {
        dedup_key: k.into(),
        notifier: n.into(),
        kind: "instance_down".into(),
        payload: "{}".into(),
    };
    store.enqueue(&[e("a", "ops"), e("b", "ops"), e("c", "ops"), e("d", "mail")], Ts(1000)).await.unwrap();
    let both = ["ops".to_string(), "mail".to_string()];
    let keys = |rows: &[wa_sentinel::store::OutboxRow]| rows.iter().map(|r| r.dedup_key.clone()).collect::<Vec<_>>();
    let hold = std::time::Duration::from_secs(60);
    let claimed = store.claim_outbox(Ts(1000), hold, 2, &both).await.unwrap();
    assert_eq!(keys(&claimed), vec!["a", "b"]);
    // c waits behind the older rows of its notifier while they are claimed; d does not.
    assert_eq!(keys(&store.claim_outbox(Ts(1001), hold, 10, &both).await.unwrap()), vec!["d"]);
    assert!(store.outbox_delivered(&claimed[0], Ts(1002)).await.unwrap());
    assert!(store.outbox_failed(&claimed[1], "503", Some(Ts(5000))).await.unwrap());
    assert!(
        store.claim_outbox(Ts(1003), hold, 10, &both).await.unwrap().is_empty(),
        "c must not overtake b while b waits for its retry"
    );
    let retry = store.claim_outbox(Ts(5000), hold, 10, &both).await.unwrap();
    assert_eq!(keys(&retry), vec!["b", "c"]);
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(retry[0].claim_token, retry[1].claim_token, "one token per claim");
    // A claimer only takes rows of the notifiers it knows.
    store.enqueue(&[e("x", "pager")], Ts(6000)).await.unwrap();
    assert!(store.claim_outbox(Ts(6000), hold, 10, &both).await.unwrap().is_empty());
    // The holder renews its lease from its own clock...
    let ids = [retry[0].id, retry[1].id];
    let tok = retry[0].claim_token.as_str();
    assert_eq!(store.outbox_renew_claim(tok, &ids, Ts(70_000)).await.unwrap().len(), 2);
    let ops = ["ops".to_string()];
    assert!(store.claim_outbox(Ts(69_000), hold, 10, &ops).await.unwrap().is_empty(), "renewed: still held");
    assert_eq!(store.outbox_release("not-the-token", &ids).await.unwrap(), 0, "only the holder releases");
    // ... and once the lease ran out, another claimer takes the rows over: the
    // stale holder can neither renew nor record an outcome.
    let taken = store.claim_outbox(Ts(70_001), hold, 10, &ops).await.unwrap();
    assert_eq!(keys(&taken), vec!["b", "c"]);
    assert_ne!(taken[0].claim_token, retry[0].claim_token);
    assert!(store.outbox_renew_claim(tok, &ids, Ts(80_000)).await.unwrap().is_empty());
    assert!(!store.outbox_delivered(&retry[0], Ts(70_002)).await.unwrap(), "a stale holder's write changes nothing");
    assert!(!store.outbox_failed(&retry[1], "late", None).await.unwrap());
    assert_eq!(store.outbox_count("delivered").await.unwrap(), 1);
    assert!(store.outbox_delivered(&taken[0], Ts(70_003)).await.unwrap());
    assert!(store.outbox_failed(&taken[1], "gone", None).await.unwrap());
    assert_eq!(store.outbox_count("delivered").await.unwrap(), 2);
    assert_eq!(store.outbox_count("dead").await.unwrap(), 1);
    assert_eq!(store.outbox_expire_unknown(&both, Ts(70_004)).await.unwrap(), 1, "the pager row is old and orphaned");
    assert_eq!(store.outbox_count("dead").await.unwrap(), 2);
}

async fn last_webhook_never_moves_backwards(store: Store) {
    let rec = store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    store.flush_last_webhooks(&[(rec.id.clone(), Ts(5000))]).await.unwrap();
    store.flush_last_webhooks(&[(rec.id.clone(), Ts(4000))]).await.unwrap();
    let r = store.instance(&key()).await.unwrap().unwrap();
    assert_eq!(r.state.last_webhook_at, Some(Ts(5000)));
    // A step computed from an older read does not drag it back either.
    let k = key();
    let ctx = Ctx { now: Ts(6000), key: &k, tenant: "tenant_1", new_id: "z", may_recover: true, watching_since: Ts(0) };
    let mut stale = rec.clone();
    stale.version = r.version;
    let out = step(&rec.state, Observation::Polled(ProviderStatus::Connected), &ctx, &Policy::default());
    store.commit_step(&stale, &out, &[], Ts(6000)).await.unwrap();
    assert_eq!(store.instance(&key()).await.unwrap().unwrap().state.last_webhook_at, Some(Ts(5000)));
    store.touch_health_checks(std::slice::from_ref(&r.id), Ts(7000)).await.unwrap();
    assert_eq!(store.instance(&key()).await.unwrap().unwrap().last_health_check, Some(Ts(7000)));
}

async fn migrations_are_current_and_idempotent(store: Store) {
    assert!(store.migrations_current().await.unwrap());
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

async fn sessions_expire_and_belong_to_one_admin_token(store: Store) {
    store.session_create("s1", "token-a", Ts(1000), Ts(5000)).await.unwrap();
    assert!(store.session_valid("s1", "token-a", Ts(4999)).await.unwrap());
    assert!(!store.session_valid("s1", "token-a", Ts(5000)).await.unwrap(), "expired");
    assert!(!store.session_valid("s1", "token-b", Ts(2000)).await.unwrap(), "another admin token");
    assert!(!store.session_valid("s2", "token-a", Ts(2000)).await.unwrap(), "unknown");
    // A sign-in with a rotated token clears the old token's sessions.
    store.session_create("s2", "token-b", Ts(2000), Ts(9000)).await.unwrap();
    assert!(store.session_valid("s2", "token-b", Ts(2001)).await.unwrap());
    assert_eq!(store.sessions_revoke_all().await.unwrap(), 1, "s1 went with the rotation");
    assert!(!store.session_valid("s2", "token-b", Ts(2002)).await.unwrap());
}

/// The report reads the stored history — the instance's own
/// outage, a maintenance window (from its audit events) and a provider outage
/// — and computes the same figures on both backends; filters by tenant and
/// provider; an instance created after the window is not in it.
async fn availability_from_stored_outages_maintenance_and_provider_outages(store: Store) {
    use wa_sentinel::domain::provider::{ProviderChange, ProviderOutage, ProviderState, ProviderStepOutput};
    use wa_sentinel::report::{ReportQuery, build};

    store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    observe(&store, 1000, Observation::Polled(ProviderStatus::Disconnected { reason: None }), "o1").await;
    observe(&store, 5000, Observation::Polled(ProviderStatus::Connected), "-").await;
    // Maintenance 10 s–20 s, ended early by an operator at 18 s.
    observe(&store, 10_000, Observation::Maintenance(Some(Ts(20_000))), "-").await;
    observe(&store, 18_000, Observation::Maintenance(None), "-").await;
    let outage = ProviderOutage {
        id: "p1".into(),
        started_at: Ts(30_000),
        reason: "unreachable".into(),
        notified: false,
        cause: wa_sentinel::domain::provider::ProviderCause::Unreachable,
        remediation_attempts: 0,
        exhausted_notified: false,
    };
    let opened = ProviderStepOutput {
        state: ProviderState { failed_cycles: 2, outage: Some(outage), ..ProviderState::default() },
        notices: vec![],
        remediate: None,
        changes: vec![ProviderChange::OutageOpened {
            id: "p1".into(),
            cause: wa_sentinel::domain::provider::ProviderCause::Unreachable,
            reason: "unreachable".into(),
        }],
    };
    store.commit_provider_step("evo", &opened, &[], Ts(30_000)).await.unwrap();
    let closed = ProviderStepOutput {
        state: ProviderState::default(),
        notices: vec![],
        remediate: None,
        changes: vec![ProviderChange::OutageClosed {
            id: "p1".into(),
            recovered_by: wa_sentinel::domain::notice::RecoveredBy::Poll,
        }],
    };
    store.commit_provider_step("evo", &closed, &[], Ts(35_000)).await.unwrap();
    // Another tenant's instance, first seen at 20 s, and one seen after the window.
    let other = InstanceKey::new("evo", "tenant_2_inst_1");
    store.ensure_instance(&other, "tenant_2", &BTreeMap::new(), "config", None, Ts(20_000)).await.unwrap();
    let later = InstanceKey::new("evo", "late");
    store.ensure_instance(&later, "tenant_2", &BTreeMap::new(), "config", None, Ts(50_000)).await.unwrap();

    let q = ReportQuery { from: Ts(0), to: Ts(40_000), tenant: None, provider: None };
    let r = build(&store, &q, Ts(60_000)).await.unwrap();
    let names: Vec<&str> = r.instances.iter().map(|i| i.instance.as_str()).collect();
    assert_eq!(names, vec!["tenant_1_inst_1", "tenant_2_inst_1"], "`late` did not exist in the window");
    let a = &r.instances[0].figures;
    assert_eq!((a.observed_ms, a.down_ms, a.maintenance_ms, a.provider_down_ms), (40_000, 4000, 8000, 5000));
    assert_eq!(a.connected_ms, 40_000 - 4000 - 8000 - 5000);
    assert_eq!((a.outages, a.provider_outages, a.mttr_ms, a.longest_outage_ms), (1, 1, Some(4000), Some(4000)));
    assert!((a.availability.unwrap() - 23_000.0 / 32_000.0).abs() < 1e-12);
    let b = &r.instances[1].figures;
    assert_eq!((b.observed_ms, b.down_ms, b.provider_down_ms), (20_000, 0, 5000), "created inside the window");
    assert_eq!(r.tenants.len(), 2);
    assert_eq!(r.total.observed_ms, 60_000);
    assert_eq!(r.total.down_ms, 4000);

    let only = ReportQuery { tenant: Some("tenant_2".into()), ..q.clone() };
    let r2 = build(&store, &only, Ts(60_000)).await.unwrap();
    assert_eq!(r2.instances.len(), 1);
    assert_eq!(r2.instances[0].figures, *b, "the same figures, filtered or not");
    let none = ReportQuery { provider: Some("other".into()), ..q };
    assert!(build(&store, &none, Ts(60_000)).await.unwrap().instances.is_empty());
    // The JSON shape (README, "Availability reports").
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["version"], 1);
    assert_eq!(j["from"], "1970-01-01T00:00:00Z");
    assert_eq!(j["instances"][0]["down_ms"], 4000);
    assert_eq!(j["instances"][0]["tenant"], "tenant_1");
    assert_eq!(j["tenants"][1]["instances"], 1);
    assert!(j["instances"][0].get("recovered").is_none());
}

/// Requests recorded for a provider's leader are taken once,
/// oldest first, per provider; one left too long expires instead.
async fn action_requests_are_taken_once_and_expire(store: Store) {
    use wa_sentinel::store::ActionRequest;
    let rec = store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    let req = |id: &str, at: i64, provider: &str| ActionRequest {
        id: id.into(),
        instance_id: rec.id.clone(),
        provider: provider.into(),
        action: "restart".into(),
        force: id == "b",
        actor: "status page".into(),
        address: "10.0.0.1".into(),
        requested_at: at,
    };
    for r in [req("stale", 100, "evo"), req("b", 2000, "evo"), req("a", 1000, "evo"), req("c", 1500, "other")] {
        store.request_action(&r).await.unwrap();
    }
    let taken = store.take_action_requests("evo", Ts(3000), Ts(500)).await.unwrap();
    assert_eq!(taken, vec![req("a", 1000, "evo"), req("b", 2000, "evo")], "oldest first; the stale one expired");
    assert!(store.take_action_requests("evo", Ts(3100), Ts(500)).await.unwrap().is_empty(), "taken once");
    store.finish_action_request("a", "done", "sent", Ts(3200)).await.unwrap();
    assert_eq!(store.take_action_requests("other", Ts(3300), Ts(500)).await.unwrap().len(), 1, "per provider");
}

/// A notice the ops instance cannot deliver is handed to the fallback in one
/// transaction: its own row says so (and never goes out again), the fallback
/// gets a row with the same dedup key, once however often it is handed over,
/// and the fallback counts among the notifiers told about the outage.
async fn a_handed_over_notice_reaches_the_fallback_once_with_its_key(store: Store) {
    let e = |k: &str, n: &str| OutboxEntry {
        dedup_key: k.into(),
        notifier: n.into(),
        kind: "instance_down".into(),
        payload: "{\"x\":1}".into(),
    };
    // Outage o1 exists (opened by a logout, its notice queued for `ops`).
    store.ensure_instance(&key(), "tenant_1", &BTreeMap::new(), "config", None, Ts(0)).await.unwrap();
    observe(&store, 500, Observation::Polled(ProviderStatus::LoggedOut { reason: Some(401) }), "o1").await;
    store.enqueue(&[e("outage:o1:instance_down", "wa"), e("outage:o2:instance_down", "wa")], Ts(1000)).await.unwrap();
    let hold = std::time::Duration::from_secs(60);
    let rows = store.claim_outbox(Ts(1000), hold, 10, &["wa".to_string()]).await.unwrap();
    assert_eq!(rows.len(), 2);
    let why = "handed to fallback mail: the ops instance is in an outage (logged_out)";
    assert!(store.outbox_hand_over(&rows[0], "mail", why, Ts(1001)).await.unwrap());
    assert!(!store.outbox_hand_over(&rows[0], "mail", why, Ts(1002)).await.unwrap(), "once: the row is settled");
    let all = store.outbox_rows().await.unwrap();
    let wa = all.iter().find(|r| r.notifier == "wa" && r.dedup_key == "outage:o1:instance_down").unwrap();
    assert_eq!((wa.status.as_str(), wa.last_error.as_deref()), ("handed_over", Some(why)));
    let mail: Vec<_> = all.iter().filter(|r| r.notifier == "mail").collect();
    assert_eq!(mail.len(), 1);
    assert_eq!((mail[0].dedup_key.as_str(), mail[0].status.as_str()), ("outage:o1:instance_down", "pending"));
    assert_eq!(store.notifiers_told("o1").await.unwrap(), vec!["mail", "ops", "wa"]);
    // The fallback already had the notice of its own: handing it over adds nothing.
    store.enqueue(&[e("outage:o2:instance_down", "mail")], Ts(1000)).await.unwrap();
    assert!(store.outbox_hand_over(&rows[1], "mail", why, Ts(1003)).await.unwrap());
    assert_eq!(store.outbox_rows().await.unwrap().iter().filter(|r| r.notifier == "mail").count(), 2);
    let fallback = store.claim_outbox(Ts(1003), hold, 10, &["mail".to_string()]).await.unwrap();
    assert_eq!(fallback.iter().map(|r| r.payload.as_str()).collect::<Vec<_>>(), ["{\"x\":1}", "{\"x\":1}"]);
}

/// The `whatsapp` notifier's receipts (message ids per recipient) are written
/// only by the claim's holder and come back with the next claim; deferred
/// rows (a digest window) wait without an attempt counted, and hold the
/// notifier's later rows behind them.
async fn receipts_are_kept_by_the_claim_holder_and_deferred_rows_wait(store: Store) {
    let e = |k: &str| OutboxEntry {
        dedup_key: k.into(),
        notifier: "wa".into(),
        kind: "instance_down".into(),
        payload: "{}".into(),
    };
    store.enqueue(&[e("a"), e("b")], Ts(1000)).await.unwrap();
    let hold = std::time::Duration::from_secs(60);
    let wa = ["wa".to_string()];
    let rows = store.claim_outbox(Ts(1000), hold, 10, &wa).await.unwrap();
    assert!(rows.iter().all(|r| r.receipts.is_none()));
    let r = r#"{"5511988887777":{"id":"3EB0","sent_at":1001}}"#;
    let tok = rows[0].claim_token.clone();
    assert_eq!(store.outbox_set_receipts("not-the-token", &[(rows[0].id, r.into())]).await.unwrap(), 0);
    assert_eq!(store.outbox_set_receipts(&tok, &[(rows[0].id, r.into())]).await.unwrap(), 1);
    assert_eq!(store.outbox_defer(&tok, &[rows[0].id, rows[1].id], Ts(6000)).await.unwrap(), 2);
    store.enqueue(&[e("c")], Ts(2000)).await.unwrap();
    assert!(store.claim_outbox(Ts(5999), hold, 10, &wa).await.unwrap().is_empty(), "deferred, and c waits behind");
    let again = store.claim_outbox(Ts(6000), hold, 10, &wa).await.unwrap();
    assert_eq!(again.iter().map(|r| r.dedup_key.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(again[0].receipts.as_deref(), Some(r));
    assert_eq!(again[0].attempts, 0, "a deferral is not an attempt");
}
