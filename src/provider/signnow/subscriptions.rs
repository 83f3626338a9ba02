//! signNow event subscriptions (Webhooks 2.0), kept in place when a
//! callback URL is configured: listed first, so that keeping them is
//! idempotent, and created where missing with the secret key (so
//! deliveries are signed) and `delete_access_token` (so payloads carry no
//! token).

use super::*;

/// The events the gateway turns into its own, in their account-wide form.
const WANTED: &[&str] = &[
    "user.document.fieldinvite.create",
    "user.document.fieldinvite.sent",
    "user.document.fieldinvite.signed",
    "user.document.fieldinvite.decline",
    "user.document.fieldinvite.delete",
    "user.document.fieldinvite.reassign",
    "user.document.fieldinvite.replace",
    "user.document.freeform.create",
    "user.document.freeform.signed",
    "user.document.complete",
    "user.document.update",
];

#[derive(Deserialize)]
struct WireUser {
    id: String,
}

#[derive(Deserialize)]
struct WireSubscriptions {
    #[serde(default)]
    data: Vec<WireSubscription>,
}

#[derive(Deserialize)]
struct WireSubscription {
    #[serde(default)]
    event: String,
    #[serde(default)]
    json_attributes: Value,
}

impl SignNow {
    /// Creates the subscriptions `callback` lacks; how many it created.
    pub(crate) async fn keep_subscriptions(&self, callback: &str, secret: &str) -> Result<usize> {
        let ctx = CallContext::new(Rpc::GetDocument, None);
        let read = |operation: &'static str, path: &[&str], template: &'static str| {
            Ok(
                Outbound::new(operation, Method::GET, self.url(path), template)
                    .timeout(self.timeouts.read)
                    .retry(RetryPolicy::Safe),
            )
        };
        let response = self
            .send(&ctx, Replay::Safe, || read("get_user", &["user"], "/user"))
            .await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Op::ReadDocument));
        }
        let user: WireUser = response
            .json()
            .map_err(|_| transport::unrecognized(KIND, &response))?;
        let response = self
            .send(&ctx, Replay::Safe, || {
                read(
                    "list_subscriptions",
                    &["api", "v2", "events"],
                    "/api/v2/events",
                )
            })
            .await?;
        if !response.status.is_success() {
            return Err(map_error(&response, Op::ReadDocument));
        }
        let existing: WireSubscriptions = response
            .json()
            .map_err(|_| transport::unrecognized(KIND, &response))?;
        let mut created = 0;
        for event in WANTED {
            let present = existing.data.iter().any(|s| {
                s.event == *event && s.json_attributes["callback_url"].as_str() == Some(callback)
            });
            if present {
                continue;
            }
            let body = json!({
                "event": event,
                "entity_id": user.id,
                "action": "callback",
                "attributes": {
                    "callback": callback,
                    "use_tls_12": true,
                    "secret_key": secret,
                    "delete_access_token": true,
                },
            });
            let response = self
                .send(&ctx, Replay::Safe, || {
                    Outbound::new(
                        "subscribe",
                        Method::POST,
                        self.url(&["api", "v2", "events"]),
                        "/api/v2/events",
                    )
                    .json_body(&body)
                    // A repeat would duplicate the subscription: only a
                    // refused connection is retried.
                    .map(|o| {
                        o.timeout(self.timeouts.write)
                            .retry(RetryPolicy::OnlyBeforeSent)
                    })
                })
                .await?;
            if !response.status.is_success() {
                return Err(map_error(&response, Op::Invite));
            }
            created += 1;
        }
        Ok(created)
    }
}
