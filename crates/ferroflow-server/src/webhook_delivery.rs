//! Webhook delivery: the URL policy (allowed schemes; unless the operator allows it, only hosts that
//! resolve to public addresses, checked when a webhook is saved and again, pinned, at every delivery) and
//! the [`Deliverer`], which sends registry events in background tasks, never in the request that caused
//! them.
//!
//! A delivery is MLflow's: `POST` of `{"entity", "action", "timestamp", "data"}` with the headers
//! `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` (Unix seconds) and, when the webhook has a secret,
//! `X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<body>")>`. A failed
//! attempt (no connection, a timeout, 429 or 5xx) is retried `max_retries` times with exponential backoff
//! (`backoff`, doubled each time, or the receiver's `Retry-After` seconds; at most 60 s). Redirects are
//! not followed and no proxy is used, so the checked address is the one contacted.
//!
//! DNS rebinding (a name that resolves to a public address when checked and to a private one when
//! connected to) is closed twice: the delivery connects to the addresses its own check resolved (pinned,
//! no second lookup), and any lookup the HTTP client would still make goes through the same check. Names
//! are resolved by the settings' [`Resolver`], the system's unless a test plays a rebinding DNS server.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferroflow_core::webhooks::{
    example_payload, DeliveryTarget, RegistryEvents, UrlGuard, WebhookEvent, WebhookService,
};
use ferroflow_core::{Error, Result};
use ferroflow_proto::webhooks::WebhookTestResult;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Looks up the addresses of a webhook URL's host.
#[async_trait]
pub trait Resolver: Send + Sync + std::fmt::Debug {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system's resolver (`getaddrinfo`).
#[derive(Debug)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// How webhooks are delivered, from the server's flags.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// URL schemes a webhook may use (`MLFLOW_WEBHOOK_ALLOWED_SCHEMES`, default `https`).
    pub allowed_schemes: Vec<String>,
    /// Allow loopback, private and other non-public targets (`MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS`).
    pub allow_private_ips: bool,
    /// Retries after a failed attempt (`MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES`, default 3).
    pub max_retries: u32,
    /// The first backoff; each retry doubles it, up to 60 s.
    pub backoff: Duration,
    /// The timeout of one attempt (`MLFLOW_WEBHOOK_REQUEST_TIMEOUT`, default 30 s).
    pub timeout: Duration,
    /// Resolves webhook hosts ([`SystemResolver`]).
    pub resolver: Arc<dyn Resolver>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allowed_schemes: vec!["https".to_owned()],
            allow_private_ips: false,
            max_retries: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// Python's `ipaddress` `is_global`, after unwrapping IPv4 carried in IPv6 transition formats.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            let global_unicast = segments[0] & 0xe000 == 0x2000;
            let documentation = segments[0] == 0x2001 && segments[1] == 0x0db8;
            let protocol_assignments = segments[0] == 0x2001 && segments[1] < 0x0200;
            global_unicast && !documentation && !protocol_assignments
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let private = a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    !private
}

/// The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let segments = ip.segments();
    let from = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if segments[0] == 0x2002 {
        return Some(from(segments[1], segments[2]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(from(segments[6], segments[7]));
    }
    None
}

/// Where a URL points once checked: its host and the addresses to connect to.
#[derive(Debug, Clone)]
pub struct CheckedUrl {
    pub url: reqwest::Url,
    pub host: String,
    pub addresses: Vec<SocketAddr>,
}

/// The URL rules of the server's settings.
pub struct UrlPolicy {
    settings: WebhookSettings,
}

impl UrlPolicy {
    pub fn new(settings: WebhookSettings) -> Self {
        Self { settings }
    }

    /// Checks the URL as MLflow's `_validate_webhook_url` does and resolves its host.
    pub async fn resolve(&self, url: &str) -> Result<CheckedUrl> {
        if url.trim().is_empty() {
            return Err(Error::invalid_parameter(format!(
                "Webhook URL cannot be empty or just whitespace: '{url}'"
            )));
        }
        let parsed = reqwest::Url::parse(url).map_err(|error| {
            Error::invalid_parameter(format!("Invalid webhook URL '{url}': {error}"))
        })?;
        if !self
            .settings
            .allowed_schemes
            .iter()
            .any(|scheme| scheme == parsed.scheme())
        {
            return Err(Error::invalid_parameter(format!(
                "Invalid webhook URL scheme: '{}'. Allowed schemes are: {}.",
                parsed.scheme(),
                self.settings.allowed_schemes.join(", ")
            )));
        }
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| {
                Error::invalid_parameter(format!("Webhook URL must include a hostname: '{url}'"))
            })?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addresses = match host.parse::<IpAddr>() {
            Ok(ip) => {
                let addresses = vec![SocketAddr::new(ip, port)];
                self.refuse_non_public(&host, &addresses)?;
                addresses
            }
            Err(_) => self.lookup(&host, port).await?,
        };
        Ok(CheckedUrl {
            url: parsed,
            host,
            addresses,
        })
    }
}

