//! The payload budget (`GATEWAY_MAX_INFLIGHT_BYTES`): bytes of request
//! bodies are counted as their frames arrive, and a call whose next frame
//! would pass the budget fails at once with RESOURCE_EXHAUSTED
//! `GATEWAY_OVERLOADED` and RetryInfo. Its handler never runs, so a shed
//! create never reaches a provider. The bytes stay counted until the
//! call's answer is ready, because the handler holds the decoded message
//! and the provider body built from it until then.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;

use crate::error::{GatewayError, MetaKey, Outcome, Reason};

/// How many bytes of memory one inbound payload byte costs while its call
/// runs. Measured on the Leegality create path, the widest one
/// (`esign-bench bigdocs`): 5.4 times the file when the Base64 body was
/// built whole, 1.4 times now that it streams and the request fingerprint
/// hashes the file in place. Counting 3 keeps a margin for what the budget
/// does not see (allocator slack, HTTP/2 buffers, the provider's answer).
pub(crate) const INBOUND_BYTE_WEIGHT: usize = 3;

/// The smallest budget that lets the largest message through.
pub(crate) const fn smallest_budget() -> usize {
    (crate::server::MAX_INBOUND_MESSAGE_BYTES + 5) * INBOUND_BYTE_WEIGHT
}

/// Suggested wait for a caller shed by the payload budget: long enough for
/// a large create ahead of it to finish.
const SHED_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The shared count of payload bytes that calls in flight hold.
///
/// An atomic count, not a semaphore: nothing ever waits for room (a call
/// that does not fit is shed at once), and a tokio semaphore takes a lock on
/// every release to look for waiters.
#[derive(Clone, Debug)]
pub(crate) struct PayloadBudget {
    available: Arc<AtomicUsize>,
}

/// Bytes held against the budget: a transfer's buffers, or a call's
/// request messages (grown as they arrive, and shared by the call's body
/// and its future). Given back at once with `give_back`, or when dropped, so
/// a call dropped unanswered gives its bytes back too.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: PayloadBudget,
    bytes: AtomicUsize,
}

