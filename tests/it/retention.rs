//! Retention never deletes what a decision or a report still needs: the
//! recipients of an open outage's closing notice and the maintenance windows
//! are kept outside the rows retention prunes. On SQLite and PostgreSQL, plus
//! a property test over random histories on SQLite.

use std::time::Duration;

use proptest::prelude::*;
use wa_sentinel::domain::health::{Ctx, Observation};
use wa_sentinel::domain::{InstanceKey, Policy, ProviderStatus, Ts, step};
use wa_sentinel::report::{self, ReportQuery};
use wa_sentinel::sim::evolution::Behaviour;
use wa_sentinel::store::{OutboxEntry, Store};

use crate::it::supervisor::Rig;
use crate::on_both_backends;

const DAY: i64 = 86_400_000;

on_both_backends!(
    a_report_inside_the_kept_period_is_the_same_after_retention,
    an_outage_open_past_retention_still_gets_its_closing_notice,
);

fn key() -> InstanceKey {
    InstanceKey::new("evo", "inst")
}

/// Step the stored instance once and commit, its notices to `ops`.
async fn observe(store: &Store, at: i64, obs: Observation, id: &str) {
    let rec = store.instance(&key()).await.unwrap().unwrap();
    let k = key();
    let ctx = Ctx { now: Ts(at), key: &k, tenant: &rec.tenant, new_id: id, may_recover: true, watching_since: Ts(0) };
    let out = step(&rec.state, obs, &ctx, &Policy { down_after: 1, ..Policy::default() });
    let outbox: Vec<OutboxEntry> = out
        .notices()
        .map(|n| OutboxEntry {
            dedup_key: n.dedup_key.clone(),
            notifier: "ops".into(),
            kind: n.kind.as_str().into(),
            payload: serde_json::to_string(n).unwrap(),
        })
        .collect();
    store.commit_step(&rec, &out, &outbox, Ts(at)).await.unwrap();
}

async fn report_json(store: &Store, from: i64, to: i64) -> String {
    let q = ReportQuery { from: Ts(from), to: Ts(to), tenant: None, provider: None };
    let r = report::build(store, &q, Ts(to)).await.unwrap();
    serde_json::to_string(&(r.instances, r.tenants, r.total)).unwrap()
}

/// A maintenance that began before the retention cut keeps its part inside
/// the report's window: an outage during it still costs nothing (it read as
/// 5 days down, availability 0.83, before).
async fn a_report_inside_the_kept_period_is_the_same_after_retention(store: Store) {
    store.ensure_instance(&key(), "t", &Default::default(), "config", None, Ts(0)).await.unwrap();
    observe(&store, 0, Observation::Polled(ProviderStatus::Connected), "o0").await;
    observe(&store, DAY / 24, Observation::Maintenance(Some(Ts(10 * DAY))), "m").await;
    observe(&store, DAY, Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) }), "o1").await;
    observe(&store, 10 * DAY + DAY / 24, Observation::Polled(ProviderStatus::Connected), "o2").await;
    let (from, to) = (5 * DAY, 35 * DAY);
    let before = report_json(&store, from, to).await;
    assert!(before.contains("\"maintenance_ms\":432000000"), "five days of the window in maintenance: {before}");
    store.prune(Ts(from)).await.unwrap();
    assert_eq!(report_json(&store, from, to).await, before);
}

/// A logged-out instance left alone for longer than retention, then deleted:
/// its closing notice (`instance_retired`) still reaches whoever was told of
/// its start, though the outbox rows of that start were pruned.
async fn an_outage_open_past_retention_still_gets_its_closing_notice(store: Store) {
    let rig = Rig::new(store, &[("lo", Behaviour::LoggedOut), ("ok", Behaviour::Open)], |r| {
        r.supervisor.retention = "30d".into();
    })
    .await;
    rig.cycle().await;
    assert_eq!(rig.notice_kinds().await, vec!["instance_logged_out"]);
    // Delivered, then left alone for a month: retention prunes the delivered row.
    let notifiers: Vec<String> = rig.sup.config().notifiers.iter().map(|n| n.name.clone()).collect();
    let now = Ts(rig.clock.load(std::sync::atomic::Ordering::SeqCst));
    for row in rig.store.claim_outbox(now, Duration::from_secs(30), 10, &notifiers).await.unwrap() {
        rig.store.outbox_delivered(&row, now).await.unwrap();
    }
    rig.advance(31 * 24 * 60);
    rig.sup.prune().await.unwrap();
    assert!(rig.notice_kinds().await.is_empty(), "the delivered notice was pruned");
    rig.sim.remove_instance("lo");
    for _ in 0..4 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.notice_kinds().await, vec!["instance_retired"], "told whoever heard of the logout");
}

/// What one random history does to the instance.
#[derive(Debug, Clone)]
enum Op {
    Open,
    Close,
    MaintenanceFor(i64),
    MaintenanceOff,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Open),
        3 => Just(Op::Close),
        1 => (1i64..20).prop_map(Op::MaintenanceFor),
        1 => Just(Op::MaintenanceOff),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// For any history and any retention cut, the report of a window inside
    /// the kept period does not change.
    #[test]
    fn retention_never_changes_a_report_inside_the_kept_period(
        ops in proptest::collection::vec((op(), 1i64..5), 1..25),
        cut in 0i64..60,
        len in 1i64..40,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let db = crate::it::common::TestDb::sqlite().await;
            let store = db.store.clone();
            store.ensure_instance(&key(), "t", &Default::default(), "config", None, Ts(0)).await.unwrap();
            let mut t = 0;
            for (i, (o, gap)) in ops.iter().enumerate() {
                t += gap * DAY;
                let obs = match o {
                    Op::Open => Observation::Polled(ProviderStatus::Connected),
                    Op::Close => Observation::Polled(ProviderStatus::Disconnected { reason: Some(428) }),
                    Op::MaintenanceFor(d) => Observation::Maintenance(Some(Ts(t + d * DAY))),
                    Op::MaintenanceOff => Observation::Maintenance(None),
                };
                observe(&store, t, obs, &format!("id{i}")).await;
            }
            let (from, to) = (cut * DAY, (cut + len) * DAY);
            let before = report_json(&store, from, to).await;
            store.prune(Ts(from)).await.unwrap();
            assert_eq!(report_json(&store, from, to).await, before, "cut at day {cut}");
        });
    }
}
