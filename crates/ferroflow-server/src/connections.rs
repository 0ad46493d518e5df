//! Accepting connections: HTTP/1.1 and h2c (HTTP/2 with prior knowledge) on one port, the peer address
//! as `ConnectInfo<SocketAddr>` for every request, graceful shutdown, and the slow-client limits of
//! [`SecuritySettings`](crate::SecuritySettings):
//!
//! - **Header read timeout** (slowloris): the connection is closed when a client has not sent a request's
//!   whole header `header_read_timeout` after the connection opened, or after the previous answer on a
//!   kept-alive connection (so an idle keep-alive connection is closed after it too). Until the first bytes
//!   tell HTTP/1.1 from the 24-byte HTTP/2 preface this is checked here; from then on, for HTTP/1.1, by
//!   hyper's `header_read_timeout`. An HTTP/2 connection is pinged every `header_read_timeout` and closed
//!   when a ping goes unanswered for 20 s.
//! - **Connection cap**: at most `max_connections` connections are served at once; while all are taken,
//!   the server stops accepting and new connections wait in the kernel's listen backlog.
//!
//! Slowly sent request bodies are not bounded here: JSON handlers fall under the request timeout
//! (`security.rs`), artifact uploads stream at the client's pace.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The HTTP/2 connection preface a h2c client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long an HTTP/2 ping may go unanswered before the connection is closed.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl From<&crate::SecuritySettings> for ConnectionLimits {
    fn from(settings: &crate::SecuritySettings) -> Self {
        Self {
            header_read_timeout: settings.header_read_timeout,
            max_connections: settings.max_connections.max(1),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits for the
/// requests in flight to be answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let builder = Arc::new(builder);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    wait_after_accept_error(&error).await;
                    continue;
                }
            },
        };
        let builder = builder.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            if !opening_arrives(&stream, limits.header_read_timeout).await {
                tracing::debug!(%peer, "connection closed: nothing sent in time");
                return;
            }
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    router.clone().oneshot(request.map(Body::new))
                });
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Waits until the client has sent enough to tell HTTP/1.1 (any byte that does not start the HTTP/2
/// preface) from h2c (the whole preface), within `timeout`; false when it did not or hung up.
async fn opening_arrives(stream: &TcpStream, timeout: Duration) -> bool {
    let sniff = async {
        let mut opening = [0u8; H2_PREFACE.len()];
        loop {
            match stream.peek(&mut opening).await {
                Ok(0) | Err(_) => return false,
                Ok(read)
                    if read == H2_PREFACE.len() || !H2_PREFACE.starts_with(&opening[..read]) =>
                {
                    return true
                }
                // A prefix of the HTTP/2 preface: `peek` would answer the same bytes at once again.
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::time::timeout(timeout, sniff).await.unwrap_or(false)
}

/// Errors of one connection (the client gave up before it was accepted) are skipped; others (out of
/// file descriptors) are logged and retried after a second, as axum does.
async fn wait_after_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
