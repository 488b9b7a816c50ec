//! Tributary's attribution engine.
pub mod artifact;
pub mod data;
pub mod engine;
pub mod error;
pub mod eval;
pub mod heldout;
pub mod index;
pub mod inference;
pub mod model;
pub mod packet;
pub mod projection;
pub mod serve;
pub mod tokenizer;
pub mod training;
