//! Starting and stopping: [`serve`], [`serve_on`], [`ServeError`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use flipper::store::Store;
use std::net::TcpListener as StdListener;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::config::{SHUTDOWN_GRACE, ServerConfig};
use crate::conn::{App, serve_connections};
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
    run(listener, config.workers, state, thrift, shutdown_signal()).await
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
    run(listener, config.workers, state, thrift, shutdown).await
}

/// Serves until `shutdown`, then lets open requests (HTTP and Thrift) finish for at most
/// [`SHUTDOWN_GRACE`].
async fn run(
    listener: TcpListener,
    workers: usize,
    state: AppState,
    thrift: Thrift,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let thrift = Arc::new(thrift);
    let stop_thrift = Arc::clone(&thrift);
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Io { source })?;
    tracing::info!(%addr, store = %state.store(), workers, "flipper server listening");
    let (stopping_tx, stopping_rx) = watch::channel(false);
    let streams = state.clone();
    let app = App::new(state);
    let (listener, others) = share(listener, workers.saturating_sub(1))?;
    let (force_tx, force_rx) = watch::channel(false);
    let mut finished = Vec::with_capacity(others.len());
    for (i, other) in others.into_iter().enumerate() {
        finished.push(spawn_worker(
            i + 1,
            other,
            app.clone(),
            stopping_rx.clone(),
            force_rx.clone(),
        )?);
    }
    let signalled = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing open requests");
        // Change streams never finish on their own.
        streams.close_streams();
        stop_thrift.stop_accepting();
        let _ = stopping_tx.send(true);
    };
    let mut stopping = stopping_rx.clone();
    let server = async move {
        let here = serve_connections(listener, app, signalled);
        let ((), elsewhere) = futures_util::future::join(here, async move {
            let mut first_error = None;
            for done in finished {
                // A worker that vanished without a word panicked; its requests are gone too.
                let result = done.await.unwrap_or_else(|_| {
                    Err(io::Error::other(
                        "an HTTP worker thread stopped unexpectedly",
                    ))
                });
                first_error = first_error.or(result.err());
            }
            first_error.map_or(Ok(()), Err)
        })
        .await;
        elsewhere
    };
    let deadline = async move {
        // Ends only once the signal came and the grace period is over.
        if stopping.wait_for(|stopping| *stopping).await.is_ok() {
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
    // The other workers drop what they still serve.
    let _ = force_tx.send(true);
    // Stopped with HTTP (also when HTTP failed), its calls given the same grace.
    thrift.stop(SHUTDOWN_GRACE).await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// The listener, and `more` handles on the same socket (duplicated descriptors: every worker
/// accepts from one queue, and the port stays exclusively ours, which `SO_REUSEPORT` would not
/// guarantee).
fn share(
    listener: TcpListener,
    more: usize,
) -> Result<(TcpListener, Vec<StdListener>), ServeError> {
    if more == 0 {
        return Ok((listener, Vec::new()));
    }
    let io = |source| ServeError::Io { source };
    let std = listener.into_std().map_err(io)?;
    let others = (0..more)
        .map(|_| std.try_clone())
        .collect::<io::Result<Vec<_>>>()
        .map_err(io)?;
    Ok((TcpListener::from_std(std).map_err(io)?, others))
}

/// Starts HTTP worker `n` on its own thread and single-threaded runtime. It stops accepting
/// when `stopping` turns true, and drops its connections when `force` does; the receiver hears
/// how it ended.
fn spawn_worker(
    n: usize,
    listener: StdListener,
    app: App,
    mut stopping: watch::Receiver<bool>,
    mut force: watch::Receiver<bool>,
) -> Result<oneshot::Receiver<io::Result<()>>, ServeError> {
    let (done_tx, done_rx) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io { source })?;
    std::thread::Builder::new()
        .name(format!("flipper-http-{n}"))
        .spawn(move || {
            let result = runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                let graceful = async move {
                    let _ = stopping.wait_for(|stopping| *stopping).await;
                };
                tokio::select! {
                    () = serve_connections(listener, app, graceful) => {}
                    _ = force.wait_for(|force| *force) => {}
                }
                Ok(())
            });
            // Dropping the runtime (here) cancels whatever it still runs.
            let _ = done_tx.send(result);
        })
        .map_err(|source| ServeError::Io { source })?;
    Ok(done_rx)
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
