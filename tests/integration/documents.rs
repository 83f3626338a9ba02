//! UploadDocument and DownloadDocument through the real server: what the
//! provider received, the bytes end to end, chunk sizes, and refusals that
//! leave nothing half-done.

use crate::common;

use axum::http::Method;
use esign_gateway::{
    ProviderKind, pb,
    simulator::{Simulator, sample_pdf},
};
use tonic::Code;

const SIGNNOW: i32 = pb::Provider::Signnow as i32;
const LEEGALITY: i32 = pb::Provider::Leegality as i32;
const BYNN: i32 = pb::Provider::Bynn as i32;
const CHUNK: usize = 64 * 1024;

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn metadata(provider: i32, file: &[u8]) -> pb::UploadDocumentMetadata {
    pb::UploadDocumentMetadata {
        provider,
        file_name: "Lease.pdf".into(),
        size: file.len() as u64,
        sha256: sha256_hex(file),
        ..Default::default()
    }
}

/// The messages of an upload: metadata, then the file in `chunk`-byte pieces.
fn upload_messages(
    metadata: pb::UploadDocumentMetadata,
    file: &[u8],
    chunk: usize,
) -> Vec<pb::UploadDocumentRequest> {
    let mut messages = vec![pb::UploadDocumentRequest {
        part: Some(pb::upload_document_request::Part::Metadata(metadata)),
    }];
    messages.extend(file.chunks(chunk).map(|piece| pb::UploadDocumentRequest {
        part: Some(pb::upload_document_request::Part::Chunk(
            piece.to_vec().into(),
        )),
    }));
    messages
}

