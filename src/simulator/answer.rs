//! What the per-provider handlers see of a request, and the answer they
//! give before it is turned into HTTP.

use std::collections::HashMap;

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};

use super::files;

/// A provider answer before it is turned into HTTP.
#[derive(Debug, Clone)]
pub(crate) struct SimResponse {
    pub status: StatusCode,
    pub headers: Vec<(header::HeaderName, String)>,
    pub body: serde_json::Value,
    /// Send no body at all (not even `null`).
    pub empty: bool,
    /// Answer with this file instead of JSON.
    pub file: Option<files::FileAnswer>,
    /// Answer with this JSON, already serialized, instead of `body`.
    pub json_bytes: Option<Bytes>,
}

impl SimResponse {
    pub(crate) fn json(status: StatusCode, body: serde_json::Value) -> SimResponse {
        SimResponse {
            status,
            headers: Vec::new(),
            body,
            empty: false,
            file: None,
            json_bytes: None,
        }
    }

    /// An answer serialized by its handler (a hot one, written without
    /// building a `Value`).
    pub(crate) fn json_bytes(status: StatusCode, body: Bytes) -> SimResponse {
        SimResponse {
            json_bytes: Some(body),
            ..SimResponse::json(status, serde_json::Value::Null)
        }
    }

    pub(crate) fn file(file_name: String, parts: Vec<Bytes>) -> SimResponse {
        SimResponse {
            file: Some(files::FileAnswer { file_name, parts }),
            ..SimResponse::ok(serde_json::Value::Null)
        }
    }

    pub(crate) fn without_body(mut self) -> SimResponse {
        self.empty = true;
        self
    }

    pub(crate) fn ok(body: serde_json::Value) -> SimResponse {
        SimResponse::json(StatusCode::OK, body)
    }

    pub(crate) fn with_header(
        mut self,
        name: header::HeaderName,
        value: impl Into<String>,
    ) -> SimResponse {
        self.headers.push((name, value.into()));
        self
    }

    /// The HTTP response: the file, no body, the serialized JSON or `body`,
    /// with the extra headers.
    pub(crate) fn into_http(self) -> Response {
        let mut response = if let Some(file) = &self.file {
            files::file_response(file)
        } else if self.empty {
            (self.status, Body::empty()).into_response()
        } else if let Some(body) = self.json_bytes {
            (
                self.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response()
        } else {
            (self.status, axum::Json(self.body)).into_response()
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// The request as the per-provider handlers see it.
pub(crate) struct SimRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a HashMap<String, String>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    pub now: DateTime<Utc>,
}

impl SimRequest<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn bearer(&self) -> Option<&str> {
        self.header("authorization")?.strip_prefix("Bearer ")
    }
}
