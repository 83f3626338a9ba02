//! Who may call: callers prove who they are with a client certificate (mTLS;
//! the identity is the SPIFFE URI SAN, else the subject CN) or a bearer
//! token, and each caller may use only the RPCs and provider accounts its
//! entry lists. Tokens are kept as SHA-256 digests and compared in constant
//! time. Off unless a client CA or a callers file is configured.
//!
//! The callers file (`GATEWAY_AUTH_TOKENS_FILE`, TOML):
//!
//! ```toml
//! [[callers]]
//! name = "billing"
//! token_sha256 = "<hex SHA-256 of the token>"   # or identity = "spiffe://..."
//! rpcs = ["SendInvitation", "GetDocument"]      # "*" for all
//! accounts = ["bynn/*", "leegality/default"]    # "*" for all
//! ```

use std::{path::Path, sync::Arc};
use subtle::ConstantTimeEq as _;

use serde::Deserialize;
use tonic::metadata::MetadataMap;

use crate::{
    domain::ProviderKind,
    error::{GatewayError, MetaKey, Reason, Result},
};

/// The authenticated caller, as the audit line names it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// Shared: the name is cloned into every call's audit line.
    pub name: Arc<str>,
    /// Index of the caller's entry; `None` means everything is allowed
    /// (mTLS without a callers file, or auth off).
    entry: Option<usize>,
}

