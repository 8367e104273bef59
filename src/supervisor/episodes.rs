//! Log once per episode: a failure that repeats every cycle (a provider's
//! discovery while it is unreachable) is worth one warning when it starts
//! and one line when it ends, not one per cycle. [`Episodes`] is the plain
//! state that decides which; the caller logs.

use std::collections::HashSet;

/// What a failure or a success means for its key's episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Episode {
    /// The first failure after a success (or ever): say it.
    Started,
    /// Another failure of a running episode: say it at debug level at most.
    Continues,
    /// The first success after failures: say that it works again.
    Ended,
    /// A success with nothing running: nothing to say.
    Fine,
}

/// Which keys (providers) are in a failure episode.
#[derive(Debug, Default)]
pub struct Episodes {
    failing: HashSet<String>,
}

impl Episodes {
    /// `key` failed.
    pub fn failed(&mut self, key: &str) -> Episode {
        if self.failing.insert(key.to_string()) { Episode::Started } else { Episode::Continues }
    }

    /// `key` worked.
    pub fn worked(&mut self, key: &str) -> Episode {
        if self.failing.remove(key) { Episode::Ended } else { Episode::Fine }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_episode_is_told_when_it_starts_and_when_it_ends_per_key() {
        let mut e = Episodes::default();
        assert_eq!(e.worked("a"), Episode::Fine);
        assert_eq!(e.failed("a"), Episode::Started);
        assert_eq!(e.failed("a"), Episode::Continues);
        assert_eq!(e.failed("b"), Episode::Started, "per key");
        assert_eq!(e.failed("a"), Episode::Continues);
        assert_eq!(e.worked("a"), Episode::Ended);
        assert_eq!(e.worked("a"), Episode::Fine);
        assert_eq!(e.failed("a"), Episode::Started, "a new episode");
        assert_eq!(e.failed("b"), Episode::Continues);
    }
}