impl Reservation {
    fn empty(budget: PayloadBudget) -> Self {
        Reservation {
            budget,
            bytes: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` more (weighted as inbound bytes), or sheds the call.
    fn grow(&self, inbound_bytes: usize) -> Result<(), tonic::Status> {
        let taken = self.budget.take(inbound_bytes)?;
        self.bytes.fetch_add(taken, Ordering::AcqRel);
        Ok(())
    }

    fn give_back(&self) {
        self.budget.give_back(self.bytes.swap(0, Ordering::AcqRel));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl PayloadBudget {
    pub(crate) fn new(limit_bytes: usize) -> Self {
        Self {
            available: Arc::new(AtomicUsize::new(limit_bytes)),
        }
    }

    /// Takes `bytes` if that many are free; all or nothing.
    fn try_take(&self, bytes: usize) -> bool {
        self.available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                free.checked_sub(bytes)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        if bytes > 0 {
            self.available.fetch_add(bytes, Ordering::AcqRel);
        }
    }

    fn take(&self, bytes: usize) -> Result<usize, tonic::Status> {
        let weighted = bytes.saturating_mul(INBOUND_BYTE_WEIGHT);
        if self.try_take(weighted) {
            Ok(weighted)
        } else {
            Err(shed().into())
        }
    }

    /// Holds `bytes` of the budget as they are (a transfer's buffers), or
    /// sheds the call.
    pub(crate) fn reserve(&self, bytes: usize) -> crate::error::Result<Reservation> {
        if self.try_take(bytes) {
            Ok(Reservation {
                budget: self.clone(),
                bytes: AtomicUsize::new(bytes),
            })
        } else {
            Err(shed())
        }
    }
}

fn shed() -> GatewayError {
    crate::metrics::global().shed("payload-budget");
    GatewayError::new(
        Reason::GatewayOverloaded,
        "the gateway holds as many document bytes as it may; retry shortly",
    )
    .with_metadata(MetaKey::Component, "payload-budget")
    .with_outcome(Outcome::NotSent)
    .with_retry_after(SHED_RETRY_AFTER)
}

/// What one call holds; given back when its answer is ready.
type Held = Arc<Reservation>;

/// Counts every gRPC request body against a [`PayloadBudget`].
#[derive(Clone)]
pub(crate) struct PayloadLayer {
    budget: PayloadBudget,
    max_message: usize,
}

impl PayloadLayer {
    pub(crate) fn new(budget: PayloadBudget, max_message: usize) -> Self {
        Self {
            budget,
            max_message,
        }
    }
}

impl<S> tower_layer::Layer<S> for PayloadLayer {
    type Service = PayloadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PayloadService {
            inner,
            budget: self.budget.clone(),
            max_message: self.max_message,
        }
    }
}

#[derive(Clone)]
pub(crate) struct PayloadService<S> {
    inner: S,
    budget: PayloadBudget,
    max_message: usize,
}

impl<S> tower_service::Service<http::Request<Body>> for PayloadService<S>
where
    S: tower_service::Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Holding<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // A client stream is counted by its handler, which reserves its
        // buffers once: counting every chunk would charge a 50 MB upload
        // for bytes long since sent on.
        if is_streamed_upload(request.uri().path()) {
            return Holding {
                inner: self.inner.call(request),
                held: None,
            };
        }
        let held = Arc::new(Reservation::empty(self.budget.clone()));
        let request = request.map(|body| {
            Body::new(CountedBody {
                inner: body,
                held: held.clone(),
                framing: Framing::new(self.max_message),
            })
        });
        Holding {
            inner: self.inner.call(request),
            held: Some(held),
        }
    }
}

fn is_streamed_upload(path: &str) -> bool {
    path == "/esign.v1.InvitationService/UploadDocument"
}

pin_project_lite::pin_project! {
    /// The inner service's future; the call's bytes are released with it.
    pub(crate) struct Holding<F> {
        #[pin]
        inner: F,
        held: Option<Held>,
    }
}

impl<F: Future> Future for Holding<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let Some(held) = this.held.take() {
            held.give_back();
        }
        Poll::Ready(output)
    }
}

pin_project_lite::pin_project! {
    struct CountedBody {
        #[pin]
        inner: Body,
        held: Held,
        framing: Framing,
    }
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = match ready!(this.inner.poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(status)) => return Poll::Ready(Some(Err(status))),
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref() {
            let held = &**this.held;
            this.framing
                .announced(data, |message_bytes| held.grow(message_bytes))?;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Reads gRPC's length prefixes (a flag byte and a big-endian u32) as the
/// body streams by, so that a whole message is counted when its first
/// frame arrives: two large calls can never each hold half the budget and
/// both be refused. A length over the message limit is left to tonic, which
/// refuses it as too large; counting it would only shed a call that can
/// never pass.
#[derive(Debug)]
struct Framing {
    max_message: usize,
    prefix: [u8; 5],
    prefix_len: usize,
    /// Bytes of the current message still to come (already counted).
    remaining: usize,
}

impl Framing {
    fn new(max_message: usize) -> Self {
        Self {
            max_message,
            prefix: [0; 5],
            prefix_len: 0,
            remaining: 0,
        }
    }

    /// Calls `each` with the size (prefix included) of every message whose
    /// prefix completes in `data`, stopping at its first error.
    fn announced<E>(
        &mut self,
        mut data: &[u8],
        mut each: impl FnMut(usize) -> Result<(), E>,
    ) -> Result<(), E> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(data.len());
                self.remaining -= skip;
                data = &data[skip..];
                continue;
            }
            let take = (5 - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&data[..take]);
            self.prefix_len += take;
            data = &data[take..];
            if self.prefix_len == 5 {
                self.prefix_len = 0;
                let [_, a, b, c, d] = self.prefix;
                let length = u32::from_be_bytes([a, b, c, d]) as usize;
                self.remaining = length;
                if length <= self.max_message {
                    each(length + 5)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_weighted_and_released_with_their_permit() {
        // Room for one weighted message of 100 bytes and not for two.
        let limit = 100 * INBOUND_BYTE_WEIGHT * 3 / 2;
        let budget = PayloadBudget::new(limit);
        let first = budget.take(100).unwrap();
        assert_eq!(
            budget.available.load(Ordering::Acquire),
            limit - 100 * INBOUND_BYTE_WEIGHT
        );
        let refused = budget.take(100).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        budget.give_back(first);
        assert_eq!(budget.available.load(Ordering::Acquire), limit);
        let again = budget.take(100).unwrap();
        budget.give_back(again);
        let transfer = budget.reserve(limit).unwrap();
        assert!(budget.reserve(1).is_err(), "a reservation holds its bytes");
        drop(transfer);
        assert_eq!(budget.available.load(Ordering::Acquire), limit);
    }

    #[test]
    fn a_call_dropped_unanswered_gives_its_bytes_back() {
        let limit = 1000 * INBOUND_BYTE_WEIGHT;
        let budget = PayloadBudget::new(limit);
        let held = Arc::new(Reservation::empty(budget.clone()));
        let body_side = held.clone();
        body_side.grow(400).unwrap();
        let taken = 400 * INBOUND_BYTE_WEIGHT;
        assert_eq!(budget.available.load(Ordering::Acquire), limit - taken);
        // The call's future goes first (a cancelled call), then its body.
        drop(held);
        assert_eq!(budget.available.load(Ordering::Acquire), limit - taken);
        drop(body_side);
        assert_eq!(budget.available.load(Ordering::Acquire), limit);
    }

    fn announced(framing: &mut Framing, data: &[u8]) -> Vec<usize> {
        let mut sizes = Vec::new();
        framing
            .announced(data, |size| {
                sizes.push(size);
                Ok::<(), ()>(())
            })
            .unwrap();
        sizes
    }

    #[test]
    fn a_message_is_announced_once_whatever_the_frame_boundaries() {
        let mut body = Vec::new();
        for length in [3u32, 70_000, 0] {
            body.push(0);
            body.extend_from_slice(&length.to_be_bytes());
            body.resize(body.len() + length as usize, 7);
        }
        for split in [1, 2, 4, 5, 16_384, body.len()] {
            let mut framing = Framing::new(100_000);
            let sizes: Vec<usize> = body
                .chunks(split)
                .flat_map(|chunk| announced(&mut framing, chunk))
                .collect();
            assert_eq!(sizes, [8, 70_005, 5], "split {split}");
        }
        let mut strict = Framing::new(1000);
        assert_eq!(
            announced(&mut strict, &body),
            [8, 5],
            "too large is left to tonic"
        );
    }
}
