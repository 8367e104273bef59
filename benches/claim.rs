//! The `claim` scenario: one outbox claim behind a long backlog.

use super::*;

/// Rows claimed per round, as the worker does (`DeliveryPolicy::batch`).
pub(crate) const CLAIM_BATCH: u32 = 64;

pub(crate) fn outbox_rows(n: usize, from: usize) -> Vec<OutboxEntry> {
    (from..from + n)
        .map(|i| OutboxEntry {
            dedup_key: format!("outage:{i:07}:instance_down"),
            notifier: "ops".into(),
            kind: "instance_down".into(),
            payload: "{}".into(),
        })
        .collect()
}

/// Claims of `store` at `now`, timed: `reps` of them, or as many as fit in
/// 30 s (at least 3). Milliseconds of each, and the rows each returned.
pub(crate) async fn time_claims(store: &Store, now: Ts, reps: usize) -> Result<(Vec<f64>, Vec<usize>)> {
    let notifiers = ["ops".to_string()];
    let (mut ms, mut got) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    let start = Instant::now();
    while ms.len() < reps && (ms.len() < 3 || start.elapsed() < Duration::from_secs(30)) {
        let t0 = Instant::now();
        let rows = store.claim_outbox(now, Duration::from_secs(30), CLAIM_BATCH, &notifiers).await?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        got.push(rows.len());
    }
    Ok((ms, got))
}

/// One claim with `n` pending rows of one notifier behind a head that failed
/// and waits for its retry (the notifier is down during a mass outage): the
/// claim finds nothing to take, and on SQLite holds the write lock meanwhile.
pub(crate) async fn claim_behind_failing_head(store: &Store, n: usize, reps: usize) -> Result<Vec<f64>> {
    let now = Ts(1_800_000_000_000);
    for chunk in outbox_rows(n, 0).chunks(1000) {
        store.enqueue(chunk, now).await?;
    }
    let notifiers = ["ops".to_string()];
    let head = store.claim_outbox(now, Duration::from_secs(30), 1, &notifiers).await?;
    let head = head.first().ok_or_else(|| anyhow!("the head row was not claimed"))?;
    store.outbox_failed(head, "HTTP 503", Some(Ts(now.0 + 3_600_000))).await?;
    let (ms, got) = time_claims(store, now, reps).await?;
    if got.iter().any(|&g| g != 0) {
        bail!("a claim took rows behind a head that waits for its retry");
    }
    Ok(ms)
}

pub(crate) async fn claim_scenario(store: &Store, backend: &str, size: &Size, rep: &mut Report) -> Result<()> {
    let n = size.claim_pending;
    eprintln!("== claim: {backend}, {n} pending rows behind a failing head");
    let mut ms = claim_behind_failing_head(store, n, size.claim_reps).await?;
    ms.sort_by(f64::total_cmp);
    let reps = ms.len();
    let p50 = percentile(&ms, 50.0);
    let goal_met = (backend == "SQLite" && size.mode == Mode::Full).then_some(p50 <= 5.0);
    rep.row(
        format!("claim: one outbox claim, {backend}, {n} pending rows behind a failing head (median of {reps})"),
        format!(
            "p50 {p50:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&ms, 99.0),
            ms.last().copied().unwrap_or(0.0)
        ),
        if backend == "SQLite" { "≤ 5 ms at 10,000 rows" } else { "—" },
        goal_met,
    );
    Ok(())
}

pub(crate) async fn claim(size: &Size, pg_url: Option<&str>, rep: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/claim.db", dir.path().display()), 4).await?;
    store.migrate().await?;
    claim_scenario(&store, "SQLite", size, rep).await?;
    store.close().await;
    match pg_url {
        Some(base) => {
            let pg = PgBench::create(base).await?;
            let store = Store::connect(&pg.url, 4).await?;
            store.migrate().await?;
            let res = claim_scenario(&store, "PostgreSQL", size, rep).await;
            store.close().await;
            pg.drop_db().await;
            res?;
        }
        None => rep.note("claim: PostgreSQL URL absent; SQLite only"),
    }
    Ok(())
}
