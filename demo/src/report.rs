//! The demo's report: what happened on chain, as data (`report.json`) and as one self-contained
//! HTML page (`report.html`, no network needed to open it).

use serde::{Deserialize, Serialize};
use tributary_attrib::heldout::HeldOutReport;

/// Everything the report shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// RFC 3339 time the run finished.
    pub generated_at: String,
    pub chain_id: String,
    /// A reduced run (smaller corpus and model), as `ci/test` runs it.
    pub small: bool,
    /// How long each step took.
    pub steps: Vec<StepTiming>,
    pub datanets: Vec<DatanetReport>,
    pub models: Vec<ModelReport>,
    pub inferences: Vec<InferenceReport>,
    /// What every contributor earned, per asset.
    pub contributors: Vec<ContributorPayout>,
    /// The fee split by actor: protocol, developer, operators, contributors.
    pub actors: Vec<ActorFees>,
    /// Checks of the final chain state; all must pass.
    pub checks: Vec<Check>,
    /// The dishonest attestor and the verifiers that caught it.
    #[serde(default)]
    pub verification: Option<VerificationReport>,
}

/// Open verification: a self-attested model whose attestor forges packets, and the verifiers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VerificationReport {
    /// The developer's self-attested copy.
    pub model_id: u64,
    /// The model it copies.
    pub copied_model_id: u64,
    /// The contribution the forged packets pay, and its contributor.
    pub puppet_contribution: u64,
    pub puppet_contributor: String,
    pub owner_bond_before: u128,
    pub owner_bond_after: u128,
    pub sample_rate: f64,
    pub committee_size: u32,
    pub challenge_bond: u128,
    pub slash_bps: u16,
    pub verifiers: Vec<VerifierReport>,
    pub requests: Vec<DisputeReport>,
}

/// What one verifier did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VerifierReport {
    pub name: String,
    pub address: String,
    pub checked: u64,
    pub mismatches: u64,
    pub challenges: u64,
    pub votes: u64,
    /// Claimable in utrib: returned bonds, rewards, operators' shares.
    pub earned: u128,
    pub recompute_ms_p50: Option<f64>,
    /// Gas of its last transaction of each kind.
    pub gas_used: std::collections::BTreeMap<String, u64>,
}

