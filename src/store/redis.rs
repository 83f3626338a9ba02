//! [`StateStore`] on Redis, so several replicas share request-id records and
//! saga progress. Four commands are needed (GET, SET with PX and NX, DEL), so
//! this speaks RESP2 itself over a small pool of connections instead of
//! pulling in a full client. Any connection problem fails the call with
//! UNAVAILABLE: a billed call never runs without its duplicate check.

use std::{sync::Mutex, time::Duration};

use async_trait::async_trait;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpStream,
};

use super::StateStore;
use crate::error::{GatewayError, MetaKey, Outcome, Reason, Result};

/// Each command must finish within this, or the store counts as down.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_IDLE_CONNECTIONS: usize = 16;
/// Largest value the store reads back (replayed responses are small).
const MAX_VALUE_BYTES: usize = 8 * 1024 * 1024;

pub(crate) struct RedisStore {
    address: String,
    password: Option<String>,
    username: Option<String>,
    database: u32,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Ok,
    Nil,
    Bulk(Vec<u8>),
    Integer(i64),
    Error(String),
}

impl RedisStore {
    /// `redis://[[user]:password@]host[:port][/db]`; validated by config.
    pub(crate) fn new(url: &str) -> std::result::Result<RedisStore, String> {
        let url = url::Url::parse(url).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("no host")?;
        let port = url.port().unwrap_or(6379);
        let database = match url.path().trim_matches('/') {
            "" => 0,
            db => db
                .parse()
                .map_err(|_| format!("{db:?} is not a database number"))?,
        };
        Ok(RedisStore {
            address: format!("{host}:{port}"),
            password: url.password().map(percent_decode),
            username: (!url.username().is_empty()).then(|| percent_decode(url.username())),
            database,
            idle: Mutex::new(Vec::new()),
        })
    }

    async fn connect(&self) -> std::io::Result<BufReader<TcpStream>> {
        let stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let mut connection = BufReader::new(stream);
        if let Some(password) = &self.password {
            let mut command = vec![b"AUTH".to_vec()];
            if let Some(user) = &self.username {
                command.push(user.as_bytes().to_vec());
            }
            command.push(password.as_bytes().to_vec());
            expect_ok(round_trip(&mut connection, &command).await?)?;
        }
        if self.database != 0 {
            let command = [b"SELECT".to_vec(), self.database.to_string().into_bytes()];
            expect_ok(round_trip(&mut connection, &command).await?)?;
        }
        Ok(connection)
    }

    async fn command(&self, args: &[Vec<u8>]) -> Result<Reply> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let attempt = async {
            let mut connection = match pooled {
                Some(connection) => connection,
                None => self.connect().await?,
            };
            let reply = round_trip(&mut connection, args).await?;
            Ok::<_, std::io::Error>((connection, reply))
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, attempt).await {
            Ok(Ok((connection, reply))) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE_CONNECTIONS {
                    idle.push(connection);
                }
                if let Reply::Error(message) = &reply {
                    tracing::warn!(error = %message, "redis refused a command");
                    return Err(store_down("redis refused a command"));
                }
                Ok(reply)
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "redis connection failed");
                Err(store_down("the idempotency store is unreachable"))
            }
            Err(_) => {
                tracing::warn!("redis command timed out");
                Err(store_down("the idempotency store did not answer in time"))
            }
        }
    }
}

/// URL userinfo is percent-encoded.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn store_down(message: &str) -> GatewayError {
    GatewayError::new(Reason::ProviderUnavailable, message)
        .with_metadata(MetaKey::Component, "idempotency-store")
        .with_outcome(Outcome::NotSent)
        .with_retry_after(Duration::from_secs(1))
}

fn expect_ok(reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Ok => Ok(()),
        other => Err(std::io::Error::other(format!("unexpected reply {other:?}"))),
    }
}

