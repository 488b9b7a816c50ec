//! What owners, curators and contributors change after the first registration: curators,
//! allow lists, ownership, descriptions, attestors, deprecation, gateways and withdrawals. Each
//! is one signed message (with `--dry-run`, its simulation).

use anyhow::{bail, Result};
use serde::Serialize;
use tributary_client::TxOutcome;
use tributary_types::datanet::{self, ContributionStatus};
use tributary_types::registry;

use crate::actions::{report, DatanetCommand, ModelCommand, Session};
use crate::output::Output;

/// Sends one message to `contract`, signed by `--from`.
async fn send(s: &Session, contract: &str, msg: &impl Serialize) -> Result<TxOutcome> {
    let signer = s.signer()?;
    Ok(s.chain
        .client
        .execute(&signer, contract, msg, Vec::new())
        .await?)
}

async fn datanet_tx(s: &Session, msg: &datanet::ExecuteMsg) -> Result<TxOutcome> {
    send(s, &s.chain.deployment.contracts.datanet, msg).await
}

async fn registry_tx(s: &Session, msg: &registry::ExecuteMsg) -> Result<TxOutcome> {
    send(s, &s.chain.deployment.contracts.model_registry, msg).await
}

#[derive(Serialize)]
struct Changed<'a> {
    action: &'a str,
    #[serde(flatten)]
    target: serde_json::Value,
}

fn done(
    output: Output,
    outcome: &TxOutcome,
    action: &str,
    target: serde_json::Value,
    text: String,
) {
    report(output, outcome, Changed { action, target }, text);
}

pub async fn datanet(s: &Session, cmd: DatanetCommand, output: Output) -> Result<()> {
    match cmd {
        DatanetCommand::Pending {
            datanet_id,
            start_after,
            limit,
        } => {
            let pending = s
                .chain
                .client
                .datanet(&s.chain.deployment.contracts.datanet)
                .contributions(
                    datanet_id,
                    Some(ContributionStatus::Pending),
                    start_after,
                    limit,
                )
                .await?;
            output.print(&pending, || {
                if pending.is_empty() {
                    return format!("datanet {datanet_id} has no contribution waiting for review");
                }
                let mut out = String::new();
                for c in &pending {
                    out.push_str(&format!(
                        "#{:<6} {:>8} B  {}  {}  {}\n",
                        c.id, c.size_bytes, c.contributor, c.media_type, c.uri
                    ));
                }
                out.push_str("accept or reject each with `tributary review ID accept|reject`");
                out
            });
        }
        DatanetCommand::Update {
            datanet_id,
            description,
            tags,
            license,
            policy,
            max_bytes,
        } => {
            if description.is_none()
                && tags.is_empty()
                && license.is_none()
                && policy.is_none()
                && max_bytes.is_none()
            {
                bail!("nothing to change: pass --description, --tag, --license, --policy or --max-bytes");
            }
            let msg = datanet::ExecuteMsg::UpdateDatanet {
                datanet_id,
                description,
                domain_tags: (!tags.is_empty()).then_some(tags),
                license,
                policy: policy.map(Into::into),
                max_contribution_bytes: max_bytes,
            };
            let outcome = datanet_tx(s, &msg).await?;
            done(
                output,
                &outcome,
                "update_datanet",
                serde_json::json!({ "datanet_id": datanet_id }),
                format!("updated datanet {datanet_id}"),
            );
        }
        DatanetCommand::Curators {
            datanet_id,
            add,
            remove,
        } => {
            if add.is_empty() && remove.is_empty() {
                bail!("pass --add ADDRESS or --remove ADDRESS (repeatable)");
            }
            // Two messages when both are given; each is all or nothing.
            let mut text = Vec::new();
            let mut last = None;
            if !add.is_empty() {
                let msg = datanet::ExecuteMsg::AddCurators {
                    datanet_id,
                    curators: add.clone(),
                };
                last = Some(datanet_tx(s, &msg).await?);
                text.push(format!("added curators {}", add.join(", ")));
            }
            if !remove.is_empty() {
                let msg = datanet::ExecuteMsg::RemoveCurators {
                    datanet_id,
                    curators: remove.clone(),
                };
                last = Some(datanet_tx(s, &msg).await?);
                text.push(format!("removed curators {}", remove.join(", ")));
            }
            if let Some(outcome) = last {
                done(
                    output,
                    &outcome,
                    "curators",
                    serde_json::json!({ "datanet_id": datanet_id, "added": add, "removed": remove }),
                    text.join("; "),
                );
            }
        }
        DatanetCommand::Allow {
            datanet_id,
            add,
            remove,
        } => {
            if add.is_empty() && remove.is_empty() {
                bail!("pass --add ADDRESS or --remove ADDRESS (repeatable)");
            }
            let msg = datanet::ExecuteMsg::UpdateAllowList {
                datanet_id,
                add: add.clone(),
                remove: remove.clone(),
            };
            let outcome = datanet_tx(s, &msg).await?;
            done(
                output,
                &outcome,
                "update_allow_list",
                serde_json::json!({ "datanet_id": datanet_id, "added": add, "removed": remove }),
                format!(
                    "datanet {datanet_id} allow list: {} added, {} removed",
                    add.len(),
                    remove.len()
                ),
            );
        }
        DatanetCommand::Transfer { datanet_id, to } => {
            let msg = datanet::ExecuteMsg::TransferOwnership {
                datanet_id,
                new_owner: to.clone(),
            };
            let outcome = datanet_tx(s, &msg).await?;
            done(
                output,
                &outcome,
                "transfer_ownership",
                serde_json::json!({ "datanet_id": datanet_id, "new_owner": to }),
                format!("datanet {datanet_id} now belongs to {to}"),
            );
        }
        _ => unreachable!("handled in actions::datanet"),
    }
    Ok(())
}

