//! `esign.v1.EventService`: the log, paged (`ListEvents`) and followed
//! (`WatchEvents`), under the same caller authentication and account
//! allow-lists as the invitation calls.

use std::sync::Arc;

use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Cursor, Events, Recorded};
use crate::{
    auth::{Authenticator, Caller},
    domain::ProviderKind,
    error::{GatewayError, Result},
    grpc::convert,
    pb::{self, event_service_server::EventService},
};

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// Events replayed per read while a watcher catches up.
const REPLAY_BATCH: usize = 500;

pub(crate) struct EventApi {
    events: Arc<Events>,
    auth: Option<Arc<Authenticator>>,
}

impl EventApi {
    pub(crate) fn new(events: Arc<Events>, auth: Option<Arc<Authenticator>>) -> EventApi {
        EventApi { events, auth }
    }

    /// The caller, allowed to call `rpc` (and the filtered account, if any).
    /// `filter` once the request's caller is authenticated and allowed the
    /// account it names; events are then also filtered by that caller.
    fn admit<T>(&self, request: &Request<T>, rpc: &str, mut filter: Filter) -> Result<Filter> {
        let Some(auth) = &self.auth else {
            return Ok(filter);
        };
        let caller = auth.authenticate_request(request)?;
        let target = match (filter.provider, filter.account.as_str()) {
            (Some(provider), account) if !account.is_empty() => Some((provider, account)),
            _ => None,
        };
        auth.authorize(&caller, rpc, target)?;
        filter.caller = Some((auth.clone(), caller));
        Ok(filter)
    }
}

/// Which events a caller asked for, and may see.
#[derive(Clone)]
struct Filter {
    provider: Option<ProviderKind>,
    account: String,
    document_id: String,
    invitation_id: String,
    caller: Option<(Arc<Authenticator>, Caller)>,
}

impl Filter {
    fn new(provider: i32, account: &str, document_id: &str, invitation_id: &str) -> Result<Filter> {
        let provider = match provider {
            0 => None,
            value => Some(convert::provider(value)?),
        };
        if !account.is_empty() {
            convert::account(account)?;
        }
        Ok(Filter {
            provider,
            account: account.to_owned(),
            document_id: document_id.to_owned(),
            invitation_id: invitation_id.to_owned(),
            caller: None,
        })
    }

    fn matches(&self, event: &pb::Event) -> bool {
        let kind = convert::provider(event.provider).ok();
        self.provider.is_none_or(|p| Some(p) == kind)
            && (self.account.is_empty() || self.account == event.account)
            && (self.document_id.is_empty() || self.document_id == event.document_id)
            && (self.invitation_id.is_empty() || self.invitation_id == event.invitation_id)
            && self.caller.as_ref().is_none_or(|(auth, caller)| {
                kind.is_some_and(|kind| auth.may_see(caller, kind, &event.account))
            })
    }
}

fn cursor(field: &str, text: &str) -> Result<Option<Cursor>> {
    if text.is_empty() {
        return Ok(None);
    }
    Cursor::parse(text)
        .map(Some)
        .ok_or_else(|| GatewayError::invalid_field(field, "is not a cursor this gateway issued"))
}

#[tonic::async_trait]
impl EventService for EventApi {
    type WatchEventsStream = ReceiverStream<Result<pb::Event, Status>>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let message = request.get_ref();
        let filter = Filter::new(
            message.provider,
            &message.account,
            &message.document_id,
            &message.invitation_id,
        )?;
        let filter = self.admit(&request, "WatchEvents", filter)?;
        // "From now on" is fixed before subscribing; the replay below then
        // covers anything appended in between, so nothing falls in a gap.
        let start = match cursor("after_cursor", &message.after_cursor)? {
            Some(cursor) => cursor,
            None => self.events.newest().await?,
        };
        // An expired cursor is refused now, not after the stream opened.
        self.events.after(start, 0).await?;
        let live = self.events.subscribe();
        let (sender, receiver) = mpsc::channel(256);
        tokio::spawn(follow(self.events.clone(), filter, start, live, sender));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let message = request.get_ref();
        let filter = Filter::new(
            message.provider,
            &message.account,
            &message.document_id,
            &message.invitation_id,
        )?;
        let filter = self.admit(&request, "ListEvents", filter)?;
        let page_size = match message.page_size {
            0 => DEFAULT_PAGE,
            size if size > 0 && size as usize <= MAX_PAGE => size as usize,
            _ => {
                return Err(GatewayError::invalid_field(
                    "page_size",
                    format!("must be from 1 to {MAX_PAGE}"),
                )
                .into());
            }
        };
        let mut position = cursor("after_cursor", &message.after_cursor)?.unwrap_or(Cursor::START);
        let mut events = Vec::new();
        // Filtered pages are filled from as many reads as it takes.
        loop {
            let batch = self.events.after(position, page_size).await?;
            let exhausted = batch.len() < page_size;
            for recorded in batch {
                position = recorded.0;
                if filter.matches(&recorded.1) {
                    events.push(recorded.1.clone());
                    if events.len() == page_size {
                        break;
                    }
                }
            }
            if exhausted || events.len() == page_size {
                break;
            }
        }
        Ok(Response::new(pb::ListEventsResponse {
            events,
            next_cursor: if position == Cursor::START {
                message.after_cursor.clone()
            } else {
                position.to_string()
            },
        }))
    }
}

/// Replays from `start`, then follows live events, each exactly once and
/// in order; a watcher that falls behind re-reads the log from where it is.
async fn follow(
    events: Arc<Events>,
    filter: Filter,
    start: Cursor,
    mut live: tokio::sync::broadcast::Receiver<Recorded>,
    sender: mpsc::Sender<Result<pb::Event, Status>>,
) {
    let _watching = crate::metrics::global().watcher();
    let mut last = start;
    let deliver = |recorded: &Recorded, last: &mut Cursor| {
        *last = recorded.0;
        filter.matches(&recorded.1).then(|| recorded.1.clone())
    };
    'catch_up: loop {
        loop {
            let batch = match events.after(last, REPLAY_BATCH).await {
                Ok(batch) => batch,
                Err(error) => {
                    let _ = sender.send(Err(error.into())).await;
                    return;
                }
            };
            let done = batch.len() < REPLAY_BATCH;
            for recorded in batch {
                if let Some(event) = deliver(&recorded, &mut last)
                    && sender.send(Ok(event)).await.is_err()
                {
                    return;
                }
            }
            if done {
                break;
            }
        }
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(recorded) if recorded.0 > last => {
                        if let Some(event) = deliver(&recorded, &mut last)
                            && sender.send(Ok(event)).await.is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => continue 'catch_up,
                    Err(RecvError::Closed) => return,
                },
                _ = sender.closed() => return,
            }
        }
    }
}