async fn round_trip(
    connection: &mut BufReader<TcpStream>,
    args: &[Vec<u8>],
) -> std::io::Result<Reply> {
    let mut frame = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        frame.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        frame.extend_from_slice(arg);
        frame.extend_from_slice(b"\r\n");
    }
    connection.get_mut().write_all(&frame).await?;
    read_reply(connection).await
}

async fn read_reply(connection: &mut BufReader<TcpStream>) -> std::io::Result<Reply> {
    let mut line = Vec::new();
    connection.read_until(b'\n', &mut line).await?;
    if line.len() < 3 || !line.ends_with(b"\r\n") {
        return Err(std::io::Error::other("truncated redis reply"));
    }
    let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
    let invalid = || std::io::Error::other("malformed redis reply");
    match line[0] {
        b'+' if body == "OK" => Ok(Reply::Ok),
        b'+' => Ok(Reply::Bulk(body.into_bytes())),
        b'-' => Ok(Reply::Error(body)),
        b':' => body.parse().map(Reply::Integer).map_err(|_| invalid()),
        b'$' => {
            let length: i64 = body.parse().map_err(|_| invalid())?;
            if length < 0 {
                return Ok(Reply::Nil);
            }
            let length = usize::try_from(length).map_err(|_| invalid())?;
            if length > MAX_VALUE_BYTES {
                return Err(std::io::Error::other("redis value too large"));
            }
            let mut value = vec![0; length + 2];
            connection.read_exact(&mut value).await?;
            value.truncate(length);
            Ok(Reply::Bulk(value))
        }
        _ => Err(invalid()),
    }
}

fn millis(ttl: Duration) -> Vec<u8> {
    ttl.as_millis().max(1).to_string().into_bytes()
}

#[async_trait]
impl StateStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self
            .command(&[b"GET".to_vec(), key.as_bytes().to_vec()])
            .await?
        {
            Reply::Bulk(value) => Ok(Some(value)),
            Reply::Nil => Ok(None),
            other => Err(store_down(&format!("unexpected redis reply {other:?}"))),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<()> {
        let args = [
            b"SET".to_vec(),
            key.as_bytes().to_vec(),
            value,
            b"PX".to_vec(),
            millis(ttl),
        ];
        match self.command(&args).await? {
            Reply::Ok => Ok(()),
            other => Err(store_down(&format!("unexpected redis reply {other:?}"))),
        }
    }

    async fn claim(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<bool> {
        let args = [
            b"SET".to_vec(),
            key.as_bytes().to_vec(),
            value,
            b"PX".to_vec(),
            millis(ttl),
            b"NX".to_vec(),
        ];
        match self.command(&args).await? {
            Reply::Ok => Ok(true),
            Reply::Nil => Ok(false),
            other => Err(store_down(&format!("unexpected redis reply {other:?}"))),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        match self
            .command(&[b"DEL".to_vec(), key.as_bytes().to_vec()])
            .await?
        {
            Reply::Integer(_) => Ok(()),
            other => Err(store_down(&format!("unexpected redis reply {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_address_credentials_and_database() {
        let store = RedisStore::new("redis://:s3%40cret@cache.internal:6380/2").unwrap();
        assert_eq!(store.address, "cache.internal:6380");
        assert_eq!(store.password.as_deref(), Some("s3@cret"));
        assert_eq!(store.username, None);
        assert_eq!(store.database, 2);
        let plain = RedisStore::new("redis://127.0.0.1").unwrap();
        assert_eq!(plain.address, "127.0.0.1:6379");
        assert_eq!(plain.database, 0);
        assert!(RedisStore::new("redis://host/not-a-number").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_unavailable_not_a_silent_pass() {
        // A port nothing listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let store = RedisStore::new(&format!("redis://127.0.0.1:{port}")).unwrap();
        let error = store
            .claim("k", b"v".to_vec(), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(error.reason(), Reason::ProviderUnavailable);
        assert_eq!(
            error.metadata(MetaKey::Component),
            Some("idempotency-store")
        );
    }
}
