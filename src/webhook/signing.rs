//! The `Commerce-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>` of `"<t>." + body`,
//! keyed with the secret's characters as shown at registration (not the bytes they encode).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header's value for `body` sent at `t`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A new secret: 32 random bytes, hex.
pub fn new_secret() -> String {
    use rand::Rng;
    hex::encode(rand::rng().random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_known_vector() {
        // Computed apart from this code, by Python's standard library:
        // hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            signature("key", 1_700_000_000, "{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    #[test]
    fn secrets_are_64_hex_characters_and_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
