//! Files in and out of the simulated providers: signNow's multipart upload
//! (`POST /document`, `POST /document/fieldextract`), read as it streams in
//! and kept once, and file answers served from that one copy.
//!
//! The simulator's own assumptions, where the providers publish nothing:
//! signNow takes files up to [`MAX_UPLOAD_BYTES`]; fieldextract makes one
//! role per distinct `o:"<role>"` of the `{{...}}` text tags, in order of
//! appearance; a missing file part is error 65536.

use axum::{
    body::Bytes,
    extract::{FromRequest as _, Multipart, Request},
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::BytesMut;
use serde_json::json;

use super::{
    RecordedRequest, Shared, SimResponse, lock, random_hex,
    signnow::{Role, SignNowDocument},
};
use crate::domain::ProviderKind;

/// Largest upload the simulated signNow takes.
pub(crate) const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;

/// What a multipart upload carried, as the simulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFile {
    /// The multipart field name (signNow reads `file`).
    pub field: String,
    pub file_name: String,
    pub content_type: String,
    pub size: usize,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
}

/// A small, well-formed PDF whose text says `label`, padded with a PDF
/// comment to at least `size` bytes.
pub fn sample_pdf(label: &str, size: usize) -> Bytes {
    let mut pdf = format!(
        "%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n\
         2 0 obj <</Type /Pages /Kids [3 0 R] /Count 1>> endobj\n\
         3 0 obj <</Type /Page /Parent 2 0 R /Contents 4 0 R>> endobj\n\
         4 0 obj <</Length {}>> stream\n(BT /F1 12 Tf ({label}) Tj ET)\nendstream endobj\n",
        label.len() + 24
    )
    .into_bytes();
    if pdf.len() + 6 < size {
        pdf.push(b'%');
        pdf.resize(size - 7, b'.');
        pdf.push(b'\n');
    }
    pdf.extend_from_slice(b"%%EOF\n");
    Bytes::from(pdf)
}

/// The role names of the text tags in `file`: `{{...o:"Signer 1"...}}`.
pub(crate) fn text_tag_roles(file: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(file);
    let mut roles: Vec<String> = Vec::new();
    for tag in text.split("{{").skip(1) {
        let Some((tag, _)) = tag.split_once("}}") else {
            continue;
        };
        let role = tag
            .split(';')
            .find_map(|part| part.trim().strip_prefix("o:"))
            .map(|role| role.trim().trim_matches('"').to_owned());
        if let Some(role) = role
            && !role.is_empty()
            && !roles.contains(&role)
        {
            roles.push(role);
        }
    }
    roles
}

/// `POST /document` or `/document/fieldextract`: the file part is read a
/// chunk at a time into one buffer sized from the request's length.
pub(crate) async fn signnow_upload(shared: &Shared, path: &str, request: Request) -> Response {
    let now = shared.clock.now();
    let headers = request.headers().clone();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if !lock(&shared.signnow).token_is_valid(bearer.as_deref(), now) {
        return super::signnow::invalid_token().into_http();
    }
    let expected = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_UPLOAD_BYTES);
    let mut multipart = match Multipart::from_request(request, &()).await {
        Ok(multipart) => multipart,
        Err(_) => return super::signnow::api_error(65536, "Invalid file").into_http(),
    };
    let mut received = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            // A body cut off mid-way (or over the limit) makes nothing.
            Err(error) => return (StatusCode::BAD_REQUEST, error.body_text()).into_response(),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            continue;
        }
        let file_name = field.file_name().unwrap_or("document.pdf").to_owned();
        let content_type = field.content_type().unwrap_or_default().to_owned();
        let mut bytes = BytesMut::with_capacity(expected);
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    digest.update(&chunk);
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => {
                    return (StatusCode::BAD_REQUEST, error.body_text()).into_response();
                }
            }
        }
        let sha256 = digest
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        received = Some((
            ReceivedFile {
                field: name,
                file_name,
                content_type,
                size: bytes.len(),
                sha256,
            },
            bytes.freeze(),
        ));
    }
    let Some((summary, file)) = received else {
        return super::signnow::api_error(65536, "File is required").into_http();
    };
    if shared.config.record_requests {
        lock(&shared.log).push(RecordedRequest {
            provider: ProviderKind::SignNow,
            method: Method::POST,
            path: path.to_owned(),
            query: Default::default(),
            headers,
            body: Bytes::new(),
            file: Some(summary.clone()),
        });
    }
    let roles = if path.ends_with("/fieldextract") {
        text_tag_roles(&file)
            .into_iter()
            .enumerate()
            .map(|(index, name)| Role {
                unique_id: random_hex(40),
                name,
                signing_order: index as u32 + 1,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut state = lock(&shared.signnow);
    let document = SignNowDocument {
        id: random_hex(40),
        name: summary.file_name.trim_end_matches(".pdf").to_owned(),
        owner: shared.config.credentials.signnow_username.clone(),
        roles,
        field_invites: Vec::new(),
        requests: Vec::new(),
        file,
    };
    let id = document.id.clone();
    state.documents.insert(id.clone(), document);
    SimResponse::ok(json!({ "id": id })).into_http()
}

/// A file answer from parts held elsewhere: nothing is copied.
pub(crate) fn file_response(file: &FileAnswer) -> Response {
    let length: usize = file.parts.iter().map(Bytes::len).sum();
    let parts = file.parts.clone();
    let stream = futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>));
    let mut response = Response::new(axum::body::Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file.file_name))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A file a provider answers with, as shared buffers.
#[derive(Debug, Clone)]
pub(crate) struct FileAnswer {
    pub file_name: String,
    pub parts: Vec<Bytes>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tags_name_roles_once_each_in_order() {
        let file = br#"%PDF {{t:s;r:y;o:"Signer 1";}} text {{t:d;o:"Approver";}} {{t:i;o:"Signer 1";}} {{broken"#;
        assert_eq!(text_tag_roles(file), ["Signer 1", "Approver"]);
        assert!(text_tag_roles(b"%PDF no tags").is_empty());
    }

    #[test]
    fn sample_pdfs_have_the_asked_size_and_a_pdf_frame() {
        let pdf = sample_pdf("hello", 10_000);
        assert_eq!(pdf.len(), 10_000);
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
    }
}
