//! Signed tree heads: the gateway's Ed25519 statement "the log had `treeSize` entries with this
//! Merkle root at this time". An auditor who keeps one can later demand a consistency proof and
//! so catch any rewrite of the entries it covers, even by an operator with full database access.
//!
//! The signed bytes are the RFC 8785 canonical JSON of `{"treeSize", "rootHash", "timestamp"}`;
//! the key id is the first 16 hex digits of the SHA-256 of the 32 raw public-key bytes.

use crate::canonical::to_canonical_string;
use crate::merkle::{self, Hash};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Why a key or a signed head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The public key is not base64 of 32 bytes or a PEM `PUBLIC KEY`.
    #[error("the public key is not base64 of 32 raw Ed25519 bytes nor a PEM public key")]
    BadPublicKey,
    /// The signing key is not a PKCS#8 PEM Ed25519 key nor base64 of a 32-byte seed.
    #[error("the signing key is not a PKCS#8 PEM Ed25519 private key nor base64 of a 32-byte seed")]
    BadSigningKey,
    /// The signature is not base64 of 64 bytes.
    #[error("the signature is not base64 of 64 bytes")]
    BadSignature,
    /// The root hash is not 64 lowercase hex digits.
    #[error("rootHash is not 64 lowercase hex digits")]
    BadRootHash,
    /// The head names another key.
    #[error("the head was signed by key {found}, not by key {expected}")]
    WrongKey {
        /// The key id of the public key given.
        expected: String,
        /// The key id the head names.
        found: String,
    },
    /// The signature does not verify.
    #[error("the signature does not verify with this public key")]
    InvalidSignature,
}

/// A tree head before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    /// How many entries the tree covers.
    pub tree_size: u64,
    /// Its Merkle root.
    pub root_hash: Hash,
    /// When it was signed (the audit log's RFC 3339 form).
    pub timestamp: String,
}

impl TreeHead {
    /// The exact bytes that are signed.
    pub fn signed_bytes(&self) -> String {
        to_canonical_string(&json!({
            "treeSize": self.tree_size,
            "rootHash": merkle::to_hex(&self.root_hash),
            "timestamp": self.timestamp,
        }))
    }
}

/// A tree head with its signature, as the contract's checkpoint carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// The head.
    pub head: TreeHead,
    /// The signing key's id.
    pub key_id: String,
    /// Base64 of the 64-byte Ed25519 signature.
    pub signature: String,
}

/// The id the contract's `keyId` carries for a public key.
pub fn key_id(public_key: &VerifyingKey) -> String {
    let digest = Sha256::digest(public_key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Base64 of the 32 raw public-key bytes, as `GET …/audit-logs/public-key` serves it.
pub fn public_key_base64(public_key: &VerifyingKey) -> String {
    BASE64.encode(public_key.as_bytes())
}

/// Reads a public key: base64 of the 32 raw bytes, or a PEM `PUBLIC KEY` (as OpenSSL writes).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, HeadError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return VerifyingKey::from_public_key_pem(text).map_err(|_| HeadError::BadPublicKey);
    }
    let bytes = BASE64.decode(text).map_err(|_| HeadError::BadPublicKey)?;
    let raw: [u8; 32] = bytes.try_into().map_err(|_| HeadError::BadPublicKey)?;
    VerifyingKey::from_bytes(&raw).map_err(|_| HeadError::BadPublicKey)
}

/// Reads a signing key: PKCS#8 PEM (`openssl genpkey -algorithm ed25519`), or base64 of the
/// 32-byte seed.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, HeadError> {
    let text = text.trim();
    if text.starts_with("-----BEGIN") {
        return SigningKey::from_pkcs8_pem(text).map_err(|_| HeadError::BadSigningKey);
    }
    let bytes = BASE64.decode(text).map_err(|_| HeadError::BadSigningKey)?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| HeadError::BadSigningKey)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A signing key as PKCS#8 PEM, the form the gateway writes when it generates one.
