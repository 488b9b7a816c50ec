//! Measuring attribution against ground truth.
//!
//! * **Planted sources**: a generated corpus in which every contributor owns distinctive facts;
//!   a completion that states a fact must be attributed to its owner first.
//! * **LDS** (linear datamodeling score, as in TRAK and dattri): models retrained on random
//!   halves of the contributions; for each query, the Spearman correlation between the summed
//!   scores of each half and the query's actual loss reduction under the model trained on it.

use std::path::Path;

use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tributary_store::ContentHash;
use tributary_types::DatanetRoot;

use crate::artifact::ModelArtifact;
use crate::data::{examples, query, Contribution, Corpus, Example};
use crate::engine::{build_index, Attribution, Engine, IndexSettings};
use crate::error::EngineError;
use crate::index::{GradientIndex, Method};
use crate::training::{train, TrainConfig};

/// A fact planted in one contributor's documents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlantedFact {
    pub contributor: String,
    /// `The river of Velmora is` — the prompt.
    pub prompt: String,
    /// ` Quendil.` — the completion that reproduces the fact.
    pub completion: String,
}

/// A generated corpus with ground truth.
#[derive(Clone, Debug)]
pub struct PlantedCorpus {
    pub corpus: Corpus,
    /// `(contribution id, bytes)`, by id.
    pub texts: Vec<(u64, Vec<u8>)>,
    pub facts: Vec<PlantedFact>,
}

/// Shape of a planted corpus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlantedSpec {
    pub contributors: usize,
    pub contributions_per_contributor: usize,
    pub facts_per_contributor: usize,
    /// Shared filler sentences per document.
    pub filler_per_document: usize,
    pub seed: u64,
}

impl Default for PlantedSpec {
    fn default() -> Self {
        PlantedSpec {
            contributors: 8,
            contributions_per_contributor: 2,
            facts_per_contributor: 3,
            filler_per_document: 4,
            seed: 1,
        }
    }
}

const ATTRIBUTES: [&str; 8] = [
    "river", "capital", "founder", "anthem", "harbor", "festival", "mountain", "guild",
];
const FILLER: [&str; 12] = [
    "Travelers often write about the weather and the roads.",
    "Most records were copied by hand and kept in the archive.",
    "The old maps disagree on many small details.",
    "Merchants came in spring and left before the first snow.",
    "Scholars still argue about the oldest names.",
    "Every village keeps a ledger of its markets.",
    "The chronicle lists many places in no particular order.",
    "Some of these notes were gathered from letters.",
    "A later hand added corrections in the margins.",
    "The index at the end of the book is incomplete.",
    "Several pages were lost in a fire long ago.",
    "Readers are advised to compare the sources.",
];

