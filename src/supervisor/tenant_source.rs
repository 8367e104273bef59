//! The SaaS application's own database as a tenant source (`[tenants]`):
//! its query read every `refresh`, read-only and under a statement timeout,
//! on a connection of its own. A failing source never blocks polling: the
//! last mapping read stays in force, the failure is logged once per episode
//! and `wa_sentinel_tenant_source_up` says 0.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use super::Supervisor;
use super::episodes::{Episode, Episodes};
use crate::config::SqlSource;
use crate::domain::tenancy::{SqlMapping, valid_tenant};

/// What one read found: the mapping, and how many rows were skipped (an
/// empty or malformed instance or tenant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRead {
    pub mapping: SqlMapping,
    pub skipped: usize,
}

/// Read the source once (`check-config --check-sources` runs this too).
pub async fn read(src: &SqlSource) -> Result<SourceRead, String> {
    let ms = src.statement_timeout.as_millis().to_string();
    let opts: PgConnectOptions =
        src.url.expose().parse().map_err(|e| format!("tenants.source_url is not a PostgreSQL URL: {e}"))?;
    // Read-only and bounded, whatever the query says.
    let opts = opts.options([("statement_timeout", ms.as_str()), ("default_transaction_read_only", "on")]);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(src.statement_timeout.max(Duration::from_secs(5)))
        .connect_with(opts)
        .await
        .map_err(|e| format!("cannot connect to the tenant source: {e}"))?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(src.query.clone()))
        .fetch_all(&pool)
        .await
        .map_err(|e| format!("the tenant query failed: {e}"));
    pool.close().await;
    let rows = rows?;
    let mut out = SourceRead::default();
    for row in rows {
        let instance: Option<String> = row
            .try_get("instance")
            .map_err(|e| format!("the tenant query must return a text column `instance`: {e}"))?;
        let tenant: Option<String> =
            row.try_get("tenant").map_err(|e| format!("the tenant query must return a text column `tenant`: {e}"))?;
        // `provider` is optional: a missing column means every provider.
        let provider: Option<String> = row.try_get("provider").unwrap_or(None);
        match (instance.filter(|i| !i.is_empty()), tenant.filter(|t| valid_tenant(t).is_ok())) {
            (Some(i), Some(t)) => match provider.filter(|p| !p.is_empty()) {
                Some(p) => {
                    out.mapping.by_provider.insert((p, i), t);
                }
                None => {
                    out.mapping.any_provider.insert(i, t);
                }
            },
            _ => out.skipped += 1,
        }
    }
    Ok(out)
}

/// Refresh `sup`'s mapping from `src` until `stop`.
pub async fn run(sup: Arc<Supervisor>, src: SqlSource, stop: CancellationToken) {
    let mut episodes = Episodes::default();
    loop {
        match read(&src).await {
            Ok(r) => {
                metrics::gauge!("wa_sentinel_tenant_source_up").set(1.0);
                metrics::gauge!("wa_sentinel_tenant_source_rows").set(r.mapping.len() as f64);
                if episodes.worked("source") == Episode::Ended {
                    tracing::info!(rows = r.mapping.len(), "the tenant source answers again");
                }
                if r.skipped > 0 {
                    tracing::debug!(skipped = r.skipped, "tenant source rows without an instance or a valid tenant");
                }
                sup.set_sql_tenants(r.mapping);
            }
            Err(e) => {
                metrics::gauge!("wa_sentinel_tenant_source_up").set(0.0);
                metrics::counter!("wa_sentinel_tenant_source_errors_total").increment(1);
                match episodes.failed("source") {
                    Episode::Started => tracing::warn!(
                        error = %e,
                        "cannot read the tenant source; the last mapping read stays in force"
                    ),
                    _ => tracing::debug!(error = %e, "tenant source still failing"),
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(src.refresh) => {}
        }
    }
}
