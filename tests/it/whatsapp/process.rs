//! The real binary against the simulators: notices reach the configured
//! numbers as texts through an ops instance on Evolution, WAHA and Z-API;
//! twenty drops at once are one digest per recipient; when the ops instance
//! goes down, its own outage and the notices after it reach the fallback
//! exactly once and nothing goes through the closed instance (Z-API would
//! queue it and deliver it hours late), and its recovery goes through it;
//! `min_gap` spaces the texts of every notifier sharing an ops instance.

use std::path::Path;
use std::time::Duration;

use wa_sentinel::domain::{Health, InstanceKey};
use wa_sentinel::notify::chat;
use wa_sentinel::sim::evolution::{Behaviour, SimOptions, Simulator};
use wa_sentinel::sim::waha::{WahaBehaviour, WahaSim};
use wa_sentinel::sim::zapi::{ZapiBehaviour, ZapiSim};
use wa_sentinel::store::Store;

use super::{GROUP, TO};
use crate::it::common::{free_port, idempotency_keys, ok_sink};
use crate::it::process::{Daemon, wait_for};

const ZGROUP: &str = "120363019502650977-group";

fn head(db: &str) -> String {
    format!(
        "[database]\nurl = \"{db}\"\n[server]\nlisten = \"127.0.0.1:{}\"\n\
         [supervisor]\npoll_schedule = \"*/1 * * * * *\"\nrequest_timeout = \"2s\"\ndown_after = 1\nsettle_delay = \"0s\"\n\
         [restart]\ncooldown = \"30m\"\n[alerts]\nretry_min_delay = \"1s\"\n",
        free_port()
    )
}

fn evo(sim: &Simulator) -> String {
    format!(
        "[[providers]]\nname = \"evo\"\nkind = \"evolution\"\nbase_url = \"{}\"\napi_version = \"v2\"\napi_key = \"{}\"\n\
         webhook_token = \"hooktoken\"\ndiscover = true\n[[instances]]\nprovider = \"evo\"\nname = \"ops\"\n",
        sim.base_url(),
        sim.api_key()
    )
}

fn zapi(sim: &ZapiSim) -> String {
    format!(
        "[[providers]]\nname = \"zapi\"\nkind = \"zapi\"\nbase_url = \"{}\"\nclient_token = \"ct\"\nwebhook_token = \"zt\"\n\
         [[instances]]\nprovider = \"zapi\"\nname = \"ZOPS\"\ntoken = \"ztok\"\n",
        sim.base_url()
    )
}

async fn start(dir: &Path, text: &str) -> (Daemon, Store) {
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, text).unwrap();
    let d = Daemon::spawn(&cfg, &[]);
    let store = Store::connect(&format!("sqlite://{}/w.db", dir.display()), 2).await;
    (d, store.unwrap())
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("c.log")).unwrap_or_default()
}

