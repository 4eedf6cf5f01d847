//! [`HttpStore`]: a flipper server (`flipper serve`) as the store (`http://HOST:PORT`).

mod reply;
mod sse;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flipper_core::Item;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode, Url};

use self::reply::{Failure, backend};
use super::{Capabilities, ChangeStream, ListEntry, PutMode, Store, Version, Versioned};
use crate::error::{Error, Result};

/// How long a request may take, from sending it to the end of its answer (not the stream's).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write waits for the watch streams opened before it to connect.
const WATCH_CONNECT_WAIT: Duration = Duration::from_secs(10);

/// A flipper server as the store, over its HTTP API: `http://HOST:PORT` (and `https://` with
/// the cargo feature `http-tls`), optionally with a path prefix (`http://proxy/flipper`).
///
/// ```no_run
/// # async fn run() -> flipper::Result<()> {
/// use flipper::FeatureFlagClient;
/// use flipper::store::HttpStore;
/// let store = HttpStore::new("http://127.0.0.1:8080")?.with_token("admin-token");
/// let client = FeatureFlagClient::new(store);
/// client.create("beta", true, None).await?;
/// # Ok(()) }
/// ```
///
/// | `Store` | request |
/// |---|---|
/// | `get` | `GET /api/v1/flags/{name}`: the stored flag, its version the `ETag`; 404 is `None` |
/// | `put` | `PUT /api/v1/flags/{name}` with the stored flag: [`PutMode::Create`] sends `If-None-Match: *`, [`PutMode::Update`] `If-Match` with the version; a 412 is [`Error::AlreadyExists`] / [`Error::Conflict`] |
/// | `delete` | `DELETE /api/v1/flags/{name}`: 204 is `true`, 404 `false` |
/// | `list` | `GET /api/v1/flags?limit=&offset=` (unreadable flags come last) |
/// | `watch` | `GET /api/v1/stream`, the server's change stream |
///
/// Requests carry the token as `Authorization: Bearer`: reads need the server's SDK or admin
/// token, writes its admin token. A 401 or 403 is [`Error::Unauthorized`]; a server that cannot
/// be reached, times out (30 s) or fails (5xx) is [`Error::Backend`], which is retryable.
///
/// **Watch.** [`Store::watch`] opens the server's change stream in a background task (call it
/// inside a Tokio runtime; outside one it returns `None`). Writes through this store (and its
/// clones) wait until the streams opened before them are connected (at most 10 s), so a watcher
/// sees every write made through the same store after `watch` returned. When the connection
/// drops, the task reconnects with backoff (100 ms doubling to 30 s) and resumes with
/// `Last-Event-ID`; when the server cannot resume (its log no longer reaches back, or it
/// restarted), the stream yields [`super::Change::Resync`]. A stream silent for 60 s (the
/// server sends a heartbeat every 15 s) counts as dropped. Changes that do not alter a flag
/// (writing the same flag again) are not reported.
///
/// Flags named `.` or `..` cannot be addressed (URLs drop such path segments): operations on
/// them fail with [`Error::InvalidFlag`].
#[derive(Clone)]
pub struct HttpStore {
    /// The base URL without a trailing `/` (also the store's name).
    base: Arc<str>,
    token: Option<Arc<str>>,
    client: Client,
    /// Watch streams still connecting (writes wait for them).
    watchers: crate::store::gate::WatchGate,
}

impl HttpStore {
    /// A store for the server at `url` (`http://HOST:PORT`, or `https://` with the `http-tls`
    /// feature), without a token. Nothing is sent until the first operation.
    ///
    /// # Errors
    /// [`Error::InvalidStoreUrl`] for a URL that is not `http(s)://HOST[:PORT][/PATH]`, or that
    /// holds a user name, a password, a query or a fragment (give the token with
    /// [`HttpStore::with_token`]).
    pub fn new(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidStoreUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let parsed = Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        match parsed.scheme() {
            "http" => {}
            "https" if cfg!(feature = "http-tls") => {}
            "https" => {
                return Err(invalid(
                    "https:// needs flipper's cargo feature http-tls, which this build lacks",
                ));
            }
            _ => return Err(invalid("the HTTP store takes http:// or https:// URLs")),
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                "no credentials in the URL: give the token separately (--token, FLIPPER_TOKEN)",
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid("no query or fragment allowed"));
        }
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| backend(url, e))?;
        Ok(Self {
            base: parsed.as_str().trim_end_matches('/').into(),
            token: None,
            client,
            watchers: crate::store::gate::WatchGate::new(WATCH_CONNECT_WAIT),
        })
    }

    /// Sends `token` as `Authorization: Bearer <token>` with every request.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into().into());
        self
    }

    /// The URL of a path under the base (`path` starts with `/`).
    fn url(&self, path: &str) -> Result<Url> {
        Url::parse(&format!("{}{path}", self.base)).map_err(|e| backend(&self.base, e))
    }

    /// The URL of a flag.
    fn flag_url(&self, name: &str) -> Result<Url> {
        if matches!(name, "." | "..") {
            return Err(Error::InvalidFlag {
                name: name.to_owned(),
                message: "the HTTP store cannot address a flag named . or .. (URLs drop such \
                          path segments)"
                    .to_owned(),
            });
        }
        self.url(&format!(
            "/api/v1/flags/{}",
            super::encode_path_segment(name)
        ))
    }

    /// A request with the token.
    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request that must finish within [`REQUEST_TIMEOUT`].
    async fn send(&self, request: RequestBuilder) -> Result<Response> {
        request
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, e: reqwest::Error) -> Error {
        // reqwest's message names the URL, not the token.
        backend(&self.base, e)
    }

    async fn failure(&self, response: Response, name: Option<&str>) -> Error {
        Failure::read(response).await.into_error(&self.base, name)
    }

    /// Waits (a bounded time) until every watch stream opened so far is connected.
    async fn settle_watchers(&self) {
        self.watchers.settle().await;
    }
}

