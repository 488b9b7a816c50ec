//! The buyer's journey: pay for an inference, send the prompt to a gateway the chain names,
//! show the completion with the passages that shaped it; list one's requests; take back the
//! fee of a request nobody served.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use cosmwasm_std::HexBinary;
use serde::Serialize;
use tributary_attrib_api::TopContribution;
use tributary_client::{
    coin, Error as ClientError, GatewayClient, InferenceRequested, PaidCompletion,
};
use tributary_store::{ContentHash, ContentStore, HttpStore};
use tributary_types::payout::{InferenceRequest, RequestStatus};
use tributary_types::{sha256, AssetInfo};

use crate::actions::{report, Session};
use crate::output::Output;

/// `tributary infer`.
#[derive(Args)]
pub struct InferArgs {
    #[arg(long)]
    model: u64,
    #[arg(long, default_value_t = 1)]
    version: u32,
    #[arg(long)]
    prompt: String,
    /// The gateway to send the prompt to, instead of those the version's attestors publish
    /// on chain.
    #[arg(long)]
    gateway: Option<String>,
    /// Sends the prompt of this already paid request instead of paying again (after a lost
    /// gateway call, or to read a completion back).
    #[arg(long)]
    request_id: Option<u64>,
    /// How long to wait for the completion, in seconds.
    #[arg(long, default_value_t = 180)]
    wait: u64,
    /// The content store that `tributary://blobs/{sha256}` contribution URIs are read from,
    /// for the passages.
    #[arg(long, env = "TRIBUTARY_STORE", default_value = "http://127.0.0.1:8700")]
    store: String,
}

/// What `tributary infer` prints.
#[derive(Serialize)]
struct Inference {
    request_id: u64,
    model_id: u64,
    version: u32,
    /// The payment, when this command paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    paid: Option<InferenceRequested>,
    gateway: String,
    completion: String,
    completion_hex: String,
    method: String,
    attribution: Vec<Attributed>,
    /// The request's status on chain when the completion came back.
    status: RequestStatus,
}

/// One of the contributions that shaped the completion.
#[derive(Serialize)]
struct Attributed {
    contribution_id: u64,
    datanet_id: Option<u64>,
    contributor: String,
    score: f64,
    /// Its share of the contributors' fee, in basis points (absent: none).
    share_bps: Option<u16>,
    /// The training window that scored highest, read from the contribution's URI and checked
    /// against its hash on chain.
    passage: Option<String>,
    /// Why the passage is missing, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    passage_error: Option<String>,
}