impl Caller {
    pub(crate) fn anonymous() -> Caller {
        static ANONYMOUS: std::sync::LazyLock<Arc<str>> =
            std::sync::LazyLock::new(|| Arc::from("anonymous"));
        Caller {
            name: ANONYMOUS.clone(),
            entry: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Authenticator {
    entries: Vec<Entry>,
    has_file: bool,
    client_certificates: bool,
}

#[derive(Debug)]
struct Entry {
    name: Arc<str>,
    token_sha256: Option<[u8; 32]>,
    identity: Option<String>,
    rpcs: Vec<String>,
    accounts: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallersFile {
    #[serde(default)]
    callers: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    #[serde(default)]
    token_sha256: Option<String>,
    #[serde(default)]
    identity: Option<String>,
    rpcs: Vec<String>,
    accounts: Vec<String>,
}

const RPC_NAMES: &[&str] = &[
    "SendInvitation",
    "ResendInvitation",
    "BatchResendInvitations",
    "ReactivateDocument",
    "DeleteInvitation",
    "ReplaceSigner",
    "CancelInvitations",
    "GetDocument",
    "GetInvitation",
    "ListProviders",
];

impl Authenticator {
    /// `None` when no auth is configured (the demo default).
    pub(crate) fn load(
        callers_file: Option<&Path>,
        client_certificates: bool,
    ) -> std::result::Result<Option<Arc<Authenticator>>, String> {
        let entries = match callers_file {
            Some(path) => parse(
                &std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            )?,
            None if client_certificates => Vec::new(),
            None => return Ok(None),
        };
        Ok(Some(Arc::new(Authenticator {
            entries,
            has_file: callers_file.is_some(),
            client_certificates,
        })))
    }

    /// The caller behind a request's certificate or bearer token.
    pub(crate) fn authenticate(
        &self,
        metadata: &MetadataMap,
        peer_certificates: Option<&[Vec<u8>]>,
    ) -> Result<Caller> {
        let identity = peer_certificates
            .and_then(|certs| certs.first())
            .and_then(|der| certificate_identity(der));
        if let Some(token) = bearer_token(metadata)? {
            let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
            // Compare against every entry so timing says nothing about which.
            let mut found = None;
            for (index, entry) in self.entries.iter().enumerate() {
                if let Some(expected) = &entry.token_sha256
                    && bool::from(expected.as_slice().ct_eq(digest.as_ref()))
                {
                    found = Some(index);
                }
            }
            return match found {
                Some(index) => Ok(Caller {
                    name: self.entries[index].name.clone(),
                    entry: Some(index),
                }),
                None => Err(unauthenticated("the bearer token is not valid")),
            };
        }
        if let Some(identity) = identity {
            if let Some(index) = self
                .entries
                .iter()
                .position(|e| e.identity.as_deref() == Some(identity.as_str()))
            {
                return Ok(Caller {
                    name: self.entries[index].name.clone(),
                    entry: Some(index),
                });
            }
            if !self.has_file && self.client_certificates {
                // The CA vouches for the caller and no file narrows it down.
                return Ok(Caller {
                    name: identity.into(),
                    entry: None,
                });
            }
            return Err(GatewayError::new(
                Reason::CallerNotAllowed,
                "this client certificate is not listed as a caller",
            )
            .with_metadata(MetaKey::Caller, identity));
        }
        Err(unauthenticated(
            "send authorization: Bearer <token> or a client certificate",
        ))
    }

    /// The caller of a gRPC request, from its client certificate or token.
    pub(crate) fn authenticate_request<T>(&self, request: &tonic::Request<T>) -> Result<Caller> {
        let certificates: Option<Vec<Vec<u8>>> = request
            .peer_certs()
            .map(|certs| certs.iter().map(|der| der.to_vec()).collect());
        self.authenticate(request.metadata(), certificates.as_deref())
    }

    /// Whether `caller` may call `rpc` (on `provider`/`account`).
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        rpc: &str,
        target: Option<(ProviderKind, &str)>,
    ) -> Result<()> {
        let Some(entry) = caller.entry.map(|index| &self.entries[index]) else {
            return Ok(());
        };
        let rpc_allowed = entry.rpcs.iter().any(|r| r == "*" || r == rpc);
        let account_allowed = target.is_none_or(|(provider, account)| {
            entry
                .accounts
                .iter()
                .any(|pattern| account_matches(pattern, provider, account))
        });
        if rpc_allowed && account_allowed {
            return Ok(());
        }
        let mut error = GatewayError::new(
            Reason::CallerNotAllowed,
            if rpc_allowed {
                "this caller may not use this provider account"
            } else {
                "this caller may not call this method"
            },
        )
        .with_metadata(MetaKey::Caller, entry.name.to_string())
        .with_metadata(MetaKey::Rpc, rpc);
        if let Some((provider, account)) = target {
            error = error.with_metadata(MetaKey::DeniedAccount, format!("{provider}/{account}"));
        }
        Err(error)
    }

    /// Accounts `caller` may see in ListProviders.
    pub(crate) fn may_see(&self, caller: &Caller, provider: ProviderKind, account: &str) -> bool {
        self.authorize(caller, "ListProviders", Some((provider, account)))
            .is_ok()
    }
}

fn account_matches(pattern: &str, provider: ProviderKind, account: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.split_once('/') {
        Some((p, "*")) => p == provider.as_str(),
        Some((p, a)) => p == provider.as_str() && a == account,
        None => false,
    }
}

fn unauthenticated(message: &str) -> GatewayError {
    GatewayError::new(Reason::CallerUnauthenticated, message)
}

fn bearer_token(metadata: &MetadataMap) -> Result<Option<String>> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| unauthenticated("the authorization header is not text"))?;
    match value.strip_prefix("Bearer ").map(str::trim) {
        Some(token) if !token.is_empty() => Ok(Some(token.to_owned())),
        _ => Err(unauthenticated(
            "the authorization header must be Bearer <token>",
        )),
    }
}

/// The SPIFFE URI SAN of a certificate, else its subject CN.
pub(crate) fn certificate_identity(der: &[u8]) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name
                && uri.starts_with("spiffe://")
            {
                return Some((*uri).to_owned());
            }
        }
    }
    certificate
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

