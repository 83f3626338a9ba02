//! The event log: ordered, deduplicated by event id, trimmed by age and
//! count. In process it is a bounded queue a restart loses; with Redis it
//! is one Stream every replica appends to and reads from.

use std::{
    collections::{HashSet, VecDeque},
    sync::Mutex,
    time::Duration,
};

use async_trait::async_trait;

use crate::error::{GatewayError, Reason, Result};

/// A position in the log: `<ms>-<seq>` (Redis Stream ids, and the same
/// shape in process), compared as a pair of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor(u64, u64);

impl Cursor {
    pub(crate) const START: Cursor = Cursor(0, 0);

    pub(crate) fn parse(text: &str) -> Option<Cursor> {
        let (ms, seq) = text.split_once('-')?;
        Some(Cursor(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// How long and how many events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    pub(crate) age: Duration,
    pub(crate) max_events: usize,
}

/// One recorded event: its cursor and its encoded `pb::Event` (cursor
/// field empty).
pub(crate) type Entry = (Cursor, Vec<u8>);

pub(crate) fn cursor_expired() -> GatewayError {
    GatewayError::new(
        Reason::EventCursorExpired,
        "the cursor is older than the retained events; re-read the state with GetDocument or GetInvitation, then watch from now",
    )
}

#[async_trait]
pub(crate) trait EventLog: Send + Sync + 'static {
    /// Appends unless an event with `id` is already recorded; the new
    /// event's cursor, or `None` for a duplicate.
    async fn append(&self, id: &str, payload: Vec<u8>) -> Result<Option<Cursor>>;

    /// Events after `after` (exclusive), oldest first, at most `limit`;
    /// EVENT_CURSOR_EXPIRED when `after` is older than what is kept.
    async fn after(&self, after: Cursor, limit: usize) -> Result<Vec<Entry>>;

    /// The newest event's cursor (`START` when empty): "from now on".
    async fn newest(&self) -> Result<Cursor>;
}

/// The in-process log.
pub(crate) struct MemoryLog {
    retention: Retention,
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    next: u64,
    /// (cursor, id, payload, recorded at)
    events: VecDeque<(Cursor, String, Vec<u8>, tokio::time::Instant)>,
    ids: HashSet<String>,
    /// Cursor of the newest event dropped by retention.
    trimmed_up_to: Option<Cursor>,
}

impl MemoryLog {
    pub(crate) fn new(retention: Retention) -> MemoryLog {
        MemoryLog {
            retention,
            state: Mutex::default(),
        }
    }
}

impl MemoryState {
    fn trim(&mut self, retention: Retention) {
        let now = tokio::time::Instant::now();
        while self.events.len() > retention.max_events
            || self
                .events
                .front()
                .is_some_and(|e| now.duration_since(e.3) > retention.age)
        {
            if let Some((cursor, id, _, _)) = self.events.pop_front() {
                self.ids.remove(&id);
                self.trimmed_up_to = Some(cursor);
            }
        }
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn append(&self, id: &str, payload: Vec<u8>) -> Result<Option<Cursor>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.trim(self.retention);
        if !state.ids.insert(id.to_owned()) {
            return Ok(None);
        }
        state.next += 1;
        let cursor = Cursor(0, state.next);
        let now = tokio::time::Instant::now();
        state
            .events
            .push_back((cursor, id.to_owned(), payload, now));
        state.trim(self.retention);
        Ok(Some(cursor))
    }

    async fn after(&self, after: Cursor, limit: usize) -> Result<Vec<Entry>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.trim(self.retention);
        if state.trimmed_up_to.is_some_and(|trimmed| after < trimmed) {
            return Err(cursor_expired());
        }
        Ok(state
            .events
            .iter()
            .filter(|e| e.0 > after)
            .take(limit)
            .map(|e| (e.0, e.2.clone()))
            .collect())
    }

    async fn newest(&self) -> Result<Cursor> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state
            .events
            .back()
            .map_or(state.trimmed_up_to.unwrap_or(Cursor::START), |e| e.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_once_per_id_and_reads_after_a_cursor() {
        let log = MemoryLog::new(Retention {
            age: Duration::from_secs(3600),
            max_events: 3,
        });
        let first = log.append("a", b"1".to_vec()).await.unwrap().unwrap();
        assert_eq!(
            log.append("a", b"1".to_vec()).await.unwrap(),
            None,
            "a duplicate"
        );
        let second = log.append("b", b"2".to_vec()).await.unwrap().unwrap();
        assert!(second > first);
        let read = log.after(first, 10).await.unwrap();
        assert_eq!(read, vec![(second, b"2".to_vec())]);
        assert_eq!(log.newest().await.unwrap(), second);
        assert_eq!(Cursor::parse(&second.to_string()), Some(second));
        // Past the count bound the oldest go, and a cursor before them expires.
        for id in ["c", "d", "e"] {
            log.append(id, vec![]).await.unwrap();
        }
        let error = log.after(first, 10).await.unwrap_err();
        assert_eq!(error.reason(), Reason::EventCursorExpired);
        assert_eq!(log.after(Cursor(0, 3), 10).await.unwrap().len(), 2);
    }
}
