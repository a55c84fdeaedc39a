//! A run's events as a stream: what its observers see, also sent to every subscriber.
//!
//! Subscribers get a bounded queue each ([`EVENT_QUEUE`] events). One that falls further
//! behind is told how many it missed (`RecvError::Lagged`) and never slows the run: every
//! logged event is in the run log, which `Store::events` reads back.

use cordon_core::Event;
use cordon_harness::RunObserver;
use cordon_model::StreamEvent;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many events a subscriber may fall behind before it misses some.
pub const EVENT_QUEUE: usize = 4096;

/// What a run's subscribers receive.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A streamed piece of the model's answer (text, a tool call starting, a retry).
    Stream(StreamEvent),
    /// An event appended to the run log, as stored (secrets replaced).
    Logged(Event),
}

/// Hands each event to the run's observers and its subscribers.
pub(crate) struct Fanout {
    observers: Vec<Arc<dyn RunObserver>>,
    tx: broadcast::Sender<RunEvent>,
}

impl Fanout {
    pub(crate) fn new(observers: Vec<Arc<dyn RunObserver>>) -> Self {
        Fanout {
            observers,
            tx: broadcast::channel(EVENT_QUEUE).0,
        }
    }

    pub(crate) fn sender(&self) -> broadcast::Sender<RunEvent> {
        self.tx.clone()
    }
}

impl RunObserver for Fanout {
    fn on_stream(&self, event: &StreamEvent) {
        for o in &self.observers {
            o.on_stream(event);
        }
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(RunEvent::Stream(event.clone()));
        }
    }

    fn on_event(&self, event: &Event) {
        for o in &self.observers {
            o.on_event(event);
        }
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(RunEvent::Logged(event.clone()));
        }
    }
}
