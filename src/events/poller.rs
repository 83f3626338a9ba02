//! The Bynn poller. Bynn sends no invitation events, so the invitations the
//! gateway sent and that are not final are read back (`GET
//! /autodoc/invitations/{token}`) every poll period, within the poller's own
//! share of Bynn's request budget, and each change becomes an event
//! (`provider_event` = `poll`). The set of invitations lives in the state
//! store; with several replicas on Redis one polls at a time (a lease) and
//! polls them all, whoever sent them.

use std::{sync::Arc, time::Duration};

use super::{Events, intake::poll_event};
use crate::{
    clock::Clock,
    domain::{InvitationState, ProviderKind, Rpc},
    provider::{Account, CallContext},
    store::{Budget, StateStore},
};

/// The set of tokens an account's poller watches.
pub(crate) fn watch_key(account: &str) -> String {
    format!("bynn:watch:{account}")
}

pub(crate) struct Poller {
    pub(crate) account: Arc<Account>,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) events: Arc<Events>,
    pub(crate) clock: Clock,
    pub(crate) interval: Duration,
    pub(crate) requests_per_minute: u32,
}

impl Poller {
    /// Polls until the process ends.
    pub(crate) async fn run(self) {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let lease_key = format!("bynn:poller:{}", self.account.config.name);
        let lease = self.interval * 3;
        let mut every = tokio::time::interval(self.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut offset = 0usize;
        loop {
            every.tick().await;
            if !self.hold_lease(&lease_key, &owner, lease).await {
                continue;
            }
            match self.poll_once(offset).await {
                Ok(polled) => offset = offset.wrapping_add(polled),
                Err(error) => tracing::warn!(error = %error, "bynn poll failed"),
            }
        }
    }

    /// One replica polls: the one holding the lease renews it.
    async fn hold_lease(&self, key: &str, owner: &str, lease: Duration) -> bool {
        match self
            .store
            .claim(key, owner.as_bytes().to_vec(), lease)
            .await
        {
            Ok(true) => true,
            Ok(false) => match self.store.get(key).await {
                Ok(Some(holder)) if holder == owner.as_bytes() => self
                    .store
                    .put(key, owner.as_bytes().to_vec(), lease)
                    .await
                    .is_ok(),
                _ => false,
            },
            Err(_) => false,
        }
    }

    /// Reads as many watched invitations as the poller's budget allows,
    /// starting at `offset` so every one gets its turn; how many it read.
    async fn poll_once(&self, offset: usize) -> crate::error::Result<usize> {
        let name = &self.account.config.name;
        let mut tokens = self.store.set_members(&watch_key(name)).await?;
        if tokens.is_empty() {
            return Ok(0);
        }
        let start = offset % tokens.len();
        tokens.rotate_left(start);
        let budget = Budget {
            key: format!("budget:{{bynn/{name}}}:poller"),
            limit: self.requests_per_minute,
            window: Duration::from_secs(60),
        };
        let mut polled = 0;
        for token in tokens {
            if self
                .store
                .take_budget(std::slice::from_ref(&budget))
                .await?
                .is_some()
            {
                break;
            }
            polled += 1;
            crate::metrics::global().poller_call();
            let ctx = CallContext::new(Rpc::GetInvitation, None);
            let invitation = match self.account.provider.get_invitation(&ctx, &token).await {
                Ok(invitation) => invitation,
                Err(error) => {
                    tracing::info!(error = %error, "bynn poll read failed");
                    continue;
                }
            };
            let known_key = format!("bynn:known:{name}:{token}");
            let state = format!(
                "{}:{}",
                invitation.state.name(),
                invitation.delivery_attempts.unwrap_or_default()
            );
            let known = self.store.get(&known_key).await?;
            let is_final = matches!(
                invitation.state,
                InvitationState::Signed
                    | InvitationState::Rejected
                    | InvitationState::Expired
                    | InvitationState::Failed
                    | InvitationState::Cancelled
            );
            if known.as_deref() != Some(state.as_bytes()) {
                self.events
                    .record(poll_event(&self.clock, name, invitation))
                    .await?;
                self.store
                    .put(
                        &known_key,
                        state.into_bytes(),
                        Duration::from_secs(40 * 24 * 3600),
                    )
                    .await?;
            }
            if is_final {
                self.store.set_remove(&watch_key(name), &token).await?;
            }
        }
        Ok(polled)
    }
}

/// Whether `account` gets a poller: Bynn accounts.
pub(crate) fn polls(account: &Account) -> bool {
    account.config.provider == ProviderKind::Bynn
}