/// One request of the verification stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DisputeReport {
    pub request_id: u64,
    pub model_id: u64,
    pub attested_by_owner: bool,
    /// The packet its attestor committed.
    pub attested_packet: String,
    /// The packet the honest engine computes.
    pub recomputed_packet: String,
    /// The packet the request was settled by.
    pub settled_by: String,
    pub challenger: Option<String>,
    pub outcome: Option<String>,
    pub committee: Vec<String>,
    pub slashed: u128,
    /// The weight the attested packet gave the puppet.
    pub puppet_weight_bps: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StepTiming {
    pub name: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DatanetReport {
    pub id: u64,
    pub name: String,
    pub domain: String,
    /// Where the bytes came from, e.g. "Debian package manpages-dev, /usr/share/man/man2".
    pub source: String,
    /// The frozen version the models were trained on, and its merkle root (hex).
    pub version: u32,
    pub root: String,
    pub create_tx: String,
    pub snapshot_tx: String,
    pub contributions: Vec<ContributionReport>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContributionReport {
    pub id: u64,
    /// A short title, e.g. the man page name or the fortune's first words.
    pub title: String,
    /// Bech32 address and a readable label such as "contributor 3 (a-c pages)".
    pub contributor: String,
    pub contributor_label: String,
    /// "accepted" or "rejected".
    pub status: String,
    /// The curator's reason for a rejection.
    pub reason: Option<String>,
    pub size_bytes: u64,
    /// Finalized inferences that attributed to it (the datanet contract's count).
    pub usage_count: u64,
    pub contribute_tx: String,
    pub review_tx: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModelReport {
    pub id: u64,
    pub name: String,
    pub datanet_id: u64,
    pub datanet_version: u32,
    pub developer: String,
    pub versions: Vec<ModelVersionReport>,
    /// Training: steps, seconds, final loss, token windows, parameters.
    pub train_steps: usize,
    pub train_seconds: f64,
    pub final_loss: f64,
    pub examples: usize,
    pub parameters: usize,
    /// Bits per byte on documents nobody contributed, beside `gzip -9` and `xz -9` given the
    /// training text.
    pub held_out: HeldOutReport,
    /// The relayer (attestor) serving it.
    pub operator: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModelVersionReport {
    pub version: u32,
    /// E.g. "10000 utrib" or "10000 TRC (cw20)".
    pub price: String,
    pub weights_hash: String,
    pub index_hash: String,
    pub register_tx: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InferenceReport {
    pub request_id: u64,
    pub model_name: String,
    pub model_version: u32,
    pub payer: String,
    pub price: String,
    pub prompt: String,
    pub completion: String,
    pub pay_tx: String,
    pub commit_tx: String,
    pub finalize_tx: String,
    /// The packet's top contributions with their fee weights.
    pub top: Vec<TopPassage>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TopPassage {
    pub contribution_id: u64,
    pub title: String,
    pub contributor_label: String,
    /// Share of the contributors' pool, in basis points.
    pub weight_bps: u16,
    /// The first characters of the contribution's text.
    pub passage: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContributorPayout {
    pub address: String,
    pub label: String,
    pub datanet: String,
    /// Earned in utrib and in the cw20, claimed or not.
    pub native: u128,
    pub cw20: u128,
    /// The claim transaction, when this contributor claimed during the run.
    pub claim_tx: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ActorFees {
    /// "protocol", "model developer", "operator <label>", "contributors".
    pub actor: String,
    pub address: String,
    pub native: u128,
    pub cw20: u128,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

const CSS: &str = "\
:root{--fg:#1d2330;--muted:#5b6475;--bg:#fff;--line:#d9dee7;--zebra:#f4f6fa;--card:#fafbfd;\
--accent:#2f6fdb;--ok:#1a7f37;--bad:#c62828}\
@media (prefers-color-scheme:dark){:root{--fg:#e3e7ee;--muted:#9aa3b2;--bg:#15181e;--line:#2c323d;\
--zebra:#1c2028;--card:#1a1e25;--accent:#6b9cf0;--ok:#4cc06b;--bad:#f06b6b}}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--fg);line-height:1.5;\
font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}\
main{max-width:1100px;margin:0 auto;padding:24px}\
h1{margin:0 0 4px}h2{margin-top:40px;border-bottom:2px solid var(--line);padding-bottom:4px}\
h3{margin:24px 0 8px}h4{margin:16px 0 6px}\
code,pre,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"Liberation Mono\",monospace;font-size:.9em}\
.wrap{word-break:break-all}\
.muted,.meta{color:var(--muted)}\
.badge{display:inline-block;margin-left:12px;padding:2px 10px;border-radius:12px;font-size:.45em;\
vertical-align:middle;background:var(--accent);color:var(--bg)}\
.pass{color:var(--ok);font-weight:600}.fail{color:var(--bad);font-weight:600}\
.summary{font-size:1.1em}\
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:.92em}\
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}\
th{background:var(--zebra)}tbody tr:nth-child(even){background:var(--zebra)}\
tfoot td{font-weight:600;border-top:2px solid var(--line)}\
.num{white-space:nowrap;font-variant-numeric:tabular-nums}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}\
dt{color:var(--muted)}dd{margin:0}\
pre,.passage{white-space:pre-wrap;word-break:break-word}\
pre{background:var(--zebra);border:1px solid var(--line);border-radius:6px;padding:10px;margin:0}\
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;margin:16px 0}\
.card h3{margin-top:0}\
.chart{margin:12px 0}.chart figcaption{font-weight:600;margin-bottom:4px}\
.chart svg{max-width:100%;height:auto}\
.chart .bar{fill:var(--accent)}.chart text{fill:var(--fg);font-size:12px}\
.chart .value{fill:var(--muted)}\
.empty{color:var(--muted);font-style:italic}";

const EMPTY: &str = "<p class=\"empty\">Nothing to show.</p>";
const DASH: &str = "—";

const CHART_WIDTH: f64 = 760.0;
const LABEL_WIDTH: f64 = 320.0;
const BAR_MAX: f64 = 300.0;
const ROW_HEIGHT: f64 = 26.0;
const CHART_PAD: f64 = 4.0;
const LABEL_CHARS: usize = 46;

/// The report as one self-contained HTML page: inline CSS and SVG, no scripts or fonts
/// from the network.
pub fn render_html(report: &Report) -> String {
    let body = [
        header(report),
        checks_section(&report.checks),
        steps_section(&report.steps),
        datanets_section(&report.datanets),
        models_section(&report.models),
        inferences_section(&report.inferences),
        payouts_section(&report.contributors),
        fees_section(&report.actors),
        report
            .verification
            .as_ref()
            .map(verification_section)
            .unwrap_or_default(),
    ]
    .concat();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Tributary demo report — {chain}</title>\n<style>{CSS}</style>\n</head>\n\
         <body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        chain = escape(&report.chain_id),
    )
}

fn header(report: &Report) -> String {
    let badge = if report.small {
        "<span class=\"badge\">reduced run</span>"
    } else {
        ""
    };
    format!(
        "<header><h1>Tributary demo report{badge}</h1>\
         <p class=\"meta\">Chain <code>{}</code> · generated {}</p></header>\n",
        escape(&report.chain_id),
        escape(&report.generated_at),
    )
}

fn checks_section(checks: &[Check]) -> String {
    let failed = checks.iter().filter(|check| !check.passed).count();
    let summary = match (checks.len(), failed) {
        (0, _) => "<p class=\"summary muted\">No checks recorded.</p>".to_string(),
        (total, 0) => format!("<p class=\"summary pass\">All {total} checks passed.</p>"),
        (total, failed) => {
            format!("<p class=\"summary fail\">{failed} of {total} checks failed.</p>")
        }
    };
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|check| {
            vec![
                escape(&check.name),
                pass_mark(check.passed),
                escape(&check.detail),
            ]
        })
        .collect();
    section(
        "Checks",
        &(summary + &table(&["Check", "Passed", "Detail"], &rows, &[])),
    )
}

fn verification_section(v: &VerificationReport) -> String {
    let intro = format!(
        "<p>The developer registered model {} as a copy of model {} and attests it alone; its \
         engine gives every packet's contributors' share to contribution {} ({}). Each of {} \
         bonded verifiers recomputes {:.0}% of the attested requests with the real engine, \
         challenges a wrong packet with a {} utrib bond, and sits on the committees of the \
         others ({} members). A wrong attestor loses {}% of its bond.</p>",
        v.model_id,
        v.copied_model_id,
        v.puppet_contribution,
        escape(&v.puppet_contributor),
        v.verifiers.len(),
        v.sample_rate * 100.0,
        format_amount(v.challenge_bond),
        v.committee_size,
        v.slash_bps / 100,
    );
    let bond = definitions(&[
        ("developer's bond before", amount(v.owner_bond_before)),
        ("developer's bond after", amount(v.owner_bond_after)),
    ]);
    let verifier_rows: Vec<Vec<String>> = v
        .verifiers
        .iter()
        .map(|r| {
            let gas: Vec<String> = r
                .gas_used
                .iter()
                .map(|(kind, gas)| format!("{} {}", escape(kind), format_amount(u128::from(*gas))))
                .collect();
            vec![
                escape(&r.name),
                short_hash(&r.address),
                amount(u128::from(r.checked)),
                amount(u128::from(r.mismatches)),
                amount(u128::from(r.challenges)),
                amount(u128::from(r.votes)),
                amount(r.earned),
                r.recompute_ms_p50
                    .map_or(DASH.to_string(), |ms| format!("{ms:.1} ms")),
                escape(&gas.join(", ")),
            ]
        })
        .collect();
    let request_rows: Vec<Vec<String>> = v
        .requests
        .iter()
        .map(|r| {
            vec![
                r.request_id.to_string(),
                if r.attested_by_owner {
                    format!("{} (self-attested)", r.model_id)
                } else {
                    r.model_id.to_string()
                },
                short_hash(&r.attested_packet),
                short_hash(&r.recomputed_packet),
                short_hash(&r.settled_by),
                r.challenger.as_deref().map_or(DASH.to_string(), short_hash),
                escape(r.outcome.as_deref().unwrap_or("not challenged")),
                amount(r.slashed),
            ]
        })
        .collect();
    section(
        "Open verification",
        &format!(
            "{intro}{bond}<h3>Verifiers</h3>{}<h3>Requests</h3>{}",
            table(
                &[
                    "Verifier",
                    "Address",
                    "Checked",
                    "Mismatches",
                    "Challenges",
                    "Votes",
                    "Earned (utrib)",
                    "Recompute p50",
                    "Gas (last tx of each kind)",
                ],
                &verifier_rows,
                &[]
            ),
            table(
                &[
                    "Request",
                    "Model",
                    "Attested packet",
                    "Recomputed packet",
                    "Settled by",
                    "Challenger",
                    "Outcome",
                    "Slashed (utrib)",
                ],
                &request_rows,
                &[]
            )
        ),
    )
}

fn pass_mark(passed: bool) -> String {
    if passed {
        "<span class=\"pass\" title=\"passed\">✓</span>".to_string()
    } else {
        "<span class=\"fail\" title=\"failed\">✗</span>".to_string()
    }
}

fn steps_section(steps: &[StepTiming]) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|step| vec![escape(&step.name), seconds(step.seconds)])
        .collect();
    let total: f64 = steps.iter().map(|step| step.seconds).sum();
    let foot = [vec!["Total".to_string(), seconds(total)]];
    section("Step timings", &table(&["Step", "Seconds"], &rows, &foot))
}

fn seconds(value: f64) -> String {
    format!("<span class=\"num\">{value:.1}</span>")
}

fn datanets_section(datanets: &[DatanetReport]) -> String {
    let body: String = datanets.iter().map(datanet).collect();
    section("Datanets", or_empty(&body))
}

fn datanet(datanet: &DatanetReport) -> String {
    let facts = definitions(&[
        ("Domain", escape(&datanet.domain)),
        ("Source", escape(&datanet.source)),
        ("Version", datanet.version.to_string()),
        ("Root", full_hash(&datanet.root)),
        ("Create tx", short_hash(&datanet.create_tx)),
        ("Snapshot tx", short_hash(&datanet.snapshot_tx)),
    ]);
    let rows: Vec<Vec<String>> = datanet.contributions.iter().map(contribution_row).collect();
    let contributions = table(
        &[
            "Id",
            "Title",
            "Contributor",
            "Status",
            "Size",
            "Used",
            "Contribute tx",
            "Review tx",
        ],
        &rows,
        &[],
    );
    format!(
        "<article><h3>{} <span class=\"muted\">#{}</span></h3>{facts}<h4>Contributions</h4>{contributions}</article>\n",
        escape(&datanet.name),
        datanet.id,
    )
}

fn contribution_row(contribution: &ContributionReport) -> Vec<String> {
    vec![
        contribution.id.to_string(),
        escape(&contribution.title),
        labelled_address(&contribution.contributor_label, &contribution.contributor),
        status(&contribution.status, contribution.reason.as_deref()),
        format!(
            "<span class=\"num\">{} B</span>",
            format_amount(u128::from(contribution.size_bytes))
        ),
        amount(u128::from(contribution.usage_count)),
        short_hash(&contribution.contribute_tx),
        short_hash(&contribution.review_tx),
    ]
}

fn labelled_address(label: &str, address: &str) -> String {
    if label.is_empty() {
        code(address)
    } else {
        format!(
            "<span title=\"{}\">{}</span>",
            escape(address),
            escape(label)
        )
    }
}

fn status(status: &str, reason: Option<&str>) -> String {
    let class = match status {
        "accepted" => "pass",
        "rejected" => "fail",
        _ => "muted",
    };
    let reason = reason
        .filter(|reason| !reason.is_empty())
        .map(|reason| format!("<br><span class=\"muted\">{}</span>", escape(reason)))
        .unwrap_or_default();
    format!("<span class=\"{class}\">{}</span>{reason}", escape(status))
}

/// The model's bits per byte on held-out documents beside the compressors'.
pub fn held_out_line(h: &HeldOutReport) -> String {
    let bits = |b: Option<f64>| b.map_or("not installed".to_string(), |b| format!("{b:.3}"));
    format!(
        "model {:.3}, gzip -9 {}, xz -9 {} (compressors given the {} training bytes)",
        h.model_bits_per_byte,
        bits(h.gzip_bits_per_byte),
        bits(h.xz_bits_per_byte),
        h.train_bytes
    )
}

fn models_section(models: &[ModelReport]) -> String {
    let body: String = models.iter().map(model).collect();
    section("Models", or_empty(&body))
}

fn model(model: &ModelReport) -> String {
    let facts = definitions(&[
        ("Id", model.id.to_string()),
        (
            "Datanet",
            format!("{}@{}", model.datanet_id, model.datanet_version),
        ),
        ("Developer", code(&model.developer)),
        ("Operator", code(&model.operator)),
        ("Training steps", amount(model.train_steps as u128)),
        ("Training seconds", seconds(model.train_seconds)),
        ("Final loss", format!("{:.3}", model.final_loss)),
        ("Examples", amount(model.examples as u128)),
        ("Parameters", amount(model.parameters as u128)),
        (
            "Held-out documents",
            format!(
                "{} documents, {} bytes nobody contributed",
                model.held_out.documents,
                amount(model.held_out.bytes as u128)
            ),
        ),
        ("Held-out bits per byte", held_out_line(&model.held_out)),
    ]);
    let rows: Vec<Vec<String>> = model
        .versions
        .iter()
        .map(|version| {
            vec![
                version.version.to_string(),
                escape(&version.price),
                short_hash(&version.weights_hash),
                short_hash(&version.index_hash),
                short_hash(&version.register_tx),
            ]
        })
        .collect();
    let versions = table(
        &[
            "Version",
            "Price",
            "Weights hash",
            "Index hash",
            "Register tx",
        ],
        &rows,
        &[],
    );
    format!(
        "<article><h3>{}</h3>{facts}<h4>Versions</h4>{versions}</article>\n",
        escape(&model.name)
    )
}

fn inferences_section(inferences: &[InferenceReport]) -> String {
    let body: String = inferences.iter().map(inference).collect();
    section("Sample inferences", or_empty(&body))
}

fn inference(inference: &InferenceReport) -> String {
    let facts = definitions(&[
        ("Payer", code(&inference.payer)),
        ("Price", escape(&inference.price)),
    ]);
    let txs = definitions(&[
        ("Pay tx", short_hash(&inference.pay_tx)),
        ("Commit tx", short_hash(&inference.commit_tx)),
        ("Finalize tx", short_hash(&inference.finalize_tx)),
    ]);
    format!(
        "<article class=\"card\"><h3>Request #{id} <span class=\"muted\">{model} v{version}</span></h3>\
         {facts}<h4>Prompt</h4><pre>{prompt}</pre><h4>Completion</h4><pre>{completion}</pre>\
         {passages}{txs}</article>\n",
        id = inference.request_id,
        model = escape(&inference.model_name),
        version = inference.model_version,
        prompt = escape(&inference.prompt),
        completion = escape(&inference.completion),
        passages = top_passages(&inference.top),
    )
}

fn top_passages(top: &[TopPassage]) -> String {
    let bars: Vec<(String, f64)> = top
        .iter()
        .map(|passage| {
            let label = format!(
                "#{} {} — {}",
                passage.contribution_id, passage.title, passage.contributor_label
            );
            (label, f64::from(passage.weight_bps) / 100.0)
        })
        .collect();
    let rows: Vec<Vec<String>> = top
        .iter()
        .map(|passage| {
            vec![
                passage.contribution_id.to_string(),
                escape(&passage.title),
                escape(&passage.contributor_label),
                format!(
                    "<span class=\"num\">{:.2}%</span>",
                    f64::from(passage.weight_bps) / 100.0
                ),
                format!("<div class=\"passage\">{}</div>", escape(&passage.passage)),
            ]
        })
        .collect();
    let chart = bar_chart("Top contributing passages", &bars, "%");
    if rows.is_empty() {
        return chart;
    }
    chart
        + &table(
            &["Id", "Title", "Contributor", "Weight", "Passage"],
            &rows,
            &[],
        )
}

fn payouts_section(contributors: &[ContributorPayout]) -> String {
    if contributors.is_empty() {
        return section("Payouts per contributor", EMPTY);
    }
    let charts = amount_charts(
        "per contributor",
        contributors
            .iter()
            .map(|payout| (payout_label(payout), payout.native, payout.cw20)),
    );
    let rows: Vec<Vec<String>> = contributors
        .iter()
        .map(|payout| {
            vec![
                escape(&payout.label),
                escape(&payout.datanet),
                code(&payout.address),
                amount(payout.native),
                amount(payout.cw20),
                payout.claim_tx.as_deref().map_or_else(
                    || "<span class=\"muted\">not claimed</span>".to_string(),
                    short_hash,
                ),
            ]
        })
        .collect();
    let table = table(
        &[
            "Contributor",
            "Datanet",
            "Address",
            "Native (utrib)",
            "Cw20",
            "Claim tx",
        ],
        &rows,
        &[],
    );
    section("Payouts per contributor", &(charts + &table))
}

fn payout_label(payout: &ContributorPayout) -> String {
    let label = if payout.label.is_empty() {
        &payout.address
    } else {
        &payout.label
    };
    if payout.datanet.is_empty() {
        label.clone()
    } else {
        format!("{label} — {}", payout.datanet)
    }
}

fn fees_section(actors: &[ActorFees]) -> String {
    if actors.is_empty() {
        return section("Fees per actor", EMPTY);
    }
    let charts = amount_charts(
        "per actor",
        actors
            .iter()
            .map(|fees| (fees.actor.clone(), fees.native, fees.cw20)),
    );
    let rows: Vec<Vec<String>> = actors
        .iter()
        .map(|fees| {
            vec![
                escape(&fees.actor),
                code(&fees.address),
                amount(fees.native),
                amount(fees.cw20),
            ]
        })
        .collect();
    let table = table(&["Actor", "Address", "Native (utrib)", "Cw20"], &rows, &[]);
    section("Fees per actor", &(charts + &table))
}

/// A chart of the native amounts, and one of the cw20 amounts when any is non-zero.
fn amount_charts(subject: &str, amounts: impl Iterator<Item = (String, u128, u128)>) -> String {
    let (native, cw20): (Vec<_>, Vec<_>) = amounts
        .map(|(label, native, cw20)| ((label.clone(), native as f64), (label, cw20 as f64)))
        .unzip();
    let mut charts = bar_chart(&format!("Native (utrib) {subject}"), &native, "utrib");
    if cw20.iter().any(|(_, value)| *value > 0.0) {
        charts += &bar_chart(&format!("Cw20 {subject}"), &cw20, "cw20");
    }
    charts
}

/// A horizontal bar chart in inline SVG, bars scaled to the largest value.
fn bar_chart(title: &str, rows: &[(String, f64)], unit: &str) -> String {
    let title = escape(title);
    if rows.is_empty() {
        return format!("<p class=\"empty\">{title}: nothing to show.</p>");
    }
    let values: Vec<f64> = rows.iter().map(|(_, value)| chart_value(*value)).collect();
    let max = values.iter().copied().fold(0.0, f64::max);
    let bars: String = rows
        .iter()
        .zip(&values)
        .enumerate()
        .map(|(index, ((label, _), &value))| bar(index, label, value, max, unit))
        .collect();
    let height = rows.len() as f64 * ROW_HEIGHT + 2.0 * CHART_PAD;
    format!(
        "<figure class=\"chart\"><figcaption>{title}</figcaption>\
         <svg role=\"img\" aria-label=\"{title}\" width=\"{CHART_WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {CHART_WIDTH} {height}\">{bars}</svg></figure>\n"
    )
}

/// Non-finite and negative values chart as zero.
fn chart_value(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        0.0
    }
}

fn bar(index: usize, label: &str, value: f64, max: f64, unit: &str) -> String {
    let top = CHART_PAD + index as f64 * ROW_HEIGHT;
    let baseline = top + ROW_HEIGHT / 2.0 + 4.0;
    let width = if max > 0.0 {
        value / max * BAR_MAX
    } else {
        0.0
    };
    let shown = format_chart_value(value, unit);
    format!(
        "<g><title>{full}: {shown}</title>\
         <text x=\"{label_x}\" y=\"{baseline}\" text-anchor=\"end\">{short}</text>\
         <rect class=\"bar\" x=\"{LABEL_WIDTH}\" y=\"{bar_y}\" width=\"{width:.1}\" height=\"{bar_height}\" rx=\"3\"/>\
         <text class=\"value\" x=\"{value_x:.1}\" y=\"{baseline}\">{shown}</text></g>",
        full = escape(label),
        short = escape(&truncate(label, LABEL_CHARS)),
        label_x = LABEL_WIDTH - 8.0,
        bar_y = top + 4.0,
        bar_height = ROW_HEIGHT - 8.0,
        value_x = LABEL_WIDTH + width + 6.0,
        shown = escape(&shown),
    )
}

/// Percentages with two decimals, anything else as a grouped whole number with its unit.
fn format_chart_value(value: f64, unit: &str) -> String {
    if unit == "%" {
        format!("{value:.2}%")
    } else {
        format!("{} {unit}", format_amount(value.round() as u128))
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(max_chars - 1).collect();
    format!("{kept}…")
}

fn section(title: &str, body: &str) -> String {
    format!("<section>\n<h2>{}</h2>\n{body}</section>\n", escape(title))
}

fn or_empty(body: &str) -> &str {
    if body.is_empty() {
        EMPTY
    } else {
        body
    }
}

/// A table of cells that are already HTML; an empty body renders as "nothing to show".
fn table(headers: &[&str], rows: &[Vec<String>], foot: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return EMPTY.to_string();
    }
    let head: String = headers
        .iter()
        .map(|header| format!("<th>{}</th>", escape(header)))
        .collect();
    let foot = if foot.is_empty() {
        String::new()
    } else {
        format!("<tfoot>{}</tfoot>", table_rows(foot))
    };
    format!(
        "<table><thead><tr>{head}</tr></thead><tbody>{}</tbody>{foot}</table>\n",
        table_rows(rows)
    )
}

fn table_rows(rows: &[Vec<String>]) -> String {
    rows.iter()
        .map(|row| {
            let cells: String = row.iter().map(|cell| format!("<td>{cell}</td>")).collect();
            format!("<tr>{cells}</tr>")
        })
        .collect()
}

fn definitions(items: &[(&str, String)]) -> String {
    let items: String = items
        .iter()
        .map(|(term, value)| format!("<dt>{}</dt><dd>{value}</dd>", escape(term)))
        .collect();
    format!("<dl>{items}</dl>")
}

fn code(text: &str) -> String {
    if text.is_empty() {
        DASH.to_string()
    } else {
        format!("<code>{}</code>", escape(text))
    }
}

/// A hash in full, for the few places with room for it.
fn full_hash(hash: &str) -> String {
    if hash.is_empty() {
        DASH.to_string()
    } else {
        format!("<code class=\"hash wrap\">{}</code>", escape(hash))
    }
}

/// A hash shortened to its first 10 and last 6 characters, in full in the title.
fn short_hash(hash: &str) -> String {
    if hash.is_empty() {
        return DASH.to_string();
    }
    let chars: Vec<char> = hash.chars().collect();
    let shown = if chars.len() > 16 {
        let head: String = chars[..10].iter().collect();
        let tail: String = chars[chars.len() - 6..].iter().collect();
        format!("{head}…{tail}")
    } else {
        hash.to_string()
    };
    format!(
        "<code class=\"hash\" title=\"{}\">{}</code>",
        escape(hash),
        escape(&shown)
    )
}

fn amount(value: u128) -> String {
    format!("<span class=\"num\">{}</span>", format_amount(value))
}

/// Digits grouped by three with spaces: 1234567 → "1 234 567".
fn format_amount(value: u128) -> String {
    let digits = value.to_string();
    let head = match digits.len() % 3 {
        0 => 3,
        partial => partial,
    };
    let mut grouped = digits[..head].to_string();
    for start in (head..digits.len()).step_by(3) {
        grouped.push(' ');
        grouped.push_str(&digits[start..start + 3]);
    }
    grouped
}

/// Escapes text for HTML content and attributes; control characters other than
/// whitespace become U+FFFD.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if c.is_control() => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(seed: u8) -> String {
        format!("{seed:02X}").repeat(32)
    }

    fn sample_report() -> Report {
        Report {
            generated_at: "2025-01-02T03:04:05Z".to_string(),
            chain_id: "tributary-demo-1".to_string(),
            small: true,
            steps: vec![
                StepTiming {
                    name: "start chain".to_string(),
                    seconds: 12.34,
                },
                StepTiming {
                    name: "train models".to_string(),
                    seconds: 100.0,
                },
            ],
            datanets: vec![DatanetReport {
                id: 1,
                name: "man pages".to_string(),
                domain: "systems programming".to_string(),
                source: "Debian package manpages-dev, /usr/share/man/man2".to_string(),
                version: 1,
                root: "ab".repeat(32),
                create_tx: tx(1),
                snapshot_tx: tx(2),
                contributions: vec![
                    ContributionReport {
                        id: 1,
                        title: "open(2)".to_string(),
                        contributor: "trib1alice".to_string(),
                        contributor_label: "contributor 1 (a-c pages)".to_string(),
                        status: "accepted".to_string(),
                        reason: None,
                        size_bytes: 12_345,
                        usage_count: 3,
                        contribute_tx: tx(3),
                        review_tx: tx(4),
                    },
                    ContributionReport {
                        id: 2,
                        title: "spam".to_string(),
                        contributor: "trib1bob".to_string(),
                        contributor_label: "contributor 2".to_string(),
                        status: "rejected".to_string(),
                        reason: Some("off topic".to_string()),
                        size_bytes: 10,
                        usage_count: 0,
                        contribute_tx: tx(5),
                        review_tx: tx(6),
                    },
                ],
            }],
            models: vec![ModelReport {
                id: 1,
                name: "man-gpt".to_string(),
                datanet_id: 1,
                datanet_version: 1,
                developer: "trib1dev".to_string(),
                versions: vec![ModelVersionReport {
                    version: 1,
                    price: "10000 utrib".to_string(),
                    weights_hash: "cd".repeat(32),
                    index_hash: "ef".repeat(32),
                    register_tx: tx(7),
                }],
                train_steps: 300,
                train_seconds: 42.5,
                final_loss: 1.23456,
                examples: 2048,
                parameters: 1_234_567,
                held_out: HeldOutReport::default(),
                operator: "trib1relayer".to_string(),
            }],
            inferences: vec![InferenceReport {
                request_id: 1,
                model_name: "man-gpt".to_string(),
                model_version: 1,
                payer: "trib1user".to_string(),
                price: "10000 utrib".to_string(),
                prompt: "How do I open a file?".to_string(),
                completion: "Call open(2) with O_RDONLY.".to_string(),
                pay_tx: tx(8),
                commit_tx: tx(9),
                finalize_tx: tx(10),
                top: vec![
                    TopPassage {
                        contribution_id: 1,
                        title: "open(2)".to_string(),
                        contributor_label: "contributor 1 (a-c pages)".to_string(),
                        weight_bps: 7_525,
                        passage: "open, openat, creat - open and possibly create a file"
                            .to_string(),
                    },
                    TopPassage {
                        contribution_id: 3,
                        title: "close(2)".to_string(),
                        contributor_label: "contributor 1 (a-c pages)".to_string(),
                        weight_bps: 2_475,
                        passage: "close - close a file descriptor".to_string(),
                    },
                ],
            }],
            contributors: vec![
                ContributorPayout {
                    address: "trib1alice".to_string(),
                    label: "contributor 1 (a-c pages)".to_string(),
                    datanet: "man pages".to_string(),
                    native: 1_234_567,
                    cw20: 0,
                    claim_tx: Some(tx(11)),
                },
                ContributorPayout {
                    address: "trib1bob".to_string(),
                    label: "contributor 2".to_string(),
                    datanet: "man pages".to_string(),
                    native: 0,
                    cw20: 0,
                    claim_tx: None,
                },
            ],
            actors: vec![
                ActorFees {
                    actor: "protocol".to_string(),
                    address: "trib1protocol".to_string(),
                    native: 1_000,
                    cw20: 0,
                },
                ActorFees {
                    actor: "contributors".to_string(),
                    address: String::new(),
                    native: 7_000,
                    cw20: 0,
                },
            ],
            checks: vec![
                Check {
                    name: "fees conserved".to_string(),
                    passed: true,
                    detail: "sum matches".to_string(),
                },
                Check {
                    name: "claims paid".to_string(),
                    passed: false,
                    detail: "1 unpaid".to_string(),
                },
            ],
            verification: Some(VerificationReport {
                model_id: 3,
                copied_model_id: 1,
                puppet_contribution: 10,
                puppet_contributor: "contributor 4".into(),
                owner_bond_before: 10_000_000,
                owner_bond_after: 5_000_000,
                sample_rate: 0.5,
                committee_size: 3,
                challenge_bond: 1_000_000,
                slash_bps: 5000,
                verifiers: vec![VerifierReport {
                    name: "verifier1".into(),
                    address: "trib1verifier".into(),
                    checked: 3,
                    mismatches: 1,
                    challenges: 1,
                    votes: 0,
                    earned: 1_350_000,
                    recompute_ms_p50: Some(1.25),
                    gas_used: [("challenge".to_string(), 418_752)].into_iter().collect(),
                }],
                requests: vec![DisputeReport {
                    request_id: 7,
                    model_id: 3,
                    attested_by_owner: true,
                    attested_packet: "aa".repeat(32),
                    recomputed_packet: "bb".repeat(32),
                    settled_by: "bb".repeat(32),
                    challenger: Some("trib1verifier".into()),
                    outcome: Some("upheld".into()),
                    committee: vec!["trib1a".into(), "trib1b".into(), "trib1c".into()],
                    slashed: 5_000_000,
                    puppet_weight_bps: 10_000,
                }],
            }),
        }
    }

    fn all_tx_hashes(report: &Report) -> Vec<String> {
        let mut hashes = Vec::new();
        for datanet in &report.datanets {
            hashes.extend([datanet.create_tx.clone(), datanet.snapshot_tx.clone()]);
            for contribution in &datanet.contributions {
                hashes.extend([
                    contribution.contribute_tx.clone(),
                    contribution.review_tx.clone(),
                ]);
            }
        }
        for model in &report.models {
            hashes.extend(model.versions.iter().map(|v| v.register_tx.clone()));
        }
        for inference in &report.inferences {
            hashes.extend([
                inference.pay_tx.clone(),
                inference.commit_tx.clone(),
                inference.finalize_tx.clone(),
            ]);
        }
        hashes.extend(
            report
                .contributors
                .iter()
                .filter_map(|c| c.claim_tx.clone()),
        );
        hashes
    }

    #[test]
    fn hostile_text_is_escaped() {
        let mut report = sample_report();
        let hostile = "<script>alert(1)</script> \"quotes\" & ampersands 'single'";
        report.inferences[0].prompt = hostile.to_string();
        report.inferences[0].completion = hostile.to_string();
        report.inferences[0].top[0].passage = hostile.to_string();
        report.inferences[0].top[0].title = hostile.to_string();
        report.contributors[0].label = hostile.to_string();
        report.chain_id = hostile.to_string();
        let html = render_html(&report);
        assert!(!html.contains("<script>"));
        assert!(!html.contains("</script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&quot;quotes&quot; &amp; ampersands &#39;single&#39;"));
    }

    #[test]
    fn every_tx_hash_is_in_the_page_in_full() {
        let report = sample_report();
        let html = render_html(&report);
        let hashes = all_tx_hashes(&report);
        assert_eq!(hashes.len(), 11);
        for hash in hashes {
            assert!(
                html.contains(&format!("title=\"{hash}\"")),
                "missing {hash}"
            );
            let shown = format!("{}…{}", &hash[..10], &hash[hash.len() - 6..]);
            assert!(html.contains(&shown), "missing short form {shown}");
        }
        assert!(html.contains(&"ab".repeat(32)));
        assert!(html.contains(&"cd".repeat(32)));
        assert!(html.contains(&"ef".repeat(32)));
    }

    #[test]
    fn page_has_no_network_resources_or_scripts() {
        let html = render_html(&sample_report()).to_lowercase();
        assert!(!html.contains("http://"));
        assert!(!html.contains("https://"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("@import"));
        assert!(!html.contains("url("));
    }

    #[test]
    fn page_sections_come_in_order() {
        let html = render_html(&sample_report());
        let positions: Vec<usize> = [
            "Tributary demo report",
            "reduced run",
            "<h2>Checks</h2>",
            "1 of 2 checks failed",
            "<h2>Step timings</h2>",
            "<h2>Datanets</h2>",
            "<h2>Models</h2>",
            "<h2>Sample inferences</h2>",
            "<h2>Payouts per contributor</h2>",
            "<h2>Fees per actor</h2>",
            "<h2>Open verification</h2>",
        ]
        .iter()
        .map(|needle| {
            html.find(needle)
                .unwrap_or_else(|| panic!("missing {needle}"))
        })
        .collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn the_verification_section_shows_who_caught_what() {
        let html = render_html(&sample_report());
        let section = &html[html.find("<h2>Open verification</h2>").unwrap()..];
        for needle in [
            "model 3 as a copy of model 1",
            "contribution 10 (contributor 4)",
            "upheld",
            "3 (self-attested)",
            "1.2 ms",
            "challenge 418 752",
            "5 000 000",
        ] {
            assert!(section.contains(needle), "{needle} missing");
        }
    }

    #[test]
    fn page_shows_figures() {
        let html = render_html(&sample_report());
        assert!(html.contains(">112.3<"), "total seconds");
        assert!(html.contains(">1.235<"), "final loss");
        assert!(html.contains("75.25%"));
        assert!(html.contains("1 234 567 utrib"));
        assert!(html.contains("off topic"));
        assert!(html.contains("not claimed"));
        assert!(html.contains("1@1"));
        assert!(!html.contains("Cw20 per contributor"));
    }

    #[test]
    fn full_run_has_no_badge_and_all_passed_summary() {
        let mut report = sample_report();
        report.small = false;
        report.checks.retain(|check| check.passed);
        let html = render_html(&report);
        assert!(!html.contains("reduced run"));
        assert!(html.contains("All 1 checks passed."));
    }

    #[test]
    fn cw20_chart_appears_when_any_cw20_amount_is_set() {
        let mut report = sample_report();
        report.contributors[1].cw20 = 5;
        let html = render_html(&report);
        assert!(html.contains("Cw20 per contributor"));
    }

    #[test]
    fn empty_report_renders() {
        let html = render_html(&Report::default());
        assert!(html.contains("No checks recorded."));
        assert!(html.contains("Nothing to show."));
        assert!(!html.contains("NaN"));
    }

    #[test]
    fn bar_chart_of_zeros_or_nothing_has_no_nan() {
        let zeros = vec![("a".to_string(), 0.0), ("b".to_string(), 0.0)];
        let chart = bar_chart("zeros", &zeros, "utrib");
        assert!(chart.contains("<svg"));
        assert!(chart.contains("width=\"0.0\""));
        assert!(!chart.contains("NaN"));
        assert!(!chart.contains("inf"));

        let odd = vec![
            ("nan".to_string(), f64::NAN),
            ("inf".to_string(), f64::INFINITY),
            ("neg".to_string(), -1.0),
        ];
        let chart = bar_chart("odd", &odd, "%");
        assert!(!chart.contains("NaN"));
        assert!(!chart.contains("width=\"inf"));

        let empty = bar_chart("empty", &[], "utrib");
        assert!(!empty.contains("<svg"));
        assert!(empty.contains("nothing to show"));
    }

    #[test]
    fn bar_chart_scales_to_the_largest_value() {
        let rows = vec![("<big>".to_string(), 200.0), ("small".to_string(), 50.0)];
        let chart = bar_chart("scaled", &rows, "utrib");
        assert!(chart.contains(&format!("width=\"{BAR_MAX:.1}\"")));
        assert!(chart.contains(&format!("width=\"{:.1}\"", BAR_MAX / 4.0)));
        assert!(chart.contains("&lt;big&gt;"));
        assert!(chart.contains("viewBox=\"0 0 "));
        assert!(chart.contains("200 utrib"));
    }

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(format_amount(0), "0");
        assert_eq!(format_amount(999), "999");
        assert_eq!(format_amount(1000), "1 000");
        assert_eq!(format_amount(1_234_567), "1 234 567");
        assert_eq!(format_amount(u128::MAX).split(' ').count(), 13);
    }

    #[test]
    fn hashes_are_shortened_with_the_full_hash_in_the_title() {
        let hash = "0123456789abcdefghijklmnop";
        assert_eq!(
            short_hash(hash),
            "<code class=\"hash\" title=\"0123456789abcdefghijklmnop\">0123456789…klmnop</code>"
        );
        assert_eq!(short_hash(""), "—");
        assert_eq!(full_hash(""), "—");
        assert!(short_hash("abc").contains(">abc<"));
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(escape("a\u{0}b\nc"), "a\u{FFFD}b\nc");
    }
}
