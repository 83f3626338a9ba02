//! Scenario N of `esign-bench`: the naive bridge a team would write in an
//! afternoon instead of adopting the gateway. One tonic handler for
//! ResendInvitation, one reqwest call to Leegality, serde both ways; no
//! auth, idempotency, deadlines, breaker, metrics, audit or tracing. Built
//! from the same proto and crates as the gateway, so the comparison
//! measures what the gateway adds, not a different stack.
//!
//! A binary of its own so that it keeps the default allocator, as such a
//! bridge would, while the benchmark's load generator and simulator run on
//! mimalloc (see BENCHMARKS.md).
#![forbid(unsafe_code)]

use clap::Parser;

use esign_gateway::pb::{
    self,
    invitation_service_server::{InvitationService, InvitationServiceServer},
};
use tonic::{Request, Response, Status};

struct NaiveBridge {
    http: reqwest::Client,
    resend_url: String,
    token: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ResendBody<'a> {
    sign_urls: [&'a str; 1],
}

#[derive(serde::Deserialize)]
struct Envelope {
    status: i64,
    #[serde(default)]
    data: Option<ResendData>,
}

#[derive(serde::Deserialize)]
struct ResendData {
    #[serde(default)]
    invitations: Vec<ResendItem>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResendItem {
    #[serde(default)]
    sign_url: Option<String>,
}

#[tonic::async_trait]
impl InvitationService for NaiveBridge {
    async fn resend_invitation(
        &self,
        request: Request<pb::ResendInvitationRequest>,
    ) -> Result<Response<pb::ResendInvitationResponse>, Status> {
        let request = request.into_inner();
        // A struct of one string array cannot fail to serialise.
        let body = serde_json::to_vec(&ResendBody {
            sign_urls: [&request.invitation_id],
        })
        .expect("a string array serialises");
        let response = self
            .http
            .post(&self.resend_url)
            .header("x-auth-token", &self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let envelope: Envelope =
            serde_json::from_slice(&bytes).map_err(|e| Status::unknown(e.to_string()))?;
        if envelope.status != 1 {
            return Err(Status::failed_precondition("Leegality refused the resend"));
        }
        let item = envelope
            .data
            .and_then(|data| data.invitations.into_iter().next());
        Ok(Response::new(pb::ResendInvitationResponse {
            invitation: Some(pb::Invitation {
                id: request.invitation_id,
                sign_url: item.and_then(|i| i.sign_url).unwrap_or_default(),
                ..Default::default()
            }),
        }))
    }

    type DownloadDocumentStream = tokio_stream::Empty<Result<pb::DownloadDocumentResponse, Status>>;

    async fn download_document(
        &self,
        _: Request<pb::DownloadDocumentRequest>,
    ) -> Result<Response<Self::DownloadDocumentStream>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn upload_document(
        &self,
        _: Request<tonic::Streaming<pb::UploadDocumentRequest>>,
    ) -> Result<Response<pb::UploadDocumentResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn send_invitation(
        &self,
        _: Request<pb::SendInvitationRequest>,
    ) -> Result<Response<pb::SendInvitationResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn batch_resend_invitations(
        &self,
        _: Request<pb::BatchResendInvitationsRequest>,
    ) -> Result<Response<pb::BatchResendInvitationsResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn reactivate_document(
        &self,
        _: Request<pb::ReactivateDocumentRequest>,
    ) -> Result<Response<pb::ReactivateDocumentResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn delete_invitation(
        &self,
        _: Request<pb::DeleteInvitationRequest>,
    ) -> Result<Response<pb::DeleteInvitationResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn replace_signer(
        &self,
        _: Request<pb::ReplaceSignerRequest>,
    ) -> Result<Response<pb::ReplaceSignerResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn cancel_invitations(
        &self,
        _: Request<pb::CancelInvitationsRequest>,
    ) -> Result<Response<pb::CancelInvitationsResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn get_document(
        &self,
        _: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<pb::GetDocumentResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn get_invitation(
        &self,
        _: Request<pb::GetInvitationRequest>,
    ) -> Result<Response<pb::GetInvitationResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }

    async fn list_providers(
        &self,
        _: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        Err(Status::unimplemented("not in the naive bridge"))
    }
}

#[derive(Parser, Debug)]
#[command(about = "esign-bench scenario N: the naive bridge in front of Leegality")]
struct Args {
    #[arg(long)]
    port: u16,
    #[arg(long)]
    leegality_base_url: String,
    #[arg(long)]
    token: String,
}

/// Serves the naive bridge on `--port` until killed.
#[tokio::main]
async fn main() {
    let Args {
        port,
        leegality_base_url,
        token,
    } = Args::parse();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let bridge = NaiveBridge {
        http,
        resend_url: format!("{leegality_base_url}/v3.0/sign/request/resend"),
        token,
    };
    // Health only so the benchmark knows when it is up (the service by
    // name too, as the gateway answers it, so that tools that wait for a
    // gateway can run the bridge in its place: scripts/instructions.sh).
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<InvitationServiceServer<NaiveBridge>>()
        .await;
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(InvitationServiceServer::new(bridge))
        .serve(format!("127.0.0.1:{port}").parse().expect("addr"))
        .await
        .expect("naive bridge");
}
