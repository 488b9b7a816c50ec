//! Writes gated by the chain: the store takes only bytes a live contribution names.
//!
//! The datanet contract is asked over the node's REST (LCD) gateway with a CosmWasm smart query,
//! `GET {rest}/cosmwasm/wasm/v1/contract/{address}/smart/{base64 query}`, whose answer is
//! `{"data": …}`. The query is the contract's own `ContributionsByHash`, which lists the pending
//! and accepted contributions of a content hash: bytes are revealed on chain (and so known to
//! the store) only once their commitment is, so nobody can take another's contribution by
//! racing its upload.

use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tributary_types::datanet::{ContributionStatus, ContributionsResponse, QueryMsg};
use tributary_types::pagination::MAX_LIMIT;

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::policy::{Allowance, Decision, Denial, WritePolicy, WriteRequest};

/// How long one question to the chain may take before the write is answered 503.
pub const CHAIN_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an error answer from the chain kept in an error message.
const MAX_ERROR_TEXT: usize = 512;

/// The gateway's envelope around a smart query's answer.
#[derive(Deserialize, Debug)]
struct SmartQueryAnswer {
    data: ContributionsResponse,
}

/// Whether the store takes the bytes of a contribution in this state. The contract lists only
/// live ones; this is checked again so a status added later is decided here, not assumed.
pub fn is_live(status: ContributionStatus) -> bool {
    match status {
        ContributionStatus::Pending | ContributionStatus::Accepted => true,
        ContributionStatus::Rejected
        | ContributionStatus::Withdrawn
        | ContributionStatus::Superseded => false,
    }
}

/// Takes a write only when the datanet contract holds a live contribution with its hash, and
/// only up to the longest size such a contribution recorded.
#[derive(Clone, Debug)]
pub struct ChainGate {
    rest: Url,
    contract: String,
    client: reqwest::Client,
}

impl ChainGate {
    /// A gate asking the datanet contract at `datanet_contract` through the REST gateway at
    /// `rest_url`, such as `http://127.0.0.1:1317`.
    pub fn new(rest_url: &str, datanet_contract: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: rest_url.to_string(),
            reason: reason.to_string(),
        };
        let mut rest = Url::parse(rest_url).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(rest.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if rest.query().is_some() || rest.fragment().is_some() {
            return Err(invalid("a query or fragment has no place in a base URL"));
        }
        if !rest.path().ends_with('/') {
            let path = format!("{}/", rest.path());
            rest.set_path(&path);
        }
        // It becomes a path segment: nothing but a bech32 address's characters.
        let bech32 = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        if datanet_contract.is_empty() || !datanet_contract.chars().all(bech32) {
            return Err(Error::InvalidContract {
                address: datanet_contract.to_string(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(CHAIN_QUERY_TIMEOUT)
            .build()
            .map_err(|source| Error::Http {
                url: rest_url.to_string(),
                source,
            })?;
        Ok(Self {
            rest,
            contract: datanet_contract.to_string(),
            client,
        })
    }

    /// The URL of the smart query for `hash`.
    pub fn query_url(&self, hash: &ContentHash) -> String {
        // One page: a hash has at most one live contribution per datanet, and one is enough.
        let query = QueryMsg::ContributionsByHash {
            content_hash: hash.to_hex(),
            start_after: None,
            limit: Some(MAX_LIMIT),
        };
        let json = serde_json::to_vec(&query).expect("the query serializes");
        format!(
            "{}cosmwasm/wasm/v1/contract/{}/smart/{}",
            self.rest,
            self.contract,
            URL_SAFE.encode(json)
        )
    }

    async fn contributions(&self, hash: &ContentHash) -> Result<ContributionsResponse> {
        let url = self.query_url(hash);
        let failed = |message: String| Error::Chain {
            url: self.rest.to_string(),
            message,
        };
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| failed(e.to_string()))?;
        if status != StatusCode::OK {
            let shown: String = text.chars().take(MAX_ERROR_TEXT).collect();
            return Err(failed(format!("the gateway answered {status}: {shown}")));
        }
        let answer: SmartQueryAnswer = serde_json::from_str(&text)
            .map_err(|e| failed(format!("an answer that is not a contribution list: {e}")))?;
        Ok(answer.data)
    }
}

#[async_trait]
impl WritePolicy for ChainGate {
    async fn allows(&self, request: &WriteRequest<'_>) -> Result<Decision> {
        let answer = self.contributions(request.hash).await?;
        let hex = request.hash.to_hex();
        // The bytes have one true length; a contribution that recorded less is wrong about
        // them, and the longest recorded is all the chain vouches for.
        let longest = answer
            .contributions
            .iter()
            .filter(|c| is_live(c.status) && c.content_hash.eq_ignore_ascii_case(&hex))
            .map(|c| c.size_bytes)
            .max();
        Ok(match longest {
            Some(size) => Decision::Allow(Allowance::up_to(size)),
            None => Decision::Deny(Denial::NotOnChain {
                hash: *request.hash,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_the_contracts_json_in_url_safe_base64() {
        let gate = ChainGate::new("http://127.0.0.1:1317/lcd", "trib1contract0").unwrap();
        let hash = ContentHash::of(b"abc");
        let url = gate.query_url(&hash);
        let prefix = "http://127.0.0.1:1317/lcd/cosmwasm/wasm/v1/contract/trib1contract0/smart/";
        assert!(url.starts_with(prefix), "{url}");
        let query = URL_SAFE.decode(&url[prefix.len()..]).unwrap();
        let query: serde_json::Value = serde_json::from_slice(&query).unwrap();
        assert_eq!(
            query["contributions_by_hash"]["content_hash"],
            hash.to_hex().as_str()
        );
    }

    #[test]
    fn an_address_that_could_change_the_path_is_refused() {
        for address in ["", "trib1/../x", "trib1?q", "TRIB1ABC"] {
            assert!(
                matches!(
                    ChainGate::new("http://127.0.0.1:1317", address),
                    Err(Error::InvalidContract { .. })
                ),
                "{address:?}"
            );
        }
    }

    #[test]
    fn only_pending_and_accepted_contributions_are_live() {
        assert!(is_live(ContributionStatus::Pending));
        assert!(is_live(ContributionStatus::Accepted));
        assert!(!is_live(ContributionStatus::Rejected));
        assert!(!is_live(ContributionStatus::Withdrawn));
        assert!(!is_live(ContributionStatus::Superseded));
    }
}
