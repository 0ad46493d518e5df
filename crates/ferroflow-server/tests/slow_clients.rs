//! `serve()` over real sockets: slow clients (slowloris) are disconnected after the header read timeout
//! while others are served, the connection cap holds, h2c still works and shutdown is graceful.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod common;

use ferroflow_server::SecuritySettings;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Running {
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    _directory: tempfile::TempDir,
}

async fn start(header_read_timeout: Duration, max_connections: usize) -> Running {
    let directory = tempfile::tempdir().unwrap();
    let state = common::test_state(directory.path())
        .await
        .with_security(SecuritySettings {
            header_read_timeout,
            max_connections,
            ..SecuritySettings::default()
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(ferroflow_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Running {
        address,
        stop: Some(stop),
        served,
        _directory: directory,
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

/// Sends a whole `GET /health` on a new connection; the answer's status line.
async fn health(address: SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(HEALTH).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// A connection that has had one `GET /health` answered and is kept alive.
async fn kept_alive(address: SocketAddr) -> TcpStream {
    let mut kept = TcpStream::connect(address).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut status = [0u8; 15];
    kept.read_exact(&mut status).await.unwrap();
    assert_eq!(&status, b"HTTP/1.1 200 OK");
    kept
}

/// Reads until the server closes the connection; how long that took and what it sent.
async fn wait_for_close(stream: &mut TcpStream, at_most: Duration) -> (Duration, Vec<u8>) {
    let began = Instant::now();
    let mut received = Vec::new();
    tokio::time::timeout(at_most, stream.read_to_end(&mut received))
        .await
        .expect("the server kept the slow connection open")
        .ok();
    (began.elapsed(), received)
}

#[tokio::test]
async fn a_client_that_trickles_its_header_is_disconnected_while_others_are_served() {
    let server = start(Duration::from_secs(1), 1000).await;
    let mut slow = TcpStream::connect(server.address).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    let began = Instant::now();
    // Another byte every 300 ms does not reset the clock.
    let mut closed_early = false;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        closed_early |= slow.write_all(b"h").await.is_err();
        assert_eq!(health(server.address).await, "HTTP/1.1 200 OK");
    }
    assert!(!closed_early);
    let (_, received) = wait_for_close(&mut slow, Duration::from_secs(10)).await;
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // hyper answers 408 or nothing; never the request the header would have made.
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains("200 OK"), "{text}");
    assert_eq!(health(server.address).await, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn a_client_that_sends_nothing_or_part_of_the_h2_preface_is_disconnected() {
    let server = start(Duration::from_secs(1), 1000).await;
    let mut silent = TcpStream::connect(server.address).await.unwrap();
    let mut half_h2 = TcpStream::connect(server.address).await.unwrap();
    half_h2.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let (waited, received) = wait_for_close(&mut silent, Duration::from_secs(10)).await;
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(received.is_empty());
    let (_, received) = wait_for_close(&mut half_h2, Duration::from_secs(10)).await;
    assert!(received.is_empty());
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout_too() {
    let server = start(Duration::from_secs(1), 1000).await;
    let mut kept = kept_alive(server.address).await;
    let (waited, _) = wait_for_close(&mut kept, Duration::from_secs(10)).await;
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = start(Duration::from_secs(2), 1).await;
    // Takes the only slot and holds it until the header timeout closes it.
    let _holder = TcpStream::connect(server.address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = Instant::now();
    assert_eq!(health(server.address).await, "HTTP/1.1 200 OK");
    let waited = began.elapsed();
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
}

#[tokio::test]
async fn h2c_with_prior_knowledge_is_served() {
    use http_body_util::{BodyExt, Empty};
    let server = start(Duration::from_secs(5), 1000).await;
    let stream = TcpStream::connect(server.address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request =
        axum::http::Request::get(format!("http://localhost:{}/health", server.address.port()))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), axum::http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"OK");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let mut server = start(Duration::from_secs(30), 1000).await;
    let _kept = kept_alive(server.address).await;
    let began = Instant::now();
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut server.served)
        .await
        .expect("serve() waited for an idle keep-alive connection")
        .unwrap()
        .unwrap();
    assert!(began.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(server.address).await.is_err());
}
