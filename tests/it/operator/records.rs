//! Records of one name: a deleted and recreated instance's pages and the
//! tenant figures with retired instances; event details in operator words
//! on the page, in the API and from the CLI.

use super::*;

/// Run `$name(db)` on a fresh SQLite database and, when configured, on a
/// fresh PostgreSQL schema.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::it::common::TestDb::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = crate::it::common::TestDb::postgres().await else { return };
                super::$name(db).await;
            }
        }
    )*};
}

on_both_databases!(
    the_status_page_tenant_figures_are_the_report_s_retired_instances_included,
    a_recreated_instance_s_page_shows_its_own_history_and_links_the_retired_record,
);

const MIN: i64 = 60_000;

/// On a clock the test moves: `shop-1` stays open; `gone-1` is down for a
/// while, deleted on the provider (seen missing, then unlisted: retired,
/// its outage closed) and created again under the same name (a new row).
/// Returns the live rig, its clock, and the retired record's id.
async fn deleted_and_recreated(
    db: crate::it::common::TestDb,
) -> (Live, std::sync::Arc<std::sync::atomic::AtomicI64>, String) {
    use std::sync::atomic::Ordering;
    // Three hours back: what happens below is over before the real clock
    // (which the notice worker reads) gets there.
    let start = wa_sentinel::clock::now().0 / MIN * MIN - 180 * MIN;
    let clock = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(start));
    let live =
        Live::start_on(db, Some(clock.clone()), &[("shop-1", Behaviour::Open), ("gone-1", Behaviour::Open)], |r| {
            r.providers[0].default_tenant = Some("acme".into())
        })
        .await;
    let step = |minutes: i64| clock.fetch_add(minutes * MIN, Ordering::SeqCst);
    let cycle = || async {
        live.sup.poll_cycle().await.unwrap();
        live.sup.wait_idle().await;
    };
    cycle().await;
    step(30);
    live.sim.set_behaviour("gone-1", Behaviour::ClosedTransient { reason: 428 });
    for _ in 0..3 {
        cycle().await;
        step(1);
    }
    let key = wa_sentinel::domain::InstanceKey::new("evo", "gone-1");
    let old = live.store.instance(&key).await.unwrap().unwrap();
    assert!(old.state.outage.is_some(), "gone-1 is down");
    step(20);
    live.sim.remove_instance("gone-1");
    for _ in 0..4 {
        cycle().await;
        step(1);
    }
    assert!(live.store.instance(&key).await.unwrap().is_none(), "gone-1 retired");
    step(5);
    live.sim.add_instance("gone-1", Behaviour::Open);
    cycle().await;
    let new = live.store.instance(&key).await.unwrap().expect("gone-1 again, as a new record");
    assert_ne!(new.id, old.id);
    step(10);
    cycle().await;
    (live, clock, old.id)
}

/// The status page's tenant figures come from the report's function over the
/// same windows: a retired instance that was down in the window counts in
/// its tenant's instances, outages and time down on the page as in
/// `report`, and the page says how many of them are retired.
async fn the_status_page_tenant_figures_are_the_report_s_retired_instances_included(db: crate::it::common::TestDb) {
    let (live, _clock, _) = deleted_and_recreated(db).await;
    let now = live.sup.now();
    let q = |from: Ts| ReportQuery { from, to: now, tenant: Some("acme".into()), provider: None };
    let month = build(&live.store, &q(Ts(now.0 - 30 * 24 * 60 * MIN)), now).await.unwrap();
    let day = build(&live.store, &q(Ts(now.0 - 24 * 60 * MIN)), now).await.unwrap();
    let (m, d) = (&month.tenants[0], &day.tenants[0]);
    assert_eq!((m.instances, m.figures.outages), (3, 1), "shop-1, gone-1 retired, gone-1 again: {month:?}");
    assert!(month.instances.iter().any(|i| !i.present));
    let (code, _, page) = get_page(&live, "/", None).await;
    assert_eq!(code, 200);
    let tenants = &page[page.find("<h2>Tenants</h2>").unwrap()..page.find("<h2>Instances</h2>").unwrap()];
    let row = row_of(tenants, "acme");
    let cells: Vec<&str> = row.split("<td>").skip(1).map(|c| &c[..c.find("</td>").unwrap()]).collect();
    let want_instances = format!("{} <span class=\"muted\">(1 retired)</span>", m.instances);
    assert_eq!(cells[1], want_instances, "{row}");
    assert_eq!(cells[3], wa_sentinel::report::percent(&d.figures), "24 h: {row}");
    assert_eq!(cells[4], wa_sentinel::report::percent(&m.figures), "30 d: {row}");
    assert_eq!(cells[5], m.figures.outages.to_string(), "outages 30 d: {row}");
    let down = wa_sentinel::domain::time::human_duration(std::time::Duration::from_millis(m.figures.down_ms as u64));
    assert_eq!(cells[6], down, "down 30 d: {row}");
    // The retired record is listed apart, linked to its own page.
    let retired = &page[page.find("<h2>Retired").expect("a section of retired instances")..];
    assert!(retired.contains("/instances/evo/gone-1?id="), "{retired}");
}

