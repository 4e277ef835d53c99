//! Integration tests of tasker-core, in one binary so they link once.

mod conformance;
mod hardening;
