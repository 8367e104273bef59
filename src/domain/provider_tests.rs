//! Provider-wide outages: unreachable, unlicensed, silent; the remediation
//! schedule; version changes. Unit tests plus property tests of the invariants.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

const MIN: i64 = 60_000;

fn down() -> CycleSummary {
    CycleSummary { calls: 5, provider_errors: 5, error: Some(ProviderErrorKind::Unreachable), connected: 0 }
}
fn up() -> CycleSummary {
    CycleSummary { calls: 5, provider_errors: 1, error: Some(ProviderErrorKind::Unreachable), connected: 4 }
}

fn remediation(max: u32, on: &[ProviderCause]) -> RemediationPolicy {
    RemediationPolicy {
        command: vec!["/usr/bin/systemctl".into(), "restart".into(), "evolution-api".into()],
        timeout: Duration::from_secs(60),
        cooldown: Duration::from_secs(30 * 60),
        max_attempts: max,
        on: on.to_vec(),
        env: vec![],
    }
}

fn pp(rem: Option<RemediationPolicy>) -> ProviderPolicy {
    ProviderPolicy { silent_after: Duration::from_secs(15 * 60), silent_min_instances: 3, remediation: rem }
}

/// A provider driven minute by minute.
struct Sim {
    s: ProviderState,
    t: i64,
    last_hook: Option<Ts>,
    expected: bool,
    pp: ProviderPolicy,
    notices: Vec<Notice>,
    runs: Vec<RemediationRun>,
    n: u32,
    /// The last run has not finished.
    running: bool,
}

impl Sim {
    fn new(pp: ProviderPolicy) -> Sim {
        Sim {
            s: ProviderState::default(),
            t: 0,
            last_hook: None,
            expected: true,
            pp,
            notices: vec![],
            runs: vec![],
            n: 0,
            running: false,
        }
    }

    fn hook(&mut self) {
        self.last_hook = Some(Ts(self.t));
    }

    fn cycle(&mut self, c: CycleSummary, version: Option<&str>) -> ProviderStepOutput {
        self.n += 1;
        let id = format!("o{}", self.n);
        let input = ProviderInput {
            cycle: c,
            hooks: Webhooks { last: self.last_hook, expected: self.expected, watching_since: Ts(0) },
            version,
            provider: "evo",
            now: Ts(self.t),
            new_id: &id,
            remediation_running: self.running,
        };
        let out = provider_step(&self.s, &input, &Policy::default(), &self.pp);
        self.s = out.state.clone();
        self.notices.extend(out.notices.iter().cloned());
        self.runs.extend(out.remediate.iter().cloned());
        self.t += MIN;
        out
    }

    /// The remediation finished with `result` (what the runner writes back).
    fn ran(&mut self, result: &str) {
        if let Some(l) = self.s.last_remediation.as_mut() {
            l.result = Some(result.into());
        }
    }

    fn kinds(&self) -> Vec<NoticeKind> {
        self.notices.iter().map(|n| n.kind).collect()
    }
}

#[test]
fn one_unreachable_and_one_recovered_notice_per_provider_outage() {
    let mut sim = Sim::new(pp(None));
    sim.expected = false;
    for c in [down(), down(), down(), down(), up(), up(), down()] {
        sim.cycle(c, None);
    }
    let keys: Vec<_> = sim.notices.iter().map(|n| (n.kind, n.dedup_key.clone())).collect();
    assert_eq!(
        keys,
        vec![
            (NoticeKind::ProviderUnreachable, "outage:o2:provider_unreachable".to_string()),
            (NoticeKind::ProviderRecovered, "outage:o2:provider_recovered".to_string()),
        ]
    );
    assert!(!sim.s.is_down(), "one failed cycle after recovery is not yet an outage");
}

#[test]
fn a_cycle_without_calls_changes_nothing() {
    let p = Policy { down_after: 1, ..Policy::default() };
    let input = ProviderInput {
        cycle: CycleSummary::default(),
        hooks: Webhooks { last: None, expected: true, watching_since: Ts(0) },
        version: Some("2.3.7"),
        provider: "evo",
        now: Ts(100 * MIN),
        new_id: "x",
        remediation_running: false,
    };
    let out = provider_step(&ProviderState::default(), &input, &p, &pp(None));
    assert_eq!(out.state, ProviderState::default());
    assert!(out.notices.is_empty() && out.remediate.is_none());
}

