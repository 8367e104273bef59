//! Simulated providers: in-process HTTP servers that speak what wa-sentinel
//! uses of Evolution API v2 ([`evolution`]), WAHA ([`waha`]) and Z-API
//! ([`zapi`]), with scripted misbehaviour (latency, injected 500s, whole-server
//! outages, stuck webhook dispatchers, unlicensed answers, version changes).
//! `wa-sentinel demo`, the integration tests and the benchmarks run the real
//! daemon against them; they are compiled into the binary for the demo.
//!
//! They are not provider clients (those are [`crate::providers`]): nothing
//! in the daemon calls them. The WAHA and Z-API simulators share one HTTP
//! core ([`server`]); the Evolution one keeps its own, older router but the
//! same [`server::Serving`] lifecycle.
//!
//! Every simulator hands out the same real QR code ([`SIM_QR_TEXT`], drawn
//! as a scannable PNG) and pairing code, so the re-pair page can be tested
//! end to end.

pub mod evolution;
pub mod server;
pub mod waha;
pub mod zapi;

/// What `post_webhook` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Posted; the receiver answered this status.
    Sent(u16),
    /// Not posted, and why (zombie, no webhook configured, event not subscribed).
    Suppressed(&'static str),
}

/// The QR string every simulator hands out, and its PNG (a real, scannable
/// QR code of that string, drawn once).
pub const SIM_QR_TEXT: &str =
    "2@wa-sentinel-simulator,c2ltdWxhdGVkLXB1YmxpYy1rZXk=,c2ltdWxhdGVkLWlkZW50aXR5,c2ltdWxhdGVkLWFkdg==";

/// The pairing code every simulator hands out for a number.
pub const SIM_PAIRING_CODE: &str = "WZYEH1YY";

/// The PNG of [`SIM_QR_TEXT`], as the simulators serve it.
pub fn sim_qr_png() -> &'static [u8] {
    static PNG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PNG.get_or_init(|| crate::pairing::qr_png(SIM_QR_TEXT).expect("a short QR string"))
}

/// [`sim_qr_png`] as a data URL, as Evolution, Z-API and W-API hand it out.
pub fn sim_qr_data_url() -> String {
    use base64::Engine;
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(sim_qr_png()))
}
