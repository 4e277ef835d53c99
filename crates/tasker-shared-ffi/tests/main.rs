//! Integration tests of tasker-shared-ffi, in one binary so they link once.

mod suite;
