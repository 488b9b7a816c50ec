//! Merkle trees in the shape of RFC 6962 / RFC 9162 (Certificate Transparency).
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`, so a leaf can never pass for a node. A tree of `n` leaves
//! splits at the largest power of two below `n`, which makes it append-only: a datanet keeps a
//! [`Frontier`] (one peak per set bit of its size) and stores every perfect subtree it completes,
//! so accepting a contribution and freezing a version cost `O(log n)` and an inclusion proof
//! for any past version can be rebuilt from stored nodes.

use crate::hash::{sha256, Hash32};
use cosmwasm_schema::cw_serde;
use cosmwasm_std::HexBinary;
use sha2::{Digest, Sha256};

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// Hash of a leaf's data.
pub fn leaf_hash(data: &[u8]) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// Hash of an interior node.
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The leaf of an accepted contribution in a datanet version:
/// `id (u64 big-endian) || content hash (32 bytes) || contributor address (UTF-8)`.
pub fn contribution_leaf(contribution_id: u64, content_hash: &Hash32, contributor: &str) -> Hash32 {
    let mut data = Vec::with_capacity(8 + 32 + contributor.len());
    data.extend_from_slice(&contribution_id.to_be_bytes());
    data.extend_from_slice(content_hash);
    data.extend_from_slice(contributor.as_bytes());
    leaf_hash(&data)
}

/// The leaf of one entry of an attribution score vector:
/// `id (u64 big-endian) || score (i64 big-endian, fixed point chosen by the method)`.
pub fn score_leaf(contribution_id: u64, score: i64) -> Hash32 {
    let mut data = [0u8; 16];
    data[..8].copy_from_slice(&contribution_id.to_be_bytes());
    data[8..].copy_from_slice(&score.to_be_bytes());
    leaf_hash(&data)
}

/// The root of an empty tree: the hash of the empty string.
pub fn empty_root() -> Hash32 {
    sha256(&[])
}

/// The root over `leaves` (already leaf-hashed), computed from scratch.
pub fn root_from_leaves(leaves: &[Hash32]) -> Hash32 {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(
                &root_from_leaves(&leaves[..k]),
                &root_from_leaves(&leaves[k..]),
            )
        }
    }
}

/// Where to find the hash of a perfect subtree: `height` levels above the leaves, `index`-th
/// from the left (so it covers leaves `index << height .. (index + 1) << height`).
pub trait NodeSource {
    type Error;
    /// The stored hash of that subtree.
    fn node(&self, height: u32, index: u64) -> Result<Hash32, Self::Error>;
}

/// A [`NodeSource`] over the full list of leaves, for off-chain use and tests.
pub struct Leaves<'a>(pub &'a [Hash32]);

impl NodeSource for Leaves<'_> {
    type Error = std::convert::Infallible;
    fn node(&self, height: u32, index: u64) -> Result<Hash32, Self::Error> {
        let start = (index << height) as usize;
        let end = ((index + 1) << height) as usize;
        Ok(root_from_leaves(&self.0[start..end]))
    }
}

/// The audit path of leaf `index` in the tree of the first `tree_size` leaves (RFC 9162 §2.1.3.1).
/// Returns `None` when `index >= tree_size`.
pub fn inclusion_path<S: NodeSource>(
    source: &S,
    index: u64,
    tree_size: u64,
) -> Result<Option<Vec<Hash32>>, S::Error> {
    if index >= tree_size {
        return Ok(None);
    }
    let mut path = Vec::new();
    let (mut lo, mut hi) = (0u64, tree_size);
    // Walk down from the root, remembering the sibling subtree at each split; the path is
    // ordered from the leaf upwards, so it is reversed at the end.
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            path.push(subtree_root(source, lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(subtree_root(source, lo, lo + k)?);
            lo += k;
        }
    }
    path.reverse();
    Ok(Some(path))
}

/// The root of leaves `lo..hi` where `lo` is aligned as in an RFC 6962 split.
fn subtree_root<S: NodeSource>(source: &S, lo: u64, hi: u64) -> Result<Hash32, S::Error> {
    let n = hi - lo;
    if n.is_power_of_two() {
        let height = n.trailing_zeros();
        return source.node(height, lo >> height);
    }
    let k = split_point(n);
    Ok(node_hash(
        &subtree_root(source, lo, lo + k)?,
        &subtree_root(source, lo + k, hi)?,
    ))
}

/// Verifies that `leaf` sits at `index` in a tree of `tree_size` leaves with the given `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash32,
    index: u64,
    tree_size: u64,
    path: &[Hash32],
    root: &Hash32,
) -> bool {
    if index >= tree_size {
        return false;
    }
    let (mut fnode, mut snode) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The right edge of an append-only tree: one perfect-subtree root per set bit of `size`,
/// largest first.
#[cw_serde]
#[derive(Default, Eq)]
pub struct Frontier {
    pub size: u64,
    pub peaks: Vec<HexBinary>,
}

/// A perfect subtree completed by an append, to be stored for later proofs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedNode {
    pub height: u32,
    pub index: u64,
    pub hash: Hash32,
}

