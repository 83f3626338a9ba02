//! Small key-value state with expiry, shared by the request-id records and
//! the ReplaceSigner saga progress. The in-process backend is bounded; a
//! store shared by several replicas implements the same trait.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use moka::{Expiry, sync::Cache};

use crate::error::Result;

pub(crate) mod redis;
pub(crate) use redis::RedisStore;

#[async_trait]
pub(crate) trait StateStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Writes `value`, replacing any earlier one.
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()>;

    /// Writes `value` only if `key` holds nothing; true when it did.
    async fn claim(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<bool>;

    async fn delete(&self, key: &str) -> Result<()>;
}

/// In-process store: a `moka` cache with a time to live per entry, bounded
/// to `capacity` entries (least-recently-used first when full). `claim`
/// is atomic per key.
pub(crate) struct MemoryStore {
    entries: Cache<String, Entry>,
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
