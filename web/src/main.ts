// The Tributary web app: contributors, curators, model developers and paying users, each with
// the Keplr wallet they already have.
import "./style.css";
import type { ExecuteResult } from "@cosmjs/cosmwasm-stargate";
import { toUtf8 } from "@cosmjs/encoding";
import { AppConfig, contributionCommitment, loadConfig, readableError, Reader, sha256Hex, upload, waitForBlockAfter, Wallet } from "./chain";

type Child = Node | string | null | undefined | false;

/** A DOM element with attributes (on* as listeners) and children. */
function h(tag: string, attrs: Record<string, unknown> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v as EventListener);
    } else if (v !== undefined && v !== null && v !== false) {
      el.setAttribute(k, String(v));
    }
  }
  for (const c of children) {
    if (c !== null && c !== undefined && c !== false) {
      el.append(c);
    }
  }
  return el;
}

const state: {
  config?: AppConfig;
  reader?: Reader;
  wallet?: Wallet;
  view: string;
  /** Display units by minimal denom or cw20 address: the chain's currencies, the cw20's token_info. */
  units: Map<string, { symbol: string; decimals: number }>;
} = { view: "datanets", units: new Map() };

/** `amount` base units as a decimal in display units, exactly (`1234500` with 6 decimals: `1.2345`). */
function inDisplayUnits(amount: string, decimals: number): string {
  const digits = BigInt(amount).toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, "");
  return fraction ? `${BigInt(whole).toLocaleString("en-US")}.${fraction}` : BigInt(whole).toLocaleString("en-US");
}

/** An amount of a native denom or a cw20 in its display unit, with the base units beside it. */
function formatAmount(amount: string, unit: string): string {
  const display = state.units.get(unit);
  if (!display || display.decimals === 0) {
    return `${amount} ${display?.symbol ?? unit}`;
  }
  return `${inDisplayUnits(amount, display.decimals)} ${display.symbol}`;
}

/** Learns the display units of the chain's currencies and of the configured cw20. */
async function loadUnits(): Promise<void> {
  for (const c of state.config!.chain.currencies) {
    state.units.set(c.coinMinimalDenom, { symbol: c.coinDenom, decimals: c.coinDecimals });
  }
  const cw20 = state.config!.contracts.cw20;
  const info = await state
    .reader!.cosmwasm.queryContractSmart(cw20, { token_info: {} })
    .catch(() => undefined);
  if (info) {
    state.units.set(cw20, { symbol: info.symbol, decimals: info.decimals });
  }
}
const main = () => document.getElementById("view") as HTMLElement;

/** Shows a signed action's pending state, then its hash or a readable error. */
async function signed(label: string, action: () => Promise<ExecuteResult>): Promise<ExecuteResult | undefined> {
  const log = document.getElementById("tx-log") as HTMLElement;
  const row = h("div", { class: "tx pending", "data-testid": "tx-status" }, `${label}: waiting for signature and block…`);
  log.prepend(row);
  try {
    const result = await action();
    row.className = "tx ok";
    row.replaceChildren(`${label}: included in block ${result.height}, tx `, txLink(result.transactionHash));
    return result;
  } catch (e) {
    row.className = "tx error";
    row.replaceChildren(`${label} failed: ${readableError(e)}`);
    return undefined;
  }
}

/** A transaction hash linking to the node's REST view of it. */
function txLink(hash: string): HTMLElement {
  const rest = state.config!.chain.rest.replace(/\/$/, "");
  return h("a", { href: `${rest}/cosmos/tx/v1beta1/txs/${hash}`, target: "_blank", rel: "noopener" }, h("code", { "data-testid": "tx-hash" }, hash));
}

function needWallet(): Wallet | undefined {
  if (!state.wallet) {
    main().prepend(h("p", { class: "warning" }, "Connect Keplr first."));
  }
  return state.wallet;
}

function wasmAttribute(result: ExecuteResult, key: string): string | undefined {
  return result.events
    .filter((e) => e.type === "wasm")
    .flatMap((e) => e.attributes)
    .find((a) => a.key === key)?.value;
}

