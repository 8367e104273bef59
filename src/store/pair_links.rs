//! The `pair_links` table: re-pair links ([`crate::domain::pairing`]). A row
//! holds the SHA-256 of the link's token (a database dump gives no live
//! link), the instance record and the outage it was issued for, its expiry,
//! and what became of it (revoked, opened, used, connected). Links minted for
//! a notice are inserted by [`Store::commit_step_with`], in the transaction
//! that queues the notice; the rest is here.

use serde::Serialize;

use super::{Db, Result, Store};
use crate::domain::Ts;
use crate::domain::pairing::LinkFacts;

/// A link to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPairLink {
    pub id: String,
    pub token_hash: String,
    pub instance_id: String,
    pub provider: String,
    pub outage_id: Option<String>,
    /// `notice`, `api`, `cli` or `status page`.
    pub created_by: String,
    pub created_at: Ts,
    pub expires_at: Ts,
}

/// One stored link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PairLinkRecord {
    pub id: String,
    #[serde(skip)]
    pub token_hash: String,
    pub instance_id: String,
    pub provider: String,
    pub outage_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub connected_at: Option<i64>,
    pub started_at: Option<i64>,
    pub first_viewed_at: Option<i64>,
    pub views: i64,
    pub codes: i64,
}

impl PairLinkRecord {
    pub fn facts(&self) -> LinkFacts {
        LinkFacts {
            expires_at: Ts(self.expires_at),
            revoked_at: self.revoked_at.map(Ts),
            connected_at: self.connected_at.map(Ts),
        }
    }
}

macro_rules! pair_select {
    () => {
        "SELECT id, token_hash, instance_id, provider, outage_id, created_by, created_at, expires_at, \
         revoked_at, connected_at, started_at, first_viewed_at, views, codes FROM pair_links"
    };
}

/// Insert links inside a transaction (`$tx` a `&mut` transaction of either backend).
macro_rules! insert_pair_links {
    ($tx:ident, $links:expr) => {
        for l in $links {
            sqlx::query(
                "INSERT INTO pair_links (id, token_hash, instance_id, provider, outage_id, created_by, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&l.id)
            .bind(&l.token_hash)
            .bind(&l.instance_id)
            .bind(&l.provider)
            .bind(l.outage_id.as_deref())
            .bind(&l.created_by)
            .bind(l.created_at.0)
            .bind(l.expires_at.0)
            .execute(&mut *$tx)
            .await?;
            // Its audit event, in the same transaction (never the token).
            let detail = serde_json::json!({
                "link": l.id, "by": l.created_by, "expires_at": l.expires_at.rfc3339(), "outage_id": l.outage_id,
            });
            sqlx::query(
                "INSERT INTO events (instance_id, provider, at, kind, detail) VALUES ($1, $2, $3, 'pair_link_issued', $4)",
            )
            .bind(&l.instance_id)
            .bind(&l.provider)
            .bind(l.created_at.0)
            .bind(detail.to_string())
            .execute(&mut *$tx)
            .await?;
        }
    };
}
pub(super) use insert_pair_links;

impl Store {
    /// Record a link minted on demand (`pair-link`, the API, the instance page).
    pub async fn pair_link_create(&self, link: &NewPairLink) -> Result<()> {
        in_write_tx!(self, tx => {
            insert_pair_links!(tx, [link]);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The link whose token hashes to `hash`.
    pub async fn pair_link_by_hash(&self, hash: &str) -> Result<Option<PairLinkRecord>> {
        let r = on_pool!(self, p => {
            sqlx::query_as::<_, PairLinkRecord>(concat!(pair_select!(), " WHERE token_hash = $1"))
                .bind(hash)
                .fetch_optional(p)
                .await?
        });
        Ok(r)
    }

    /// The links of one instance record, newest first.
    pub async fn pair_links_of(&self, instance_id: &str, limit: u32) -> Result<Vec<PairLinkRecord>> {
        let r = on_pool!(self, p => {
            sqlx::query_as::<_, PairLinkRecord>(concat!(
                pair_select!(),
                " WHERE instance_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
            ))
                .bind(instance_id)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
        });
        Ok(r)
    }

    /// Revoke every link of an instance record that is still usable (not
    /// expired, revoked or done); returns how many.
    pub async fn pair_links_revoke(&self, instance_id: &str, now: Ts) -> Result<u64> {
        let n = on_pool!(self, p => {
            sqlx::query(
                "UPDATE pair_links SET revoked_at = $1 WHERE instance_id = $2 AND revoked_at IS NULL \
                 AND connected_at IS NULL AND expires_at > $1",
            )
            .bind(now.0)
            .bind(instance_id)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// A view of the link's page: counted, the first one remembered.
    pub async fn pair_link_viewed(&self, id: &str, now: Ts) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE pair_links SET views = views + 1, first_viewed_at = COALESCE(first_viewed_at, $1) WHERE id = $2",
            )
            .bind(now.0)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A pairing code was asked through the link (it counts as opened too).
    pub async fn pair_link_code_asked(&self, id: &str, now: Ts) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE pair_links SET codes = codes + 1, first_viewed_at = COALESCE(first_viewed_at, $1) WHERE id = $2",
            )
            .bind(now.0)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Claim the link's one provider start: `true` for the caller that got it.
    pub async fn pair_link_claim_start(&self, id: &str, now: Ts) -> Result<bool> {
        let n = on_pool!(self, p => {
            sqlx::query("UPDATE pair_links SET started_at = $1 WHERE id = $2 AND started_at IS NULL")
                .bind(now.0)
                .bind(id)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// The session is open: the link only says so from now on.
    pub async fn pair_link_connected(&self, id: &str, now: Ts) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE pair_links SET connected_at = COALESCE(connected_at, $1) WHERE id = $2")
                .bind(now.0)
                .bind(id)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
