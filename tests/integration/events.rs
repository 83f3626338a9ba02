//! Events end to end: the simulator's signed webhooks into the intake
//! listener, out of `WatchEvents`; refusals, redeliveries, two replicas on
//! one Redis, a watcher resuming after a restart, and the Bynn poller.

use std::time::Duration;

use esign_gateway::{
    ProviderKind,
    config::RedisConfig,
    pb::{self, event_service_client::EventServiceClient},
    simulator::{Simulator, webhooks},
};
use tonic::{Code, Streaming};

use crate::{common, redis::RedisServer};

fn intake_url(server: &esign_gateway::server::RunningServer, provider: &str) -> String {
    format!(
        "http://{}/webhooks/{provider}/default",
        server.webhook_addr().expect("intake listening")
    )
}

/// Points every simulated provider's webhooks at `server`.
fn wire(sim: &Simulator, server: &esign_gateway::server::RunningServer) {
    for (kind, name) in [
        (ProviderKind::Leegality, "leegality"),
        (ProviderKind::SignNow, "signnow"),
        (ProviderKind::Bynn, "bynn"),
    ] {
        sim.set_webhook_target(kind, intake_url(server, name));
    }
}

async fn watch(channel: tonic::transport::Channel, after_cursor: &str) -> Streaming<pb::Event> {
    EventServiceClient::new(channel)
        .watch_events(pb::WatchEventsRequest {
            after_cursor: after_cursor.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

async fn next(stream: &mut Streaming<pb::Event>) -> pb::Event {
    tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("an event within 5 s")
        .unwrap()
        .expect("the stream stays open")
}

async fn list(channel: tonic::transport::Channel) -> Vec<pb::Event> {
    EventServiceClient::new(channel)
        .list_events(pb::ListEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

async fn post(url: &str, outgoing: &webhooks::Outgoing) -> reqwest::StatusCode {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(outgoing.body.clone());
    for (name, value) in &outgoing.headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status()
}

async fn signnow_field_invites(gateway: &mut common::TestGateway) -> (String, Vec<pb::Invitation>) {
    let owner = gateway.sim.config().credentials.signnow_username.clone();
    let document =
        gateway
            .sim
            .signnow()
            .seed_document(&owner, "Lease.pdf", &["Tenant", "Landlord"]);
    let invitations = gateway
        .client
        .send_invitation(pb::SendInvitationRequest {
            provider: pb::Provider::Signnow as i32,
            document_id: document.id.clone(),
            signers: vec![
                pb::Signer {
                    email: "tenant@example.com".into(),
                    role: "Tenant".into(),
                    ..Default::default()
                },
                pb::Signer {
                    email: "landlord@example.com".into(),
                    role: "Landlord".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    (document.id, invitations)
}

#[tokio::test]
async fn a_signed_signnow_webhook_becomes_an_event_on_the_stream() {
    let mut gateway = common::start().await;
    wire(&gateway.sim, gateway.server.as_ref().unwrap());
    let (document_id, invites) = signnow_field_invites(&mut gateway).await;
    let mut stream = watch(gateway.channel.clone(), "").await;

    assert!(gateway.sim.sign_signnow_invite(&invites[0].id));
    let event = next(&mut stream).await;
    assert_eq!(event.provider, pb::Provider::Signnow as i32);
    assert_eq!(event.account, "default");
    assert_eq!(event.r#type, pb::EventType::InvitationStateChanged as i32);
    assert_eq!(event.document_id, document_id);
    assert_eq!(event.invitation_id, invites[0].id);
    assert_eq!(event.provider_event, "document.fieldinvite.signed");
    let invitation = event.invitation.unwrap();
    assert_eq!(invitation.state, pb::InvitationState::Signed as i32);
    assert!(event.occurred_at.is_some() && event.received_at.is_some());
    assert!(!event.cursor.is_empty());

    // The last signature completes the document: two events, in order.
    assert!(gateway.sim.sign_signnow_invite(&invites[1].id));
    let signed = next(&mut stream).await;
    let completed = next(&mut stream).await;
    assert_eq!(signed.invitation_id, invites[1].id);
    assert_eq!(completed.r#type, pb::EventType::DocumentStateChanged as i32);
    assert_eq!(
        completed.document_state,
        pb::DocumentState::Completed as i32
    );
    assert!(signed.cursor < completed.cursor || signed.cursor.len() < completed.cursor.len());
}

#[tokio::test]
async fn forged_signatures_are_refused_and_redeliveries_make_no_second_event() {
    let gateway = common::start().await;
    let server = gateway.server.as_ref().unwrap();
    let url = intake_url(server, "signnow");
    let secret = gateway
        .sim
        .config()
        .credentials
        .signnow_webhook_secret
        .clone();
    let content = serde_json::json!({
        "document_id": "doc1", "invite_id": "fi1", "signer": "a@example.com", "status": "fulfilled",
    });
    let now = gateway.sim.clock().now();
    let genuine = webhooks::signnow(&secret, "document.fieldinvite.signed", content.clone(), now);

    let mut forged = webhooks::signnow(
        "not-the-secret",
        "document.fieldinvite.signed",
        content,
        now,
    );
    assert_eq!(post(&url, &forged).await, reqwest::StatusCode::UNAUTHORIZED);
    forged.headers.clear();
    assert_eq!(
        post(&url, &forged).await,
        reqwest::StatusCode::UNAUTHORIZED,
        "missing"
    );
    let mut tampered = genuine.clone();
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("fulfilled", "declined")
        .into_bytes();
    assert_eq!(
        post(&url, &tampered).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    assert!(
        list(gateway.channel.clone()).await.is_empty(),
        "nothing recorded"
    );

    assert_eq!(post(&url, &genuine).await, reqwest::StatusCode::OK);
    assert_eq!(
        post(&url, &genuine).await,
        reqwest::StatusCode::OK,
        "a redelivery"
    );
    let events = list(gateway.channel.clone()).await;
    assert_eq!(events.len(), 1, "one event for one notification");

    let unknown = url.replace("/default", "/tenant-z");
    assert_eq!(
        post(&unknown, &genuine).await,
        reqwest::StatusCode::NOT_FOUND
    );
    let mut huge = genuine.clone();
    huge.body = vec![b' '; 2 * 1024 * 1024];
    assert_eq!(
        post(&url, &huge).await,
        reqwest::StatusCode::PAYLOAD_TOO_LARGE
    );
    // The access token a signNow payload may carry is never logged.
    let token =
        serde_json::from_slice::<serde_json::Value>(&genuine.body).unwrap()["meta"]["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    assert!(
        !std::fs::read_to_string(common::log_file())
            .unwrap_or_default()
            .contains(&token)
    );
}

#[tokio::test]
async fn leegality_webhooks_report_the_re_read_truth_not_the_body() {
    let gateway = common::start().await;
    let server = gateway.server.as_ref().unwrap();
    wire(&gateway.sim, server);
    let (document_id, uuids) = common::seed_leegality(
        &gateway.sim,
        Some("IRN-W"),
        &[("A", "a@example.com"), ("B", "b@example.com")],
    );
    let mut stream = watch(gateway.channel.clone(), "").await;
    assert!(gateway.sim.sign_leegality_invitee(&uuids[0]));
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next(&mut stream).await);
    }
    let signed = seen
        .iter()
        .find(|e| e.invitation_id == uuids[0])
        .expect("an event for the signer");
    assert_eq!(
        signed.invitation.as_ref().unwrap().state,
        pb::InvitationState::Signed as i32
    );
    assert_eq!(signed.document_id, document_id);
    assert_eq!(signed.provider_event, "Success");

    // A body that claims a rejection, with a valid mac (only the id is
    // signed): the gateway re-reads, sees nothing changed, records nothing.
    let salt = gateway
        .sim
        .config()
        .credentials
        .leegality_webhook_salt
        .clone();
    let lying = webhooks::leegality(
        &salt,
        &document_id,
        serde_json::json!({"action": "Rejected", "invitationUrl": uuids[1]}),
        "Sent",
    );
    let before = list(gateway.channel.clone()).await.len();
    assert_eq!(
        post(&intake_url(server, "leegality"), &lying).await,
        reqwest::StatusCode::OK
    );
    let after = list(gateway.channel.clone()).await;
    assert_eq!(after.len(), before, "no change at Leegality, no event");
    assert!(after.iter().all(|e| {
        e.invitation
            .as_ref()
            .is_none_or(|i| i.state != pb::InvitationState::Rejected as i32)
    }));

    // The second invitee's link expires: its event says EXPIRED.
    assert!(gateway.sim.expire_leegality_invitee(&uuids[1]));
    let expired = loop {
        let event = next(&mut stream).await;
        if event.invitation_id == uuids[1] {
            break event;
        }
    };
    assert_eq!(
        expired.invitation.unwrap().state,
        pb::InvitationState::Expired as i32
    );

    let bad_mac = webhooks::leegality("wrong-salt", &document_id, serde_json::json!({}), "Sent");
    assert_eq!(
        post(&intake_url(server, "leegality"), &bad_mac).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bynn_webhooks_are_checked_against_the_body_digest() {
    let gateway = common::start().await;
    let server = gateway.server.as_ref().unwrap();
    wire(&gateway.sim, server);
    let mut stream = watch(gateway.channel.clone(), "").await;
    gateway.sim.bynn_dossier_event("dossier.completed", "dos_1");
    let event = next(&mut stream).await;
    assert_eq!(event.provider, pb::Provider::Bynn as i32);
    assert_eq!(event.r#type, pb::EventType::DocumentStateChanged as i32);
    assert_eq!(event.document_id, "dos_1");
    assert_eq!(event.document_state, pb::DocumentState::Completed as i32);
    assert_eq!(event.provider_event, "dossier.completed");

    let now = gateway.sim.clock().now();
    let genuine = webhooks::bynn(
        "dossier.rejected",
        serde_json::json!({"token": "dos_2"}),
        now,
    );
    let mut tampered = genuine.clone();
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("rejected", "approved")
        .into_bytes();
    let url = intake_url(server, "bynn");
    assert_eq!(
        post(&url, &tampered).await,
        reqwest::StatusCode::UNAUTHORIZED
    );

    // A well-formed token over the right digest, signed by another key.
    let mut forged = genuine.clone();
    let digest: String = ring::digest::digest(&ring::digest::SHA256, &forged.body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let claims = serde_json::json!({
        "iss": "bynn.com", "sub": "evt_forged", "jti": "forged",
        "iat": now.timestamp(), "exp": now.timestamp() + 3600, "v": "2", "sha256": digest,
    });
    let other_key =
        jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("fixtures/other_rsa_key.pem"))
            .unwrap();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &other_key,
    )
    .unwrap();
    for (name, value) in &mut forged.headers {
        if name == "X-Bynn-Signature" {
            *value = token.clone();
        }
    }
    assert_eq!(post(&url, &forged).await, reqwest::StatusCode::UNAUTHORIZED);
    let mut unsigned = genuine.clone();
    unsigned
        .headers
        .retain(|(name, _)| name != "X-Bynn-Signature");
    assert_eq!(
        post(&url, &unsigned).await,
        reqwest::StatusCode::UNAUTHORIZED
    );

    assert_eq!(post(&url, &genuine).await, reqwest::StatusCode::OK);
    assert_eq!(post(&url, &genuine).await, reqwest::StatusCode::OK);
    let events = list(gateway.channel.clone()).await;
    assert_eq!(
        events.len(),
        2,
        "the redelivery (same Idempotency-Key) is no new event"
    );
}

#[tokio::test]
async fn two_replicas_on_redis_share_one_log() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let mut a = common::start_with(|c| c.redis = Some(RedisConfig::single(url.clone()))).await;
    let (b_server, _, b_channel, _) =
        common::gateway_for(&a.sim, |c| c.redis = Some(RedisConfig::single(url.clone()))).await;
    wire(&a.sim, a.server.as_ref().unwrap());
    let (_, invites) = signnow_field_invites(&mut a).await;
    let mut on_b = watch(b_channel.clone(), "").await;

    // Received by A, seen by a watcher on B.
    assert!(a.sim.sign_signnow_invite(&invites[0].id));
    let event = next(&mut on_b).await;
    assert_eq!(event.invitation_id, invites[0].id);

    // One notification delivered to both replicas is one event.
    let secret = a.sim.config().credentials.signnow_webhook_secret.clone();
    let notification = webhooks::signnow(
        &secret,
        "document.fieldinvite.decline",
        serde_json::json!({"document_id": "doc9", "invite_id": "fi9", "status": "pending"}),
        a.sim.clock().now(),
    );
    assert_eq!(
        post(
            &intake_url(a.server.as_ref().unwrap(), "signnow"),
            &notification
        )
        .await,
        reqwest::StatusCode::OK
    );
    assert_eq!(
        post(&intake_url(&b_server, "signnow"), &notification).await,
        reqwest::StatusCode::OK
    );
    let declined: Vec<_> = list(a.channel.clone())
        .await
        .into_iter()
        .filter(|e| e.invitation_id == "fi9")
        .collect();
    assert_eq!(declined.len(), 1);
}

#[tokio::test]
async fn a_watcher_resumes_after_a_restart_with_its_cursor() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let mut first = common::start_with(|c| c.redis = Some(RedisConfig::single(url.clone()))).await;
    wire(&first.sim, first.server.as_ref().unwrap());
    let (_, invites) = signnow_field_invites(&mut first).await;
    let mut stream = watch(first.channel.clone(), "").await;
    assert!(first.sim.sign_signnow_invite(&invites[0].id));
    let handled = next(&mut stream).await;
    drop(stream);
    let sim = std::mem::replace(&mut first.sim, Simulator::start_local().await.unwrap());
    first.stop().await;

    // Another gateway process on the same Redis; two more events happen.
    let (server, _, channel, _) =
        common::gateway_for(&sim, |c| c.redis = Some(RedisConfig::single(url.clone()))).await;
    wire(&sim, &server);
    assert!(sim.sign_signnow_invite(&invites[1].id));
    let mut resumed = watch(channel.clone(), &handled.cursor).await;
    let signed = next(&mut resumed).await;
    let completed = next(&mut resumed).await;
    assert_eq!(
        signed.invitation_id, invites[1].id,
        "nothing older than the cursor"
    );
    assert_eq!(completed.r#type, pb::EventType::DocumentStateChanged as i32);
    // Exactly once: nothing else follows.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), resumed.message())
            .await
            .is_err()
    );

    // A cursor from before the retained log is refused as expired.
    let status = EventServiceClient::new(channel)
        .list_events(pb::ListEventsRequest {
            after_cursor: "not-a-cursor".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_bynn_poller_reports_changes_within_its_budget() {
    let mut gateway = common::start_with(|c| c.bynn_poll_interval = Duration::from_secs(1)).await;
    let mut stream = watch(gateway.channel.clone(), "").await;
    let mut tokens = Vec::new();
    for i in 0..15 {
        let sent = gateway
            .client
            .send_invitation(pb::SendInvitationRequest {
                provider: pb::Provider::Bynn as i32,
                signers: vec![pb::Signer {
                    email: format!("customer{i}@example.com"),
                    ..Default::default()
                }],
                provider_options: Some(pb::send_invitation_request::ProviderOptions::Bynn(
                    pb::BynnOptions {
                        workflow_token: "wf_demo_onboarding".into(),
                        channel: pb::BynnChannel::Email as i32,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        tokens.push(sent.invitations[0].id.clone());
    }
    // Bynn hands the first invitation to its channel: `pending` -> `sent`.
    gateway.sim.clock().advance(Duration::from_secs(2));
    let event = next(&mut stream).await;
    assert_eq!(event.provider_event, "poll");
    assert!(tokens.contains(&event.invitation_id));
    assert_eq!(
        event.invitation.unwrap().state,
        pb::InvitationState::Pending as i32,
        "sent, awaiting the signer"
    );
    // Its share of Bynn's budget: at most 10 reads a minute, whatever the
    // number of invitations and however often it wakes up.
    let reads = || {
        gateway
            .sim
            .requests_for(ProviderKind::Bynn)
            .iter()
            .filter(|r| r.method == "GET")
            .count()
    };
    common::wait_until("the poller's budget to be used", || async { reads() >= 10 }).await;
    // Two more poll periods: nothing more goes out this minute.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reads(), 10, "poller reads in the minute");
}

#[tokio::test]
async fn signnow_subscriptions_are_kept_in_place_without_duplicates() {
    let callback = "https://gateway.example/webhooks/signnow/default";
    let set_callback = |c: &mut esign_gateway::config::Config| {
        for account in &mut c.accounts {
            if account.provider == ProviderKind::SignNow {
                account.webhook_callback_url = Some(callback.into());
            }
        }
    };
    let gateway = common::start_with(set_callback).await;
    let subscriptions = || gateway.sim.signnow().subscriptions.clone();
    common::wait_until("the subscriptions", || async {
        subscriptions().len() == 11
    })
    .await;
    for subscription in subscriptions() {
        assert!(
            subscription["event"]
                .as_str()
                .unwrap()
                .starts_with("user.document.")
        );
        let attributes = &subscription["json_attributes"];
        assert_eq!(attributes["callback_url"], callback);
        assert_eq!(
            attributes["delete_access_token"], true,
            "no token in payloads"
        );
        assert_eq!(
            attributes["secret_key"],
            gateway
                .sim
                .config()
                .credentials
                .signnow_webhook_secret
                .as_str(),
            "deliveries are signed"
        );
    }
    // Another replica (or a restart) finds them in place and adds none.
    let (_again, _, _, _) = common::gateway_for(&gateway.sim, set_callback).await;
    common::wait_until("the second replica's check", || async {
        gateway
            .sim
            .requests_for(ProviderKind::SignNow)
            .iter()
            .filter(|r| r.path == "/api/v2/events" && r.method == "GET")
            .count()
            >= 2
    })
    .await;
    assert_eq!(subscriptions().len(), 11);
}
