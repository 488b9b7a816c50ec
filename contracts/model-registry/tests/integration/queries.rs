//! Listing models and versions: by id, by owner, and the page caps.

use crate::suite::Suite;
use tributary_types::pagination::{DEFAULT_LIMIT, MAX_LIMIT};
use tributary_types::registry::{
    ExecuteMsg, ModelRefsResponse, ModelVersionsResponse, ModelsResponse, QueryMsg,
};

fn ids(response: &ModelsResponse) -> Vec<u64> {
    response.models.iter().map(|m| m.id).collect()
}

#[test]
fn models_by_owner_lists_only_that_owners_models() {
    let mut suite = Suite::new();
    let other = suite.app.api().addr_make("other");
    let input = suite.input();
    let mine_a = suite.register(input.clone());
    let theirs = suite.register_as(&other, "theirs", input.clone());
    let mine_b = suite.register(input.clone());
    let mine_c = suite.register(input);

    let mine: ModelsResponse = suite.query(&QueryMsg::ModelsByOwner {
        owner: suite.owner.to_string(),
        start_after: None,
        limit: None,
    });
    assert_eq!(ids(&mine), vec![mine_a, mine_b, mine_c]);
    assert!(mine.models.iter().all(|m| m.owner == suite.owner));

    let page: ModelsResponse = suite.query(&QueryMsg::ModelsByOwner {
        owner: suite.owner.to_string(),
        start_after: Some(mine_a),
        limit: Some(1),
    });
    assert_eq!(ids(&page), vec![mine_b]);

    let theirs_listed: ModelsResponse = suite.query(&QueryMsg::ModelsByOwner {
        owner: other.to_string(),
        start_after: None,
        limit: None,
    });
    assert_eq!(ids(&theirs_listed), vec![theirs]);

    let nobody: ModelsResponse = suite.query(&QueryMsg::ModelsByOwner {
        owner: suite.admin.to_string(),
        start_after: None,
        limit: None,
    });
    assert!(nobody.models.is_empty());
}

#[test]
fn models_by_owner_refuses_a_malformed_owner() {
    let suite = Suite::new();
    let result = suite.app.wrap().query_wasm_smart::<ModelsResponse>(
        &suite.registry,
        &QueryMsg::ModelsByOwner {
            owner: "nobody".to_string(),
            start_after: None,
            limit: None,
        },
    );
    assert!(result.is_err());
}

#[test]
fn unknown_model_and_version_queries_fail() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let wrap = suite.app.wrap();
    // The contract's own error text reaches the caller, not a storage key dump.
    let err = wrap
        .query_wasm_smart::<tributary_types::registry::Model>(
            &suite.registry,
            &QueryMsg::Model { model_id: 2 },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("model 2 not found") || err.to_string().contains("model 2"),
        "{err}"
    );
    let err = wrap
        .query_wasm_smart::<tributary_types::registry::ModelVersion>(
            &suite.registry,
            &QueryMsg::ModelVersion {
                model_id,
                version: 2,
            },
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("model {model_id} has no version 2")),
        "{err}"
    );
}

#[test]
fn list_queries_default_to_ten_and_cap_at_one_hundred() {
    let mut suite = Suite::new();
    let input = suite.input();
    let count = MAX_LIMIT as u64 + 5;
    for _ in 0..count {
        suite.register(input.clone());
    }

    let models = |suite: &Suite, start_after, limit| -> Vec<u64> {
        ids(&suite.query(&QueryMsg::Models { start_after, limit }))
    };
    assert_eq!(
        models(&suite, None, None),
        (1..=DEFAULT_LIMIT as u64).collect::<Vec<_>>()
    );
    assert_eq!(models(&suite, None, Some(1_000)).len(), MAX_LIMIT as usize);
    assert_eq!(models(&suite, None, Some(0)), vec![1]);
    assert_eq!(
        models(&suite, Some(MAX_LIMIT as u64), Some(1_000)),
        (MAX_LIMIT as u64 + 1..=count).collect::<Vec<_>>()
    );

    let by_owner: ModelsResponse = suite.query(&QueryMsg::ModelsByOwner {
        owner: suite.owner.to_string(),
        start_after: None,
        limit: Some(u32::MAX),
    });
    assert_eq!(by_owner.models.len(), MAX_LIMIT as usize);
    let by_owner: ModelsResponse = suite.query(&QueryMsg::ModelsByOwner {
        owner: suite.owner.to_string(),
        start_after: None,
        limit: None,
    });
    assert_eq!(by_owner.models.len(), DEFAULT_LIMIT as usize);

    let by_datanet: ModelRefsResponse = suite.query(&QueryMsg::ModelsByDatanet {
        datanet_id: suite.d1v1.datanet_id,
        start_after: None,
        limit: Some(1_000),
    });
    assert_eq!(by_datanet.models.len(), MAX_LIMIT as usize);
    let by_datanet: ModelRefsResponse = suite.query(&QueryMsg::ModelsByDatanet {
        datanet_id: suite.d1v1.datanet_id,
        start_after: None,
        limit: None,
    });
    assert_eq!(by_datanet.models.len(), DEFAULT_LIMIT as usize);
}

#[test]
fn versions_list_in_order_with_pages_and_a_cap() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let other = suite.register(suite.input());
    let owner = suite.owner.clone();
    let input = suite.input();
    for _ in 0..MAX_LIMIT + 1 {
        suite
            .execute(
                &owner,
                &ExecuteMsg::AddVersion {
                    model_id,
                    version: input.clone(),
                },
            )
            .unwrap();
    }
    let versions = |suite: &Suite, model_id, start_after, limit| -> Vec<u32> {
        let response: ModelVersionsResponse = suite.query(&QueryMsg::Versions {
            model_id,
            start_after,
            limit,
        });
        assert!(response.versions.iter().all(|v| v.model_id == model_id));
        response.versions.iter().map(|v| v.version).collect()
    };
    assert_eq!(
        versions(&suite, model_id, None, None),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        versions(&suite, model_id, None, Some(500)).len(),
        MAX_LIMIT as usize
    );
    assert_eq!(
        versions(&suite, model_id, Some(99), None),
        vec![100, 101, 102]
    );
    assert_eq!(versions(&suite, other, None, None), vec![1]);
    assert!(versions(&suite, 77, None, None).is_empty());
}