async function renderHeader(): Promise<void> {
  const header = document.getElementById("wallet") as HTMLElement;
  if (!state.wallet || !state.reader) {
    header.replaceChildren(h("button", { onclick: connect, "data-testid": "connect" }, "Connect Keplr"));
    return;
  }
  const denom = state.config!.chain.currencies[0].coinMinimalDenom;
  const balance = await state.wallet.signing.getBalance(state.wallet.address, denom);
  const token = await state.reader.cosmwasm
    .queryContractSmart(state.config!.contracts.cw20, { balance: { address: state.wallet.address } })
    .catch(() => ({ balance: "0" }));
  header.replaceChildren(
    h("span", { class: "address", "data-testid": "address" }, state.wallet.address),
    h("span", { class: "balance", "data-testid": "balance", title: `${balance.amount} ${denom}` }, formatAmount(balance.amount, denom)),
    h("span", { class: "balance", title: `${token.balance} base units` }, formatAmount(token.balance, state.config!.contracts.cw20)),
  );
}

async function connect(): Promise<void> {
  try {
    state.wallet = await Wallet.connect(state.config!);
    await renderHeader();
    await show(state.view);
  } catch (e) {
    (document.getElementById("wallet") as HTMLElement).append(h("p", { class: "error" }, readableError(e)));
  }
}

// ---- contributors -------------------------------------------------------------------------

async function datanetsView(): Promise<HTMLElement> {
  const reader = state.reader!;
  const { datanets } = await reader.datanet.datanets({ limit: 30 });
  const search = h("input", { placeholder: "search name, description or tag", "data-testid": "search" }) as HTMLInputElement;
  const list = h("div", { class: "cards" });
  const draw = () => {
    const q = search.value.toLowerCase();
    list.replaceChildren(
      ...datanets
        .filter((d) => !q || `${d.name} ${d.description} ${d.domain_tags.join(" ")}`.toLowerCase().includes(q))
        .map((d) => {
          const file = h("input", { type: "file", "data-testid": `file-${d.id}` }) as HTMLInputElement;
          return h(
            "div",
            { class: "card", "data-testid": `datanet-${d.id}` },
            h("h3", {}, `#${d.id} ${d.name}`),
            h("p", {}, d.description),
            h("p", { class: "tags" }, ...d.domain_tags.map((t) => h("span", { class: "tag" }, t))),
            h("p", {}, `${d.accepted_count} accepted of ${d.contribution_count}, version ${d.latest_version}, ${d.policy}`),
            file,
            h("button", { onclick: () => contribute(d.id, file), "data-testid": `contribute-${d.id}` }, "Commit, reveal and upload"),
          );
        }),
    );
  };
  search.addEventListener("input", draw);
  draw();
  const mine = state.wallet ? await myContributions() : h("p", {}, "Connect Keplr to see your contributions.");
  return h("section", {}, h("h2", {}, "Datanets"), search, list, mine);
}

/**
 * Contributes a file in two signed transactions: a commitment that says nothing about the file,
 * then, in a later block, the reveal of its hash. The bytes go to the content store only after
 * the reveal, when the chain already records that they are this wallet's.
 */
async function contribute(datanetId: number, input: HTMLInputElement): Promise<void> {
  const wallet = needWallet();
  const file = input.files?.[0];
  if (!wallet || !file) {
    return;
  }
  const bytes = await file.arrayBuffer();
  const hash = await sha256Hex(bytes);
  const commitment = await contributionCommitment(wallet.address, hash);
  const committed = await signed(`Commit to ${file.name}`, () =>
    wallet.datanet.contribute({
      datanetId,
      commitment,
      sizeBytes: bytes.byteLength,
      mediaType: file.type || "application/octet-stream",
      metadata: JSON.stringify({ file_name: file.name }),
    }),
  );
  const contributionId = committed && Number(wasmAttribute(committed, "contribution_id"));
  if (!committed || !contributionId) {
    return;
  }
  try {
    // One block more: the node reports a block a moment before its state is queryable.
    await waitForBlockAfter(wallet.signing, committed.height + 1);
  } catch (e) {
    main().prepend(h("p", { class: "error" }, readableError(e)));
    return;
  }
  const revealed = await signed(`Reveal ${file.name}`, () =>
    wallet.datanet.revealContribution({
      contributionId,
      contentHash: hash,
      uri: `${state.config!.store.replace(/\/$/, "")}/blobs/${hash}`,
    }),
  );
  if (!revealed) {
    return;
  }
  try {
    await upload(state.config!.store, hash, bytes);
  } catch (e) {
    main().prepend(h("p", { class: "error" }, `Contribution ${contributionId} is on chain, but ${readableError(e)}`));
    return;
  }
  await show("datanets");
}

