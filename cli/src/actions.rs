//! Everyday actions of contributors, curators, developers and users, one signed transaction each.

use crate::context::{signer, Chain};
use crate::keys::KeyringArgs;
use crate::output::Output;
use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use cosmwasm_std::{HexBinary, Uint128};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tributary_client::NewContribution;
use tributary_store::{ContentHash, ContentStore, HttpStore};
use tributary_types::datanet::{
    self, Contribution, ContributionsResponse, CurationPolicy, Datanet, DatanetVersion,
    DatanetsResponse, ReviewDecision,
};
use tributary_types::registry::{AttributionMethod, ModelVersionInput};
use tributary_types::{AssetInfo, DatanetRoot, FeeSplit, Price};

#[derive(Clone, Copy, ValueEnum)]
pub enum Policy {
    Open,
    CuratorReview,
    AllowList,
}

impl From<Policy> for CurationPolicy {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Open => CurationPolicy::Open,
            Policy::CuratorReview => CurationPolicy::CuratorReview,
            Policy::AllowList => CurationPolicy::AllowList,
        }
    }
}

#[derive(Subcommand)]
pub enum DatanetCommand {
    /// Creates a datanet owned by `--from`.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Domain tag (repeatable).
        #[arg(long = "tag", required = true)]
        tags: Vec<String>,
        #[arg(long)]
        license: String,
        #[arg(long, value_enum, default_value = "curator-review")]
        policy: Policy,
        /// Curator address (repeatable).
        #[arg(long = "curator")]
        curators: Vec<String>,
        #[arg(long, default_value_t = 1 << 20)]
        max_bytes: u64,
    },
    /// Shows a datanet.
    Show { datanet_id: u64 },
    /// The curator's queue: contributions waiting for a review.
    Pending {
        datanet_id: u64,
        #[arg(long)]
        start_after: Option<u64>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Owner: changes the description, tags, license, policy or size cap.
    Update {
        datanet_id: u64,
        #[arg(long)]
        description: Option<String>,
        /// Domain tag (repeatable; replaces all of them).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        license: Option<String>,
        #[arg(long, value_enum)]
        policy: Option<Policy>,
        #[arg(long)]
        max_bytes: Option<u64>,
    },
    /// Owner: adds or removes curators.
    Curators {
        datanet_id: u64,
        #[arg(long = "add")]
        add: Vec<String>,
        #[arg(long = "remove")]
        remove: Vec<String>,
    },
    /// Owner: the contributors an allow-list datanet admits.
    Allow {
        datanet_id: u64,
        #[arg(long = "add")]
        add: Vec<String>,
        #[arg(long = "remove")]
        remove: Vec<String>,
    },
    /// Owner: hands the datanet to another owner.
    Transfer {
        datanet_id: u64,
        #[arg(long)]
        to: String,
    },
    /// Lists datanets, optionally by domain tag.
    List {
        #[arg(long)]
        tag: Option<String>,
        #[arg(long)]
        start_after: Option<u64>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Writes the corpus file a model is trained on: the versions' roots and their accepted
    /// contributions in tree order (the input of `tributary-attrib train`).
    Corpus {
        /// A datanet version, `DATANET_ID@VERSION` (repeatable).
        #[arg(long = "version", required = true, value_parser = parse_datanet_version)]
        versions: Vec<(u64, u32)>,
        /// File to write; stdout when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_datanet_version(s: &str) -> Result<(u64, u32), String> {
    let (id, version) = s
        .split_once('@')
        .ok_or_else(|| format!("`{s}` is not DATANET_ID@VERSION"))?;
    Ok((
        id.parse()
            .map_err(|_| format!("`{id}` is not a datanet id"))?,
        version
            .parse()
            .map_err(|_| format!("`{version}` is not a version number"))?,
    ))
}

/// One contribution of a corpus file.
#[derive(Serialize)]
struct CorpusContribution {
    contribution_id: u64,
    datanet_id: u64,
    contributor: String,
    content_hash: String,
    leaf_index: u64,
}

/// The corpus file.
#[derive(Serialize)]
struct CorpusFile {
    datanets: Vec<DatanetRoot>,
    contributions: Vec<CorpusContribution>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Decision {
    Accept,
    Reject,
}

// Parsed once per process; boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum ModelCommand {
    /// Registers a model (version 1) owned by `--from`.
    Register {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "decoder-only transformer")]
        architecture: String,
        #[command(flatten)]
        version: VersionArgs,
    },
    /// Owner: adds the model's next version.
    AddVersion {
        model_id: u64,
        #[command(flatten)]
        version: VersionArgs,
    },
    /// Lists a model's versions.
    Versions {
        model_id: u64,
        #[arg(long)]
        start_after: Option<u32>,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Owner: closes a version to new requests.
    Deprecate {
        model_id: u64,
        #[arg(long)]
        version: u32,
    },
    /// Owner: replaces a version's attestors and quorum.
    Attestors {
        model_id: u64,
        #[arg(long)]
        version: u32,
        /// Attestor address (repeatable).
        #[arg(long = "attestor", required = true)]
        attestors: Vec<String>,
        #[arg(long, default_value_t = 1)]
        quorum: u32,
    },
    /// Publishes `--from`'s gateway URL in the registry, where buyers find it (or withdraws it).
    Gateway {
        #[arg(
            long,
            required_unless_present = "withdraw",
            conflicts_with = "withdraw"
        )]
        url: Option<String>,
        #[arg(long)]
        withdraw: bool,
    },
    /// Shows a model version.
    Show {
        model_id: u64,
        #[arg(long, default_value_t = 1)]
        version: u32,
    },
}

