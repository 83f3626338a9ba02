//! Unit and property tests of the error table and state mapping.

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    proptest! {
        #[test]
        fn any_error_body_maps_to_an_error(
            status in prop::sample::select(vec![400u16, 401, 403, 404, 409, 422, 429, 500, 502, 503]),
            body in prop::collection::vec(any::<u8>(), 0..512),
            op in prop::sample::select(vec![Op::Invite, Op::Resend, Op::DeleteInvite, Op::ReplaceCreate, Op::Trigger, Op::Cancel, Op::ReadDocument]),
        ) {
            let response = ProviderResponse::fake(status, body);
            let error = map_error(&response, op);
            prop_assert!(!error.message().is_empty());
            let _ = is_invalid_token(&response);
        }

        #[test]
        fn any_code_and_message_maps_cleanly(code in any::<i64>(), message in any::<String>()) {
            let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
            let response = ProviderResponse::fake(400, body.to_string());
            let error = map_error(&response, Op::Resend);
            let expected = code.to_string();
            prop_assert_eq!(error.metadata(MetaKey::ProviderCode), Some(expected.as_str()));
        }

        #[test]
        fn any_document_body_parses_or_is_refused(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = serde_json::from_slice::<WireDocument>(&body);
        }
    }
}

mod unit {
    use super::super::*;

    fn response(status: u16, body: Value) -> ProviderResponse {
        ProviderResponse::fake(status, body.to_string())
    }

    fn reason(status: u16, code: i64, message: &str, op: Op) -> Reason {
        map_error(
            &response(
                status,
                json!({"errors": [{"code": code, "message": message}]}),
            ),
            op,
        )
        .reason()
    }

    #[test]
    fn codes_are_read_with_their_messages() {
        use Reason::*;
        let rows = [
            (
                65536,
                "Could not resend: routing out of order.",
                Op::Resend,
                InvalidInvitationState,
            ),
            (
                65536,
                "Could not resend expired invite.",
                Op::Resend,
                InvitationNotResendable,
            ),
            (65536, "could not resend", Op::Resend, InvitationNotFound),
            (
                65536,
                "To must be a valid email.",
                Op::Invite,
                ProviderRejectedRequest,
            ),
            (
                65536,
                "Email not found",
                Op::Invite,
                ProviderRejectedRequest,
            ),
            (
                65538,
                "Email must be a valid email.",
                Op::ReplaceCreate,
                ProviderRejectedRequest,
            ),
            (
                65585,
                "Email is invalid",
                Op::Invite,
                ProviderRejectedRequest,
            ),
            (65582, "Document not found", Op::Invite, DocumentNotFound),
            (65582, "Document not found.", Op::Trigger, DocumentNotFound),
            (
                65582,
                "Role does not exist.",
                Op::ReplaceCreate,
                ProviderRejectedRequest,
            ),
            (
                65594,
                "Cannot send a field invite: This document does not contain fields.",
                Op::Invite,
                DocumentHasNoFields,
            ),
            (
                65629,
                "Could not create duplicate field invite",
                Op::Invite,
                InviteAlreadyExists,
            ),
            (
                65615,
                "Invite already exists.",
                Op::ReplaceCreate,
                InviteAlreadyExists,
            ),
            (
                65615,
                "Field invite missing on this document.",
                Op::Trigger,
                InvalidInvitationState,
            ),
            (
                66502,
                "Field invite not found.",
                Op::DeleteInvite,
                InvitationNotFound,
            ),
            (
                12345,
                "Something new",
                Op::Invite,
                ProviderUnrecognizedResponse,
            ),
        ];
        for (code, message, op, expected) in rows {
            assert_eq!(reason(400, code, message, op), expected, "{code} {message}");
        }
    }

    #[test]
    fn both_envelopes_and_plain_statuses() {
        let plain = map_error(
            &response(400, json!({"error": "Document not found"})),
            Op::ReadDocument,
        );
        assert_eq!(plain.reason(), Reason::DocumentNotFound);
        let route = map_error(
            &response(404, json!({"404": "Unable to find a route"})),
            Op::Resend,
        );
        assert_eq!(route.reason(), Reason::InvitationNotFound);
        let limited = map_error(&response(429, json!({})), Op::Resend);
        assert_eq!(limited.reason(), Reason::RateLimited);
        assert!(limited.retry_after().is_some());
        assert!(is_invalid_token(&response(
            400,
            json!({"error": "invalid_token", "code": 1537})
        )));
        assert!(!is_invalid_token(&response(
            400,
            json!({"error": "invalid_request", "code": 1537})
        )));
    }

    #[test]
    fn statuses_map_to_the_unified_states() {
        assert_eq!(invitation_state("created"), InvitationState::Created);
        assert_eq!(invitation_state("pending"), InvitationState::Pending);
        assert_eq!(invitation_state("fulfilled"), InvitationState::Signed);
        assert_eq!(invitation_state("declined"), InvitationState::Rejected);
        assert_eq!(invitation_state("expired"), InvitationState::Expired);
        assert_eq!(invitation_state("cancelled"), InvitationState::Cancelled);
        assert_eq!(invitation_state("mystery"), InvitationState::Unspecified);
    }
}
