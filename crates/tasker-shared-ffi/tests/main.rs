//! Integration tests of tasker-shared-ffi, in one binary so they link once.
//!
//! They need the default features. A cfg rather than `required-features`: the Ruby gem vendors this crate
//! without its tests/, and a `[[test]]` entry naming a missing file would break that build.
#![cfg(all(
    feature = "native",
    feature = "sqlite",
    feature = "postgres",
    feature = "testkit",
    feature = "scenario"
))]

mod suite;
