use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::*;

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn views(v: &[(&str, &[&str])]) -> Views {
    v.iter().map(|(r, ps)| (r.to_string(), set(ps))).collect()
}

fn counts(v: &[(&str, u64)]) -> BTreeMap<String, u64> {
    v.iter().map(|(p, n)| (p.to_string(), *n)).collect()
}

#[test]
fn replicas_weighing_providers_differently_still_hand_every_provider_to_someone() {
    // Discovery is changing the counts: A reads p1 = 10, B reads p2 = 10.
    let live = views(&[("A", &["p1", "p2"]), ("B", &["p1", "p2"])]);
    let a = next_plan(None, &live, &counts(&[("p1", 10)])).expect("A writes the first plan");
    // B reads the plan A wrote: with its own counts it proposes nothing.
    assert_eq!(next_plan(Some(&a), &live, &counts(&[("p2", 10)])), None);
    let leases = BTreeMap::new();
    let mut took = BTreeMap::new();
    for r in ["A", "B"] {
        let acts = lease_actions(
            &Round {
                me: r,
                known: &set(&["p1", "p2"]),
                plan: &a,
                leases: &leases,
                busy: &BTreeSet::new(),
                now_ms: 0,
                ttl_ms: 15,
            },
            &mut Memory::default(),
        );
        for (p, act) in acts {
            if act == LeaseAction::Take {
                assert!(took.insert(p.clone(), r).is_none(), "{p} taken twice");
            }
        }
    }
    assert_eq!(took.len(), 2, "every provider taken by one replica: {took:?}");
}

#[test]
fn counts_weigh_a_replan_but_never_cause_one() {
    let live = views(&[("a", &["p", "q", "r"]), ("b", &["p", "q", "r"])]);
    let plan = next_plan(None, &live, &BTreeMap::new()).unwrap();
    assert_eq!(plan.version, 1);
    assert_eq!(next_plan(Some(&plan), &live, &counts(&[("p", 500), ("q", 1)])), None);
    // A replica joins: now the counts weigh the replan.
    let live = views(&[("a", &["p", "q", "r"]), ("b", &["p", "q", "r"]), ("c", &["p", "q", "r"])]);
    let next = next_plan(Some(&plan), &live, &counts(&[("p", 500)])).unwrap();
    assert_eq!(next.version, 2);
    assert_eq!(next.members, set(&["a", "b", "c"]));
    let mut leaders: Vec<&String> = next.leaders.values().collect();
    leaders.sort();
    leaders.dedup();
    assert_eq!(leaders.len(), 3, "{next:?}");
}

#[test]
fn a_provider_goes_only_to_a_replica_that_configures_it_and_a_new_one_moves_nothing_else() {
    let live = views(&[("a", &["p1", "p2"]), ("b", &["p1", "p2"])]);
    let plan = next_plan(None, &live, &BTreeMap::new()).unwrap();
    // `a` reloads with p3 added: only p3 is placed, on `a`.
    let live = views(&[("a", &["p1", "p2", "p3"]), ("b", &["p1", "p2"])]);
    let next = next_plan(Some(&plan), &live, &counts(&[("p1", 90)])).unwrap();
    assert_eq!(next.leaders["p3"], "a");
    assert_eq!(next.leaders["p1"], plan.leaders["p1"]);
    assert_eq!(next.leaders["p2"], plan.leaders["p2"]);
    // The replica leading p1 drops it from its config: p1 moves to the other.
    let holder = next.leaders["p1"].clone();
    let other = if holder == "a" { "b" } else { "a" };
    let mut live = live;
    live.get_mut(&holder).unwrap().remove("p1");
    let last = next_plan(Some(&next), &live, &BTreeMap::new()).unwrap();
    assert_eq!(last.leaders["p1"], other);
}

#[test]
fn a_provider_no_live_replica_configures_stays_in_the_plan() {
    let live = views(&[("a", &["p1"]), ("b", &["p1", "p9"])]);
    let plan = next_plan(None, &live, &BTreeMap::new()).unwrap();
    assert_eq!(plan.leaders["p9"], "b");
    // `b` is gone; `a` never knew p9: the entry stays, nobody leads it.
    let live = views(&[("a", &["p1"])]);
    let next = next_plan(Some(&plan), &live, &BTreeMap::new()).unwrap();
    assert_eq!(next.leaders["p9"], "b");
    assert_eq!(next.leaders["p1"], "a");
    assert_eq!(next_plan(Some(&next), &live, &BTreeMap::new()), None, "and it causes no replan");
}

