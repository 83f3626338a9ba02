//! Events: what happened to documents and invitations, in one ordered log
//! (`log`), fed by provider webhooks (`intake`) and by polling Bynn
//! (`poller`), and served by `esign.v1.EventService` (`service`).

pub(crate) mod intake;
mod log;
pub(crate) mod poller;
pub(crate) mod service;

use std::{sync::Arc, time::Duration};

use prost::Message as _;
use tokio::sync::{Notify, broadcast};

pub(crate) use self::log::{Cursor, Entry, EventLog, MemoryLog, Retention, cursor_expired};
use crate::{error::Result, pb};

/// How often a replica looks for events other replicas appended.
const TAIL_INTERVAL: Duration = Duration::from_millis(100);
/// Events a slow watcher may fall behind before it re-reads the log.
const BROADCAST_CAPACITY: usize = 4096;

/// A recorded event and its place in the log.
pub(crate) type Recorded = Arc<(Cursor, pb::Event)>;

/// The log, and the local fan-out of what is appended to it (here or by
/// another replica).
pub(crate) struct Events {
    log: Arc<dyn EventLog>,
    appended: Notify,
    live: broadcast::Sender<Recorded>,
}

impl Events {
    /// The events on `log`, with the task that tails it for watchers.
    pub(crate) fn start(log: Arc<dyn EventLog>) -> Arc<Events> {
        let (live, _) = broadcast::channel(BROADCAST_CAPACITY);
        let events = Arc::new(Events {
            log,
            appended: Notify::new(),
            live,
        });
        tokio::spawn(tail(Arc::downgrade(&events)));
        events
    }

    /// Records `event` unless its id is known; true when it is new. Returns
    /// only once it is durably in the log.
    pub(crate) async fn record(&self, event: pb::Event) -> Result<bool> {
        let id = event.id.clone();
        let appended = self.log.append(&id, event.encode_to_vec()).await?;
        if appended.is_some() {
            crate::metrics::global().event_emitted(&event.provider_event);
            self.appended.notify_one();
        }
        Ok(appended.is_some())
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Recorded> {
        self.live.subscribe()
    }

    pub(crate) async fn after(&self, after: Cursor, limit: usize) -> Result<Vec<Recorded>> {
        Ok(self
            .log
            .after(after, limit)
            .await?
            .into_iter()
            .filter_map(decode)
            .collect())
    }

    pub(crate) async fn newest(&self) -> Result<Cursor> {
        self.log.newest().await
    }
}

fn decode((cursor, payload): Entry) -> Option<Recorded> {
    let mut event = pb::Event::decode(payload.as_slice()).ok()?;
    event.cursor = cursor.to_string();
    Some(Arc::new((cursor, event)))
}

/// Follows the log and hands new events to this replica's watchers, woken
/// at once by a local append and every `TAIL_INTERVAL` for other replicas'.
async fn tail(events: std::sync::Weak<Events>) {
    let mut last = None;
    loop {
        let Some(events) = events.upgrade() else {
            return;
        };
        let position = match last {
            Some(cursor) => Ok(cursor),
            None => events.newest().await,
        };
        if let Ok(position) = position {
            last = Some(position);
            match events.after(position, 1000).await {
                Ok(batch) => {
                    for recorded in batch {
                        last = Some(recorded.0);
                        // No watcher is fine: the log keeps it.
                        let _ = events.live.send(recorded);
                    }
                }
                // Fell behind retention: carry on from the newest.
                Err(_) => last = None,
            }
        }
        tokio::select! {
            _ = events.appended.notified() => {}
            _ = tokio::time::sleep(TAIL_INTERVAL) => {}
        }
    }
}

/// A stable event id from what identifies one notification, so a
/// redelivery, or the same notification at two replicas, is one event.
pub(crate) fn event_id(parts: &[&str]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        context.update(part.as_bytes());
        context.update(b"\0");
    }
    context
        .finish()
        .as_ref()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}
