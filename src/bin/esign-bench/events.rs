//! Events: signed webhooks in, many WatchEvents streams out.

use std::{sync::Arc, time::Instant};

use esign_gateway::{ProviderKind, pb, simulator::SimulatorConfig};

use crate::{
    load::{open_connections, percentile},
    process::{free_port, spawn_gateway, start_simulator},
};

/// Webhook to watcher: the gateway (a child process, in-process log) with
/// `watchers` WatchEvents streams open; `events` signed signNow webhooks are
/// posted, `concurrency` at a time. Each event's latency runs from just
/// before its webhook is posted to its arrival at a watcher (every watcher
/// counts); the rate is events recorded per second until the last watcher
/// has the last one.
pub(crate) async fn events_scenario(watchers: usize, events: usize, concurrency: usize) {
    use futures_util::StreamExt as _;
    use pb::event_service_client::EventServiceClient;

    let sim = start_simulator(SimulatorConfig::default()).await;
    let webhook_port = free_port();
    let secret = sim.config().credentials.signnow_webhook_secret.clone();
    let (server, _) = spawn_gateway(&[
        ("GATEWAY_WEBHOOK_ADDR", format!("127.0.0.1:{webhook_port}")),
        ("SIGNNOW_BASE_URL", sim.base_url(ProviderKind::SignNow)),
        ("SIGNNOW_ACCESS_TOKEN", "unused-by-this-scenario".into()),
        ("SIGNNOW_WEBHOOK_SECRET", secret.clone()),
    ])
    .await;
    let addr = server.addr;

    let sent_at: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; events]));
    let connections = open_connections(addr, 4).await;
    let mut readers = Vec::new();
    for index in 0..watchers {
        let mut stream = EventServiceClient::new(connections[index % connections.len()].clone())
            .watch_events(pb::WatchEventsRequest::default())
            .await
            .expect("watch")
            .into_inner();
        let sent_at = sent_at.clone();
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events);
            while latencies.len() < events {
                let Some(Ok(event)) = stream.next().await else {
                    break;
                };
                let number: usize = event
                    .document_id
                    .trim_start_matches("bench-")
                    .parse()
                    .unwrap_or(0);
                if let Some(Some(at)) = sent_at.lock().unwrap().get(number).copied() {
                    latencies.push(at.elapsed());
                }
            }
            (latencies, Instant::now())
        }));
    }
    let url = format!("http://127.0.0.1:{webhook_port}/webhooks/signnow/default");
    let http = reqwest::Client::new();
    let started = Instant::now();
    futures_util::stream::iter(0..events)
        .for_each_concurrent(concurrency, |number| {
            let http = http.clone();
            let url = url.clone();
            let secret = secret.clone();
            let sent_at = sent_at.clone();
            async move {
                let outgoing = esign_gateway::simulator::webhooks::signnow(
                    &secret,
                    "document.fieldinvite.signed",
                    serde_json::json!({"document_id": format!("bench-{number}"), "invite_id": format!("fi-{number}"), "status": "fulfilled"}),
                    chrono::DateTime::from_timestamp(1_700_000_000 + number as i64, 0).unwrap_or_default(),
                );
                sent_at.lock().unwrap()[number] = Some(Instant::now());
                let mut request = http.post(&url).body(outgoing.body);
                for (name, value) in outgoing.headers {
                    request = request.header(name, value);
                }
                let _ = request.send().await;
            }
        })
        .await;
    let mut all = Vec::new();
    let mut last = started;
    for reader in readers {
        let (latencies, done) = reader.await.expect("reader");
        last = last.max(done);
        all.extend(latencies);
    }
    // Microseconds, as the load generator keeps them, so one percentile rule
    // serves every scenario.
    let mut micros: Vec<u32> = all
        .iter()
        .map(|latency| u32::try_from(latency.as_micros()).unwrap_or(u32::MAX))
        .collect();
    micros.sort_unstable();
    println!(
        "events: {watchers} watchers, {events} webhooks ({concurrency} at once): {} deliveries, \
         webhook-to-watcher p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} events/s recorded and fanned out",
        micros.len(),
        percentile(&micros, 0.5),
        percentile(&micros, 0.99),
        percentile(&micros, 1.0),
        events as f64 / (last - started).as_secs_f64(),
    );
    drop(server);
}
