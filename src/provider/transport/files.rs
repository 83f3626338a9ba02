//! Answers whose body is a file: handed on unread, so a download streams
//! from the provider to the caller a chunk at a time.

use http::{HeaderMap, StatusCode, header};

use super::{ProviderResponse, errors};
use crate::{
    domain::ProviderKind,
    error::{GatewayError, Reason},
};

/// How an answer's body is taken.
#[derive(Clone, Copy)]
pub(super) enum Take {
    Whole,
    StreamWhen(fn(StatusCode, &HeaderMap) -> bool),
}

/// A provider's answer: read whole, or with its body still to stream.
pub(crate) enum Answer {
    Whole(ProviderResponse),
    Streaming(StreamingResponse),
}

impl Answer {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Answer::Whole(response) => response.status,
            Answer::Streaming(response) => response.status,
        }
    }

    pub(super) fn headers(&self) -> &HeaderMap {
        match self {
            Answer::Whole(response) => &response.headers,
            Answer::Streaming(response) => &response.headers,
        }
    }
}

/// An answer whose body is read as the caller reads it: nothing is
/// buffered beyond the chunk in hand.
pub(crate) struct StreamingResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: crate::domain::ByteStream,
}

pub(super) fn body_stream(
    provider: ProviderKind,
    response: reqwest::Response,
) -> crate::domain::ByteStream {
    Box::pin(futures_util::stream::try_unfold(
        response,
        move |mut response| async move {
            match response.chunk().await {
                Ok(Some(chunk)) => Ok(Some((chunk, response))),
                Ok(None) => Ok(None),
                Err(error) => {
                    let error = error.without_url();
                    tracing::warn!(error = %error, "provider body broke off");
                    Err(GatewayError::new(
                        Reason::ProviderUnavailable,
                        "the provider's file broke off mid-transfer",
                    )
                    .with_provider(provider)
                    .with_retry_after(errors::TRANSIENT_RETRY_DELAY)
                    .with_source(error))
                }
            }
        },
    ))
}

/// A 2xx that is not JSON: Leegality answers some errors with HTTP 200
/// and a JSON body, so the content type decides.
pub(crate) fn is_file(status: StatusCode, headers: &HeaderMap) -> bool {
    status.is_success()
        && !content_type(headers).is_some_and(|kind| {
            let kind = kind.to_ascii_lowercase();
            kind.starts_with("application/json") || kind.starts_with("text/")
        })
}

pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()
        .map(|kind| kind.trim().to_owned())
        .filter(|kind| !kind.is_empty())
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The `filename` of a `Content-Disposition: attachment` header, reduced
/// to a safe base name.
pub(crate) fn attachment_file_name(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let name = value.split(';').find_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("filename")
            .then(|| value.trim().trim_matches('"').to_owned())
    })?;
    let base = name.rsplit(['/', '\\']).next()?.trim();
    (!base.is_empty() && !base.chars().any(char::is_control)).then(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn json_at_200_is_not_a_file() {
        let json = headers(&[(header::CONTENT_TYPE, "application/json;charset=UTF-8")]);
        let pdf = headers(&[(header::CONTENT_TYPE, "application/pdf")]);
        assert!(!is_file(StatusCode::OK, &json));
        assert!(is_file(StatusCode::OK, &pdf));
        assert!(is_file(StatusCode::OK, &HeaderMap::new()));
        assert!(!is_file(StatusCode::NOT_FOUND, &pdf));
    }

    #[test]
    fn attachment_names_are_reduced_to_a_base_name() {
        let named =
            |value: &str| attachment_file_name(&headers(&[(header::CONTENT_DISPOSITION, value)]));
        assert_eq!(
            named("attachment; filename=\"contract.pdf\"").as_deref(),
            Some("contract.pdf")
        );
        assert_eq!(
            named("attachment; filename=../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(named("attachment").as_deref(), None);
        assert_eq!(named("attachment; filename=\"\"").as_deref(), None);
    }
}
