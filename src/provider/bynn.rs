//! Bynn adapter.

use async_trait::async_trait;

use crate::{
    config::{AccountConfig, Timeouts},
    domain::{ProviderKind, Rpc},
    provider::{Provider, http::HttpClient},
};

pub struct Bynn {
    #[allow(dead_code)]
    account: AccountConfig,
    #[allow(dead_code)]
    http: HttpClient,
    #[allow(dead_code)]
    timeouts: Timeouts,
}

impl Bynn {
    pub fn new(account: AccountConfig, http: HttpClient, timeouts: Timeouts) -> Self {
        Bynn { account, http, timeouts }
    }
}

#[async_trait]
impl Provider for Bynn {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Bynn
    }

    fn supported_rpcs(&self) -> &'static [Rpc] {
        &[]
    }
}
