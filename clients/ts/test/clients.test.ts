// The generated clients against a live devnet (TRIBUTARY_DEVNET_HOME, started by ci/test):
// a datanet created, contributed to (commit, then reveal) and reviewed through DatanetClient, read back through
// DatanetQueryClient; the registry and payout query clients read their configuration; a
// message composer's message signed by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { CosmWasmClient, SigningCosmWasmClient } from "@cosmjs/cosmwasm-stargate";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { GasPrice } from "@cosmjs/stargate";
import { contracts } from "../src";

const home = process.env.TRIBUTARY_DEVNET_HOME;
assert.ok(home, "set TRIBUTARY_DEVNET_HOME to a running devnet's home");
const devnet = JSON.parse(readFileSync(join(home, "devnet.json"), "utf8"));
const deployment = JSON.parse(readFileSync(join(home, "deployment.json"), "utf8"));
const rpc: string = devnet.nodes[0].rpc_url;
const gasPrice = GasPrice.fromString(`${devnet.params.fees.average}${devnet.params.denom}`);

async function signer(name: string) {
  const key = devnet.keys.find((k: { name: string }) => k.name === name);
  const wallet = await DirectSecp256k1HdWallet.fromMnemonic(key.mnemonic, { prefix: "trib" });
  const [account] = await wallet.getAccounts();
  const client = await SigningCosmWasmClient.connectWithSigner(rpc, wallet, { gasPrice });
  return { address: account.address, client };
}

function attribute(result: { events: readonly { type: string; attributes: readonly { key: string; value: string }[] }[] }, key: string): string {
  const found = result.events
    .filter((e) => e.type === "wasm")
    .flatMap((e) => e.attributes)
    .find((a) => a.key === key);
  assert.ok(found, `no ${key} attribute`);
  return found.value;
}

/** `tributary_types::datanet::contribution_commitment`: SHA-256 of the domain, the address and the hash bytes. */
function commitment(contributor: string, contentHash: string): string {
  return createHash("sha256")
    .update("tributary-contribution-v1")
    .update(contributor)
    .update(Buffer.from(contentHash, "hex"))
    .digest("hex");
}

/** Commits to `text`, waits for a later block, reveals it; returns the contribution id. */
async function commitAndReveal(
  client: InstanceType<typeof contracts.Datanet.DatanetClient>,
  who: { address: string; client: SigningCosmWasmClient },
  datanetId: number,
  text: string,
): Promise<number> {
  const contentHash = createHash("sha256").update(text).digest("hex");
  const committed = await client.contribute({
    datanetId,
    commitment: commitment(who.address, contentHash),
    sizeBytes: text.length,
    mediaType: "text/plain",
  });
  const contributionId = Number(attribute(committed, "contribution_id"));
  // The reveal is simulated against the latest block, which must be past the commitment's.
  // One block more: the node lists a block a moment before its state is queryable.
  while ((await who.client.getHeight()) <= committed.height + 1) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await client.revealContribution({ contributionId, contentHash, uri: `tributary://blobs/${contentHash}` });
  return contributionId;
}

test("the commitment matches the fixed vector of tributary-types", () => {
  const vector = commitment(
    "trib1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    createHash("sha256").update("tributary").digest("hex"),
  );
  assert.equal(vector, "9a5240a4d6cde0eb578240684cd66c371bbf7cdbd1b9a4ba172fd09253b64e0e");
});

test("the generated datanet clients create, contribute, review and read back", async () => {
  const curator = await signer("curator");
  const contributor = await signer("contributor2");
  const owner = new contracts.Datanet.DatanetClient(curator.client, curator.address, deployment.contracts.datanet);
  const created = await owner.createDatanet({
    name: "ts-clients",
    description: "created through the generated client",
    domainTags: ["typescript"],
    license: "CC0-1.0",
    policy: "curator_review",
    curators: [],
    maxContributionBytes: 4096,
  });
  const datanetId = Number(attribute(created, "datanet_id"));

  const text = "generated clients keep integrators honest";
  const contentHash = createHash("sha256").update(text).digest("hex");
  const asContributor = new contracts.Datanet.DatanetClient(contributor.client, contributor.address, deployment.contracts.datanet);
  // Commit, then reveal in a later block.
  const contributionId = await commitAndReveal(asContributor, contributor, datanetId, text);
  await owner.review({ contributionId, decision: "accept" });

  const reader = new contracts.Datanet.DatanetQueryClient(await CosmWasmClient.connect(rpc), deployment.contracts.datanet);
  const datanet = await reader.datanet({ datanetId });
  assert.equal(datanet.name, "ts-clients");
  assert.equal(datanet.accepted_count, 1);
  const contribution = await reader.contribution({ contributionId });
  assert.equal(contribution.status, "accepted");
  assert.equal(contribution.content_hash, contentHash);
  assert.equal(contribution.contributor, contributor.address);

  // A contract error reaches the caller as the contract's own text: the same content again
  // commits, and its reveal is refused.
  await assert.rejects(commitAndReveal(asContributor, contributor, datanetId, text), /already contribution/);
});

test("the generated query clients and message composers work against the chain", async () => {
  const reader = await CosmWasmClient.connect(rpc);
  const payout = new contracts.Payout.PayoutQueryClient(reader, deployment.contracts.payout);
  const config = await payout.config();
  assert.equal(config.datanet_contract, deployment.contracts.datanet);
  const registry = new contracts.ModelRegistry.ModelRegistryQueryClient(reader, deployment.contracts.model_registry);
  const registryConfig = await registry.config();
  assert.equal(registryConfig.datanet_contract, deployment.contracts.datanet);

  // A composed message, signed and broadcast as any Cosmos message.
  const curator = await signer("curator");
  const composer = new contracts.Datanet.DatanetMsgComposer(curator.address, deployment.contracts.datanet);
  const msg = composer.createDatanet({
    name: "ts-composed",
    description: "from a message composer",
    domainTags: ["typescript"],
    license: "CC0-1.0",
    policy: "open",
    curators: [],
    maxContributionBytes: 4096,
  });
  const result = await curator.client.signAndBroadcast(curator.address, [msg], "auto");
  assert.equal(result.code, 0);
});