impl UrlPolicy {
    /// The checked addresses of a host name: resolved, not empty, and public unless private ones are
    /// allowed.
    async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>> {
        let addresses = self
            .settings
            .resolver
            .lookup(host, port)
            .await
            .map_err(|error| {
                Error::invalid_parameter(format!(
                    "Cannot resolve Webhook URL hostname '{host}': {error}"
                ))
            })?;
        if addresses.is_empty() {
            return Err(Error::invalid_parameter(format!(
                "Cannot resolve Webhook URL hostname '{host}'"
            )));
        }
        self.refuse_non_public(host, &addresses)?;
        Ok(addresses)
    }

    fn refuse_non_public(&self, host: &str, addresses: &[SocketAddr]) -> Result<()> {
        if self.settings.allow_private_ips {
            return Ok(());
        }
        match addresses.iter().find(|address| !is_public_ip(address.ip())) {
            Some(address) => Err(Error::invalid_parameter(format!(
                "Webhook URL must not resolve to a non-public IP address. '{host}' resolves to {}.",
                address.ip()
            ))),
            None => Ok(()),
        }
    }
}

/// The HTTP client's resolver: any lookup it makes gets the same check as the URL did. Deliveries pin
/// the checked addresses, so it only stands behind the pin.
struct CheckedDns(Arc<UrlPolicy>);

impl reqwest::dns::Resolve for CheckedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addresses = policy
                .lookup(name.as_str(), 0)
                .await
                .map_err(|error| Box::new(std::io::Error::other(error.message)))?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[async_trait]
impl UrlGuard for UrlPolicy {
    async fn check(&self, url: &str) -> Result<()> {
        self.resolve(url).await.map(|_| ())
    }
}

/// `v1,<base64 HMAC-SHA256(secret, "<delivery id>.<timestamp>.<body>")>`.
pub fn signature(secret: &str, delivery_id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(format!("{delivery_id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// UTC now as Python's `datetime.now(timezone.utc).isoformat()` writes it.
fn iso_timestamp_now() -> String {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = elapsed.as_secs();
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let remainder = seconds % 86_400;
    // Howard Hinnant's civil-from-days.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        remainder / 3600,
        remainder % 3600 / 60,
        remainder % 60,
        elapsed.subsec_micros()
    )
}

/// Background deliveries in flight at most at once (MLflow's default pool size); others wait.
const MAX_CONCURRENT_DELIVERIES: usize = 10;

/// Sends events to the webhooks subscribed to them.
#[derive(Clone)]
pub struct Deliverer {
    service: WebhookService,
    policy: Arc<UrlPolicy>,
    settings: WebhookSettings,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Deliverer {
    pub fn new(service: WebhookService, policy: Arc<UrlPolicy>, settings: WebhookSettings) -> Self {
        Self {
            service,
            policy,
            settings,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_DELIVERIES)),
        }
    }

    /// Sends one event to one target, with retries; the outcome of the last attempt.
    pub async fn deliver(
        &self,
        target: &DeliveryTarget,
        event: WebhookEvent,
        payload: &serde_json::Value,
    ) -> WebhookTestResult {
        match self.try_deliver(target, event, payload).await {
            Ok((status, body)) => WebhookTestResult {
                success: status < 400,
                response_status: Some(i64::from(status)),
                response_body: Some(body),
                error_message: None,
            },
            Err(message) => WebhookTestResult {
                success: false,
                response_status: None,
                response_body: None,
                error_message: Some(format!("Failed to test webhook: {message}")),
            },
        }
    }

    async fn try_deliver(
        &self,
        target: &DeliveryTarget,
        event: WebhookEvent,
        payload: &serde_json::Value,
    ) -> std::result::Result<(u16, String), String> {
        let checked = self
            .policy
            .resolve(&target.url)
            .await
            .map_err(|error| error.message)?;
        let mut builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedDns(self.policy.clone())))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.settings.timeout);
        if checked.host.parse::<IpAddr>().is_err() {
            // Connect to the addresses that were checked, not to a second lookup's answer.
            builder = builder.resolve_to_addrs(&checked.host, &checked.addresses);
        }
        let client = builder.build().map_err(|error| error.to_string())?;
        let body = serde_json::json!({
            "entity": event.entity.value(),
            "action": event.action.value(),
            "timestamp": iso_timestamp_now(),
            "data": payload,
        })
        .to_string();
        let mut attempt: u32 = 0;
        loop {
            let delivery_id = uuid::Uuid::new_v4().to_string();
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
                .to_string();
            let mut request = client
                .post(checked.url.clone())
                .header("Content-Type", "application/json")
                .header("X-MLflow-Delivery-Id", &delivery_id)
                .header("X-MLflow-Timestamp", &timestamp)
                .body(body.clone());
            if let Some(secret) = &target.secret {
                request = request.header(
                    "X-MLflow-Signature",
                    signature(secret, &delivery_id, &timestamp, &body),
                );
            }
            let outcome = request.send().await;
            let retryable = match &outcome {
                Ok(response) => matches!(response.status().as_u16(), 429 | 500 | 502 | 503 | 504),
                Err(error) => error.is_connect() || error.is_timeout() || error.is_request(),
            };
            if !retryable || attempt >= self.settings.max_retries {
                return match outcome {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let text = response.text().await.unwrap_or_default();
                        Ok((status, text))
                    }
                    Err(error) => Err(error.to_string()),
                };
            }
            // A receiver's `Retry-After: <seconds>` wins over the backoff, as urllib3 (MLflow) does.
            let retry_after = outcome.as_ref().ok().and_then(|response| {
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)?
                    .to_str()
                    .ok()?
                    .trim()
                    .parse::<u64>()
                    .ok()
            });
            let factor = 2u32.saturating_pow(attempt);
            let delay = retry_after
                .map(Duration::from_secs)
                .unwrap_or_else(|| self.settings.backoff.saturating_mul(factor))
                .min(Duration::from_secs(60));
            tracing::info!(url = %checked.url, attempt, "webhook delivery failed, retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// `POST /webhooks/{webhook_id}/test`: sends the event's example payload at once.
    pub async fn test(&self, target: &DeliveryTarget, event: WebhookEvent) -> WebhookTestResult {
        self.deliver(target, event, &example_payload(event)).await
    }
}

