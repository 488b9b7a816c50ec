//! The datanet contract: datanets, contributions, curation and versions.
//!
//! A contribution takes two transactions: a commitment that names nothing about the content,
//! then, in a later block, the reveal of its hash (see `tributary_types::datanet`).
//! [`DatanetContract::contribute_many`] does both; upload the bytes to the content store after
//! it returns, when the chain already records who owns them.

use crate::{Client, ContractCall, Error, Signer, TxOutcome};
use cosmwasm_std::HexBinary;
use serde::de::DeserializeOwned;
use tributary_types::datanet::{
    contribution_commitment, Commitment, ConfigResponse, Contribution, ContributionStatus,
    ContributionsResponse, CurationPolicy, Datanet, DatanetVersion, ExecuteMsg,
    InclusionProofResponse, QueryMsg, ReviewDecision,
};
use tributary_types::hash::parse_content_hash;

/// A datanet to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDatanet {
    pub name: String,
    pub description: String,
    pub domain_tags: Vec<String>,
    pub license: String,
    pub policy: CurationPolicy,
    pub curators: Vec<String>,
    pub max_contribution_bytes: u64,
}

/// Content to register in a datanet; the bytes live off chain at `uri`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContribution {
    /// 64 hex characters (SHA-256 of the content).
    pub content_hash: String,
    pub size_bytes: u64,
    pub uri: String,
    pub media_type: String,
    pub metadata: Option<String>,
}

impl NewContribution {
    /// The `Contribute` that commits `contributor` (a bech32 address) to this content.
    pub fn commit_msg(&self, datanet_id: u64, contributor: &str) -> Result<ExecuteMsg, Error> {
        let hash = parse_content_hash(&self.content_hash)
            .map_err(|e| Error::Encode(format!("content hash {:?}: {e}", self.content_hash)))?;
        Ok(ExecuteMsg::Contribute {
            datanet_id,
            commitment: HexBinary::from(contribution_commitment(contributor, &hash).as_slice()),
            size_bytes: self.size_bytes,
            media_type: self.media_type.clone(),
            metadata: self.metadata.clone(),
        })
    }

    /// The `RevealContribution` of this content for the commitment `contribution_id`.
    pub fn reveal_msg(&self, contribution_id: u64) -> ExecuteMsg {
        ExecuteMsg::RevealContribution {
            contribution_id,
            content_hash: self.content_hash.clone(),
            uri: self.uri.clone(),
        }
    }
}

/// Contributions made by [`DatanetContract::contribute_many`]: their ids, in the order given,
/// and the two transactions.
#[derive(Debug, Clone)]
pub struct Contributed {
    pub ids: Vec<u64>,
    /// The transaction of the commitments.
    pub commit: TxOutcome,
    /// The transaction of the reveals, in a later block.
    pub reveal: TxOutcome,
}

/// A deployed datanet contract.
#[derive(Debug, Clone, Copy)]
pub struct DatanetContract<'a> {
    client: &'a Client,
    address: &'a str,
}

impl Client {
    /// The datanet contract at `address`.
    pub fn datanet<'a>(&'a self, address: &'a str) -> DatanetContract<'a> {
        DatanetContract {
            client: self,
            address,
        }
    }
}

