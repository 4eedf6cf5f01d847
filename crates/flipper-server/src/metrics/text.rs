//! OpenMetrics text (what [`prometheus_client`] writes) to Prometheus' text format 0.0.4, for
//! scrapers that do not ask for OpenMetrics.
//!
//! The two differ, for what this server exposes, in three ways: a counter family is named
//! without `_total` in OpenMetrics (`# TYPE x counter` over samples `x_total`) and with it in
//! 0.0.4; OpenMetrics has `# UNIT` lines and ends with `# EOF`; its `unknown` type is 0.0.4's
//! `untyped`. Samples are the same.

/// Rewrites an OpenMetrics exposition as Prometheus text 0.0.4.
pub(super) fn to_prometheus(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A `# HELP` line waits for its `# TYPE` line, which decides the family's name.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, help.take(), "");
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (suffix, kind) = match kind {
                "counter" if !name.ends_with("_total") => ("_total", kind),
                "unknown" => ("", "untyped"),
                other => ("", other),
            };
            match help.take() {
                Some(h) if h.0 == name => flush_help(&mut out, Some(h), suffix),
                other => flush_help(&mut out, other, ""),
            }
            push_lines(&mut out, &["# TYPE ", name, suffix, " ", kind]);
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        } else {
            flush_help(&mut out, help.take(), "");
            push_lines(&mut out, &[line]);
        }
    }
    flush_help(&mut out, help, "");
    out
}

fn flush_help(out: &mut String, help: Option<(&str, &str)>, suffix: &str) {
    if let Some((name, text)) = help {
        push_lines(out, &["# HELP ", name, suffix, " ", text]);
    }
}

fn push_lines(out: &mut String, parts: &[&str]) {
    for part in parts {
        out.push_str(part);
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_suffix_and_openmetrics_markers_go() {
        let om = "# HELP flipper_http_requests HTTP requests.\n\
                  # TYPE flipper_http_requests counter\n\
                  flipper_http_requests_total{route=\"/healthz\"} 3\n\
                  # HELP flipper_latency_seconds Time.\n\
                  # TYPE flipper_latency_seconds histogram\n\
                  # UNIT flipper_latency_seconds seconds\n\
                  flipper_latency_seconds_bucket{le=\"+Inf\"} 1\n\
                  # HELP x Something.\n\
                  # TYPE x unknown\n\
                  x 1\n\
                  # EOF\n";
        assert_eq!(
            to_prometheus(om),
            "# HELP flipper_http_requests_total HTTP requests.\n\
             # TYPE flipper_http_requests_total counter\n\
             flipper_http_requests_total{route=\"/healthz\"} 3\n\
             # HELP flipper_latency_seconds Time.\n\
             # TYPE flipper_latency_seconds histogram\n\
             flipper_latency_seconds_bucket{le=\"+Inf\"} 1\n\
             # HELP x Something.\n\
             # TYPE x untyped\n\
             x 1\n"
        );
    }
}
