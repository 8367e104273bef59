//! Upgrades keep the data. A database as the first release left it (migration
//! 0001 only, seeded from `tests/fixtures/upgrade/0001-seed.sql`: instances,
//! open outages, notices still pending) is taken over by the current binary,
//! which applies whatever migrations exist now and runs its cycles: nothing
//! is lost, the pending notices are delivered, the open outage goes on and
//! closes with its own recovery notice. Migrations are forward-only: the
//! released 0001 is pinned by checksum.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use wa_sentinel::domain::{Health, InstanceKey};
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::store::{InstanceFilter, Store};

use crate::it::common::{idempotency_keys, ok_sink, postgres_schema};
use crate::it::process::{Daemon, daemon_config};

const OPEN_OUTAGE: &str = "01938a00-0000-7000-8000-0000000000c1";
const LOGGED_OUT_OUTAGE: &str = "01938a00-0000-7000-8000-0000000000c2";
const CLOSED_OUTAGE: &str = "01938a00-0000-7000-8000-0000000000c0";

/// SHA-384 of the released `0001_initial.sql` files, as sqlx records them in
/// `_sqlx_migrations`. Editing a released migration makes every installed
/// database refuse to start ("previously applied but has been modified"):
/// change the schema with a new numbered migration instead.
const RELEASED_0001: [(&str, &str); 2] = [
    ("sqlite", "49a577ee6928ba9a698940e58f58fea1c4cc4a2bd482cdf27459aa192bbf58e46e6f1331a199c6861f584ce873556753"),
    ("postgres", "d5d0db97b9ad2af23ae5743e4782dd3680e1d1558bc3b9045c7f0097f4b6c7ba3674d95b21aef261392036a18753b8ab"),
];

fn migrations_dir(backend: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend)
}

