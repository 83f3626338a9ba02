//! signNow's JSON shapes as its own material shows them (evidence.md
//! T-N1..T-N10), and the lenient readers they need.

use super::*;

/// signNow writes flags as booleans, numbers or strings ("1", "0").
pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty() && s != "0" && !s.eq_ignore_ascii_case("false"),
        _ => false,
    }
}

/// A number sent as a JSON number or a string of digits.
pub(super) fn number(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn epoch(value: &Value) -> Option<DateTime<Utc>> {
    number(value).and_then(|seconds| DateTime::from_timestamp(seconds, 0))
}

#[derive(Debug, Deserialize)]
pub(super) struct FreeformCreated {
    pub(super) id: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireDocument {
    pub(super) id: String,
    #[serde(default)]
    pub(super) field_invites: Vec<WireFieldInvite>,
    #[serde(default)]
    pub(super) requests: Vec<WireFreeform>,
    /// Each field of a role carries the role's field request id, which
    /// is not the field invite id (evidence.md T-N7).
    #[serde(default)]
    pub(super) fields: Vec<WireField>,
    #[serde(default)]
    pub(super) roles: Vec<WireRole>,
}

/// An invite found on a document, of either kind.
pub(super) enum FoundInvite<'a> {
    Field(&'a WireFieldInvite),
    Freeform(&'a WireFreeform),
}

impl WireDocument {
    /// The invite a caller's id names: a field invite id, a field request
    /// id (resolved through its role to the role's latest invite), or a
    /// freeform invite id.
    pub(super) fn find(&self, id: &str) -> Option<FoundInvite<'_>> {
        if let Some(invite) = self.field_invites.iter().find(|i| i.id == id) {
            return Some(FoundInvite::Field(invite));
        }
        let by_request = self
            .fields
            .iter()
            .find(|f| {
                f.field_request_id.as_deref() == Some(id) || f.field_id.as_deref() == Some(id)
            })
            .and_then(|field| {
                let role_id = field.role_id.as_deref()?;
                self.field_invites
                    .iter()
                    .rev()
                    .find(|i| i.role_id == role_id)
            });
        if let Some(invite) = by_request {
            return Some(FoundInvite::Field(invite));
        }
        self.requests
            .iter()
            .find(|r| r.invite_id() == id || r.id.as_deref() == Some(id))
            .map(FoundInvite::Freeform)
    }

    pub(super) fn field_request_id(&self, role_id: &str) -> Option<&str> {
        self.fields
            .iter()
            .filter(|f| f.role_id.as_deref() == Some(role_id))
            .find_map(|f| f.field_request_id.as_deref().filter(|id| !id.is_empty()))
    }

    pub(super) fn signing_order(&self, role_id: &str) -> Option<u32> {
        self.roles
            .iter()
            .find(|r| r.unique_id == role_id)
            .and_then(WireRole::order)
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireField {
    #[serde(default)]
    pub(super) role_id: Option<String>,
    #[serde(default)]
    pub(super) field_request_id: Option<String>,
    #[serde(default)]
    pub(super) field_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireRole {
    #[serde(default)]
    pub(super) unique_id: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) signing_order: Option<Value>,
}

impl WireRole {
    /// The role's place in the signing order; signNow sends it as a string.
    pub(super) fn order(&self) -> Option<u32> {
        self.signing_order
            .as_ref()
            .and_then(number)
            .and_then(|o| u32::try_from(o).ok())
            .filter(|o| *o > 0)
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireFieldInvite {
    pub(super) id: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub(super) status: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub(super) email: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub(super) role: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub(super) role_id: String,
    #[serde(default)]
    pub(super) created: Option<Value>,
    #[serde(default)]
    pub(super) expiration_time: Option<Value>,
    #[serde(default)]
    pub(super) is_full_declined: Option<Value>,
    #[serde(default)]
    pub(super) declined: Option<Value>,
}

impl WireFieldInvite {
    pub(super) fn is_declined(&self) -> bool {
        self.is_full_declined.as_ref().is_some_and(truthy)
            || self
                .declined
                .as_ref()
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty())
    }

    /// The state from the whole row (evidence.md N-6): a decline shows in
    /// `is_full_declined`/`declined[]`, and an invite past its
    /// `expiration_time` is expired while its status still says pending.
    pub(super) fn state(&self, now: DateTime<Utc>) -> InvitationState {
        if self.is_declined() {
            return InvitationState::Rejected;
        }
        let state = invitation_state(&self.status);
        let expired = self
            .expiration_time
            .as_ref()
            .and_then(epoch)
            .is_some_and(|at| at <= now);
        if expired && matches!(state, InvitationState::Created | InvitationState::Pending) {
            InvitationState::Expired
        } else {
            state
        }
    }

    pub(super) fn is_open(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.state(now),
            InvitationState::Created | InvitationState::Pending
        )
    }
}

/// A freeform invite row in `requests[]` (fields per signNow's Node SDK;
/// there is no `status`).
#[derive(Debug, Deserialize)]
pub(super) struct WireFreeform {
    #[serde(default)]
    pub(super) id: Option<String>,
    /// The id `POST /document/{id}/invite` returned.
    #[serde(default)]
    pub(super) unique_id: Option<String>,
    #[serde(default)]
    pub(super) signer_email: Option<String>,
    #[serde(default)]
    pub(super) created: Option<Value>,
    #[serde(default)]
    pub(super) signature_id: Option<Value>,
    #[serde(default)]
    pub(super) canceled: Option<Value>,
}

impl WireFreeform {
    pub(super) fn invite_id(&self) -> &str {
        self.unique_id
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or_default()
    }
}

pub(super) fn string_or_null<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

// === request bodies ===

/// What both invite modes share (`POST /document/{id}/invite`).
#[derive(Debug, Serialize)]
pub(super) struct InviteCommon<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) cc: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cc_subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) cc_message: Option<&'a str>,
}

/// A freeform invite: `to` is one address as a string.
#[derive(Debug, Serialize)]
pub(super) struct FreeformInviteBody<'a> {
    pub(super) to: &'a str,
    pub(super) from: &'a str,
    #[serde(flatten)]
    pub(super) common: InviteCommon<'a>,
}