/// Wait until the daemon believes each instance connected.
async fn connected(store: &Store, dir: &Path, keys: &[(&str, &str)]) {
    for (p, n) in keys {
        let key = InstanceKey::new(*p, *n);
        let mut ok = false;
        for _ in 0..300 {
            if store.instance(&key).await.ok().flatten().is_some_and(|r| r.state.health == Health::Connected) {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ok, "{key} never seen connected:\n{}", log(dir));
    }
}

/// Whether a notice about `instance` reached the sink.
async fn told(sink: &wiremock::MockServer, instance: &str) -> bool {
    sink.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| serde_json::from_slice::<serde_json::Value>(&r.body).is_ok_and(|b| b["instance"] == instance))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_sends_each_notice_as_a_text_through_evolution_waha_and_zapi() {
    let dir = tempfile::tempdir().unwrap();
    let evo_sim = Simulator::start(SimOptions {
        instances: vec![("ops".into(), Behaviour::Open), ("shop".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let waha = WahaSim::start(Some("wk"), &[("default", WahaBehaviour::Working)]).await.unwrap();
    let zsim = ZapiSim::start(Some("ct"), &[("ZOPS", "ztok", ZapiBehaviour::Connected)]).await.unwrap();
    let sink = ok_sink().await;
    let text = format!(
        "{}{}{}[[providers]]\nname = \"waha\"\nkind = \"waha\"\nbase_url = \"{}\"\napi_key = \"wk\"\nwebhook_token = \"wt\"\n\
         [[instances]]\nprovider = \"waha\"\nname = \"default\"\n\
         [[notifiers]]\nname = \"sink\"\nkind = \"webhook\"\nurl = \"{}\"\n\
         [[notifiers]]\nname = \"wa-evo\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\nto = [\"{TO}\", \"{GROUP}\"]\ndigest_window = \"1s\"\n\
         [[notifiers]]\nname = \"wa-waha\"\nkind = \"whatsapp\"\nprovider = \"waha\"\ninstance = \"default\"\nto = [\"{TO}\"]\ndigest_window = \"1s\"\n\
         [[notifiers]]\nname = \"wa-zapi\"\nkind = \"whatsapp\"\nprovider = \"zapi\"\ninstance = \"ZOPS\"\nto = [\"{ZGROUP}\"]\ndigest_window = \"1s\"\n",
        head(&format!("sqlite://{}/w.db", dir.path().display())),
        evo(&evo_sim),
        zapi(&zsim),
        waha.base_url(),
        sink.uri(),
    );
    let (_d, store) = start(dir.path(), &text).await;
    connected(&store, dir.path(), &[("evo", "ops"), ("evo", "shop"), ("waha", "default"), ("zapi", "ZOPS")]).await;
    evo_sim.set_behaviour("shop", Behaviour::LoggedOut);
    let arrived = wait_for(Duration::from_secs(20), || {
        let about_shop = |texts: Vec<(String, String)>| texts.into_iter().filter(|(_, t)| t.contains("shop")).count();
        let pairs =
            |v: Vec<wa_sentinel::sim::server::SimMessage>| v.into_iter().map(|m| (m.to, m.text)).collect::<Vec<_>>();
        about_shop(pairs(evo_sim.sent_messages())) >= 2
            && about_shop(pairs(waha.sent_messages())) >= 1
            && about_shop(pairs(zsim.sent_messages())) >= 1
    })
    .await;
    assert!(arrived, "texts missing:\n{}", log(dir.path()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let keys = idempotency_keys(&sink).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let key = &keys[0];
    let check = |who: &str, got: Vec<(String, String, bool)>, want_to: &[&str]| {
        let to: Vec<&str> = got.iter().map(|(to, _, _)| to.as_str()).collect();
        assert_eq!(to, want_to, "{who}: one text per recipient, once");
        for (to, text, queued) in &got {
            let bare = to.trim_end_matches("@c.us");
            assert!(
                text.starts_with("🔴 *Instance logged out*\nshop (unassigned @ evo) is logged out"),
                "{who}: {text}"
            );
            assert!(text.ends_with(&format!("ref {}", chat::reference(key, bare))), "{who}: {text}");
            assert!(!queued, "{who}");
        }
    };
    let tuple = |v: Vec<wa_sentinel::sim::server::SimMessage>| {
        v.into_iter().map(|m| (m.to, m.text, m.queued)).collect::<Vec<_>>()
    };
    check("evolution", tuple(evo_sim.sent_messages()), &[TO, GROUP]);
    check("waha", tuple(waha.sent_messages()), &[&format!("{TO}@c.us")]);
    check("z-api", tuple(zsim.sent_messages()), &[ZGROUP]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_simultaneous_drops_reach_each_recipient_as_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let shops: Vec<String> = (0..20).map(|i| format!("shop-{i:02}")).collect();
    let mut instances = vec![("ops".to_string(), Behaviour::Open)];
    instances.extend(shops.iter().map(|s| (s.clone(), Behaviour::Open)));
    let sim = Simulator::start(SimOptions { instances, ..SimOptions::default() }).await.unwrap();
    let sink = ok_sink().await;
    let text = format!(
        "{}{}[[notifiers]]\nname = \"sink\"\nkind = \"webhook\"\nurl = \"{}\"\n\
         [[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\", \"5511977776666\"]\ndigest_window = \"5s\"\n",
        head(&format!("sqlite://{}/w.db", dir.path().display())),
        evo(&sim),
        sink.uri(),
    );
    let (_d, store) = start(dir.path(), &text).await;
    let mut keys: Vec<(&str, &str)> = vec![("evo", "ops")];
    keys.extend(shops.iter().map(|s| ("evo", s.as_str())));
    connected(&store, dir.path(), &keys).await;
    for s in &shops {
        sim.set_behaviour(s, Behaviour::LoggedOut);
    }
    let all = wait_for(Duration::from_secs(30), || sim.sent_messages().len() >= 2).await;
    assert!(all, "no digest:\n{}", log(dir.path()));
    // Anything split off would follow within a window: wait it out.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let notices = idempotency_keys(&sink).await;
    assert_eq!(notices.len(), 20, "{notices:?}");
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 2, "one digest per recipient: {:#?}", sent.iter().map(|m| &m.text).collect::<Vec<_>>());
    for m in &sent {
        assert!(m.text.starts_with("*wa-sentinel: 20 notices*"), "{}", m.text);
        for k in &notices {
            assert!(m.text.contains(&chat::reference(k, &m.to)), "{} lacks {k}", m.text);
        }
    }
    let rows = store.outbox_rows().await.unwrap();
    assert_eq!(rows.iter().filter(|r| r.notifier == "wa" && r.status == "delivered").count(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_ops_instance_goes_down_its_outage_and_later_notices_reach_the_fallback_once() {
    let dir = tempfile::tempdir().unwrap();
    let evo_sim = Simulator::start(SimOptions {
        instances: vec![("ops".into(), Behaviour::Open), ("shop".into(), Behaviour::Open)],
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let zsim = ZapiSim::start(Some("ct"), &[("ZOPS", "ztok", ZapiBehaviour::Connected)]).await.unwrap();
    let pager = ok_sink().await;
    let text = format!(
        "{}{}{}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"zapi\"\ninstance = \"ZOPS\"\n\
         to = [\"{TO}\"]\ndigest_window = \"0s\"\nfallback = \"pager\"\n\
         [[notifiers]]\nname = \"pager\"\nkind = \"webhook\"\nurl = \"{}\"\nfallback_only = true\n",
        head(&format!("sqlite://{}/w.db", dir.path().display())),
        evo(&evo_sim),
        zapi(&zsim),
        pager.uri(),
    );
    let (_d, store) = start(dir.path(), &text).await;
    connected(&store, dir.path(), &[("zapi", "ZOPS"), ("evo", "shop")]).await;

    // The ops instance loses its phone: its own outage goes to the pager.
    zsim.set_behaviour("ZOPS", ZapiBehaviour::NotConnected);
    let mut ok = false;
    for _ in 0..200 {
        if told(&pager, "ZOPS").await {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the ops instance's outage never reached the fallback:\n{}", log(dir.path()));

    // The next notice goes to the pager too, and nothing through the closed instance.
    evo_sim.set_behaviour("shop", Behaviour::LoggedOut);
    let mut ok = false;
    for _ in 0..200 {
        if told(&pager, "shop").await {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the shop's notice never reached the fallback:\n{}", log(dir.path()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let keys = idempotency_keys(&pager).await;
    assert_eq!(keys.len(), 2, "the ops instance's outage and the shop's, each once: {keys:?}");
    assert!(zsim.sent_messages().is_empty(), "nothing sent (or queued) through the closed instance");
    for r in store.outbox_rows().await.unwrap().iter().filter(|r| r.notifier == "wa") {
        assert_eq!(r.status, "handed_over", "{r:?}");
        assert!(r.last_error.as_deref().unwrap_or("").starts_with("handed to fallback pager: "), "{r:?}");
    }

    // Back: its recovery goes through it.
    zsim.set_behaviour("ZOPS", ZapiBehaviour::Connected);
    let back = wait_for(Duration::from_secs(20), || {
        zsim.sent_messages().iter().any(|m| m.text.starts_with("🟢 *Instance recovered*") && !m.queued)
    })
    .await;
    assert!(back, "no recovery text through the ops instance:\n{}", log(dir.path()));
    assert_eq!(zsim.sent_messages().len(), 1, "{:?}", zsim.sent_messages());
}

/// `min_gap` holds in the real daemon: three drops at once, two notifiers
/// sharing the ops instance, no digest: six texts, each at least `min_gap`
/// after the one before it, whichever notifier sent it, and none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_paces_texts_through_one_ops_instance_across_notifiers() {
    let dir = tempfile::tempdir().unwrap();
    let shops = ["shop-a", "shop-b", "shop-c"];
    let mut instances = vec![("ops".to_string(), Behaviour::Open)];
    instances.extend(shops.iter().map(|s| (s.to_string(), Behaviour::Open)));
    let sim = Simulator::start(SimOptions { instances, ..SimOptions::default() }).await.unwrap();
    let text = format!(
        "{}{}[[notifiers]]\nname = \"wa\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{TO}\"]\ndigest_window = \"0s\"\nmin_gap = \"1s\"\n\
         [[notifiers]]\nname = \"wa2\"\nkind = \"whatsapp\"\nprovider = \"evo\"\ninstance = \"ops\"\n\
         to = [\"{GROUP}\"]\ndigest_window = \"0s\"\nmin_gap = \"1s\"\n",
        head(&format!("sqlite://{}/w.db", dir.path().display())),
        evo(&sim),
    );
    let (_d, store) = start(dir.path(), &text).await;
    let mut keys: Vec<(&str, &str)> = vec![("evo", "ops")];
    keys.extend(shops.iter().map(|s| ("evo", *s)));
    connected(&store, dir.path(), &keys).await;
    for s in shops {
        sim.set_behaviour(s, Behaviour::LoggedOut);
    }
    let all = wait_for(Duration::from_secs(30), || sim.sent_messages().len() >= 6).await;
    assert!(all, "{} of 6 texts:\n{}", sim.sent_messages().len(), log(dir.path()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = sim.sent_messages();
    assert_eq!(sent.len(), 6, "{:#?}", sent.iter().map(|m| (&m.to, &m.text)).collect::<Vec<_>>());
    let at: Vec<i64> = sent.iter().map(|m| m.at.0).collect();
    assert!(at.windows(2).all(|w| w[1] - w[0] >= 1000), "closer than min_gap: {at:?}");
    for to in [TO, GROUP] {
        let about: Vec<&str> = sent.iter().filter(|m| m.to == to).map(|m| m.text.as_str()).collect();
        for s in shops {
            assert_eq!(about.iter().filter(|t| t.contains(s)).count(), 1, "{to}: {about:?}");
        }
    }
}
