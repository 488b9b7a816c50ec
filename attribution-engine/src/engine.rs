//! Proof of Attribution: the gradient index of a model's training data, and the scoring of a
//! completion against it.

use std::collections::BTreeMap;
use std::path::Path;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use tributary_attrib_api::Passage;
use tributary_types::AttributionPacket;

use crate::artifact::ModelArtifact;
use crate::data::{batch, query, Example};
use crate::error::EngineError;
use crate::index::{
    CheckpointRef, GradientIndex, IndexHeader, IndexManifest, IndexWriter, Method, PreparedQuery,
    DEFAULT_DAMPING, DEFAULT_FISHER_ROWS,
};
use crate::inference::{generate, Sampling};
use crate::model::{LayerId, LinearKind, Lm, LmConfig};
use crate::packet::{build_packet, PacketInputs, PacketRequest};
use crate::projection::Projector;
use crate::training::progress_bar;

/// Which linear layers the index covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerSelection {
    /// Every block's feed-forward layers (`fc1`, `fc2`).
    Mlp,
    /// Every block's attention layers (`qkv`, `attn_out`).
    Attention,
    /// Every linear layer, the output head included.
    All,
    /// Layers by name (`blocks.0.fc2`, `head`).
    Named(Vec<String>),
}

impl LayerSelection {
    /// Parses `mlp`, `attention`, `all` or a comma-separated list of layer names.
    pub fn parse(s: &str) -> LayerSelection {
        match s {
            "mlp" => LayerSelection::Mlp,
            "attention" => LayerSelection::Attention,
            "all" => LayerSelection::All,
            names => {
                LayerSelection::Named(names.split(',').map(|n| n.trim().to_string()).collect())
            }
        }
    }

    /// The layers of a model shaped by `config`.
    pub fn resolve(&self, config: &LmConfig) -> Result<Vec<LayerId>, EngineError> {
        let all = config.linear_layers();
        let of_kind = |kinds: &[LinearKind]| {
            all.iter()
                .copied()
                .filter(|l| matches!(l, LayerId::Block { kind, .. } if kinds.contains(kind)))
                .collect::<Vec<_>>()
        };
        let layers = match self {
            LayerSelection::Mlp => of_kind(&[LinearKind::Fc1, LinearKind::Fc2]),
            LayerSelection::Attention => of_kind(&[LinearKind::Qkv, LinearKind::AttnOut]),
            LayerSelection::All => all.clone(),
            LayerSelection::Named(names) => names
                .iter()
                .map(|n| {
                    LayerId::parse(n)
                        .filter(|l| all.contains(l))
                        .ok_or_else(|| EngineError::Input(format!("the model has no layer `{n}`")))
                })
                .collect::<Result<_, _>>()?,
        };
        if layers.is_empty() {
            return Err(EngineError::Input(
                "no layers selected for the index".into(),
            ));
        }
        Ok(layers)
    }
}

/// How the index is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexSettings {
    pub layers: LayerSelection,
    /// Projected input width per layer.
    pub k_in: usize,
    /// Projected output-gradient width per layer.
    pub k_out: usize,
    pub projection_seed: u64,
    /// Damping of the preconditioner, as a share of each layer's mean eigenvalue.
    pub damping: f32,
    /// Rows the preconditioner is fitted on at most.
    pub fisher_rows_max: usize,
    /// Examples per batched gradient pass.
    pub batch_size: usize,
    /// Index every saved checkpoint (true) or only the final weights.
    pub all_checkpoints: bool,
}

impl Default for IndexSettings {
    fn default() -> Self {
        IndexSettings {
            layers: LayerSelection::Mlp,
            k_in: 32,
            k_out: 32,
            projection_seed: 0x7472_6962,
            damping: DEFAULT_DAMPING,
            fisher_rows_max: DEFAULT_FISHER_ROWS,
            batch_size: 64,
            all_checkpoints: true,
        }
    }
}

/// Indexes `examples` (the model's training examples) into `dir`.
pub fn build_index(
    artifact: &ModelArtifact,
    examples: &[Example],
    dir: &Path,
    settings: &IndexSettings,
    progress: bool,
) -> Result<IndexManifest, EngineError> {
    let config = &artifact.manifest.train.model;
    let device = Device::flex().autodiff();
    let layers = settings.layers.resolve(config)?;
    let projector = Projector::new(
        config,
        &layers,
        settings.k_in,
        settings.k_out,
        settings.projection_seed,
        &device,
    );
    let mut files = artifact.checkpoint_files();
    if !settings.all_checkpoints {
        files = files.split_off(files.len() - 1);
    }
    let header = IndexHeader {
        weights_hash: artifact.weights_hash().to_string(),
        datanet_roots: artifact.manifest.lineage.datanets.clone(),
        layers: projector.layers.clone(),
        projection_seed: settings.projection_seed,
        checkpoints: files
            .iter()
            .map(|(step, file)| CheckpointRef {
                name: file.name.clone(),
                step: *step,
                weights_hash: file.sha256.clone(),
            })
            .collect(),
        contribution_ids: examples.iter().map(|e| e.contribution_id).collect(),
        damping: settings.damping,
        fisher_rows_max: settings.fisher_rows_max,
    };
    let mut writer = IndexWriter::create(dir, header)?;
    let bar = progress_bar((examples.len() * files.len()) as u64, progress, "indexing");
    for (c, (_, file)) in files.iter().enumerate() {
        // Only the probes need gradients: frozen weights spare the backward pass every
        // parameter gradient.
        let model = artifact.load_file(file, &device)?.no_grad();
        for chunk in examples.chunks(settings.batch_size.max(1)) {
            let refs: Vec<&Example> = chunk.iter().collect();
            let (rows, _) = projector.project(&model, &batch(&refs, &device));
            writer.push_rows(c, &rows)?;
            bar.inc(chunk.len() as u64);
        }
    }
    bar.finish_and_clear();
    Ok(writer.finish()?)
}

