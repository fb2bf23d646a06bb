//! ISO 8601 durations as Key Vault uses them in rotation and lifetime policies (`P90D`,
//! `P2Y`, `PT12H`). Years count 365 days and months 30, as Key Vault does.
use crate::error::{Error, Result};

pub fn parse_seconds(s: &str) -> Result<i64> {
    let bad = || {
        Error::bad_parameter(format!(
            "'{}' is not an ISO 8601 duration such as P90D or P1Y.",
            crate::names::printable(s)
        ))
    };
    let rest = s.trim().strip_prefix('P').ok_or_else(bad)?;
    if rest.is_empty() {
        return Err(bad());
    }
    let (mut total, mut in_time, mut number) = (0i64, false, String::new());
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                let factor = match (in_time, unit) {
                    (false, 'Y') => 365 * 86_400,
                    (false, 'M') => 30 * 86_400,
                    (false, 'W') => 7 * 86_400,
                    (false, 'D') => 86_400,
                    (true, 'H') => 3_600,
                    (true, 'M') => 60,
                    (true, 'S') => 1,
                    _ => return Err(bad()),
                };
                total = n.checked_mul(factor).and_then(|x| total.checked_add(x)).ok_or_else(bad)?;
            }
        }
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn durations() {
        assert_eq!(parse_seconds("P90D").unwrap(), 90 * 86_400);
        assert_eq!(parse_seconds("P2Y").unwrap(), 730 * 86_400);
        assert_eq!(parse_seconds("P1M").unwrap(), 30 * 86_400);
        assert_eq!(parse_seconds("PT12H").unwrap(), 43_200);
        assert_eq!(parse_seconds("P1DT1H1M1S").unwrap(), 86_400 + 3_661);
        for bad in ["", "P", "90D", "P1H", "PT1D", "P1.5D", "P3"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
