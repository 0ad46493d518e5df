//! Attack class 14, the DNS-rebinding variant: a webhook host name that resolves to a public address when
//! it is checked and to 127.0.0.1 afterwards. A resolver seam plays the attacker's DNS server; a local
//! listener on 127.0.0.1 stands for the internal service and must never see a connection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

mod common;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use common::TestApp;
use ferroflow_core::fernet::FernetKey;
use ferroflow_server::webhook_delivery::Resolver;
use ferroflow_server::WebhookSettings;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A public address the first `public_answers` lookups return (nothing the test controls listens
/// there; a pinned delivery fails to connect or times out, after at most a second).
const PUBLIC: IpAddr = IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8));

/// The attacker's DNS server: public for the first `public_answers` lookups, loopback after.
#[derive(Debug)]
struct Rebinding {
    public_answers: usize,
    lookups: AtomicUsize,
}

#[async_trait]
impl Resolver for Rebinding {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        assert_eq!(host, "rebind.test");
        let lookup = self.lookups.fetch_add(1, Ordering::SeqCst);
        let ip = if lookup < self.public_answers {
            PUBLIC
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        Ok(vec![SocketAddr::new(ip, port)])
    }
}

/// The internal service: counts the connections it accepts.
async fn internal_service() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, accepted)
}

async fn app_with(resolver: Arc<Rebinding>) -> TestApp {
    let directory = tempfile::tempdir().unwrap();
    let settings = WebhookSettings {
        allowed_schemes: vec!["http".into(), "https".into()],
        allow_private_ips: false,
        max_retries: 0,
        timeout: Duration::from_secs(1),
        resolver,
        ..WebhookSettings::default()
    };
    let state = common::test_state(directory.path())
        .await
        .with_webhook_settings(settings, FernetKey::generate());
    TestApp {
        router: ferroflow_server::app(state),
        directory,
    }
}

/// Saves a webhook to `http://rebind.test:<port>/hook` (one lookup, public) and sends its test event.
async fn save_and_test(app: &TestApp, port: u16) -> Value {
    let created = app
        .send(
            Method::POST,
            "/api/2.0/mlflow/webhooks",
            Some(
                json!({"name": "rebind", "url": format!("http://rebind.test:{port}/hook"),
                        "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let webhook_id = created.json()["webhook"]["webhook_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tested = app
        .send(
            Method::POST,
            &format!("/api/2.0/mlflow/webhooks/{webhook_id}/test"),
            Some(json!({})),
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.text);
    tested.json()["result"].clone()
}

#[tokio::test]
async fn a_name_that_turns_private_after_it_was_saved_is_refused_at_delivery() {
    let (port, accepted) = internal_service().await;
    let resolver = Arc::new(Rebinding {
        public_answers: 1,
        lookups: AtomicUsize::new(0),
    });
    let app = app_with(resolver.clone()).await;
    let result = save_and_test(&app, port).await;
    assert_eq!(result["success"], false);
    assert_eq!(
        result["error_message"],
        "Failed to test webhook: Webhook URL must not resolve to a non-public IP address. \
         'rebind.test' resolves to 127.0.0.1."
    );
    assert!(result.get("response_status").is_none());
    // The save's lookup and the delivery's own check; the delivery stopped there.
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_delivery_connects_to_the_address_it_checked_not_a_second_lookup() {
    let (port, accepted) = internal_service().await;
    // Public for the save and for the delivery's check; any later lookup (the HTTP client resolving the
    // name again to connect) would answer 127.0.0.1, where the internal service listens.
    let resolver = Arc::new(Rebinding {
        public_answers: 2,
        lookups: AtomicUsize::new(0),
    });
    let app = app_with(resolver.clone()).await;
    let result = save_and_test(&app, port).await;
    // Sent to 8.8.8.8:<port>, where nothing answers: no connection or a timeout, never a response.
    assert_eq!(result["success"], false, "{result}");
    assert!(result.get("response_status").is_none(), "{result}");
    assert!(
        result["error_message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to test webhook: error sending request"),
        "{result}"
    );
    assert_eq!(
        resolver.lookups.load(Ordering::SeqCst),
        2,
        "the delivery looked the name up again instead of using the checked address"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}
