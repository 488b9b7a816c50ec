//! How well a model predicts whole documents it never trained on, next to general-purpose
//! compressors given the same training text.
//!
//! A model is only worth paying for when it predicts its domain better than `gzip -9` does.
//! The comparison is in bits per byte:
//!
//! * the model: each held-out document is scored from its start (the document token first),
//!   every byte predicted with at least half a context window of the document before it;
//! * a compressor: `C(train ‖ held) − C(train)` in bits, over the held-out bytes, where `train`
//!   is the training text and `held` every held-out document, concatenated. The compressor may
//!   use the training text and the earlier held-out documents; the model only its weights and
//!   the document itself, so the comparison favours the compressor.

use std::io::Write;
use std::process::{Command, Stdio};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{pack_rows, ScoredRow};
use crate::model::Lm;
use crate::tokenizer::encode_document;

/// Rows scored per forward pass.
const BATCH_ROWS: usize = 32;

/// The model's bits per byte over `documents` (byte-weighted), each scored on its own.
///
/// A document of `n` bytes is cut into chunks of half a context; each chunk is one row whose
/// tokens are the document token, the bytes before the chunk (the last half context of them)
/// and the chunk, of which only the chunk's bytes are scored.
pub fn model_bits_per_byte(
    model: &Lm,
    context: usize,
    documents: &[&[u8]],
    device: &Device,
) -> f64 {
    let chunk = (context / 2).max(1);
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    for document in documents {
        bytes += document.len();
        let tokens = encode_document(document);
        // tokens[0] is the document token; byte i is tokens[i + 1].
        for start in (0..document.len()).step_by(chunk) {
            let end = (start + chunk).min(document.len());
            // Predicting bytes start..end needs tokens up to end (exclusive of the last target
            // as input); keep at most `context + 1` tokens ending at token `end`.
            let last = end + 1;
            let first = last.saturating_sub(context + 1);
            let row = tokens[first..last].to_vec();
            let scored = end - start;
            rows.push(ScoredRow {
                first_scored: row.len() - scored,
                tokens: row,
            });
        }
    }
    if bytes == 0 {
        return 0.0;
    }
    let mut nats = 0.0;
    for batch in rows.chunks(BATCH_ROWS) {
        let b = pack_rows(batch, device);
        let (_, per_row) = model.weighted_loss(b.inputs, b.targets, b.weights, None);
        let losses: Vec<f32> = per_row.into_data().try_to_vec().unwrap_or_default();
        for (loss, row) in losses.iter().zip(batch) {
            // A row's loss is the mean over its scored bytes.
            nats += *loss as f64 * (row.tokens.len() - row.first_scored) as f64;
        }
    }
    nats / bytes as f64 / std::f64::consts::LN_2
}

/// A general-purpose compressor run as its command-line tool at its strongest level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compressor {
    /// `gzip -9`: DEFLATE with a 32 KiB window.
    Gzip,
    /// `xz -9`: LZMA2 with a 64 MiB dictionary.
    Xz,
}

impl Compressor {
    pub fn command(&self) -> &'static str {
        match self {
            Compressor::Gzip => "gzip",
            Compressor::Xz => "xz",
        }
    }

    /// Compressed size of `bytes`, in bytes.
    pub fn compressed_len(&self, bytes: &[u8]) -> Result<usize, String> {
        let mut child = Command::new(self.command())
            .args(["-9", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run `{} -9`: {e}", self.command()))?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let input = bytes.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child
            .wait_with_output()
            .map_err(|e| format!("`{} -9` failed: {e}", self.command()))?;
        writer
            .join()
            .map_err(|_| "the writer thread panicked".to_string())?
            .map_err(|e| format!("writing to `{} -9`: {e}", self.command()))?;
        if !out.status.success() {
            return Err(format!(
                "`{} -9` exited with {}",
                self.command(),
                out.status
            ));
        }
        Ok(out.stdout.len())
    }

    /// `C(train ‖ held) − C(train)` in bits per held-out byte.
    pub fn conditional_bits_per_byte(
        &self,
        train: &[u8],
        documents: &[&[u8]],
    ) -> Result<f64, String> {
        let held: Vec<u8> = documents.concat();
        if held.is_empty() {
            return Ok(0.0);
        }
        let base = self.compressed_len(train)?;
        let mut both = train.to_vec();
        both.extend_from_slice(&held);
        let with = self.compressed_len(&both)?;
        Ok(with.saturating_sub(base) as f64 * 8.0 / held.len() as f64)
    }
}

/// The model against both compressors on one held-out set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldOutReport {
    pub documents: usize,
    pub bytes: usize,
    pub train_bytes: usize,
    pub model_bits_per_byte: f64,
    /// `None` when the tool is not installed.
    pub gzip_bits_per_byte: Option<f64>,
    pub xz_bits_per_byte: Option<f64>,
}

impl HeldOutReport {
    /// Whether the model predicts the held-out documents in fewer bits than `gzip -9`.
    pub fn beats_gzip(&self) -> Option<bool> {
        self.gzip_bits_per_byte
            .map(|gzip| self.model_bits_per_byte < gzip)
    }
}

/// Scores `held_out` under `model` (without autodiff, on the model's device) and both
/// compressors given `train` (the training documents, concatenated in training order).
pub fn held_out_report(
    model: &Lm,
    context: usize,
    train: &[&[u8]],
    held_out: &[&[u8]],
) -> HeldOutReport {
    let model = model.valid();
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Device::flex);
    let device = &device;
    let model = &model;
    let train_text: Vec<u8> = train.concat();
    HeldOutReport {
        documents: held_out.len(),
        bytes: held_out.iter().map(|d| d.len()).sum(),
        train_bytes: train_text.len(),
        model_bits_per_byte: model_bits_per_byte(model, context, held_out, device),
        gzip_bits_per_byte: Compressor::Gzip
            .conditional_bits_per_byte(&train_text, held_out)
            .ok(),
        xz_bits_per_byte: Compressor::Xz
            .conditional_bits_per_byte(&train_text, held_out)
            .ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressors_need_fewer_bits_for_text_they_have_seen() {
        let train = b"the open system call opens the file named by pathname\n".repeat(40);
        let seen = b"the open system call opens the file named by pathname\n".to_vec();
        let mut unseen = vec![0u8; 2000];
        rand::RngCore::fill_bytes(
            &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(5),
            &mut unseen,
        );
        for c in [Compressor::Gzip, Compressor::Xz] {
            let seen_bits = c
                .conditional_bits_per_byte(&train, &[&seen])
                .expect("gzip and xz are installed");
            let unseen_bits = c.conditional_bits_per_byte(&train, &[&unseen]).unwrap();
            assert!(seen_bits < 1.0, "{c:?} {seen_bits}");
            // Random bytes cannot be compressed below 8 bits per byte.
            assert!(unseen_bits > 7.5, "{c:?} {unseen_bits}");
        }
    }
}