impl DatanetContract<'_> {
    /// The contract's address.
    pub fn address(&self) -> &str {
        self.address
    }

    /// Executes any datanet message.
    pub async fn execute(&self, signer: &Signer, msg: &ExecuteMsg) -> Result<TxOutcome, Error> {
        self.client
            .execute(signer, self.address, msg, Vec::new())
            .await
    }

    /// Runs any datanet query.
    pub async fn query<R: DeserializeOwned>(&self, msg: &QueryMsg) -> Result<R, Error> {
        self.client.query_contract(self.address, msg).await
    }

    /// Creates a datanet owned by the signer; returns its id.
    pub async fn create_datanet(&self, signer: &Signer, datanet: NewDatanet) -> Result<u64, Error> {
        let msg = ExecuteMsg::CreateDatanet {
            name: datanet.name,
            description: datanet.description,
            domain_tags: datanet.domain_tags,
            license: datanet.license,
            policy: datanet.policy,
            curators: datanet.curators,
            max_contribution_bytes: datanet.max_contribution_bytes,
        };
        let outcome = self.execute(signer, &msg).await?;
        number_attribute(&outcome, self.address, "datanet_id")
    }

    /// Contributes one piece of content (commit, then reveal in a later block); returns its id.
    pub async fn contribute(
        &self,
        signer: &Signer,
        datanet_id: u64,
        contribution: NewContribution,
    ) -> Result<u64, Error> {
        let contributed = self
            .contribute_many(signer, datanet_id, std::slice::from_ref(&contribution))
            .await?;
        contributed
            .ids
            .first()
            .copied()
            .ok_or_else(|| Error::Decode("the commitment announced no contribution id".into()))
    }

    /// Commits to every contribution in one transaction, waits for a later block, and reveals
    /// them all in a second transaction.
    pub async fn contribute_many(
        &self,
        signer: &Signer,
        datanet_id: u64,
        contributions: &[NewContribution],
    ) -> Result<Contributed, Error> {
        let contributor = signer.address().to_string();
        let commits = contributions
            .iter()
            .map(|c| {
                ContractCall::new(
                    self.address,
                    &c.commit_msg(datanet_id, &contributor)?,
                    vec![],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let commit = self.client.execute_many(signer, commits).await?;
        let ids = contribution_ids(&commit, self.address)?;
        if ids.len() != contributions.len() {
            return Err(Error::Decode(format!(
                "{} commitments announced {} contribution ids",
                contributions.len(),
                ids.len()
            )));
        }
        // The reveal is simulated against the application's last committed block, which must be
        // past the commitment's.
        self.client.wait_for_block_after(commit.height).await?;
        let reveals = contributions
            .iter()
            .zip(&ids)
            .map(|(c, id)| ContractCall::new(self.address, &c.reveal_msg(*id), vec![]))
            .collect::<Result<Vec<_>, _>>()?;
        let reveal = self.client.execute_many(signer, reveals).await?;
        Ok(Contributed {
            ids,
            commit,
            reveal,
        })
    }

    /// A curator accepts or rejects a pending contribution (a rejection needs a reason).
    pub async fn review(
        &self,
        signer: &Signer,
        contribution_id: u64,
        decision: ReviewDecision,
        reason: Option<String>,
    ) -> Result<TxOutcome, Error> {
        let msg = ExecuteMsg::Review {
            contribution_id,
            decision,
            reason,
        };
        self.execute(signer, &msg).await
    }

    /// Freezes the accepted contributions into a new version; returns its number.
    pub async fn snapshot(
        &self,
        signer: &Signer,
        datanet_id: u64,
        note: Option<String>,
    ) -> Result<u32, Error> {
        let outcome = self
            .execute(signer, &ExecuteMsg::Snapshot { datanet_id, note })
            .await?;
        let version = number_attribute(&outcome, self.address, "version")?;
        u32::try_from(version).map_err(|_| Error::Decode(format!("version {version} is too large")))
    }

    /// The contract's admin and usage recorder.
    pub async fn config(&self) -> Result<ConfigResponse, Error> {
        self.query(&QueryMsg::Config {}).await
    }

    /// One datanet.
    pub async fn datanet(&self, datanet_id: u64) -> Result<Datanet, Error> {
        self.query(&QueryMsg::Datanet { datanet_id }).await
    }

    /// One contribution.
    pub async fn contribution(&self, contribution_id: u64) -> Result<Contribution, Error> {
        self.query(&QueryMsg::Contribution { contribution_id })
            .await
    }

    /// A commitment not revealed yet.
    pub async fn commitment(&self, contribution_id: u64) -> Result<Commitment, Error> {
        self.query(&QueryMsg::Commitment { contribution_id }).await
    }

    /// One page of the pending and accepted contributions of `content_hash` in any datanet.
    pub async fn contributions_by_hash(
        &self,
        content_hash: &str,
        start_after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Vec<Contribution>, Error> {
        let page: ContributionsResponse = self
            .query(&QueryMsg::ContributionsByHash {
                content_hash: content_hash.to_string(),
                start_after,
                limit,
            })
            .await?;
        Ok(page.contributions)
    }

    /// The contribution that owns `content_hash` in a datanet, if any.
    pub async fn contribution_by_hash(
        &self,
        datanet_id: u64,
        content_hash: &str,
    ) -> Result<Option<Contribution>, Error> {
        self.query(&QueryMsg::ContributionByHash {
            datanet_id,
            content_hash: content_hash.to_string(),
        })
        .await
    }

    /// One page of a datanet's contributions, optionally with one status.
    pub async fn contributions(
        &self,
        datanet_id: u64,
        status: Option<ContributionStatus>,
        start_after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Vec<Contribution>, Error> {
        let page: ContributionsResponse = self
            .query(&QueryMsg::Contributions {
                datanet_id,
                status,
                start_after,
                limit,
            })
            .await?;
        Ok(page.contributions)
    }

    /// A frozen version of a datanet.
    pub async fn version(&self, datanet_id: u64, version: u32) -> Result<DatanetVersion, Error> {
        self.query(&QueryMsg::Version {
            datanet_id,
            version,
        })
        .await
    }

    /// The merkle proof that a contribution is in a version.
    pub async fn inclusion_proof(
        &self,
        contribution_id: u64,
        version: u32,
    ) -> Result<InclusionProofResponse, Error> {
        self.query(&QueryMsg::InclusionProof {
            contribution_id,
            version,
        })
        .await
    }
}

/// The contribution ids that the commitments of a transaction got from `contract`, in message
/// order.
pub fn contribution_ids(outcome: &TxOutcome, contract: &str) -> Result<Vec<u64>, Error> {
    outcome
        .events
        .iter()
        .filter(|e| e.kind == "wasm" && e.attribute("_contract_address") == Some(contract))
        .filter(|e| e.attribute("action") == Some("contribute"))
        .map(|e| {
            let id = e.attribute("contribution_id").unwrap_or_default();
            id.parse()
                .map_err(|_| Error::Decode(format!("contribution_id {id:?} is not a number")))
        })
        .collect()
}

/// A numeric attribute of `contract`'s `wasm` event, such as a new id.
pub(crate) fn number_attribute(
    outcome: &TxOutcome,
    contract: &str,
    key: &str,
) -> Result<u64, Error> {
    let value = outcome
        .wasm_attribute(contract, key)
        .ok_or_else(|| Error::Decode(format!("the wasm event of {contract} has no {key:?}")))?;
    value
        .parse()
        .map_err(|_| Error::Decode(format!("{key} {value:?} is not a number")))
}