pub async fn model(s: &Session, cmd: ModelCommand, output: Output) -> Result<()> {
    match cmd {
        ModelCommand::Versions {
            model_id,
            start_after,
            limit,
        } => {
            let page: registry::ModelVersionsResponse = s
                .chain
                .client
                .registry(&s.chain.deployment.contracts.model_registry)
                .query(&registry::QueryMsg::Versions {
                    model_id,
                    start_after,
                    limit,
                })
                .await?;
            output.print(&page, || {
                let mut out = String::new();
                for v in &page.versions {
                    out.push_str(&format!(
                        "v{:<3} {} {}  split {}/{}/{}/{}  {} attestor(s), quorum {}{}\n",
                        v.version,
                        v.price.amount,
                        v.price.asset,
                        v.split.contributors_bps,
                        v.split.developer_bps,
                        v.split.operator_bps,
                        v.split.protocol_bps,
                        v.attestors.len(),
                        v.quorum,
                        if v.deprecated { "  (deprecated)" } else { "" }
                    ));
                }
                out.trim_end().to_string()
            });
        }
        ModelCommand::Deprecate { model_id, version } => {
            let outcome = registry_tx(
                s,
                &registry::ExecuteMsg::DeprecateVersion { model_id, version },
            )
            .await?;
            done(
                output,
                &outcome,
                "deprecate_version",
                serde_json::json!({ "model_id": model_id, "version": version }),
                format!("model {model_id} version {version} takes no new requests"),
            );
        }
        ModelCommand::Attestors {
            model_id,
            version,
            attestors,
            quorum,
        } => {
            let msg = registry::ExecuteMsg::SetAttestors {
                model_id,
                version,
                attestors: attestors.clone(),
                quorum,
            };
            let outcome = registry_tx(s, &msg).await?;
            done(
                output,
                &outcome,
                "set_attestors",
                serde_json::json!({
                    "model_id": model_id, "version": version,
                    "attestors": attestors, "quorum": quorum,
                }),
                format!(
                    "model {model_id} version {version}: {} attestor(s), quorum {quorum}",
                    attestors.len()
                ),
            );
        }
        ModelCommand::Gateway { url, withdraw } => {
            let url = if withdraw { None } else { url };
            let msg = registry::ExecuteMsg::SetGateway { url: url.clone() };
            let outcome = registry_tx(s, &msg).await?;
            let text = match &url {
                Some(url) => format!("published gateway {url}"),
                None => "withdrew the published gateway".to_string(),
            };
            done(
                output,
                &outcome,
                "set_gateway",
                serde_json::json!({ "url": url }),
                text,
            );
        }
        _ => unreachable!("handled in actions::model"),
    }
    Ok(())
}

pub async fn withdraw(s: &Session, contribution_id: u64, output: Output) -> Result<()> {
    let outcome = datanet_tx(s, &datanet::ExecuteMsg::Withdraw { contribution_id }).await?;
    done(
        output,
        &outcome,
        "withdraw",
        serde_json::json!({ "contribution_id": contribution_id }),
        format!("withdrew contribution {contribution_id}"),
    );
    Ok(())
}
