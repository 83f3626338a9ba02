//! Safe under retries and faults: request-id deduplication (in process and
//! across two replicas sharing Redis), deadlines, the circuit breaker and
//! load shedding, through the real server.

use crate::common;

use std::time::Duration;

use esign_gateway::{
    ProviderKind,
    config::RedisConfig,
    pb,
    simulator::{Fault, FaultKind},
};
use tonic::{Code, Request};

const LEEGALITY: i32 = pb::Provider::Leegality as i32;

fn seed_invitee(gateway: &common::TestGateway) -> String {
    common::seed_leegality_invitee(&gateway.sim)
}

fn resend(uuid: &str, request_id: &str) -> pb::ResendInvitationRequest {
    pb::ResendInvitationRequest {
        provider: LEEGALITY,
        invitation_id: uuid.to_owned(),
        request_id: request_id.to_owned(),
        ..Default::default()
    }
}

fn resends(sim: &esign_gateway::simulator::Simulator) -> usize {
    sim.requests_for(ProviderKind::Leegality)
        .iter()
        .filter(|r| r.path.ends_with("/resend"))
        .count()
}

fn with_timeout<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

#[tokio::test]
async fn a_repeated_request_id_replays_the_first_outcome() {
    let mut gateway = common::start().await;
    let uuid = seed_invitee(&gateway);
    let id = uuid::Uuid::new_v4().to_string();
    let first = gateway
        .client
        .resend_invitation(resend(&uuid, &id))
        .await
        .unwrap()
        .into_inner();
    let second = gateway
        .client
        .resend_invitation(resend(&uuid, &id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(resends(&gateway.sim), 1, "one notification sent");

    let status = gateway
        .client
        .resend_invitation(resend(&seed_invitee(&gateway), &id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(common::error_info(&status).reason, "REQUEST_ID_REUSED");
    assert_eq!(resends(&gateway.sim), 1);

    // A final error is replayed too, details and all.
    let now = gateway.sim.clock().now();
    let signed = gateway
        .sim
        .leegality()
        .seed_document(None, &[("B", "b@example.com")], now);
    gateway
        .sim
        .leegality()
        .documents
        .get_mut(&signed.id)
        .unwrap()
        .invitees[0]
        .signed = true;
    let id = uuid::Uuid::new_v4().to_string();
    let first = gateway
        .client
        .resend_invitation(resend(&signed.invitees[0].uuid, &id))
        .await
        .unwrap_err();
    let again = gateway
        .client
        .resend_invitation(resend(&signed.invitees[0].uuid, &id))
        .await
        .unwrap_err();
    assert_eq!(first.code(), Code::FailedPrecondition);
    assert_eq!(again.code(), first.code());
    assert_eq!(again.message(), first.message());
    let (a, b) = (common::error_info(&again), common::error_info(&first));
    assert_eq!(
        (a.reason, a.domain, a.metadata),
        (b.reason, b.domain, b.metadata)
    );
    assert_eq!(resends(&gateway.sim), 2);
}

#[tokio::test]
async fn a_retry_after_the_caller_timed_out_never_sends_twice() {
    let mut gateway = common::start().await;
    let uuid = seed_invitee(&gateway);
    gateway.sim.inject(
        Fault::new(
            ProviderKind::Leegality,
            "/resend",
            FaultKind::Delay(Duration::from_millis(600)),
        )
        .times(1),
    );
    let id = uuid::Uuid::new_v4().to_string();
    let status = gateway
        .client
        .resend_invitation(with_timeout(resend(&uuid, &id), Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "not tonic's CANCELLED"
    );
    let info = common::error_info(&status);
    assert_eq!(info.reason, "DEADLINE_EXCEEDED");
    assert_eq!(info.metadata["outcome"], "unknown");

    // The client retries at once, and keeps retrying as told.
    let mut answers = Vec::new();
    for _ in 0..50 {
        let status = gateway
            .client
            .resend_invitation(resend(&uuid, &id))
            .await
            .unwrap_err();
        let reason = common::error_info(&status).reason;
        answers.push(reason.clone());
        if reason != "REQUEST_IN_PROGRESS" {
            assert_eq!(status.code(), Code::DeadlineExceeded);
            assert_eq!(common::error_info(&status).metadata["outcome"], "unknown");
            break;
        }
        assert_eq!(status.code(), Code::Aborted);
        assert!(common::retry_delay(&status).is_some());
        // Poll again once the simulator has logged something new.
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(
        answers.last().map(String::as_str),
        Some("REQUEST_IN_PROGRESS")
    );
    // The first call's outcome is final, so nothing more is sent.
    assert_eq!(
        resends(&gateway.sim),
        1,
        "exactly one resend reached Leegality"
    );
}

#[tokio::test]
async fn a_deadline_too_short_to_be_useful_fails_before_any_call() {
    let mut gateway = common::start().await;
    let uuid = seed_invitee(&gateway);
    let status = gateway
        .client
        .resend_invitation(with_timeout(
            resend(&uuid, &uuid::Uuid::new_v4().to_string()),
            Duration::from_millis(40),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(common::error_info(&status).metadata["outcome"], "not_sent");
    assert!(gateway.sim.requests().is_empty());
}

#[tokio::test]
async fn the_breaker_opens_when_the_provider_dies_mid_burst_and_closes_after() {
    let gateway = common::start_with(|config| {
        config.breaker.failures = 3;
        config.breaker.cooldown = Duration::from_secs(10);
    })
    .await;
    let document_id = {
        let now = gateway.sim.clock().now();
        gateway
            .sim
            .leegality()
            .seed_document(None, &[("A", "a@example.com")], now)
            .id
    };
    let get = || pb::GetDocumentRequest {
        provider: LEEGALITY,
        account: String::new(),
        document_id: document_id.clone(),
    };
    let mut client = gateway.client.clone();
    client.get_document(get()).await.unwrap();

    // A burst of 60 calls, 25 ms apart; the provider dies after the 5th
    // starts (every connection reset). Failed reads are retried with
    // backoff, so the circuit opens some hundreds of milliseconds later.
    let mut burst = Vec::new();
    let mut killed_at = 0;
    let mut pace = tokio::time::interval(Duration::from_millis(25));
    for index in 0..60 {
        pace.tick().await;
        if index == 5 {
            gateway
                .sim
                .inject(Fault::new(ProviderKind::Leegality, "", FaultKind::Reset));
            killed_at = gateway.sim.requests().len();
        }
        let mut client = gateway.client.clone();
        let request = get();
        burst.push(tokio::spawn(
            async move { client.get_document(request).await },
        ));
    }
    let mut fast_failures = 0;
    for call in burst {
        if let Err(status) = call.await.unwrap() {
            assert_eq!(status.code(), Code::Unavailable);
            let info = common::error_info(&status);
            assert_eq!(info.reason, "PROVIDER_UNAVAILABLE");
            if info.metadata.get("breaker").map(String::as_str) == Some("open") {
                fast_failures += 1;
                let delay = common::retry_delay(&status).unwrap();
                assert!(delay <= Duration::from_secs(10) && delay >= Duration::from_secs(1));
            }
        }
    }
    let sent_after_kill = gateway.sim.requests().len() - killed_at;
    assert!(
        fast_failures >= 10,
        "only {fast_failures} calls met the open circuit"
    );
    assert!(
        // At most three attempts per admitted call, plus the five calls that
        // started before the kill.
        sent_after_kill <= (55 - fast_failures) * 3 + 5,
        "the open circuit kept calls off the provider ({sent_after_kill} requests)"
    );
    let before = gateway.sim.requests().len();
    let status = client.get_document(get()).await.unwrap_err();
    assert_eq!(common::error_info(&status).metadata["breaker"], "open");
    assert_eq!(
        gateway.sim.requests().len(),
        before,
        "failed fast, nothing sent"
    );
    // The deprecated text field is still filled for older clients.
    #[allow(deprecated)]
    let state = |accounts: pb::ListProvidersResponse| {
        accounts
            .accounts
            .into_iter()
            .find(|a| a.provider == LEEGALITY)
            .map(|a| (a.breaker_state, a.breaker))
            .unwrap()
    };
    let listed = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        state(listed),
        ("open".to_owned(), pb::BreakerState::Open as i32)
    );

    // The provider comes back; after the cool-down one probe closes it.
    gateway.sim.clear_faults();
    gateway.sim.clock().advance(Duration::from_secs(11));
    client.get_document(get()).await.unwrap();
    let listed = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        state(listed),
        ("closed".to_owned(), pb::BreakerState::Closed as i32)
    );
    client.get_document(get()).await.unwrap();
}

#[tokio::test]
async fn excess_calls_are_shed_quickly_with_retry_info() {
    let gateway = common::start_with(|config| config.max_in_flight = 2).await;
    let uuid = seed_invitee(&gateway);
    gateway.sim.set_latency(Duration::from_millis(300));
    let calls = (0..6).map(|_| {
        let mut client = gateway.client.clone();
        let request = pb::GetDocumentRequest {
            provider: LEEGALITY,
            account: String::new(),
            document_id: "DOC".into(),
        };
        let _ = &uuid;
        async move { client.get_document(request).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let shed: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|s| s.code() == Code::ResourceExhausted)
        .collect();
    assert_eq!(shed.len(), 4, "two in flight, four shed");
    for status in shed {
        assert_eq!(common::error_info(status).reason, "GATEWAY_OVERLOADED");
        assert!(common::retry_delay(status).is_some());
    }
    assert_eq!(
        gateway.sim.requests_for(ProviderKind::Leegality).len(),
        2,
        "shed calls never reach the provider"
    );
}

fn large_create(request_id: &str, bytes: usize) -> pb::SendInvitationRequest {
    let mut file = b"%PDF-1.7\n".to_vec();
    file.resize(bytes, b' ');
    pb::SendInvitationRequest {
        provider: LEEGALITY,
        request_id: request_id.to_owned(),
        signers: vec![pb::Signer {
            name: "Asha Rao".into(),
            email: "asha@example.com".into(),
            ..Default::default()
        }],
        provider_options: Some(pb::send_invitation_request::ProviderOptions::Leegality(
            pb::LeegalityOptions {
                profile_id: "wfDemo01".into(),
                file_name: "large.pdf".into(),
                file: file.into(),
            },
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn large_creates_beyond_the_payload_budget_are_shed_and_never_sent() {
    // 4 MB files weigh about 12.6 MB each: three fit in 40 MiB, four do not.
    let gateway = common::start_with(|config| config.max_inflight_bytes = 40 * 1024 * 1024).await;
    gateway.sim.set_latency(Duration::from_millis(300));
    let calls = (0..4).map(|_| {
        let mut client = gateway.client.clone();
        let request = large_create(&uuid::Uuid::new_v4().to_string(), 4 * 1024 * 1024);
        async move { client.send_invitation(request).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut answered_ok = 0;
    let mut shed = 0;
    for result in &results {
        match result {
            Ok(_) => answered_ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                let info = common::error_info(status);
                assert_eq!(info.reason, "GATEWAY_OVERLOADED");
                assert_eq!(info.metadata["component"], "payload-budget");
                assert_eq!(info.metadata["outcome"], "not_sent");
                assert!(common::retry_delay(status).is_some());
                shed += 1;
            }
        }
    }
    assert!(answered_ok >= 1, "the first message in always fits");
    assert!(shed >= 1, "four at once cannot all fit");
    let creates = |sim: &esign_gateway::simulator::Simulator| {
        sim.requests_for(ProviderKind::Leegality)
            .iter()
            .filter(|r| r.method == http::Method::POST && r.path == "/v3.0/sign/request")
            .count()
    };
    assert_eq!(
        creates(&gateway.sim),
        answered_ok,
        "a shed create never reaches the provider"
    );

    // Once the calls are done their bytes are free again: a shed caller
    // that retries gets through.
    gateway.sim.set_latency(Duration::ZERO);
    let mut client = gateway.client.clone();
    client
        .send_invitation(large_create(
            &uuid::Uuid::new_v4().to_string(),
            4 * 1024 * 1024,
        ))
        .await
        .unwrap();
    assert_eq!(creates(&gateway.sim), answered_ok + 1);
}

#[tokio::test]
async fn two_replicas_sharing_redis_send_a_retried_resend_once() {
    let redis = crate::redis::RedisServer::start().await;
    let url = redis.url();
    let mut a =
        common::start_with(|config| config.redis = Some(RedisConfig::single(url.clone()))).await;
    let (_server_b, mut b, _, _) = common::gateway_for(&a.sim, |config| {
        config.redis = Some(RedisConfig::single(url.clone()))
    })
    .await;
    let uuid = seed_invitee(&a);

    // Replica A answers; the client's retry lands on replica B.
    let id = uuid::Uuid::new_v4().to_string();
    let first = a
        .client
        .resend_invitation(resend(&uuid, &id))
        .await
        .unwrap();
    let second = b.resend_invitation(resend(&uuid, &id)).await.unwrap();
    assert_eq!(first.into_inner(), second.into_inner());
    assert_eq!(resends(&a.sim), 1);

    // Both replicas at once: one sends, the other says it is in progress.
    a.sim.set_latency(Duration::from_millis(200));
    let id = uuid::Uuid::new_v4().to_string();
    let mut client_a = a.client.clone();
    let before = resends(&a.sim);
    let sim = &a.sim;
    let (from_a, from_b) = tokio::join!(client_a.resend_invitation(resend(&uuid, &id)), async {
        // B is asked once A's call has reached the (slow) provider.
        common::wait_until("A's resend at the simulator", || async {
            resends(sim) > before
        })
        .await;
        b.resend_invitation(resend(&uuid, &id)).await
    });
    assert!(from_a.is_ok());
    let status = from_b.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(common::error_info(&status).reason, "REQUEST_IN_PROGRESS");
    assert_eq!(resends(&a.sim), 2);
}

#[tokio::test]
async fn with_redis_down_a_deduplicated_call_fails_rather_than_risk_a_second_send() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut gateway = common::start_with(|config| {
        config.redis = Some(RedisConfig::single(format!("redis://127.0.0.1:{port}/0")));
    })
    .await;
    let uuid = seed_invitee(&gateway);
    let status = gateway
        .client
        .resend_invitation(resend(&uuid, &uuid::Uuid::new_v4().to_string()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let info = common::error_info(&status);
    assert_eq!(
        info.reason, "STATE_STORE_UNAVAILABLE",
        "not blamed on the provider"
    );
    assert_eq!(info.metadata["component"], "state-store");
    assert_eq!(info.metadata["outcome"], "not_sent");
    assert!(common::retry_delay(&status).is_some());
    assert_eq!(resends(&gateway.sim), 0);
    // Without a request id nothing needs the store.
    gateway
        .client
        .resend_invitation(resend(&uuid, ""))
        .await
        .unwrap();
}
