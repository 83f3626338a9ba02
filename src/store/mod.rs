//! Small key-value state with expiry, shared by the request-id records and
//! the ReplaceSigner saga progress. The in-process backend is bounded; a
//! store shared by several replicas implements the same trait.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use crate::error::Result;

pub mod redis;
pub use redis::RedisStore;

#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Writes `value`, replacing any earlier one.
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()>;

    /// Writes `value` only if `key` holds nothing; true when it did.
    async fn claim(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<bool>;

    async fn delete(&self, key: &str) -> Result<()>;
}

/// In-process store: at most `capacity` live entries; when full, expired
/// entries go first, then the ones closest to expiry.
pub struct MemoryStore {
    capacity: usize,
    entries: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

impl MemoryStore {
    pub const DEFAULT_CAPACITY: usize = 100_000;

    pub fn new(capacity: usize) -> MemoryStore {
        MemoryStore {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Vec<u8>, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn make_room(entries: &mut HashMap<String, (Vec<u8>, Instant)>, capacity: usize) {
        if entries.len() < capacity {
            return;
        }
        let now = Instant::now();
        entries.retain(|_, (_, expires)| *expires > now);
        while entries.len() >= capacity {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            entries.remove(&oldest);
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
        let entries = self.lock();
        Ok(entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone()))
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let mut entries = self.lock();
        if !entries.contains_key(key) {
            Self::make_room(&mut entries, self.capacity);
        }
        entries.insert(key.to_owned(), (value, Instant::now() + ttl));
        Ok(())
    }

    async fn claim(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<bool> {
        let mut entries = self.lock();
        let now = Instant::now();
        if entries.get(key).is_some_and(|(_, expires)| *expires > now) {
            return Ok(false);
        }
        Self::make_room(&mut entries, self.capacity);
        entries.insert(key.to_owned(), (value, now + ttl));
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().remove(key);
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
        assert_eq!(store.lock().len(), 3);
        assert!(store.get("k9").await.unwrap().is_some(), "newest kept");
        assert!(store.get("k0").await.unwrap().is_none(), "oldest evicted");
    }
}
