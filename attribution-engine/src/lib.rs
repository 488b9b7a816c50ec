//! Tributary's attribution engine.
pub mod data;
pub mod index;
pub mod model;
pub mod projection;
pub mod tokenizer;
