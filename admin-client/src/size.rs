//! Byte sizes as people write them (`10GiB`, `500MiB`, `1GB`, `1073741824`, Kubernetes' `2Gi`) and as tables
//! show them (`1.5 GiB`).

/// Decimal (`KB`, `MB`, …) and binary (`KiB`, `MiB`, …, or Kubernetes' `Ki`, `Mi`, …) units,
/// matched case-insensitively.
const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1_000),
    ("kb", 1_000),
    ("kib", 1 << 10),
    ("ki", 1 << 10),
    ("m", 1_000_000),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("mi", 1 << 20),
    ("g", 1_000_000_000),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
    ("gi", 1 << 30),
    ("t", 1_000_000_000_000),
    ("tb", 1_000_000_000_000),
    ("tib", 1 << 40),
    ("ti", 1 << 40),
    ("p", 1_000_000_000_000_000),
    ("pb", 1_000_000_000_000_000),
    ("pib", 1 << 50),
    ("pi", 1 << 50),
];

/// Parse a size: a whole number of bytes, or a number (decimals allowed) followed by a unit
/// (`KB`/`MB`/`GB`/`TB`/`PB` are powers of 1000, `KiB`/`MiB`/`GiB`/`TiB`/`PiB` powers of 1024).
/// The result must be a whole number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let multiplier = UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
        .map(|&(_, m)| m)
        .ok_or_else(|| {
            format!("unknown unit {unit:?} (use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB)")
        })?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(format!(
            "{text:?} is not a size (examples: 1073741824, 10GiB, 1.5TB)"
        ));
    }
    let too_big = || format!("{text:?} is too large");
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(too_big)?;
    if !fraction.is_empty() {
        // fraction × multiplier must be whole: compute it exactly in u128.
        let digits: u128 = fraction.parse().map_err(|_| too_big())?;
        let scale = 10u128
            .checked_pow(u32::try_from(fraction.len()).map_err(|_| too_big())?)
            .ok_or_else(too_big)?;
        let numerator = digits * u128::from(multiplier);
        if !numerator.is_multiple_of(scale) {
            return Err(format!("{text:?} is not a whole number of bytes"));
        }
        let extra = u64::try_from(numerator / scale).map_err(|_| too_big())?;
        bytes = bytes.checked_add(extra).ok_or_else(too_big)?;
    }
    Ok(bytes)
}

/// A size for people: `512 B`, `1.5 KiB`, `10 GiB` (binary units, one decimal at most).
pub fn human_size(bytes: u64) -> String {
    const NAMES: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    let mut scaled = bytes as f64 / 1024.0;
    while scaled >= 1024.0 && unit + 1 < NAMES.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    let text = format!("{scaled:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", NAMES[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_suffixed_sizes() {
        assert_eq!(parse_size("1073741824"), Ok(1 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("1gb"), Ok(1_000_000_000));
        assert_eq!(parse_size("2 KiB"), Ok(2048));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("1.5TB"), Ok(1_500_000_000_000));
        assert_eq!(parse_size(".5KiB"), Ok(512));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("3k"), Ok(3000));
    }

    #[test]
    fn refuses_what_is_not_a_size() {
        for bad in [
            "",
            "GiB",
            "ten",
            "10XB",
            "-1",
            "1.2.3",
            "1.5B",
            "1.0001KiB",
            "99999999999999999999",
            "20000PiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn formats_sizes_for_people() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(10 << 30), "10 GiB");
        assert_eq!(human_size(1_000_000_000), "953.7 MiB");
        assert_eq!(human_size(u64::MAX), "16 EiB");
    }
}
