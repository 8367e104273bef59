//! The in-memory view the webhook hot path reads: `(provider, name)` → the
//! instance's id, tenant and cached health, plus its coalesced
//! `last_webhook_at`. A webhook for a healthy instance touches only atomics
//! here — no database, no lock held across an await. The supervisor updates
//! the cached health after every committed step and refreshes the whole index
//! after each inventory sync; a flusher writes dirty `last_webhook_at` values
//! to the database in one batch every few seconds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::domain::health::Settled;
use crate::domain::{Health, InstanceKey, InstanceState, Ts};
use crate::store::InventoryRow;

#[derive(Debug)]
pub struct Entry {
    pub id: String,
    pub tenant: String,
    /// The cached health and the row version it comes from, in one word
    /// (`version << 8 | health`), so that they change together: an older
    /// snapshot never overwrites a newer commit, even when two writers race.
    health: AtomicU64,
    last_webhook: AtomicI64,
    dirty: AtomicBool,
    /// When a `connecting` signal was last forwarded (debounce, Unix ms).
    last_connecting: AtomicI64,
    /// The row version whose state was last seen, and whether it was settled
    /// ([`InstanceState::settled`]): the poll's fast path trusts it
    /// only while the database still holds that very version.
    settled: Mutex<(i64, Option<Settled>)>,
}

fn code(h: Health) -> u64 {
    Health::ALL.iter().position(|x| *x == h).unwrap_or(0) as u64
}

fn pack(h: Health, version: i64) -> u64 {
    (version.max(0) as u64) << 8 | code(h)
}

impl Entry {
    fn new(id: String, tenant: String, health: Health, version: i64, last_webhook: Option<Ts>) -> Entry {
        Entry {
            id,
            tenant,
            health: AtomicU64::new(pack(health, version)),
            last_webhook: AtomicI64::new(last_webhook.map_or(0, |t| t.0)),
            dirty: AtomicBool::new(false),
            last_connecting: AtomicI64::new(0),
            settled: Mutex::new((-1, None)),
        }
    }

    /// Remember what row version `version`'s state was, unless a newer
    /// version is already known.
    pub fn set_state(&self, state: &InstanceState, version: i64) {
        self.set_health(state.health, version);
        let mut s = self.settled.lock().expect("settled lock");
        if s.0 <= version {
            *s = (version, state.settled());
        }
    }

    /// The settled facts of row version `version`, if that is the version
    /// last seen and it was settled.
    pub fn settled_at(&self, version: i64) -> Option<Settled> {
        let s = self.settled.lock().expect("settled lock");
        if s.0 == version { s.1 } else { None }
    }

    pub fn health(&self) -> Health {
        Health::ALL.get((self.health.load(Ordering::Acquire) & 0xff) as usize).copied().unwrap_or(Health::Unknown)
    }

    /// Cache the health of row version `version`, unless a newer one is
    /// cached: one compare-and-swap on (version, health).
    pub fn set_health(&self, h: Health, version: i64) {
        let next = pack(h, version);
        let _ = self
            .health
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| (cur >> 8 <= next >> 8).then_some(next));
    }

    /// The coalesced webhook time to write.
    pub fn last_webhook(&self) -> Ts {
        Ts(self.last_webhook.load(Ordering::Relaxed))
    }

    /// A webhook arrived: remember when, for the next batch flush.
    pub fn touch(&self, now: Ts) {
        self.last_webhook.fetch_max(now.0, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Release);
    }

    /// Debounce: true if a `connecting` signal should be forwarded now (none
    /// forwarded within `window_ms`).
    pub fn connecting_due(&self, now: Ts, window_ms: i64) -> bool {
        let last = self.last_connecting.load(Ordering::Relaxed);
        now.0 - last >= window_ms
            && self.last_connecting.compare_exchange(last, now.0, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }
}

/// provider → name → entry (two levels so a lookup needs no allocation).
#[derive(Debug, Default)]
pub struct LiveIndex {
    map: RwLock<HashMap<String, HashMap<String, Arc<Entry>>>>,
    /// When any authenticated webhook last arrived (Unix ms): proof that the
    /// outside world still reaches us.
    last_traffic: AtomicI64,
}

impl LiveIndex {
    pub fn saw_traffic(&self, now: Ts) {
        self.last_traffic.fetch_max(now.0, Ordering::Relaxed);
    }

    pub fn last_traffic(&self) -> Option<Ts> {
        Some(Ts(self.last_traffic.load(Ordering::Relaxed))).filter(|t| t.0 > 0)
    }

    pub fn get(&self, provider: &str, name: &str) -> Option<Arc<Entry>> {
        self.map.read().expect("index lock").get(provider)?.get(name).cloned()
    }

