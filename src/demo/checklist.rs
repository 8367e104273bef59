//! The demo's checklist: each scenario ticks when the daemon's own database
//! shows it happened (an outage, a notice, an audit event), never on the
//! script's word.

use super::*;

/// Tick the checklist as scenarios show up in the database.
pub(super) async fn watch(
    db_url: &str,
    shutdown: &CancellationToken,
    exit_when_done: bool,
    limit: Duration,
    restarted_at: &std::sync::atomic::AtomicI64,
    stale_ms: i64,
) -> Result<(), DemoError> {
    let started = tokio::time::Instant::now();
    let mut store: Option<Store> = None;
    let mut seen: BTreeSet<&'static str> = BTreeSet::new();
    let mut announced = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if store.is_none() {
            // The daemon creates and migrates the file; wait for it.
            if let Ok(s) = Store::connect(db_url, 2).await
                && s.migrations_current().await.unwrap_or(false)
            {
                store = Some(s);
            }
            continue;
        }
        let st = store.as_ref().expect("set above");
        let restart = Some(restarted_at.load(std::sync::atomic::Ordering::SeqCst)).filter(|t| *t > 0);
        for s in observed(st, restart, stale_ms).await? {
            if seen.insert(s) {
                println!("  ✓ {s}");
            }
        }
        if seen.len() == SCENARIOS.len() && !announced {
            announced = true;
            println!(
                "\nall scenarios observed in {:.0?}. The daemon keeps running; Ctrl-C to stop.",
                started.elapsed()
            );
            if exit_when_done {
                return Ok(());
            }
        }
        if exit_when_done && started.elapsed() > limit {
            let missing = SCENARIOS.iter().filter(|s| !seen.contains(*s)).copied().collect();
            return Err(DemoError::Incomplete(limit, missing));
        }
    }
}

/// Which scenarios the database shows so far (`restarted_at`: when the
/// daemon was started again, once it was).
pub(super) async fn observed(
    store: &Store,
    restarted_at: Option<i64>,
    stale_ms: i64,
) -> Result<Vec<&'static str>, DemoError> {
    let mut out = Vec::new();
    let outages = store.outages(None, false, 500).await?;
    let events_in = |provider: &'static str, name: &'static str| async move {
        let Some(r) = store.instance(&InstanceKey::new(provider, name)).await? else {
            return Ok::<_, DemoError>(vec![]);
        };
        Ok(store.events(&r.id, 200).await?)
    };
    let events_of = |name: &'static str| events_in("evo-a", name);
    // A recovery call of this kind was sent, and an outage of the instance closed.
    let recovered_with = |provider: &'static str, name: &'static str, call: &'static str| {
        let closed = outages
            .iter()
            .any(|o| o.provider == provider && o.instance.as_deref() == Some(name) && o.ended_at.is_some());
        async move {
            let sent = events_in(provider, name)
                .await?
                .iter()
                .any(|e| e.kind == "recovery_result" && e.detail.contains(call) && e.detail.contains("\"sent\""));
            Ok::<_, DemoError>(sent && closed)
        }
    };

    let of =
        |n: &'static str| outages.iter().filter(move |o| o.instance.as_deref() == Some(n) && o.provider == "evo-a");
    if of("drop-1").next().is_some() {
        out.push(SCENARIOS[0]);
    }
    let reconnected =
        events_of("drop-1").await?.iter().any(|e| e.kind == "recovery_result" && e.detail.contains("\"reconnect\""));
    if reconnected && of("drop-1").any(|o| o.ended_at.is_some()) {
        out.push(SCENARIOS[1]);
    }
    let kinds: Vec<(String, String)> = store.outbox_all().await?.into_iter().map(|(k, n, _)| (k, n)).collect();
    let lo = of("logged-out-1").map(|o| o.id.clone()).collect::<Vec<_>>();
    if kinds.iter().any(|(k, _)| k.ends_with(":instance_logged_out") && lo.iter().any(|id| k.contains(id))) {
        out.push(SCENARIOS[2]);
    }
    if events_of("zombie-1").await?.iter().any(|e| e.kind == "recovery_result" && e.detail.contains("\"restart\"")) {
        out.push(SCENARIOS[3]);
    }
    if events_of("nohook-1").await?.iter().any(|e| e.kind == "webhook_repaired") {
        out.push(SCENARIOS[4]);
    }
    if kinds.iter().any(|(k, _)| k.ends_with(":instance_flapping")) {
        out.push(SCENARIOS[5]);
    }
    if kinds.iter().any(|(k, _)| k.ends_with(":provider_unreachable"))
        && kinds.iter().any(|(k, _)| k.ends_with(":provider_recovered"))
    {
        out.push(SCENARIOS[6]);
    }
    if of("phone-2").any(|o| o.recovered_by.as_deref() == Some("webhook")) {
        out.push(SCENARIOS[7]);
    }
    let fresh = of("fresh-1").map(|o| o.id.clone()).collect::<Vec<_>>();
    let fresh_told =
        kinds.iter().any(|(k, _)| k.ends_with(":instance_logged_out") && fresh.iter().any(|id| k.contains(id)));
    let fresh_called = events_of("fresh-1").await?.iter().any(|e| e.kind == "recovery_result");
    if fresh_told && !fresh_called {
        out.push(SCENARIOS[8]);
    }
    if of("gone-1").any(|o| o.recovered_by.as_deref() == Some("retired")) {
        out.push(SCENARIOS[9]);
    }
    if recovered_with("waha", "waha-failed-1", "/restart").await? {
        out.push(SCENARIOS[10]);
    }
    if recovered_with("zapi", "zapi-restore-1", "/restore-session").await? {
        out.push(SCENARIOS[11]);
    }
    let remediated = store
        .provider_events("evo-c", 50)
        .await?
        .iter()
        .any(|e| e.kind == "remediation_result" && e.detail.contains("\"exit_code\":0"));
    let silent_closed =
        outages.iter().any(|o| o.provider == "evo-c" && o.cause == "provider_silent" && o.ended_at.is_some());
    let no_restart = !outages.iter().any(|o| o.provider == "evo-c" && o.instance.is_some());
    if remediated && silent_closed && no_restart {
        out.push(SCENARIOS[12]);
    }
    // The re-pair link of logged-out-1's notice was opened, and the number
    // came back while it was: the link then says connected.
    if let Some(r) = store.instance(&InstanceKey::new("evo-a", "logged-out-1")).await? {
        let links = store.pair_links_of(&r.id, 10).await?;
        let used =
            links.iter().any(|l| l.created_by == "notice" && l.first_viewed_at.is_some() && l.connected_at.is_some());
        if used && of("logged-out-1").any(|o| o.ended_at.is_some()) {
            out.push(SCENARIOS[14]);
        }
    }
    // Two stale periods after the restart, no healthy session was restarted
    // since it (before watching counted, all were, within a second).
    if let Some(t) = restarted_at.filter(|t| crate::clock::now().0 - t >= 2 * stale_ms) {
        let mut storm = false;
        for (provider, name) in HEALTHY {
            storm |= events_in(provider, name)
                .await?
                .iter()
                .any(|e| e.at >= t && e.kind == "recovery_result" && e.detail.contains("\"restart\""));
        }
        if !storm {
            out.push(SCENARIOS[13]);
        }
    }
    Ok(out)
}
