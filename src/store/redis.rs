//! [`StateStore`] on Redis (the `redis` crate), so several replicas share
//! request-id records, saga progress and provider budgets: a single server
//! (`redis://`, or `rediss://` over rustls with an optional extra CA) through
//! a reconnecting connection manager, or a Redis Cluster.
//!
//! Every command is bounded by [`COMMAND_TIMEOUT`]; any failure is the
//! state store's own UNAVAILABLE error (never blamed on a provider), so a
//! billed call never runs without its duplicate check.

use std::time::Duration;

use async_trait::async_trait;
use redis::{
    AsyncCommands as _, Client, FromRedisValue, Script, TlsCertificates,
    aio::{ConnectionManager, ConnectionManagerConfig},
    cluster::ClusterClient,
    cluster_async::ClusterConnection,
};
use tokio::sync::OnceCell;

use super::{Budget, StateStore};
use crate::{
    config::RedisConfig,
    error::{GatewayError, MetaKey, Outcome, Reason, Result},
};

/// Each command must finish within this, or the store counts as down.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Connecting (TCP and TLS) must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A sliding window over every budget key at once: each key is a sorted
/// set of call times (ms, server clock). Either all budgets admit the call
/// and all record it, or none changes and the answer is the wait in ms and
/// the index of its budget. ARGV: limit and window per key, then a unique
/// member id. The keys of one account share a hash tag, so this also runs
/// on Redis Cluster.
const TAKE_BUDGET: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local member = ARGV[#ARGV]
local wait = 0
local which = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local until_free = tonumber(oldest[2]) + window - now
    if until_free > wait then
      wait = until_free
      which = i - 1
    end
  end
end
if wait > 0 then return {wait, which} end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, now .. ':' .. member)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i]))
end
return {0, 0}
";

pub(crate) struct RedisStore {
    target: Target,
    connection: OnceCell<Connection>,
    take_budget: Script,
}

enum Target {
    Single(Client),
    Cluster(ClusterClient),
}

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl RedisStore {
    /// Builds the client from configuration already validated at start; no
    /// connection is made until the first command.
    pub(crate) fn new(config: &RedisConfig) -> std::result::Result<RedisStore, String> {
        let certificates = || TlsCertificates {
            client_tls: None,
            root_cert: config.ca_pem.clone(),
        };
        let target = if config.cluster_urls.is_empty() {
            let url = config.url.as_deref().ok_or("no Redis URL")?;
            let client = if config.ca_pem.is_some() {
                Client::build_with_tls(url, certificates())
            } else {
                Client::open(url)
            };
            Target::Single(client.map_err(|e| e.to_string())?)
        } else {
            let mut builder = ClusterClient::builder(config.cluster_urls.clone())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(COMMAND_TIMEOUT);
            if config.ca_pem.is_some() {
                builder = builder.certs(certificates());
            }
            Target::Cluster(builder.build().map_err(|e| e.to_string())?)
        };
        Ok(RedisStore {
            target,
            connection: OnceCell::new(),
            take_budget: Script::new(TAKE_BUDGET),
        })
    }

    /// The shared connection, made on first use; a failed attempt is
    /// retried by the next call. Once made, it reconnects by itself.
    async fn connection(&self) -> Result<Connection> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let connect = async {
                    match &self.target {
                        Target::Single(client) => {
                            // Few, short reconnect attempts: a caller waits
                            // on them, and the next call tries again anyway.
                            let config = ConnectionManagerConfig::new()
                                .set_connection_timeout(CONNECT_TIMEOUT)
                                .set_response_timeout(COMMAND_TIMEOUT)
                                .set_number_of_retries(1)
                                .set_exponent_base(2)
                                .set_factor(50)
                                .set_max_delay(500);
                            ConnectionManager::new_with_config(client.clone(), config)
                                .await
                                .map(Connection::Single)
                        }
                        Target::Cluster(client) => {
                            client.get_async_connection().await.map(Connection::Cluster)
                        }
                    }
                };
                match tokio::time::timeout(CONNECT_TIMEOUT * 2, connect).await {
                    Ok(Ok(connection)) => Ok(connection),
                    Ok(Err(error)) => Err(unavailable(&error.to_string())),
                    Err(_) => Err(unavailable("connecting timed out")),
                }
            })
            .await?;
        Ok(connection.clone())
    }

    async fn query<T: FromRedisValue>(&self, command: &redis::Cmd) -> Result<T> {
        let connection = self.connection().await?;
        let run = async {
            match connection {
                Connection::Single(mut c) => command.query_async::<T>(&mut c).await,
                Connection::Cluster(mut c) => command.query_async::<T>(&mut c).await,
            }
        };
        bounded(run).await
    }

    /// Connects and pings once, logging a clear line when that fails (a
    /// wrong CA, a refused connection), so an operator sees it at start.
    pub(crate) async fn probe(&self) {
        match self.query::<String>(&redis::cmd("PING")).await {
            Ok(_) => tracing::info!("state store reachable"),
            Err(error) => tracing::error!(
                error = %error,
                cause = error.metadata(MetaKey::Cause).unwrap_or_default(),
                "state store unreachable; calls with a request_id fail until it is back"
            ),
        }
    }
}

async fn bounded<T>(run: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
    match tokio::time::timeout(COMMAND_TIMEOUT, run).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(unavailable(&error.to_string())),
        Err(_) => Err(unavailable("command timed out")),
    }
}

