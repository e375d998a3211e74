//! The RFC 6962 / RFC 9162 §2.1 Merkle tree over the audit log's entries.
//!
//! The exact forms are the contract's, so that a third party can check a proof with any
//! Certificate Transparency library: a leaf hash is `SHA-256(0x00 ‖ entry)`, an interior node is
//! `SHA-256(0x01 ‖ left ‖ right)`, the empty tree's root is the SHA-256 of the empty string, and
//! a tree of `n > 1` leaves splits at the largest power of two smaller than `n`. The distinct
//! prefixes keep a leaf from ever being passed off as an interior node.
//!
//! Functions that build a tree or a proof take the leaf hashes (not the entries) in log order; a
//! tree of size `n` is always the first `n` of them, which is what makes every older tree a
//! prefix of every newer one. Building is recursive, but the recursion is only as deep as the
//! tree (log₂ n levels). Verifying never needs the leaves: it follows the iterative algorithms of
//! RFC 9162 §2.1.3.2 and §2.1.4.2, and first checks that the proof has exactly the length the
//! sizes call for, so that a malformed proof is named as such rather than as a wrong root.
//!
//! Hashes travel as lowercase hex ([`to_hex`], [`from_hex`]), as the contract says.

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node's hash or a tree root.
pub type Hash = [u8; 32];

/// Why a proof could not be built or did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ProofError {
    /// The leaf index is not inside the tree, so no proof can place that leaf in it.
    #[error("leaf index {index} is outside the tree of size {size}")]
    IndexOutOfRange {
        /// The 0-based leaf index asked for.
        index: u64,
        /// The tree size it was asked for.
        size: u64,
    },
    /// A tree size exceeds the leaves that were given, so that tree cannot be built.
    #[error("tree size {size} exceeds the {available} leaves available")]
    SizeOutOfRange {
        /// The tree size asked for.
        size: u64,
        /// How many leaves there are.
        available: u64,
    },
    /// A consistency proof was asked between an older tree that is larger than the newer one;
    /// a log only grows, so no such proof exists.
    #[error("old tree size {from} is larger than new tree size {to}")]
    SizesOutOfOrder {
        /// The older tree's size.
        from: u64,
        /// The newer tree's size.
        to: u64,
    },
    /// The proof does not have the number of hashes that its tree sizes call for.
    #[error("proof has {actual} hashes where {expected} are expected")]
    WrongLength {
        /// How many hashes the tree sizes call for.
        expected: usize,
        /// How many hashes the proof has.
        actual: usize,
    },
    /// The proof, followed to its end, does not reproduce the root (or roots) it was checked
    /// against: the leaf is not in that tree, or the older tree is not a prefix of the newer one.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// A hash was not exactly 64 lowercase hexadecimal digits.
    #[error("hash is not 64 lowercase hex digits")]
    BadHex,
}

/// Hashes an entry as a leaf, `SHA-256(0x00 ‖ entry)`; the prefix tells leaves from nodes.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// Hashes two children into their parent, `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree, the SHA-256 of the empty string, so that a log with no entries
/// still has a head to sign.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The Merkle tree hash of all the given leaf hashes (RFC 9162 §2.1.1): the root a signed tree
/// head of size `leaves.len()` commits to. Pass a prefix of the log's leaves for an older tree.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let (left, right) = leaves.split_at(split_point(leaves.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// The inclusion proof (audit path) for leaf `index` in the tree of the first `size` leaves
/// (RFC 9162 §2.1.3.1): the sibling hashes from the leaf up to the root, lowest first, which is
/// all an auditor needs to recompute that tree's root from the leaf.
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    let tree = prefix(leaves, size)?;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    // `index < size <= leaves.len()`, so it fits in a usize.
    push_path(index as usize, tree, &mut proof);
    Ok(proof)
}

/// Checks that `proof` shows `leaf` at position `index` in the tree of size `size` whose root is
/// `root` (RFC 9162 §2.1.3.2).
///
/// The size is only bound through the root: check against a root that a signed tree head of that
/// same size vouches for.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let sides = sibling_sides(index, size - 1);
    check_length(sides.len(), proof)?;
    let computed = proof
        .iter()
        .zip(sides)
        .fold(*leaf, |acc, (sibling, side)| match side {
            Side::Left => node_hash(sibling, &acc),
            Side::Right => node_hash(&acc, sibling),
        });
    if computed == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The consistency proof that the tree of the first `from` leaves is a prefix of the tree of
/// the first `to` leaves (RFC 9162 §2.1.4.1). It is empty when `from` is 0 or equals `to`, where
/// the roots alone settle the question.
pub fn consistency_proof(leaves: &[Hash], from: u64, to: u64) -> Result<Vec<Hash>, ProofError> {
    let tree = prefix(leaves, to)?;
    if from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    let mut proof = Vec::new();
    if from > 0 && from < to {
        // `from < to <= leaves.len()`, so it fits in a usize.
        push_subproof(from as usize, tree, true, &mut proof);
    }
    Ok(proof)
}

