//! Tenants assigned through the admin API (`tenant_assignments`), by provider
//! and instance name: an assignment may come before the instance exists on
//! the provider, and applies when it is discovered.

use std::collections::HashMap;

use super::{Db, Result, Store};
use crate::domain::{InstanceKey, Ts};

impl Store {
    /// Assign `tenant` to `key` (replacing an earlier assignment).
    pub async fn set_tenant_assignment(&self, key: &InstanceKey, tenant: &str, now: Ts) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO tenant_assignments (provider, name, tenant, assigned_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (provider, name) DO UPDATE SET tenant = excluded.tenant, assigned_at = excluded.assigned_at",
            )
            .bind(&key.provider)
            .bind(&key.name)
            .bind(tenant)
            .bind(now.0)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Remove `key`'s assignment; true if there was one.
    pub async fn clear_tenant_assignment(&self, key: &InstanceKey) -> Result<bool> {
        let n = on_pool!(self, p => {
            sqlx::query("DELETE FROM tenant_assignments WHERE provider = $1 AND name = $2")
                .bind(&key.provider)
                .bind(&key.name)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// The assignments of one provider: instance name → tenant.
    pub async fn tenant_assignments(&self, provider: &str) -> Result<HashMap<String, String>> {
        let rows: Vec<(String, String)> = on_pool!(self, p => {
            sqlx::query_as("SELECT name, tenant FROM tenant_assignments WHERE provider = $1")
                .bind(provider)
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().collect())
    }
}
