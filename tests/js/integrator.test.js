// A JavaScript integrator's view of a live Tributary devnet: CosmJS connects, queries a
// datanet, signs a contribution, and finds the transaction by hash and by event.
//
// Needs TRIBUTARY_DEVNET_HOME pointing at a running devnet with the contracts deployed
// (`tributary devnet up`); ci/test starts one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { SigningCosmWasmClient, CosmWasmClient } from "@cosmjs/cosmwasm-stargate";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { GasPrice } from "@cosmjs/stargate";

const home = process.env.TRIBUTARY_DEVNET_HOME;
assert.ok(home, "set TRIBUTARY_DEVNET_HOME to a running devnet's home");
const devnet = JSON.parse(readFileSync(join(home, "devnet.json"), "utf8"));
const deployment = JSON.parse(readFileSync(join(home, "deployment.json"), "utf8"));
const rpc = devnet.nodes[0].rpc_url;
const datanetAddr = deployment.contracts.datanet;
const key = (name) => devnet.keys.find((k) => k.name === name);

test("an integrator creates a datanet, contributes and finds the transaction", async () => {
  const gasPrice = GasPrice.fromString(`${devnet.params.fees.average}${devnet.params.denom}`);
  const owner = await DirectSecp256k1HdWallet.fromMnemonic(key("curator").mnemonic, { prefix: "trib" });
  const [ownerAccount] = await owner.getAccounts();
  assert.equal(ownerAccount.address, key("curator").address, "coin type 118 derivation matches the chain's keys");

  const client = await SigningCosmWasmClient.connectWithSigner(rpc, owner, { gasPrice });
  assert.equal(await client.getChainId(), devnet.chain_id);

  const created = await client.execute(
    ownerAccount.address,
    datanetAddr,
    {
      create_datanet: {
        name: "js-integration",
        description: "created from CosmJS",
        domain_tags: ["integration"],
        license: "CC0-1.0",
        policy: "open",
        curators: [],
        max_contribution_bytes: 1048576,
      },
    },
    "auto",
  );
  const datanetId = Number(
    created.events
      .filter((e) => e.type === "wasm")
      .flatMap((e) => e.attributes)
      .find((a) => a.key === "datanet_id").value,
  );

  const reader = await CosmWasmClient.connect(rpc);
  const datanet = await reader.queryContractSmart(datanetAddr, { datanet: { datanet_id: datanetId } });
  assert.equal(datanet.name, "js-integration");
  assert.equal(datanet.policy, "open");

  const contributorWallet = await DirectSecp256k1HdWallet.fromMnemonic(key("contributor3").mnemonic, { prefix: "trib" });
  const [contributor] = await contributorWallet.getAccounts();
  const signer = await SigningCosmWasmClient.connectWithSigner(rpc, contributorWallet, { gasPrice });
  const bytes = Buffer.from(`contribution from CosmJS at ${Date.now()}`);
  const contentHash = createHash("sha256").update(bytes).digest("hex");
  // A contribution is two transactions: a commitment that names nothing about the bytes, then,
  // in a later block, the reveal of their hash.
  const commitment = createHash("sha256")
    .update("tributary-contribution-v1")
    .update(contributor.address)
    .update(Buffer.from(contentHash, "hex"))
    .digest("hex");
  const contribute = async () => {
    const committed = await signer.execute(
      contributor.address,
      datanetAddr,
      {
        contribute: {
          datanet_id: datanetId,
          commitment,
          size_bytes: bytes.length,
          media_type: "text/plain",
          metadata: null,
        },
      },
      "auto",
    );
    const contributionId = Number(
      committed.events
        .filter((e) => e.type === "wasm")
        .flatMap((e) => e.attributes)
        .find((a) => a.key === "contribution_id").value,
    );
    // The reveal is simulated against the application's last committed block, which must be
    // past the commitment's; the node lists a block a moment before its state is queryable,
    // so one block more is waited for.
    while ((await signer.getHeight()) <= committed.height + 1) {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return signer.execute(
      contributor.address,
      datanetAddr,
      {
        reveal_contribution: {
          contribution_id: contributionId,
          content_hash: contentHash,
          uri: `tributary://blobs/${contentHash}`,
        },
      },
      "auto",
    );
  };
  const result = await contribute();

  // By hash.
  const tx = await reader.getTx(result.transactionHash);
  assert.ok(tx, "the transaction is found by hash");
  assert.equal(tx.code, 0);
  assert.equal(tx.height, result.height);

  // By event.
  const found = await reader.searchTx([{ key: "wasm.content_hash", value: contentHash }]);
  assert.deepEqual(found.map((t) => t.hash), [result.transactionHash]);

  const stored = await reader.queryContractSmart(datanetAddr, {
    contribution_by_hash: { datanet_id: datanetId, content_hash: contentHash },
  });
  assert.equal(stored.contributor, contributor.address);
  assert.equal(stored.status, "accepted");

  // The contract's own error reaches the integrator: the same bytes again are a duplicate
  // (committed, but refused at their reveal).
  await assert.rejects(contribute(), /already/);
});