#[test]
fn a_provider_unleased_for_a_ttl_is_rescued_and_kept_until_the_version_changes() {
    let plan = Plan { version: 4, members: set(&["a", "b"]), leaders: [("p".to_string(), "b".to_string())].into() };
    let known = set(&["p"]);
    let none = BTreeMap::new();
    let idle = BTreeSet::new();
    let mut m = Memory::default();
    assert!(
        lease_actions(
            &Round { me: "a", known: &known, plan: &plan, leases: &none, busy: &idle, now_ms: 1_000, ttl_ms: 15_000 },
            &mut m
        )
        .is_empty()
    );
    assert!(
        lease_actions(
            &Round { me: "a", known: &known, plan: &plan, leases: &none, busy: &idle, now_ms: 15_999, ttl_ms: 15_000 },
            &mut m
        )
        .is_empty()
    );
    let acts = lease_actions(
        &Round { me: "a", known: &known, plan: &plan, leases: &none, busy: &idle, now_ms: 16_000, ttl_ms: 15_000 },
        &mut m,
    );
    assert_eq!(acts, vec![("p".to_string(), LeaseAction::Rescue)]);
    m.rescued("p", 4, 16_000);
    let mine: BTreeMap<String, String> = [("p".to_string(), "a".to_string())].into();
    let acts = lease_actions(
        &Round { me: "a", known: &known, plan: &plan, leases: &mine, busy: &idle, now_ms: 21_000, ttl_ms: 15_000 },
        &mut m,
    );
    assert_eq!(acts, vec![("p".to_string(), LeaseAction::Take)], "kept under the same version");
    let v5 = Plan { version: 5, ..plan.clone() };
    let busy = set(&["p"]);
    let acts = lease_actions(
        &Round { me: "a", known: &known, plan: &v5, leases: &mine, busy: &busy, now_ms: 26_000, ttl_ms: 15_000 },
        &mut m,
    );
    assert_eq!(acts, vec![("p".to_string(), LeaseAction::Renew)], "handed over between cycles");
    let acts = lease_actions(
        &Round { me: "a", known: &known, plan: &v5, leases: &mine, busy: &idle, now_ms: 31_000, ttl_ms: 15_000 },
        &mut m,
    );
    assert_eq!(acts, vec![("p".to_string(), LeaseAction::Release)]);
}

/// Replica `a`'s round over `p` (which it configures) under plan version 4,
/// which gives `p` to `b`; lease TTL 15 s. `mine`: `a` holds `p`'s lease,
/// else nobody does.
fn a_round_over_p(mine: bool, busy: bool, now_ms: i64, m: &mut Memory) -> Vec<(String, LeaseAction)> {
    let plan = Plan { version: 4, members: set(&["a", "b"]), leaders: [("p".to_string(), "b".to_string())].into() };
    let leases: BTreeMap<String, String> =
        if mine { [("p".to_string(), "a".to_string())].into() } else { BTreeMap::new() };
    let busy = if busy { set(&["p"]) } else { BTreeSet::new() };
    lease_actions(
        &Round { me: "a", known: &set(&["p"]), plan: &plan, leases: &leases, busy: &busy, now_ms, ttl_ms: 15_000 },
        m,
    )
}

fn p(action: LeaseAction) -> Vec<(String, LeaseAction)> {
    vec![("p".to_string(), action)]
}

/// A provider its planned leader had not taken yet (that leader died, or
/// dropped it by a reload) is rescued just after the replan that gives it to
/// a live replica: kept for the whole version, it would stay against the
/// plan until the version next changed. It is kept for one lease TTL, then
/// handed back to the plan's leader between cycles.
#[test]
fn a_rescue_under_an_unchanged_plan_is_handed_back_after_a_lease_period() {
    let mut m = Memory::default();
    // Seen unleased from 1 s, rescued at 16 s (as the edge records it).
    assert_eq!(a_round_over_p(false, false, 1_000, &mut m), vec![]);
    assert_eq!(a_round_over_p(false, false, 16_000, &mut m), p(LeaseAction::Rescue));
    m.rescued("p", 4, 16_000);
    assert_eq!(a_round_over_p(true, false, 21_000, &mut m), p(LeaseAction::Take));
    assert_eq!(a_round_over_p(true, false, 30_999, &mut m), p(LeaseAction::Take), "kept for a whole TTL");
    assert_eq!(a_round_over_p(true, true, 31_000, &mut m), p(LeaseAction::Renew), "its cycle ends first");
    assert_eq!(a_round_over_p(true, false, 36_000, &mut m), p(LeaseAction::Release), "then it goes back");
    // Should the plan's leader not take it, it is rescued again only after a
    // whole TTL unleased, never at once.
    assert_eq!(a_round_over_p(false, false, 41_000, &mut m), vec![]);
    assert_eq!(a_round_over_p(false, false, 55_999, &mut m), vec![]);
    assert_eq!(a_round_over_p(false, false, 56_000, &mut m), p(LeaseAction::Rescue));
}

