//! The model-registry contract: models, versions, lineage, price, split and attestors.

use crate::datanet::number_attribute;
use crate::{Client, Error, Signer, TxOutcome};
use serde::de::DeserializeOwned;
use tributary_types::registry::{
    ConfigResponse, ExecuteMsg, Gateway, GatewaysResponse, Model, ModelVersion, ModelVersionInput,
    QueryMsg,
};

/// A deployed model-registry contract.
#[derive(Debug, Clone, Copy)]
pub struct RegistryContract<'a> {
    client: &'a Client,
    address: &'a str,
}

impl Client {
    /// The model-registry contract at `address`.
    pub fn registry<'a>(&'a self, address: &'a str) -> RegistryContract<'a> {
        RegistryContract {
            client: self,
            address,
        }
    }
}

impl RegistryContract<'_> {
    /// The contract's address.
    pub fn address(&self) -> &str {
        self.address
    }

    /// Executes any registry message.
    pub async fn execute(&self, signer: &Signer, msg: &ExecuteMsg) -> Result<TxOutcome, Error> {
        self.client
            .execute(signer, self.address, msg, Vec::new())
            .await
    }

    /// Runs any registry query.
    pub async fn query<R: DeserializeOwned>(&self, msg: &QueryMsg) -> Result<R, Error> {
        self.client.query_contract(self.address, msg).await
    }

    /// Registers a model owned by the signer with its first version; returns the model id.
    pub async fn register_model(
        &self,
        signer: &Signer,
        name: &str,
        description: &str,
        architecture: &str,
        version: ModelVersionInput,
    ) -> Result<u64, Error> {
        let msg = ExecuteMsg::RegisterModel {
            name: name.to_string(),
            description: description.to_string(),
            architecture: architecture.to_string(),
            version,
        };
        let outcome = self.execute(signer, &msg).await?;
        number_attribute(&outcome, self.address, "model_id")
    }

    /// Adds the next version of a model; returns its number.
    pub async fn add_version(
        &self,
        signer: &Signer,
        model_id: u64,
        version: ModelVersionInput,
    ) -> Result<u32, Error> {
        let outcome = self
            .execute(signer, &ExecuteMsg::AddVersion { model_id, version })
            .await?;
        let version = number_attribute(&outcome, self.address, "version")?;
        u32::try_from(version).map_err(|_| Error::Decode(format!("version {version} is too large")))
    }

    /// The registry's admin, datanet contract and split minimums.
    pub async fn config(&self) -> Result<ConfigResponse, Error> {
        self.query(&QueryMsg::Config {}).await
    }

    /// One model.
    pub async fn model(&self, model_id: u64) -> Result<Model, Error> {
        self.query(&QueryMsg::Model { model_id }).await
    }

    /// One version of a model.
    pub async fn model_version(&self, model_id: u64, version: u32) -> Result<ModelVersion, Error> {
        self.query(&QueryMsg::ModelVersion { model_id, version })
            .await
    }

    /// The gateways the version's attestors published, in attestor order.
    pub async fn gateways(&self, model_id: u64, version: u32) -> Result<Vec<Gateway>, Error> {
        let response: GatewaysResponse = self
            .query(&QueryMsg::Gateways { model_id, version })
            .await?;
        Ok(response.gateways)
    }

    /// The gateway `attestor` published, if any.
    pub async fn gateway(&self, attestor: &str) -> Result<Option<Gateway>, Error> {
        self.query(&QueryMsg::Gateway {
            attestor: attestor.to_string(),
        })
        .await
    }

    /// Publishes (or, with `None`, withdraws) the signer's gateway URL.
    pub async fn set_gateway(
        &self,
        signer: &Signer,
        url: Option<&str>,
    ) -> Result<TxOutcome, Error> {
        self.execute(
            signer,
            &ExecuteMsg::SetGateway {
                url: url.map(str::to_string),
            },
        )
        .await
    }
}
