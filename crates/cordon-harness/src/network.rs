//! What the run's sandbox did on the network, fed into the run log.

use cordon_core::EventPayload;

/// Where a run's network requests come from (the egress proxy's journal, for a sandbox
/// with a way out). The runner takes what is there before each event it records, so every
/// request is in the log before whatever the run records next: a tool's result, the next
/// model request, the run's end.
pub trait NetworkFeed: Send + Sync {
    /// The requests seen since the last call, as `network_request` events.
    fn take(&self) -> Vec<EventPayload>;
}