async function myContributions(): Promise<HTMLElement> {
  const wallet = state.wallet!;
  const reader = state.reader!;
  const { contributions } = await reader.datanet.contributionsByContributor({ contributor: wallet.address, limit: 50 });
  const { balances } = await reader.payout.balances({ address: wallet.address });
  return h(
    "div",
    { "data-testid": "my-contributions" },
    h("h3", {}, "My contributions"),
    table(
      ["id", "datanet", "status", "usage", "reason"],
      contributions.map((c) => [String(c.id), String(c.datanet_id), c.status, String(c.usage_count), c.reason ?? ""]),
    ),
    earnings(balances),
  );
}

function earnings(balances: { asset: unknown; amount: string }[]): HTMLElement {
  const wallet = state.wallet!;
  return h(
    "div",
    { class: "earnings", "data-testid": "earnings" },
    h("h3", {}, "Claimable earnings"),
    balances.length === 0
      ? h("p", {}, "Nothing to claim yet.")
      : table(["asset", "amount"], balances.map((b) => [assetName(b.asset), priced(b.amount, b.asset)])),
    h(
      "button",
      {
        "data-testid": "claim",
        disabled: balances.length === 0 || undefined,
        onclick: async () => {
          await signed("Claim", () => wallet.payout.claim());
          await renderHeader();
          await show(state.view);
        },
      },
      "Claim",
    ),
  );
}

/** An amount of a payout asset in its display unit. */
function priced(amount: string, asset: unknown): string {
  const a = asset as { native?: { denom: string }; cw20?: { address: string } };
  return formatAmount(amount, a.native?.denom ?? a.cw20?.address ?? "");
}

function assetName(asset: unknown): string {
  const a = asset as { native?: { denom: string }; cw20?: { address: string } };
  return a.native?.denom ?? (a.cw20 ? `cw20 ${a.cw20.address}` : JSON.stringify(asset));
}

// ---- curators -------------------------------------------------------------------------------

async function curateView(): Promise<HTMLElement> {
  const wallet = needWallet();
  if (!wallet) {
    return h("section", {}, h("h2", {}, "Curate"));
  }
  const reader = state.reader!;
  const { datanets } = await reader.datanet.datanets({ limit: 30 });
  const sections: HTMLElement[] = [];
  for (const d of datanets) {
    const allowed = d.owner === wallet.address || (await reader.datanet.curators({ datanetId: d.id })).includes(wallet.address);
    if (!allowed) {
      continue;
    }
    const { contributions } = await reader.datanet.contributions({ datanetId: d.id, status: "pending", limit: 50 });
    sections.push(
      h(
        "div",
        { class: "card", "data-testid": `queue-${d.id}` },
        h("h3", {}, `#${d.id} ${d.name}: ${contributions.length} pending`),
        ...contributions.map((c) => {
          const reason = h("input", { placeholder: "reason (required to reject)", "data-testid": `reason-${c.id}` }) as HTMLInputElement;
          const review = (decision: "accept" | "reject") =>
            signed(`${decision} contribution ${c.id}`, () =>
              wallet.datanet.review({ contributionId: c.id, decision, reason: reason.value || undefined }),
            ).then(() => show("curate"));
          return h(
            "div",
            { class: "pending-row", "data-testid": `pending-${c.id}` },
            h("a", { href: c.uri, target: "_blank" }, `#${c.id}`),
            ` ${c.size_bytes} bytes from ${c.contributor} `,
            h("button", { onclick: () => review("accept"), "data-testid": `accept-${c.id}` }, "Accept"),
            reason,
            h("button", { onclick: () => review("reject"), "data-testid": `reject-${c.id}` }, "Reject"),
          );
        }),
        h(
          "button",
          {
            "data-testid": `snapshot-${d.id}`,
            onclick: () =>
              signed(`Snapshot datanet ${d.id}`, () => wallet.datanet.snapshot({ datanetId: d.id })).then(() => show("curate")),
          },
          `Snapshot version ${d.latest_version + 1}`,
        ),
      ),
    );
  }
  return h("section", {}, h("h2", {}, "Curate"), ...(sections.length ? sections : [h("p", {}, "You curate no datanet.")]));
}

