//! The circuit breaker of one model endpoint: after `failure_threshold` consecutive failures
//! the endpoint is not called for `open_ms` (calls fail at once, so a dead provider costs one
//! timeout rather than one per request), then exactly one call is let through as a probe; its
//! success closes the circuit, its failure opens it again.
//!
//! Pure state: the clock is a parameter (milliseconds on any monotonic scale), so every
//! transition is tested without waiting. The server keeps one per endpoint, per replica.

/// How a breaker behaves (`[[model_endpoints]] circuit_failure_threshold`, `circuit_open_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitConfig {
    /// Consecutive failures that open the circuit; 0 disables the breaker.
    pub failure_threshold: u32,
    /// How long an open circuit refuses calls before it lets a probe through.
    pub open_ms: u64,
}

impl CircuitConfig {
    /// Default of `circuit_failure_threshold`.
    pub const DEFAULT_FAILURE_THRESHOLD: u32 = 5;
    /// Default of `circuit_open_ms`.
    pub const DEFAULT_OPEN_MS: u64 = 30_000;
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            failure_threshold: Self::DEFAULT_FAILURE_THRESHOLD,
            open_ms: Self::DEFAULT_OPEN_MS,
        }
    }
}

/// Where a circuit stands, as `/metrics` and `…/model-endpoints` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls fail at once until the open period ends.
    Open,
    /// The open period ended: one probe call decides.
    HalfOpen,
}

impl CircuitState {
    /// The wire name (`closed`, `open`, `halfOpen`).
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "halfOpen",
        }
    }

    /// The value of the `promptgate_circuit_state` gauge (0 closed, 1 open, 2 half-open).
    pub fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::Open => 1.0,
            CircuitState::HalfOpen => 2.0,
        }
    }
}

/// Whether a call may go to the endpoint. The caller reports the call's outcome with the
/// admission it got ([`Circuit::succeeded`], [`Circuit::failed`], [`Circuit::abandoned`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The circuit is closed (or disabled): call.
    Call,
    /// This call is the half-open circuit's one probe: its outcome decides.
    Probe,
    /// The circuit is open (or its probe is under way): do not call; it lets a call through
    /// again at `retry_at_ms` (on the clock given).
    Refused {
        /// When the next call (a probe) will be let through.
        retry_at_ms: u64,
    },
}

/// What the breaker reports of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitSnapshot {
    /// The state.
    pub state: CircuitState,
    /// Failures in a row since the last success.
    pub consecutive_failures: u32,
    /// While open: when it lets a probe through.
    pub open_until_ms: Option<u64>,
}

/// One endpoint's breaker.
#[derive(Debug, Clone)]
pub struct Circuit {
    config: CircuitConfig,
    state: CircuitState,
    consecutive_failures: u32,
    /// Open: the end of the open period. Half-open with a probe out: when that probe's lease
    /// ends (a probe whose outcome is never reported must not hold the circuit half-open
    /// forever).
    until_ms: u64,
    probe_out: bool,
}

/// What a reported outcome changed, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The state did not change.
    None,
    /// The circuit opened (from closed, or again from half-open).
    Opened,
    /// The circuit closed after a successful probe.
    Closed,
}

impl Circuit {
    /// A closed circuit.
    pub fn new(config: CircuitConfig) -> Self {
        Circuit {
            config,
            state: CircuitState::Closed,
            consecutive_failures: 0,
            until_ms: 0,
            probe_out: false,
        }
    }

    /// Whether a call may go now. An open circuit whose period ended becomes half-open and
    /// lets this one call through as its probe; calls beside the probe are refused.
    pub fn admit(&mut self, now_ms: u64) -> Admission {
        if self.config.failure_threshold == 0 {
            return Admission::Call;
        }
        match self.state {
            CircuitState::Closed => Admission::Call,
            CircuitState::Open | CircuitState::HalfOpen
                if now_ms >= self.until_ms
                    || !self.probe_out && self.state == CircuitState::HalfOpen =>
            {
                self.state = CircuitState::HalfOpen;
                self.probe_out = true;
                self.until_ms = now_ms.saturating_add(self.config.open_ms);
                Admission::Probe
            }
            CircuitState::Open | CircuitState::HalfOpen => Admission::Refused {
                retry_at_ms: self.until_ms,
            },
        }
    }

