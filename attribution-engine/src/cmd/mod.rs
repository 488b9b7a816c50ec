//! One module per subcommand: its arguments and what it runs.

pub(crate) mod attribute;
pub(crate) mod eval;
pub(crate) mod generate;
pub(crate) mod index;
pub(crate) mod serve;
pub(crate) mod train;
