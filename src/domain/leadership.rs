//! Who leads which provider, decided from one shared snapshot. Replicas on one
//! PostgreSQL read their facts at different moments — instance counts while
//! discovery changes them, provider lists while a rolling reload is half
//! done — so a plan each replica computed on its own could hand a provider to
//! another replica on both sides, and nobody would lead it. Instead the plan
//! lives in the database under one version:
//!
//! - [`next_plan`]: each round, a replica compares the stored plan with the
//!   live replicas and the providers each one configures (their *views*),
//!   and proposes a new version only when it must: the membership changed
//!   (a full, balanced replan, [`crate::domain::assignment`]), or a provider
//!   some live replica configures is missing from the plan or given to a
//!   replica that is gone or does not configure it (only those move). The
//!   replica writes it with compare-and-set on the version, so every replica
//!   follows the same version; instance counts weigh a replan but never
//!   trigger one (no flapping while discovery runs). A provider no live
//!   replica configures keeps its entry: a replica never removes what it does
//!   not know.
//! - [`lease_actions`]: what to do with each provider lease this round — take
//!   (the plan gives it to this replica), keep it only while its running
//!   cycle ends (hand-over between cycles), release it, or **rescue** it: a
//!   provider that has had no live lease for a whole lease TTL is taken by any
//!   live replica that configures it, whatever the plan says, and kept until
//!   the plan's version changes or for about one more lease TTL (until the
//!   rescuer's first round a TTL after the rescue); then it is handed back to
//!   the plan's leader between cycles. (A rescue kept for the whole version
//!   would outlive the race it covers: a provider whose planned leader had
//!   not taken it yet — the leader died, or dropped it by a reload — is
//!   rescued just after the replan that gives it to a live replica, and
//!   stayed with the rescuer, against the plan, until the plan's version
//!   next changed.) The lease itself makes sure a provider never has two
//!   leaders at once.
//!
//! Pure: the clock and the snapshot are passed in. `src/lease.rs` is the edge
//! that reads the snapshot, writes the plan and applies the lease actions.

use std::collections::{BTreeMap, BTreeSet};

use super::assignment;

/// The shared plan: one version for every replica.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Raised by one at every write (compare-and-set on the previous one).
    pub version: i64,
    /// The live replicas it was made for.
    pub members: BTreeSet<String>,
    /// `provider → replica`.
    pub leaders: BTreeMap<String, String>,
}

/// The live replicas and the providers each one configures (its view).
pub type Views = BTreeMap<String, BTreeSet<String>>;

/// The plan to write instead of `current`, or `None` when `current` still
/// serves every live replica. `counts` weigh a replan (instances per
/// provider), they never cause one.
pub fn next_plan(current: Option<&Plan>, live: &Views, counts: &BTreeMap<String, u64>) -> Option<Plan> {
    if live.is_empty() {
        return None;
    }
    let members: BTreeSet<String> = live.keys().cloned().collect();
    let needed: BTreeSet<&String> = live.values().flatten().collect();
    let serves = |p: &str, r: &str| live.get(r).is_some_and(|k| k.contains(p));
    let version = current.map_or(1, |c| c.version + 1);
    let full = current.is_none_or(|c| c.members != members);
    let old = current.map(|c| &c.leaders);
    let mut leaders: BTreeMap<String, String> = BTreeMap::new();
    let mut todo: Vec<&String> = Vec::new();
    for p in &needed {
        match old.and_then(|o| o.get(*p)) {
            Some(r) if !full && serves(p, r) => {
                leaders.insert((*p).clone(), r.clone());
            }
            _ => todo.push(p),
        }
    }
    if !full && todo.is_empty() {
        return None;
    }
    // Entries of providers no live replica configures stay as they were.
    if let Some(o) = old {
        for (p, r) in o.iter().filter(|(p, _)| !needed.contains(p)) {
            leaders.insert(p.clone(), r.clone());
        }
    }
    let weight = |p: &str| counts.get(p).copied().unwrap_or(0).max(1);
    let mut load: BTreeMap<&String, u64> = members.iter().map(|r| (r, 0)).collect();
    for (p, r) in &leaders {
        if let Some(l) = load.get_mut(r)
            && serves(p, r)
        {
            *l += weight(p);
        }
    }
    let todo: Vec<(String, u64)> = todo.into_iter().map(|p| (p.clone(), weight(p))).collect();
    let eligible = |p: &str| -> Vec<&String> { members.iter().filter(|r| serves(p, r)).collect() };
    let previous = |p: &str| old.and_then(|o| o.get(p)).cloned();
    for (p, r) in assignment::assign_eligible(&mut load, &todo, eligible, previous) {
        leaders.insert(p, r);
    }
    Some(Plan { version, members, leaders })
}