/// A contribution's attribution score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContributionScore {
    pub contribution_id: u64,
    pub contributor: String,
    pub score: f64,
    /// Index of this contribution's highest-scoring training example: found for the
    /// [`PASSAGE_CONTRIBUTIONS`] best-ranked contributions only (their rows are scanned),
    /// `None` for the others.
    pub best_example: Option<usize>,
    /// Where that example lies among the contribution's windows, found with it.
    pub passage: Option<Passage>,
}

/// How many of the best-ranked contributions get their best example looked up.
pub const PASSAGE_CONTRIBUTIONS: usize = 10;

/// A contributor's summed score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContributorScore {
    pub contributor: String,
    pub score: f64,
}

/// Scores of one completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub method: Method,
    /// Every contribution of the lineage, by id.
    pub contributions: Vec<ContributionScore>,
    /// Contributors, highest score first (ties by address).
    pub contributors: Vec<ContributorScore>,
}

impl Attribution {
    /// Contributions by descending score (ties by id).
    pub fn ranked(&self) -> Vec<&ContributionScore> {
        let mut ranked: Vec<&ContributionScore> = self.contributions.iter().collect();
        ranked.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.contribution_id.cmp(&b.contribution_id))
        });
        ranked
    }
}

/// A model with its gradient index, ready to generate and attribute.
pub struct Engine {
    pub artifact: ModelArtifact,
    pub index: GradientIndex,
    projector: Projector,
    /// The model at each indexed checkpoint, on an autodiff device.
    checkpoints: Vec<Lm>,
    /// The final model without autodiff, for generation.
    model: Lm,
    device: Device,
}

impl Engine {
    /// Opens a model and its index, checking that the index was built for this model.
    pub fn open(model_dir: &Path, index_dir: &Path) -> Result<Engine, EngineError> {
        let artifact = ModelArtifact::open(model_dir)?;
        let index = GradientIndex::open(index_dir)?;
        Self::new(artifact, index)
    }

