//! cordon-store's integration tests, in one test binary: one link, one process to start, shared helpers.

mod snapshot;
mod store;
mod tamper;
