//! `api-version` handling: every version current SDKs send is served. A well-formed date
//! version (with or without `-preview`) that is not one Coffer knows is served as the newest
//! known version not newer than it — `2026-03-01-preview` (the Rust SDK's 1.1 betas) as
//! `2025-07-01`, a date after the newest as the newest — so an SDK upgrade, or an SDK built
//! against a preview, does not break users. Only what is not a version at all is 400.
use coffer_core::Error;

/// Date-named versions we know, oldest first. The last one is the newest.
const DATE_VERSIONS: &[&str] = &["2016-10-01", "2025-06-01", "2025-07-01", "2026-04-01"];
pub const NEWEST: &str = "2026-04-01";

/// Returns the version the request is served as.
pub fn negotiate(requested: Option<&str>) -> Result<String, Error> {
    let Some(v) = requested.map(str::trim).filter(|v| !v.is_empty()) else {
        return Err(Error::bad_parameter(
            "The 'api-version' query parameter is missing. Consider using the latest supported version (2026-04-01).",
        ));
    };
    if is_numbered(v) || DATE_VERSIONS.contains(&v) {
        return Ok(v.to_string());
    }
    if let Some(date) = parse_date(v)
        && let Some(served) = DATE_VERSIONS.iter().rev().find(|known| parse_date(known).is_some_and(|k| k <= date))
    {
        return Ok((*served).to_string());
    }
    Err(Error::bad_parameter(format!(
        "The specified version ({}) is not recognized. Consider using the latest supported version ({NEWEST}).",
        coffer_core::names::printable(v)
    )))
}

/// `7.0` … `7.6`, optionally with a `-preview[.N]` suffix.
fn is_numbered(v: &str) -> bool {
    let base = v.split_once("-preview").map(|(b, rest)| {
        let ok = rest.is_empty()
            || rest.strip_prefix('.').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        (b, ok)
    });
    let (base, suffix_ok) = base.unwrap_or((v, true));
    suffix_ok && matches!(base, "7.0" | "7.1" | "7.2" | "7.3" | "7.4" | "7.5" | "7.6")
}

/// `YYYY-MM-DD` (with an optional `-preview` suffix) as a comparable number.
fn parse_date(v: &str) -> Option<u32> {
    let d = v.strip_suffix("-preview").unwrap_or(v);
    let b = d.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: u32 = d[0..4].parse().ok()?;
    let m: u32 = d[5..7].parse().ok()?;
    let day: u32 = d[8..10].parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&day)).then_some(y * 10_000 + m * 100 + day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_versions() {
        for v in ["7.0", "7.4", "7.6", "7.6-preview.2", "2025-07-01", "2026-04-01"] {
            assert_eq!(negotiate(Some(v)).unwrap(), v);
        }
    }

    #[test]
    fn newer_dates_are_served_as_newest() {
        assert_eq!(negotiate(Some("2027-01-01")).unwrap(), NEWEST);
        assert_eq!(negotiate(Some("2030-12-31-preview")).unwrap(), NEWEST);
    }

    #[test]
    fn dates_between_known_versions_are_served_as_the_one_before() {
        assert_eq!(negotiate(Some("2026-03-01-preview")).unwrap(), "2025-07-01");
        assert_eq!(negotiate(Some("2026-04-01-preview")).unwrap(), "2026-04-01");
        assert_eq!(negotiate(Some("2025-06-15")).unwrap(), "2025-06-01");
        assert_eq!(negotiate(Some("2020-01-01")).unwrap(), "2016-10-01");
    }

    #[test]
    fn junk_is_rejected() {
        for v in ["8.0", "7.7", "2015-01-01", "2027-13-01", "latest", "7.6-previewx", "2026-03-01-beta"] {
            assert!(negotiate(Some(v)).is_err(), "{v}");
        }
        assert!(negotiate(None).is_err());
        assert!(negotiate(Some("")).is_err());
    }
}