/// Everything that defines a model version.
#[derive(clap::Args)]
pub struct VersionArgs {
    /// Trained on DATANET@VERSION (repeatable); the root is read from the chain.
    #[arg(long = "lineage", required = true, value_parser = parse_lineage)]
    lineage: Vec<(u64, u32)>,
    #[arg(long)]
    weights_hash: String,
    #[arg(long)]
    weights_uri: String,
    #[arg(long)]
    index_hash: String,
    #[arg(long, default_value = "trak-logra-v2")]
    method: String,
    #[arg(long)]
    params_hash: String,
    /// Price per inference, in the smallest unit.
    #[arg(long)]
    price: u128,
    /// Price in this cw20 token instead of the chain's denom.
    #[arg(long)]
    price_cw20: Option<String>,
    /// Contributors/developer/operator/protocol in basis points, e.g. 7000/1500/1000/500.
    #[arg(long, default_value = "7000/1500/1000/500", value_parser = parse_split)]
    split: FeeSplit,
    /// Attestor address (repeatable).
    #[arg(long = "attestor", required = true)]
    attestors: Vec<String>,
    #[arg(long, default_value_t = 1)]
    quorum: u32,
}

fn parse_lineage(s: &str) -> Result<(u64, u32), String> {
    let (d, v) = s
        .split_once('@')
        .ok_or("expected DATANET@VERSION, e.g. 1@2")?;
    Ok((
        d.parse().map_err(|_| format!("bad datanet id {d:?}"))?,
        v.parse().map_err(|_| format!("bad version {v:?}"))?,
    ))
}

fn parse_split(s: &str) -> Result<FeeSplit, String> {
    let parts: Vec<u16> = s
        .split('/')
        .map(|p| p.parse().map_err(|_| format!("bad share {p:?}")))
        .collect::<Result<_, _>>()?;
    let [c, d, o, p] = parts[..] else {
        return Err("expected four shares: contributors/developer/operator/protocol".into());
    };
    Ok(FeeSplit {
        contributors_bps: c,
        developer_bps: d,
        operator_bps: o,
        protocol_bps: p,
    })
}

fn hash32(field: &str, hex: &str) -> Result<HexBinary> {
    let bytes = HexBinary::from_hex(hex).with_context(|| format!("{field} is not hex"))?;
    anyhow::ensure!(
        bytes.len() == 32,
        "{field} must be 32 bytes (64 hex characters)"
    );
    Ok(bytes)
}

/// A connected chain and the key commands sign with.
pub struct Session {
    pub chain: Chain,
    pub keyring: KeyringArgs,
    pub from: Option<String>,
}

impl Session {
    pub fn signer(&self) -> Result<tributary_client::Signer> {
        let name = self
            .from
            .as_deref()
            .context("this command signs a transaction: pass --from KEY")?;
        signer(&self.keyring, name, &self.chain.deployment.bech32_prefix)
    }
}

#[derive(Serialize)]
struct TxReport<T: Serialize> {
    tx_hash: String,
    height: u64,
    gas_used: u64,
    #[serde(flatten)]
    result: T,
}