#[test]
fn unlicensed_is_its_own_cause_with_an_activation_reason() {
    let mut sim = Sim::new(pp(None));
    let lic = CycleSummary { calls: 3, provider_errors: 3, error: Some(ProviderErrorKind::Unlicensed), connected: 0 };
    sim.cycle(lic, None);
    sim.cycle(lic, None);
    sim.cycle(lic, None);
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderUnreachable]);
    assert_eq!(sim.s.state_name(), "unlicensed");
    assert!(sim.notices[0].reason.contains("LICENSE_REQUIRED") && sim.notices[0].reason.contains("activation"));
    assert_eq!(sim.notices[0].cause.as_deref(), Some("unlicensed"), "the renderer titles it by this cause");
}

#[test]
fn silence_opens_one_outage_after_silent_after_and_webhooks_close_it() {
    let mut sim = Sim::new(pp(None));
    sim.hook(); // t = 0
    for _ in 0..15 {
        sim.cycle(up(), None); // minutes 0..14: not yet 15 minutes quiet
    }
    assert!(sim.notices.is_empty(), "{:?}", sim.kinds());
    for _ in 0..5 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderSilent]);
    assert_eq!(sim.notices[0].severity(), crate::domain::Severity::Warning);
    assert!(sim.notices[0].reason.contains("15m"), "{}", sim.notices[0].reason);
    assert_eq!(sim.s.state_name(), "silent");
    sim.hook();
    sim.cycle(up(), None);
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderSilent, NoticeKind::ProviderRecovered]);
    assert_eq!(sim.notices[1].recovered_by, Some(RecoveredBy::Webhook));
    assert_eq!(sim.notices[1].outage_id, sim.notices[0].outage_id);
    assert!(!sim.s.is_down());
}

#[test]
fn no_silence_below_the_minimum_of_connected_instances_or_without_expected_webhooks_or_when_off() {
    let few = CycleSummary { connected: 2, ..up() };
    let mut sim = Sim::new(pp(None));
    for _ in 0..60 {
        sim.cycle(few, None);
    }
    assert!(sim.notices.is_empty(), "2 connected < silent_min_instances 3");

    let mut sim = Sim::new(pp(None));
    sim.expected = false; // no webhook in this process's life, audit not ok
    for _ in 0..60 {
        sim.cycle(up(), None);
    }
    assert!(sim.notices.is_empty(), "webhooks were never expected");

    let mut sim = Sim::new(ProviderPolicy { silent_after: Duration::ZERO, ..pp(None) });
    for _ in 0..60 {
        sim.cycle(up(), None);
    }
    assert!(sim.notices.is_empty(), "silent_after = 0s turns it off");
}

#[test]
fn remediation_runs_once_per_cooldown_then_exhausts_with_one_notice() {
    let mut sim = Sim::new(pp(Some(remediation(2, &[ProviderCause::Silent]))));
    for _ in 0..16 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderSilent]);
    assert_eq!(sim.runs.len(), 1, "runs when the outage opens");
    let note = sim.notices[0].remediation.clone().expect("the notice says what will be done");
    assert_eq!(note.command, "/usr/bin/systemctl restart evolution-api");
    assert_eq!((note.attempt, note.result), (0, None), "about to run its first attempt");
    sim.ran("exit 0");
    for _ in 0..29 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.runs.len(), 1, "not again inside the 30m cooldown");
    sim.cycle(up(), None);
    assert_eq!(sim.runs.len(), 2, "again after the cooldown while still silent");
    assert_eq!(sim.runs[1].attempt, 2);
    sim.ran("exit 1");
    for _ in 0..29 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderSilent], "exhaustion waits for the last run's cooldown");
    for _ in 0..30 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.runs.len(), 2, "never more than remediate_max_attempts per outage");
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderSilent, NoticeKind::RemediationExhausted]);
    assert_eq!(sim.notices[1].cause.as_deref(), Some("silent"), "the text says it is still silent");
    let note = sim.notices[1].remediation.clone().unwrap();
    assert_eq!((note.attempt, note.max_attempts, note.result.as_deref()), (2, 2, Some("exit 1")));
    sim.hook();
    sim.cycle(up(), None);
    let rec = sim.notices.last().unwrap();
    assert_eq!(rec.kind, NoticeKind::ProviderRecovered);
    assert_eq!(rec.remediation.as_ref().and_then(|n| n.result.as_deref()), Some("exit 1"));
}

#[test]
fn a_second_silence_inside_the_cooldown_does_not_run_it_again() {
    let mut sim = Sim::new(pp(Some(remediation(2, &[ProviderCause::Silent]))));
    for _ in 0..16 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.runs.len(), 1);
    sim.ran("exit 0");
    sim.hook();
    sim.cycle(up(), None); // recovered at minute 16
    let pp2 = ProviderPolicy { silent_after: Duration::from_secs(5 * 60), ..sim.pp.clone() };
    sim.pp = pp2;
    for _ in 0..7 {
        sim.cycle(up(), None); // silent again 5 minutes later: minute ~22, inside the cooldown
    }
    assert_eq!(sim.kinds().iter().filter(|k| **k == NoticeKind::ProviderSilent).count(), 2);
    assert_eq!(sim.runs.len(), 1, "the provider's cooldown spans outages");
    for _ in 0..25 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.runs.len(), 2, "after the cooldown the new outage gets its run");
    assert_eq!(sim.runs[1].attempt, 1, "the budget is per outage");
}

