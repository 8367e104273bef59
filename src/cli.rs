//! The commands behind the binary (SPEC §1).
