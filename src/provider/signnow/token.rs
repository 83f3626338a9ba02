//! The bearer token: cached per account, refreshed early, single-flight.

use super::*;

/// The cached bearer token. The async mutex is held while a token is
/// fetched, so a burst of calls triggers one token request.
pub(super) struct TokenCache {
    pub(super) state: Mutex<Option<CachedToken>>,
}

pub(super) struct CachedToken {
    /// `Bearer <access token>`, built once per token.
    pub(super) bearer: CredentialHeader,
    pub(super) refresh: Option<Secret>,
    pub(super) refresh_at: DateTime<Utc>,
    pub(super) generation: u64,
}

impl SignNow {
    /// A bearer token valid for a while yet, fetched or refreshed if needed.
    pub(super) async fn bearer(&self, ctx: &CallContext) -> Result<(CredentialHeader, u64)> {
        if let Some(fixed) = &self.fixed_bearer {
            return Ok((fixed.clone(), 0));
        }
        let mut state = self.tokens.state.lock().await;
        let now = self.clock.now();
        if let Some(token) = state.as_ref()
            && now < token.refresh_at
        {
            return Ok((token.bearer.clone(), token.generation));
        }
        let generation = state.as_ref().map_or(1, |t| t.generation + 1);
        let refresh = state.as_ref().and_then(|t| t.refresh.clone());
        let grant = match refresh {
            Some(refresh_token) => match self.token_request(ctx, Some(&refresh_token)).await {
                Ok(grant) => grant,
                // The refresh-grant error is undocumented: any refusal falls
                // back to the password grant.
                Err(error) if error.reason() == Reason::ProviderCredentialsRejected => {
                    tracing::info!("signNow refused the refresh token; using the password grant");
                    self.token_request(ctx, None).await?
                }
                Err(error) => return Err(error),
            },
            None => self.token_request(ctx, None).await?,
        };
        let lifetime = chrono::Duration::seconds(grant.expires_in.max(1));
        // Refresh a tenth of the lifetime early, at most five minutes.
        let early = (lifetime / 10).min(chrono::Duration::minutes(5));
        let token = CachedToken {
            bearer: CredentialHeader::new(&format!("Bearer {}", grant.access_token)),
            refresh: grant.refresh_token.map(Secret::new),
            refresh_at: now + lifetime - early,
            generation,
        };
        let bearer = (token.bearer.clone(), generation);
        *state = Some(token);
        tracing::info!(
            expires_in_secs = grant.expires_in,
            "signNow access token obtained"
        );
        Ok(bearer)
    }

    /// Forgets the access token `generation` if it is still the cached one.
    pub(super) async fn invalidate(&self, generation: u64) {
        let mut state = self.tokens.state.lock().await;
        if let Some(token) = state.as_mut()
            && token.generation == generation
        {
            token.refresh_at = DateTime::<Utc>::MIN_UTC;
        }
    }

    pub(super) async fn token_request(
        &self,
        ctx: &CallContext,
        refresh_token: Option<&Secret>,
    ) -> Result<TokenGrant> {
        let Credentials::SignNowPassword {
            username, password, ..
        } = &self.account.credentials
        else {
            return Err(GatewayError::internal(
                "signNow account has no password-grant credentials",
            ));
        };
        let form: Vec<(&str, &str)> = match refresh_token {
            Some(refresh) => vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose()),
            ],
            None => vec![
                ("grant_type", "password"),
                ("username", username.as_str()),
                ("password", password.expose()),
                ("scope", "*"),
            ],
        };
        let outbound = Outbound::new(
            "token",
            Method::POST,
            self.url(&["oauth2", "token"]),
            "/oauth2/token",
        )
        .credential(HeaderName::from_static("authorization"), &self.basic)?
        .form_body(&form)
        .timeout(self.timeouts.token)
        .retry(RetryPolicy::Safe);
        let response = self
            .http
            .send(ctx, KIND, &self.account.name, &outbound)
            .await?;
        if response.status.is_success()
            && let Ok(grant) = response.json::<TokenGrant>()
        {
            return Ok(grant);
        }
        if response.status.is_success() {
            return Err(transport::unrecognized(KIND, &response));
        }
        if response.status.is_server_error() || response.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(transport::common_status_error(KIND, &response)
                .unwrap_or_else(|| transport::unrecognized(KIND, &response)));
        }
        let error = WireError::parse(&response);
        tracing::warn!(
            status = response.status.as_u16(),
            error = error.text(),
            code = error.code_string(),
            "signNow token request refused"
        );
        Err(GatewayError::new(
            Reason::ProviderCredentialsRejected,
            "signNow rejected the gateway's credentials",
        )
        .with_provider(KIND)
        .with_metadata(
            MetaKey::ProviderHttpStatus,
            response.status.as_u16().to_string(),
        )
        .with_metadata(MetaKey::ProviderCode, error.code_string()))
    }
}

pub(super) fn is_invalid_token(response: &ProviderResponse) -> bool {
    if response.status == StatusCode::UNAUTHORIZED {
        return true;
    }
    response.status == StatusCode::BAD_REQUEST
        && WireError::parse(response).auth_error.as_deref() == Some("invalid_token")
}

pub(super) fn credentials_rejected(response: &ProviderResponse) -> GatewayError {
    GatewayError::new(
        Reason::ProviderCredentialsRejected,
        "signNow rejected the gateway's access token",
    )
    .with_provider(KIND)
    .with_metadata(
        MetaKey::ProviderHttpStatus,
        response.status.as_u16().to_string(),
    )
    .with_metadata(
        MetaKey::ProviderCode,
        WireError::parse(response).code_string(),
    )
}

#[derive(Debug, Deserialize)]
pub(super) struct TokenGrant {
    pub(super) access_token: String,
    #[serde(default)]
    pub(super) refresh_token: Option<String>,
    #[serde(default = "default_expires_in", deserialize_with = "lenient_i64")]
    pub(super) expires_in: i64,
}

pub(super) fn default_expires_in() -> i64 {
    // Not stated in the answer: assume an hour rather than the 30 days the
    // docs' example shows, so a wrong guess costs a refresh, not failures.
    3600
}

pub(super) fn lenient_i64<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<i64, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(number(&value).unwrap_or_else(default_expires_in))
}
