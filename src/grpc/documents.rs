//! UploadDocument and DownloadDocument: files stream through the gateway
//! a chunk at a time, never held whole.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _, stream};
use tonic::Streaming;

use super::*;
use crate::domain::{ByteStream, DocumentPart, DownloadRequest, ProviderKind, UploadRequest};

/// Largest chunk in either direction (the contract's 64 KiB).
pub(crate) const MAX_CHUNK_BYTES: usize = 64 * 1024;
const MAX_FILE_NAME_CHARS: usize = 255;

/// What a transfer may hold in the gateway at once, counted against the
/// payload budget for its whole life: the HTTP/2 stream window a client
/// can fill ahead of the handler (hyper's default, 1 MiB), plus the chunk
/// in hand on the provider side.
pub(crate) const TRANSFER_RESERVATION_BYTES: usize = 1024 * 1024 + 2 * MAX_CHUNK_BYTES;

pub(crate) type DownloadStream =
    Pin<Box<dyn Stream<Item = std::result::Result<pb::DownloadDocumentResponse, Status>> + Send>>;

impl InvitationApi {
    pub(super) async fn upload(
        &self,
        request: Request<Streaming<pb::UploadDocumentRequest>>,
    ) -> std::result::Result<Response<pb::UploadDocumentResponse>, Status> {
        let (metadata, extensions, mut chunks) = request.into_parts();
        let first = match chunks.message().await? {
            Some(pb::UploadDocumentRequest {
                part: Some(pb::upload_document_request::Part::Metadata(first)),
            }) => first,
            _ => {
                return Err(GatewayError::invalid_field(
                    "metadata",
                    "the first message of an upload must carry its metadata",
                )
                .into());
            }
        };
        let reservation = self.transfers.reserve(TRANSFER_RESERVATION_BYTES)?;
        let request = Request::from_parts(metadata, extensions, first);
        self.run(
            Rpc::UploadDocument,
            request,
            |account, ctx, first| async move {
                let upload = upload_request(account.config.provider, &first)?;
                let expected_sha256 = expected_sha256(&first.sha256)?;
                let tally = Arc::new(Mutex::new(Tally::new(upload.size, expected_sha256)));
                let bytes = checked_chunks(chunks, tally.clone());
                let uploaded = account
                    .provider
                    .upload_document(&ctx, upload, bytes)
                    .await?;
                drop(reservation);
                let tally = tally.lock().unwrap_or_else(|e| e.into_inner());
                Ok(pb::UploadDocumentResponse {
                    document_id: uploaded.document_id,
                    roles: uploaded
                        .roles
                        .into_iter()
                        .map(|role| pb::DocumentRole {
                            name: role.name,
                            role_id: role.role_id,
                            signing_order: role.signing_order,
                        })
                        .collect(),
                    size: tally.received,
                    sha256: tally.digest_hex.clone().unwrap_or_default(),
                    provider_warnings: uploaded
                        .warnings
                        .into_iter()
                        .map(|w| pb::ProviderMessage {
                            code: w.code,
                            message: w.message,
                        })
                        .collect(),
                })
            },
        )
        .await
    }

    pub(super) async fn download(
        &self,
        request: Request<pb::DownloadDocumentRequest>,
    ) -> std::result::Result<Response<DownloadStream>, Status> {
        let rpc = Rpc::DownloadDocument;
        let Begun {
            started,
            deadline,
            span,
            trace,
            trace_headers,
            caller,
            admission,
            message,
        } = self.begin(rpc, request);
        let pipeline = self.pipeline(rpc, &span);
        let transfers = self.transfers.clone();
        let opened = within_deadline(rpc, deadline, async move {
            let (account, _, held) = pipeline.admit(caller, admission, &message).await?;
            let reservation = transfers.reserve(TRANSFER_RESERVATION_BYTES)?;
            let request = download_request(&message)?;
            let ctx = CallContext::in_trace(rpc, deadline, trace, trace_headers);
            let download = account
                .provider
                .download_document(&ctx, request)
                .await
                .map_err(|error| account.annotate(error))?;
            Ok((download, account, held, reservation))
        })
        .instrument(span.clone())
        .await;
        let (download, account, held, reservation) = match opened {
            Ok(opened) => opened,
            Err(error) => return finish(&span, trace, rpc, started, Err(error), false),
        };
        let first = pb::DownloadDocumentResponse {
            part: Some(pb::download_document_response::Part::Metadata(
                pb::DownloadDocumentMetadata {
                    file_name: download.file_name,
                    content_type: download.content_type,
                    size: download.size.unwrap_or(0),
                },
            )),
        };
        // The in-flight permit and the payload reservation last as long as
        // the transfer does; a provider failure mid-transfer ends the stream
        // with the gateway's error, details included.
        let chunks = rechunked(download.body).map(move |item| {
            let _ = (&held, &reservation);
            item.map(|chunk| pb::DownloadDocumentResponse {
                part: Some(pb::download_document_response::Part::Chunk(chunk)),
            })
            .map_err(|error| Status::from(account.annotate(error)))
        });
        let body: DownloadStream = Box::pin(stream::once(async { Ok(first) }).chain(chunks));
        finish(&span, trace, rpc, started, Ok(body), false)
    }
}