fn invented_word(rng: &mut ChaCha8Rng, syllables: usize) -> String {
    const ONSETS: [&str; 16] = [
        "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "qu",
    ];
    const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "y"];
    let mut word = String::new();
    for _ in 0..syllables {
        word.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
        word.push_str(VOWELS[rng.random_range(0..VOWELS.len())]);
    }
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// Generates a planted corpus. Every fact appears in each of its owner's documents (twice),
/// never in anyone else's; filler sentences are shared by everyone.
pub fn planted_corpus(spec: &PlantedSpec) -> PlantedCorpus {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut facts = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut fresh = |rng: &mut ChaCha8Rng, syllables| loop {
        let w = invented_word(rng, syllables);
        if used.insert(w.clone()) {
            return w;
        }
    };
    let mut contributions = Vec::new();
    let mut texts = Vec::new();
    let mut id = 1u64;
    for c in 0..spec.contributors {
        let contributor = format!("trib1contributor{c:03}");
        let own: Vec<(String, String)> = (0..spec.facts_per_contributor)
            .map(|_| {
                let attribute = ATTRIBUTES[rng.random_range(0..ATTRIBUTES.len())];
                let entity = fresh(&mut rng, 3);
                let value = fresh(&mut rng, 3);
                (
                    format!("The {attribute} of {entity} is"),
                    format!(" {value}."),
                )
            })
            .collect();
        for (prompt, completion) in &own {
            facts.push(PlantedFact {
                contributor: contributor.clone(),
                prompt: prompt.clone(),
                completion: completion.clone(),
            });
        }
        for _ in 0..spec.contributions_per_contributor {
            let mut sentences: Vec<String> = own
                .iter()
                .flat_map(|(p, v)| [format!("{p}{v}"), format!("{p}{v}")])
                .collect();
            for _ in 0..spec.filler_per_document {
                sentences.push(FILLER[rng.random_range(0..FILLER.len())].to_string());
            }
            sentences.shuffle(&mut rng);
            let text = sentences.join(" ").into_bytes();
            contributions.push(Contribution {
                contribution_id: id,
                datanet_id: 1,
                contributor: contributor.clone(),
                content_hash: ContentHash::of(&text).to_hex(),
                leaf_index: None,
            });
            texts.push((id, text));
            id += 1;
        }
    }
    PlantedCorpus {
        corpus: Corpus {
            datanets: vec![DatanetRoot {
                datanet_id: 1,
                version: 1,
                root: cosmwasm_std::HexBinary::from(vec![0u8; 32]),
            }],
            contributions,
        },
        texts,
        facts,
    }
}

/// Trains a model on a corpus given with its bytes and indexes it, under `dir`.
pub fn train_and_index(
    dir: &Path,
    corpus: &Corpus,
    texts: &[(u64, Vec<u8>)],
    train_config: &TrainConfig,
    settings: &IndexSettings,
    progress: bool,
) -> Result<Engine, EngineError> {
    let examples = examples(texts, train_config.model.context);
    let trained = train(
        train_config,
        &examples,
        &Device::flex().autodiff(),
        progress,
    )
    .map_err(EngineError::Model)?;
    let artifact = ModelArtifact::save(&dir.join("model"), train_config, corpus, &trained)?;
    build_index(&artifact, &examples, &dir.join("index"), settings, progress)?;
    let index = GradientIndex::open(&dir.join("index"))?;
    Engine::new(artifact, index)
}

/// Planted-source accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlantedReport {
    pub method: String,
    pub queries: usize,
    pub top1: f64,
    pub top3: f64,
}

/// How often the owner of each planted fact is the first (and among the first three)
/// contributor by attribution score.
pub fn planted_accuracy(
    engine: &Engine,
    facts: &[PlantedFact],
    method: Method,
) -> Result<PlantedReport, EngineError> {
    let (mut top1, mut top3) = (0usize, 0usize);
    for fact in facts {
        let attribution =
            engine.attribute(fact.prompt.as_bytes(), fact.completion.as_bytes(), method)?;
        let rank = attribution
            .contributors
            .iter()
            .position(|c| c.contributor == fact.contributor);
        top1 += usize::from(rank == Some(0));
        top3 += usize::from(rank.is_some_and(|r| r < 3));
    }
    let n = facts.len().max(1) as f64;
    Ok(PlantedReport {
        method: method.id().to_string(),
        queries: facts.len(),
        top1: top1 as f64 / n,
        top3: top3 as f64 / n,
    })
}

/// Spearman rank correlation (average ranks for ties); 0 when either side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    fn ranks(v: &[f64]) -> Vec<f64> {
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut ranks = vec![0.0; v.len()];
        let mut i = 0;
        while i < order.len() {
            let mut j = i;
            while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
                j += 1;
            }
            let rank = (i + j) as f64 / 2.0;
            for &k in &order[i..=j] {
                ranks[k] = rank;
            }
            i = j + 1;
        }
        ranks
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va.sqrt() * vb.sqrt())
    }
}

/// One query of an LDS run.
#[derive(Clone, Debug)]
pub struct LdsQuery {
    pub prompt: Vec<u8>,
    pub completion: Vec<u8>,
}

