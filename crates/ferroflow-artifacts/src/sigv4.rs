//! AWS Signature Version 4 in the query string ("presigned URLs"), for S3 only.
//!
//! `object_store`'s `Signer::signed_url` presigns the URL of an object, but cannot add query parameters
//! before signing, and a part of a multipart upload is `PUT <object>?partNumber=N&uploadId=ID`: both
//! parameters must be inside the signature. This module signs such a URL the way `object_store` and
//! botocore do (<https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>); the
//! URL itself and the credentials come from `object_store`.
//!
//! Only the `host` header is signed and the payload is `UNSIGNED-PAYLOAD`, so the client sends the part
//! with no extra header.

use chrono::{DateTime, Utc};
use object_store::aws::AwsCredential;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::{digest, hmac};
use std::time::Duration;
use url::Url;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "s3";

/// Everything but RFC 3986's unreserved characters is encoded in a canonical query.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Adds the SigV4 query parameters to `url` (which may already hold its own, like `uploadId`), so that
/// `method` on it is allowed for `expires_in` from `date`.
pub(crate) fn presign(
    url: &mut Url,
    method: &str,
    credential: &AwsCredential,
    region: &str,
    date: DateTime<Utc>,
    expires_in: Duration,
) {
    let scope = format!("{}/{region}/{SERVICE}/aws4_request", date.format("%Y%m%d"));
    let timestamp = date.format("%Y%m%dT%H%M%SZ").to_string();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("X-Amz-Algorithm", ALGORITHM)
            .append_pair(
                "X-Amz-Credential",
                &format!("{}/{scope}", credential.key_id),
            )
            .append_pair("X-Amz-Date", &timestamp)
            .append_pair("X-Amz-Expires", &expires_in.as_secs().to_string())
            .append_pair("X-Amz-SignedHeaders", "host");
        if let Some(token) = &credential.token {
            query.append_pair("X-Amz-Security-Token", token);
        }
    }
    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let canonical_request = format!(
        "{method}\n{path}\n{query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD",
        path = url.path(),
        query = canonical_query(url),
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let signature = hex(&hmac_sha256(
        &signing_key(&credential.secret_key, date, region),
        string_to_sign.as_bytes(),
    ));
    url.query_pairs_mut()
        .append_pair("X-Amz-Signature", &signature);
}

/// The query's pairs, each name and value encoded, sorted by name then value.
fn canonical_query(url: &Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| {
            (
                utf8_percent_encode(&name, QUERY_ENCODE).to_string(),
                utf8_percent_encode(&value, QUERY_ENCODE).to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn signing_key(secret_key: &str, date: DateTime<Utc>, region: &str) -> Vec<u8> {
    let date_key = hmac_sha256(
        format!("AWS4{secret_key}").as_bytes(),
        date.format("%Y%m%d").to_string().as_bytes(),
    );
    let region_key = hmac_sha256(&date_key, region.as_bytes());
    let service_key = hmac_sha256(&region_key, SERVICE.as_bytes());
    hmac_sha256(&service_key, b"aws4_request")
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, message).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn credential(token: Option<&str>) -> AwsCredential {
        AwsCredential {
            key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
            token: token.map(str::to_owned),
        }
    }

    fn query_value(url: &Url, name: &str) -> String {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    }

    /// The example of AWS's documentation ("Authenticating Requests: Using Query Parameters").
    #[test]
    fn matches_the_aws_documentation_example() {
        let mut url = Url::parse("https://examplebucket.s3.amazonaws.com/test.txt").unwrap();
        let date = Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap();
        presign(
            &mut url,
            "GET",
            &credential(None),
            "us-east-1",
            date,
            Duration::from_secs(86400),
        );
        assert_eq!(
            query_value(&url, "X-Amz-Signature"),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert_eq!(
            query_value(&url, "X-Amz-Credential"),
            "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
        );
    }

    /// An URL that `object_store`'s own signer presigned gets the same signature from this module, with
    /// and without a session token: the two agree on canonicalisation.
    #[tokio::test]
    async fn agrees_with_object_store_signer() {
        use object_store::signer::Signer;
        for token in [None, Some("session/token+with=odd chars")] {
            let mut builder = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name("bucket")
                .with_region("eu-west-3")
                .with_endpoint("http://127.0.0.1:9")
                .with_allow_http(true)
                .with_access_key_id("AKIAIOSFODNN7EXAMPLE")
                .with_secret_access_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
            if let Some(token) = token {
                builder = builder.with_token(token);
            }
            let s3 = builder.build().unwrap();
            let location = object_store::path::Path::from("prefix/a b/ü~[1].bin");
            let signed = s3
                .signed_url(http::Method::PUT, &location, Duration::from_secs(3600))
                .await
                .unwrap();
            let date = chrono::NaiveDateTime::parse_from_str(
                &query_value(&signed, "X-Amz-Date"),
                "%Y%m%dT%H%M%SZ",
            )
            .unwrap()
            .and_utc();
            let mut ours = signed.clone();
            ours.set_query(None);
            presign(
                &mut ours,
                "PUT",
                &credential(token),
                "eu-west-3",
                date,
                Duration::from_secs(3600),
            );
            assert_eq!(
                query_value(&ours, "X-Amz-Signature"),
                query_value(&signed, "X-Amz-Signature"),
                "token {token:?}"
            );
        }
    }

    #[test]
    fn extra_parameters_are_signed_in_order() {
        let date = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        let sign = |query: &str| {
            let mut url = Url::parse(&format!("http://127.0.0.1:9000/bucket/key?{query}")).unwrap();
            presign(
                &mut url,
                "PUT",
                &credential(None),
                "us-east-1",
                date,
                Duration::from_secs(60),
            );
            query_value(&url, "X-Amz-Signature")
        };
        // The order in the URL does not matter; the values do.
        assert_eq!(
            sign("partNumber=1&uploadId=abc"),
            sign("uploadId=abc&partNumber=1")
        );
        assert_ne!(
            sign("partNumber=1&uploadId=abc"),
            sign("partNumber=2&uploadId=abc")
        );
    }
}