/// A rescuer that misses rounds past its rescue (its lease expires meanwhile)
/// starts a new unleased clock when it comes back: it does not rescue the
/// provider again at once on the clock of before its rescue.
#[test]
fn a_rescue_ends_the_unleased_clock_it_was_made_on() {
    let mut m = Memory::default();
    assert_eq!(a_round_over_p(false, false, 1_000, &mut m), vec![]);
    assert_eq!(a_round_over_p(false, false, 16_000, &mut m), p(LeaseAction::Rescue));
    m.rescued("p", 4, 16_000);
    assert_eq!(a_round_over_p(false, false, 40_000, &mut m), vec![], "a new clock starts at 40 s");
    assert_eq!(a_round_over_p(false, false, 55_000, &mut m), p(LeaseAction::Rescue));
}

#[test]
fn a_lease_seen_again_restarts_the_safety_net_clock() {
    let plan = Plan { version: 1, members: set(&["a", "b"]), leaders: [("p".to_string(), "b".to_string())].into() };
    let known = set(&["p"]);
    let idle = BTreeSet::new();
    let held: BTreeMap<String, String> = [("p".to_string(), "b".to_string())].into();
    let mut m = Memory::default();
    lease_actions(
        &Round {
            me: "a",
            known: &known,
            plan: &plan,
            leases: &BTreeMap::new(),
            busy: &idle,
            now_ms: 0,
            ttl_ms: 15_000,
        },
        &mut m,
    );
    lease_actions(
        &Round { me: "a", known: &known, plan: &plan, leases: &held, busy: &idle, now_ms: 10_000, ttl_ms: 15_000 },
        &mut m,
    );
    let acts = lease_actions(
        &Round {
            me: "a",
            known: &known,
            plan: &plan,
            leases: &BTreeMap::new(),
            busy: &idle,
            now_ms: 16_000,
            ttl_ms: 15_000,
        },
        &mut m,
    );
    assert!(acts.is_empty(), "unleased for 0 s, not 16 s: {acts:?}");
}

#[test]
fn a_provider_dropped_from_the_config_is_released_after_its_cycle() {
    let plan = Plan { version: 1, members: set(&["a"]), leaders: [("p".to_string(), "a".to_string())].into() };
    let mine: BTreeMap<String, String> = [("p".to_string(), "a".to_string())].into();
    let mut m = Memory::default();
    let acts = lease_actions(
        &Round {
            me: "a",
            known: &BTreeSet::new(),
            plan: &plan,
            leases: &mine,
            busy: &set(&["p"]),
            now_ms: 0,
            ttl_ms: 15_000,
        },
        &mut m,
    );
    assert_eq!(acts, vec![("p".to_string(), LeaseAction::Renew)]);
    let acts = lease_actions(
        &Round {
            me: "a",
            known: &BTreeSet::new(),
            plan: &plan,
            leases: &mine,
            busy: &BTreeSet::new(),
            now_ms: 5_000,
            ttl_ms: 15_000,
        },
        &mut m,
    );
    assert_eq!(acts, vec![("p".to_string(), LeaseAction::Release)]);
}

// ---------------------------------------------------------------------------
// A model of several replicas over the shared table: the plan row (written
// with compare-and-set on its version), the views, and exclusive expiring
// leases with the store's semantics (`try_lease` takes a lease that is free,
// its own or expired: `expires_at <= now`; a lease is live while
// `expires_at > now`). Each replica's round reads its snapshot at one moment
// and applies its writes a little later, interleaved with the others.

/// Time unit: 0.1 s. The daemon's lease TTL (15 s) and round period (5 s).
const TTL: i64 = 150;
const PERIOD: i64 = 50;
/// How long a round takes between its reads and its writes, at most.
const ROUND: i64 = 5;
/// The liveness bound the model checks: a whole TTL, one round period, and
/// one round's own duration.
const BOUND: i64 = TTL + PERIOD + ROUND;

