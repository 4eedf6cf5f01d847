//! The fake Consul's HTTP side: `/v1/kv/...` as Consul's agent serves it
//! (`agent/kvs_endpoint.go`, `agent/http.go`), with blocking queries as
//! `agent/blockingquery/blockingquery.go` runs them.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};

use super::Shared;
use super::kv::{DirEntry, Kv};

/// Consul's default `kv_max_value_size`.
const MAX_VALUE_SIZE: usize = 512 * 1024;
/// Consul's default blocking wait.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Consul's longest blocking wait.
const MAX_WAIT: Duration = Duration::from_secs(600);

type Reply = Response<Full<Bytes>>;
/// A refused request's answer (boxed: the happy path stays small).
type Refused = Box<Reply>;

/// Serves one request.
pub(super) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Reply, Infallible> {
    shared.count(request.method().as_str(), request.uri().path());
    Ok(route(&shared, request).await.unwrap_or_else(|reply| *reply))
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("Content-Type", value);
    }
    response
}

/// A plain-text error, as Consul's `HTTPError`s are.
fn error(status: StatusCode, message: &str) -> Refused {
    Box::new(reply(
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n"),
    ))
}

/// A read's answer with Consul's query metadata headers.
fn with_meta(mut response: Reply, index: u64) -> Reply {
    let headers = response.headers_mut();
    for (name, value) in [
        ("X-Consul-Index", index.to_string()),
        ("X-Consul-Knownleader", "true".to_owned()),
        ("X-Consul-Lastcontact", "0".to_owned()),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    response
}

async fn route(shared: &Shared, request: Request<Incoming>) -> Result<Reply, Refused> {
    let path = request.uri().path().to_owned();
    if path == "/v1/status/leader" {
        return Ok(reply(
            StatusCode::OK,
            "application/json",
            "\"127.0.0.1:8300\"",
        ));
    }
    let Some(raw_key) = path.strip_prefix("/v1/kv/") else {
        return Err(error(StatusCode::NOT_FOUND, "404 page not found"));
    };
    // Go's ServeMux redirects paths that are not clean (`//`, `.`, `..` segments).
    let clean = clean_path(&path);
    if clean != path {
        let mut response = error(StatusCode::MOVED_PERMANENTLY, "Moved Permanently");
        if let Ok(location) = clean.parse() {
            response.headers_mut().insert("Location", location);
        }
        return Err(response);
    }
    let key = percent_decode(raw_key, false)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "Invalid URL path escaping"))?;
    let params = Params::parse(request.uri().query().unwrap_or(""))?;
    let token = request
        .headers()
        .get("X-Consul-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            request
                .headers()
                .get("Authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned)
        })
        .or_else(|| params.get("token").map(str::to_owned));
    if let Some(required) = shared.required_token()
        && token.as_deref() != Some(required.as_str())
    {
        return Err(error(StatusCode::FORBIDDEN, "Permission denied"));
    }
    if params.get("dc").is_some_and(|dc| dc != "dc1") {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No path to datacenter",
        ));
    }
    if params.has("stale") && params.has("consistent") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Cannot specify ?stale with ?consistent, conflicting semantics.",
        ));
    }
    match *request.method() {
        Method::GET => get(shared, &key, &params).await,
        Method::PUT => {
            let body = Limited::new(request.into_body(), MAX_VALUE_SIZE)
                .collect()
                .await
                .map_err(|_| {
                    error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!(
                            "Request body too large, max size: {MAX_VALUE_SIZE} bytes. See \
                             https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size."
                        ),
                    )
                })?
                .to_bytes();
            put(shared, &key, &params, body.to_vec())
        }
        Method::DELETE => delete(shared, &key, &params),
        _ => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed; allowed: GET, PUT, DELETE",
        )),
    }
}

/// What a GET computes, once per wake-up of a blocking query.
enum Answer {
    Entries(Vec<(String, DirEntry)>),
    Keys(Vec<String>),
    Raw(Option<Vec<u8>>),
}