    /// [`Engine::open`] from already opened parts.
    pub fn new(artifact: ModelArtifact, index: GradientIndex) -> Result<Engine, EngineError> {
        let manifest = index.manifest().clone();
        if manifest.weights_hash != artifact.weights_hash() {
            return Err(EngineError::IndexModelMismatch {
                index: manifest.weights_hash,
                model: artifact.weights_hash().to_string(),
            });
        }
        let mut roots = manifest.datanet_roots.clone();
        roots.sort();
        let mut lineage = artifact.manifest.lineage.datanets.clone();
        lineage.sort();
        if roots != lineage {
            return Err(EngineError::Input(
                "the index names other datanet versions than the model's lineage".into(),
            ));
        }
        let device = Device::flex().autodiff();
        let files = artifact.checkpoint_files();
        let checkpoints = manifest
            .checkpoints
            .iter()
            .map(|c| {
                let (_, file) = files
                    .iter()
                    .find(|(_, f)| f.sha256 == c.weights_hash)
                    .ok_or_else(|| EngineError::Artifact {
                        path: artifact.dir.clone(),
                        reason: format!(
                            "the index uses checkpoint {} which the model does not have",
                            c.name
                        ),
                    })?;
                artifact.load_file(file, &device).map(Module::no_grad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let projector =
            Projector::from_specs(manifest.layers.clone(), manifest.projection_seed, &device);
        let model = artifact.load_model(&Device::flex())?;
        Ok(Engine {
            artifact,
            index,
            projector,
            checkpoints,
            model,
            device,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &LmConfig {
        &self.artifact.manifest.train.model
    }

    /// Continues `prompt`.
    pub fn generate(&self, prompt: &[u8], sampling: &Sampling) -> Vec<u8> {
        generate(
            &self.model,
            self.config().context,
            prompt,
            sampling,
            &Device::flex(),
        )
    }

    /// The completion's projected loss gradient at every indexed checkpoint.
    pub fn query_gradients(&self, prompt: &[u8], completion: &[u8]) -> Vec<Vec<f32>> {
        let q = query(prompt, completion, self.config().context, &self.device);
        self.checkpoints
            .iter()
            .map(|model| self.projector.project(model, &q).0)
            .collect()
    }

    /// Scores every training example, contribution and contributor for a completion.
    pub fn attribute(
        &self,
        prompt: &[u8],
        completion: &[u8],
        method: Method,
    ) -> Result<Attribution, EngineError> {
        if completion.is_empty() {
            return Err(EngineError::Input(
                "the completion is empty: nothing to attribute".into(),
            ));
        }
        let gradients = self.query_gradients(prompt, completion);
        let query = self.index.prepare(&gradients, method)?;
        Ok(self.aggregate(&query))
    }

    /// Scores every contribution of the lineage and contributor for a prepared query, from
    /// the index's contribution sums; scans the rows of the [`PASSAGE_CONTRIBUTIONS`] best
    /// contributions for their best examples. A lineage contribution without examples in the
    /// index scores 0; index contributions outside the lineage are left out.
    pub fn aggregate(&self, query: &PreparedQuery) -> Attribution {
        let lineage = &self.artifact.manifest.lineage;
        let indexed = self.index.contributions();
        let scores = self.index.contribution_scores(query);
        let mut per_contribution: BTreeMap<u64, f64> = lineage
            .contributions
            .iter()
            .map(|c| (c.contribution_id, 0.0))
            .collect();
        for (id, &score) in indexed.ids().iter().zip(&scores) {
            if let Some(sum) = per_contribution.get_mut(id) {
                *sum = score;
            }
        }
        let contributors = lineage.contributors();
        let mut contributions: Vec<ContributionScore> = per_contribution
            .into_iter()
            .map(|(id, score)| ContributionScore {
                contribution_id: id,
                contributor: contributors.get(&id).cloned().unwrap_or_default(),
                score,
                best_example: None,
                passage: None,
            })
            .collect();

        let mut ranked: Vec<usize> = (0..contributions.len())
            .filter(|&i| indexed.position(contributions[i].contribution_id).is_some())
            .collect();
        ranked.sort_by(|&a, &b| {
            let (a, b) = (&contributions[a], &contributions[b]);
            b.score
                .total_cmp(&a.score)
                .then(a.contribution_id.cmp(&b.contribution_id))
        });
        ranked.truncate(PASSAGE_CONTRIBUTIONS);
        let positions: Vec<usize> = ranked
            .iter()
            .filter_map(|&i| indexed.position(contributions[i].contribution_id))
            .collect();
        for (&i, best) in ranked
            .iter()
            .zip(self.index.best_examples(query, &positions))
        {
            contributions[i].best_example = best.map(|(example, _)| example);
            let position = indexed.position(contributions[i].contribution_id);
            contributions[i].passage = best.zip(position).and_then(|((example, _), position)| {
                let windows = indexed.examples(position);
                Some(Passage {
                    window: u32::try_from(windows.binary_search(&example).ok()?).ok()?,
                    windows: u32::try_from(windows.len()).ok()?,
                    context: u32::try_from(self.config().context).ok()?,
                })
            });
        }

        let mut by_contributor: BTreeMap<&str, f64> = BTreeMap::new();
        for c in &contributions {
            *by_contributor.entry(&c.contributor).or_default() += c.score;
        }
        let mut contributors: Vec<ContributorScore> = by_contributor
            .into_iter()
            .map(|(contributor, score)| ContributorScore {
                contributor: contributor.to_string(),
                score,
            })
            .collect();
        contributors.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.contributor.cmp(&b.contributor))
        });
        Attribution {
            method: query.method(),
            contributions,
            contributors,
        }
    }

    /// The method's parameters, everything an attestor must share to agree on scores.
    pub fn params(&self, method: Method, top_k: usize) -> serde_json::Value {
        let m = self.index.manifest();
        serde_json::json!({
            "method": method.id(),
            "index_hash": self.index.index_hash(),
            "layers": m.layers,
            "projection_seed": m.projection_seed,
            "checkpoints": m.checkpoints,
            "damping": m.damping,
            "top_k": top_k,
            "score_scale": crate::packet::SCORE_SCALE,
            "tokenizer": crate::artifact::TOKENIZER,
        })
    }

    /// The attribution packet for a served completion.
    pub fn packet(
        &self,
        request: &PacketRequest,
        completion: &[u8],
        attribution: &Attribution,
    ) -> Result<AttributionPacket, EngineError> {
        let scores: Vec<(u64, f64)> = attribution
            .contributions
            .iter()
            .map(|c| (c.contribution_id, c.score))
            .collect();
        build_packet(&PacketInputs {
            request,
            weights_hash: self.artifact.weights_hash(),
            datanet_roots: &self.artifact.manifest.lineage.datanets,
            method: attribution.method.id(),
            params: &self.params(attribution.method, request.top_k),
            completion,
            scores: &scores,
        })
        .map_err(EngineError::Model)
    }
}