// ---- model developers -----------------------------------------------------------------------

async function modelsView(): Promise<HTMLElement> {
  const reader = state.reader!;
  const wallet = state.wallet;
  const { models } = wallet
    ? await reader.registry.modelsByOwner({ owner: wallet.address, limit: 30 })
    : await reader.registry.models({ limit: 30 });
  const cards: HTMLElement[] = [];
  for (const m of models) {
    const { versions } = await reader.registry.versions({ modelId: m.id, limit: 10 });
    cards.push(
      h(
        "div",
        { class: "card" },
        h("h3", {}, `#${m.id} ${m.name}`),
        h("p", {}, m.description),
        table(
          ["version", "price", "split (contributors/developer/operator/protocol bps)", "lineage", "quorum"],
          versions.map((v) => [
            String(v.version),
            priced(v.price.amount, v.price.asset),
            `${v.split.contributors_bps}/${v.split.developer_bps}/${v.split.operator_bps}/${v.split.protocol_bps}`,
            v.lineage.map((l) => `datanet ${l.datanet_id}@${l.version}`).join(", "),
            `${v.quorum} of ${v.attestors.length}`,
          ]),
        ),
      ),
    );
  }
  const title = wallet ? "My models" : "Models";
  const earned = wallet ? earnings((await reader.payout.balances({ address: wallet.address })).balances) : null;
  return h("section", {}, h("h2", {}, title), ...(cards.length ? cards : [h("p", {}, "No models.")]), earned);
}

// ---- users ----------------------------------------------------------------------------------

async function inferView(): Promise<HTMLElement> {
  const reader = state.reader!;
  const { models } = await reader.registry.models({ limit: 30 });
  const options: HTMLElement[] = [];
  for (const m of models) {
    const { versions } = await reader.registry.versions({ modelId: m.id, limit: 10 });
    for (const v of versions.filter((v) => !v.deprecated)) {
      options.push(h("option", { value: `${m.id}/${v.version}` }, `${m.name} v${v.version}: ${priced(v.price.amount, v.price.asset)}`));
    }
  }
  const select = h("select", { "data-testid": "model" }, ...options) as HTMLSelectElement;
  const prompt = h("textarea", { rows: 3, "data-testid": "prompt", placeholder: "Your prompt" }) as HTMLTextAreaElement;
  const result = h("div", { "data-testid": "result" });
  const run = async () => {
    const wallet = needWallet();
    if (!wallet || !prompt.value) {
      return;
    }
    const [modelId, version] = select.value.split("/").map(Number);
    const v = await reader.registry.modelVersion({ modelId, version });
    const promptHash = await sha256Hex(toUtf8(prompt.value).buffer as ArrayBuffer);
    const asset = v.price.asset as unknown as { native?: { denom: string }; cw20?: { address: string } };
    const paid = await signed(`Pay for an inference of model ${modelId} v${version}`, () =>
      asset.native
        ? wallet.payout.requestInference({ modelId, version, promptHash }, "auto", undefined, [
            { denom: asset.native.denom, amount: v.price.amount },
          ])
        : wallet.signing.execute(
            wallet.address,
            asset.cw20!.address,
            {
              send: {
                contract: state.config!.contracts.payout,
                amount: v.price.amount,
                msg: btoa(JSON.stringify({ request_inference: { model_id: modelId, version, prompt_hash: promptHash } })),
              },
            },
            "auto",
          ),
    );
    if (!paid) {
      return;
    }
    const requestId = Number(wasmAttribute(paid, "request_id"));
    // Kept until served, so a lost gateway call can be sent again without paying again.
    keepPrompt({ requestId, modelId, version, prompt: prompt.value, payTx: paid.transactionHash });
    await ask(result, requestId);
  };
  // Paid requests whose gateway call was lost, with their prompts kept in this browser.
  const pending = keptPrompts().map((k) =>
    h(
      "li",
      {},
      `Request ${k.requestId} (model ${k.modelId} v${k.version}): “${k.prompt.slice(0, 60)}” `,
      h("button", { onclick: () => ask(result, k.requestId) }, "Send again"),
    ),
  );
  return h(
    "section",
    {},
    h("h2", {}, "Pay for an inference"),
    select,
    prompt,
    h("button", { onclick: run, "data-testid": "pay" }, "Pay and ask"),
    ...(pending.length ? [h("h3", {}, "Paid, not served yet"), h("ul", { "data-testid": "pending" }, ...pending)] : []),
    result,
  );
}