fn parse(text: &str) -> std::result::Result<Vec<Entry>, String> {
    let file: CallersFile =
        toml::from_str(text).map_err(|e| format!("invalid callers file: {e}"))?;
    let mut entries = Vec::with_capacity(file.callers.len());
    for (index, caller) in file.callers.into_iter().enumerate() {
        let at = |what: &str| format!("callers[{index}] ({}): {what}", caller.name);
        if caller.name.trim().is_empty() {
            return Err(format!("callers[{index}]: name is required"));
        }
        let token_sha256 = match &caller.token_sha256 {
            Some(hex) => Some(decode_hex(hex).ok_or_else(|| {
                at("token_sha256 must be 64 hex characters (the SHA-256 of the token)")
            })?),
            None => None,
        };
        if token_sha256.is_none() && caller.identity.is_none() {
            return Err(at("needs token_sha256 or identity"));
        }
        for rpc in &caller.rpcs {
            if rpc != "*" && !RPC_NAMES.contains(&rpc.as_str()) {
                return Err(at(&format!("unknown rpc {rpc:?}")));
            }
        }
        for account in &caller.accounts {
            let valid = account == "*"
                || account.split_once('/').is_some_and(|(provider, name)| {
                    ProviderKind::parse(provider).is_some() && !name.is_empty()
                });
            if !valid {
                return Err(at(&format!(
                    "account {account:?} must be \"*\", \"provider/*\" or \"provider/name\""
                )));
            }
        }
        entries.push(Entry {
            name: caller.name.into(),
            token_sha256,
            identity: caller.identity,
            rpcs: caller.rpcs,
            accounts: caller.accounts,
        });
    }
    Ok(entries)
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_callers_file_parses_or_is_refused(text in any::<String>()) {
            let _ = parse(&text);
        }

        #[test]
        fn any_certificate_bytes_give_an_identity_or_none(der in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = certificate_identity(&der);
        }

        #[test]
        fn any_authorization_header_is_handled(value in "[ -~]{0,80}") {
            let auth = Authenticator { entries: Vec::new(), has_file: true, client_certificates: false };
            let mut metadata = MetadataMap::new();
            if let Ok(value) = value.parse() {
                metadata.insert("authorization", value);
            }
            prop_assert!(auth.authenticate(&metadata, None).is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(token: &str) -> String {
        ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn authenticator() -> Authenticator {
        let text = format!(
            "[[callers]]\nname = \"billing\"\ntoken_sha256 = \"{}\"\nrpcs = [\"ResendInvitation\"]\naccounts = [\"bynn/*\"]\n",
            sha256_hex("caller-token-billing")
        );
        Authenticator {
            entries: parse(&text).unwrap(),
            has_file: true,
            client_certificates: false,
        }
    }

    fn with_token(token: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
        metadata
    }

    #[test]
    fn tokens_authenticate_and_entries_authorize() {
        let auth = authenticator();
        let caller = auth
            .authenticate(&with_token("caller-token-billing"), None)
            .unwrap();
        assert_eq!(&*caller.name, "billing");
        assert!(
            auth.authorize(&caller, "ResendInvitation", Some((ProviderKind::Bynn, "x")))
                .is_ok()
        );
        let denied = auth
            .authorize(
                &caller,
                "ResendInvitation",
                Some((ProviderKind::Leegality, "default")),
            )
            .unwrap_err();
        assert_eq!(denied.reason(), Reason::CallerNotAllowed);
        let denied = auth
            .authorize(
                &caller,
                "SendInvitation",
                Some((ProviderKind::Bynn, "default")),
            )
            .unwrap_err();
        assert_eq!(denied.reason(), Reason::CallerNotAllowed);
        assert_eq!(
            auth.authenticate(&with_token("nope"), None)
                .unwrap_err()
                .reason(),
            Reason::CallerUnauthenticated
        );
        assert_eq!(
            auth.authenticate(&MetadataMap::new(), None)
                .unwrap_err()
                .reason(),
            Reason::CallerUnauthenticated
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_entry() {
        assert!(
            parse("[[callers]]\nname = \"x\"\nrpcs = [\"*\"]\naccounts = [\"*\"]\n")
                .unwrap_err()
                .contains("token_sha256 or identity")
        );
        assert!(parse("[[callers]]\nname = \"x\"\ntoken_sha256 = \"abc\"\nrpcs = [\"*\"]\naccounts = [\"*\"]\n")
            .unwrap_err()
            .contains("64 hex"));
        let text = format!(
            "[[callers]]\nname = \"x\"\ntoken_sha256 = \"{}\"\nrpcs = [\"Sned\"]\naccounts = [\"*\"]\n",
            sha256_hex("t")
        );
        assert!(parse(&text).unwrap_err().contains("unknown rpc"));
    }
}
