//! From a datanet version's contributions to token windows and batches.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use tributary_store::{BlockingStore, ContentHash, ContentStore, HttpStore, LocalStore};
use tributary_types::merkle::{contribution_leaf, root_from_leaves};
use tributary_types::DatanetRoot;

use crate::error::EngineError;

use crate::tokenizer::{encode, encode_document, BOS};

/// One accepted contribution of a datanet version, as the chain lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    pub contribution_id: u64,
    pub datanet_id: u64,
    /// Bech32 address of the contributor.
    pub contributor: String,
    /// SHA-256 of the bytes, hex.
    pub content_hash: String,
    /// Position in its datanet's merkle tree (acceptance order); with it the corpus's
    /// datanet roots are recomputed and checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
}

/// What a model is trained on: datanet versions and their accepted contributions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corpus {
    pub datanets: Vec<DatanetRoot>,
    pub contributions: Vec<Contribution>,
}

impl Corpus {
    /// Reads a corpus file (JSON).
    pub fn load(path: &Path) -> Result<Corpus, EngineError> {
        let bytes = std::fs::read(path).map_err(|source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let corpus: Corpus = serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::Corpus(format!("{}: {e}", path.display())))?;
        corpus.check()?;
        Ok(corpus)
    }

    /// Checks the corpus on its own: unique contribution ids, every contribution in a listed
    /// datanet, and each datanet's root recomputed from its leaves where leaf positions are given.
    pub fn check(&self) -> Result<(), EngineError> {
        if self.contributions.is_empty() {
            return Err(EngineError::Corpus(
                "the corpus lists no contributions".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.contributions {
            if !seen.insert(c.contribution_id) {
                return Err(EngineError::Corpus(format!(
                    "contribution {} is listed twice",
                    c.contribution_id
                )));
            }
            if !self.datanets.iter().any(|d| d.datanet_id == c.datanet_id) {
                return Err(EngineError::Corpus(format!(
                    "contribution {} belongs to datanet {}, which the corpus does not list",
                    c.contribution_id, c.datanet_id
                )));
            }
            parse_hash(c)?;
        }
        for datanet in &self.datanets {
            let mut members: Vec<&Contribution> = self
                .contributions
                .iter()
                .filter(|c| c.datanet_id == datanet.datanet_id)
                .collect();
            if members.iter().any(|c| c.leaf_index.is_none()) {
                continue;
            }
            members.sort_by_key(|c| c.leaf_index);
            let leaves = members
                .iter()
                .map(|c| {
                    Ok(contribution_leaf(
                        c.contribution_id,
                        parse_hash(c)?.as_bytes(),
                        &c.contributor,
                    ))
                })
                .collect::<Result<Vec<_>, EngineError>>()?;
            let root = root_from_leaves(&leaves);
            if root.as_slice() != datanet.root.as_slice() {
                return Err(EngineError::Corpus(format!(
                    "datanet {} version {}: the listed contributions hash to root {}, not to the version's root {}",
                    datanet.datanet_id,
                    datanet.version,
                    hex::encode(root),
                    datanet.root
                )));
            }
        }
        Ok(())
    }

    /// Contributor of each contribution.
    pub fn contributors(&self) -> BTreeMap<u64, String> {
        self.contributions
            .iter()
            .map(|c| (c.contribution_id, c.contributor.clone()))
            .collect()
    }

    /// Reads every contribution's bytes from `store`, checking each against its hash.
    pub fn read(&self, store: &BlockingStore) -> Result<Vec<(u64, Vec<u8>)>, EngineError> {
        let mut texts = Vec::with_capacity(self.contributions.len());
        for c in &self.contributions {
            let hash = parse_hash(c)?;
            let bytes = store.get(&hash)?.ok_or_else(|| {
                EngineError::Corpus(format!(
                    "the content store has no blob {} (contribution {})",
                    c.content_hash, c.contribution_id
                ))
            })?;
            if ContentHash::of(&bytes) != hash {
                return Err(EngineError::Corpus(format!(
                    "blob {} of contribution {} does not hash to its name",
                    c.content_hash, c.contribution_id
                )));
            }
            texts.push((c.contribution_id, bytes));
        }
        texts.sort_by_key(|(id, _)| *id);
        Ok(texts)
    }
}

fn parse_hash(c: &Contribution) -> Result<ContentHash, EngineError> {
    c.content_hash.parse().map_err(|_| {
        EngineError::Corpus(format!(
            "contribution {}: `{}` is not a SHA-256 hex hash",
            c.contribution_id, c.content_hash
        ))
    })
}

/// Opens a content store: an `http(s)://` URL of a store server, or a local folder.
pub fn open_store(location: &str) -> Result<BlockingStore, EngineError> {
    let store: Arc<dyn ContentStore> =
        if location.starts_with("http://") || location.starts_with("https://") {
            Arc::new(HttpStore::new(location)?)
        } else {
            Arc::new(LocalStore::open(location)?)
        };
    Ok(BlockingStore::new(store)?)
}

/// Every training example of `texts` (contribution id, bytes), in contribution order.
pub fn examples(texts: &[(u64, Vec<u8>)], context: usize) -> Vec<Example> {
    texts
        .iter()
        .flat_map(|(id, bytes)| windows(*id, bytes, context))
        .collect()
}

/// A training example: a token window that remembers where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub contribution_id: u64,
    /// `context + 1` tokens at most: inputs are `tokens[..n-1]`, targets `tokens[1..]`.
    pub tokens: Vec<u32>,
}

/// Splits one document into windows of `context + 1` tokens that together cover every token.
///
/// Windows start every `context` tokens; the last one is aligned to the document's end, so a
/// tail shorter than a window overlaps its predecessor instead of being padded.
pub fn windows(contribution_id: u64, text: &[u8], context: usize) -> Vec<Example> {
    let tokens = encode_document(text);
    let span = context + 1;
    if tokens.len() <= span {
        return vec![Example {
            contribution_id,
            tokens,
        }];
    }
    let mut starts: Vec<usize> = (0..tokens.len() - span + 1).step_by(context).collect();
    let last = tokens.len() - span;
    if starts.last() != Some(&last) {
        starts.push(last);
    }
    starts
        .into_iter()
        .map(|start| Example {
            contribution_id,
            tokens: tokens[start..start + span].to_vec(),
        })
        .collect()
}

/// A padded batch: inputs and targets `[batch, seq]` and per-target loss weights.
pub struct Batch {
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
    /// Zero on padding; each example's weights sum to one.
    pub weights: Tensor<2>,
    /// Number of real (weighted) target tokens.
    pub tokens: usize,
}

/// Batches examples; each example's loss is the mean over its own targets.
pub fn batch(examples: &[&Example], device: &Device) -> Batch {
    let rows: Vec<(Vec<u32>, usize)> = examples.iter().map(|e| (e.tokens.clone(), 1)).collect();
    pack(&rows, device)
}

/// A query: the completion's tokens are scored, the prompt only conditions them.
///
/// The sequence is `BOS, prompt, completion`, cut from the left to fit the context.
pub fn query(prompt: &[u8], completion: &[u8], context: usize, device: &Device) -> Batch {
    let mut tokens = vec![BOS];
    tokens.extend(encode(prompt));
    let completion_tokens = encode(completion);
    tokens.extend(&completion_tokens);
    let span = context + 1;
    let cut = tokens.len().saturating_sub(span);
    let tokens = tokens[cut..].to_vec();
    // Targets are tokens[1..]; the last `completion` of them are the completion.
    let targets = tokens.len() - 1;
    let scored = completion_tokens.len().min(targets);
    pack(&[(tokens, targets - scored + 1)], device)
}

/// A row of tokens of which only those from `first_scored` on are predicted and scored.
pub struct ScoredRow {
    pub tokens: Vec<u32>,
    pub first_scored: usize,
}

/// Packs rows into one padded batch; each row's loss is the mean over its scored tokens.
pub fn pack_rows(rows: &[ScoredRow], device: &Device) -> Batch {
    let rows: Vec<(Vec<u32>, usize)> = rows
        .iter()
        .map(|r| (r.tokens.clone(), r.first_scored))
        .collect();
    pack(&rows, device)
}

/// Packs token rows; row `r` weights its targets from position `first_scored - 1` on.
fn pack(rows: &[(Vec<u32>, usize)], device: &Device) -> Batch {
    let seq = rows
        .iter()
        .map(|(t, _)| t.len().saturating_sub(1))
        .max()
        .unwrap_or(0)
        .max(1);
    let n = rows.len();
    let mut inputs = vec![0i64; n * seq];
    let mut targets = vec![0i64; n * seq];
    let mut weights = vec![0f32; n * seq];
    let mut total = 0;
    for (r, (tokens, first_scored)) in rows.iter().enumerate() {
        let len = tokens.len().saturating_sub(1);
        let first = first_scored.saturating_sub(1).min(len);
        let scored = len - first;
        total += scored;
        for t in 0..len {
            inputs[r * seq + t] = tokens[t] as i64;
            targets[r * seq + t] = tokens[t + 1] as i64;
            if t >= first {
                weights[r * seq + t] = 1.0 / scored as f32;
            }
        }
    }
    Batch {
        inputs: Tensor::from_data(TensorData::new(inputs, [n, seq]), device),
        targets: Tensor::from_data(TensorData::new(targets, [n, seq]), device),
        weights: Tensor::from_data(TensorData::new(weights, [n, seq]), device),
        tokens: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_every_token_once_at_least() {
        let text = vec![b'x'; 100];
        let ws = windows(7, &text, 16);
        assert!(ws
            .iter()
            .all(|w| w.tokens.len() == 17 && w.contribution_id == 7));
        // 101 tokens: starts 0,16,...,80 and a final window aligned to the end (84).
        assert_eq!(ws.len(), 7);
        assert_eq!(ws[0].tokens[0], BOS);
        let short = windows(1, b"hi", 16);
        assert_eq!(short.len(), 1);
        assert_eq!(short[0].tokens, vec![BOS, b'h' as u32, b'i' as u32]);
    }

    #[test]
    fn a_passage_gives_back_the_bytes_of_its_window() {
        use crate::tokenizer::decode;
        use tributary_attrib_api::Passage;
        // Every byte distinct by position, so a misplaced range cannot match by chance.
        let text: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
        for context in [1usize, 2, 5, 16, 64] {
            for len in [0usize, 1, 2, 5, 16, 17, 63, 64, 65, 100, 129, 300] {
                let doc = &text[..len];
                let ws = windows(3, doc, context);
                for (k, w) in ws.iter().enumerate() {
                    let passage = Passage {
                        window: k as u32,
                        windows: ws.len() as u32,
                        context: context as u32,
                    };
                    let range = passage.byte_range(len as u64);
                    assert_eq!(
                        &doc[range.start as usize..range.end as usize],
                        decode(&w.tokens).as_slice(),
                        "context {context}, {len} bytes, window {k} of {}",
                        ws.len()
                    );
                }
            }
        }
    }

    #[test]
    fn query_scores_only_the_completion() {
        let device = Device::flex();
        let q = query(b"ab", b"cd", 16, &device);
        // BOS a b c d -> inputs BOS a b c, targets a b c d; completion targets c, d.
        let w: Vec<f32> = q.weights.into_data().try_to_vec().unwrap();
        assert_eq!(w, vec![0.0, 0.0, 0.5, 0.5]);
        assert_eq!(q.tokens, 2);
        // Cut from the left when too long; the completion stays whole.
        let q = query(&[b'p'; 40], b"xyz", 8, &device);
        let w: Vec<f32> = q.weights.into_data().try_to_vec().unwrap();
        assert_eq!(w.len(), 8);
        assert_eq!(w.iter().filter(|&&x| x > 0.0).count(), 3);
    }
}