/// The retrained models' losses: `losses[subset][query]`, and which contributions each subset
/// kept.
pub struct Retrained {
    pub subsets: Vec<Vec<u64>>,
    pub losses: Vec<Vec<f64>>,
}

/// Mean loss of each query's completion under `model`.
pub fn query_losses(
    model: &crate::model::Lm,
    context: usize,
    queries: &[LdsQuery],
    device: &Device,
) -> Vec<f64> {
    queries
        .iter()
        .map(|q| {
            let b = query(&q.prompt, &q.completion, context, device);
            let (loss, _) = model.weighted_loss(b.inputs, b.targets, b.weights, None);
            loss.into_scalar::<f32>() as f64
        })
        .collect()
}

/// A completion's loss under a model: the mean negative log-likelihood of its bytes in nats,
/// and the same in bits per byte.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompletionLoss {
    pub bytes: usize,
    pub nats_per_byte: f64,
    pub bits_per_byte: f64,
}

/// The loss of every byte of `completion` after `prompt`, each predicted with at least half a
/// context window of what precedes it (the prompt, then the completion so far): the completion
/// is scored in chunks of `context / 2` bytes, each with the `context` bytes before its end as
/// input. A completion longer than the context is scored whole, not only its last window.
pub fn completion_loss(
    model: &crate::model::Lm,
    context: usize,
    prompt: &[u8],
    completion: &[u8],
    device: &Device,
) -> CompletionLoss {
    let chunk = (context / 2).max(1);
    let mut total = 0.0;
    for start in (0..completion.len()).step_by(chunk) {
        let end = (start + chunk).min(completion.len());
        let mut before = prompt.to_vec();
        before.extend_from_slice(&completion[..start]);
        let b = query(&before, &completion[start..end], context, device);
        let (loss, _) = model.weighted_loss(b.inputs, b.targets, b.weights, None);
        total += loss.into_scalar::<f32>() as f64 * (end - start) as f64;
    }
    let nats = if completion.is_empty() {
        0.0
    } else {
        total / completion.len() as f64
    };
    CompletionLoss {
        bytes: completion.len(),
        nats_per_byte: nats,
        bits_per_byte: nats / std::f64::consts::LN_2,
    }
}

/// Each query's loss averaged over models trained on `texts` with `seeds` different seeds
/// (`first_seed`, `first_seed + 1`, ...).
pub fn seed_averaged_losses(
    texts: &[(u64, Vec<u8>)],
    train_config: &TrainConfig,
    queries: &[LdsQuery],
    seeds: usize,
    first_seed: u64,
) -> Result<Vec<f64>, EngineError> {
    let device = Device::flex().autodiff();
    let examples: Vec<Example> = examples(texts, train_config.model.context);
    let mut sum = vec![0.0; queries.len()];
    for k in 0..seeds.max(1) {
        let config = train_config.clone().with_seed(first_seed + k as u64);
        let trained = train(&config, &examples, &device, false).map_err(EngineError::Model)?;
        let losses = query_losses(&trained.model, config.model.context, queries, &device);
        for (total, loss) in sum.iter_mut().zip(losses) {
            *total += loss;
        }
    }
    Ok(sum.into_iter().map(|l| l / seeds.max(1) as f64).collect())
}

/// Retrains on `models` random halves of the contributions (seeded) and measures each query's
/// loss, averaged over `seeds_per_subset` training seeds per half.
pub fn retrain_subsets(
    texts: &[(u64, Vec<u8>)],
    train_config: &TrainConfig,
    queries: &[LdsQuery],
    models: usize,
    seed: u64,
    seeds_per_subset: usize,
    mut on_model: impl FnMut(usize),
) -> Result<Retrained, EngineError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids: Vec<u64> = texts.iter().map(|(id, _)| *id).collect();
    let mut subsets = Vec::with_capacity(models);
    let mut losses = Vec::with_capacity(models);
    for m in 0..models {
        let mut chosen = ids.clone();
        chosen.shuffle(&mut rng);
        chosen.truncate(ids.len() / 2);
        chosen.sort_unstable();
        let subset: Vec<(u64, Vec<u8>)> = texts
            .iter()
            .filter(|(id, _)| chosen.contains(id))
            .cloned()
            .collect();
        losses.push(seed_averaged_losses(
            &subset,
            train_config,
            queries,
            seeds_per_subset,
            train_config.seed,
        )?);
        subsets.push(chosen);
        on_model(m);
    }
    Ok(Retrained { subsets, losses })
}

