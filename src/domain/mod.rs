//! The pure health core: plain data and plain functions that decide what
//! happens to an instance. No tokio, no sqlx, no reqwest here — the clock is
//! passed in, identifiers are passed in, and every decision is testable
//! without a runtime, a database or a network.
//!
//! - [`instance`]: who an instance is ([`InstanceKey`]) and how healthy it is ([`Health`]).
//! - [`status`]: the normalised provider status and provider error classes.
//! - [`policy`]: the knobs of the behaviour rules (docs/rules.md: cooldowns, thresholds), already validated.
//! - [`notice`]: notice kinds, severities and dedup keys.
//! - [`health`]: [`health::step`], the instance state machine.
//! - [`provider`]: [`provider::provider_step`], the provider-wide outage state machine.
//! - [`gate`]: the one policy gate — may we act on an instance, may we speak about it.
//! - [`breaker`]: the circuit breaker of a provider's poll pipeline.
//! - [`assignment`]: how providers are shared out among replicas.
//! - [`leadership`]: the shared plan and the lease decisions of one replica round (and the safety net).
//! - [`availability`]: connected share, outages, MTTR and the uptime bar of an instance over a window.
//! - [`tenancy`]: whose an instance is — one resolution over config, API, SQL source, pattern, default.
//! - [`stream`]: the events a SaaS application follows (health changes, outages, maintenance, tenants).
//! - [`watch`]: since when a provider has been watched without a gap (what silence is measured from).
//! - [`describe`]: observations in an operator's words, for the audit log people read.
//! - [`ops_channel`]: whether a notice may go through a `whatsapp` notifier's instance, digests, pacing.
//! - [`pairing`]: re-pair links — what a link answers, which outages get one, the page's reload period.

pub mod assignment;
pub mod availability;
pub mod breaker;
pub mod describe;
pub mod gate;
pub mod health;
pub mod instance;
pub mod leadership;
pub mod notice;
pub mod ops_channel;
pub mod pairing;
pub mod policy;
pub mod provider;
pub mod status;
pub mod stream;
pub mod tenancy;
pub mod time;
pub mod watch;

pub use health::{Action, Change, InstanceState, Observation, OutageState, RecoveryKind, StepOutput, step};
pub use instance::{Health, InstanceKey};
pub use notice::{Notice, NoticeKind, Severity};
pub use policy::Policy;
pub use status::{ProviderErrorKind, ProviderStatus, WebhookSignal};
pub use time::Ts;
