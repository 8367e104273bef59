//! The `sessions` table: status-page sign-ins, server-side. A row holds the
//! SHA-256 of the random cookie value (a database dump gives no live cookie),
//! a fingerprint of the admin token that signed in (rotating the token ends
//! every older session) and the expiry. `wa-sentinel logout-all` deletes them.

use super::{Db, Result, Store};
use crate::domain::Ts;

impl Store {
    /// Record a new session; expired sessions and those of another admin
    /// token are deleted on the way.
    pub async fn session_create(&self, id: &str, admin_fp: &str, now: Ts, expires_at: Ts) -> Result<()> {
        in_write_tx!(self, tx => {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR admin_fp <> $2")
                .bind(now.0)
                .bind(admin_fp)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO sessions (id, admin_fp, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(admin_fp)
                .bind(now.0)
                .bind(expires_at.0)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Is `id` a session of this admin token that has not expired?
    pub async fn session_valid(&self, id: &str, admin_fp: &str, now: Ts) -> Result<bool> {
        let n: i64 = on_pool!(self, p => {
            sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE id = $1 AND admin_fp = $2 AND expires_at > $3")
                .bind(id)
                .bind(admin_fp)
                .bind(now.0)
                .fetch_one(p)
                .await?
        });
        Ok(n > 0)
    }

    /// End every session (`wa-sentinel logout-all`); returns how many there were.
    pub async fn sessions_revoke_all(&self) -> Result<u64> {
        let n = on_pool!(self, p => {
            sqlx::query("DELETE FROM sessions").execute(p).await?.rows_affected()
        });
        Ok(n)
    }
}
