use super::*;
use proptest::prelude::*;

// The RFC 6962 test vectors that Certificate Transparency implementations share, as published
// by transparency-dev/merkle (Apache-2.0):
// - leaves, complete-subtree hashes and roots for every size 0–8: `testonly/constants.go`
//   (`LeafInputs`, `NodeHashes`, `RootHashes`), commit 582a6ad190b6848f1d26f8bf08ddef29955d9db1;
// - inclusion paths and consistency proofs: `proof/verify_test.go` (`inclusionProofs`,
//   `consistencyProofs`), commit 02194e9afb6c1d95b5381350007963aa70fff472. That file numbers
//   leaves from 1; the indices below are 0-based.
// The same values appear in google/certificate-transparency's C++ `merkle_tree_test.cc`.

const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `NodeHashes()`: level 0 holds the leaf hashes, level `l` the roots of the complete subtrees
/// of `2^l` leaves, left to right.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `RootHashes()`, indexed by tree size from 0.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `inclusionProofs`: (0-based leaf index, tree size, audit path).
const INCLUSION_VECTORS: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// `consistencyProofs`: (old size, new size, proof).
const CONSISTENCY_VECTORS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(hex: &str) -> Hash {
    from_hex(hex).unwrap()
}

fn hashes(hexes: &[&str]) -> Vec<Hash> {
    hexes.iter().map(|hex| h(hex)).collect()
}

/// The leaf hashes of `LEAF_INPUTS`, hashed here from the raw inputs.
fn vector_leaves() -> Vec<Hash> {
    LEAF_INPUTS
        .iter()
        .map(|input| {
            let bytes: Vec<u8> = (0..input.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&input[i..i + 2], 16).unwrap())
                .collect();
            leaf_hash(&bytes)
        })
        .collect()
}

/// Distinct leaves, so that no two subtrees hash alike and a wrong index must fail.
fn distinct_leaves(n: usize, seed: u64) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| leaf_hash(&[seed.to_le_bytes(), i.to_le_bytes()].concat()))
        .collect()
}

fn flip_bit(hash: &Hash, bit: usize) -> Hash {
    let mut flipped = *hash;
    flipped[bit / 8 % 32] ^= 1 << (bit % 8);
    flipped
}

// --- Test vectors -------------------------------------------------------------------------

#[test]
fn leaf_hashes_match_the_vectors() {
    assert_eq!(vector_leaves(), hashes(NODE_HASHES[0]));
}

#[test]
fn roots_match_the_vectors_for_every_size() {
    let leaves = vector_leaves();
    for (size, expected) in ROOTS.iter().enumerate() {
        assert_eq!(to_hex(&root(&leaves[..size])), *expected, "size {size}");
    }
}

#[test]
fn complete_subtree_roots_match_the_vectors() {
    let leaves = vector_leaves();
    for (level, nodes) in NODE_HASHES.iter().enumerate() {
        let width = 1 << level;
        for (i, expected) in nodes.iter().enumerate() {
            let subtree = &leaves[i * width..(i + 1) * width];
            assert_eq!(to_hex(&root(subtree)), *expected, "level {level} node {i}");
        }
    }
}

#[test]
fn inclusion_proofs_match_the_vectors_and_verify() {
    let leaves = vector_leaves();
    for (index, size, expected) in INCLUSION_VECTORS {
        let proof = inclusion_proof(&leaves, index, size).unwrap();
        assert_eq!(proof, hashes(expected), "leaf {index} in size {size}");
        let root = h(ROOTS[size as usize]);
        verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
    }
}

/// In the complete tree of 8, each leaf's audit path is its sibling at each level, which the
/// vectors list outright; this extends the published paths to all eight leaves.
#[test]
fn every_inclusion_path_in_the_tree_of_eight_is_the_siblings() {
    let leaves = vector_leaves();
    for index in 0..8usize {
        let expected: Vec<Hash> = (0..3)
            .map(|level| h(NODE_HASHES[level][(index >> level) ^ 1]))
            .collect();
        assert_eq!(
            inclusion_proof(&leaves, index as u64, 8).unwrap(),
            expected,
            "leaf {index}"
        );
    }
}

