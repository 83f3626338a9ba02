//! Request bodies that are never held whole in memory: JSON with a
//! document spliced in as Base64 while it is sent, and a caller's upload
//! streamed through as multipart.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{StreamExt as _, stream};

use crate::{
    domain::ByteStream,
    error::{GatewayError, Outcome, Result},
};

/// Input bytes per Base64 piece: a multiple of 3, so pieces join without
/// padding in between, and 64 KiB of text each.
const BASE64_PIECE: usize = 48 * 1024;

/// What an outbound request carries.
pub(crate) enum Payload {
    Empty,
    Bytes(Bytes),
    /// JSON whose one file field is written as Base64 piece by piece while
    /// the body is sent. Every attempt rebuilds it from shared buffers, so a
    /// retry resends the same bytes and nothing is copied whole.
    JsonWithFile {
        prefix: Bytes,
        file: Bytes,
        suffix: Bytes,
    },
    /// A caller's upload as one multipart file part: it can be sent once
    /// only, so a call carrying it is never retried.
    Upload(Mutex<Option<reqwest::multipart::Form>>),
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Empty => f.write_str("Empty"),
            Payload::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Payload::JsonWithFile { file, .. } => write!(f, "JsonWithFile({} bytes)", file.len()),
            Payload::Upload(_) => f.write_str("Upload"),
        }
    }
}

impl Payload {
    /// `body` as JSON with `file` as the Base64 text of the one field that
    /// serialises as `slot`. `slot` is unique per call, so no caller text
    /// can be mistaken for it.
    pub(crate) fn json_with_file(
        body: &impl serde::Serialize,
        slot: &FileSlot,
        file: Bytes,
    ) -> Result<Payload> {
        let text = serde_json::to_vec(body).map_err(|error| {
            GatewayError::internal("could not encode a provider request").with_source(error)
        })?;
        let marker = format!("\"{}\"", slot.0);
        let mut found = text
            .windows(marker.len())
            .enumerate()
            .filter(|(_, window)| *window == marker.as_bytes())
            .map(|(at, _)| at);
        let (Some(at), None) = (found.next(), found.next()) else {
            return Err(GatewayError::internal(
                "a provider request lost its file field",
            ));
        };
        let text = Bytes::from(text);
        Ok(Payload::JsonWithFile {
            prefix: text.slice(..at + 1),
            suffix: text.slice(at + marker.len() - 1..),
            file,
        })
    }

    /// A multipart body with `bytes` as its part `field`. The first error
    /// the stream yields is kept in `caught`: the body is cut off there, and
    /// the caller learns why instead of a broken connection.
    pub(crate) fn upload(
        field: &'static str,
        file_name: &str,
        size: u64,
        bytes: ByteStream,
        caught: CaughtError,
    ) -> Result<Payload> {
        let stream = bytes.map(move |item| {
            item.map_err(|error| {
                let message = error.to_string();
                caught.keep(error);
                std::io::Error::other(message)
            })
        });
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), size)
                .file_name(file_name.to_owned())
                .mime_str("application/pdf")
                .map_err(|error| GatewayError::internal("bad upload type").with_source(error))?;
        Ok(Payload::Upload(Mutex::new(Some(
            reqwest::multipart::Form::new().part(field, part),
        ))))
    }

    /// Whether a second attempt can send the same body.
    pub(super) fn is_repeatable(&self) -> bool {
        !matches!(self, Payload::Upload(_))
    }

    /// The body when it is all in memory already (sent on the direct path).
    pub(super) fn in_memory(&self) -> Option<Bytes> {
        match self {
            Payload::Empty => Some(Bytes::new()),
            Payload::Bytes(bytes) => Some(bytes.clone()),
            Payload::JsonWithFile { .. } | Payload::Upload(_) => None,
        }
    }

    /// Adds the body to `builder`; `None` when a one-shot body was sent.
    pub(super) fn attach(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Option<reqwest::RequestBuilder> {
        Some(match self {
            Payload::Empty => builder,
            Payload::Bytes(bytes) => builder.body(bytes.clone()),
            Payload::JsonWithFile {
                prefix,
                file,
                suffix,
            } => {
                let length = prefix.len() + file.len().div_ceil(3) * 4 + suffix.len();
                builder.header(http::header::CONTENT_LENGTH, length).body(
                    reqwest::Body::wrap_stream(json_with_file_stream(
                        prefix.clone(),
                        file.clone(),
                        suffix.clone(),
                    )),
                )
            }
            Payload::Upload(form) => {
                builder.multipart(form.lock().unwrap_or_else(|e| e.into_inner()).take()?)
            }
        })
    }
}

fn json_with_file_stream(
    prefix: Bytes,
    file: Bytes,
    suffix: Bytes,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let pieces = (0..file.len().div_ceil(BASE64_PIECE)).map(move |index| {
        let start = index * BASE64_PIECE;
        let end = (start + BASE64_PIECE).min(file.len());
        Bytes::from(base64::engine::general_purpose::STANDARD.encode(&file[start..end]))
    });
    stream::iter(
        std::iter::once(prefix)
            .chain(pieces)
            .chain(std::iter::once(suffix))
            .map(Ok),
    )
}

/// Stands in for a file in a serialised body until the body is sent.
pub(crate) struct FileSlot(String);

impl FileSlot {
    pub(crate) fn new() -> FileSlot {
        FileSlot(format!(
            "esign-gateway-file-{}",
            uuid::Uuid::new_v4().simple()
        ))
    }
}

impl serde::Serialize for FileSlot {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl std::fmt::Debug for FileSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileSlot")
    }
}

/// The first error of an upload stream, kept for the answer.
#[derive(Clone, Default)]
pub(crate) struct CaughtError(Arc<Mutex<Option<GatewayError>>>);

impl CaughtError {
    fn keep(&self, error: GatewayError) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(error);
    }

    /// The caller-side error that cut the body off, if any: the provider
    /// never saw a whole request, so nothing was made.
    pub(crate) fn take(&self) -> Option<GatewayError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|error| error.with_outcome(Outcome::NotSent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Body<'a> {
        name: &'a str,
        file: FileSlot,
        after: u32,
    }

    #[tokio::test]
    async fn the_file_is_spliced_in_as_standard_base64_at_every_length() {
        for length in [
            0,
            1,
            2,
            3,
            4,
            100,
            BASE64_PIECE - 1,
            BASE64_PIECE,
            3 * BASE64_PIECE + 7,
        ] {
            let file: Vec<u8> = (0..length).map(|i| (i * 7 % 256) as u8).collect();
            let slot = FileSlot::new();
            let body = Body {
                name: "a \"quoted\" name",
                file: slot,
                after: 7,
            };
            let payload =
                Payload::json_with_file(&body, &body.file, Bytes::from(file.clone())).unwrap();
            let Payload::JsonWithFile {
                prefix,
                file: kept,
                suffix,
            } = payload
            else {
                panic!("not spliced");
            };
            let sent: Vec<u8> = json_with_file_stream(prefix, kept, suffix)
                .map(|piece| piece.unwrap().to_vec())
                .concat()
                .await;
            let expected = serde_json::json!({
                "name": "a \"quoted\" name",
                "file": base64::engine::general_purpose::STANDARD.encode(&file),
                "after": 7,
            });
            let sent: serde_json::Value = serde_json::from_slice(&sent).unwrap();
            assert_eq!(sent, expected, "length {length}");
        }
    }
}