/// A field invite: `to` lists one recipient per role.
#[derive(Debug, Serialize)]
pub(super) struct FieldInviteBody<'a> {
    pub(super) to: Vec<FieldRecipient<'a>>,
    pub(super) from: &'a str,
    #[serde(flatten)]
    pub(super) common: InviteCommon<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub(super) cc_step: &'a [CcStep<'a>],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub(super) viewers: &'a [Viewer<'a>],
}

#[derive(Debug, Serialize)]
pub(super) struct CcStep<'a> {
    pub(super) name: &'a str,
    pub(super) email: &'a str,
    pub(super) step: u32,
}

#[derive(Debug, Serialize)]
pub(super) struct Viewer<'a> {
    pub(super) email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) order: Option<u32>,
}

/// One `to[]` entry of a field invite. Flags are strings ("1") or numbers
/// as signNow's own examples send them.
#[derive(Debug, Default, Serialize)]
pub(super) struct FieldRecipient<'a> {
    pub(super) email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) role_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) order: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) expiration_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reminder: Option<u32>,
    #[serde(flatten)]
    pub(super) authentication: Authentication<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) subject: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signing_instructions: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) prefill_signature_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) redirect_uri: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) decline_by_signature: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reassign: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) force_new_signature: Option<u8>,
}

/// Password or phone check of a signer.
#[derive(Debug, Default, Clone, Serialize)]
pub(super) struct Authentication<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) authentication_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) method: Option<&'static str>,
}

/// Step 2 of a replacement: `POST /field_invite`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ReplaceBody<'a> {
    pub(super) email: &'a str,
    /// Filled from the invite being replaced once it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) role_id: Option<String>,
    pub(super) is_replace: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) expiration_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reminder: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) decline_by_signature: Option<u8>,
    #[serde(flatten)]
    pub(super) authentication: Authentication<'a>,
}
