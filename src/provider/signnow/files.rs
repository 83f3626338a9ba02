//! Documents in and out: `POST /document` (or `/document/fieldextract`
//! for text tags) streamed through as multipart, and
//! `GET /document/{id}/download` streamed back.

use super::*;
use crate::{
    domain::{
        ByteStream, DocumentDownload, DocumentPart, DocumentRole, DownloadRequest, UploadRequest,
        UploadedDocument,
    },
    provider::transport::{Answer, CaughtError, Payload},
};

/// `POST /document` answers `{"id": "<40 hex>"}`, and so does fieldextract.
#[derive(Debug, Deserialize)]
struct UploadAnswer {
    id: String,
}

impl SignNow {
    pub(super) async fn upload(
        &self,
        ctx: &CallContext,
        request: UploadRequest,
        bytes: ByteStream,
    ) -> Result<UploadedDocument> {
        let (segments, template): (&[&str], _) = if request.extract_fields {
            (&["document", "fieldextract"], "/document/fieldextract")
        } else {
            (&["document"], "/document")
        };
        let caught = CaughtError::default();
        let mut payload = Some(Payload::upload(
            "file",
            &request.file_name,
            request.size,
            bytes,
            caught.clone(),
        )?);
        // The upload is one-shot: Replay::Unsafe never builds it twice.
        let sent = self
            .send(ctx, Replay::Unsafe, || {
                let payload = payload
                    .take()
                    .ok_or_else(|| GatewayError::internal("an upload body was built twice"))?;
                Ok(Outbound::new(
                    "upload_document",
                    Method::POST,
                    self.url(segments),
                    template,
                )
                .upload_body(payload)
                .timeout(self.timeouts.upload)
                // signNow makes a new document for every upload it receives.
                .retry(RetryPolicy::OnlyBeforeSent))
            })
            .await;
        // The caller's stream broke (or did not match its size): the body
        // was cut off, so signNow never saw a whole upload.
        if let Some(error) = caught.take() {
            return Err(error);
        }
        let response = sent?;
        if !response.status.is_success() {
            return Err(map_error(&response, Op::Upload));
        }
        let answer: UploadAnswer = response
            .json()
            .map_err(|_| transport::unrecognized(KIND, &response))?;
        validate_id("document_id", &answer.id)
            .map_err(|_| transport::unrecognized(KIND, &response))?;
        // The document exists from here on: a failed read of its roles is
        // a warning on a successful upload, never an error that hides it.
        let (roles, warnings) = match self.read_document(ctx, &answer.id).await {
            Ok(document) => (roles_of(&document), Vec::new()),
            Err(error) => {
                tracing::warn!(error = %error, "uploaded, but the roles could not be read back");
                (
                    Vec::new(),
                    vec![ProviderWarning {
                        code: "gateway.roles.unread".into(),
                        message: format!(
                            "the document was uploaded, but its roles could not be read: {error}"
                        ),
                    }],
                )
            }
        };
        Ok(UploadedDocument {
            document_id: answer.id,
            roles,
            warnings,
        })
    }

    pub(super) async fn download(
        &self,
        ctx: &CallContext,
        request: DownloadRequest,
    ) -> Result<DocumentDownload> {
        validate_id("document_id", &request.document_id)?;
        if request.part != DocumentPart::Document {
            return Err(GatewayError::invalid_field(
                "part",
                "signNow serves the document only; set with_history to append its audit trail",
            ));
        }
        let build = || {
            let mut url = self.url(&["document", &request.document_id, "download"]);
            url.query_pairs_mut().append_pair("type", "collapsed");
            if request.with_history {
                url.query_pairs_mut().append_pair("with_history", "1");
            }
            Ok(Outbound::new(
                "download_document",
                Method::GET,
                url,
                "/document/{document_id}/download",
            )
            .timeout(self.timeouts.upload)
            .retry(RetryPolicy::Safe))
        };
        let answer = self
            .exchange(ctx, Replay::Safe, build, Some(transport::is_file))
            .await?;
        match answer {
            Answer::Streaming(response) => Ok(DocumentDownload {
                file_name: transport::attachment_file_name(&response.headers)
                    .unwrap_or_else(|| format!("{}.pdf", request.document_id)),
                content_type: transport::content_type(&response.headers)
                    .unwrap_or_else(|| "application/pdf".into()),
                size: transport::content_length(&response.headers),
                body: response.body,
            }),
            Answer::Whole(response) => Err(map_error(&response, Op::Download)
                .with_default_metadata(MetaKey::DocumentId, &request.document_id)),
        }
    }
}

fn roles_of(document: &WireDocument) -> Vec<DocumentRole> {
    document
        .roles
        .iter()
        .map(|role| DocumentRole {
            name: role.name.clone(),
            role_id: role.unique_id.clone(),
            signing_order: role.order().unwrap_or(0),
        })
        .collect()
}
