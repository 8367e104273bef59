//! The circuit breaker of one provider's poll pipeline (rule 15, docs/rules.md).
//!
//! A provider that accepts connections but never answers costs a full
//! `request_timeout` per call. After [`Breaker::threshold`] consecutive
//! unreachable answers in a cycle the breaker opens: the rest of that
//! provider's instances are held (`unknown`, not called) and its verdict is
//! decided at once instead of after every timeout. The next cycle starts
//! half-open: a few probes go out first; one answer closes the breaker, all
//! probes failing keeps it open for another cycle.
//!
//! Only a server that was not reached counts (connection refused or reset, a
//! timeout), on consecutive calls — each to another instance, since a cycle
//! calls each once. Any answer proves the server is there and resets the
//! count (and closes a half-open breaker), a 5xx included: a 5xx about one
//! instance is that instance's problem (its own verdict), and a bad key
//! answers fast and costs nothing to confirm on every instance. The
//! half-open probes rotate over the provider's instances (the pipeline starts
//! them after the last instance the previous cycle called).

/// Consecutive unreachable answers that open the breaker.
pub const DEFAULT_THRESHOLD: u32 = 8;
/// Calls a half-open breaker lets through before anything else.
pub const DEFAULT_PROBES: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    threshold: u32,
    probes: u32,
    state: State,
    consecutive: u32,
    issued: u32,
    probe_failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    HalfOpen,
    Open,
}

impl Breaker {
    /// A breaker for one cycle: half-open when it was open at the end of the
    /// previous cycle, closed otherwise.
    pub fn for_cycle(was_open: bool, threshold: u32, probes: u32) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            probes: probes.max(1),
            state: if was_open { State::HalfOpen } else { State::Closed },
            consecutive: 0,
            issued: 0,
            probe_failures: 0,
        }
    }

    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// May one more call go out now?
    pub fn may_call(&self) -> bool {
        match self.state {
            State::Closed => true,
            State::HalfOpen => self.issued < self.probes,
            State::Open => false,
        }
    }

    /// A call went out.
    pub fn issued(&mut self) {
        self.issued += 1;
    }

    /// A call came back; `unreachable` when the server was not reached (connection
    /// refused or reset, a timeout). A 5xx answer is the server speaking: not
    /// counted here (rule 2, docs/rules.md).
    pub fn record(&mut self, unreachable: bool) {
        if !unreachable {
            self.consecutive = 0;
            if self.state == State::HalfOpen {
                self.state = State::Closed;
            }
            return;
        }
        self.consecutive += 1;
        match self.state {
            State::Closed if self.consecutive >= self.threshold => self.state = State::Open,
            State::HalfOpen => {
                self.probe_failures += 1;
                if self.probe_failures >= self.probes {
                    self.state = State::Open;
                }
            }
            _ => {}
        }
    }

    /// Open: the rest of the cycle's instances are held.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Still waiting for a probe to answer (neither closed nor open yet).
    pub fn probing(&self) -> bool {
        self.state == State::HalfOpen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(b: &mut Breaker, answers: &[bool]) -> u32 {
        let mut calls = 0;
        for &a in answers {
            if !b.may_call() {
                break;
            }
            b.issued();
            calls += 1;
            b.record(a);
        }
        calls
    }

    #[test]
    fn opens_after_threshold_consecutive_unreachable_answers() {
        let mut b = Breaker::for_cycle(false, 8, 3);
        assert_eq!(run(&mut b, &[true; 100]), 8);
        assert!(b.is_open());
    }

    #[test]
    fn an_answer_in_between_resets_the_count() {
        let mut b = Breaker::for_cycle(false, 3, 3);
        let answers = [true, true, false, true, true, false, true, true];
        assert_eq!(run(&mut b, &answers), 8);
        assert!(!b.is_open());
    }

    #[test]
    fn half_open_lets_probes_through_and_closes_on_an_answer() {
        let mut b = Breaker::for_cycle(true, 8, 3);
        assert!(b.probing());
        b.issued();
        b.issued();
        b.issued();
        assert!(!b.may_call(), "only the probes while half-open");
        b.record(true);
        b.record(false);
        assert!(!b.probing() && !b.is_open(), "one answer closes it");
        assert!(b.may_call());
    }

    #[test]
    fn half_open_reopens_when_every_probe_fails() {
        let mut b = Breaker::for_cycle(true, 8, 3);
        assert_eq!(run(&mut b, &[true; 10]), 3);
        assert!(b.is_open());
    }
}