pub async fn infer(s: &Session, args: InferArgs, output: Output) -> Result<()> {
    let InferArgs {
        model: model_id,
        version,
        prompt,
        gateway,
        request_id,
        wait,
        store,
    } = args;
    let contracts = &s.chain.deployment.contracts;
    let registry = s.chain.client.registry(&contracts.model_registry);
    let payouts = s.chain.client.payout(&contracts.payout);
    let gateways = match gateway {
        Some(url) => vec![url],
        None => {
            let published = registry.gateways(model_id, version).await?;
            if published.is_empty() {
                return Err(ClientError::NoGateway { model_id, version }.into());
            }
            published.into_iter().map(|g| g.url).collect()
        }
    };
    let prompt_hash = HexBinary::from(sha256(prompt.as_bytes()).as_slice());
    let (request_id, paid) = match request_id {
        Some(id) => {
            let request = payouts.request(id).await?;
            check_resubmission(&request, model_id, version, &prompt_hash)?;
            (id, None)
        }
        None => {
            let paid = pay(s, model_id, version, prompt_hash).await?;
            if output == Output::Text {
                eprintln!(
                    "paid {} {} for request {} (tx {})",
                    paid.amount,
                    paid.asset,
                    paid.request_id,
                    paid.tx_hash.as_deref().unwrap_or("?")
                );
            }
            (paid.request_id, Some(paid))
        }
    };

    let mut failures = Vec::new();
    let mut served = None;
    for url in &gateways {
        let client = GatewayClient::new(url)?;
        match client
            .complete(request_id, &prompt, Duration::from_secs(wait))
            .await
        {
            Ok(completion) => {
                served = Some((url.clone(), completion));
                break;
            }
            // Another attestor's gateway may serve what this one cannot reach or refuses.
            Err(
                e @ (ClientError::GatewayUnreachable { .. }
                | ClientError::GatewayRefused {
                    status: 403 | 503, ..
                }),
            ) if gateways.len() > 1 => failures.push(e.to_string()),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "request {request_id} is paid; send the prompt again with \
                     `tributary infer --request-id {request_id}`"
                )))
            }
        }
    }
    let Some((gateway, PaidCompletion { response, .. })) = served else {
        bail!(
            "no gateway served request {request_id} (it is paid; retry with --request-id \
             {request_id}, or refund it after it expires): {}",
            failures.join("; ")
        );
    };

    let mut attribution = Vec::new();
    for top in &response.attribution.top {
        attribution.push(attributed(s, top, &store).await);
    }
    let status = payouts.request(request_id).await?.status;
    let inference = Inference {
        request_id,
        model_id,
        version,
        paid,
        gateway,
        completion: response.completion,
        completion_hex: response.completion_hex,
        method: response.attribution.method,
        attribution,
        status,
    };
    output.print(&inference, || inference_text(&inference));
    Ok(())
}

/// The request an `--request-id` names must be this prompt's, for this model, and still open.
fn check_resubmission(
    request: &InferenceRequest,
    model_id: u64,
    version: u32,
    prompt_hash: &HexBinary,
) -> Result<()> {
    if (request.model_id, request.model_version) != (model_id, version) {
        bail!(
            "request {} paid for model {} version {}, not model {model_id} version {version}",
            request.id,
            request.model_id,
            request.model_version
        );
    }
    if request.prompt_hash != *prompt_hash {
        bail!(
            "request {} paid for another prompt (prompt hash {}, this prompt's is {prompt_hash})",
            request.id,
            request.prompt_hash
        );
    }
    if matches!(request.status, RequestStatus::Refunded) {
        bail!("request {} was refunded", request.id);
    }
    Ok(())
}

async fn pay(
    s: &Session,
    model_id: u64,
    version: u32,
    prompt_hash: HexBinary,
) -> Result<InferenceRequested> {
    let signer = s.signer()?;
    let contracts = &s.chain.deployment.contracts;
    let v = s
        .chain
        .client
        .registry(&contracts.model_registry)
        .model_version(model_id, version)
        .await?;
    let payouts = s.chain.client.payout(&contracts.payout);
    Ok(match &v.price.asset {
        AssetInfo::Native { denom } => {
            payouts
                .request_inference(
                    &signer,
                    model_id,
                    version,
                    prompt_hash,
                    vec![coin(v.price.amount.u128(), denom)?],
                )
                .await?
        }
        AssetInfo::Cw20 { address } => {
            payouts
                .request_inference_cw20(
                    &signer,
                    address,
                    v.price.amount.u128(),
                    model_id,
                    version,
                    prompt_hash,
                )
                .await?
        }
    })
}

/// A top contribution with its datanet and, where the engine found it, its passage.
async fn attributed(s: &Session, top: &TopContribution, store: &str) -> Attributed {
    let mut out = Attributed {
        contribution_id: top.contribution_id,
        datanet_id: None,
        contributor: top.contributor.clone(),
        score: top.score,
        share_bps: top.share_bps,
        passage: None,
        passage_error: None,
    };
    let datanets = s
        .chain
        .client
        .datanet(&s.chain.deployment.contracts.datanet);
    let contribution = match datanets.contribution(top.contribution_id).await {
        Ok(c) => c,
        Err(e) => {
            out.passage_error = Some(e.to_string());
            return out;
        }
    };
    out.datanet_id = Some(contribution.datanet_id);
    let Some(passage) = top.passage else {
        return out;
    };
    match read_verified(&contribution.uri, &contribution.content_hash, store).await {
        Ok(bytes) => {
            let range = passage.byte_range(bytes.len() as u64);
            let slice = &bytes[range.start as usize..range.end as usize];
            out.passage = Some(String::from_utf8_lossy(slice).into_owned());
        }
        Err(e) => out.passage_error = Some(format!("{e:#}")),
    }
    out
}