pub fn signing_key_pem(key: &SigningKey) -> Result<String, HeadError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.as_str().to_owned())
        .map_err(|_| HeadError::BadSigningKey)
}

/// Signs a tree head.
pub fn sign(key: &SigningKey, head: TreeHead) -> SignedTreeHead {
    let signature = key.sign(head.signed_bytes().as_bytes());
    SignedTreeHead {
        key_id: key_id(&key.verifying_key()),
        signature: BASE64.encode(signature.to_bytes()),
        head,
    }
}

/// Checks that `signed` was signed by `public_key`.
pub fn verify(public_key: &VerifyingKey, signed: &SignedTreeHead) -> Result<(), HeadError> {
    let expected = key_id(public_key);
    if signed.key_id != expected {
        return Err(HeadError::WrongKey {
            expected,
            found: signed.key_id.clone(),
        });
    }
    let bytes = BASE64
        .decode(signed.signature.trim())
        .map_err(|_| HeadError::BadSignature)?;
    let raw: [u8; 64] = bytes.try_into().map_err(|_| HeadError::BadSignature)?;
    public_key
        .verify(
            signed.head.signed_bytes().as_bytes(),
            &Signature::from_bytes(&raw),
        )
        .map_err(|_| HeadError::InvalidSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn head() -> TreeHead {
        TreeHead {
            tree_size: 3,
            root_hash: [0xcd; 32],
            timestamp: "2026-11-27T04:15:39.123Z".into(),
        }
    }

    #[test]
    fn signed_bytes_are_the_canonical_three_members() {
        assert_eq!(
            head().signed_bytes(),
            format!(
                "{{\"rootHash\":\"{}\",\"timestamp\":\"2026-11-27T04:15:39.123Z\",\"treeSize\":3}}",
                "cd".repeat(32)
            )
        );
    }

    #[test]
    fn a_signed_head_verifies_and_any_change_does_not() {
        let public = key().verifying_key();
        let signed = sign(&key(), head());
        assert_eq!(verify(&public, &signed), Ok(()));

        let mut bigger = signed.clone();
        bigger.head.tree_size = 4;
        assert_eq!(verify(&public, &bigger), Err(HeadError::InvalidSignature));

        let mut other_root = signed.clone();
        other_root.head.root_hash[0] ^= 1;
        assert_eq!(
            verify(&public, &other_root),
            Err(HeadError::InvalidSignature)
        );

        let other_key = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            verify(&other_key, &signed),
            Err(HeadError::WrongKey { .. })
        ));

        let mut garbled = signed.clone();
        garbled.signature = "not base64!".into();
        assert_eq!(verify(&public, &garbled), Err(HeadError::BadSignature));
    }

    #[test]
    fn keys_round_trip_through_their_text_forms() {
        let pem = signing_key_pem(&key()).expect("pem");
        assert_eq!(
            parse_signing_key(&pem).expect("pem parses").to_bytes(),
            [7; 32]
        );
        let seed = BASE64.encode([7u8; 32]);
        assert_eq!(
            parse_signing_key(&seed).expect("seed parses").to_bytes(),
            [7; 32]
        );
        let public = key().verifying_key();
        assert_eq!(
            parse_public_key(&public_key_base64(&public)).expect("public parses"),
            public
        );
        assert_eq!(parse_public_key("AAAA"), Err(HeadError::BadPublicKey));
        assert_eq!(parse_signing_key("nonsense"), Err(HeadError::BadSigningKey));
        assert_eq!(key_id(&public).len(), 16);
    }

    /// A key made by `openssl genpkey -algorithm ed25519` (PKCS#8 v1, no public key inside).
    #[test]
    fn an_openssl_generated_key_is_read() {
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n\
                   -----END PRIVATE KEY-----\n";
        assert_eq!(
            parse_signing_key(pem).expect("openssl pem").to_bytes(),
            [7; 32]
        );
    }
}