pub fn report<T: Serialize>(
    output: Output,
    outcome: &tributary_client::TxOutcome,
    result: T,
    text: String,
) {
    let r = TxReport {
        tx_hash: outcome.hash.clone(),
        height: outcome.height,
        gas_used: outcome.gas_used,
        result,
    };
    output.print(&r, || {
        format!("{text}\ntx {} (height {})", r.tx_hash, r.height)
    });
}

pub async fn datanet(s: &Session, cmd: DatanetCommand, output: Output) -> Result<()> {
    let contract = s
        .chain
        .client
        .datanet(&s.chain.deployment.contracts.datanet);
    match cmd {
        DatanetCommand::Create {
            name,
            description,
            tags,
            license,
            policy,
            curators,
            max_bytes,
        } => {
            let signer = s.signer()?;
            let msg = datanet::ExecuteMsg::CreateDatanet {
                name: name.clone(),
                description,
                domain_tags: tags,
                license,
                policy: policy.into(),
                curators,
                max_contribution_bytes: max_bytes,
            };
            let outcome = contract.execute(&signer, &msg).await?;
            let id = outcome
                .wasm_attribute(contract.address(), "datanet_id")
                .context("the transaction reported no datanet_id")?
                .to_string();
            report(
                output,
                &outcome,
                serde_json::json!({"datanet_id": id}),
                format!("created datanet {id} ({name})"),
            );
        }
        DatanetCommand::Show { datanet_id } => {
            let d: Datanet = contract.datanet(datanet_id).await?;
            output.print(&d, || datanet_text(&d));
        }
        DatanetCommand::List {
            tag,
            start_after,
            limit,
        } => {
            let list: DatanetsResponse = contract
                .query(&datanet::QueryMsg::Datanets {
                    domain_tag: tag,
                    start_after,
                    limit,
                })
                .await?;
            output.print(&list, || {
                list.datanets
                    .iter()
                    .map(datanet_text)
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DatanetCommand::Corpus { versions, out } => {
            let mut corpus = CorpusFile {
                datanets: Vec::new(),
                contributions: Vec::new(),
            };
            for (datanet_id, version) in versions {
                let v: DatanetVersion = contract
                    .query(&datanet::QueryMsg::Version {
                        datanet_id,
                        version,
                    })
                    .await?;
                let mut start_after = None;
                let mut listed = 0u64;
                while listed < v.count {
                    let page: ContributionsResponse = contract
                        .query(&datanet::QueryMsg::VersionContributions {
                            datanet_id,
                            version,
                            start_after,
                            limit: Some(100),
                        })
                        .await?;
                    if page.contributions.is_empty() {
                        bail!(
                            "datanet {datanet_id} version {version} lists {listed} of its {} contributions",
                            v.count
                        );
                    }
                    for c in page.contributions {
                        let leaf_index = c.leaf_index.with_context(|| {
                            format!("contribution {} has no leaf position", c.id)
                        })?;
                        start_after = Some(leaf_index);
                        listed += 1;
                        corpus.contributions.push(CorpusContribution {
                            contribution_id: c.id,
                            datanet_id,
                            contributor: c.contributor.to_string(),
                            content_hash: c.content_hash,
                            leaf_index,
                        });
                    }
                }
                corpus.datanets.push(DatanetRoot {
                    datanet_id,
                    version,
                    root: v.root,
                });
            }
            let json = serde_json::to_string_pretty(&corpus)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, json + "\n")
                        .with_context(|| format!("writing {}", path.display()))?;
                    output.print(
                        &serde_json::json!({
                            "path": path,
                            "contributions": corpus.contributions.len(),
                        }),
                        || {
                            format!(
                                "wrote {} contributions of {} datanet versions to {}",
                                corpus.contributions.len(),
                                corpus.datanets.len(),
                                path.display()
                            )
                        },
                    );
                }
                None => println!("{json}"),
            }
        }
        other => crate::admin::datanet(s, other, output).await?,
    }
    Ok(())
}

fn datanet_text(d: &Datanet) -> String {
    format!(
        "datanet {}  {}  [{}]  {:?}  accepted {}/{}  latest version {}",
        d.id,
        d.name,
        d.domain_tags.join(","),
        d.policy,
        d.accepted_count,
        d.contribution_count,
        d.latest_version
    )
}