/// LDS of per-contribution scores (`scores[query]` as `(contribution id, score)`).
pub fn lds(scores: &[Vec<(u64, f64)>], retrained: &Retrained) -> f64 {
    let mut total = 0.0;
    for (q, query_scores) in scores.iter().enumerate() {
        let predicted: Vec<f64> = retrained
            .subsets
            .iter()
            .map(|subset| {
                query_scores
                    .iter()
                    .filter(|(id, _)| subset.contains(id))
                    .map(|(_, s)| s)
                    .sum()
            })
            .collect();
        // A positive score means training on the contribution lowers the query's loss.
        let actual: Vec<f64> = retrained.losses.iter().map(|l| -l[q]).collect();
        total += spearman(&predicted, &actual);
    }
    total / scores.len().max(1) as f64
}

/// Per-contribution scores of an attribution, by id.
pub fn contribution_scores(attribution: &Attribution) -> Vec<(u64, f64)> {
    attribution
        .contributions
        .iter()
        .map(|c| (c.contribution_id, c.score))
        .collect()
}

/// Okapi BM25 (k1 = 1.2, b = 0.75) of every contribution for `query`: the lexical control a
/// gradient method has to beat. Words are runs of ASCII letters and digits, lowercased.
pub fn bm25_scores(texts: &[(u64, Vec<u8>)], query: &[u8]) -> Vec<(u64, f64)> {
    const K1: f64 = 1.2;
    const B: f64 = 0.75;
    fn words(text: &[u8]) -> Vec<String> {
        text.split(|b| !b.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).to_ascii_lowercase())
            .collect()
    }
    let docs: Vec<(u64, Vec<String>)> = texts.iter().map(|(id, t)| (*id, words(t))).collect();
    let n = docs.len() as f64;
    let mean_len = docs.iter().map(|(_, w)| w.len()).sum::<usize>() as f64 / n.max(1.0);
    let mut terms = words(query);
    terms.sort();
    terms.dedup();
    let idf: Vec<f64> = terms
        .iter()
        .map(|t| {
            let df = docs.iter().filter(|(_, w)| w.contains(t)).count() as f64;
            ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
        })
        .collect();
    docs.iter()
        .map(|(id, w)| {
            let len = w.len() as f64;
            let score = terms
                .iter()
                .zip(&idf)
                .map(|(t, idf)| {
                    let tf = w.iter().filter(|x| *x == t).count() as f64;
                    idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / mean_len.max(1e-9)))
                })
                .sum();
            (*id, score)
        })
        .collect()
}

/// Random scores: the floor any method must clear.
pub fn random_scores(ids: &[u64], seed: u64) -> Vec<(u64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    ids.iter()
        .map(|&id| (id, rng.random::<f64>() - 0.5))
        .collect()
}

/// Planted-source accuracy of every method on a generated corpus, trained and indexed in `dir`.
pub fn evaluate_planted(
    dir: &Path,
    spec: &PlantedSpec,
    train_config: &TrainConfig,
    settings: &IndexSettings,
    progress: bool,
) -> Result<Vec<PlantedReport>, EngineError> {
    let planted = planted_corpus(spec);
    let engine = train_and_index(
        dir,
        &planted.corpus,
        &planted.texts,
        train_config,
        settings,
        progress,
    )?;
    let mut reports = Method::ALL
        .iter()
        .map(|&method| planted_accuracy(&engine, &planted.facts, method))
        .collect::<Result<Vec<_>, _>>()?;
    reports.push(bm25_planted_accuracy(&planted));
    Ok(reports)
}

