//! The model artifact: config, lineage, weights and checkpoints, content-hashed.
//!
//! ```text
//! <dir>/model.json           manifest: config, tokenizer, lineage, file hashes, weights_hash
//! <dir>/weights.bpk          final weights (burnpack)
//! <dir>/checkpoints/step-N.bpk
//! ```
//! `weights_hash` is the SHA-256 of `weights.bpk`: the value registered on chain and carried
//! by every attribution packet.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use tributary_store::ContentHash;

use crate::data::Corpus;
use crate::error::EngineError;
use crate::index::FileRef;
use crate::model::Lm;
use crate::training::{load_weights, weights_bytes, TrainConfig, TrainReport, Trained};

/// Format tag of `model.json`.
pub const MODEL_FORMAT: &str = "tributary-slm-1";
/// The only tokenizer: bytes plus a document token.
pub const TOKENIZER: &str = "bytes-v1";

/// Weights saved during training.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointFile {
    pub step: u64,
    pub file: FileRef,
}

/// `model.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub format: String,
    pub tokenizer: String,
    pub train: TrainConfig,
    pub lineage: Corpus,
    pub weights: FileRef,
    pub checkpoints: Vec<CheckpointFile>,
    pub weights_hash: String,
    pub report: TrainReport,
}

/// A model artifact on disk, verified.
#[derive(Clone, Debug)]
pub struct ModelArtifact {
    pub dir: PathBuf,
    pub manifest: ModelManifest,
}

/// Writes `bytes` to `path` durably: a temporary file, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

fn save_weights(dir: &Path, name: &str, model: &Lm) -> Result<FileRef, EngineError> {
    let bytes = weights_bytes(model).map_err(EngineError::Model)?;
    write_atomic(&dir.join(name), &bytes)?;
    Ok(FileRef {
        name: name.to_string(),
        bytes: bytes.len() as u64,
        sha256: ContentHash::of(&bytes).to_hex(),
    })
}

impl ModelArtifact {
    /// Saves a trained model with its lineage. The manifest is written last, so a crash
    /// leaves no artifact that looks complete.
    pub fn save(
        dir: &Path,
        train: &TrainConfig,
        lineage: &Corpus,
        trained: &Trained,
    ) -> Result<Self, EngineError> {
        let checkpoints_dir = dir.join("checkpoints");
        fs::create_dir_all(&checkpoints_dir).map_err(|source| EngineError::Io {
            path: checkpoints_dir.clone(),
            source,
        })?;
        let mut checkpoints = Vec::new();
        for checkpoint in &trained.checkpoints {
            let name = format!("checkpoints/step-{}.bpk", checkpoint.step);
            checkpoints.push(CheckpointFile {
                step: checkpoint.step as u64,
                file: save_weights(dir, &name, &checkpoint.model)?,
            });
        }
        let weights = save_weights(dir, "weights.bpk", &trained.model)?;
        let manifest = ModelManifest {
            format: MODEL_FORMAT.to_string(),
            tokenizer: TOKENIZER.to_string(),
            train: train.clone(),
            lineage: lineage.clone(),
            weights_hash: weights.sha256.clone(),
            weights,
            checkpoints,
            report: trained.report.clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(EngineError::Json)?;
        write_atomic(&dir.join("model.json"), &json)?;
        Ok(ModelArtifact {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Opens an artifact, checking its format and every file's size and hash.
    pub fn open(dir: &Path) -> Result<Self, EngineError> {
        let path = dir.join("model.json");
        let bytes = fs::read(&path).map_err(|source| EngineError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: ModelManifest =
            serde_json::from_slice(&bytes).map_err(|e| EngineError::Artifact {
                path: path.clone(),
                reason: format!("model.json is not a model manifest: {e}"),
            })?;
        if manifest.format != MODEL_FORMAT || manifest.tokenizer != TOKENIZER {
            return Err(EngineError::Artifact {
                path,
                reason: format!(
                    "unsupported model format {} / tokenizer {}",
                    manifest.format, manifest.tokenizer
                ),
            });
        }
        if manifest.weights_hash != manifest.weights.sha256 {
            return Err(EngineError::Artifact {
                path,
                reason: "weights_hash differs from the weights file's hash".into(),
            });
        }
        let artifact = ModelArtifact {
            dir: dir.to_path_buf(),
            manifest,
        };
        artifact.read_verified(&artifact.manifest.weights)?;
        for checkpoint in &artifact.manifest.checkpoints {
            artifact.read_verified(&checkpoint.file)?;
        }
        Ok(artifact)
    }

    fn read_verified(&self, file: &FileRef) -> Result<Vec<u8>, EngineError> {
        let path = self.dir.join(&file.name);
        let bytes = fs::read(&path).map_err(|source| EngineError::Io {
            path: path.clone(),
            source,
        })?;
        if bytes.len() as u64 != file.bytes || ContentHash::of(&bytes).to_hex() != file.sha256 {
            return Err(EngineError::Artifact {
                path,
                reason: format!(
                    "{} does not match model.json ({} bytes expected, {} found, or a different hash)",
                    file.name,
                    file.bytes,
                    bytes.len()
                ),
            });
        }
        Ok(bytes)
    }

    /// Hex SHA-256 of the final weights.
    pub fn weights_hash(&self) -> &str {
        &self.manifest.weights_hash
    }

    /// The final model on `device`.
    pub fn load_model(&self, device: &Device) -> Result<Lm, EngineError> {
        let bytes = self.read_verified(&self.manifest.weights)?;
        load_weights(&self.manifest.train.model, bytes, device).map_err(EngineError::Model)
    }

    /// Every checkpoint, intermediate ones first, the final weights last, with its step and hash.
    pub fn checkpoint_files(&self) -> Vec<(u64, FileRef)> {
        let mut all: Vec<(u64, FileRef)> = self
            .manifest
            .checkpoints
            .iter()
            .map(|c| (c.step, c.file.clone()))
            .collect();
        all.push((
            self.manifest.train.steps as u64,
            self.manifest.weights.clone(),
        ));
        all
    }

    /// Loads the weights of one of [`ModelArtifact::checkpoint_files`].
    pub fn load_file(&self, file: &FileRef, device: &Device) -> Result<Lm, EngineError> {
        let bytes = self.read_verified(file)?;
        load_weights(&self.manifest.train.model, bytes, device).map_err(EngineError::Model)
    }
}
