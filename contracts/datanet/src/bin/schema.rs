//! Writes the contract's JSON schema to `./schema` (run by `ci/schema`).

use cosmwasm_schema::write_api;
use tributary_types::datanet::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};

fn main() {
    write_api! {
        name: "tributary-datanet",
        instantiate: InstantiateMsg,
        execute: ExecuteMsg,
        query: QueryMsg,
        migrate: MigrateMsg,
    }
}
