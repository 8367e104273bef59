//! One TLS crypto provider for the whole process: rustls with `ring`
//! (reqwest, sqlx and lettre all use it; no OpenSSL, no aws-lc), and one
//! client TLS configuration shared by every HTTP client: reqwest would load
//! the platform's trust anchors (~0.5 MiB) again for each of them — for each
//! provider and notifier, at every config reload.

use std::sync::{Once, OnceLock};

use rustls_platform_verifier::ConfigVerifierExt;

/// Install the process-wide rustls provider; idempotent.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only means another provider is already installed: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The process's client TLS configuration (platform verifier, ALPN h2 and
/// HTTP/1.1), for `reqwest::ClientBuilder::tls_backend_preconfigured`. Clones
/// share the verifier and its anchors.
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_crypto();
            let mut c = rustls::ClientConfig::with_platform_verifier()
                .map_err(|e| format!("cannot load the system's TLS trust anchors: {e}"))?;
            c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Ok(c)
        })
        .clone()
}