interface Passage {
  window: number;
  windows: number;
  context: number;
}

interface Completion {
  completion: string;
  attribution: {
    top: { contribution_id: number; contributor: string; score: number; share_bps?: number; passage?: Passage }[];
  };
}

/** A paid request whose prompt this browser keeps until a gateway has served it. */
interface KeptPrompt {
  requestId: number;
  modelId: number;
  version: number;
  prompt: string;
  payTx: string;
}

const KEPT = "tributary.prompts";

function keptPrompts(): KeptPrompt[] {
  try {
    return JSON.parse(localStorage.getItem(KEPT) ?? "[]") as KeptPrompt[];
  } catch {
    return [];
  }
}

function keepPrompt(kept: KeptPrompt): void {
  localStorage.setItem(KEPT, JSON.stringify([...keptPrompts().filter((k) => k.requestId !== kept.requestId), kept]));
}

function forgetPrompt(requestId: number): void {
  localStorage.setItem(KEPT, JSON.stringify(keptPrompts().filter((k) => k.requestId !== requestId)));
}

/**
 * The gateways the version's attestors publish on chain, then the one `config.json` names for
 * the model (a network whose relayers publish none).
 */
async function gatewaysOf(modelId: number, version: number): Promise<string[]> {
  const { gateways } = await state.reader!.registry.gateways({ modelId, version });
  const configured = state.config!.gateways?.[String(modelId)];
  return [...gateways.map((g) => g.url), ...(configured ? [configured] : [])];
}

/** Sends a kept prompt to the first gateway that serves it and shows the completion. */
async function ask(result: HTMLElement, requestId: number): Promise<void> {
  const kept = keptPrompts().find((k) => k.requestId === requestId);
  if (!kept) {
    return;
  }
  const gateways = await gatewaysOf(kept.modelId, kept.version);
  const failures: string[] = [];
  for (const gateway of gateways) {
    result.replaceChildren(h("p", {}, `Request ${requestId} paid; asking the relayer at ${gateway}…`));
    try {
      const response = await fetch(`${gateway}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ request_id: requestId, prompt: kept.prompt }),
      });
      const body = await response.json();
      if (!response.ok) {
        failures.push(`${gateway} answered ${response.status}: ${body.error}`);
        continue;
      }
      forgetPrompt(requestId);
      result.replaceChildren(completionView(requestId, kept.payTx, body));
      await showPassages(body);
      await renderHeader();
      return;
    } catch (e) {
      failures.push(`${gateway} is unreachable (${readableError(e)})`);
    }
  }
  const retry = h("button", { "data-testid": "retry", onclick: () => ask(result, requestId) }, "Send the prompt again");
  result.replaceChildren(
    h(
      "p",
      { class: "error", "data-testid": "gateway-error" },
      gateways.length === 0
        ? `Request ${requestId} is paid, but no attestor of model ${kept.modelId} v${kept.version} publishes a gateway. `
        : `Request ${requestId} is paid, but no gateway served it: ${failures.join("; ")}. `,
      "The prompt is kept in this browser; nothing is paid again.",
    ),
    retry,
  );
}

/** A passage's bytes in a contribution of `size` bytes: the engine's windowing rule. */
function passageRange(p: Passage, size: number): [number, number] {
  const start = p.windows > 1 && p.window + 1 === p.windows ? Math.max(0, size - p.context) : p.window * p.context;
  const first = Math.min(Math.max(0, start - 1), size);
  return [first, Math.max(first, Math.min(start + p.context, size))];
}

function completionView(requestId: number, payTx: string, body: Completion): HTMLElement {
  const top = body.attribution.top.filter((t) => t.share_bps);
  const max = Math.max(1, ...top.map((t) => t.share_bps ?? 0));
  return h(
    "div",
    { class: "card", "data-testid": "completion" },
    h("h3", {}, `Request ${requestId}`),
    h("pre", { "data-testid": "completion-text" }, body.completion),
    h("h4", {}, "Attribution: the contributions that shaped this answer"),
    h(
      "div",
      { class: "bars", "data-testid": "attribution" },
      ...top.map((t) =>
        h(
          "div",
          { class: "bar-row" },
          h("span", { class: "bar-label" }, `#${t.contribution_id} ${t.contributor.slice(0, 12)}…`),
          h("span", { class: "bar", style: `width:${(100 * (t.share_bps ?? 0)) / max}%` }),
          h("span", { class: "bar-value" }, `${((t.share_bps ?? 0) / 100).toFixed(2)}%`),
        ),
      ),
    ),
    h("p", {}, "Paid in tx ", txLink(payTx), "; the relayer commits this attribution on chain, and contributors are paid once its challenge window passes."),
  );
}

