//! Provider budgets: calls per minute the gateway allows itself towards
//! each account, taken from the state store before a call goes out, so
//! every replica on one Redis shares them. A spent budget answers at once
//! with RATE_LIMITED and the wait, without calling the provider.

use std::{collections::HashMap, sync::Arc, time::Duration};

use crate::{
    config::{AccountBudgets, AccountConfig},
    domain::ProviderKind,
    error::{GatewayError, MetaKey, Outcome, Reason, Result},
    store::{Budget, StateStore},
};

const MINUTE: Duration = Duration::from_secs(60);

/// Which budgets a call counts against besides the account's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Request,
    /// Re-delivers a notification: also counts against the resend budget.
    Resend,
}

pub(crate) struct Budgets {
    store: Arc<dyn StateStore>,
    /// By provider, then account name (looked up without an owned key).
    accounts: HashMap<ProviderKind, HashMap<String, AccountBudgets>>,
}

impl Budgets {
    pub(crate) fn new(store: Arc<dyn StateStore>, accounts: &[AccountConfig]) -> Budgets {
        let mut by_provider: HashMap<ProviderKind, HashMap<String, AccountBudgets>> =
            HashMap::new();
        for account in accounts
            .iter()
            .filter(|a| a.budgets != AccountBudgets::default())
        {
            by_provider
                .entry(account.provider)
                .or_default()
                .insert(account.name.clone(), account.budgets);
        }
        Budgets {
            store,
            accounts: by_provider,
        }
    }

    /// Takes the call from the account's budgets, or says how long to wait.
    pub(crate) async fn take(
        &self,
        provider: ProviderKind,
        account: &str,
        kind: CallKind,
    ) -> Result<()> {
        let Some(limits) = self
            .accounts
            .get(&provider)
            .and_then(|accounts| accounts.get(account))
        else {
            return Ok(());
        };
        // One hash tag per account: the keys of one call share a Redis
        // Cluster slot, so the script can take both at once.
        let tag = format!("budget:{{{}/{account}}}", provider.as_str());
        let mut budgets = Vec::with_capacity(2);
        let mut names = Vec::with_capacity(2);
        if let Some(limit) = limits.requests_per_minute {
            budgets.push(Budget {
                key: format!("{tag}:requests"),
                limit,
                window: MINUTE,
            });
            names.push("requests_per_minute");
        }
        if let (CallKind::Resend, Some(limit)) = (kind, limits.resends_per_minute) {
            budgets.push(Budget {
                key: format!("{tag}:resends"),
                limit,
                window: MINUTE,
            });
            names.push("resends_per_minute");
        }
        let Some((wait, index)) = self.store.take_budget(&budgets).await? else {
            return Ok(());
        };
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        Err(GatewayError::new(
            Reason::RateLimited,
            "the gateway's budget for calls to this provider account is spent; retry later",
        )
        .with_provider(provider)
        .with_metadata(MetaKey::Limiter, names[index])
        .with_outcome(Outcome::NotSent)
        .with_retry_after(Duration::from_secs(seconds)))
    }
}
