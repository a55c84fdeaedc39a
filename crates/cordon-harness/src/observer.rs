//! Watching a run as it happens.

use cordon_core::Event;
use cordon_model::StreamEvent;

/// Receives what happens during a run, for display. Both methods default to doing nothing.
pub trait RunObserver: Send + Sync {
    /// A streamed piece of the model's answer (text, a tool call starting, a retry).
    fn on_stream(&self, _event: &StreamEvent) {}

    /// An event was appended to the run log.
    fn on_event(&self, _event: &Event) {}
}

/// Shows nothing.
pub(crate) struct Silent;

impl RunObserver for Silent {}
