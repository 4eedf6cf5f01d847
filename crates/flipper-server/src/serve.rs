//! Starting and stopping: [`serve`], [`serve_on`], [`ServeError`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use flipper::store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{SHUTDOWN_GRACE, ServerConfig};
use crate::state::AppState;
use crate::thrift::Thrift;

/// Why the server did not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A public address without the tokens that protect it.
    #[error(
        "refusing to listen on {addr} without {missing}: anyone who can reach it could change \
         flags; set the tokens (FLIPPER_ADMIN_TOKEN, FLIPPER_SDK_TOKEN), listen on a loopback \
         address (127.0.0.1), or pass --insecure"
    )]
    Insecure {
        /// The address.
        addr: SocketAddr,
        /// The missing option(s).
        missing: &'static str,
    },

    /// A setting that cannot be used.
    #[error("{0}")]
    Config(String),

    /// The flags could not be loaded at start, for a reason that retrying will not fix.
    #[error("cannot load the flags: {source}")]
    Store {
        /// The store's error.
        #[source]
        source: flipper::Error,
    },

    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Serving failed.
    #[error("server error: {source}")]
    Io {
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl ServeError {
    /// Whether the configuration is at fault ([`ServeError::Insecure`], [`ServeError::Config`]).
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Insecure { .. } | Self::Config(_))
    }
}

/// Serves the flags of `store` on `config.listen` until SIGINT or SIGTERM
/// ([`shutdown_signal`]).
///
/// The configuration is checked and the flags are loaded before the address is bound, so a
/// bad setting or an unreadable store fails fast.
///
/// # Errors
/// See [`ServeError`].
pub async fn serve(config: ServerConfig, store: Arc<dyn Store>) -> Result<(), ServeError> {
    config.validate(config.listen)?;
    let state = AppState::start(&config, store).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let thrift = Thrift::start(config.thrift_listen, &state).await?;
    run(listener, state, thrift, shutdown_signal()).await
}

/// Serves the flags of `store` on an already bound listener (its address is the one checked,
/// not `config.listen`) until `shutdown` completes. Tests bind `127.0.0.1:0` and pass a
/// channel.
///
/// # Errors
/// See [`ServeError`].
pub async fn serve_on(
    listener: TcpListener,
    config: ServerConfig,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Io { source })?;
    config.validate(addr)?;
    let state = AppState::start(&config, store).await?;
    let thrift = Thrift::start(config.thrift_listen, &state).await?;
    run(listener, state, thrift, shutdown).await
}

/// Serves until `shutdown`, then lets open requests (HTTP and Thrift) finish for at most
/// [`SHUTDOWN_GRACE`].
async fn run(
    listener: TcpListener,
    state: AppState,
    thrift: Thrift,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let thrift = Arc::new(thrift);
    let stop_thrift = Arc::clone(&thrift);
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Io { source })?;
    tracing::info!(%addr, store = %state.store(), "flipper server listening");
    let (stopping_tx, mut stopping_rx) = watch::channel(false);
    let streams = state.clone();
    let signalled = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing open requests");
        // Change streams never finish on their own.
        streams.close_streams();
        stop_thrift.stop_accepting();
        let _ = stopping_tx.send(true);
    };
    let server = axum::serve(listener, crate::api::router(state)).with_graceful_shutdown(signalled);
    let deadline = async move {
        // Ends only once the signal came and the grace period is over.
        if stopping_rx.wait_for(|stopping| *stopping).await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let served = tokio::select! {
        result = server => result.map_err(|source| ServeError::Io { source }),
        () = deadline => {
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "requests still open after the grace period: stopping anyway"
            );
            Ok(())
        }
    };
    // Stopped with HTTP (also when HTTP failed), its calls given the same grace.
    thrift.stop(SHUTDOWN_GRACE).await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM. A signal that cannot be listened for is
/// logged and ignored.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