/// Checks that `proof` shows the tree of size `from` with root `from_root` to be a prefix of the
/// tree of size `to` with root `to_root` (RFC 9162 §2.1.4.2): an auditor holding an old signed
/// head learns that the log was only appended to since.
///
/// Two trees of the same size are consistent when their roots are equal and the proof is
/// empty; the empty tree is a prefix of every tree, but `from_root` must then be [`empty_root`].
/// As with [`verify_inclusion`], each size is bound only through its root: take size and root
/// together from one signed tree head.
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    if from == 0 || from == to {
        check_length(0, proof)?;
        let consistent =
            (from != 0 || *from_root == empty_root()) && (from != to || from_root == to_root);
        return if consistent {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }

    // RFC 9162 §2.1.4.2 steps 2–4: a power-of-two old tree is itself a complete subtree of the
    // new one, so its root seeds the walk; otherwise the proof's first hash does.
    let (mut fn_, mut sn) = (from - 1, to - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let sides = sibling_sides(fn_, sn);
    let seeded = from.is_power_of_two();
    check_length(sides.len() + usize::from(!seeded), proof)?;
    let (seed, rest) = match proof {
        [first, rest @ ..] if !seeded => (*first, rest),
        _ => (*from_root, proof),
    };

    let (mut old, mut new) = (seed, seed);
    for (hash, side) in rest.iter().zip(sides) {
        match side {
            Side::Left => {
                old = node_hash(hash, &old);
                new = node_hash(hash, &new);
            }
            Side::Right => new = node_hash(&new, hash),
        }
    }
    if old == *from_root && new == *to_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Writes a hash as 64 lowercase hex digits, the contract's form for every hash.
pub fn to_hex(h: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in h {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Reads a hash from exactly 64 lowercase hex digits; anything else (upper case included) is
/// refused, so that each hash has one written form and strings compare like hashes.
pub fn from_hex(s: &str) -> Result<Hash, ProofError> {
    fn nibble(digit: u8) -> Result<u8, ProofError> {
        match digit {
            b'0'..=b'9' => Ok(digit - b'0'),
            b'a'..=b'f' => Ok(digit - b'a' + 10),
            _ => Err(ProofError::BadHex),
        }
    }
    let digits = s.as_bytes();
    if digits.len() != 64 {
        return Err(ProofError::BadHex);
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(digits.chunks_exact(2)) {
        if let [high, low] = pair {
            *byte = (nibble(*high)? << 4) | nibble(*low)?;
        }
    }
    Ok(hash)
}

/// Which side of the running hash a proof's hash goes on, at one step of verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// The first `size` leaves, or why there are not that many.
fn prefix(leaves: &[Hash], size: u64) -> Result<&[Hash], ProofError> {
    let available = leaves.len() as u64;
    if size > available {
        return Err(ProofError::SizeOutOfRange { size, available });
    }
    // `size <= leaves.len()`, so it fits in a usize.
    Ok(&leaves[..size as usize])
}

/// The largest power of two smaller than `n` (for `n >= 2`): where RFC 9162 splits a tree of `n`
/// leaves into a complete left subtree and the rest.
fn split_point(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.1 `PATH(m, D[n])`: the subtree's path first, then the sibling subtree's root.
fn push_path(m: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m < k {
        push_path(m, left, proof);
        proof.push(root(right));
    } else {
        push_path(m - k, right, proof);
        proof.push(root(left));
    }
}

/// RFC 9162 §2.1.4.1 `SUBPROOF(m, D[n], b)`, for `0 < m <= n`. `whole` is `b`: whether the
/// subtree of size `m` is the old tree itself, whose root the verifier already has.
fn push_subproof(m: usize, leaves: &[Hash], whole: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            proof.push(root(leaves));
        }
        return;
    }
    // Here `0 < m < n`, so `n >= 2` and the split exists.
    let k = split_point(n);
    let (left, right) = leaves.split_at(k);
    if m <= k {
        push_subproof(m, left, whole, proof);
        proof.push(root(right));
    } else {
        push_subproof(m - k, right, false, proof);
        proof.push(root(left));
    }
}

/// The loop shared by RFC 9162 §2.1.3.2 and §2.1.4.2, run on the sizes alone: for each proof
/// hash in turn, which side of the running hash it goes on. Its length is the proof's length
/// (plus the seed, for consistency), so a verifier can refuse a proof of the wrong length first.
fn sibling_sides(mut fn_: u64, mut sn: u64) -> Vec<Side> {
    let mut sides = Vec::new();
    while sn > 0 {
        if fn_ & 1 == 1 || fn_ == sn {
            sides.push(Side::Left);
            // On the tree's right edge a node may have no right sibling; skip those levels.
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sides.push(Side::Right);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sides
}

/// Refuses a proof whose length differs from what the tree sizes call for.
fn check_length(expected: usize, proof: &[Hash]) -> Result<(), ProofError> {
    if proof.len() == expected {
        Ok(())
    } else {
        Err(ProofError::WrongLength {
            expected,
            actual: proof.len(),
        })
    }
}

#[cfg(test)]
mod tests;