/// [`planted_accuracy`] of the BM25 control: contributors ranked by their best document.
pub fn bm25_planted_accuracy(planted: &PlantedCorpus) -> PlantedReport {
    let owner = planted.corpus.contributors();
    let (mut top1, mut top3) = (0usize, 0usize);
    for fact in &planted.facts {
        let query = format!("{}{}", fact.prompt, fact.completion);
        let mut best: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
        for (id, score) in bm25_scores(&planted.texts, query.as_bytes()) {
            let who = owner[&id].as_str();
            let entry = best.entry(who).or_insert(f64::MIN);
            *entry = entry.max(score);
        }
        let mut ranked: Vec<(&str, f64)> = best.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let rank = ranked.iter().position(|(c, _)| *c == fact.contributor);
        top1 += usize::from(rank == Some(0));
        top3 += usize::from(rank.is_some_and(|r| r < 3));
    }
    let n = planted.facts.len().max(1) as f64;
    PlantedReport {
        method: "bm25".into(),
        queries: planted.facts.len(),
        top1: top1 as f64 / n,
        top3: top3 as f64 / n,
    }
}

/// One method's LDS on one set of queries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LdsRow {
    /// Method id, `bm25` (lexical control) or `random`.
    pub method: String,
    /// `trained` (planted facts as the model saw them) or `held-out` (the same facts in a
    /// framing no training document contains).
    pub queries: String,
    /// Checkpoints whose scores are summed (0 for the controls).
    pub checkpoints: usize,
    pub lds: f64,
}

/// How much the retrained models' query losses move with the training seed alone, and with
/// the data: LDS measures data only where the second is well above the first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossSpread {
    /// Mean over queries of |loss difference| between two models on all the data that differ
    /// only in their seeds (each averaged over `seeds_per_subset` seeds), in nats.
    pub seed: f64,
    /// Mean over queries and consecutive pairs of retrained halves of |loss difference|.
    pub subset: f64,
}

/// An LDS run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LdsReport {
    pub contributions: usize,
    pub queries: usize,
    pub models: usize,
    /// Training seeds averaged per retrained half.
    pub seeds_per_subset: usize,
    pub retrain_seconds: f64,
    pub spread: LossSpread,
    pub rows: Vec<LdsRow>,
}