/// `tributary contribute`: commits to every file in one transaction, reveals their hashes in a
/// second one (a later block), then uploads the bytes to the store, which the chain now says
/// belong to the signer.
pub async fn contribute(
    s: &Session,
    datanet_id: u64,
    files: Vec<PathBuf>,
    store_url: &str,
    media_type: &str,
    output: Output,
) -> Result<()> {
    let signer = s.signer()?;
    let store = Arc::new(HttpStore::new(store_url)?);
    let mut contents = Vec::new();
    let mut contributions = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let hash = ContentHash::of(&bytes);
        contributions.push(NewContribution {
            content_hash: hash.to_hex(),
            size_bytes: bytes.len() as u64,
            uri: format!(
                "{}/blobs/{}",
                store_url.trim_end_matches('/'),
                hash.to_hex()
            ),
            media_type: media_type.to_string(),
            metadata: file
                .file_name()
                .map(|n| serde_json::json!({"file": n.to_string_lossy()}).to_string()),
        });
        contents.push((bytes, hash));
    }
    let contributed = s
        .chain
        .client
        .datanet(&s.chain.deployment.contracts.datanet)
        .contribute_many(&signer, datanet_id, &contributions)
        .await?;
    for ((file, (bytes, hash)), id) in files.iter().zip(contents).zip(&contributed.ids) {
        let stored = store.put(bytes).await.with_context(|| {
            format!(
                "contribution {id} is on chain, but uploading {} to {store_url} failed",
                file.display()
            )
        })?;
        if stored != hash {
            bail!(
                "the store at {store_url} answered hash {stored} for {}, whose hash is {hash}",
                file.display()
            );
        }
    }
    let rows: Vec<_> = files
        .iter()
        .zip(&contributions)
        .zip(&contributed.ids)
        .map(|((f, c), id)| {
            serde_json::json!({"file": f, "content_hash": c.content_hash, "contribution_id": id.to_string()})
        })
        .collect();
    let text = rows
        .iter()
        .map(|r| {
            format!(
                "contribution {}  {}  {}",
                r["contribution_id"].as_str().unwrap_or("?"),
                r["content_hash"].as_str().unwrap_or(""),
                r["file"]
            )
        })
        .chain([format!(
            "commitments in tx {} (height {})",
            contributed.commit.hash, contributed.commit.height
        )])
        .collect::<Vec<_>>()
        .join("\n");
    report(
        output,
        &contributed.reveal,
        serde_json::json!({
            "contributions": rows,
            "commit_tx_hash": contributed.commit.hash,
            "commit_height": contributed.commit.height,
        }),
        text,
    );
    Ok(())
}

pub async fn review(
    s: &Session,
    contribution_id: u64,
    decision: Decision,
    reason: Option<String>,
    output: Output,
) -> Result<()> {
    let signer = s.signer()?;
    let decision = match decision {
        Decision::Accept => ReviewDecision::Accept,
        Decision::Reject => ReviewDecision::Reject,
    };
    let contract = s
        .chain
        .client
        .datanet(&s.chain.deployment.contracts.datanet);
    let outcome = contract
        .execute(
            &signer,
            &datanet::ExecuteMsg::Review {
                contribution_id,
                decision,
                reason,
            },
        )
        .await?;
    let c: Contribution = contract.contribution(contribution_id).await?;
    report(
        output,
        &outcome,
        serde_json::json!({"contribution_id": contribution_id, "status": c.status}),
        format!("contribution {contribution_id} is {}", c.status.as_str()),
    );
    Ok(())
}

pub async fn snapshot(
    s: &Session,
    datanet_id: u64,
    note: Option<String>,
    output: Output,
) -> Result<()> {
    let signer = s.signer()?;
    let contract = s
        .chain
        .client
        .datanet(&s.chain.deployment.contracts.datanet);
    let outcome = contract
        .execute(&signer, &datanet::ExecuteMsg::Snapshot { datanet_id, note })
        .await?;
    let version: u32 = outcome
        .wasm_attribute(contract.address(), "version")
        .and_then(|v| v.parse().ok())
        .context("the transaction reported no version")?;
    let v = contract.version(datanet_id, version).await?;
    report(
        output,
        &outcome,
        &v,
        format!(
            "datanet {datanet_id} version {} root {} ({} contributions, {} bytes)",
            v.version, v.root, v.count, v.total_bytes
        ),
    );
    Ok(())
}

