//! SignNow adapter.

use async_trait::async_trait;

use crate::{
    config::{AccountConfig, Timeouts},
    domain::{ProviderKind, Rpc},
    provider::{Provider, http::HttpClient},
};

pub struct SignNow {
    #[allow(dead_code)]
    account: AccountConfig,
    #[allow(dead_code)]
    http: HttpClient,
    #[allow(dead_code)]
    timeouts: Timeouts,
}

impl SignNow {
    pub fn new(account: AccountConfig, http: HttpClient, timeouts: Timeouts) -> Self {
        SignNow {
            account,
            http,
            timeouts,
        }
    }
}

#[async_trait]
impl Provider for SignNow {
    fn kind(&self) -> ProviderKind {
        ProviderKind::SignNow
    }

    fn supported_rpcs(&self) -> &'static [Rpc] {
        &[]
    }
}