/// The seed with `NOW` replaced by the current time (pending notices must be
/// younger than `alerts.delivery_max_age`, or the worker would give up on them).
fn seed() -> String {
    let sql = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upgrade/0001-seed.sql"))
        .expect("read the 0001 seed");
    let now = wa_sentinel::clock::now();
    let until = wa_sentinel::domain::Ts(now.0 - 86_400_000).rfc3339();
    sql.replace("MAINT_UNTIL", &until).replace("NOW", &now.0.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database_of_the_first_release_upgrades_without_losing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/old.db", dir.path().display());
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    Migrator::new(migrations_dir("sqlite")).await.unwrap().run_to(1, &pool).await.expect("apply 0001");
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed())).execute(&pool).await.expect("load the seed");
    pool.close().await;
    upgrade_and_run(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database_of_the_first_release_upgrades_without_losing_anything() {
    let Some(url) = postgres_schema().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    Migrator::new(migrations_dir("postgres")).await.unwrap().run_to(1, &pool).await.expect("apply 0001");
    sqlx::raw_sql(sqlx::AssertSqlSafe(seed())).execute(&pool).await.expect("load the seed");
    pool.close().await;
    upgrade_and_run(dir.path(), &url).await;
}

/// Start the current binary on the old database: it migrates at start-up,
/// then polls and delivers.
async fn upgrade_and_run(dir: &std::path::Path, url: &str) {
    let sim = Simulator::start(SimOptions {
        instances: vec![
            ("shop-main".into(), Behaviour::Open),
            // Came back while wa-sentinel was being upgraded.
            ("drop-1".into(), Behaviour::Open),
            ("logged-out-1".into(), Behaviour::LoggedOut),
        ],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let sink = ok_sink().await;
    let instances = r#"
[[instances]]
provider = "evo"
name = "shop-main"
tenant = "tenant_a"
labels = { plan = "pro" }
[[instances]]
provider = "evo"
name = "drop-1"
tenant = "tenant_a"
[[instances]]
provider = "evo"
name = "logged-out-1"
tenant = "tenant_b"
"#;
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, daemon_config(url, 0, &sim, &sink.uri(), "*/1 * * * * *", instances)).unwrap();

    let mut daemon = Daemon::spawn(&cfg, &[]);
    let want = [
        format!("outage:{OPEN_OUTAGE}:instance_down"),
        format!("outage:{LOGGED_OUT_OUTAGE}:instance_logged_out"),
        format!("outage:{OPEN_OUTAGE}:instance_recovered"),
    ];
    for _ in 0..300 {
        let keys = idempotency_keys(&sink).await;
        if want.iter().all(|k| keys.contains(k)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A few more cycles: nothing else may arrive (no repeat, no old notice again).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let keys = idempotency_keys(&sink).await;
    daemon.kill9();
    let log = std::fs::read_to_string(cfg.with_extension("log")).unwrap_or_default();
    let mut sorted = keys.clone();
    sorted.sort();
    let mut expected = want.to_vec();
    expected.sort();
    assert_eq!(sorted, expected, "exactly the pending notices and the recovery, once each; daemon log:\n{log}");
    let pos = |k: &str| keys.iter().position(|x| x == k).unwrap();
    assert!(pos(&want[0]) < pos(&want[2]), "the pending down notice goes out before its recovery: {keys:?}");

    let store = Store::connect(url, 2).await.unwrap();
    assert!(store.migrations_current().await.unwrap(), "every current migration applied");
    let all = store.instances(&InstanceFilter { include_absent: true, ..Default::default() }).await.unwrap();
    let by_name: BTreeMap<_, _> = all.iter().map(|r| (r.key.name.as_str(), r)).collect();
    assert_eq!(by_name.keys().copied().collect::<Vec<_>>(), ["drop-1", "gone-1", "logged-out-1", "shop-main"]);
    assert_eq!(by_name["shop-main"].tenant, "tenant_a");
    assert_eq!(by_name["shop-main"].labels.get("plan").map(String::as_str), Some("pro"));
    assert_eq!(by_name["logged-out-1"].tenant, "tenant_b");
    assert_eq!(by_name["drop-1"].state.health, Health::Connected);
    assert_eq!(by_name["logged-out-1"].state.health, Health::LoggedOut);
    assert_eq!(
        by_name["logged-out-1"].state.outage.as_ref().map(|o| o.id.as_str()),
        Some(LOGGED_OUT_OUTAGE),
        "the logout outage stays open, the same one"
    );

    let outages = store.outages(None, false, 50).await.unwrap();
    let outage = |id: &str| outages.iter().find(|o| o.id == id).unwrap_or_else(|| panic!("outage {id} lost"));
    assert!(outage(CLOSED_OUTAGE).ended_at.is_some(), "history kept");
    assert!(outage(OPEN_OUTAGE).ended_at.is_some(), "the open outage went on and closed");
    assert!(outage(LOGGED_OUT_OUTAGE).ended_at.is_none());
    assert_eq!(outages.len(), 3, "no outage opened twice: {outages:?}");

    let drop_1 = store.instance(&InstanceKey::new("evo", "drop-1")).await.unwrap().unwrap();
    let events = store.events(&drop_1.id, 100).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "recovery_result" && e.detail.contains("\"reconnect\"")),
        "the seeded events are kept: {events:?}"
    );
    // History stays honest across the upgrade: the instance the first release
    // marked absent retired when it was last seen (a day after its creation),
    // not "up until now"; shop-main's maintenance window is read from its event.
    let now = wa_sentinel::clock::now();
    let q = wa_sentinel::report::ReportQuery {
        from: wa_sentinel::domain::Ts(now.0 - 3 * 86_400_000),
        to: now,
        tenant: None,
        provider: None,
    };
    let r = wa_sentinel::report::build(&store, &q, now).await.unwrap();
    let line = |n: &str| r.instances.iter().find(|i| i.instance == n).unwrap_or_else(|| panic!("{n} in the report"));
    let gone = line("gone-1");
    assert!(!gone.present);
    assert_eq!(gone.figures.observed_ms, 86_400_000, "from its creation to its last sighting");
    // (`until` is stored to the second.)
    let maintenance = line("shop-main").figures.maintenance_ms;
    assert!(
        (86_399_000..=86_400_000).contains(&maintenance),
        "its maintenance window survived the upgrade: {maintenance}"
    );
    assert_eq!(store.outbox_count("pending").await.unwrap(), 0);
    assert_eq!(store.outbox_count("delivered").await.unwrap(), 5, "2 old + 2 pending + 1 recovery");
}

#[tokio::test]
async fn migrations_are_forward_only_and_the_released_one_is_unchanged() {
    let mut per_backend = Vec::new();
    for (backend, checksum) in RELEASED_0001 {
        let m = Migrator::new(migrations_dir(backend)).await.unwrap();
        let versions: Vec<i64> = m.iter().map(|x| x.version).collect();
        // A number may be taken by a migration being written elsewhere: each
        // is above the one before, not necessarily the next one.
        assert_eq!(versions.first(), Some(&1), "{backend}: numbered from 1");
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{backend}: each number above the last: {versions:?}");
        per_backend.push(versions.clone());
        for x in m.iter() {
            assert!(!x.migration_type.is_reversible(), "{backend}/{}: no down migrations", x.version);
        }
        let first = m.iter().find(|x| x.version == 1).unwrap();
        let hex: String = first.checksum.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, checksum, "migrations/{backend}/0001 was released: add a migration instead of editing it");
    }
    assert_eq!(per_backend[0], per_backend[1], "the same migrations on both backends");
}
