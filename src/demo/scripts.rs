//! What happens to the simulated instances and servers during the demo, on
//! a timeline of poll periods: drops, logouts, stuck dispatchers, a customer
//! re-pairing through a link, the WAHA and Z-API sessions' troubles.

use super::*;

/// `logged-out-1`'s re-pair link, used as a customer would: open it (the
/// page starts the session once and shows the provider's QR code), "scan"
/// it on the phone after a while, and see the page say connected.
async fn re_pair(a: Arc<Simulator>, mut links: tokio::sync::mpsc::Receiver<String>, s: u64) {
    let at = |periods: u64| tokio::time::sleep(Duration::from_secs(periods * s));
    let Some(url) = links.recv().await else { return };
    println!("  … logged-out-1's notice carries a re-pair link for its customer: {url}");
    at(1).await;
    let http = reqwest::Client::new();
    let page = http.get(&url).send().await.ok();
    let qr = match http.get(format!("{url}/qr.png")).send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.ok(),
        _ => None,
    };
    if page.is_some_and(|p| p.status().is_success()) && qr.is_some_and(|b| b.as_ref() == sim_qr_png()) {
        println!("  … opened as the customer would: the page shows the provider's QR code");
    }
    at(2).await;
    a.scan("logged-out-1");
    let open = SimEvent::ConnectionUpdate { state: "open".into(), status_reason: 200 };
    let _ = a.post_webhook("logged-out-1", open, None).await;
    println!("  … the customer scanned it with the phone");
    at(1).await;
    if let Ok(r) = http.get(&url).send().await
        && r.text().await.is_ok_and(|t| t.contains("This number is connected"))
    {
        println!("  … and the link's page now says the number is connected");
    }
}

/// The misbehaviour, on a timeline of poll periods (`s` seconds each), plus
/// message traffic from every open instance so healthy ones stay healthy.
pub(super) async fn script(
    a: Simulator,
    b: Simulator,
    s: u64,
    links: tokio::sync::mpsc::Receiver<String>,
    stop: CancellationToken,
) {
    let a = Arc::new(a);
    let b = Arc::new(b);
    let traffic = {
        let (a, b) = (a.clone(), b.clone());
        tokio::spawn(async move {
            loop {
                for (sim, names) in [
                    (
                        &a,
                        &[
                            "shop-main",
                            "shop-support",
                            "drop-1",
                            "logged-out-1",
                            "zombie-1",
                            "nohook-1",
                            "flappy-1",
                            "phone-2",
                            "gone-1",
                        ][..],
                    ),
                    (&b, &["branch-1", "branch-2"][..]),
                ] {
                    for n in names {
                        if sim.behaviour(n) == Some(Behaviour::Open) {
                            let _ = sim.post_webhook(n, SimEvent::MessagesUpsert, None).await;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(300 * s)).await;
            }
        })
    };
    let at = |periods: u64| tokio::time::sleep(Duration::from_secs(periods * s));
    let flapping = {
        let a = a.clone();
        async move {
            at(2).await;
            for i in 0..10 {
                let next = if i % 2 == 0 { Behaviour::ClosedTransient { reason: 408 } } else { Behaviour::Open };
                a.set_behaviour("flappy-1", next);
                at(1).await;
            }
            a.set_behaviour("flappy-1", Behaviour::Open);
        }
    };
    let steps = async {
        at(2).await;
        a.set_behaviour("drop-1", Behaviour::ClosedTransient { reason: 428 });
        a.set_behaviour("logged-out-1", Behaviour::LoggedOut);
        a.set_behaviour("phone-2", Behaviour::LoggedOut);
        a.set_behaviour("gone-1", Behaviour::LoggedOut);
        b.set_down(true);
        at(3).await;
        // Its operator deletes the logged-out instance on the provider.
        a.remove_instance("gone-1");
        at(1).await;
        // Someone re-scanned phone-2's QR code: the session opens and says so by webhook.
        a.set_behaviour("phone-2", Behaviour::Open);
        let open = SimEvent::ConnectionUpdate { state: "open".into(), status_reason: 200 };
        let _ = a.post_webhook("phone-2", open, None).await;
        b.set_down(false);
    };
    let steps = async { tokio::join!(steps, flapping, re_pair(a.clone(), links, s)) };
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = steps => { stop.cancelled().await; }
    }
    traffic.abort();
}

/// `evo-c`: message traffic from its three open sessions, then at period 3
/// the server's webhook dispatcher gets stuck (sessions stay `open`). The
/// remediation command touches `restarted`; seeing it, the script "restarts"
/// the server and webhooks flow again.
pub(super) async fn silent_server(c: Simulator, restarted: std::path::PathBuf, s: u64, stop: CancellationToken) {
    let stuck_at = tokio::time::Instant::now() + Duration::from_secs(3 * s);
    let mut stuck = false;
    let run = async {
        loop {
            if !stuck && tokio::time::Instant::now() >= stuck_at && !restarted.exists() {
                stuck = true;
                c.set_webhooks_stuck(true);
            }
            if stuck && restarted.exists() {
                stuck = false;
                c.set_webhooks_stuck(false);
            }
            for n in SILENT_INSTANCES {
                let _ = c.post_webhook(n, SimEvent::MessagesUpsert, None).await;
            }
            tokio::time::sleep(Duration::from_millis(300 * s)).await;
        }
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = run => {}
    }
}

/// The WAHA and Z-API script: traffic from every live instance (so none looks
/// silent), then at period 2 `waha-failed-1` fails and `zapi-restore-1` needs
/// its session restored; wa-sentinel's recovery calls bring both back.
pub(super) async fn other_kinds(waha: WahaSim, zapi: ZapiSim, s: u64, stop: CancellationToken) {
    let traffic = async {
        loop {
            for name in ["waha-shop", "waha-failed-1"] {
                if waha.behaviour(name) == Some(WahaBehaviour::Working) {
                    let _ = waha.post_webhook(name, WahaEvent::Message).await;
                }
            }
            for (id, _) in ZAPI_INSTANCES {
                if zapi.behaviour(id) == Some(ZapiBehaviour::Connected) {
                    let _ = zapi.post_webhook(id, ZapiEvent::Received).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(300 * s)).await;
        }
    };
    let steps = async {
        tokio::time::sleep(Duration::from_secs(2 * s)).await;
        waha.set_behaviour("waha-failed-1", WahaBehaviour::Failed);
        let _ = waha.post_webhook("waha-failed-1", WahaEvent::SessionStatus).await;
        zapi.set_behaviour("zapi-restore-1", ZapiBehaviour::NeedsRestore);
        let _ = zapi.post_webhook("zapi-restore-1", ZapiEvent::Disconnected).await;
        stop.cancelled().await;
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = traffic => {}
        _ = steps => {}
    }
}
