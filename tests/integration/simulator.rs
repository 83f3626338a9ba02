//! The simulator's documented provider rules, one test each, over raw HTTP.

use std::time::Duration;

use esign_gateway::{ProviderKind, simulator::Simulator};
use serde_json::{Value, json};

struct Sim {
    sim: Simulator,
    http: reqwest::Client,
}

impl Sim {
    async fn start() -> Sim {
        Sim {
            sim: Simulator::start_local().await.unwrap(),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, provider: ProviderKind, path: &str) -> String {
        format!("{}{path}", self.sim.base_url(provider))
    }

    async fn leegality(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let token = self.sim.config().credentials.leegality_auth_token.clone();
        let mut request = self
            .http
            .request(method, self.url(ProviderKind::Leegality, path))
            .header("X-Auth-Token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "Leegality answers HTTP 200 even for errors"
        );
        response.json().await.unwrap()
    }

    async fn signnow_token(&self) -> String {
        let credentials = self.sim.config().credentials.clone();
        let response: Value = self
            .http
            .post(self.url(ProviderKind::SignNow, "/oauth2/token"))
            .header(
                "Authorization",
                format!("Basic {}", credentials.signnow_basic_token),
            )
            .form(&[
                ("grant_type", "password"),
                ("username", credentials.signnow_username.as_str()),
                ("password", credentials.signnow_password.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["access_token"].as_str().unwrap().to_owned()
    }

    async fn signnow(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.url(ProviderKind::SignNow, path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn bynn(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        let key = self.sim.config().credentials.bynn_api_key.clone();
        self.http
            .request(method, self.url(ProviderKind::Bynn, path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }
}

fn code(body: &Value) -> Value {
    body["messages"][0]["code"].clone()
}

fn signnow_error_code(body: &Value) -> u64 {
    body["errors"][0]["code"].as_u64().unwrap()
}

#[tokio::test]
async fn leegality_rejects_a_wrong_auth_token() {
    let s = Sim::start().await;
    let response = s
        .http
        .post(s.url(ProviderKind::Leegality, "/v3.0/sign/request/resend"))
        .header("X-Auth-Token", "wrong")
        .json(&json!({"signUrls": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn leegality_resend_validates_the_batch_with_status_zero() {
    let s = Sim::start().await;
    let missing = s
        .leegality(
            reqwest::Method::POST,
            "/v3.0/sign/request/resend",
            Some(json!({})),
        )
        .await;
    assert_eq!(missing["status"], 0);
    assert_eq!(
        code(&missing),
        Value::Null,
        "a missing field has a null code"
    );
    let empty = s
        .leegality(
            reqwest::Method::POST,
            "/v3.0/sign/request/resend",
            Some(json!({"signUrls": []})),
        )
        .await;
    assert_eq!(code(&empty), "validator.invalid");
    let sixteen: Vec<String> = (0..16).map(|i| format!("u{i}")).collect();
    let too_many = s
        .leegality(
            reqwest::Method::POST,
            "/v3.0/sign/request/resend",
            Some(json!({"signUrls": sixteen})),
        )
        .await;
    assert_eq!(code(&too_many), "validator.invalid");
    assert_eq!(too_many["data"], json!({}));
}

#[tokio::test]
async fn leegality_resend_caps_each_invitee_at_five() {
    let s = Sim::start().await;
    let now = s.sim.clock().now();
    let document = s
        .sim
        .leegality()
        .seed_document(None, &[("A", "a@example.com")], now);
    let uuid = document.invitees[0].uuid.clone();
    for _ in 0..5 {
        let answer = s
            .leegality(
                reqwest::Method::POST,
                "/v3.0/sign/request/resend",
                Some(json!({"signUrls": [uuid]})),
            )
            .await;
        assert_eq!(answer["data"]["invitations"][0]["status"], 1);
    }
    let answer = s
        .leegality(
            reqwest::Method::POST,
            "/v3.0/sign/request/resend",
            Some(json!({"signUrls": [uuid]})),
        )
        .await;
    assert_eq!(answer["status"], 1, "the request itself is well formed");
    let item = &answer["data"]["invitations"][0];
    assert_eq!(item["status"], 0);
    assert!(item["message"].as_str().unwrap().contains("5 times"));
    assert!(
        item["signUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://sandbox.leegality.com/sign/"),
        "full URL returned"
    );
}

#[tokio::test]
async fn leegality_resend_reports_signed_and_invalid_items() {
    let s = Sim::start().await;
    let now = s.sim.clock().now();
    let document = s
        .sim
        .leegality()
        .seed_document(None, &[("A", "a@example.com")], now);
    s.sim
        .leegality()
        .documents
        .get_mut(&document.id)
        .unwrap()
        .invitees[0]
        .signed = true;
    let uuid = document.invitees[0].uuid.clone();
    let answer = s
        .leegality(
            reqwest::Method::POST,
            "/v3.0/sign/request/resend",
            Some(json!({"signUrls": [uuid, "00000000-0000-4000-8000-000000000000"]})),
        )
        .await;
    let items = answer["data"]["invitations"].as_array().unwrap();
    assert_eq!(
        items[0]["message"],
        "Document(s) already signed by the invitee."
    );
    assert_eq!(items[1]["status"], 0);
    assert_eq!(items[1]["name"], Value::Null);
    assert_eq!(items[1]["email"], Value::Null);
}

#[tokio::test]
async fn leegality_reactivate_checks_ranges_and_expired_invitations() {
    let s = Sim::start().await;
    let now = s.sim.clock().now();
    let document = s
        .sim
        .leegality()
        .seed_document(Some("IRN-1"), &[("A", "a@example.com")], now);
    let path = "/v3.0/sign/request/reactivate";
    let id = document.id.clone();
    let cases = [
        (json!({"documentId": "NOPE"}), "no.document.found"),
        (
            json!({"documentId": id, "expiryDays": 366}),
            "invalid.expiry.days.value",
        ),
        (
            json!({"documentId": id, "expiryDays": -2}),
            "invalid.expiry.days.value",
        ),
        (
            json!({"documentId": id, "expiryTime": (now.timestamp_millis() - 1000)}),
            "invalid.expiry.time",
        ),
        (
            json!({"documentId": id, "expiryTime": (now + chrono::Duration::days(366)).timestamp_millis()}),
            "invalid.expiry.time.maxerror",
        ),
        (
            json!({"documentId": id, "expiryDays": 5}),
            "no.expired.invitation.found",
        ),
    ];
    for (body, expected) in cases {
        let answer = s
            .leegality(reqwest::Method::POST, path, Some(body.clone()))
            .await;
        assert_eq!(answer["status"], 0, "{body}");
        assert_eq!(code(&answer), expected, "{body}");
    }
    s.sim.leegality().documents.get_mut(&id).unwrap().invitees[0].expired = true;
    let answer = s
        .leegality(
            reqwest::Method::POST,
            path,
            Some(json!({"documentId": id, "expiryDays": 0})),
        )
        .await;
    assert_eq!(answer["status"], 1);
    assert_eq!(code(&answer), "signinvitation.activate.success");
    let request = &answer["data"]["requests"][0];
    assert_eq!(request["expired"], false);
    assert!(
        request["expiryDate"]
            .as_str()
            .unwrap()
            .ends_with("23:59:59")
    );
    assert_eq!(answer["data"]["irn"], "IRN-1");
}

#[tokio::test]
async fn leegality_delete_invitation_codes() {
    let s = Sim::start().await;
    let now = s.sim.clock().now();
    let document = s
        .sim
        .leegality()
        .seed_document(None, &[("A", "a@example.com")], now);
    let path = "/v3.0/sign/request/invitation";
    let missing = s.leegality(reqwest::Method::DELETE, path, None).await;
    assert_eq!(code(&missing), "sign.url.required");
    let url = format!("{path}?signUrl={}", document.invitees[0].uuid);
    let deleted = s.leegality(reqwest::Method::DELETE, &url, None).await;
    assert_eq!(code(&deleted), "invitation.deleted.success");
    let again = s.leegality(reqwest::Method::DELETE, &url, None).await;
    assert_eq!(code(&again), "invitation.not.exists");
}

#[tokio::test]
async fn signnow_token_endpoint_checks_basic_token_and_password() {
    let s = Sim::start().await;
    let url = s.url(ProviderKind::SignNow, "/oauth2/token");
    let no_basic: Value = s
        .http
        .post(&url)
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(no_basic, json!({"error": "invalid_client", "code": 1538}));
    let credentials = s.sim.config().credentials.clone();
    let response = s
        .http
        .post(&url)
        .header(
            "Authorization",
            format!("Basic {}", credentials.signnow_basic_token),
        )
        .form(&[
            ("grant_type", "password"),
            ("username", credentials.signnow_username.as_str()),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"error": "Invalid credentials.", "code": 826}));
}

#[tokio::test]
async fn signnow_tokens_expire_with_the_clock() {
    let s = Sim::start().await;
    let token = s.signnow_token().await;
    let document = s
        .sim
        .signnow()
        .seed_document("sender@example.com", "a.pdf", &["Signer 1"]);
    let (status, _) = s
        .signnow(
            &token,
            reqwest::Method::GET,
            &format!("/document/{}", document.id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    s.sim.clock().advance(Duration::from_secs(2_592_001));
    let (status, body) = s
        .signnow(
            &token,
            reqwest::Method::GET,
            &format!("/document/{}", document.id),
            None,
        )
        .await;
    assert_eq!(status, 400, "signNow answers a bad bearer with 400");
    assert_eq!(body, json!({"error": "invalid_token", "code": 1537}));
}

#[tokio::test]
async fn signnow_field_invites_follow_routing_and_refuse_duplicates() {
    let s = Sim::start().await;
    let token = s.signnow_token().await;
    let no_fields = s
        .sim
        .signnow()
        .seed_document("sender@example.com", "plain.pdf", &[]);
    let document =
        s.sim
            .signnow()
            .seed_document("sender@example.com", "nda.pdf", &["Signer 1", "Signer 2"]);
    let invite = json!({
        "from": "sender@example.com",
        "to": [
            {"email": "one@example.com", "role": "Signer 1", "order": 1},
            {"email": "two@example.com", "role": "Signer 2", "order": 2},
        ],
    });
    let (status, body) = s
        .signnow(
            &token,
            reqwest::Method::POST,
            &format!("/document/{}/invite", no_fields.id),
            Some(invite.clone()),
        )
        .await;
    assert_eq!((status, signnow_error_code(&body)), (400, 65594));
    let (status, body) = s
        .signnow(
            &token,
            reqwest::Method::POST,
            &format!("/document/{}/invite", document.id),
            Some(invite.clone()),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "success"})),
        "no invite ids come back"
    );
    let (_, body) = s
        .signnow(
            &token,
            reqwest::Method::POST,
            &format!("/document/{}/invite", document.id),
            Some(invite),
        )
        .await;
    assert_eq!(signnow_error_code(&body), 65629);

    let (_, read) = s
        .signnow(
            &token,
            reqwest::Method::GET,
            &format!("/document/{}", document.id),
            None,
        )
        .await;
    let invites = read["field_invites"].as_array().unwrap();
    let status_of =
        |email: &str| invites.iter().find(|i| i["email"] == email).unwrap()["status"].clone();
    assert_eq!(status_of("one@example.com"), "pending");
    assert_eq!(status_of("two@example.com"), "created");

    let id_of = |email: &str| {
        invites.iter().find(|i| i["email"] == email).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let sim = &s;
    let resend = |token: String, id: String| async move {
        let path = format!("/fieldinvite/{id}/resend");
        sim.signnow(&token, reqwest::Method::PUT, &path, None)
            .await
            .1
    };
    let body = resend(token.clone(), id_of("two@example.com")).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Could not resend: routing out of order."
    );
    let body = resend(token.clone(), "0000".into()).await;
    assert_eq!(body["errors"][0]["message"], "could not resend");
    s.sim.clock().advance(Duration::from_secs(31 * 86_400));
    let token = s.signnow_token().await;
    let body = resend(token, id_of("one@example.com")).await;
    assert_eq!(
        body["errors"][0]["message"],
        "Could not resend expired invite."
    );
}

#[tokio::test]
async fn signnow_replace_signer_steps_and_their_errors() {
    let s = Sim::start().await;
    let token = s.signnow_token().await;
    let document = s
        .sim
        .signnow()
        .seed_document("sender@example.com", "nda.pdf", &["Signer 1"]);
    let invite = json!({"from": "sender@example.com", "to": [{"email": "old@example.com", "role": "Signer 1", "order": 1}]});
    s.signnow(
        &token,
        reqwest::Method::POST,
        &format!("/document/{}/invite", document.id),
        Some(invite),
    )
    .await;
    let (_, read) = s
        .signnow(
            &token,
            reqwest::Method::GET,
            &format!("/document/{}", document.id),
            None,
        )
        .await;
    let invite_id = read["field_invites"][0]["id"].as_str().unwrap().to_owned();
    let role_id = read["field_invites"][0]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, body) = s
        .signnow(&token, reqwest::Method::DELETE, "/field_invite/nope", None)
        .await;
    assert_eq!(signnow_error_code(&body), 66502);
    let (status, _) = s
        .signnow(
            &token,
            reqwest::Method::DELETE,
            &format!("/field_invite/{invite_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = s
        .signnow(
            &token,
            reqwest::Method::POST,
            "/field_invite",
            Some(json!({"email": "bad", "role_id": role_id, "is_replace": true})),
        )
        .await;
    assert_eq!(signnow_error_code(&body), 65538);
    let (_, body) = s
        .signnow(
            &token,
            reqwest::Method::POST,
            "/field_invite",
            Some(json!({"email": "new@example.com", "role_id": "nope", "is_replace": true})),
        )
        .await;
    assert_eq!(
        body["errors"][0],
        json!({"code": 65582, "message": "Role does not exist."})
    );
    let step2 = json!({"email": "new@example.com", "role_id": role_id, "is_replace": true});
    let (status, body) = s
        .signnow(
            &token,
            reqwest::Method::POST,
            "/field_invite",
            Some(step2.clone()),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["id"].is_string());
    let (_, body) = s
        .signnow(&token, reqwest::Method::POST, "/field_invite", Some(step2))
        .await;
    assert_eq!(
        body["errors"][0],
        json!({"code": 65615, "message": "Invite already exists."})
    );
    let trigger = format!("/document/{}/trigger_fieldinvite", document.id);
    let (status, _) = s
        .signnow(&token, reqwest::Method::POST, &trigger, None)
        .await;
    assert_eq!(status, 200);
    let (_, body) = s
        .signnow(&token, reqwest::Method::POST, &trigger, None)
        .await;
    assert_eq!(
        body["errors"][0],
        json!({"code": 65615, "message": "Field invite missing on this document."})
    );
    let (_, read) = s
        .signnow(
            &token,
            reqwest::Method::GET,
            &format!("/document/{}", document.id),
            None,
        )
        .await;
    assert_eq!(read["field_invites"][0]["email"], "new@example.com");
    assert_eq!(read["field_invites"][0]["status"], "pending");
}

#[tokio::test]
async fn signnow_cancel_needs_a_reason_and_freeform_invite_returns_an_id() {
    let s = Sim::start().await;
    let token = s.signnow_token().await;
    let document = s
        .sim
        .signnow()
        .seed_document("sender@example.com", "plain.pdf", &[]);
    let (_, body) = s
        .signnow(
            &token,
            reqwest::Method::PUT,
            &format!("/document/{}/fieldinvitecancel", document.id),
            Some(json!({"reason": ""})),
        )
        .await;
    assert_eq!(
        body["errors"][0]["message"],
        "The reason value must not be empty string."
    );
    let (_, body) = s
        .signnow(
            &token,
            reqwest::Method::POST,
            &format!("/document/{}/invite", document.id),
            Some(json!({"from": "other@example.com", "to": "x@example.com"})),
        )
        .await;
    assert_eq!(body["errors"][0]["message"], "Email not found");
    let (status, body) = s
        .signnow(
            &token,
            reqwest::Method::POST,
            &format!("/document/{}/invite", document.id),
            Some(json!({"from": "sender@example.com", "to": "x@example.com"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], "success");
    assert_eq!(body["id"].as_str().unwrap().len(), 40);
}

#[tokio::test]
async fn bynn_pending_becomes_sent_when_the_channel_accepts() {
    let s = Sim::start().await;
    let now = s.sim.clock().now();
    let token = s.sim.bynn().seed(
        "a@example.com",
        "sent",
        1,
        Some(now - chrono::Duration::minutes(5)),
        now,
    );
    let response = s
        .bynn(
            reqwest::Method::POST,
            &format!("/autodoc/invitations/{token}/resend"),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["sentAt"], Value::Null);
    s.sim.clock().advance(Duration::from_secs(2));
    let body: Value = s
        .bynn(
            reqwest::Method::GET,
            &format!("/autodoc/invitations/{token}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "sent");
    assert_eq!(body["deliveryAttempts"], 2);
}

#[tokio::test]
async fn bynn_throttles_requests_per_ip_and_resends_per_organization() {
    let s = Sim::start().await;
    let now = s.sim.clock().now();
    let tokens: Vec<String> = (0..21)
        .map(|_| {
            s.sim.bynn().seed(
                "a@example.com",
                "sent",
                1,
                Some(now - chrono::Duration::minutes(5)),
                now,
            )
        })
        .collect();
    for token in &tokens[..20] {
        let response = s
            .bynn(
                reqwest::Method::POST,
                &format!("/autodoc/invitations/{token}/resend"),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let response = s
        .bynn(
            reqwest::Method::POST,
            &format!("/autodoc/invitations/{}/resend", tokens[20]),
        )
        .await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limited");

    s.sim.clock().advance(Duration::from_secs(61));
    for _ in 0..30 {
        assert_eq!(
            s.bynn(reqwest::Method::GET, "/autodoc/invitations/locales")
                .await
                .status(),
            200
        );
    }
    assert_eq!(
        s.bynn(reqwest::Method::GET, "/autodoc/invitations/locales")
            .await
            .status(),
        429,
        "31st request in a minute"
    );
}

#[tokio::test]
async fn bynn_checks_the_bearer_key() {
    let s = Sim::start().await;
    let response = s
        .http
        .get(s.url(ProviderKind::Bynn, "/autodoc/invitations/adi_x"))
        .bearer_auth("private_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "unauthorized");
}