/** The top contributions' text, read from the content store by their on-chain URI. */
async function showPassages(body: Completion): Promise<void> {
  const rows: string[][] = [];
  for (const t of body.attribution.top.filter((t) => t.share_bps)) {
    const c = await state.reader!.datanet.contribution({ contributionId: t.contribution_id });
    const text = await fetch(c.uri)
      .then(async (r) => {
        if (!r.ok) {
          return `(the store answered ${r.status})`;
        }
        const bytes = new Uint8Array(await r.arrayBuffer());
        if ((await sha256Hex(bytes.buffer as ArrayBuffer)) !== c.content_hash) {
          return "(the store served other bytes than the contribution's hash)";
        }
        // The training window that scored highest, else the contribution's start.
        const [from, to] = t.passage ? passageRange(t.passage, bytes.length) : [0, 160];
        return new TextDecoder().decode(bytes.slice(from, to));
      })
      .catch(() => "(the content store is unreachable)");
    rows.push([`#${t.contribution_id}`, t.contributor, `${((t.share_bps ?? 0) / 100).toFixed(2)}%`, text.slice(0, 200)]);
  }
  document
    .querySelector("[data-testid=completion]")
    ?.append(h("h4", {}, "Top passages"), h("div", { "data-testid": "passages" }, table(["contribution", "contributor", "weight", "passage"], rows)));
}

// ---- shell ----------------------------------------------------------------------------------