impl RegistryEvents for Deliverer {
    fn emit(&self, event: WebhookEvent, payload: serde_json::Value) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let deliverer = self.clone();
        runtime.spawn(async move {
            let targets = match deliverer.service.targets_for(event).await {
                Ok(targets) => targets,
                Err(error) => {
                    tracing::error!(%error, "cannot list the webhooks of an event");
                    return;
                }
            };
            for target in targets {
                let deliverer = deliverer.clone();
                let payload = payload.clone();
                tokio::spawn(async move {
                    let Ok(_permit) = deliverer.in_flight.clone().acquire_owned().await else {
                        return;
                    };
                    let result = deliverer.deliver(&target, event, &payload).await;
                    if !result.success {
                        tracing::warn!(
                            url = %target.url,
                            status = ?result.response_status,
                            error = ?result.error_message,
                            "webhook delivery failed"
                        );
                    }
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
        ] {
            assert!(!is_public_ip(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public_ip(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn signatures_match_mlflow() {
        // Python: base64.b64encode(hmac.new(b"secret", b"id.1700000000.{}", hashlib.sha256).digest())
        assert_eq!(
            signature("secret", "id", "1700000000", "{}"),
            "v1,GBemBzTgbKoVEGKycqyY3615LbdJbhFLE1oQk+zZ+lo="
        );
    }

    #[test]
    fn timestamps_are_iso() {
        let now = iso_timestamp_now();
        assert_eq!(now.len(), "2026-11-26T10:47:31.123456+00:00".len(), "{now}");
        assert!(now.ends_with("+00:00"));
    }

    #[tokio::test]
    async fn url_policy() {
        let policy = UrlPolicy::new(WebhookSettings::default());
        assert_eq!(
            policy.check("http://8.8.8.8/x").await.unwrap_err().message,
            "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."
        );
        assert_eq!(
            policy
                .check("https://127.0.0.1/x")
                .await
                .unwrap_err()
                .message,
            "Webhook URL must not resolve to a non-public IP address. '127.0.0.1' resolves to 127.0.0.1."
        );
        assert!(policy.check("https://8.8.8.8/hook").await.is_ok());
        let open = UrlPolicy::new(WebhookSettings {
            allowed_schemes: vec!["http".into(), "https".into()],
            allow_private_ips: true,
            ..WebhookSettings::default()
        });
        assert!(open.check("http://127.0.0.1:9/x").await.is_ok());
    }
}