#[derive(Debug, Clone)]
struct ReplicaPlan {
    known: BTreeSet<String>,
    start: i64,
    death: Option<i64>,
    /// A rolling reload: at this time its provider list becomes the new one.
    reload: Option<(i64, BTreeSet<String>)>,
    phase: i64,
}

#[derive(Debug, Clone)]
struct Scenario {
    replicas: Vec<ReplicaPlan>,
    seed: u64,
    end: i64,
}

#[derive(Default)]
struct Table {
    plan: Option<Plan>,
    views: BTreeMap<String, BTreeSet<String>>,
    heartbeats: BTreeMap<String, i64>,
    leases: BTreeMap<String, (String, i64)>,
    writes: usize,
}

impl Table {
    fn try_lease(&mut self, p: &str, me: &str, now: i64) -> bool {
        let ok = self.leases.get(p).is_none_or(|(h, exp)| h == me || *exp <= now);
        if ok {
            self.leases.insert(p.to_string(), (me.to_string(), now + TTL));
        }
        ok
    }

    fn live_leases(&self, now: i64) -> BTreeMap<String, String> {
        self.leases.iter().filter(|(_, (_, exp))| *exp > now).map(|(p, (h, _))| (p.clone(), h.clone())).collect()
    }
}

struct Sim {
    name: String,
    known: BTreeSet<String>,
    memory: Memory,
    flags: BTreeSet<String>,
    busy_before: BTreeSet<String>,
    pending: Option<Pending>,
}

struct Pending {
    read_version: Option<i64>,
    proposal: Option<Plan>,
    leases: BTreeMap<String, String>,
    read_at: i64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Default)]
struct Outcome {
    /// The longest stretch (model units) a provider configured by a live
    /// replica had no leader, counted from the later of its start and the
    /// last replica death or reload.
    worst_gap: i64,
    /// The same, counted from its start whatever happened meanwhile (several
    /// replicas dying one after another each cost a TTL).
    worst_raw_gap: i64,
    plan_writes: usize,
    events: usize,
    /// At the end, after every start, death and reload has settled: the
    /// providers led by a replica other than the one the plan names
    /// (`provider, leader, planned`).
    strays: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// A start, a death or a reload: nothing but the time it happens.
    Mark,
    Read,
    Apply,
}

fn alive(r: &ReplicaPlan, t: i64) -> bool {
    t >= r.start && r.death.is_none_or(|d| t < d)
}

/// The last death or reload at or before `t`.
fn last_change(s: &Scenario, t: i64) -> Option<i64> {
    s.replicas.iter().flat_map(|r| [r.death, r.reload.as_ref().map(|(at, _)| *at)]).flatten().filter(|c| *c <= t).max()
}