/// `url` with any user name and password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

impl fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpStore")
            .field("url", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for HttpStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base)
    }
}

#[async_trait]
impl Store for HttpStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_conditional_put(true)
            .with_watch(true)
            .with_watch_external(true)
    }

    async fn get(&self, name: &str) -> Result<Option<Versioned>> {
        let response = self
            .send(self.request(Method::GET, self.flag_url(name)?))
            .await?;
        match response.status() {
            StatusCode::OK => {
                let version = reply::etag(&self.base, &response)?;
                let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
                let item = Item::deserialize(&body).map_err(|source| Error::Corrupt {
                    store: self.base.to_string(),
                    name: name.to_owned(),
                    source,
                })?;
                Ok(Some(Versioned { item, version }))
            }
            _ => match self.failure(response, Some(name)).await {
                Error::FlagDoesNotExist { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn put(&self, item: &Item, mode: PutMode) -> Result<Version> {
        let name = item.feature_name.as_str();
        let mut request = self
            .request(Method::PUT, self.flag_url(name)?)
            .header(CONTENT_TYPE, "application/json")
            .body(item.to_json());
        match &mode {
            PutMode::Overwrite => {}
            PutMode::Create => request = request.header(IF_NONE_MATCH, "*"),
            PutMode::Update(version) => {
                // A version this store did not issue can match nothing.
                let tag = HeaderValue::try_from(format!("\"{version}\"")).map_err(|_| {
                    Error::Conflict {
                        name: name.to_owned(),
                    }
                })?;
                request = request.header(IF_MATCH, tag);
            }
        }
        self.settle_watchers().await;
        let response = self.send(request).await?;
        if response.status() == StatusCode::OK {
            return reply::etag(&self.base, &response);
        }
        let precondition_failed = response.status() == StatusCode::PRECONDITION_FAILED;
        match (self.failure(response, Some(name)).await, &mode) {
            // Whatever the server's code, a failed precondition means what the mode expects.
            (_, PutMode::Create) if precondition_failed => Err(Error::AlreadyExists {
                name: name.to_owned(),
            }),
            (_, PutMode::Update(_)) if precondition_failed => Err(Error::Conflict {
                name: name.to_owned(),
            }),
            (e, _) => Err(e),
        }
    }

    async fn put_many(&self, items: &[Item]) -> Result<Vec<Version>> {
        // One request per flag: the server has no batch write, so this is not atomic.
        let mut versions = Vec::with_capacity(items.len());
        for item in items {
            versions.push(self.put(item, PutMode::Overwrite).await?);
        }
        Ok(versions)
    }

    async fn delete(&self, name: &str) -> Result<bool> {
        let request = self.request(Method::DELETE, self.flag_url(name)?);
        self.settle_watchers().await;
        let response = self.send(request).await?;
        if response.status().is_success() {
            return Ok(true);
        }
        match self.failure(response, Some(name)).await {
            Error::FlagDoesNotExist { .. } => Ok(false),
            e => Err(e),
        }
    }

    async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<ListEntry>> {
        let query = match limit {
            Some(limit) => format!("?limit={limit}&offset={offset}"),
            None => format!("?offset={offset}"),
        };
        let url = self.url(&format!("/api/v1/flags{query}"))?;
        let response = self
            .send(
                self.request(Method::GET, url)
                    .header(ACCEPT, "application/json"),
            )
            .await?;
        if response.status() != StatusCode::OK {
            return Err(self.failure(response, None).await);
        }
        let body = response.bytes().await.map_err(|e| self.unreachable(e))?;
        reply::listing(&self.base, &body)
    }

    fn watch(&self) -> Option<ChangeStream> {
        watch::start(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_flag_names_encoded() {
        let store = HttpStore::new("http://127.0.0.1:8080/").unwrap();
        assert_eq!(store.to_string(), "http://127.0.0.1:8080");
        assert_eq!(
            store.flag_url("team/a b%é").unwrap().as_str(),
            "http://127.0.0.1:8080/api/v1/flags/team%2Fa%20b%25%C3%A9"
        );
        assert!(matches!(
            store.flag_url(".."),
            Err(Error::InvalidFlag { .. })
        ));
        let prefixed = HttpStore::new("http://proxy/flipper").unwrap();
        assert_eq!(
            prefixed.url("/api/v1/stream").unwrap().as_str(),
            "http://proxy/flipper/api/v1/stream"
        );
        for (bad, why) in [
            ("http://user:secret@h:1", "no credentials"),
            ("http://h:1/?x=1", "no query"),
            ("ftp://h", "http:// or https://"),
            ("http://", "empty host"),
        ] {
            let err = HttpStore::new(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
        let debug = format!("{:?}", store.with_token("hunter2"));
        assert!(
            !debug.contains("hunter2") && debug.contains("<set>"),
            "{debug}"
        );
    }

    /// The TLS stack starts (a crypto provider, the platform's verifier) and a server that
    /// does not speak TLS is a backend failure, not a panic.
    #[cfg(feature = "http-tls")]
    #[tokio::test]
    async fn https_reaches_the_tls_handshake() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                drop(stream);
            }
        });
        let store = HttpStore::new(&format!("https://{addr}")).unwrap();
        let err = store.get("f").await.unwrap_err();
        assert!(
            matches!(err, Error::Backend { .. }) && err.is_retryable(),
            "{err}"
        );
    }
}
