//! Leegality's JSON shapes: the `{status, messages, data}` envelope and
//! each operation's data.

use super::*;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateBody<'a> {
    pub(super) profile_id: &'a str,
    pub(super) file: WireFile<'a>,
    pub(super) invitees: Vec<WireInvitee<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) cc: Vec<WireCc<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) irn: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub(super) struct WireFile<'a> {
    pub(super) name: &'a str,
    /// Stands in for the Base64 PDF, which the transport writes in while
    /// the body is sent (it never exists as text of its own).
    pub(super) file: transport::FileSlot,
}

#[derive(Debug, Serialize)]
pub(super) struct WireInvitee<'a> {
    pub(super) name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) phone: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub(super) struct WireCc<'a> {
    pub(super) name: &'a str,
    pub(super) email: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateData {
    pub(super) document_id: String,
    #[serde(default)]
    pub(super) irn: Option<String>,
    /// As in transaction status, without the signed/rejected/expired flags.
    pub(super) invitees: Vec<WireRequest>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResendBody<'a> {
    pub(super) sign_urls: &'a [String],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReactivateBody<'a> {
    pub(super) document_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) expiry_days: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) expiry_time: Option<i64>,
}

/// Leegality's answer envelope. `T` is the operation's `data`, read in the
/// same pass as the status on the success path; the default reads past it,
/// for answers read only for their status and messages.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope<T = serde::de::IgnoredAny> {
    pub(super) status: i64,
    #[serde(default)]
    pub(super) messages: Vec<WireMessage>,
    #[serde(default = "Option::default")]
    pub(super) data: Option<T>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireMessage {
    #[serde(default)]
    pub(super) code: Option<String>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ResendData {
    pub(super) invitations: Vec<ResendItem>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResendItem {
    pub(super) status: i64,
    #[serde(default)]
    pub(super) sign_url: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) phone: Option<String>,
    #[serde(default)]
    pub(super) message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DocumentData {
    pub(super) document_id: String,
    #[serde(default)]
    pub(super) irn: Option<String>,
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) requests: Vec<WireRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireRequest {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) email: Option<String>,
    #[serde(default)]
    pub(super) phone: Option<String>,
    #[serde(default)]
    pub(super) sign_url: Option<String>,
    #[serde(default)]
    pub(super) signed: bool,
    #[serde(default)]
    pub(super) rejected: bool,
    #[serde(default)]
    pub(super) expired: bool,
    #[serde(default)]
    pub(super) active: bool,
    #[serde(default)]
    pub(super) expiry_date: Option<String>,
}