/// The bytes at `uri`, refused unless their SHA-256 is `hash`. A content-store URI
/// (`tributary://blobs/{sha256}` in `store`, or `{base}/blobs/{sha256}` as `tributary contribute`
/// writes them) is read through that store's client, which checks the hash itself; any other
/// `http(s)://` URI is fetched and checked here.
async fn read_verified(uri: &str, hash: &str, store: &str) -> Result<Vec<u8>> {
    let content: ContentHash = hash
        .parse()
        .map_err(|_| anyhow::anyhow!("{hash} is not a SHA-256 hex hash"))?;
    let is_http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    let base = match uri.strip_prefix("tributary://blobs/") {
        Some(_) => Some(store),
        None => uri
            .strip_suffix(&format!("/blobs/{hash}"))
            .filter(|b| is_http(b)),
    };
    if let Some(base) = base {
        return HttpStore::new(base)?
            .get(&content)
            .await
            .with_context(|| format!("reading {uri}"))?
            .with_context(|| format!("the content store at {base} does not hold {hash}"));
    }
    if !is_http(uri) {
        bail!("{uri} is not an http(s) or tributary:// URI this command reads");
    }
    let response = reqwest::get(uri)
        .await
        .with_context(|| format!("reading {uri}"))?;
    if !response.status().is_success() {
        bail!("{uri} answered {}", response.status());
    }
    let bytes = response.bytes().await?.to_vec();
    let got = ContentHash::of(&bytes);
    if got != content {
        bail!("{uri} served bytes hashing to {got}, not the {hash} recorded on chain");
    }
    Ok(bytes)
}

fn inference_text(i: &Inference) -> String {
    let mut out = format!(
        "request {} · model {} v{} · gateway {}\n\n{}\n\nattribution ({}):\n",
        i.request_id, i.model_id, i.version, i.gateway, i.completion, i.method
    );
    for a in &i.attribution {
        let share = a.share_bps.map_or("      -".to_string(), |bps| {
            format!("{:6.2}%", f64::from(bps) / 100.0)
        });
        let datanet = a.datanet_id.map_or("?".to_string(), |d| d.to_string());
        out.push_str(&format!(
            "  {share}  #{:<5} datanet {datanet:<3} {}\n",
            a.contribution_id, a.contributor
        ));
        if let Some(passage) = &a.passage {
            out.push_str(&format!("           \"{}\"\n", one_line(passage, 100)));
        }
    }
    out.push_str(&format!(
        "\nstatus: {} (tributary requests shows it later)",
        i.status.as_str()
    ));
    out
}

/// `text` on one line, whitespace runs collapsed, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= max {
        joined
    } else {
        format!("{}…", joined.chars().take(max).collect::<String>())
    }
}

/// Request statuses as `--status` takes them.
#[derive(Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Open,
    Attested,
    Disputed,
    Challenged,
    Finalized,
    Refunded,
}

impl From<StatusArg> for RequestStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Open => RequestStatus::Open,
            StatusArg::Attested => RequestStatus::Attested,
            StatusArg::Disputed => RequestStatus::Disputed,
            StatusArg::Challenged => RequestStatus::Challenged,
            StatusArg::Finalized => RequestStatus::Finalized,
            StatusArg::Refunded => RequestStatus::Refunded,
        }
    }
}

