//! The caller's deadline, read from the `grpc-timeout` request header
//! (tonic offers no server-side accessor for it).

use std::time::Duration;

use tonic::metadata::MetadataMap;

/// Parses a `grpc-timeout` value: at most 8 digits and a unit
/// (H, M, S, m, u, n). Anything else is ignored, as the gRPC spec allows.
pub(crate) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 || !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    let duration = match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Some(duration)
}

/// The timeout the caller sent, if any.
pub(crate) fn caller_timeout(metadata: &MetadataMap) -> Option<Duration> {
    metadata
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_header_parses_or_is_ignored(value in any::<String>()) {
            let _ = parse_grpc_timeout(&value);
        }

        #[test]
        fn valid_headers_parse_exactly(amount in 0u64..100_000_000, unit in prop::sample::select(vec!['H', 'M', 'S', 'm', 'u', 'n'])) {
            let parsed = parse_grpc_timeout(&format!("{amount}{unit}")).unwrap();
            let expected = match unit {
                'H' => Duration::from_secs(amount * 3600),
                'M' => Duration::from_secs(amount * 60),
                'S' => Duration::from_secs(amount),
                'm' => Duration::from_millis(amount),
                'u' => Duration::from_micros(amount),
                _ => Duration::from_nanos(amount),
            };
            prop_assert_eq!(parsed, expected);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_grpc_timeout("5n"), Some(Duration::from_nanos(5)));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in ["", "S", "10", "1x", "-1S", "123456789S", "1.5S", " 1S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
