//! The audit log's integrity primitives.
//!
//! The gateway's audit log must let an outside auditor prove, with nothing but the contract and
//! the gateway's public key, that history was not rewritten. [`merkle`] holds the RFC 6962 /
//! RFC 9162 Merkle tree over the log's entries: tree roots, inclusion proofs and consistency
//! proofs, and their verification. Everything here is pure computation over hashes; storing
//! entries and signing tree heads happen elsewhere.

pub mod merkle;