impl Frontier {
    /// Appends a leaf and returns every perfect subtree this completes, the leaf itself first.
    pub fn append(&mut self, leaf: Hash32) -> Vec<CompletedNode> {
        let mut completed = vec![CompletedNode {
            height: 0,
            index: self.size,
            hash: leaf,
        }];
        let mut current = leaf;
        let mut height = 0u32;
        let mut index = self.size;
        while (self.size >> height) & 1 == 1 {
            let left = self
                .peaks
                .pop()
                .expect("a set bit of size always has a peak");
            let left: Hash32 = left
                .as_slice()
                .try_into()
                .expect("frontier peaks are always 32 bytes");
            current = node_hash(&left, &current);
            height += 1;
            index >>= 1;
            completed.push(CompletedNode {
                height,
                index,
                hash: current,
            });
        }
        self.peaks.push(HexBinary::from(current.as_slice()));
        self.size += 1;
        completed
    }

    /// The root of the tree of every leaf appended so far.
    pub fn root(&self) -> Hash32 {
        let mut peaks = self.peaks.iter().rev().map(|p| {
            let hash: Hash32 = p
                .as_slice()
                .try_into()
                .expect("frontier peaks are always 32 bytes");
            hash
        });
        match peaks.next() {
            None => empty_root(),
            Some(last) => peaks.fold(last, |acc, peak| node_hash(&peak, &acc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n as u64)
            .map(|i| contribution_leaf(i, &sha256(&i.to_be_bytes()), "trib1contributor"))
            .collect()
    }

    /// Nodes stored by a contract as it appends leaves one by one.
    struct Stored(HashMap<(u32, u64), Hash32>);
    impl NodeSource for Stored {
        type Error = String;
        fn node(&self, height: u32, index: u64) -> Result<Hash32, String> {
            self.0
                .get(&(height, index))
                .copied()
                .ok_or_else(|| format!("missing node {height}/{index}"))
        }
    }

    #[test]
    fn roots_follow_rfc6962_structure() {
        let l = leaves(3);
        assert_eq!(root_from_leaves(&[]), sha256(b""));
        assert_eq!(root_from_leaves(&l[..1]), l[0]);
        assert_eq!(
            root_from_leaves(&l),
            node_hash(&node_hash(&l[0], &l[1]), &l[2])
        );
    }

    #[test]
    fn leaf_and_node_domains_are_separated() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        let mut concat = a.to_vec();
        concat.extend_from_slice(&b);
        assert_ne!(leaf_hash(&concat), node_hash(&a, &b));
    }

    proptest! {
        #[test]
        fn frontier_root_equals_full_recomputation(n in 0usize..80) {
            let l = leaves(n);
            let mut frontier = Frontier::default();
            for leaf in &l {
                frontier.append(*leaf);
            }
            prop_assert_eq!(frontier.root(), root_from_leaves(&l));
            prop_assert_eq!(frontier.size, n as u64);
        }

        #[test]
        fn stored_node_proofs_verify_for_every_past_version(n in 1usize..70, seed in any::<u64>()) {
            let l = leaves(n);
            let mut frontier = Frontier::default();
            let mut stored = Stored(HashMap::new());
            let mut roots = Vec::new();
            for leaf in &l {
                for node in frontier.append(*leaf) {
                    stored.0.insert((node.height, node.index), node.hash);
                }
                roots.push(frontier.root());
            }
            // Any leaf of any version (prefix) proves against that version's root.
            let size = 1 + seed % n as u64;
            let index = (seed / 7) % size;
            let path = inclusion_path(&stored, index, size).unwrap().unwrap();
            let reference = inclusion_path(&Leaves(&l[..size as usize]), index, size).unwrap().unwrap();
            prop_assert_eq!(&path, &reference);
            prop_assert!(verify_inclusion(&l[index as usize], index, size, &path, &roots[size as usize - 1]));
            // The same proof fails for another leaf, another position or another root.
            let other = sha256(b"not a leaf");
            prop_assert!(!verify_inclusion(&other, index, size, &path, &roots[size as usize - 1]));
            if size > 1 {
                let wrong_index = (index + 1) % size;
                prop_assert!(!verify_inclusion(&l[index as usize], wrong_index, size, &path, &roots[size as usize - 1]));
            }
            prop_assert!(!verify_inclusion(&l[index as usize], index, size, &path, &other));
        }
    }

    #[test]
    fn out_of_range_leaves_have_no_proof() {
        let l = leaves(4);
        assert_eq!(inclusion_path(&Leaves(&l), 4, 4).unwrap(), None);
        assert!(!verify_inclusion(&l[0], 4, 4, &[], &root_from_leaves(&l)));
    }
}
