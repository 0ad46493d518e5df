//! Fernet tokens (AES-128-CBC with PKCS#7 padding, authenticated by HMAC-SHA256), the format in which
//! MLflow stores webhook secrets (`webhooks.secret`, keyed by `MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`), so
//! a secret written by either server is read by the other when both share the key.
//!
//! A key is 32 bytes in URL-safe base64: the first half signs, the second encrypts. A token is URL-safe
//! base64 of `0x80 | timestamp (8 bytes, big endian) | IV (16) | ciphertext | HMAC (32)`, the HMAC taken
//! over everything before it.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type Encryptor = cbc::Encryptor<aes::Aes128>;
type Decryptor = cbc::Decryptor<aes::Aes128>;
type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 0x80;

/// Why a key or token was refused. Messages never include key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FernetError {
    #[error("the webhook secret encryption key must be 32 bytes in URL-safe base64")]
    InvalidKey,
    #[error("the stored webhook secret cannot be decrypted with this key")]
    InvalidToken,
}

/// A Fernet key.
#[derive(Clone)]
pub struct FernetKey {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl std::fmt::Debug for FernetKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("FernetKey(..)")
    }
}

impl FernetKey {
    /// Reads a key in Fernet's URL-safe base64 form.
    pub fn parse(encoded: &str) -> Result<Self, FernetError> {
        let bytes = URL_SAFE
            .decode(encoded.trim())
            .map_err(|_| FernetError::InvalidKey)?;
        if bytes.len() != 32 {
            return Err(FernetError::InvalidKey);
        }
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        signing.copy_from_slice(&bytes[..16]);
        encryption.copy_from_slice(&bytes[16..]);
        Ok(Self {
            signing,
            encryption,
        })
    }

    /// A new random key (what MLflow uses when no key is configured: secrets then live as long as the
    /// process).
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        rng.fill_bytes(&mut signing);
        rng.fill_bytes(&mut encryption);
        Self {
            signing,
            encryption,
        }
    }

    fn mac(&self) -> Result<HmacSha256, FernetError> {
        // HMAC accepts keys of any length; the error is never seen.
        <HmacSha256 as Mac>::new_from_slice(&self.signing).map_err(|_| FernetError::InvalidKey)
    }

    /// Encrypts `plaintext` into a token stamped with `timestamp` (seconds since the epoch).
    pub fn encrypt(&self, plaintext: &str, timestamp: u64) -> Result<String, FernetError> {
        let mut iv = [0u8; 16];
        rand::rng().fill_bytes(&mut iv);
        self.encrypt_with_iv(plaintext, timestamp, iv)
    }

    fn encrypt_with_iv(
        &self,
        plaintext: &str,
        timestamp: u64,
        iv: [u8; 16],
    ) -> Result<String, FernetError> {
        let ciphertext = Encryptor::new(&self.encryption.into(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
        let mut token = Vec::with_capacity(1 + 8 + 16 + ciphertext.len() + 32);
        token.push(VERSION);
        token.extend_from_slice(&timestamp.to_be_bytes());
        token.extend_from_slice(&iv);
        token.extend_from_slice(&ciphertext);
        let mut mac = self.mac()?;
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        Ok(URL_SAFE.encode(token))
    }

    /// Decrypts a token made with this key.
    pub fn decrypt(&self, token: &str) -> Result<String, FernetError> {
        let bytes = URL_SAFE
            .decode(token.trim())
            .map_err(|_| FernetError::InvalidToken)?;
        if bytes.len() < 1 + 8 + 16 + 16 + 32 || bytes[0] != VERSION {
            return Err(FernetError::InvalidToken);
        }
        let (signed, signature) = bytes.split_at(bytes.len() - 32);
        let mut mac = self.mac()?;
        mac.update(signed);
        mac.verify_slice(signature)
            .map_err(|_| FernetError::InvalidToken)?;
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&signed[9..25]);
        let plaintext = Decryptor::new(&self.encryption.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&signed[25..])
            .map_err(|_| FernetError::InvalidToken)?;
        String::from_utf8(plaintext).map_err(|_| FernetError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with Python's `cryptography.fernet.Fernet` (the library MLflow uses).
    const KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

    #[test]
    fn round_trip_and_tamper() {
        let key = FernetKey::parse(KEY).unwrap();
        let token = key.encrypt("s3cret ✓", 1_700_000_000).unwrap();
        assert_eq!(key.decrypt(&token).unwrap(), "s3cret ✓");
        let other = FernetKey::generate();
        assert_eq!(other.decrypt(&token), Err(FernetError::InvalidToken));
        let mut tampered = URL_SAFE.decode(&token).unwrap();
        let last = tampered.len() - 40;
        tampered[last] ^= 1;
        assert_eq!(
            key.decrypt(&URL_SAFE.encode(tampered)),
            Err(FernetError::InvalidToken)
        );
        assert_eq!(
            FernetKey::parse("short").err(),
            Some(FernetError::InvalidKey)
        );
    }

    #[test]
    fn reads_tokens_of_python_cryptography() {
        let key = FernetKey::parse(KEY).unwrap();
        assert_eq!(
            key.decrypt(
                "gAAAAABrCA3pzk9vLQ2jHRc2yg8jhwq8VK5LZQz0IdftgAVUuNcFMztCv-BjH7LZ_NiC3AdViCFD2oqYla7LHkRu2XSMIugR_g=="
            )
            .unwrap(),
            "from python"
        );
    }
}