#[test]
fn consistency_proofs_match_the_vectors_and_verify() {
    let leaves = vector_leaves();
    for (from, to, expected) in CONSISTENCY_VECTORS {
        let proof = consistency_proof(&leaves, from, to).unwrap();
        assert_eq!(proof, hashes(expected), "from {from} to {to}");
        let (from_root, to_root) = (h(ROOTS[from as usize]), h(ROOTS[to as usize]));
        verify_consistency(from, to, &from_root, &to_root, &proof).unwrap();
        if from < to {
            assert_eq!(
                verify_consistency(from, to, &to_root, &from_root, &proof),
                Err(ProofError::RootMismatch),
                "swapped roots, from {from} to {to}"
            );
        }
    }
}

// --- Hashing and hex ----------------------------------------------------------------------

#[test]
fn hashes_use_the_domain_prefixes() {
    let entry = b"entry";
    assert_eq!(
        leaf_hash(entry),
        <[u8; 32]>::from(Sha256::digest(b"\x00entry"))
    );
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let mut joined = vec![0x01];
    joined.extend_from_slice(&a);
    joined.extend_from_slice(&b);
    assert_eq!(node_hash(&a, &b), <[u8; 32]>::from(Sha256::digest(&joined)));
    assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
    assert_eq!(to_hex(&empty_root()), ROOTS[0]);
}

#[test]
fn hex_round_trips_in_lower_case() {
    let hash = leaf_hash(b"round trip");
    let hex = to_hex(&hash);
    assert_eq!(hex.len(), 64);
    assert!(
        hex.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    );
    assert_eq!(from_hex(&hex), Ok(hash));
    assert_eq!(to_hex(&[0u8; 32]), "0".repeat(64));
    assert_eq!(to_hex(&[0xffu8; 32]), "f".repeat(64));
}

#[test]
fn from_hex_refuses_anything_but_64_lowercase_digits() {
    let good = ROOTS[1];
    for bad in [
        String::new(),
        good[..63].to_owned(),
        format!("{good}0"),
        good.to_uppercase(),
        format!("{}g", &good[..63]),
        format!(" {}", &good[..63]),
        // 64 bytes, but two of them form one non-ASCII character.
        format!("{}é", &good[..62]),
    ] {
        assert_eq!(from_hex(&bad), Err(ProofError::BadHex), "{bad:?}");
    }
}

