//! The datanet contract: datanets, contributions, curation and versions.

use crate::{Client, Error, Signer, TxOutcome};
use serde::de::DeserializeOwned;
use tributary_types::datanet::{
    ConfigResponse, Contribution, ContributionStatus, ContributionsResponse, CurationPolicy,
    Datanet, DatanetVersion, ExecuteMsg, InclusionProofResponse, QueryMsg, ReviewDecision,
};

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

    /// Registers a contribution; returns its id.
    pub async fn contribute(
        &self,
        signer: &Signer,
        datanet_id: u64,
        contribution: NewContribution,
    ) -> Result<u64, Error> {
        let msg = ExecuteMsg::Contribute {
            datanet_id,
            content_hash: contribution.content_hash,
            size_bytes: contribution.size_bytes,
            uri: contribution.uri,
            media_type: contribution.media_type,
            metadata: contribution.metadata,
        };
        let outcome = self.execute(signer, &msg).await?;
        number_attribute(&outcome, self.address, "contribution_id")
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

    /// The contribution of `content_hash` in a datanet, if any.
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
