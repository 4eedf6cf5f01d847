//! Parsing the options of store URLs (`?name=value&...`), shared by the stores that take them.

use std::time::Duration;

/// `500ms`, `2s`, `1m`; `0` or `off` is `None`.
#[cfg_attr(not(any(feature = "redis", feature = "s3")), allow(dead_code))]
pub(crate) fn parse_interval(value: &str) -> Result<Option<Duration>, String> {
    if matches!(value, "0" | "off") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "poll_interval must be a whole number with a unit (500ms, 2s, 1m), or 0 or off, not \
             {value:?}"
        )
    };
    let (digits, unit) = value.split_at(value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let interval = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(bad()),
    };
    Ok(Some(interval).filter(|d| !d.is_zero()))
}

/// The inverse of [`parse_interval`].
#[cfg_attr(not(any(feature = "redis", feature = "s3")), allow(dead_code))]
pub(crate) fn format_interval(interval: Option<Duration>) -> String {
    match interval {
        None => "off".to_owned(),
        Some(d) if d.subsec_nanos() == 0 => format!("{}s", d.as_secs()),
        Some(d) => format!("{}ms", d.as_millis()),
    }
}

/// Percent-decodes `%XX` escapes (`+` stays a plus sign).
pub(crate) fn percent_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in {raw:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{raw:?} is not UTF-8 once decoded"))
}
