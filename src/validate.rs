//! Shape checks on caller input, run before any provider is called.

use crate::error::GatewayError;

/// A pragmatic email check: one '@', a non-empty local part, a dotted domain,
/// no spaces or control characters, at most 254 bytes.
pub(crate) fn is_email(value: &str) -> bool {
    if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// An E.164 number: '+', a non-zero digit, 8 to 15 digits in all.
pub(crate) fn is_e164(value: &str) -> bool {
    let Some(digits) = value.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A 10-digit Indian mobile number as Leegality expects it.
pub(crate) fn is_indian_mobile(value: &str) -> bool {
    value.len() == 10 && value.chars().all(|c| c.is_ascii_digit()) && !value.starts_with('0')
}

/// A canonical lowercase or uppercase UUID (8-4-4-4-12 hex).
pub(crate) fn is_uuid(value: &str) -> bool {
    uuid::Uuid::try_parse(value).is_ok() && value.len() == 36
}

/// Fails with INVALID_FIELD when `value` is empty.
pub(crate) fn require_non_empty(field: &str, value: &str) -> Result<(), GatewayError> {
    if value.trim().is_empty() {
        return Err(GatewayError::invalid_field(field, "is required"));
    }
    Ok(())
}

/// An opaque provider id must be printable ASCII without path or query
/// characters, so it can never change the path of a provider call.
pub(crate) fn require_path_safe_id(
    field: &str,
    value: &str,
    max_len: usize,
) -> Result<(), GatewayError> {
    require_non_empty(field, value)?;
    if value.len() > max_len {
        return Err(GatewayError::invalid_field(
            field,
            format!("is longer than {max_len} characters"),
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(GatewayError::invalid_field(
            field,
            "may contain only letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

/// INVALID_ARGUMENT naming the first of `fields` that is set although the
/// provider cannot honour it: nothing is dropped silently. Each field path
/// is `prefix.name` (or `name` when the prefix is empty).
pub(crate) fn reject_set(
    prefix: &str,
    fields: &[(&str, bool)],
    why: &str,
) -> Result<(), GatewayError> {
    match fields.iter().find(|(_, set)| *set) {
        Some((name, _)) if prefix.is_empty() => Err(GatewayError::invalid_field(*name, why)),
        Some((name, _)) => Err(GatewayError::invalid_field(format!("{prefix}.{name}"), why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@example.com", "x@sub.example.org"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            "a@.b.com",
            "a@b.com.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(is_e164("+15551234567"));
        assert!(!is_e164("15551234567"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+1555"));
        assert!(is_indian_mobile("9876543210"));
        assert!(!is_indian_mobile("+919876543210"));
        assert!(!is_indian_mobile("987654321"));
    }

    #[test]
    fn path_safe_ids() {
        assert!(require_path_safe_id("invitation_id", "adi_abc-123", 64).is_ok());
        for bad in ["", "../x", "a/b", "a?b=c", "a%2Fb", "a b"] {
            assert!(
                require_path_safe_id("invitation_id", bad, 64).is_err(),
                "{bad}"
            );
        }
    }
}