pub async fn model(s: &Session, cmd: ModelCommand, output: Output) -> Result<()> {
    let registry = s
        .chain
        .client
        .registry(&s.chain.deployment.contracts.model_registry);
    match cmd {
        ModelCommand::Register {
            name,
            description,
            architecture,
            version,
        } => {
            let signer = s.signer()?;
            let input = version_input(s, version).await?;
            let model_id = registry
                .register_model(&signer, &name, &description, &architecture, input)
                .await?;
            output.print(
                &serde_json::json!({"model_id": model_id, "version": 1}),
                || format!("registered model {model_id} ({name}) version 1"),
            );
        }
        ModelCommand::Show { model_id, version } => {
            let v = registry.model_version(model_id, version).await?;
            output.print(&v, || serde_json::to_string_pretty(&v).expect("serializes"));
        }
        ModelCommand::AddVersion { model_id, version } => {
            let signer = s.signer()?;
            let input = version_input(s, version).await?;
            let version = registry.add_version(&signer, model_id, input).await?;
            output.print(
                &serde_json::json!({"model_id": model_id, "version": version}),
                || format!("added version {version} of model {model_id}"),
            );
        }
        other => crate::admin::model(s, other, output).await?,
    }
    Ok(())
}

/// A version's input, with the lineage roots read from the datanet contract.
async fn version_input(s: &Session, args: VersionArgs) -> Result<ModelVersionInput> {
    let VersionArgs {
        lineage,
        weights_hash,
        weights_uri,
        index_hash,
        method,
        params_hash,
        price,
        price_cw20,
        split,
        attestors,
        quorum,
    } = args;
    let datanets = s
        .chain
        .client
        .datanet(&s.chain.deployment.contracts.datanet);
    let mut roots = Vec::new();
    for (datanet_id, version) in lineage {
        let v = datanets.version(datanet_id, version).await?;
        roots.push(DatanetRoot {
            datanet_id,
            version,
            root: v.root,
        });
    }
    let asset = match price_cw20 {
        Some(token) => AssetInfo::cw20(token),
        None => AssetInfo::native(&s.chain.deployment.denom),
    };
    Ok(ModelVersionInput {
        lineage: roots,
        weights_hash: hash32("weights hash", &weights_hash)?,
        weights_uri,
        index_hash: hash32("index hash", &index_hash)?,
        method: AttributionMethod {
            id: method,
            params_hash: hash32("params hash", &params_hash)?,
            params: None,
        },
        price: Price {
            asset,
            amount: Uint128::new(price),
        },
        split,
        attestors,
        quorum,
    })
}

/// `tributary infer`: pays the model's price (native or cw20) for a prompt.
pub async fn claim(s: &Session, output: Output) -> Result<()> {
    let signer = s.signer()?;
    let payouts = s.chain.client.payout(&s.chain.deployment.contracts.payout);
    let owed = payouts.balances(signer.address().as_ref()).await?;
    if owed.balances.is_empty() {
        bail!("{} has nothing to claim", signer.address());
    }
    let outcome = payouts.claim(&signer).await?;
    let text = owed
        .balances
        .iter()
        .map(|e| format!("claimed {} {}", e.amount, e.asset))
        .collect::<Vec<_>>()
        .join("\n");
    report(output, &outcome, &owed, text);
    Ok(())
}

/// Bank balances and what the payout contract owes an address.
pub async fn balance(s: &Session, address: Option<String>, output: Output) -> Result<()> {
    let address = match (address, &s.from) {
        (Some(a), _) => a,
        (None, Some(_)) => s.signer()?.address().to_string(),
        (None, None) => bail!("pass an ADDRESS or --from KEY"),
    };
    let bank = s.chain.client.balances(&address).await?;
    let owed = s
        .chain
        .client
        .payout(&s.chain.deployment.contracts.payout)
        .balances(&address)
        .await?;
    let bank: Vec<_> = bank
        .iter()
        .map(|c| serde_json::json!({"denom": c.denom.to_string(), "amount": c.amount.to_string()}))
        .collect();
    let json = serde_json::json!({"address": address, "bank": bank, "claimable": owed.balances});
    output.print(&json, || {
        let mut t = format!("{address}\n");
        for c in &bank {
            t += &format!(
                "  bank       {} {}\n",
                c["amount"].as_str().unwrap_or(""),
                c["denom"].as_str().unwrap_or("")
            );
        }
        for e in &owed.balances {
            t += &format!("  claimable  {} {}\n", e.amount, e.asset);
        }
        t.trim_end().to_string()
    });
    Ok(())
}