#[test]
fn remediation_only_for_listed_causes() {
    let mut sim = Sim::new(pp(Some(remediation(2, &[ProviderCause::Silent]))));
    for _ in 0..5 {
        sim.cycle(down(), None);
    }
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderUnreachable]);
    assert!(sim.runs.is_empty(), "unreachable is not in remediate_on");
    assert!(sim.notices[0].remediation.is_none());

    let mut sim = Sim::new(pp(Some(remediation(1, &[ProviderCause::Unreachable]))));
    for _ in 0..5 {
        sim.cycle(down(), None);
    }
    assert_eq!(sim.runs.len(), 1);
    assert_eq!(sim.runs[0].cause, ProviderCause::Unreachable);
}

#[test]
fn unreachable_after_recovery_gives_webhooks_a_fresh_silent_after() {
    let mut sim = Sim::new(pp(None));
    sim.hook();
    for _ in 0..30 {
        sim.cycle(down(), None);
    }
    sim.cycle(up(), None);
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderUnreachable, NoticeKind::ProviderRecovered]);
    for _ in 0..10 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.kinds().len(), 2, "not silent right after answering again");
    for _ in 0..10 {
        sim.cycle(up(), None);
    }
    assert_eq!(sim.kinds().last(), Some(&NoticeKind::ProviderSilent));
}

#[test]
fn a_silent_provider_that_stops_answering_becomes_unreachable_in_the_same_outage() {
    let mut sim = Sim::new(pp(None));
    for _ in 0..16 {
        sim.cycle(up(), None);
    }
    for _ in 0..3 {
        sim.cycle(down(), None);
    }
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderSilent, NoticeKind::ProviderUnreachable]);
    assert_eq!(sim.notices[0].outage_id, sim.notices[1].outage_id);
    sim.cycle(up(), None);
    assert_eq!(sim.kinds().last(), Some(&NoticeKind::ProviderRecovered));
}

#[test]
fn a_version_change_is_one_notice_the_first_version_none() {
    let mut sim = Sim::new(pp(None));
    sim.expected = false;
    sim.cycle(up(), Some("2.3.6"));
    sim.cycle(up(), Some("2.3.6"));
    sim.cycle(up(), None); // unknown this cycle: keep the last
    sim.cycle(up(), Some("2.3.7"));
    sim.cycle(up(), Some("2.3.7"));
    assert_eq!(sim.kinds(), vec![NoticeKind::ProviderVersionChanged]);
    assert_eq!(sim.notices[0].reason, "version 2.3.6 → 2.3.7");
    assert!(sim.notices[0].outage_id.is_none());
    assert!(NoticeKind::ProviderVersionChanged.opt_in());
    assert_eq!(sim.s.version.as_deref(), Some("2.3.7"));
}

#[test]
fn instance_silence_is_held_while_the_whole_provider_is_quiet() {
    let stale = Duration::from_secs(5 * 60);
    let hooks = |last: i64| Webhooks { last: Some(Ts(last)), expected: true, watching_since: Ts(0) };
    let s = ProviderState::default();
    let p = pp(None);
    assert!(!holds_instance_silence(&s, 10, &hooks(0), Ts(2 * MIN), stale, &p), "quiet 2m < half of 5m");
    assert!(holds_instance_silence(&s, 10, &hooks(0), Ts(3 * MIN), stale, &p), "the whole provider quiet 3m");
    assert!(!holds_instance_silence(&s, 10, &hooks(5 * MIN), Ts(6 * MIN), stale, &p), "others get webhooks");
    assert!(!holds_instance_silence(&s, 2, &hooks(0), Ts(60 * MIN), stale, &p), "too few sessions to tell");
    let off = ProviderPolicy { silent_after: Duration::ZERO, ..p.clone() };
    assert!(!holds_instance_silence(&s, 10, &hooks(0), Ts(60 * MIN), stale, &off), "detection off");
    let silent = ProviderState {
        outage: Some(ProviderOutage {
            id: "o".into(),
            started_at: Ts(0),
            reason: String::new(),
            notified: true,
            cause: ProviderCause::Silent,
            remediation_attempts: 0,
            exhausted_notified: false,
        }),
        ..ProviderState::default()
    };
    assert!(holds_instance_silence(&silent, 0, &hooks(0), Ts(MIN), Duration::ZERO, &p), "an open silent outage");
}