async fn get(shared: &Shared, key: &str, params: &Params) -> Result<Reply, Refused> {
    let min_index = match params.get("index") {
        Some(index) => index
            .parse::<u64>()
            .map_err(|_| error(StatusCode::BAD_REQUEST, "Invalid index"))?,
        None => 0,
    };
    let wait = match params.get("wait") {
        Some(wait) => parse_go_duration(wait)
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "Invalid wait time"))?,
        None => Duration::ZERO,
    };
    let (keys, recurse) = (params.has("keys"), params.has("recurse"));
    if !keys && !recurse && key.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "Missing key name"));
    }
    let separator = params
        .get("separator")
        .or_else(|| params.get("seperator"))
        .unwrap_or("");
    let raw = params.has("raw");
    let query = |kv: &Kv| -> (u64, Answer) {
        if keys {
            let (index, keys) = kv.keys(key, separator);
            (index, Answer::Keys(keys))
        } else if recurse {
            let (index, entries) = kv.list(key);
            let entries = entries
                .into_iter()
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect();
            (index, Answer::Entries(entries))
        } else {
            let (index, entry) = kv.get(key);
            let found: Vec<(String, DirEntry)> = entry
                .map(|e| (key.to_owned(), e.clone()))
                .into_iter()
                .collect();
            if raw {
                let value = found.first().map(|(_, e)| e.value.clone());
                (index, Answer::Raw(value))
            } else {
                (index, Answer::Entries(found))
            }
        }
    };
    let (index, answer) = blocking(shared, min_index, wait, query).await;
    Ok(with_meta(
        match answer {
            Answer::Entries(entries) if entries.is_empty() => {
                reply(StatusCode::NOT_FOUND, "text/plain", "")
            }
            Answer::Entries(entries) => {
                reply(StatusCode::OK, "application/json", entries_json(&entries))
            }
            Answer::Keys(keys) if keys.is_empty() && !key.is_empty() => {
                reply(StatusCode::NOT_FOUND, "text/plain", "")
            }
            Answer::Keys(keys) => reply(
                StatusCode::OK,
                "application/json",
                serde_json::to_string(&keys).unwrap_or_default(),
            ),
            Answer::Raw(None) => reply(StatusCode::NOT_FOUND, "text/plain", ""),
            Answer::Raw(Some(value)) => reply(StatusCode::OK, "text/plain", value),
        },
        index,
    ))
}

/// Runs `query` until its index passes `min_index` (0: once), the wait ends (Consul adds up to
/// `wait / 16` of jitter), or the state is replaced (a snapshot restore).
async fn blocking<T>(
    shared: &Shared,
    min_index: u64,
    wait: Duration,
    query: impl Fn(&Kv) -> (u64, T),
) -> (u64, T) {
    let mut changes = shared.changes.subscribe();
    let epoch = shared.epoch.load(Ordering::SeqCst);
    let (index, answer) = shared.read(|kv| query(kv));
    if min_index == 0 || index > min_index {
        return (index, answer);
    }
    let wait = if wait.is_zero() {
        DEFAULT_WAIT
    } else {
        wait.min(MAX_WAIT)
    };
    let jitter = (wait / 16).mul_f64(fastrand::f64());
    let deadline = tokio::time::Instant::now() + wait + jitter;
    loop {
        let woke = tokio::select! {
            changed = changes.changed() => changed.is_ok(),
            () = tokio::time::sleep_until(deadline) => false,
        };
        changes.borrow_and_update();
        let (index, answer) = shared.read(|kv| query(kv));
        if !woke || index > min_index || shared.epoch.load(Ordering::SeqCst) != epoch {
            return (index, answer);
        }
    }
}

