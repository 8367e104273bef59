//! Judgments that must hold across restarts, partial failures and time: no
//! restart storm after a partition, no provider outage made of one instance's
//! errors, no attempt counted that sent nothing, verdicts held while the
//! provider is down. The real engine against the simulator, on SQLite and
//! PostgreSQL alike.

use wa_sentinel::domain::Health;
use wa_sentinel::providers::simulator::{Behaviour, SimEvent};
use wa_sentinel::store::Store;

use crate::it::supervisor::Rig;
use crate::on_both_backends;

on_both_backends!(a_provider_partition_longer_than_stale_webhook_after_restarts_no_session);

/// Silence is measured only while watched: after a partition of 30 minutes
/// (three times `stale_webhook_after`) the sessions found open are not
/// zombies; one that stays quiet is, a whole period after the partition ended.
async fn a_provider_partition_longer_than_stale_webhook_after_restarts_no_session(store: Store) {
    let rig = Rig::new(store, &[("a", Behaviour::Open), ("b", Behaviour::Open)], |r| {
        r.supervisor.down_after = 1;
        r.supervisor.stale_webhook_after = "10m".into();
    })
    .await;
    let url = rig.receiver().await;
    rig.cycle().await;
    for n in ["a", "b"] {
        rig.sim.post_webhook(n, SimEvent::MessagesUpsert, Some(&url)).await.unwrap();
    }
    wa_sentinel::server::flush(&rig.sup).await;
    rig.cycle().await;
    rig.sim.set_down(true);
    for _ in 0..30 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!(rig.notice_kinds().await, vec!["provider_unreachable"]);
    rig.sim.set_down(false);
    for _ in 0..3 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!((rig.restarts("a"), rig.restarts("b")), (0, 0), "no session restarted after the partition");
    assert_eq!(rig.health("a").await, Health::Connected);
    // a speaks again; b stays quiet for a whole watched period: b alone is a zombie.
    rig.sim.post_webhook("a", SimEvent::MessagesUpsert, Some(&url)).await.unwrap();
    wa_sentinel::server::flush(&rig.sup).await;
    for _ in 0..9 {
        rig.advance(1);
        rig.cycle().await;
    }
    assert_eq!((rig.restarts("a"), rig.restarts("b")), (0, 1));
}