async fn upload(
    gateway: &common::TestGateway,
    messages: Vec<pb::UploadDocumentRequest>,
) -> Result<pb::UploadDocumentResponse, tonic::Status> {
    gateway
        .client
        .clone()
        .upload_document(tokio_stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

/// Every message of a download: its metadata and the chunks joined.
async fn download(
    gateway: &common::TestGateway,
    request: pb::DownloadDocumentRequest,
) -> Result<(pb::DownloadDocumentMetadata, Vec<usize>, Vec<u8>), tonic::Status> {
    let mut stream = gateway
        .client
        .clone()
        .download_document(request)
        .await?
        .into_inner();
    let Some(pb::DownloadDocumentResponse {
        part: Some(pb::download_document_response::Part::Metadata(metadata)),
    }) = stream.message().await?
    else {
        panic!("a download starts with its metadata");
    };
    let (mut sizes, mut bytes) = (Vec::new(), Vec::new());
    while let Some(message) = stream.message().await? {
        match message.part {
            Some(pb::download_document_response::Part::Chunk(chunk)) => {
                sizes.push(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            other => panic!("only chunks follow the metadata, got {other:?}"),
        }
    }
    Ok((metadata, sizes, bytes))
}

fn signnow_documents(sim: &Simulator) -> usize {
    sim.signnow().documents.len()
}

fn tagged_pdf(size: usize) -> Vec<u8> {
    let mut pdf =
        b"%PDF-1.4\n(BT {{t:s;r:y;o:\"Signer 1\";}} {{t:d;o:\"Approver\";}} ET)\n".to_vec();
    pdf.extend(sample_pdf("body", size - pdf.len()));
    pdf
}

#[tokio::test]
async fn a_signnow_upload_streams_through_as_multipart_and_returns_the_roles_of_its_text_tags() {
    let gateway = common::start().await;
    let file = tagged_pdf(300_000);
    let mut first = metadata(SIGNNOW, &file);
    first.extract_fields = true;
    let answer = upload(&gateway, upload_messages(first, &file, 50_000))
        .await
        .expect("uploaded");

    assert_eq!(answer.size, file.len() as u64);
    assert_eq!(answer.sha256, sha256_hex(&file));
    let names: Vec<&str> = answer.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Signer 1", "Approver"]);
    assert_eq!(answer.roles[1].signing_order, 2);
    let stored = gateway.sim.signnow().documents[&answer.document_id].clone();
    assert_eq!(stored.file.as_ref(), file.as_slice());
    assert_eq!(answer.roles[0].role_id, stored.roles[0].unique_id);

    let sent = gateway.sim.requests_for(ProviderKind::SignNow);
    let upload = sent
        .iter()
        .find(|r| r.path == "/document/fieldextract")
        .expect("the upload reached signNow");
    assert_eq!(upload.method, Method::POST);
    assert!(
        upload
            .header("content-type")
            .is_some_and(|t| t.starts_with("multipart/form-data; boundary=")),
        "{:?}",
        upload.header("content-type")
    );
    assert!(
        upload
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
    );
    let part = upload.file.clone().expect("a file part");
    assert_eq!(part.field, "file");
    assert_eq!(part.file_name, "Lease.pdf");
    assert_eq!(part.content_type, "application/pdf");
    assert_eq!(part.sha256, sha256_hex(&file));
}

#[tokio::test]
async fn an_upload_that_does_not_match_its_declared_size_or_digest_makes_no_document() {
    let gateway = common::start().await;
    let file = sample_pdf("contract", 200_000).to_vec();
    let before = signnow_documents(&gateway.sim);

    let mut short = metadata(SIGNNOW, &file);
    short.size += 10;
    let status = upload(&gateway, upload_messages(short, &file, CHUNK))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(common::field_violations(&status), ["metadata.size"]);
    assert_eq!(common::error_info(&status).metadata["outcome"], "not_sent");

    let mut long = metadata(SIGNNOW, &file);
    long.size -= 10;
    let status = upload(&gateway, upload_messages(long, &file, CHUNK))
        .await
        .unwrap_err();
    assert_eq!(common::field_violations(&status), ["metadata.size"]);

    let mut wrong = metadata(SIGNNOW, &file);
    wrong.sha256 = sha256_hex(b"other bytes");
    let status = upload(&gateway, upload_messages(wrong, &file, CHUNK))
        .await
        .unwrap_err();
    assert_eq!(common::field_violations(&status), ["metadata.sha256"]);

    let status = upload(
        &gateway,
        upload_messages(metadata(SIGNNOW, &file), &file, CHUNK + 1),
    )
    .await
    .unwrap_err();
    assert_eq!(common::field_violations(&status), ["chunk"]);

    assert_eq!(
        signnow_documents(&gateway.sim),
        before,
        "no document was made"
    );
}

#[tokio::test]
async fn an_upload_repeated_under_its_request_id_is_replayed_and_never_uploaded_twice() {
    let gateway = common::start().await;
    let file = sample_pdf("contract", 100_000).to_vec();
    let mut first = metadata(SIGNNOW, &file);
    first.request_id = uuid::Uuid::new_v4().to_string();

    let once = upload(&gateway, upload_messages(first.clone(), &file, CHUNK))
        .await
        .expect("uploaded");
    let again = upload(&gateway, upload_messages(first.clone(), &file, CHUNK))
        .await
        .expect("replayed");
    assert_eq!(once, again);
    let uploads = gateway
        .sim
        .requests_for(ProviderKind::SignNow)
        .into_iter()
        .filter(|r| r.path == "/document")
        .count();
    assert_eq!(uploads, 1);

    let other = sample_pdf("another contract", 100_000).to_vec();
    let mut reused = metadata(SIGNNOW, &other);
    reused.request_id = first.request_id.clone();
    let status = upload(&gateway, upload_messages(reused, &other, CHUNK))
        .await
        .unwrap_err();
    assert_eq!(common::error_info(&status).reason, "REQUEST_ID_REUSED");
}

#[tokio::test]
async fn uploads_are_refused_before_any_byte_leaves_when_they_cannot_succeed() {
    let gateway = common::start().await;
    let file = sample_pdf("contract", 10_000).to_vec();

    for provider in [LEEGALITY, BYNN] {
        let status = upload(
            &gateway,
            upload_messages(metadata(provider, &file), &file, CHUNK),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(
            common::error_info(&status).reason,
            "UNSUPPORTED_BY_PROVIDER"
        );
    }

    let chunk_first = upload_messages(metadata(SIGNNOW, &file), &file, CHUNK)
        .into_iter()
        .skip(1)
        .collect();
    let status = upload(&gateway, chunk_first).await.unwrap_err();
    assert_eq!(common::field_violations(&status), ["metadata"]);

    let mut unnamed = metadata(SIGNNOW, &file);
    unnamed.file_name = "../x.pdf".into();
    let status = upload(&gateway, upload_messages(unnamed, &file, CHUNK))
        .await
        .unwrap_err();
    assert_eq!(common::field_violations(&status), ["metadata.file_name"]);

    let mut sizeless = metadata(SIGNNOW, &file);
    sizeless.size = 0;
    let status = upload(&gateway, upload_messages(sizeless, &file, CHUNK))
        .await
        .unwrap_err();
    assert_eq!(common::field_violations(&status), ["metadata.size"]);

    assert!(gateway.sim.requests().is_empty(), "no provider was called");
}

#[tokio::test]
async fn a_signnow_download_streams_the_document_back_in_64_kib_chunks_with_its_history() {
    let gateway = common::start().await;
    let owner = gateway.sim.config().credentials.signnow_username.clone();
    let id = gateway
        .sim
        .signnow()
        .seed_document(&owner, "Lease", &["Signer 1"])
        .id;
    let file = sample_pdf("signed lease", 1_000_000);
    gateway.sim.signnow().documents.get_mut(&id).unwrap().file = file.clone();

    let (meta, sizes, bytes) = download(
        &gateway,
        pb::DownloadDocumentRequest {
            provider: SIGNNOW,
            document_id: id.clone(),
            with_history: true,
            ..Default::default()
        },
    )
    .await
    .expect("downloaded");
    assert_eq!(meta.file_name, "Lease.pdf");
    assert_eq!(meta.content_type, "application/pdf");
    assert_eq!(meta.size, bytes.len() as u64);
    assert!(bytes.starts_with(&file), "the document comes first");
    assert!(bytes.len() > file.len(), "the audit trail is appended");
    assert!(sizes.iter().all(|&size| size <= CHUNK), "{sizes:?}");

    let sent = gateway.sim.requests_for(ProviderKind::SignNow);
    let asked = sent
        .iter()
        .find(|r| r.path.ends_with("/download"))
        .expect("the download reached signNow");
    assert_eq!(asked.path, format!("/document/{id}/download"));
    assert_eq!(asked.query["type"], "collapsed");
    assert_eq!(asked.query["with_history"], "1");

    let (_, _, plain) = download(
        &gateway,
        pb::DownloadDocumentRequest {
            provider: SIGNNOW,
            document_id: id.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("downloaded");
    assert_eq!(plain, file.as_ref());

    let status = download(
        &gateway,
        pb::DownloadDocumentRequest {
            provider: SIGNNOW,
            document_id: "0".repeat(40),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(common::error_info(&status).reason, "DOCUMENT_NOT_FOUND");

    let status = download(
        &gateway,
        pb::DownloadDocumentRequest {
            provider: SIGNNOW,
            document_id: id,
            part: pb::DocumentPart::AuditTrail as i32,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(common::field_violations(&status), ["part"]);
}

#[tokio::test]
async fn a_leegality_download_serves_the_created_pdf_and_its_audit_trail_once_completed() {
    let gateway = common::start().await;
    let (id, invitees) = common::seed_leegality(
        &gateway.sim,
        Some("IRN-9"),
        &[("Asha", "asha.rao@example.com")],
    );
    let file = sample_pdf("signed in India", 300_000);
    gateway.sim.leegality().documents.get_mut(&id).unwrap().file = file.clone();
    let request = |part: pb::DocumentPart| pb::DownloadDocumentRequest {
        provider: LEEGALITY,
        document_id: id.clone(),
        part: part as i32,
        ..Default::default()
    };

    let (meta, sizes, bytes) = download(&gateway, request(pb::DocumentPart::Document))
        .await
        .expect("downloaded");
    assert_eq!(bytes, file.as_ref());
    assert_eq!(meta.size, file.len() as u64);
    assert!(sizes.iter().all(|&size| size <= CHUNK));
    let sent = gateway.sim.requests_for(ProviderKind::Leegality);
    let asked = sent.last().expect("Leegality was asked");
    assert_eq!(asked.path, "/v3.1/document/fetchDocument");
    assert_eq!(asked.query["documentId"], id);
    assert_eq!(asked.query["documentDownloadType"], "DOCUMENT");
    assert!(asked.header("x-auth-token").is_some());

    // Leegality answers this refusal with HTTP 200 and a JSON envelope.
    let status = download(&gateway, request(pb::DocumentPart::AuditTrail))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        common::error_info(&status).metadata["providerCode"],
        "no.document.found"
    );

    assert!(gateway.sim.sign_leegality_invitee(&invitees[0]));
    let (meta, _, trail) = download(&gateway, request(pb::DocumentPart::AuditTrail))
        .await
        .expect("the audit trail of a completed document");
    assert!(trail.starts_with(b"%PDF"));
    assert_eq!(meta.file_name, format!("{id}-audit-trail.pdf"));

    let mut history = request(pb::DocumentPart::Document);
    history.with_history = true;
    let status = download(&gateway, history).await.unwrap_err();
    assert_eq!(common::field_violations(&status), ["with_history"]);
}

#[tokio::test]
async fn bynn_has_no_documents_to_download() {
    let gateway = common::start().await;
    let status = download(
        &gateway,
        pb::DownloadDocumentRequest {
            provider: BYNN,
            document_id: "adi_123".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(
        common::error_info(&status).reason,
        "UNSUPPORTED_BY_PROVIDER"
    );
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn a_transfer_beyond_the_payload_budget_is_shed_before_the_provider_is_asked() {
    // Less than one transfer's reservation (about 1.1 MiB).
    let gateway = common::start_with(|config| config.max_inflight_bytes = 512 * 1024).await;
    let owner = gateway.sim.config().credentials.signnow_username.clone();
    let id = gateway
        .sim
        .signnow()
        .seed_document(&owner, "Lease", &["Signer 1"])
        .id;
    let status = download(
        &gateway,
        pb::DownloadDocumentRequest {
            provider: SIGNNOW,
            document_id: id,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let info = common::error_info(&status);
    assert_eq!(info.reason, "GATEWAY_OVERLOADED");
    assert_eq!(info.metadata["component"], "payload-budget");
    assert!(common::retry_delay(&status).is_some());

    let file = sample_pdf("contract", 10_000).to_vec();
    let status = upload(
        &gateway,
        upload_messages(metadata(SIGNNOW, &file), &file, CHUNK),
    )
    .await
    .unwrap_err();
    assert_eq!(common::error_info(&status).reason, "GATEWAY_OVERLOADED");
    assert!(gateway.sim.requests().is_empty(), "no provider was called");
}