/// The state store is down: UNAVAILABLE of its own, nothing was sent.
fn unavailable(cause: &str) -> GatewayError {
    tracing::warn!(cause, "state store call failed");
    GatewayError::new(
        Reason::StateStoreUnavailable,
        "the gateway's shared state store (Redis) is unreachable; nothing was sent",
    )
    .with_metadata(MetaKey::Component, "state-store")
    // Redis error texts name hosts and commands, never values or secrets.
    .with_metadata(MetaKey::Cause, cause.chars().take(200).collect::<String>())
    .with_outcome(Outcome::NotSent)
    .with_retry_after(Duration::from_secs(1))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[async_trait]
impl StateStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        self.query::<()>(
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl)),
        )
        .await
    }

    async fn claim(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<bool> {
        let reply: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let connection = self.connection().await?;
        let run = async {
            match connection {
                Connection::Single(mut c) => c.del::<_, ()>(key).await,
                Connection::Cluster(mut c) => c.del::<_, ()>(key).await,
            }
        };
        bounded(run).await
    }

    async fn set_add(&self, key: &str, member: &str) -> Result<()> {
        self.query::<()>(redis::cmd("SADD").arg(key).arg(member))
            .await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        self.query::<()>(redis::cmd("SREM").arg(key).arg(member))
            .await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        self.query(redis::cmd("SMEMBERS").arg(key)).await
    }

    async fn take_budget(&self, budgets: &[Budget]) -> Result<Option<(Duration, usize)>> {
        if budgets.is_empty() {
            return Ok(None);
        }
        let mut invocation = self.take_budget.prepare_invoke();
        for budget in budgets {
            invocation
                .key(&budget.key)
                .arg(budget.limit)
                .arg(millis(budget.window));
        }
        invocation.arg(uuid::Uuid::new_v4().simple().to_string());
        let connection = self.connection().await?;
        let run = async {
            match connection {
                Connection::Single(mut c) => invocation.invoke_async::<(u64, u64)>(&mut c).await,
                Connection::Cluster(mut c) => invocation.invoke_async::<(u64, u64)>(&mut c).await,
            }
        };
        let (wait_ms, which) = bounded(run).await?;
        Ok((wait_ms > 0).then(|| (Duration::from_millis(wait_ms), which as usize)))
    }
}

/// Appends an event to the shared Stream unless its id was seen: the
/// dedupe key and the entry are written together, so a failure leaves
/// neither and the provider's redelivery is recorded then. Trims by count
/// (approximately) and by age on the server's clock. KEYS: stream, seen
/// key; ARGV: payload, retention ms, max events.
const APPEND_EVENT: &str = r"
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[1])
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 - tonumber(ARGV[2])
redis.call('XTRIM', KEYS[1], 'MINID', tostring(oldest))
return id
";

/// Every event key shares one hash tag, so the script runs on a cluster.
const EVENT_STREAM: &str = "{esign-events}:stream";

/// The event log on a Redis Stream, shared by every replica.
pub(crate) struct RedisEventLog {
    store: std::sync::Arc<RedisStore>,
    retention: crate::events::Retention,
    append: Script,
}

impl RedisEventLog {
    pub(crate) fn new(
        store: std::sync::Arc<RedisStore>,
        retention: crate::events::Retention,
    ) -> RedisEventLog {
        RedisEventLog {
            store,
            retention,
            append: Script::new(APPEND_EVENT),
        }
    }

    async fn range(&self, start: &str, count: usize) -> Result<Vec<crate::events::Entry>> {
        let reply: redis::streams::StreamRangeReply = self
            .store
            .query(
                redis::cmd("XRANGE")
                    .arg(EVENT_STREAM)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(count),
            )
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .filter_map(|entry| {
                let cursor = crate::events::Cursor::parse(&entry.id)?;
                let payload: Vec<u8> = entry.get("e")?;
                Some((cursor, payload))
            })
            .collect())
    }
}

#[async_trait]
impl crate::events::EventLog for RedisEventLog {
    async fn append(&self, id: &str, payload: Vec<u8>) -> Result<Option<crate::events::Cursor>> {
        let mut invocation = self.append.prepare_invoke();
        invocation
            .key(EVENT_STREAM)
            .key(format!("{{esign-events}}:seen:{id}"))
            .arg(payload)
            .arg(millis(self.retention.age))
            .arg(self.retention.max_events);
        let connection = self.store.connection().await?;
        let run = async {
            match connection {
                Connection::Single(mut c) => {
                    invocation.invoke_async::<Option<String>>(&mut c).await
                }
                Connection::Cluster(mut c) => {
                    invocation.invoke_async::<Option<String>>(&mut c).await
                }
            }
        };
        Ok(bounded(run)
            .await?
            .and_then(|id| crate::events::Cursor::parse(&id)))
    }

    async fn after(
        &self,
        after: crate::events::Cursor,
        limit: usize,
    ) -> Result<Vec<crate::events::Entry>> {
        if after > crate::events::Cursor::START
            && let Some((first, _)) = self.range("-", 1).await?.into_iter().next()
            && after < first
        {
            return Err(crate::events::cursor_expired());
        }
        self.range(&format!("({after}"), limit).await
    }

    async fn newest(&self) -> Result<crate::events::Cursor> {
        let reply: redis::streams::StreamRangeReply = self
            .store
            .query(
                redis::cmd("XREVRANGE")
                    .arg(EVENT_STREAM)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
            )
            .await?;
        Ok(reply
            .ids
            .first()
            .and_then(|entry| crate::events::Cursor::parse(&entry.id))
            .unwrap_or(crate::events::Cursor::START))
    }
}
