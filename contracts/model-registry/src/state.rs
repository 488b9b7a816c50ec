use cosmwasm_schema::cw_serde;
use cosmwasm_std::Addr;
use cw_storage_plus::{Index, IndexList, IndexedMap, Item, Map, MultiIndex};
use tributary_types::registry::{Model, ModelVersion};

/// The registry's settings.
#[cw_serde]
pub struct Config {
    /// May change this config.
    pub admin: Addr,
    /// Where lineage roots are checked.
    pub datanet_contract: Addr,
    /// Smallest contributors' share a new version's split may have.
    pub min_contributors_bps: u16,
    /// Smallest protocol share a new version's split may have.
    pub min_protocol_bps: u16,
}

/// The registry's settings.
pub const CONFIG: Item<Config> = Item::new("config");

/// The last model id handed out; ids start at 1.
pub const MODEL_SEQ: Item<u64> = Item::new("model_seq");

/// Secondary indexes of [`MODELS`].
pub struct ModelIndexes<'a> {
    /// Models by owner.
    pub owner: MultiIndex<'a, Addr, Model, u64>,
}

impl IndexList<Model> for ModelIndexes<'_> {
    fn get_indexes(&'_ self) -> Box<dyn Iterator<Item = &'_ dyn Index<Model>> + '_> {
        let v: Vec<&dyn Index<Model>> = vec![&self.owner];
        Box::new(v.into_iter())
    }
}

/// Models by id.
pub const MODELS: IndexedMap<u64, Model, ModelIndexes> = IndexedMap::new(
    "models",
    ModelIndexes {
        owner: MultiIndex::new(|_pk, model| model.owner.clone(), "models", "models__owner"),
    },
);

/// Model versions by `(model_id, version)`.
pub const VERSIONS: Map<(u64, u32), ModelVersion> = Map::new("versions");

/// Lineage in reverse: `(datanet_id, model_id, model version)` -> the datanet version trained on.
pub const BY_DATANET: Map<(u64, u64, u32), u32> = Map::new("by_datanet");

/// Gateway URLs by the attestor that published them.
pub const GATEWAYS: Map<&Addr, String> = Map::new("gateways");
