//! Lineage both ways: a version names its datanet versions, a datanet lists the models trained on it.

use crate::suite::Suite;
use tributary_types::registry::{ExecuteMsg, ModelRef, ModelRefsResponse, ModelVersion, QueryMsg};

fn by_datanet(
    suite: &Suite,
    datanet_id: u64,
    start_after: Option<(u64, u32)>,
    limit: Option<u32>,
) -> Vec<ModelRef> {
    let response: ModelRefsResponse = suite.query(&QueryMsg::ModelsByDatanet {
        datanet_id,
        start_after,
        limit,
    });
    response.models
}

fn model_ref(model_id: u64, version: u32, datanet_version: u32) -> ModelRef {
    ModelRef {
        model_id,
        version,
        datanet_version,
    }
}

#[test]
fn lineage_is_readable_in_both_directions() {
    let mut suite = Suite::new();
    let d1 = suite.d1v1.datanet_id;
    let d2 = suite.d2v1.datanet_id;
    let first = suite.register(suite.input_on(vec![suite.d1v1.clone()]));
    let second = suite.register(suite.input_on(vec![suite.d2v1.clone(), suite.d1v2.clone()]));
    let owner = suite.owner.clone();
    let input = suite.input_on(vec![suite.d1v2.clone()]);
    suite
        .execute(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id: first,
                version: input,
            },
        )
        .unwrap();

    // Forward: each version keeps its lineage in the order given.
    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id: second,
        version: 1,
    });
    assert_eq!(
        version.lineage,
        vec![suite.d2v1.clone(), suite.d1v2.clone()]
    );

    // Reverse: every model version trained on the datanet, with the datanet version it used.
    assert_eq!(
        by_datanet(&suite, d1, None, None),
        vec![
            model_ref(first, 1, 1),
            model_ref(first, 2, 2),
            model_ref(second, 1, 2)
        ]
    );
    assert_eq!(
        by_datanet(&suite, d2, None, None),
        vec![model_ref(second, 1, 1)]
    );
    assert!(by_datanet(&suite, 99, None, None).is_empty());
}

#[test]
fn models_by_datanet_pages_after_model_and_version() {
    let mut suite = Suite::new();
    let d1 = suite.d1v1.datanet_id;
    let first = suite.register(suite.input());
    let owner = suite.owner.clone();
    let input = suite.input();
    suite
        .execute(
            &owner,
            &ExecuteMsg::AddVersion {
                model_id: first,
                version: input,
            },
        )
        .unwrap();
    let second = suite.register(suite.input());

    assert_eq!(
        by_datanet(&suite, d1, None, Some(2)),
        vec![model_ref(first, 1, 1), model_ref(first, 2, 1)]
    );
    assert_eq!(
        by_datanet(&suite, d1, Some((first, 1)), Some(2)),
        vec![model_ref(first, 2, 1), model_ref(second, 1, 1)]
    );
    assert_eq!(
        by_datanet(&suite, d1, Some((first, 2)), None),
        vec![model_ref(second, 1, 1)]
    );
    assert!(by_datanet(&suite, d1, Some((second, 1)), None).is_empty());
}

#[test]
fn several_versions_of_one_datanet_list_the_newest() {
    let mut suite = Suite::new();
    let d1 = suite.d1v1.datanet_id;
    // Version 2 of a datanet holds every contribution of version 1, so it stands for both.
    let model_id = suite.register(suite.input_on(vec![suite.d1v2.clone(), suite.d1v1.clone()]));
    assert_eq!(
        by_datanet(&suite, d1, None, None),
        vec![model_ref(model_id, 1, 2)]
    );
    let version: ModelVersion = suite.query(&QueryMsg::ModelVersion {
        model_id,
        version: 1,
    });
    assert_eq!(
        version.lineage,
        vec![suite.d1v2.clone(), suite.d1v1.clone()]
    );
}

#[test]
fn versions_registered_after_a_new_snapshot_can_use_it() {
    let mut suite = Suite::new();
    let d2 = suite.d2v1.datanet_id;
    suite.contribute(d2, 2);
    let d2v2 = suite.snapshot(d2);
    assert_eq!(d2v2.version, 2);
    let model_id = suite.register(suite.input_on(vec![d2v2.clone()]));
    assert_eq!(
        by_datanet(&suite, d2, None, None),
        vec![model_ref(model_id, 1, 2)]
    );
}
