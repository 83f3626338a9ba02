//! Unit and property tests of the parsers and the error table.

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    fn response(status: u16, body: Vec<u8>) -> ProviderResponse {
        ProviderResponse::fake(status, body)
    }

    proptest! {
        #[test]
        fn sign_urls_only_ever_yield_a_uuid_for_the_configured_host(value in any::<String>()) {
            if let Ok(uuid) = sign_uuid("sandbox.leegality.com", "invitation_id", &value) {
                prop_assert!(validate::is_uuid(&uuid));
                prop_assert!(value.ends_with(&uuid) || value.eq_ignore_ascii_case(&uuid));
            }
        }

        #[test]
        fn url_shaped_input_with_another_host_is_refused(
            host in "[a-z]{1,10}\\.[a-z]{2,5}",
            path in "[a-zA-Z0-9/._-]{0,40}",
        ) {
            prop_assume!(host != "sandbox.leegality.com");
            let value = format!("https://{host}/sign/{path}");
            prop_assert!(sign_uuid("sandbox.leegality.com", "f", &value).is_err());
        }

        #[test]
        fn any_body_decodes_or_fails_cleanly(
            status in prop::sample::select(vec![200u16, 201, 400, 401, 403, 404, 429, 500, 502, 503]),
            body in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let outcome = decode(&response(status, body));
            if outcome.is_ok() {
                prop_assert!(status < 300);
            }
        }

        #[test]
        fn any_envelope_decodes_or_fails_cleanly(
            status in -3i64..3,
            code in proptest::option::of("[a-z.]{0,30}"),
            data in prop::sample::select(vec![
                "{}".to_owned(), "null".to_owned(), "[]".to_owned(),
                r#"{"invitations": [{"status": 0}]}"#.to_owned(),
                r#"{"documentId": "X", "requests": [{"signed": "yes"}]}"#.to_owned(),
            ]),
        ) {
            let body = format!(
                r#"{{"status": {status}, "messages": [{{"code": {}, "message": "m"}}], "data": {data}}}"#,
                code.map(|c| format!("{c:?}")).unwrap_or_else(|| "null".into())
            );
            let decoded = decode(&response(200, body.clone().into_bytes()));
            // Read in one pass as an operation's data, the answer means
            // the same: the data when it is a success carrying one, else
            // the envelope's own error, else unrecognized.
            let with_data = decode_data::<ResendData>(&response(200, body.into_bytes()), "data");
            match (&decoded, with_data) {
                (Ok(envelope), Ok((data, _))) => {
                    prop_assert_eq!(envelope.status, 1);
                    prop_assert!(data.invitations.iter().all(|item| item.status == 0));
                }
                (Ok(envelope), Err(error)) => {
                    prop_assert_eq!(envelope.status, 1);
                    prop_assert_eq!(error.reason(), Reason::ProviderUnrecognizedResponse);
                }
                (Err(expected), Err(error)) => prop_assert_eq!(error.reason(), expected.reason()),
                (Err(_), Ok(_)) => prop_assert!(false, "data read from a refused answer"),
            }
            match decoded {
                Ok(envelope) => prop_assert_eq!(envelope.status, 1),
                Err(error) => prop_assert!(!error.message().is_empty()),
            }
        }

        #[test]
        fn dates_parse_or_are_none_and_round_trip(value in any::<String>(), seconds in 0i64..4_000_000_000) {
            let _ = parse_leegality_time(&value);
            let time = DateTime::from_timestamp(seconds, 0).unwrap();
            let text = time.with_timezone(&ist()).format("%d-%m-%Y %H:%M:%S").to_string();
            prop_assert_eq!(parse_leegality_time(&text), Some(time));
        }
    }
}

mod unit {
    use super::super::*;

    #[test]
    fn leegality_times_are_read_as_ist() {
        let time = parse_leegality_time("08-03-2026 23:59:59").unwrap();
        assert_eq!(time.to_rfc3339(), "2026-03-08T18:29:59+00:00");
        assert!(parse_leegality_time("2026-03-08T18:29:59Z").is_some());
        assert!(parse_leegality_time("yesterday").is_none());
    }

    #[test]
    fn per_item_messages_are_matched_loosely() {
        let item = |message: &str| ResendItem {
            sign_url: None,
            status: 0,
            name: Some("A".into()),
            email: Some("a@example.com".into()),
            phone: None,
            message: Some(message.into()),
        };
        let uuid = "2bdcc3ef-661f-440c-b059-82c0ff6ce4d8";
        assert_eq!(
            item_error(uuid, &item("Document(s) already signed by the invitee.")).reason(),
            Reason::InvitationNotResendable
        );
        assert_eq!(
            item_error(uuid, &item("DOCUMENT ALREADY SIGNED")).reason(),
            Reason::InvitationNotResendable
        );
        assert_eq!(
            item_error(uuid, &item("You do not have access to the document.")).reason(),
            Reason::ProviderPermissionDenied
        );
        let capped = item_error(
            uuid,
            &item("You have already resent invitation mail 6 times. Please contact support."),
        );
        assert_eq!(capped.reason(), Reason::ResendLimitReached);
        assert!(capped.retry_after().is_none());
        assert_eq!(
            item_error(uuid, &item("Something new")).reason(),
            Reason::ProviderUnrecognizedResponse
        );
        let unknown = ResendItem {
            sign_url: None,
            status: 0,
            name: None,
            email: None,
            phone: None,
            message: Some("x".into()),
        };
        assert_eq!(
            item_error(uuid, &unknown).reason(),
            Reason::InvitationNotFound
        );
    }
}