#[test]
fn causes_round_trip() {
    for c in ProviderCause::ALL {
        assert_eq!(ProviderCause::parse(c.as_str()), Some(c));
        assert_eq!(ProviderCause::parse(c.column()), Some(c));
    }
}

fn arb_cycle() -> impl Strategy<Value = (CycleSummary, bool, u8)> {
    (0u32..6, 0u32..6, 0u32..6, any::<bool>(), 0u8..3).prop_map(|(calls, errs, connected, hook, v)| {
        let c = CycleSummary {
            calls,
            provider_errors: errs.min(calls),
            error: Some(if v == 2 { ProviderErrorKind::Unlicensed } else { ProviderErrorKind::Unreachable }),
            connected: connected.min(calls),
        };
        (c, hook, v)
    })
}

proptest! {
    /// Whatever happens: per outage at most one opening notice of each kind,
    /// one recovery after an opening notice, at most max_attempts runs, runs
    /// never closer than the cooldown, exhaustion only after the last run,
    /// and a version notice only for a real change.
    #[test]
    fn provider_invariants(steps in proptest::collection::vec((arb_cycle(), 1i64..20), 1..150)) {
        let rem = remediation(2, &[ProviderCause::Silent, ProviderCause::Unreachable]);
        let cooldown = rem.cooldown;
        let mut sim = Sim::new(ProviderPolicy {
            silent_after: Duration::from_secs(10 * 60),
            silent_min_instances: 2,
            remediation: Some(rem),
        });
        let mut run_times: Vec<i64> = Vec::new();
        let mut last_version: Option<String> = None;
        for ((c, hook, v), minutes) in steps {
            if hook { sim.hook(); }
            let version = ["2.3.6", "2.3.7", ""][v as usize % 3];
            let before = sim.runs.len();
            let t = sim.t;
            let out = sim.cycle(c, Some(version).filter(|v| !v.is_empty()));
            if sim.runs.len() > before { run_times.push(t); }
            let changed = out.notices.iter().filter(|n| n.kind == NoticeKind::ProviderVersionChanged).count();
            // A cycle without calls tells nothing, not even the version.
            let told = c.calls > 0 && !version.is_empty();
            let expect = usize::from(told && last_version.as_deref().is_some_and(|o| o != version));
            prop_assert_eq!(changed, expect);
            if told { last_version = Some(version.to_string()); }
            sim.t += (minutes - 1) * MIN;
        }
        for w in run_times.windows(2) {
            prop_assert!(Ts(w[1]).since(Ts(w[0])) >= cooldown, "runs {:?}", run_times);
        }
        let mut per_outage: std::collections::HashMap<String, Vec<NoticeKind>> = Default::default();
        for n in sim.notices.iter().filter(|n| n.outage_id.is_some()) {
            per_outage.entry(n.outage_id.clone().unwrap()).or_default().push(n.kind);
        }
        for (id, kinds) in &per_outage {
            for k in [NoticeKind::ProviderSilent, NoticeKind::ProviderUnreachable, NoticeKind::ProviderRecovered, NoticeKind::RemediationExhausted] {
                prop_assert!(kinds.iter().filter(|x| **x == k).count() <= 1, "{id}: {kinds:?}");
            }
            prop_assert!(matches!(kinds[0], NoticeKind::ProviderSilent | NoticeKind::ProviderUnreachable), "{kinds:?}");
            let runs = sim.runs.iter().filter(|r| &r.outage_id == id).count();
            prop_assert!(runs <= 2);
            if kinds.contains(&NoticeKind::RemediationExhausted) { prop_assert_eq!(runs, 2); }
        }
    }
}

/// A run that has not finished (a hanging command, a cooldown shorter than
/// the timeout) never gets a second run beside it; once it ends, the next
/// run is due as the cooldown says.
#[test]
fn no_second_remediation_run_while_one_is_running() {
    let r = RemediationPolicy { cooldown: Duration::from_secs(60), ..remediation(5, &[ProviderCause::Unreachable]) };
    let mut sim = Sim::new(pp(Some(r)));
    sim.expected = false;
    sim.cycle(down(), None);
    sim.cycle(down(), None);
    assert_eq!(sim.runs.len(), 1, "the outage opens and runs the command");
    sim.running = true;
    for _ in 0..10 {
        sim.cycle(down(), None);
    }
    assert_eq!(sim.runs.len(), 1, "the first run still runs: no second one");
    sim.running = false;
    sim.cycle(down(), None);
    assert_eq!(sim.runs.len(), 2);
}
