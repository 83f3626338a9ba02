//! Signed files back from Leegality (`Endpoint::FetchDocument`).

use super::*;
use crate::{
    domain::{DocumentDownload, DocumentPart, DownloadRequest},
    provider::transport::Answer,
};

impl Leegality {
    pub(super) async fn download(
        &self,
        ctx: &CallContext,
        request: DownloadRequest,
    ) -> Result<DocumentDownload> {
        validate_document_id(&request.document_id)?;
        if request.with_history {
            return Err(GatewayError::invalid_field(
                "with_history",
                "is a signNow option; Leegality serves the audit trail on its own with part AUDIT_TRAIL",
            ));
        }
        let download_type = match request.part {
            DocumentPart::Document => "DOCUMENT",
            // Leegality serves it for completed documents only.
            DocumentPart::AuditTrail => "AUDIT_TRAIL",
        };
        let mut outbound = self
            .request(Endpoint::FetchDocument)?
            .timeout(self.timeouts.upload)
            .retry(RetryPolicy::Safe);
        outbound
            .url
            .query_pairs_mut()
            .append_pair("documentId", &request.document_id)
            .append_pair("documentDownloadType", download_type);
        // Errors may come back as HTTP 200 with a JSON envelope: the content
        // type, not the status, says whether this is the file.
        let answer = self
            .http
            .open(ctx, KIND, &self.account.name, &outbound, transport::is_file)
            .await?;
        let in_document = |error: GatewayError| {
            error.with_default_metadata(MetaKey::DocumentId, &request.document_id)
        };
        match answer {
            Answer::Streaming(response) => {
                let suffix = match request.part {
                    DocumentPart::Document => "",
                    DocumentPart::AuditTrail => "-audit-trail",
                };
                Ok(DocumentDownload {
                    file_name: transport::attachment_file_name(&response.headers)
                        .unwrap_or_else(|| format!("{}{suffix}.pdf", request.document_id)),
                    content_type: transport::content_type(&response.headers)
                        .unwrap_or_else(|| "application/pdf".into()),
                    size: transport::content_length(&response.headers),
                    body: response.body,
                })
            }
            Answer::Whole(response) => {
                // A JSON answer is an error even when its status says success.
                decode(&response).map_err(in_document)?;
                Err(in_document(unrecognized_body(
                    "a JSON answer where the file was expected",
                )))
            }
        }
    }
}
