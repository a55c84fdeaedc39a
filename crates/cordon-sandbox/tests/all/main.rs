//! cordon-sandbox's integration tests (real sandboxes, and the escape suite), in one test binary: one link, one process to start, shared helpers.

mod egress;
mod escape;
mod smoke;