fn upload_request(
    provider: ProviderKind,
    first: &pb::UploadDocumentMetadata,
) -> Result<UploadRequest> {
    let name = first.file_name.trim();
    if name.is_empty() {
        return Err(GatewayError::invalid_field(
            "metadata.file_name",
            "is required",
        ));
    }
    if name.chars().count() > MAX_FILE_NAME_CHARS
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(GatewayError::invalid_field(
            "metadata.file_name",
            format!(
                "must be a base name of at most {MAX_FILE_NAME_CHARS} characters without slashes or control characters"
            ),
        ));
    }
    if first.size == 0 {
        return Err(GatewayError::invalid_field(
            "metadata.size",
            "is required: the file's exact size in bytes",
        ));
    }
    if first.extract_fields && provider != ProviderKind::SignNow {
        return Err(GatewayError::invalid_field(
            "metadata.extract_fields",
            "is a signNow option",
        ));
    }
    Ok(UploadRequest {
        file_name: name.to_owned(),
        size: first.size,
        extract_fields: first.extract_fields,
    })
}

fn expected_sha256(text: &str) -> Result<Option<[u8; 32]>> {
    if text.is_empty() {
        return Ok(None);
    }
    let mut digest = [0u8; 32];
    let valid = text.len() == 64
        && text
            .as_bytes()
            .chunks(2)
            .zip(digest.iter_mut())
            .all(|(pair, byte)| {
                std::str::from_utf8(pair)
                    .ok()
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .map(|value| *byte = value)
                    .is_some()
            });
    if !valid {
        return Err(GatewayError::invalid_field(
            "metadata.sha256",
            "must be 64 hex digits",
        ));
    }
    Ok(Some(digest))
}

fn download_request(message: &pb::DownloadDocumentRequest) -> Result<DownloadRequest> {
    convert::id("document_id", &message.document_id)?;
    let part = match pb::DocumentPart::try_from(message.part) {
        Ok(pb::DocumentPart::Unspecified | pb::DocumentPart::Document) => DocumentPart::Document,
        Ok(pb::DocumentPart::AuditTrail) => DocumentPart::AuditTrail,
        Err(_) => {
            return Err(GatewayError::invalid_field(
                "part",
                format!("{} is not a DocumentPart value", message.part),
            ));
        }
    };
    Ok(DownloadRequest {
        document_id: message.document_id.clone(),
        with_history: message.with_history,
        part,
    })
}

/// What an upload has received so far, checked against what it declared.
struct Tally {
    declared_size: u64,
    expected_sha256: Option<[u8; 32]>,
    received: u64,
    digest: Option<ring::digest::Context>,
    digest_hex: Option<String>,
}

impl Tally {
    fn new(declared_size: u64, expected_sha256: Option<[u8; 32]>) -> Tally {
        Tally {
            declared_size,
            expected_sha256,
            received: 0,
            digest: Some(ring::digest::Context::new(&ring::digest::SHA256)),
            digest_hex: None,
        }
    }

    fn add(&mut self, chunk: &[u8]) -> Result<()> {
        if chunk.len() > MAX_CHUNK_BYTES {
            return Err(GatewayError::invalid_field(
                "chunk",
                format!(
                    "is {} bytes; at most {MAX_CHUNK_BYTES} per message",
                    chunk.len()
                ),
            ));
        }
        self.received += chunk.len() as u64;
        if self.received > self.declared_size {
            return Err(GatewayError::invalid_field(
                "metadata.size",
                format!(
                    "declared {} bytes, but more arrived; nothing was uploaded",
                    self.declared_size
                ),
            ));
        }
        if let Some(digest) = &mut self.digest {
            digest.update(chunk);
        }
        Ok(())
    }

    /// At the end of the caller's stream: the size and digest must match.
    fn finish(&mut self) -> Result<()> {
        if self.received != self.declared_size {
            return Err(GatewayError::invalid_field(
                "metadata.size",
                format!(
                    "declared {} bytes, but {} arrived; nothing was uploaded",
                    self.declared_size, self.received
                ),
            ));
        }
        let digest = self
            .digest
            .take()
            .map(|context| context.finish())
            .ok_or_else(|| GatewayError::internal("an upload was finished twice"))?;
        self.digest_hex = Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect());
        if let Some(expected) = self.expected_sha256
            && digest.as_ref() != expected
        {
            return Err(GatewayError::invalid_field(
                "metadata.sha256",
                "does not match the bytes received; nothing was uploaded",
            ));
        }
        Ok(())
    }
}

