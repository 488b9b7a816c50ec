//! Writes the contract's JSON schema to `./schema` (run by `ci/schema`).

use cosmwasm_schema::write_api;
use tributary_types::registry::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};

fn main() {
    write_api! {
        name: "tributary-model-registry",
        instantiate: InstantiateMsg,
        execute: ExecuteMsg,
        query: QueryMsg,
        migrate: MigrateMsg,
    }
}
