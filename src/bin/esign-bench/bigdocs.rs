//! Large documents: peak RSS under the payload budget.

use std::time::Duration;

use esign_gateway::{
    pb::{self, invitation_service_client::InvitationServiceClient},
    simulator::{Simulator, SimulatorConfig},
};

use crate::{
    load::open_connections,
    process::{Server, spawn_gateway, start_gateway, start_simulator},
};

/// For 1, 4 and 8 concurrent creates (a fresh gateway each, so VmHWM is the
/// peak of that run): peak RSS over idle, OK and shed counts, and how many
/// creates reached the simulator.
pub(crate) async fn bigdocs_scenario(mb: usize, latency: Duration) {
    let sim = start_simulator(SimulatorConfig::default()).await;
    sim.set_latency(latency);
    let mut file = b"%PDF-1.7\n".to_vec();
    file.resize(mb * 1_000_000, b' ');
    let file = bytes::Bytes::from(file);
    println!("bigdocs: {mb} MB PDF per Leegality create, simulator answers after {latency:?}");
    for concurrency in [1usize, 4, 8] {
        let (server, _) = start_gateway(&sim, None).await;
        let idle = server.status_mib("VmRSS:");
        let creates_before = leegality_creates(&sim);
        let connection = open_connections(server.addr, 1).await.remove(0);
        let calls = (0..concurrency).map(|_| {
            let mut client = InvitationServiceClient::new(connection.clone())
                .max_encoding_message_size(32 * 1024 * 1024);
            let request = pb::SendInvitationRequest {
                provider: pb::Provider::Leegality as i32,
                request_id: uuid::Uuid::new_v4().to_string(),
                signers: vec![pb::Signer {
                    name: "Asha Rao".into(),
                    email: "asha@example.com".into(),
                    ..Default::default()
                }],
                provider_options: Some(pb::send_invitation_request::ProviderOptions::Leegality(
                    pb::LeegalityOptions {
                        profile_id: "wfDemo01".into(),
                        file_name: "large.pdf".into(),
                        file: file.clone(),
                    },
                )),
                ..Default::default()
            };
            async move { client.send_invitation(request).await }
        });
        let results = futures_util::future::join_all(calls).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let shed_with_retry = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|s| {
                s.code() == tonic::Code::ResourceExhausted
                    && tonic_types::StatusExt::get_details_retry_info(*s).is_some()
            })
            .count();
        let other: Vec<_> = results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .filter(|s| s.code() != tonic::Code::ResourceExhausted)
            .map(|s| format!("{:?}", s.code()))
            .collect();
        let peak = server.status_mib("VmHWM:");
        let reached = leegality_creates(&sim) - creates_before;
        println!(
            "bigdocs: {concurrency} at once: idle RSS {idle:.1} MiB, peak RSS {peak:.1} MiB (+{:.1}), OK {ok}, shed with RetryInfo {shed_with_retry}, other {other:?}, creates at the simulator {reached}",
            peak - idle
        );
    }
}

/// A `transfer_mb` upload and download through signNow, each on a fresh
/// gateway so that its VmHWM is that transfer's peak; the bytes are
/// checked by SHA-256 at both ends.
pub(crate) async fn transfer_scenario(transfer_mb: usize) {
    let sim = start_simulator(SimulatorConfig::default()).await;
    let file = esign_gateway::simulator::sample_pdf("bigdocs", transfer_mb * 1_000_000);
    let sent_digest = sha256_hex(&file);

    let (server, _) = start_signnow_gateway(&sim).await;
    let idle = server.status_mib("VmRSS:");
    let mut client = InvitationServiceClient::new(open_connections(server.addr, 1).await.remove(0));
    let mut messages = vec![pb::UploadDocumentRequest {
        part: Some(pb::upload_document_request::Part::Metadata(
            pb::UploadDocumentMetadata {
                provider: pb::Provider::Signnow as i32,
                file_name: "bigdocs.pdf".into(),
                size: file.len() as u64,
                sha256: sent_digest.clone(),
                ..Default::default()
            },
        )),
    }];
    // Cut without copies: each chunk is a slice of the one file buffer.
    let mut offset = 0;
    while offset < file.len() {
        let end = (offset + 64 * 1024).min(file.len());
        messages.push(pb::UploadDocumentRequest {
            part: Some(pb::upload_document_request::Part::Chunk(
                file.slice(offset..end),
            )),
        });
        offset = end;
    }
    let started = std::time::Instant::now();
    let uploaded = client
        .upload_document(tokio_stream::iter(messages))
        .await
        .expect("upload")
        .into_inner();
    let elapsed = started.elapsed();
    let peak = server.status_mib("VmHWM:");
    let stored = sim.signnow().documents[&uploaded.document_id].file.clone();
    println!(
        "bigdocs: upload {transfer_mb} MB: idle RSS {idle:.1} MiB, peak RSS {peak:.1} MiB (+{:.1}), {:.0} MB/s, SHA-256 gateway {} simulator {}",
        peak - idle,
        transfer_mb as f64 / elapsed.as_secs_f64(),
        verdict(&uploaded.sha256, &sent_digest),
        verdict(&sha256_hex(&stored), &sent_digest),
    );
    drop(server);

    let (server, _) = start_signnow_gateway(&sim).await;
    let idle = server.status_mib("VmRSS:");
    let mut client = InvitationServiceClient::new(open_connections(server.addr, 1).await.remove(0));
    let started = std::time::Instant::now();
    let mut stream = client
        .download_document(pb::DownloadDocumentRequest {
            provider: pb::Provider::Signnow as i32,
            document_id: uploaded.document_id,
            ..Default::default()
        })
        .await
        .expect("download")
        .into_inner();
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    let (mut received, mut largest_chunk) = (0usize, 0usize);
    while let Some(message) = stream.message().await.expect("download chunk") {
        if let Some(pb::download_document_response::Part::Chunk(chunk)) = message.part {
            digest.update(&chunk);
            received += chunk.len();
            largest_chunk = largest_chunk.max(chunk.len());
        }
    }
    let elapsed = started.elapsed();
    let peak = server.status_mib("VmHWM:");
    let got: String = digest
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!(
        "bigdocs: download {transfer_mb} MB: idle RSS {idle:.1} MiB, peak RSS {peak:.1} MiB (+{:.1}), {:.0} MB/s, {received} bytes, largest chunk {largest_chunk} B, SHA-256 {}",
        peak - idle,
        transfer_mb as f64 / elapsed.as_secs_f64(),
        verdict(&got, &sent_digest),
    );
}

async fn start_signnow_gateway(sim: &Simulator) -> (Server, Duration) {
    let credentials = &sim.config().credentials;
    spawn_gateway(&[
        (
            "SIGNNOW_BASE_URL",
            sim.base_url(esign_gateway::ProviderKind::SignNow),
        ),
        (
            "SIGNNOW_BASIC_TOKEN",
            credentials.signnow_basic_token.clone(),
        ),
        ("SIGNNOW_USERNAME", credentials.signnow_username.clone()),
        ("SIGNNOW_PASSWORD", credentials.signnow_password.clone()),
    ])
    .await
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn verdict(got: &str, expected: &str) -> &'static str {
    if got == expected {
        "matches"
    } else {
        "DIFFERS"
    }
}

fn leegality_creates(sim: &Simulator) -> usize {
    sim.requests_for(esign_gateway::ProviderKind::Leegality)
        .iter()
        .filter(|r| r.method == http::Method::POST && r.path == "/v3.0/sign/request")
        .count()
}
