//! Provider-client tests: wiremock contract tests over every copied fixture
//! (`tests/fixtures/`), error classification, inbound parsing (tables and
//! property tests), and round trips against the in-process simulators.

mod errors;
mod evolution;
mod inbound;
mod messaging;
mod simulator;
mod waha;
mod wapi;
mod zapi;

use std::time::Duration;

use wa_sentinel::config::{ApiVersion, DesiredWebhook, ProviderConfig, ProviderKind, Secret};
use wa_sentinel::providers::{ProviderClient, Recovered};
use wiremock::ResponseTemplate;

pub const EVO_KEY: &str = "evo-global-key-123";
pub const WAPI_TOKEN: &str = "wapi-instance-token-xyz";
pub const WAPI_INTEGRATOR: &str = "wapi-integrator-token-abc";

/// The text of `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> String {
    let p = format!("{}/tests/fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("fixture {p}: {e}"))
}

pub fn fixture_json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel} is not JSON: {e}"))
}

/// A JSON response with a fixture body.
pub fn json_fixture(status: u16, rel: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(rel), "application/json")
}

pub fn json_body(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_string(), "application/json")
}

pub fn evo_cfg(base_url: &str, version: ApiVersion) -> ProviderConfig {
    ProviderConfig {
        api_version: version,
        api_key: Some(Secret::literal(EVO_KEY)),
        discover: true,
        ..ProviderConfig::new("evo", ProviderKind::Evolution, base_url, Secret::literal("hook-token"))
    }
}

pub fn wapi_cfg(base_url: &str, integrator: bool, body_key: &str) -> ProviderConfig {
    ProviderConfig {
        api_key: integrator.then(|| Secret::literal(WAPI_INTEGRATOR)),
        discover: integrator,
        webhook_body_key: body_key.into(),
        ..ProviderConfig::new("wapi", ProviderKind::Wapi, base_url, Secret::literal("hook-token"))
    }
}

pub fn evo(base_url: &str, version: ApiVersion) -> ProviderClient {
    ProviderClient::new(&evo_cfg(base_url, version), Duration::from_secs(5)).expect("client")
}

pub fn desired(events: &[&str], by_events: bool) -> DesiredWebhook {
    DesiredWebhook { events: events.iter().map(|s| s.to_string()).collect(), by_events, base64: false }
}

/// Matches requests that do NOT carry the header (e.g. `GET /` without `apikey`).
pub struct NoHeader(pub &'static str);

impl wiremock::Match for NoHeader {
    fn matches(&self, request: &wiremock::Request) -> bool {
        !request.headers.contains_key(self.0)
    }
}

/// The description of a recovery call that must have been sent.
pub trait SentExt {
    fn sent(self) -> String;
}

impl SentExt for Recovered {
    fn sent(self) -> String {
        match self {
            Recovered::Sent(d) => d,
            Recovered::Skipped(d) => panic!("expected a call to be sent, but nothing was: {d}"),
        }
    }
}
