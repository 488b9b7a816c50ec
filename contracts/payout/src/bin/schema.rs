//! Writes the contract's JSON schema to `./schema` (run by `ci/schema`).

use cosmwasm_schema::write_api;
use tributary_types::payout::{ExecuteMsg, InstantiateMsg, MigrateMsg, QueryMsg};

fn main() {
    write_api! {
        name: "tributary-payout",
        instantiate: InstantiateMsg,
        execute: ExecuteMsg,
        query: QueryMsg,
        migrate: MigrateMsg,
    }
}
