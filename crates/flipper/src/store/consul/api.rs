//! Consul's KV HTTP API: the requests the store sends and the answers it reads. The only place
//! the Consul store decides what a status means.
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/kv/KEY` (`?recurse` for a prefix; `?index=N&wait=D` to block) | `200` and a JSON array of entries, or `404`; `X-Consul-Index` either way |
//! | `PUT /v1/kv/KEY` (`?cas=N`; `0`: only if absent), body = the value | `true` or `false` |
//! | `DELETE /v1/kv/KEY` (`?cas=N`) | `true` or `false` |

use std::time::Duration;

use base64::Engine as _;
use flipper_core::{Value, json};
use reqwest::header::HeaderValue;
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode, Url, redirect};

use super::config::{ConsulConfig, encode, format_duration};
use crate::error::{BoxError, Error, Result};

/// How long an ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than its `wait` (plus Consul's jitter of up to `wait / 16`) a blocking
/// query may take before it counts as lost.
const BLOCKING_MARGIN: Duration = Duration::from_secs(15);

/// One KV entry of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// The full key.
    pub(super) key: String,
    /// The value; `None` for Consul's `null` (an empty value).
    pub(super) value: Option<Vec<u8>>,
    /// The Raft index of the entry's last change.
    pub(super) modify_index: u64,
}

/// A read: the entries and the answer's `X-Consul-Index`.
#[derive(Debug)]
pub(super) struct Read {
    pub(super) index: u64,
    pub(super) entries: Vec<Entry>,
}

/// The HTTP side of a Consul store.
#[derive(Debug)]
pub(super) struct Api {
    client: Client,
    /// `http://HOST:PORT`.
    base: String,
    /// The store's name, for errors.
    store: String,
    token: Option<HeaderValue>,
    /// `&stale`, `&dc=...`: appended to reads.
    read_params: String,
    /// `&dc=...`: appended to writes.
    write_params: String,
}

impl Api {
    pub(super) fn new(config: &ConsulConfig) -> Result<Self> {
        let store = config.to_string();
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect means Consul cleaned the key's path: another key. Never follow.
            .redirect(redirect::Policy::none())
            .build()
            .map_err(|e| backend(&store, e))?;
        let token = match config.token() {
            Some(token) => {
                let mut value =
                    HeaderValue::from_str(token).map_err(|_| Error::InvalidStoreUrl {
                        url: store.clone(),
                        reason: "the ACL token holds characters an HTTP header cannot".into(),
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let mut write_params = String::new();
        if let Some(dc) = config.datacenter() {
            write_params = format!("&dc={}", encode(dc, false));
        }
        let mut read_params = write_params.clone();
        if let Some(flag) = config.consistency().flag() {
            read_params.push('&');
            read_params.push_str(flag);
        }
        Ok(Self {
            client,
            base: config.http_base().to_owned(),
            store,
            token,
            read_params,
            write_params,
        })
    }

    /// The URL of a key with a query (`query` starts with `&` or is empty).
    fn url(&self, key: &str, query: &str) -> Result<Url> {
        let query = query.strip_prefix('&').unwrap_or(query);
        let sep = if query.is_empty() { "" } else { "?" };
        Url::parse(&format!(
            "{}/v1/kv/{}{sep}{query}",
            self.base,
            encode(key, true)
        ))
        .map_err(|e| backend(&self.store, e))
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.header("X-Consul-Token", token.clone()),
            None => request,
        }
    }

    async fn send(&self, request: RequestBuilder, timeout: Duration) -> Result<Response> {
        request
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| backend(&self.store, e))
    }

    /// Reads a key (`recurse`: every key under the prefix `key`), blocking until the index
    /// passes `block`'s index or its wait ends. `consistent`: Consul's default mode whatever
    /// the configured one (read-backs of this store's own writes).
    pub(super) async fn read(
        &self,
        key: &str,
        recurse: bool,
        block: Option<(u64, Duration)>,
        default_consistency: bool,
    ) -> Result<Read> {
        let mut query = String::new();
        if recurse {
            query.push_str("&recurse=true");
        }
        let mut timeout = REQUEST_TIMEOUT;
        if let Some((index, wait)) = block {
            query.push_str(&format!("&index={index}&wait={}", format_duration(wait)));
            timeout = wait + wait / 16 + BLOCKING_MARGIN;
        }
        if default_consistency {
            query.push_str(&self.write_params);
        } else {
            query.push_str(&self.read_params);
        }
        let response = self
            .send(self.request(Method::GET, self.url(key, &query)?), timeout)
            .await?;
        let status = response.status();
        if status != StatusCode::OK && status != StatusCode::NOT_FOUND {
            return Err(self.failure(response, (!recurse).then_some(key)).await);
        }
        let index = response
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                backend(
                    &self.store,
                    "the answer has no X-Consul-Index header (is this a Consul agent?)",
                )
            })?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Read {
                index,
                entries: Vec::new(),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| backend(&self.store, e))?;
        let entries = parse_entries(&body).map_err(|why| {
            backend(
                &self.store,
                format!("unexpected answer to GET /v1/kv/{key}: {why}"),
            )
        })?;
        Ok(Read { index, entries })
    }