    pub fn len(&self) -> usize {
        self.map.read().expect("index lock").values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replace the index with these records, keeping each surviving entry's
    /// in-memory webhook time (it may be newer than the database's).
    pub fn refresh(&self, records: &[InventoryRow]) {
        let mut next: HashMap<String, HashMap<String, Arc<Entry>>> = HashMap::new();
        {
            let old = self.map.read().expect("index lock");
            for r in records {
                let e = Self::carry(old.get(&r.key.provider), r);
                next.entry(r.key.provider.clone()).or_default().insert(r.key.name.clone(), e);
            }
        }
        *self.map.write().expect("index lock") = next;
    }

    /// Replace one provider's entries with these records (the others are left
    /// alone): each provider's pipeline refreshes its own part.
    pub fn refresh_provider(&self, provider: &str, records: &[InventoryRow]) {
        let next: HashMap<String, Arc<Entry>> = {
            let old = self.map.read().expect("index lock");
            records.iter().map(|r| (r.key.name.clone(), Self::carry(old.get(provider), r))).collect()
        };
        self.map.write().expect("index lock").insert(provider.to_string(), next);
    }

    /// The entry for `r`: the existing one when it is the same row (its
    /// webhook time and debounce survive), else a new one.
    fn carry(old: Option<&HashMap<String, Arc<Entry>>>, r: &InventoryRow) -> Arc<Entry> {
        match old.and_then(|m| m.get(&r.key.name)) {
            Some(e) if e.id == r.id && e.tenant == r.tenant => {
                e.set_health(r.health, r.version);
                e.clone()
            }
            _ => Arc::new(Entry::new(r.id.clone(), r.tenant.clone(), r.health, r.version, r.last_webhook_at)),
        }
    }

    /// The latest webhook this process saw for any instance of `provider`.
    pub fn last_webhook_of(&self, provider: &str) -> Option<Ts> {
        let map = self.map.read().expect("index lock");
        map.get(provider)?.values().map(|e| e.last_webhook.load(Ordering::Relaxed)).max().filter(|t| *t > 0).map(Ts)
    }

    /// Has provider `provider`'s part of the index been loaded?
    pub fn has_provider(&self, provider: &str) -> bool {
        self.map.read().expect("index lock").contains_key(provider)
    }

    /// Forget a retired instance: its webhooks are answered 202 from now on.
    pub fn remove(&self, key: &InstanceKey) {
        if let Some(m) = self.map.write().expect("index lock").get_mut(&key.provider) {
            m.remove(&key.name);
        }
    }

    /// Cache what the supervisor just read or committed of `key`: row
    /// `version` holds `state`.
    pub fn set_state(&self, key: &InstanceKey, state: &InstanceState, version: i64) {
        if let Some(e) = self.get(&key.provider, &key.name) {
            e.set_state(state, version);
        }
    }

    /// The entries whose `last_webhook_at` is not yet written, clearing their
    /// dirty flags. A failed write hands them back with [`Entry::touch`].
    pub fn take_dirty(&self) -> Vec<Arc<Entry>> {
        let map = self.map.read().expect("index lock");
        map.values().flat_map(HashMap::values).filter(|e| e.dirty.swap(false, Ordering::AcqRel)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_snapshot_never_overwrites_a_newer_commit() {
        let e = Entry::new("id".into(), "t".into(), Health::Disconnected, 5, None);
        e.set_health(Health::Connected, 6); // the writer committed version 6
        e.set_health(Health::Disconnected, 5); // a refresh read version 5 earlier
        assert_eq!(e.health(), Health::Connected);
        e.set_health(Health::LoggedOut, 7);
        assert_eq!(e.health(), Health::LoggedOut);
    }

    /// The poll's fast path trusts a cached settled state only for the very
    /// row version it was read from, and an older read never replaces it.
    #[test]
    fn settled_facts_belong_to_one_row_version() {
        let e = Entry::new("id".into(), "t".into(), Health::Unknown, 0, None);
        let mut open = InstanceState::new(Ts(0));
        (open.health, open.reason, open.connected_at) = (Health::Connected, "open".into(), Some(Ts(10)));
        assert_eq!(e.settled_at(0), None, "nothing seen yet");
        e.set_state(&open, 3);
        assert_eq!(e.settled_at(3).map(|s| s.silence_from), Some(Some(Ts(10))));
        assert_eq!(e.settled_at(4), None, "the database moved on: read it");
        e.set_state(&InstanceState::new(Ts(0)), 2); // an older read
        assert!(e.settled_at(3).is_some());
        e.set_state(&InstanceState::new(Ts(0)), 4); // a newer state, not settled
        assert_eq!(e.settled_at(4), None);
        assert_eq!(e.health(), Health::Unknown);
    }

    /// The health/version pair was updated with a read-then-store;
    /// two racing writers could leave the older health cached. Whatever the
    /// interleaving, the health of the highest version must win.
    #[test]
    fn racing_writers_leave_the_newest_version_cached() {
        for round in 0..200 {
            let e = Arc::new(Entry::new("id".into(), "t".into(), Health::Unknown, 0, None));
            let threads: Vec<_> = (1..=8i64)
                .map(|t| {
                    let e = e.clone();
                    std::thread::spawn(move || {
                        for v in 0..200i64 {
                            let version = v * 8 + t;
                            let h = if version % 2 == 0 { Health::Connected } else { Health::Disconnected };
                            e.set_health(h, version);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            // The highest version written is 199 * 8 + 8 = 1600 (even): Connected.
            assert_eq!(e.health(), Health::Connected, "round {round}");
            assert_eq!(e.health.load(Ordering::Acquire) >> 8, 1600);
        }
    }

    #[test]
    fn dirty_entries_are_taken_once_and_handed_back_after_a_failed_flush() {
        let idx = LiveIndex::default();
        let e = Arc::new(Entry::new("id".into(), "t".into(), Health::Connected, 0, None));
        idx.map.write().unwrap().entry("p".into()).or_default().insert("n".into(), e.clone());
        e.touch(Ts(5));
        e.touch(Ts(3)); // coalesced: the later time wins
        let dirty = idx.take_dirty();
        assert_eq!(dirty.len(), 1);
        assert_eq!(dirty[0].last_webhook(), Ts(5));
        assert!(idx.take_dirty().is_empty(), "taken once");
        dirty[0].touch(dirty[0].last_webhook()); // the write failed: retry next round
        assert_eq!(idx.take_dirty().len(), 1);
    }

    #[test]
    fn connecting_signals_are_debounced() {
        let e = Entry::new("id".into(), "t".into(), Health::Connected, 0, None);
        assert!(e.connecting_due(Ts(10_000), 5_000));
        assert!(!e.connecting_due(Ts(12_000), 5_000));
        assert!(e.connecting_due(Ts(15_000), 5_000));
    }
}