/// The page of a recreated instance shows its own record's outages and
/// notices only, and links the retired record, whose page (`?id=`) shows its
/// history and offers no actions.
async fn a_recreated_instance_s_page_shows_its_own_history_and_links_the_retired_record(db: crate::it::common::TestDb) {
    let (live, _clock, old_id) = deleted_and_recreated(db).await;
    let me = session(&live).await;
    let (code, _, page) = get_page(&live, "/instances/evo/gone-1", Some(&me)).await;
    assert_eq!(code, 200, "{page}");
    let outages = &page[page.find("<h2>Outages</h2>").unwrap()..page.find("<h2>Timeline</h2>").unwrap()];
    assert!(outages.contains("No outage on record."), "the retired record's outage is not this one's: {outages}");
    let timeline = &page[page.find("<h2>Timeline</h2>").unwrap()..];
    assert!(!timeline.contains("notice instance_down") && !timeline.contains("notice instance_retired"), "{timeline}");
    let link = format!("/instances/evo/gone-1?id={old_id}");
    assert!(page.contains(&format!("href=\"{link}\"")), "a link to the retired record: {page}");
    assert!(page.contains("name=\"csrf\""), "the current record can be acted on");

    let (code, _, old) = get_page(&live, &link, Some(&me)).await;
    assert_eq!(code, 200, "{old}");
    assert!(old.contains("retired"), "{old}");
    let outages = &old[old.find("<h2>Outages</h2>").unwrap()..old.find("<h2>Timeline</h2>").unwrap()];
    assert!(outages.contains("<td>retired</td>") && outages.contains("<td>missing</td>"), "{outages}");
    let timeline = &old[old.find("<h2>Timeline</h2>").unwrap()..];
    assert!(timeline.contains("notice instance_down") && timeline.contains("notice instance_retired"), "{timeline}");
    assert!(!old.contains("name=\"csrf\""), "a retired record offers no actions: {old}");
    assert!(old.contains("href=\"/instances/evo/gone-1\""), "a link back to the current record");
    // An id of another instance, or none at all, is not this page.
    let shop = live.store.instance(&wa_sentinel::domain::InstanceKey::new("evo", "shop-1")).await.unwrap().unwrap();
    assert_eq!(get_page(&live, &format!("/instances/evo/gone-1?id={}", shop.id), Some(&me)).await.0, 404);
    assert_eq!(get_page(&live, "/instances/evo/gone-1?id=nope", Some(&me)).await.0, 404);
}

/// What Rust's `Debug` formatting of the domain types looks like: none of it
/// may reach an operator.
const DEBUG_MARKS: [&str; 6] = ["Polled(", "Webhook(", "ProviderFailed(", "Some(", "None", "{ "];

fn debug_marks(text: &str) -> Vec<&'static str> {
    DEBUG_MARKS.iter().copied().filter(|m| text.contains(m)).collect()
}

/// Every string inside a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// A realistic history — a drop reconnected and verified, a reconnect that
/// did not help, a manual restart, maintenance, and an event row written by
/// an older release in `Debug` text — reads in operator words on the
/// instance's page, in the API and from `wa-sentinel history` and `status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_details_read_in_operator_words_on_the_page_the_api_and_the_cli() {
    let live = Live::start(
        &[("drop-1", Behaviour::ClosedTransient { reason: 428 }), ("loop-1", Behaviour::ReconnectLoop)],
        |r| {
            r.restart.max_attempts_per_outage = 3;
            r.restart.cooldown = "1s".into();
        },
    )
    .await;
    for _ in 0..3 {
        live.sup.poll_cycle().await.unwrap();
        live.sup.wait_idle().await;
    }
    let key = wa_sentinel::domain::InstanceKey::new("evo", "loop-1");
    live.sup.manual_restart(&key, true).await.unwrap();
    live.sup.observe(&key, Observation::Maintenance(Some(Ts(live.sup.now().0 + 3_600_000))), None).await.unwrap();
    let rec = live.store.instance(&key).await.unwrap().unwrap();
    let old = serde_json::json!({"observation": "Polled(Disconnected { reason: None })", "health": "disconnected"});
    live.store.record_event(Some(&rec.id), "evo", "recovery_verified", &old, live.sup.now()).await.unwrap();
    let verified: Vec<String> = live
        .store
        .events(&rec.id, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "recovery_verified")
        .map(|e| e.detail)
        .collect();
    assert!(verified.len() >= 2, "a verification of this release and the old row: {verified:?}");

    for name in ["drop-1", "loop-1"] {
        let (code, _, page) = get_page(&live, &format!("/instances/evo/{name}"), None).await;
        assert_eq!(code, 200);
        let timeline = &page[page.find("<h2>Timeline</h2>").unwrap()..];
        assert!(timeline.contains("recovery_verified"), "{timeline}");
        assert_eq!(debug_marks(&page), Vec::<&str>::new(), "{name}'s page:\n{timeline}");
        let api: Value =
            crate::it::common::admin_json(live.http.get(format!("{}/api/instances/evo/{name}", live.base)), ADMIN)
                .await;
        let mut texts = Vec::new();
        strings(&api, &mut texts);
        let leaked: Vec<&String> = texts.iter().filter(|t| !debug_marks(t).is_empty()).collect();
        assert!(leaked.is_empty(), "{name} in the API: {leaked:?}");
    }
    let (_, _, page) = get_page(&live, "/instances/evo/loop-1", None).await;
    assert!(page.contains("observation: poll: connection closed"), "the old row, in words too: {page}");

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("[database]\nurl = \"{}\"\n", live.db_url())).unwrap();
    for args in [vec!["history"], vec!["history", "evo/loop-1"], vec!["history", "--json"], vec!["status"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wa-sentinel"))
            .env_remove("WA_SENTINEL_CONFIG")
            .arg("--config")
            .arg(&cfg)
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(debug_marks(&text), Vec::<&str>::new(), "{args:?}:\n{text}");
    }
}