/// The caller's chunks as file bytes, checked as they pass. The last chunk
/// is held back until the caller's stream ends and the size and digest
/// check out, so a mismatch cuts the provider's body off before its end
/// and the provider never makes a document of it.
fn checked_chunks(
    chunks: Streaming<pb::UploadDocumentRequest>,
    tally: Arc<Mutex<Tally>>,
) -> ByteStream {
    struct State {
        chunks: Streaming<pb::UploadDocumentRequest>,
        held: Option<Bytes>,
        tally: Arc<Mutex<Tally>>,
        done: bool,
    }
    let state = State {
        chunks,
        held: None,
        tally,
        done: false,
    };
    Box::pin(stream::try_unfold(state, |mut state| async move {
        if state.done {
            return Ok(None);
        }
        loop {
            let next = state.chunks.message().await.map_err(|status| {
                GatewayError::invalid_field(
                    "chunk",
                    "the upload stream broke off before its end; nothing was uploaded",
                )
                .with_metadata(MetaKey::Cause, status.code().description())
            })?;
            let mut tally = state.tally.lock().unwrap_or_else(|e| e.into_inner());
            match next {
                None => {
                    tally.finish()?;
                    drop(tally);
                    state.done = true;
                    return Ok(state.held.take().map(|last| (last, state)));
                }
                Some(pb::UploadDocumentRequest {
                    part: Some(pb::upload_document_request::Part::Chunk(chunk)),
                }) => {
                    tally.add(&chunk)?;
                    drop(tally);
                    if chunk.is_empty() {
                        continue;
                    }
                    if let Some(ready) = state.held.replace(chunk) {
                        return Ok(Some((ready, state)));
                    }
                }
                Some(_) => {
                    return Err(GatewayError::invalid_field(
                        "metadata",
                        "only the first message of an upload may carry metadata",
                    ));
                }
            }
        }
    }))
}

/// The provider's pieces cut to at most [`MAX_CHUNK_BYTES`], without copies.
fn rechunked(body: ByteStream) -> impl Stream<Item = Result<Bytes>> + Send {
    struct Pieces {
        body: ByteStream,
        rest: Bytes,
    }
    impl Stream for Pieces {
        type Item = Result<Bytes>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            loop {
                if !self.rest.is_empty() {
                    let take = self.rest.len().min(MAX_CHUNK_BYTES);
                    return Poll::Ready(Some(Ok(self.rest.split_to(take))));
                }
                match std::task::ready!(self.body.poll_next_unpin(cx)) {
                    Some(Ok(piece)) => self.rest = piece,
                    other => return Poll::Ready(other),
                }
            }
        }
    }
    Pieces {
        body,
        rest: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn provider_pieces_are_cut_to_64_kib_in_order() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let pieces = vec![
            Ok(Bytes::copy_from_slice(&data[..10])),
            Ok(Bytes::copy_from_slice(&data[10..200_000])),
            Ok(Bytes::new()),
            Ok(Bytes::copy_from_slice(&data[200_000..])),
        ];
        let out: Vec<Bytes> = rechunked(Box::pin(stream::iter(pieces)))
            .map(|piece| piece.unwrap())
            .collect()
            .await;
        assert!(out.iter().all(|piece| piece.len() <= MAX_CHUNK_BYTES));
        assert_eq!(out.concat(), data);
    }

    #[test]
    fn a_tally_refuses_oversize_chunks_extra_bytes_and_a_wrong_digest() {
        let mut tally = Tally::new(10, None);
        assert!(tally.add(&vec![0; MAX_CHUNK_BYTES + 1]).is_err());
        let mut tally = Tally::new(3, None);
        tally.add(b"ab").unwrap();
        assert_eq!(
            tally.add(b"cd").unwrap_err().field_violations()[0].0,
            "metadata.size"
        );
        let mut short = Tally::new(3, None);
        short.add(b"ab").unwrap();
        assert!(short.finish().is_err());
        let good: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, b"abc")
            .as_ref()
            .try_into()
            .unwrap();
        let mut matching = Tally::new(3, Some(good));
        matching.add(b"abc").unwrap();
        matching.finish().unwrap();
        assert_eq!(
            matching.digest_hex.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let mut wrong = Tally::new(3, Some([0; 32]));
        wrong.add(b"abc").unwrap();
        assert!(wrong.finish().is_err());
        assert_eq!(
            expected_sha256("zz").unwrap_err().field_violations()[0].0,
            "metadata.sha256"
        );
    }
}