/// `tributary requests`.
#[derive(Args)]
pub struct RequestsArgs {
    /// Whose requests (default: `--from`'s).
    #[arg(long)]
    payer: Option<String>,
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    #[arg(long)]
    start_after: Option<u64>,
    #[arg(long, default_value_t = 30)]
    limit: u32,
}

/// One row of `tributary requests`.
#[derive(Serialize)]
struct RequestRow {
    #[serde(flatten)]
    request: InferenceRequest,
    /// `tributary refund` would return the fee now.
    refundable: bool,
}

#[derive(Serialize)]
struct RequestsPage {
    requests: Vec<RequestRow>,
    /// Pass as `--start-after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_start_after: Option<u64>,
}

pub async fn requests(s: &Session, args: RequestsArgs, output: Output) -> Result<()> {
    let payer = match (args.payer, &s.from) {
        (Some(p), _) => p,
        (None, Some(_)) => s.signer()?.address().to_string(),
        (None, None) => bail!("pass --payer ADDRESS or --from KEY"),
    };
    let payouts = s.chain.client.payout(&s.chain.deployment.contracts.payout);
    let limit = args.limit.clamp(1, 100);
    let page = payouts
        .requests(
            args.status.map(Into::into),
            Some(payer.clone()),
            args.start_after,
            Some(limit),
        )
        .await?;
    let now = s.chain.client.latest_block().await?.time_nanos;
    let next_start_after = (page.len() == limit as usize)
        .then(|| page.last().map(|r| r.id))
        .flatten();
    let rows: Vec<RequestRow> = page
        .into_iter()
        .map(|request| RequestRow {
            refundable: refundable(&request, now),
            request,
        })
        .collect();
    let page = RequestsPage {
        requests: rows,
        next_start_after,
    };
    output.print(&page, || {
        if page.requests.is_empty() {
            return format!("{payer} has no requests here");
        }
        let mut out = format!(
            "{:>6}  {:<9} {:<18} {:<11} {}\n",
            "id", "model", "price", "status", "note"
        );
        for row in &page.requests {
            let r = &row.request;
            let note = if row.refundable {
                "expired unserved: tributary refund ".to_string() + &r.id.to_string()
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{:>6}  {:<9} {:<18} {:<11} {note}\n",
                r.id,
                format!("{}v{}", r.model_id, r.model_version),
                format!("{} {}", r.price.amount, r.price.asset),
                r.status.as_str(),
            ));
        }
        if let Some(next) = page.next_start_after {
            out.push_str(&format!("more: --start-after {next}"));
        }
        out.trim_end().to_string()
    });
    Ok(())
}

/// A request the payout contract would refund now: nobody committed, and it expired.
fn refundable(request: &InferenceRequest, now_nanos: u64) -> bool {
    request.status == RequestStatus::Open
        && request.distinct_packets == 0
        && now_nanos >= request.expires_at.nanos()
}

pub async fn refund(s: &Session, request_id: u64, output: Output) -> Result<()> {
    let signer = s.signer()?;
    let payouts = s.chain.client.payout(&s.chain.deployment.contracts.payout);
    let request = payouts.request(request_id).await?;
    let now = s.chain.client.latest_block().await?.time_nanos;
    if !refundable(&request, now) {
        let why = match request.status {
            RequestStatus::Open if request.distinct_packets == 0 => format!(
                "it expires at {} (unix seconds), {} s from now",
                request.expires_at.seconds(),
                request.expires_at.nanos().saturating_sub(now) / 1_000_000_000
            ),
            RequestStatus::Refunded => "it was refunded already".to_string(),
            status => format!(
                "it is {} and was served: an attested request is settled, not refunded",
                status.as_str()
            ),
        };
        bail!("request {request_id} cannot be refunded: {why}");
    }
    let outcome = payouts.refund(&signer, request_id).await?;
    let text = format!(
        "refunded {} {} to {}",
        request.price.amount, request.price.asset, request.payer
    );
    report(output, &outcome, &request, text);
    Ok(())
}
