//! The model registry against the real datanet contract in cw-multi-test.

mod suite;

mod admin;
mod funds;
mod gateways;
mod lineage;
mod queries;
mod validation;
mod versions;
