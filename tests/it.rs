//! Integration tests: one binary, one module per area under `tests/it/`.

#[path = "it/providers.rs"]
mod providers;
