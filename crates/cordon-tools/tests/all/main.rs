//! cordon-tools' integration tests, in one test binary: one link, one process to start, shared helpers.

mod patch_faults;
mod patch_roundtrip;
