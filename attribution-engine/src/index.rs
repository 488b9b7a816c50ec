//! The on-disk gradient index (being written).