fn put(shared: &Shared, key: &str, params: &Params, value: Vec<u8>) -> Result<Reply, Refused> {
    if key.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "Missing key name"));
    }
    if ["cas", "acquire", "release"]
        .iter()
        .filter(|p| params.has(p))
        .count()
        > 1
    {
        return Err(error(StatusCode::BAD_REQUEST, "Conflicting flags"));
    }
    if params.has("acquire") || params.has("release") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "sessions (acquire, release) are not implemented by the fake Consul",
        ));
    }
    let flags = uint_param(params, "flags")?.unwrap_or(0);
    let cas = uint_param(params, "cas")?;
    let applied = shared.write(|kv| kv.set(key, value, flags, cas));
    Ok(reply(
        StatusCode::OK,
        "application/json",
        bool_json(applied),
    ))
}

fn delete(shared: &Shared, key: &str, params: &Params) -> Result<Reply, Refused> {
    if params.has("recurse") && params.has("cas") {
        return Err(error(StatusCode::BAD_REQUEST, "Conflicting flags"));
    }
    if params.has("recurse") {
        shared.write(|kv| kv.delete_tree(key));
        return Ok(reply(StatusCode::OK, "application/json", "true"));
    }
    if key.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "Missing key name"));
    }
    let cas = uint_param(params, "cas")?;
    let applied = shared.write(|kv| kv.delete(key, cas));
    // Only a CAS delete reports its outcome.
    Ok(reply(
        StatusCode::OK,
        "application/json",
        bool_json(applied || cas.is_none()),
    ))
}

fn bool_json(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn uint_param(params: &Params, name: &str) -> Result<Option<u64>, Refused> {
    params
        .get(name)
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("strconv.ParseUint: parsing {v:?}: invalid syntax"),
                )
            })
        })
        .transpose()
}

/// Entries as Consul writes them (Go's `encoding/json` of `DirEntry`, field order kept).
fn entries_json(entries: &[(String, DirEntry)]) -> String {
    let mut out = String::from("[");
    for (i, (key, e)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let value = if e.value.is_empty() {
            "null".to_owned()
        } else {
            format!(
                "\"{}\"",
                base64::engine::general_purpose::STANDARD.encode(&e.value)
            )
        };
        out.push_str(&format!(
            "{{\"LockIndex\":0,\"Key\":{},\"Flags\":{},\"Value\":{value},\"CreateIndex\":{},\"ModifyIndex\":{}}}",
            serde_json::to_string(key).unwrap_or_default(),
            e.flags,
            e.create_index,
            e.modify_index
        ));
    }
    out.push(']');
    out
}

/// A request's query parameters (Go's `url.ParseQuery`: `+` is a space).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Self, Refused> {
        let mut pairs = Vec::new();
        for pair in query.split(['&', ';']).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (percent_decode(name, true), percent_decode(value, true)) {
                (Some(name), Some(value)) => pairs.push((name, value)),
                _ => return Err(error(StatusCode::BAD_REQUEST, "invalid URL escape")),
            }
        }
        Ok(Self(pairs))
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn percent_decode(raw: &str, plus_is_space: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Go's `path.Clean`, keeping a trailing slash (as `net/http`'s `cleanPath` does).
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut clean = format!("/{}", parts.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

/// Go's `time.ParseDuration` for what Consul clients send: `5m`, `10s`, `1.5s`, `100ms`,
/// `1m30s` (units `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`). `None` when it does not parse.
fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut rest = s;
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_paths() {
        for (s, d) in [
            ("5m", Some(Duration::from_secs(300))),
            ("10s", Some(Duration::from_secs(10))),
            ("1m30s", Some(Duration::from_secs(90))),
            ("100ms", Some(Duration::from_millis(100))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("0", Some(Duration::ZERO)),
            ("5", None),
            ("-1s", None),
            ("", None),
            ("3d", None),
        ] {
            assert_eq!(parse_go_duration(s), d, "{s}");
        }
        assert_eq!(clean_path("/v1/kv/a//b"), "/v1/kv/a/b");
        assert_eq!(clean_path("/v1/kv/a/./b/../c/"), "/v1/kv/a/c/");
        assert_eq!(clean_path("/v1/kv/features/"), "/v1/kv/features/");
        assert_eq!(percent_decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(percent_decode("%zz", false), None);
    }
}
