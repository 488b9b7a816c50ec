pub mod contract;
pub mod error;
pub mod execute;
pub mod query;
pub mod state;
pub mod validate;