    /// `PUT`s a value (`cas`: only if the key's `ModifyIndex` is this, `0` if absent).
    /// Returns Consul's `true` or `false`.
    pub(super) async fn put(&self, key: &str, value: Vec<u8>, cas: Option<u64>) -> Result<bool> {
        let mut query = String::new();
        if let Some(cas) = cas {
            query.push_str(&format!("&cas={cas}"));
        }
        query.push_str(&self.write_params);
        let request = self
            .request(Method::PUT, self.url(key, &query)?)
            .body(value);
        self.answer_bool(self.send(request, REQUEST_TIMEOUT).await?, key)
            .await
    }

    /// `DELETE`s a key (`cas`: only if its `ModifyIndex` is this). Returns Consul's `true` or
    /// `false`.
    pub(super) async fn delete(&self, key: &str, cas: Option<u64>) -> Result<bool> {
        let mut query = String::new();
        if let Some(cas) = cas {
            query.push_str(&format!("&cas={cas}"));
        }
        query.push_str(&self.write_params);
        let request = self.request(Method::DELETE, self.url(key, &query)?);
        self.answer_bool(self.send(request, REQUEST_TIMEOUT).await?, key)
            .await
    }

    async fn answer_bool(&self, response: Response, key: &str) -> Result<bool> {
        if response.status() != StatusCode::OK {
            return Err(self.failure(response, Some(key)).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| backend(&self.store, e))?;
        match body.trim_ascii() {
            b"true" => Ok(true),
            b"false" => Ok(false),
            other => Err(backend(
                &self.store,
                format!(
                    "expected true or false from Consul, got {:?}",
                    String::from_utf8_lossy(&other[..other.len().min(100)])
                ),
            )),
        }
    }

    /// The error for a failed request about `key` (`None`: a prefix).
    async fn failure(&self, response: Response, key: Option<&str>) -> Error {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message: String = match text.trim() {
            "" => "no explanation given".to_owned(),
            text => text.chars().take(300).collect(),
        };
        let invalid_key = |why: String| Error::InvalidFlag {
            name: key.unwrap_or_default().to_owned(),
            message: why,
        };
        match status.as_u16() {
            401 | 403 => Error::Unauthorized {
                store: self.store.clone(),
                status: status.as_u16(),
                message: format!(
                    "{message} (check the ACL token: the URL's token= or CONSUL_HTTP_TOKEN)"
                ),
            },
            400 if key.is_some() => invalid_key(format!("Consul refused the key: {message}")),
            413 if key.is_some() => invalid_key(format!(
                "too large for Consul (its kv_max_value_size, 512 KiB by default): {message}"
            )),
            301..=308 if key.is_some() => invalid_key(
                "Consul redirected the request to another path: the key cannot be addressed"
                    .to_owned(),
            ),
            _ => backend(&self.store, format!("HTTP {status}: {message}")),
        }
    }
}

/// [`Error::Backend`] for this store.
pub(super) fn backend(store: &str, source: impl Into<BoxError>) -> Error {
    Error::Backend {
        store: store.to_owned(),
        source: source.into(),
    }
}

/// The entries of a `GET /v1/kv/...` answer: `[{"Key", "Value" (base64 or null),
/// "ModifyIndex", ...}]`.
pub(super) fn parse_entries(body: &[u8]) -> Result<Vec<Entry>, String> {
    let value = json::parse_bytes(body).map_err(|e| e.to_string())?;
    let list = value.as_list().ok_or("not a JSON array")?;
    let mut entries = Vec::with_capacity(list.len());
    for entry in list {
        let entry = entry.as_object().ok_or("an entry is not an object")?;
        let key = entry
            .get("Key")
            .and_then(Value::as_str)
            .ok_or("an entry has no Key string")?;
        let value = match entry.get("Value") {
            None | Some(Value::Null) => None,
            Some(Value::Str(b64)) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| format!("the Value of {key:?} is not base64: {e}"))?,
            ),
            Some(_) => return Err(format!("the Value of {key:?} is not a string")),
        };
        let modify_index = match entry.get("ModifyIndex") {
            Some(Value::Int(i)) => i.to_string().parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("the entry {key:?} has no ModifyIndex"))?;
        entries.push(Entry {
            key: key.to_owned(),
            value: value.filter(|v| !v.is_empty()),
            modify_index,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_and_bad_answers_explained() {
        let body = br#"[{"LockIndex":0,"Key":"features/a","Flags":0,"Value":"eyJ4IjogMX0=","CreateIndex":5,"ModifyIndex":7},
                        {"Key":"features/empty","Value":null,"ModifyIndex":18446744073709551615}]"#;
        let entries = parse_entries(body).unwrap();
        assert_eq!(
            entries,
            [
                Entry {
                    key: "features/a".into(),
                    value: Some(br#"{"x": 1}"#.to_vec()),
                    modify_index: 7
                },
                Entry {
                    key: "features/empty".into(),
                    value: None,
                    modify_index: u64::MAX
                }
            ]
        );
        for (body, why) in [
            (&b"{}"[..], "not a JSON array"),
            (b"[1]", "not an object"),
            (b"[{}]", "no Key"),
            (
                br#"[{"Key":"k","Value":"!!","ModifyIndex":1}]"#,
                "not base64",
            ),
            (
                br#"[{"Key":"k","Value":1,"ModifyIndex":1}]"#,
                "not a string",
            ),
            (br#"[{"Key":"k","Value":null}]"#, "no ModifyIndex"),
            (
                br#"[{"Key":"k","Value":null,"ModifyIndex":-1}]"#,
                "no ModifyIndex",
            ),
            (b"nope", "Expecting value"),
        ] {
            let err = parse_entries(body).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