#[test]
fn error_messages_are_lower_case_without_a_period() {
    let errors = [
        ProofError::IndexOutOfRange { index: 3, size: 3 },
        ProofError::SizeOutOfRange {
            size: 9,
            available: 8,
        },
        ProofError::SizesOutOfOrder { from: 5, to: 4 },
        ProofError::WrongLength {
            expected: 3,
            actual: 4,
        },
        ProofError::RootMismatch,
        ProofError::BadHex,
    ];
    for error in errors {
        let message = error.to_string();
        assert!(message.starts_with(|c: char| c.is_lowercase()), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
    assert_eq!(
        ProofError::IndexOutOfRange { index: 3, size: 3 }.to_string(),
        "leaf index 3 is outside the tree of size 3"
    );
}

// --- Edge cases ---------------------------------------------------------------------------

#[test]
fn the_empty_tree() {
    assert_eq!(root(&[]), empty_root());
    let leaves = vector_leaves();
    assert_eq!(
        inclusion_proof(&leaves, 0, 0),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        verify_inclusion(&leaves[0], 0, 0, &[], &empty_root()),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(consistency_proof(&[], 0, 0), Ok(vec![]));
    assert_eq!(
        verify_consistency(0, 0, &empty_root(), &empty_root(), &[]),
        Ok(())
    );
    assert_eq!(
        verify_consistency(0, 0, &leaves[0], &leaves[0], &[]),
        Err(ProofError::RootMismatch)
    );
}

#[test]
fn a_single_leaf_is_its_own_root() {
    let leaf = leaf_hash(b"only");
    assert_eq!(root(&[leaf]), leaf);
    assert_eq!(inclusion_proof(&[leaf], 0, 1), Ok(vec![]));
    assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
    assert_eq!(
        verify_inclusion(&leaf, 0, 1, &[leaf], &leaf),
        Err(ProofError::WrongLength {
            expected: 0,
            actual: 1
        })
    );
}

#[test]
fn the_last_leaf_of_each_size_is_provable() {
    let leaves = vector_leaves();
    for size in 1..=8u64 {
        let index = size - 1;
        let proof = inclusion_proof(&leaves, index, size).unwrap();
        let root = h(ROOTS[size as usize]);
        assert_eq!(
            verify_inclusion(&leaves[index as usize], index, size, &proof, &root),
            Ok(()),
            "size {size}"
        );
    }
}

#[test]
fn out_of_range_requests_are_errors() {
    let leaves = vector_leaves();
    assert_eq!(
        inclusion_proof(&leaves, 8, 8),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        inclusion_proof(&leaves, 0, 9),
        Err(ProofError::SizeOutOfRange {
            size: 9,
            available: 8
        })
    );
    assert_eq!(
        inclusion_proof(&leaves, u64::MAX, u64::MAX),
        Err(ProofError::SizeOutOfRange {
            size: u64::MAX,
            available: 8
        })
    );
    assert_eq!(
        consistency_proof(&leaves, 3, 9),
        Err(ProofError::SizeOutOfRange {
            size: 9,
            available: 8
        })
    );
    assert_eq!(
        consistency_proof(&leaves, 5, 4),
        Err(ProofError::SizesOutOfOrder { from: 5, to: 4 })
    );
    assert_eq!(
        verify_consistency(5, 4, &h(ROOTS[5]), &h(ROOTS[4]), &[]),
        Err(ProofError::SizesOutOfOrder { from: 5, to: 4 })
    );
    assert_eq!(
        verify_inclusion(&leaves[0], 8, 8, &[], &h(ROOTS[8])),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    );
}

/// Sizes near `u64::MAX` never reach a slice; the verifiers only shift them.
#[test]
fn huge_sizes_fail_cleanly_in_the_verifiers() {
    let leaf = leaf_hash(b"x");
    assert!(matches!(
        verify_inclusion(&leaf, u64::MAX - 1, u64::MAX, &[], &leaf),
        Err(ProofError::WrongLength { actual: 0, .. })
    ));
    assert!(matches!(
        verify_consistency(1, u64::MAX, &leaf, &leaf, &[]),
        Err(ProofError::WrongLength { actual: 0, .. })
    ));
    assert!(matches!(
        verify_consistency(u64::MAX - 1, u64::MAX, &leaf, &leaf, &[leaf]),
        Err(ProofError::WrongLength { actual: 1, .. })
    ));
}

#[test]
fn equal_sizes_need_equal_roots_and_an_empty_proof() {
    let leaves = vector_leaves();
    for size in 0..=8u64 {
        assert_eq!(consistency_proof(&leaves, size, size), Ok(vec![]));
        let root = h(ROOTS[size as usize]);
        assert_eq!(verify_consistency(size, size, &root, &root, &[]), Ok(()));
        assert_eq!(
            verify_consistency(size, size, &root, &root, &[root]),
            Err(ProofError::WrongLength {
                expected: 0,
                actual: 1
            })
        );
    }
    assert_eq!(
        verify_consistency(5, 5, &h(ROOTS[5]), &h(ROOTS[6]), &[]),
        Err(ProofError::RootMismatch)
    );
}

#[test]
fn the_empty_tree_is_a_prefix_of_every_tree() {
    let leaves = vector_leaves();
    for to in 0..=8u64 {
        assert_eq!(consistency_proof(&leaves, 0, to), Ok(vec![]));
        let to_root = h(ROOTS[to as usize]);
        assert_eq!(
            verify_consistency(0, to, &empty_root(), &to_root, &[]),
            Ok(())
        );
        // A from-root that is not the empty tree's claims leaves a size-0 tree cannot have.
        assert_eq!(
            verify_consistency(0, to, &h(ROOTS[1]), &to_root, &[]),
            Err(ProofError::RootMismatch)
        );
    }
}

#[test]
fn a_consistency_proof_may_not_be_empty_between_different_sizes() {
    assert_eq!(
        verify_consistency(1, 2, &h(ROOTS[1]), &h(ROOTS[2]), &[]),
        Err(ProofError::WrongLength {
            expected: 1,
            actual: 0
        })
    );
}

/// The tree size is bound only through the root: a proof for the tree of 3 also recomputes
/// that tree's root when read as a proof for the tree of 4, because the verifier cannot tell
/// leaf 2's hash from the root of leaves 2–3. Checked against the root of the tree of 4 it
/// fails, which is why a verifier takes size and root together from one signed tree head.
#[test]
fn a_size_is_only_as_good_as_the_root_it_comes_with() {
    let leaves = vector_leaves();
    let proof = inclusion_proof(&leaves, 0, 3).unwrap();
    assert_eq!(
        verify_inclusion(&leaves[0], 0, 4, &proof, &h(ROOTS[3])),
        Ok(())
    );
    assert_eq!(
        verify_inclusion(&leaves[0], 0, 4, &proof, &h(ROOTS[4])),
        Err(ProofError::RootMismatch)
    );
}

// --- Properties ---------------------------------------------------------------------------

/// A tree of 1–200 leaves, a size within it and a leaf index within that size.
fn tree_size_index() -> impl Strategy<Value = (usize, u64, u64)> {
    (1usize..=200)
        .prop_flat_map(|n| (Just(n), 1..=n as u64))
        .prop_flat_map(|(n, size)| (Just(n), Just(size), 0..size))
}

/// A tree of 1–200 leaves, a new size within it and an old size up to that.
fn tree_from_to() -> impl Strategy<Value = (usize, u64, u64)> {
    (1usize..=200)
        .prop_flat_map(|n| (Just(n), 1..=n as u64))
        .prop_flat_map(|(n, to)| (Just(n), 0..=to, Just(to)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_inclusion_proof_verifies_and_no_tampered_one_does(
        (n, size, index) in tree_size_index(),
        seed in any::<u64>(),
        bit in 0usize..256,
    ) {
        let leaves = distinct_leaves(n, seed);
        let tree_root = root(&leaves[..size as usize]);
        for i in 0..size {
            let proof = inclusion_proof(&leaves, i, size).unwrap();
            prop_assert_eq!(
                verify_inclusion(&leaves[i as usize], i, size, &proof, &tree_root),
                Ok(())
            );
        }

        let leaf = leaves[index as usize];
        let proof = inclusion_proof(&leaves, index, size).unwrap();
        for position in 0..proof.len() {
            let mut tampered = proof.clone();
            tampered[position] = flip_bit(&tampered[position], bit);
            prop_assert_eq!(
                verify_inclusion(&leaf, index, size, &tampered, &tree_root),
                Err(ProofError::RootMismatch)
            );
        }
        prop_assert!(verify_inclusion(&flip_bit(&leaf, bit), index, size, &proof, &tree_root).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &flip_bit(&tree_root, bit)).is_err());
        let mut longer = proof.clone();
        longer.push(tree_root);
        prop_assert!(verify_inclusion(&leaf, index, size, &longer, &tree_root).is_err());
        if let Some((_, shorter)) = proof.split_last() {
            prop_assert!(verify_inclusion(&leaf, index, size, shorter, &tree_root).is_err());
        }

        // Another position in the same tree: the leaves are distinct, so it must fail.
        for other in (0..size).filter(|&i| i != index) {
            prop_assert!(verify_inclusion(&leaf, other, size, &proof, &tree_root).is_err());
        }
        prop_assert_eq!(
            verify_inclusion(&leaf, size, size, &proof, &tree_root),
            Err(ProofError::IndexOutOfRange { index: size, size })
        );

        // Another size, checked against that size's own root as a signed head would give it.
        for other in [size - 1, size + 1, size * 2, size / 2] {
            if other > index && other != size && other <= n as u64 {
                let other_root = root(&leaves[..other as usize]);
                prop_assert!(verify_inclusion(&leaf, index, other, &proof, &other_root).is_err());
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_no_tampered_one_does(
        (n, from, to) in tree_from_to(),
        seed in any::<u64>(),
        bit in 0usize..256,
    ) {
        let leaves = distinct_leaves(n, seed);
        let roots: Vec<Hash> = (0..=to as usize).map(|size| root(&leaves[..size])).collect();
        let to_root = roots[to as usize];
        for old in 0..=to {
            let proof = consistency_proof(&leaves, old, to).unwrap();
            prop_assert_eq!(
                verify_consistency(old, to, &roots[old as usize], &to_root, &proof),
                Ok(())
            );
        }

        let from_root = roots[from as usize];
        let proof = consistency_proof(&leaves, from, to).unwrap();

        // The root of another size, a damaged root, and the root of a log whose old part was
        // rewritten: none is the old tree of this one.
        for other in [from.wrapping_sub(1), from + 1] {
            if other <= to {
                prop_assert!(verify_consistency(from, to, &roots[other as usize], &to_root, &proof).is_err());
            }
        }
        prop_assert!(verify_consistency(from, to, &flip_bit(&from_root, bit), &to_root, &proof).is_err());
        if from > 0 {
            let mut rewritten = leaves.clone();
            rewritten[(seed % from) as usize] = leaf_hash(b"rewritten");
            let rewritten_root = root(&rewritten[..from as usize]);
            prop_assert!(verify_consistency(from, to, &rewritten_root, &to_root, &proof).is_err());
        }
        // A new root is only bound when there is an old tree to be a prefix of.
        if from > 0 {
            prop_assert!(verify_consistency(from, to, &from_root, &flip_bit(&to_root, bit), &proof).is_err());
            // As with inclusion, the new size is bound through its root: check another size
            // against that size's own root, as a signed head would give it.
            if to < n as u64 {
                let next_root = root(&leaves[..=to as usize]);
                prop_assert!(verify_consistency(from, to + 1, &from_root, &next_root, &proof).is_err());
            }
        }

        for position in 0..proof.len() {
            let mut tampered = proof.clone();
            tampered[position] = flip_bit(&tampered[position], bit);
            prop_assert_eq!(
                verify_consistency(from, to, &from_root, &to_root, &tampered),
                Err(ProofError::RootMismatch)
            );
        }
        let mut longer = proof.clone();
        longer.push(to_root);
        prop_assert!(verify_consistency(from, to, &from_root, &to_root, &longer).is_err());
        if let Some((_, shorter)) = proof.split_last() {
            prop_assert!(verify_consistency(from, to, &from_root, &to_root, shorter).is_err());
        }
        prop_assert_eq!(
            verify_consistency(to + 1, to, &from_root, &to_root, &proof),
            Err(ProofError::SizesOutOfOrder { from: to + 1, to })
        );
    }

    /// The iterative verifier and the recursive builder agree on every proof's length, so a
    /// proof of the wrong length is always named as such.
    #[test]
    fn proof_lengths_agree_with_the_verifier(
        (n, size, index) in tree_size_index(),
    ) {
        let leaves = distinct_leaves(n, 0);
        let proof = inclusion_proof(&leaves, index, size).unwrap();
        let sides = sibling_sides(index, size - 1);
        prop_assert_eq!(proof.len(), sides.len());
        // `index` doubles as an old size here.
        let consistency = consistency_proof(&leaves, index, size).unwrap();
        let mut extra = consistency.clone();
        extra.push(leaves[0]);
        let check = verify_consistency(index, size, &leaves[0], &leaves[0], &extra);
        prop_assert!(
            matches!(check, Err(ProofError::WrongLength { expected, .. }) if expected == consistency.len()),
            "{:?}", check
        );
    }
}