    /// The endpoint answered (anything but a failure: a request's own 4xx proves it is up).
    pub fn succeeded(&mut self, admission: Admission) -> Transition {
        match (admission, self.state) {
            (Admission::Call, CircuitState::Closed) => {
                self.consecutive_failures = 0;
                Transition::None
            }
            (Admission::Probe, CircuitState::HalfOpen) => {
                self.state = CircuitState::Closed;
                self.consecutive_failures = 0;
                self.probe_out = false;
                Transition::Closed
            }
            // A call let through before the circuit opened, or a refused one: it decides
            // nothing (only the probe closes an open circuit).
            _ => Transition::None,
        }
    }

    /// The endpoint failed (5xx, 429, 408, timeout, connection error, wrong key or model).
    pub fn failed(&mut self, admission: Admission, now_ms: u64) -> Transition {
        if self.config.failure_threshold == 0 {
            return Transition::None;
        }
        match (admission, self.state) {
            (Admission::Call, CircuitState::Closed) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                if self.consecutive_failures >= self.config.failure_threshold {
                    self.open(now_ms);
                    Transition::Opened
                } else {
                    Transition::None
                }
            }
            (Admission::Probe, CircuitState::HalfOpen) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.open(now_ms);
                Transition::Opened
            }
            _ => Transition::None,
        }
    }

    /// The call ended without saying anything of the endpoint (the caller went away, or no
    /// call slot was free): a probe's turn passes to the next call.
    pub fn abandoned(&mut self, admission: Admission) {
        if admission == Admission::Probe && self.state == CircuitState::HalfOpen {
            self.probe_out = false;
        }
    }

    /// The state as reported at `now_ms` (an open circuit past its period reads half-open:
    /// the next call probes).
    pub fn snapshot(&self, now_ms: u64) -> CircuitSnapshot {
        let state = match self.state {
            CircuitState::Open if now_ms >= self.until_ms => CircuitState::HalfOpen,
            state => state,
        };
        CircuitSnapshot {
            state,
            consecutive_failures: self.consecutive_failures,
            open_until_ms: (state == CircuitState::Open).then_some(self.until_ms),
        }
    }

    fn open(&mut self, now_ms: u64) {
        self.state = CircuitState::Open;
        self.probe_out = false;
        self.until_ms = now_ms.saturating_add(self.config.open_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit(threshold: u32) -> Circuit {
        Circuit::new(CircuitConfig {
            failure_threshold: threshold,
            open_ms: 1000,
        })
    }

    /// Fails `n` calls admitted at `now`.
    fn fail(c: &mut Circuit, n: u32, now: u64) -> Transition {
        let mut last = Transition::None;
        for _ in 0..n {
            let admission = c.admit(now);
            assert_eq!(admission, Admission::Call);
            last = c.failed(admission, now);
        }
        last
    }

    #[test]
    fn closed_counts_consecutive_failures_and_opens_at_the_threshold() {
        let mut c = circuit(3);
        assert_eq!(fail(&mut c, 2, 10), Transition::None);
        assert_eq!(c.snapshot(10).state, CircuitState::Closed);
        assert_eq!(c.snapshot(10).consecutive_failures, 2);
        assert_eq!(fail(&mut c, 1, 10), Transition::Opened);
        let snap = c.snapshot(10);
        assert_eq!(snap.state, CircuitState::Open);
        assert_eq!(snap.open_until_ms, Some(1010));
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut c = circuit(3);
        fail(&mut c, 2, 0);
        let admission = c.admit(0);
        assert_eq!(c.succeeded(admission), Transition::None);
        assert_eq!(c.snapshot(0).consecutive_failures, 0);
        assert_eq!(fail(&mut c, 2, 0), Transition::None);
        assert_eq!(c.snapshot(0).state, CircuitState::Closed);
    }

    #[test]
    fn open_refuses_until_its_period_ends_then_lets_one_probe_through() {
        let mut c = circuit(1);
        fail(&mut c, 1, 0);
        assert_eq!(c.admit(999), Admission::Refused { retry_at_ms: 1000 });
        assert_eq!(c.snapshot(1000).state, CircuitState::HalfOpen);
        assert_eq!(c.snapshot(1000).open_until_ms, None);
        assert_eq!(c.admit(1000), Admission::Probe);
        assert_eq!(c.snapshot(1000).state, CircuitState::HalfOpen);
    }

    #[test]
    fn concurrent_calls_beside_the_probe_are_refused() {
        let mut c = circuit(1);
        fail(&mut c, 1, 0);
        assert_eq!(c.admit(1000), Admission::Probe);
        for now in [1000, 1001, 1500] {
            assert!(matches!(c.admit(now), Admission::Refused { .. }));
        }
    }

    #[test]
    fn a_successful_probe_closes_the_circuit() {
        let mut c = circuit(2);
        fail(&mut c, 2, 0);
        let probe = c.admit(1000);
        assert_eq!(c.succeeded(probe), Transition::Closed);
        let snap = c.snapshot(1000);
        assert_eq!(snap.state, CircuitState::Closed);
        assert_eq!(snap.consecutive_failures, 0);
        assert_eq!(c.admit(1000), Admission::Call);
    }

    #[test]
    fn a_failed_probe_opens_the_circuit_again_for_a_full_period() {
        let mut c = circuit(2);
        fail(&mut c, 2, 0);
        let probe = c.admit(1000);
        assert_eq!(c.failed(probe, 1200), Transition::Opened);
        assert_eq!(c.admit(2199), Admission::Refused { retry_at_ms: 2200 });
        assert_eq!(c.admit(2200), Admission::Probe);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let mut c = circuit(1);
        fail(&mut c, 1, 0);
        let probe = c.admit(1000);
        c.abandoned(probe);
        assert_eq!(c.admit(1001), Admission::Probe);
    }

    #[test]
    fn a_probe_never_reported_loses_its_turn_after_a_period() {
        let mut c = circuit(1);
        fail(&mut c, 1, 0);
        assert_eq!(c.admit(1000), Admission::Probe);
        assert!(matches!(c.admit(1999), Admission::Refused { .. }));
        assert_eq!(c.admit(2000), Admission::Probe);
    }

    #[test]
    fn outcomes_of_calls_admitted_before_the_circuit_opened_decide_nothing() {
        let mut c = circuit(1);
        let early = c.admit(0);
        let late = c.admit(0);
        assert_eq!(c.failed(early, 0), Transition::Opened);
        // A call that was already under way succeeds: the circuit stays open until a probe.
        assert_eq!(c.succeeded(late), Transition::None);
        assert_eq!(c.snapshot(10).state, CircuitState::Open);
        let probe = c.admit(1000);
        // And one failing while the probe is out does not reopen it either.
        assert_eq!(c.failed(Admission::Call, 1000), Transition::None);
        assert_eq!(c.succeeded(probe), Transition::Closed);
    }

    #[test]
    fn a_threshold_of_zero_disables_the_breaker() {
        let mut c = circuit(0);
        for _ in 0..100 {
            let admission = c.admit(0);
            assert_eq!(admission, Admission::Call);
            assert_eq!(c.failed(admission, 0), Transition::None);
        }
        assert_eq!(c.snapshot(0).state, CircuitState::Closed);
    }

    #[test]
    fn wire_names_and_gauge_values() {
        assert_eq!(CircuitState::Closed.as_str(), "closed");
        assert_eq!(CircuitState::Open.as_str(), "open");
        assert_eq!(CircuitState::HalfOpen.as_str(), "halfOpen");
        assert_eq!(
            [
                CircuitState::Closed,
                CircuitState::Open,
                CircuitState::HalfOpen
            ]
            .map(CircuitState::gauge),
            [0.0, 1.0, 2.0]
        );
    }
}