/// A planted fact in a framing no document of the planted corpus contains.
fn held_out(fact: &PlantedFact) -> LdsQuery {
    LdsQuery {
        prompt: format!("People still say that {}", lowercase_first(&fact.prompt)).into_bytes(),
        completion: fact.completion.clone().into_bytes(),
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

fn mean_abs_difference(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
}

/// LDS of the random and BM25 controls and of every method, with the final checkpoint only and
/// with every checkpoint, against `models` retrainings on random halves of a planted corpus
/// (each averaged over `seeds_per_subset` seeds), with the seed-versus-data spread of their
/// losses. Two query sets: every second planted fact as trained (`trained`), and the same
/// facts in a framing no document contains (`held-out`).
pub fn evaluate_lds(
    dir: &Path,
    spec: &PlantedSpec,
    train_config: &TrainConfig,
    settings: &IndexSettings,
    models: usize,
    seeds_per_subset: usize,
    progress: bool,
) -> Result<LdsReport, EngineError> {
    let planted = planted_corpus(spec);
    let chosen: Vec<&PlantedFact> = planted.facts.iter().step_by(2).collect();
    let trained_queries: Vec<LdsQuery> = chosen
        .iter()
        .map(|f| LdsQuery {
            prompt: f.prompt.clone().into_bytes(),
            completion: f.completion.clone().into_bytes(),
        })
        .collect();
    let held_out_queries: Vec<LdsQuery> = chosen.iter().map(|f| held_out(f)).collect();
    let queries: Vec<LdsQuery> = trained_queries
        .iter()
        .chain(&held_out_queries)
        .cloned()
        .collect();
    let all = train_and_index(
        &dir.join("all"),
        &planted.corpus,
        &planted.texts,
        train_config,
        settings,
        progress,
    )?;
    let final_only = IndexSettings {
        all_checkpoints: false,
        ..settings.clone()
    };
    let all_examples = examples(&planted.texts, train_config.model.context);
    build_index(
        &all.artifact,
        &all_examples,
        &dir.join("final-index"),
        &final_only,
        false,
    )?;
    let last = Engine::new(
        all.artifact.clone(),
        GradientIndex::open(&dir.join("final-index"))?,
    )?;

    let started = std::time::Instant::now();
    let bar = crate::training::progress_bar(models as u64 + 2, progress, "retraining");
    let retrained = retrain_subsets(
        &planted.texts,
        train_config,
        &queries,
        models,
        spec.seed ^ 0x1d5,
        seeds_per_subset,
        |_| bar.inc(1),
    )?;
    // Two models on all the data that differ only in their seeds.
    let k = seeds_per_subset.max(1);
    let seed_a = seed_averaged_losses(
        &planted.texts,
        train_config,
        &queries,
        k,
        train_config.seed + 1_000,
    )?;
    bar.inc(1);
    let seed_b = seed_averaged_losses(
        &planted.texts,
        train_config,
        &queries,
        k,
        train_config.seed + 2_000,
    )?;
    bar.finish_and_clear();
    let retrain_seconds = started.elapsed().as_secs_f64();
    let pairs = retrained.losses.windows(2);
    let subset = pairs
        .clone()
        .map(|w| mean_abs_difference(&w[0], &w[1]))
        .sum::<f64>()
        / pairs.len().max(1) as f64;
    let spread = LossSpread {
        seed: mean_abs_difference(&seed_a, &seed_b),
        subset,
    };

    let ids: Vec<u64> = planted
        .corpus
        .contributions
        .iter()
        .map(|c| c.contribution_id)
        .collect();
    let n = trained_queries.len();
    let mut rows = Vec::new();
    for (label, range) in [("trained", 0..n), ("held-out", n..2 * n)] {
        let set = &queries[range.clone()];
        let losses = Retrained {
            subsets: retrained.subsets.clone(),
            losses: retrained
                .losses
                .iter()
                .map(|l| l[range.clone()].to_vec())
                .collect(),
        };
        let random: Vec<Vec<(u64, f64)>> = range
            .clone()
            .map(|q| random_scores(&ids, q as u64))
            .collect();
        rows.push(LdsRow {
            method: "random".into(),
            queries: label.into(),
            checkpoints: 0,
            lds: lds(&random, &losses),
        });
        let lexical: Vec<Vec<(u64, f64)>> = set
            .iter()
            .map(|q| {
                bm25_scores(
                    &planted.texts,
                    &[q.prompt.as_slice(), &q.completion].concat(),
                )
            })
            .collect();
        rows.push(LdsRow {
            method: "bm25".into(),
            queries: label.into(),
            checkpoints: 0,
            lds: lds(&lexical, &losses),
        });
        for method in Method::ALL {
            for engine in [&last, &all] {
                let scores = set
                    .iter()
                    .map(|q| {
                        Ok(contribution_scores(&engine.attribute(
                            &q.prompt,
                            &q.completion,
                            method,
                        )?))
                    })
                    .collect::<Result<Vec<_>, EngineError>>()?;
                rows.push(LdsRow {
                    method: method.id().to_string(),
                    queries: label.into(),
                    checkpoints: engine.index.n_checkpoints(),
                    lds: lds(&scores, &losses),
                });
            }
        }
    }
    Ok(LdsReport {
        contributions: ids.len(),
        queries: n,
        models,
        seeds_per_subset: k,
        retrain_seconds,
        spread,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_matches_known_values() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        // Ties get average ranks: ranks a = [0,1,2,3], b = [0.5,0.5,2,3] -> 0.9486832980505138.
        assert!(
            (spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0, 2.0, 3.0]) - 0.9486832980505138).abs()
                < 1e-12
        );
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn bm25_prefers_documents_with_the_rarer_query_words() {
        let texts = vec![
            (1, b"the river of Velmora is Quendil.".to_vec()),
            (2, b"the harbor of Tosk is wide.".to_vec()),
            (3, b"the old maps of the harbor.".to_vec()),
            (4, b"nothing in common here".to_vec()),
        ];
        let scores: std::collections::BTreeMap<u64, f64> =
            bm25_scores(&texts, b"The river of Velmora is")
                .into_iter()
                .collect();
        assert!(
            scores[&1] > scores[&2] && scores[&1] > scores[&3],
            "{scores:?}"
        );
        assert_eq!(scores[&4], 0.0);
        // "harbor" is in two documents, "tosk" in one: the one naming Tosk wins.
        let scores: std::collections::BTreeMap<u64, f64> =
            bm25_scores(&texts, b"harbor of Tosk").into_iter().collect();
        assert!(scores[&2] > scores[&3], "{scores:?}");
        // Case and punctuation do not matter.
        assert_eq!(
            bm25_scores(&texts, b"VELMORA!"),
            bm25_scores(&texts, b"velmora")
        );
    }

    #[test]
    fn held_out_framings_are_in_no_planted_document() {
        let planted = planted_corpus(&PlantedSpec::default());
        for fact in &planted.facts {
            let q = held_out(fact);
            let text = [q.prompt.as_slice(), q.completion.as_slice()].concat();
            assert!(!planted
                .texts
                .iter()
                .any(|(_, t)| t.windows(text.len()).any(|w| w == text.as_slice())));
            assert!(String::from_utf8_lossy(&q.prompt).ends_with(&fact.prompt[1..]));
        }
    }

    fn tiny() -> crate::model::LmConfig {
        crate::model::LmConfig::new()
            .with_d_model(16)
            .with_n_layers(1)
            .with_n_heads(2)
            .with_d_ff(32)
            .with_context(16)
    }

    #[test]
    fn an_untrained_model_is_near_uniform_and_training_lowers_the_loss_of_what_it_saw() {
        let device = Device::flex();
        let text = b"the quick brown fox jumps over the lazy dog. ".repeat(8);
        let untrained = tiny().init(&device);
        let before = completion_loss(&untrained, 16, b"the ", &text, &device);
        // Small initial logits make every one of the 257 symbols about as likely.
        let uniform = (crate::tokenizer::VOCAB_SIZE as f64).ln();
        assert!((before.nats_per_byte - uniform).abs() < 0.5, "{before:?}");
        assert!(
            (before.bits_per_byte * std::f64::consts::LN_2 - before.nats_per_byte).abs() < 1e-12
        );
        // The whole completion is scored, not only its last window.
        assert_eq!(before.bytes, text.len());

        let config = TrainConfig::new(tiny())
            .with_steps(80)
            .with_warmup_steps(5)
            .with_checkpoints(0);
        let trained =
            crate::training::train_on_cpu(&config, &examples(&[(1, text.clone())], 16), false)
                .unwrap();
        let after = completion_loss(&trained.model, 16, b"the ", &text, &device);
        assert!(
            after.nats_per_byte < before.nats_per_byte - 1.0,
            "{before:?} -> {after:?}"
        );
        assert_eq!(
            completion_loss(&trained.model, 16, b"x", b"", &device).nats_per_byte,
            0.0
        );
    }

    #[test]
    fn planted_facts_live_only_in_their_owners_documents() {
        let planted = planted_corpus(&PlantedSpec::default());
        assert_eq!(planted.facts.len(), 8 * 3);
        let owner_of = planted.corpus.contributors();
        for fact in &planted.facts {
            let sentence = format!("{}{}", fact.prompt, fact.completion);
            for (id, text) in &planted.texts {
                let holds = String::from_utf8_lossy(text).contains(&sentence);
                assert_eq!(
                    holds,
                    owner_of[id] == fact.contributor,
                    "fact {sentence} in contribution {id}"
                );
            }
        }
        planted.corpus.check().unwrap();
    }
}
