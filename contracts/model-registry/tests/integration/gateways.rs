//! Attestors publish the gateways where buyers send their prompts.

use crate::suite::Suite;
use cosmwasm_std::Addr;
use tributary_model_registry::error::ContractError;
use tributary_types::registry::{ExecuteMsg, Gateway, GatewaysResponse, QueryMsg};

fn publish(suite: &mut Suite, attestor: &Addr, url: &str) {
    suite
        .execute(
            attestor,
            &ExecuteMsg::SetGateway {
                url: Some(url.to_string()),
            },
        )
        .unwrap();
}

fn gateways(suite: &Suite, model_id: u64, version: u32) -> Vec<(Addr, String)> {
    let response: GatewaysResponse = suite.query(&QueryMsg::Gateways { model_id, version });
    response
        .gateways
        .into_iter()
        .map(|g| (g.attestor, g.url))
        .collect()
}

#[test]
fn a_versions_gateways_are_those_its_current_attestors_published() {
    let mut suite = Suite::new();
    let model_id = suite.register(suite.input());
    let [a, b] = [suite.attestors[0].clone(), suite.attestors[1].clone()];
    let stranger = suite.app.api().addr_make("stranger");
    assert!(gateways(&suite, model_id, 1).is_empty());

    // Published in the other order: listed in the version's attestor order.
    publish(&mut suite, &b, "https://b.example/relay");
    publish(&mut suite, &a, "http://127.0.0.1:8790");
    // An address that attests nothing may publish, but no buyer is sent there.
    publish(&mut suite, &stranger, "https://phish.example");
    assert_eq!(
        gateways(&suite, model_id, 1),
        vec![
            (a.clone(), "http://127.0.0.1:8790".to_string()),
            (b.clone(), "https://b.example/relay".to_string()),
        ]
    );

    // Republishing replaces; rotating the attestors changes what is listed at once.
    publish(&mut suite, &a, "https://a.example");
    let owner = suite.owner.clone();
    suite
        .execute(
            &owner,
            &ExecuteMsg::SetAttestors {
                model_id,
                version: 1,
                attestors: vec![b.to_string(), stranger.to_string()],
                quorum: 1,
            },
        )
        .unwrap();
    assert_eq!(
        gateways(&suite, model_id, 1),
        vec![
            (b.clone(), "https://b.example/relay".to_string()),
            (stranger.clone(), "https://phish.example".to_string()),
        ]
    );

    // Withdrawn: gone from the list and from the single lookup.
    suite
        .execute(&b, &ExecuteMsg::SetGateway { url: None })
        .unwrap();
    assert_eq!(
        gateways(&suite, model_id, 1),
        vec![(stranger.clone(), "https://phish.example".to_string())]
    );
    let none: Option<Gateway> = suite.query(&QueryMsg::Gateway {
        attestor: b.to_string(),
    });
    assert_eq!(none, None);
    let one: Option<Gateway> = suite.query(&QueryMsg::Gateway {
        attestor: a.to_string(),
    });
    assert_eq!(
        one,
        Some(Gateway {
            attestor: a,
            url: "https://a.example".to_string()
        })
    );
}

#[test]
fn gateway_urls_that_no_buyer_could_call_are_refused() {
    let mut suite = Suite::new();
    let a = suite.attestors[0].clone();
    let long = format!("https://example.com/{}", "a".repeat(300));
    for url in [
        "",
        "ftp://example.com",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "https://exa mple.com",
        "https://example.com/\n",
        long.as_str(),
    ] {
        let err = suite.execute_err(
            &a,
            &ExecuteMsg::SetGateway {
                url: Some(url.to_string()),
            },
        );
        assert!(
            matches!(err, ContractError::InvalidGatewayUrl { .. }),
            "{url:?}: {err}"
        );
    }
    // Withdrawing what was never published says so.
    let err = suite.execute_err(&a, &ExecuteMsg::SetGateway { url: None });
    assert!(matches!(err, ContractError::NoGateway { .. }), "{err}");
    // The gateways of a version that does not exist are an error, not an empty list.
    let err = suite
        .app
        .wrap()
        .query_wasm_smart::<GatewaysResponse>(
            &suite.registry,
            &QueryMsg::Gateways {
                model_id: 9,
                version: 1,
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("model 9 has no version 1"),
        "{err}"
    );
}
