//! Small key-value state with expiry, shared by the request-id records and
//! the ReplaceSigner saga progress. The in-process backend is bounded; a
//! store shared by several replicas implements the same trait.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use moka::{Expiry, sync::Cache};

use crate::error::Result;

mod redis;
pub(crate) use self::redis::{RedisEventLog, RedisStore};

#[async_trait]
pub(crate) trait StateStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Writes `value`, replacing any earlier one.
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()>;

    /// Writes `value` only if `key` holds nothing; true when it did.
    async fn claim(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<bool>;

    async fn delete(&self, key: &str) -> Result<()>;

    /// Takes one call from every budget at once, atomically: `None` when
    /// all admit it (and all advance), else the wait until they would and
    /// the index of the budget that waits longest.
    async fn take_budget(&self, budgets: &[Budget]) -> Result<Option<(Duration, usize)>>;

    /// Adds `member` to the set at `key` (kept without expiry).
    async fn set_add(&self, key: &str, member: &str) -> Result<()>;

    async fn set_remove(&self, key: &str, member: &str) -> Result<()>;

    async fn set_members(&self, key: &str) -> Result<Vec<String>>;
}

/// A rate budget: at most `limit` calls in any `window` (a sliding window,
/// so a provider's "N per minute" holds exactly; a token bucket or GCRA
/// with a burst would let up to twice that through around a window edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Shared by every replica that enforces the same budget.
    pub(crate) key: String,
    pub(crate) limit: u32,
    pub(crate) window: Duration,
}

/// In-process store: a `moka` cache with a time to live per entry, bounded
/// to `capacity` entries (least-recently-used first when full). `claim`
/// is atomic per key.
pub(crate) struct MemoryStore {
    entries: Cache<String, Entry>,
    /// The calls each budget counted in its window, behind one lock so a
    /// check over several budgets and their update are one step.
    budgets: Mutex<HashMap<String, VecDeque<Instant>>>,
    sets: Mutex<HashMap<String, std::collections::BTreeSet<String>>>,
}

/// A stored value with the time to live it was written with.
#[derive(Clone)]
struct Entry {
    value: Arc<[u8]>,
    ttl: Duration,
}

/// Each entry expires `ttl` after it was last written.
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _now: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _now: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl MemoryStore {
    pub(crate) const DEFAULT_CAPACITY: usize = 100_000;

    pub(crate) fn new(capacity: usize) -> MemoryStore {
        MemoryStore {
            entries: Cache::builder()
                .max_capacity(capacity.max(1) as u64)
                .expire_after(PerEntryTtl)
                .build(),
            budgets: Mutex::default(),
            sets: Mutex::default(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(MemoryStore::DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.entries.get(key).map(|entry| entry.value.to_vec()))
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        self.entries.insert(
            key.to_owned(),
            Entry {
                value: value.into(),
                ttl,
            },
        );
        Ok(())
    }

    async fn claim(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<bool> {
        if ttl.is_zero() {
            // Nothing to hold: the claim succeeds and is gone at once.
            return Ok(true);
        }
        let entry = self.entries.entry(key.to_owned()).or_insert_with(|| Entry {
            value: value.into(),
            ttl,
        });
        Ok(entry.is_fresh())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.entries.invalidate(key);
        Ok(())
    }

    async fn set_add(&self, key: &str, member: &str) -> Result<()> {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        sets.entry(key.to_owned())
            .or_default()
            .insert(member.to_owned());
        Ok(())
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = sets.get_mut(key) {
            set.remove(member);
        }
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        let sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        Ok(sets
            .get(key)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn take_budget(&self, budgets: &[Budget]) -> Result<Option<(Duration, usize)>> {
        Ok(take_budgets(
            &mut self.budgets.lock().unwrap_or_else(|e| e.into_inner()),
            budgets,
            tokio::time::Instant::now().into_std(),
        ))
    }
}

/// A sliding window over several budgets: all admit the call and record
/// it, or none changes and the answer is the longest wait and its budget
/// (the Redis script does the same on the server's clock).
fn take_budgets(
    windows: &mut HashMap<String, VecDeque<Instant>>,
    budgets: &[Budget],
    now: Instant,
) -> Option<(Duration, usize)> {
    let mut wait = (Duration::ZERO, 0);
    for (index, budget) in budgets.iter().enumerate() {
        let calls = windows.entry(budget.key.clone()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= budget.window)
        {
            calls.pop_front();
        }
        if calls.len() >= budget.limit as usize
            && let Some(oldest) = calls.front()
        {
            let this = (*oldest + budget.window).saturating_duration_since(now);
            if this > wait.0 {
                wait = (this, index);
            }
        }
    }
    if !wait.0.is_zero() {
        return Some(wait);
    }
    for budget in budgets {
        windows
            .entry(budget.key.clone())
            .or_default()
            .push_back(now);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn claims_once_until_deleted_or_expired() {
        let store = MemoryStore::new(10);
        let ttl = Duration::from_secs(60);
        assert!(store.claim("k", b"a".to_vec(), ttl).await.unwrap());
        assert!(!store.claim("k", b"b".to_vec(), ttl).await.unwrap());
        assert_eq!(store.get("k").await.unwrap(), Some(b"a".to_vec()));
        store.delete("k").await.unwrap();
        assert!(
            store
                .claim("k", b"c".to_vec(), Duration::ZERO)
                .await
                .unwrap()
        );
        assert_eq!(store.get("k").await.unwrap(), None, "expired at once");
        assert!(store.claim("k", b"d".to_vec(), ttl).await.unwrap());
    }

    fn budget(key: &str, limit: u32) -> Budget {
        Budget {
            key: key.into(),
            limit,
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn budgets_hold_per_window_and_move_together() {
        let mut windows = HashMap::new();
        let start = tokio::time::Instant::now().into_std();
        let requests = budget("requests", 3);
        let resends = budget("resends", 2);
        let both = [requests.clone(), resends.clone()];
        assert_eq!(take_budgets(&mut windows, &both, start), None);
        let later = start + Duration::from_secs(10);
        assert_eq!(take_budgets(&mut windows, &both, later), None);
        // The resend budget is spent until the first call leaves the
        // window; nothing is counted, not even against `requests`.
        let wait = take_budgets(&mut windows, &both, later).unwrap();
        assert_eq!(
            wait,
            (Duration::from_secs(50), 1),
            "the resend budget waits"
        );
        assert_eq!(
            take_budgets(&mut windows, std::slice::from_ref(&requests), later),
            None
        );
        assert!(take_budgets(&mut windows, std::slice::from_ref(&requests), later).is_some());
        let after = start + Duration::from_secs(60);
        assert_eq!(take_budgets(&mut windows, &[resends], after), None);
    }

    #[tokio::test]
    async fn stays_within_capacity() {
        let store = MemoryStore::new(3);
        for i in 0..10u64 {
            store
                .put(&format!("k{i}"), vec![], Duration::from_secs(100 + i))
                .await
                .unwrap();
        }
        store.entries.run_pending_tasks();
        assert!(store.entries.entry_count() <= 3);
    }
}
