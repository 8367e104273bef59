//! The wall clock, read only at the edges; the core takes `now` as an argument.

use crate::domain::Ts;

/// Now, in Unix milliseconds.
pub fn now() -> Ts {
    Ts(chrono::Utc::now().timestamp_millis())
}