/// What to do with one provider lease this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAction {
    /// Take or renew it: the plan gives it to this replica (or this replica
    /// rescued it under the current version). Lead it while held.
    Take,
    /// Take it as the safety net: it has had no live lease for a whole TTL.
    Rescue,
    /// Another replica should lead it, but its cycle is running here: keep
    /// the lease (without leading) until the cycle ends.
    Renew,
    /// Give it up: another replica takes it at its next round.
    Release,
}

/// What one replica remembers between its rounds (the safety net).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memory {
    /// Since when (this replica's clock, Unix ms) each provider it configures
    /// has been seen without a live lease, at every round since.
    unleased_since: BTreeMap<String, i64>,
    /// Providers this replica rescued, with the plan version it rescued them
    /// under and when (this replica's clock): kept until the version changes
    /// or a lease TTL has passed.
    rescued: BTreeMap<String, Rescue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rescue {
    version: i64,
    at_ms: i64,
}

impl Memory {
    /// Record that a [`LeaseAction::Rescue`] got the lease under `version` at
    /// `at_ms`. Its unleased clock ends here: should this replica miss rounds
    /// past the rescue, it does not come back to an old clock and rescue the
    /// provider again at once after handing it back.
    pub fn rescued(&mut self, provider: &str, version: i64, at_ms: i64) {
        self.unleased_since.remove(provider);
        self.rescued.insert(provider.to_string(), Rescue { version, at_ms });
    }
}

/// What one replica knows at one round, for [`lease_actions`].
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    /// This replica.
    pub me: &'a str,
    /// The providers it configures.
    pub known: &'a BTreeSet<String>,
    /// The shared plan it follows.
    pub plan: &'a Plan,
    /// `provider → holder` of each live provider lease, as read this round.
    pub leases: &'a BTreeMap<String, String>,
    /// Providers whose cycle runs here now.
    pub busy: &'a BTreeSet<String>,
    /// This replica's clock (Unix ms) and the lease TTL.
    pub now_ms: i64,
    pub ttl_ms: i64,
}

/// The lease actions of one replica for this round. Every provider it
/// configures or holds gets an action, except those it neither leads nor
/// holds (nothing to do).
pub fn lease_actions(round: &Round<'_>, memory: &mut Memory) -> Vec<(String, LeaseAction)> {
    let Round { me, known, plan, leases, busy, now_ms, ttl_ms } = *round;
    // A rescue is kept until the first round a lease TTL after it; then the
    // provider is handed back below like any other held against the plan,
    // and the plan's leader takes it at its next round. A leader that died
    // meanwhile loses it the way it would lose its own providers: its
    // heartbeat expires, the plan moves on (within the TTL and a round).
    // Should a live leader still not take it, the safety net catches it
    // again after a whole TTL unleased.
    memory.rescued.retain(|p, r| r.version == plan.version && known.contains(p) && now_ms - r.at_ms < ttl_ms);
    memory.unleased_since.retain(|p, _| known.contains(p) && !leases.contains_key(p));
    let held = |p: &str| leases.get(p).is_some_and(|h| h == me);
    let mut out = Vec::new();
    let mut all: BTreeSet<&String> = known.iter().collect();
    all.extend(leases.iter().filter(|(_, h)| *h == me).map(|(p, _)| p));
    for p in all {
        let let_go = if busy.contains(p) { LeaseAction::Renew } else { LeaseAction::Release };
        if !known.contains(p) {
            // Dropped from this replica's config: hand it over.
            if held(p) {
                out.push((p.clone(), let_go));
            }
            continue;
        }
        if !leases.contains_key(p) {
            memory.unleased_since.entry(p.clone()).or_insert(now_ms);
        }
        let planned = plan.leaders.get(p).is_some_and(|r| r == me);
        if planned || memory.rescued.contains_key(p) {
            out.push((p.clone(), LeaseAction::Take));
        } else if memory.unleased_since.get(p).is_some_and(|since| now_ms - since >= ttl_ms) {
            out.push((p.clone(), LeaseAction::Rescue));
        } else if held(p) {
            out.push((p.clone(), let_go));
        }
    }
    out
}

#[cfg(test)]
#[path = "leadership_tests.rs"]
mod tests;