/// Run one scenario; panics when a provider has two leaders at once.
fn simulate(s: &Scenario) -> Outcome {
    let mut rng = Rng(s.seed | 1);
    let mut table = Table::default();
    let mut sims: Vec<Sim> = s
        .replicas
        .iter()
        .enumerate()
        .map(|(i, r)| Sim {
            name: format!("r{i}"),
            known: r.known.clone(),
            memory: Memory::default(),
            flags: BTreeSet::new(),
            busy_before: BTreeSet::new(),
            pending: None,
        })
        .collect();
    // Every round: a read at `phase + k·PERIOD`, its writes up to ROUND later.
    let mut events: Vec<(i64, u64, usize, Ev)> = Vec::new();
    for (i, r) in s.replicas.iter().enumerate() {
        let mut t = r.start + r.phase;
        while t < s.end {
            // Its writes strictly after its reads (and before its next round).
            let d = 1 + rng.below(ROUND as u64) as i64;
            events.push((t, rng.next(), i, Ev::Read));
            events.push((t + d, rng.next(), i, Ev::Apply));
            t += PERIOD;
        }
        let marks = [Some(r.start), r.death, r.reload.as_ref().map(|(at, _)| *at)];
        for at in marks.into_iter().flatten() {
            events.push((at, rng.next(), i, Ev::Mark));
        }
    }
    events.sort();
    let universe: BTreeSet<String> = s
        .replicas
        .iter()
        .flat_map(|r| r.known.iter().chain(r.reload.iter().flat_map(|(_, k)| k.iter())))
        .cloned()
        .collect();
    let mut out = Outcome::default();
    let mut unled_since: BTreeMap<String, i64> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let trace = std::env::var_os("LEADERSHIP_MODEL_TRACE").is_some();
    for (t, _, i, ev) in events {
        // Reloads and deaths take effect at their time.
        for (j, r) in s.replicas.iter().enumerate() {
            if let Some((at, k)) = &r.reload
                && t >= *at
                && sims[j].known != *k
            {
                sims[j].known = k.clone();
                out.events += 1;
            }
        }
        let r = &s.replicas[i];
        if alive(r, t) {
            let me = sims[i].name.clone();
            match ev {
                Ev::Mark => {}
                Ev::Read => {
                    // Discovery keeps changing the counts: each replica reads its own.
                    for p in &universe {
                        if rng.below(3) == 0 {
                            counts.insert(p.clone(), rng.below(200));
                        }
                    }
                    let sim = &mut sims[i];
                    table.views.insert(me.clone(), sim.known.clone());
                    // The heartbeat is taken at the start only when it is
                    // not live (the first round); renewed at the end.
                    if table.heartbeats.get(&me).is_none_or(|exp| *exp <= t) {
                        table.heartbeats.insert(me.clone(), t + TTL);
                    }
                    let mut live: Views = table
                        .heartbeats
                        .iter()
                        .filter(|(_, exp)| **exp > t)
                        .filter_map(|(h, _)| table.views.get(h).map(|v| (h.clone(), v.clone())))
                        .collect();
                    live.insert(me.clone(), sim.known.clone());
                    let current = table.plan.clone();
                    sim.pending = Some(Pending {
                        read_version: current.as_ref().map(|p| p.version),
                        proposal: next_plan(current.as_ref(), &live, &counts),
                        leases: table.live_leases(t),
                        read_at: t,
                    });
                }
                Ev::Apply => {
                    if let Some(pd) = sims[i].pending.take() {
                        let plan = match pd.proposal {
                            Some(next) if table.plan.as_ref().map(|p| p.version) == pd.read_version => {
                                table.plan = Some(next.clone());
                                table.writes += 1;
                                next
                            }
                            _ => table.plan.clone().expect("a plan was written"),
                        };
                        let sim = &mut sims[i];
                        // A cycle runs across at most one round: busy now
                        // only if led before and not busy at the last round.
                        let busy: BTreeSet<String> = sim
                            .flags
                            .iter()
                            .chain(pd.leases.iter().filter(|(_, h)| **h == me).map(|(p, _)| p))
                            .filter(|p| !sim.busy_before.contains(*p) && rng.below(3) == 0)
                            .cloned()
                            .collect();
                        let known = sim.known.clone();
                        let trace_plan = (plan.version, plan.leaders.clone(), pd.leases.clone());
                        let acts = lease_actions(
                            &Round {
                                me: &me,
                                known: &known,
                                plan: &plan,
                                leases: &pd.leases,
                                busy: &busy,
                                now_ms: pd.read_at,
                                ttl_ms: TTL,
                            },
                            &mut sim.memory,
                        );
                        let mut led = BTreeSet::new();
                        for (p, act) in acts {
                            match act {
                                LeaseAction::Take | LeaseAction::Rescue => {
                                    if table.try_lease(&p, &me, t) {
                                        if act == LeaseAction::Rescue {
                                            sim.memory.rescued(&p, plan.version, pd.read_at);
                                        }
                                        led.insert(p);
                                    }
                                }
                                LeaseAction::Renew => {
                                    if let Some((h, exp)) = table.leases.get_mut(&p)
                                        && *h == me
                                    {
                                        *exp = t + TTL;
                                    }
                                }
                                LeaseAction::Release => {
                                    if table.leases.get(&p).is_some_and(|(h, _)| *h == me) {
                                        table.leases.remove(&p);
                                    }
                                }
                            }
                        }
                        if trace {
                            eprintln!("{t} {me} known={:?} plan={trace_plan:?} led={led:?}", sim.known);
                        }
                        sim.flags = led;
                        sim.busy_before = busy;
                        // The heartbeat is renewed last: it outlives the leases.
                        table.heartbeats.insert(me.clone(), t + TTL);
                    }
                }
            }
        } else {
            sims[i].flags.clear();
            sims[i].pending = None;
        }
        // Never two leaders at once.
        for p in &universe {
            let leaders: Vec<&String> = sims
                .iter()
                .zip(&s.replicas)
                .filter(|(sim, r)| alive(r, t) && sim.flags.contains(p))
                .map(|(sim, _)| &sim.name)
                .collect();
            assert!(leaders.len() <= 1, "at {t} {p} has two leaders: {leaders:?}");
            let needed = sims.iter().zip(&s.replicas).any(|(sim, r)| alive(r, t) && sim.known.contains(p));
            let led = sims
                .iter()
                .zip(&s.replicas)
                .any(|(sim, r)| alive(r, t) && sim.flags.contains(p) && sim.known.contains(p));
            if needed && !led {
                unled_since.entry(p.clone()).or_insert(t);
            } else if let Some(since) = unled_since.remove(p) {
                if trace {
                    eprintln!("{p} leaderless from {since} to {t}");
                }
                out.worst_raw_gap = out.worst_raw_gap.max(t - since);
                // A replica that dies or reloads holding (or about to take)
                // a provider starts its own wait: measured from the last one.
                let last = last_change(s, t);
                out.worst_gap = out.worst_gap.max(t - last.map_or(since, |d| d.max(since)));
            }
        }
    }
    let last = last_change(s, s.end);
    for since in unled_since.values() {
        out.worst_raw_gap = out.worst_raw_gap.max(s.end - since);
        out.worst_gap = out.worst_gap.max(s.end - last.map_or(*since, |d| d.max(*since)));
    }
    if let Some(plan) = &table.plan {
        for sim in sims.iter().zip(&s.replicas).filter(|(_, r)| alive(r, s.end)).map(|(sim, _)| sim) {
            for p in &sim.flags {
                let planned = plan.leaders.get(p).cloned().unwrap_or_default();
                if planned != sim.name {
                    out.strays.push((p.clone(), sim.name.clone(), planned));
                }
            }
        }
    }
    out.plan_writes = table.writes;
    out.events += s.replicas.iter().filter(|r| r.death.is_some()).count() + s.replicas.len();
    out
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let replica = (
        proptest::sample::subsequence(vec!["p0", "p1", "p2", "p3", "p4", "p5"], 0..=6),
        0i64..400,
        proptest::option::weighted(0.4, 100i64..1500),
        proptest::option::weighted(
            0.4,
            (100i64..1500, proptest::sample::subsequence(vec!["p0", "p1", "p2", "p3"], 0..=4)),
        ),
        0i64..PERIOD,
    );
    (proptest::collection::vec(replica, 1..5), any::<u64>()).prop_map(|(rs, seed)| Scenario {
        replicas: rs
            .into_iter()
            .map(|(known, start, life, reload, phase)| ReplicaPlan {
                known: known.iter().map(|s| s.to_string()).collect(),
                start,
                death: life.map(|l| start + l),
                reload: reload.map(|(at, k)| (start + at, k.iter().map(|s| s.to_string()).collect())),
                phase,
            })
            .collect(),
        seed,
        end: 2500,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Replicas with different provider lists and different counts, joining,
    /// reloading and dying at random, interleaved at random against the
    /// shared plan and the leases: a provider configured by a live replica is
    /// led by exactly one replica within TTL + one period (and one round's
    /// duration), and never by two at once.
    #[test]
    fn every_configured_provider_has_one_leader_within_ttl_and_a_period(s in scenario()) {
        let out = simulate(&s);
        prop_assert!(out.worst_gap <= BOUND, "leaderless for {} (bound {BOUND}): {s:?}", out.worst_gap);
        // No flapping: the plan changes a bounded number of times per change
        // of membership or configuration, never with the counts alone.
        prop_assert!(out.plan_writes <= 4 * out.events, "{} plan writes for {} events", out.plan_writes, out.events);
        // Balanced again once things are quiet: every provider is led by the
        // replica the plan gives it to, none kept elsewhere.
        prop_assert!(out.strays.is_empty(), "led against the plan at the end: {:?}: {s:?}", out.strays);
    }
}

/// The worst leaderless stretch over many random runs, printed for the
/// record (`cargo test worst_leaderless -- --nocapture`; with
/// `LEADERSHIP_MODEL_TRACE=1` every round and stretch is printed).
#[test]
fn worst_leaderless_stretch_in_the_model_is_within_ttl_and_a_period() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = scenario();
    let (mut worst, mut raw) = (0, 0);
    for _ in 0..2000 {
        let s = strategy.new_tree(&mut runner).expect("a scenario").current();
        let out = simulate(&s);
        worst = worst.max(out.worst_gap);
        raw = raw.max(out.worst_raw_gap);
    }
    eprintln!(
        "worst leaderless stretch: {:.1} s after the last death or reload ({:.1} s across several in a row); TTL {} s, period {} s",
        worst as f64 / 10.0,
        raw as f64 / 10.0,
        TTL / 10,
        PERIOD / 10
    );
    assert!(worst <= BOUND, "{worst}");
}
