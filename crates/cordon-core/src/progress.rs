//! How far long work has got (building a workspace, taking or restoring a snapshot), told to
//! whoever draws it. The libraries report; a front end decides whether and how to show it.

/// Told how far one piece of long work has got. Implementations must be cheap: `advance`
/// may be called once per file.
pub trait Progress: Send + Sync {
    /// Work called `what` begins, `total` units long when that is known.
    fn begin(&self, what: &str, total: Option<u64>);
    /// `n` more units are done.
    fn advance(&self, n: u64);
    /// The work ended (done or failed).
    fn end(&self);
}

/// Progress no one watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, _n: u64) {}
    fn end(&self) {}
}
