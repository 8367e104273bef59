//! Retention: events and closed outages older than `supervisor.retention` go.

use super::{Supervisor, SupervisorError};
use crate::domain::Ts;

impl Supervisor {
    /// Delete events and closed outages older than `supervisor.retention`.
    pub async fn prune(&self) -> Result<(u64, u64), SupervisorError> {
        let keep = self.cfg.supervisor.retention;
        if keep.is_zero() {
            return Ok((0, 0));
        }
        let before = Ts(self.now().0 - crate::domain::time::duration_ms(keep));
        Ok(self.store.prune(before).await?)
    }
}
