mod contributions;
mod curation;
mod datanets;
mod migrate;
mod queries;
mod suite;
mod usage;
mod versions;
