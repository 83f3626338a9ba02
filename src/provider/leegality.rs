//! Leegality adapter.

use async_trait::async_trait;

use crate::{
    config::{AccountConfig, Timeouts},
    domain::{ProviderKind, Rpc},
    provider::{Provider, http::HttpClient},
};

pub struct Leegality {
    #[allow(dead_code)]
    account: AccountConfig,
    #[allow(dead_code)]
    http: HttpClient,
    #[allow(dead_code)]
    timeouts: Timeouts,
}

impl Leegality {
    pub fn new(account: AccountConfig, http: HttpClient, timeouts: Timeouts) -> Self {
        Leegality {
            account,
            http,
            timeouts,
        }
    }
}

#[async_trait]
impl Provider for Leegality {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Leegality
    }

    fn supported_rpcs(&self) -> &'static [Rpc] {
        &[]
    }
}
