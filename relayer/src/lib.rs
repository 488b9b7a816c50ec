//! tributary-relayer: commits attribution packets for paid inference requests, durably.

pub mod config;
pub mod outbox;