function table(head: string[], rows: string[][]): HTMLElement {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, ...head.map((c) => h("th", {}, c)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
}

// ---- a buyer's requests ---------------------------------------------------------------------

const REQUESTS_PAGE = 20;

/** The transaction that paid for request `id`: kept with its prompt, else found by its event. */
async function paymentTx(id: number): Promise<string | undefined> {
  const kept = keptPrompts().find((k) => k.requestId === id);
  if (kept) {
    return kept.payTx;
  }
  const found = await state
    .reader!.cosmwasm.searchTx(`wasm-inference_requested.request_id='${id}'`)
    .catch(() => []);
  return found[0]?.hash;
}

/** The payer's requests, newest page last, with their status, refund and resend. */
async function requestsView(startAfter?: number): Promise<HTMLElement> {
  const section = h("section", { "data-testid": "requests" }, h("h2", {}, "My requests"));
  const wallet = state.wallet;
  if (!wallet) {
    section.append(h("p", { class: "warning" }, "Connect Keplr to see the requests you paid for."));
    return section;
  }
  const reader = state.reader!;
  const { requests } = await reader.payout.requests({ payer: wallet.address, startAfter, limit: REQUESTS_PAGE });
  const block = await reader.cosmwasm.getBlock();
  // Block time to the millisecond, then in nanoseconds like the contract's timestamps.
  const now = BigInt(Date.parse(block.header.time.replace(/(\.\d{3})\d+/, "$1"))) * 1_000_000n;
  const result = h("div", {});
  if (requests.length === 0) {
    section.append(h("p", {}, startAfter ? "No more requests." : "You have paid for no inference yet."));
  }
  const rows: HTMLElement[] = [];
  // One lookup per request, all at once rather than one page row after another.
  const txs = await Promise.all(requests.map((r) => paymentTx(r.id)));
  for (const [i, r] of requests.entries()) {
    const tx = txs[i];
    const refundable = r.status === "open" && r.distinct_packets === 0 && now >= BigInt(r.expires_at);
    const kept = keptPrompts().some((k) => k.requestId === r.id);
    const actions: HTMLElement[] = [];
    if (refundable) {
      actions.push(
        h(
          "button",
          {
            "data-testid": `refund-${r.id}`,
            onclick: async () => {
              const done = await signed(`Refund request ${r.id}`, () => wallet.payout.refund({ requestId: r.id }, "auto"));
              if (done) {
                forgetPrompt(r.id);
                await renderHeader();
                main().replaceChildren(await requestsView(startAfter));
              }
            },
          },
          "Refund",
        ),
      );
    } else if (kept && r.status === "open") {
      actions.push(h("button", { onclick: () => ask(result, r.id) }, "Send the prompt again"));
    }
    rows.push(
      h(
        "tr",
        { "data-testid": `request-${r.id}` },
        h("td", {}, String(r.id)),
        h("td", {}, `${r.model_id} v${r.model_version}`),
        h("td", {}, priced(r.price.amount, r.price.asset)),
        h("td", { "data-testid": `status-${r.id}` }, r.status),
        h("td", {}, new Date(Number(BigInt(r.expires_at) / 1_000_000n)).toLocaleString()),
        h("td", {}, ...(tx ? [txLink(tx)] : [])),
        h("td", {}, ...actions),
      ),
    );
  }
  if (rows.length) {
    section.append(
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, ...["id", "model", "price", "status", "expires", "payment", ""].map((c) => h("th", {}, c)))),
        h("tbody", {}, ...rows),
      ),
    );
  }
  if (requests.length === REQUESTS_PAGE) {
    const last = requests[requests.length - 1].id;
    section.append(
      h("button", { "data-testid": "requests-next", onclick: async () => main().replaceChildren(await requestsView(last)) }, "Next page"),
    );
  }
  section.append(result);
  return section;
}

const views: Record<string, () => Promise<HTMLElement>> = {
  datanets: datanetsView,
  curate: curateView,
  models: modelsView,
  infer: inferView,
  requests: () => requestsView(),
};

async function show(view: string): Promise<void> {
  state.view = view;
  for (const tab of document.querySelectorAll("nav button")) {
    tab.classList.toggle("active", (tab as HTMLElement).dataset.view === view);
  }
  main().replaceChildren(h("p", {}, "Loading…"));
  try {
    main().replaceChildren(await views[view]());
  } catch (e) {
    main().replaceChildren(h("p", { class: "error" }, readableError(e)));
  }
}

async function start(): Promise<void> {
  const app = document.getElementById("app") as HTMLElement;
  try {
    state.config = await loadConfig();
    state.reader = await Reader.connect(state.config);
    await loadUnits();
  } catch (e) {
    app.replaceChildren(h("p", { class: "error" }, `Cannot reach the network: ${readableError(e)}`));
    return;
  }
  app.replaceChildren(
    h("header", {}, h("h1", {}, "Tributary"), h("span", { class: "chain" }, state.config.chain.chainId), h("div", { id: "wallet" })),
    h(
      "nav",
      {},
      ...Object.entries({ datanets: "Datanets", curate: "Curate", models: "Models", infer: "Inference", requests: "My requests" }).map(([v, label]) =>
        h("button", { "data-view": v, "data-testid": `tab-${v}`, onclick: () => show(v) }, label),
      ),
    ),
    h("main", { id: "view" }),
    h("aside", { id: "tx-log" }),
  );
  await renderHeader();
  await show("datanets");
}

void start();
