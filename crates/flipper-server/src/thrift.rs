//! `--thrift-listen`: flipper-client's Thrift `FeatureFlagStore` service over the server's
//! store ([`flipper::store::ThriftServer`], cargo feature `thrift`), started and stopped with
//! the HTTP server.
//!
//! The service itself lives in the library: it needs nothing from this crate but the store,
//! and applications can serve it without axum. The server serves it over the same
//! (instrumented) store as its API, so its writes are timed like the API's and reach the live
//! flags and the change stream through the store's watch, as every write does.

use std::net::SocketAddr;
use std::time::Duration;

use crate::serve::ServeError;
use crate::state::AppState;

/// The Thrift service, when one was asked for.
#[derive(Debug, Default)]
pub(crate) struct Thrift {
    #[cfg(feature = "thrift")]
    server: Option<flipper::store::ThriftServer>,
}

impl Thrift {
    /// Binds `listen` (when set) and serves the state's store there.
    pub(crate) async fn start(
        listen: Option<SocketAddr>,
        state: &AppState,
    ) -> Result<Self, ServeError> {
        let Some(addr) = listen else {
            return Ok(Self::default());
        };
        #[cfg(feature = "thrift")]
        {
            let bind = |source| ServeError::Bind { addr, source };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind)?;
            let server = flipper::store::ThriftServer::start(
                listener,
                std::sync::Arc::clone(state.store()),
                flipper::store::ThriftServerOptions::default(),
            )
            .map_err(bind)?;
            Ok(Self {
                server: Some(server),
            })
        }
        #[cfg(not(feature = "thrift"))]
        {
            let _ = state;
            Err(ServeError::Config(format!(
                "cannot serve Thrift on {addr}: this build has no `thrift` cargo feature"
            )))
        }
    }

    /// Stops accepting; each connection ends after the call it is serving.
    pub(crate) fn stop_accepting(&self) {
        #[cfg(feature = "thrift")]
        if let Some(server) = &self.server {
            server.stop_accepting();
        }
    }

    /// Stops, waiting at most `grace` for the connections' calls.
    pub(crate) async fn stop(&self, grace: Duration) {
        #[cfg(feature = "thrift")]
        if let Some(server) = &self.server {
            server.shutdown(grace).await;
        }
        let _ = grace;
    }
}
