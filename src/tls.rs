//! One TLS crypto provider for the whole process: rustls with `ring`
//! (reqwest, sqlx and lettre all use it; no OpenSSL, no aws-lc).

use std::sync::Once;

/// Install the process-wide rustls provider; idempotent.
pub fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err only means another provider is already installed: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
