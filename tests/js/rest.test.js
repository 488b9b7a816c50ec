// The REST (LCD) routes the Keplr extension calls for a suggested chain, called the way Keplr
// calls them, against a live devnet's node (TRIBUTARY_DEVNET_HOME; ci/test starts one): node
// info, account, balances, simulate, broadcast, the transaction by hash, and CORS for a web
// app's origin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { SigningStargateClient, GasPrice, calculateFee } from "@cosmjs/stargate";
import { TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx.js";

const home = process.env.TRIBUTARY_DEVNET_HOME;
assert.ok(home, "set TRIBUTARY_DEVNET_HOME to a running devnet's home");
const devnet = JSON.parse(readFileSync(join(home, "devnet.json"), "utf8"));
const rest = devnet.nodes[0].rest_url.replace(/\/$/, "");
const rpc = devnet.nodes[0].rpc_url;
const denom = devnet.params.denom;
const key = (name) => devnet.keys.find((k) => k.name === name);
const origin = "http://localhost:5173";

async function get(path) {
  const response = await fetch(`${rest}${path}`, { headers: { origin } });
  return { status: response.status, cors: response.headers.get("access-control-allow-origin"), body: await response.json() };
}

async function post(path, body) {
  const response = await fetch(`${rest}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", origin },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

test("node info, account and balances answer as Keplr reads them", async () => {
  const info = await get("/cosmos/base/tendermint/v1beta1/node_info");
  assert.equal(info.status, 200);
  assert.equal(info.body.default_node_info.network, devnet.chain_id);
  assert.ok(info.cors === "*" || info.cors === origin, `CORS header: ${info.cors}`);

  const address = key("user").address;
  const account = await get(`/cosmos/auth/v1beta1/accounts/${address}`);
  assert.equal(account.status, 200);
  assert.equal(account.body.account["@type"], "/cosmos.auth.v1beta1.BaseAccount");
  assert.equal(account.body.account.address, address);

  const balances = await get(`/cosmos/bank/v1beta1/balances/${address}`);
  assert.equal(balances.status, 200);
  const utrib = balances.body.balances.find((b) => b.denom === denom);
  assert.ok(utrib && BigInt(utrib.amount) > 0n, JSON.stringify(balances.body));

  // An address the chain has never seen: 404 with the SDK's error body, as Keplr expects.
  const fresh = await DirectSecp256k1HdWallet.generate(12, { prefix: "trib" });
  const [unknown] = await fresh.getAccounts();
  const missing = await get(`/cosmos/auth/v1beta1/accounts/${unknown.address}`);
  assert.equal(missing.status, 404);
  assert.match(missing.body.message, /not found/);
});

test("a transaction simulated, broadcast and found by hash over REST", async () => {
  const wallet = await DirectSecp256k1HdWallet.fromMnemonic(key("user").mnemonic, { prefix: "trib" });
  const [sender] = await wallet.getAccounts();
  const recipient = key("treasury").address;
  const signing = await SigningStargateClient.connectWithSigner(rpc, wallet);
  const msg = {
    typeUrl: "/cosmos.bank.v1beta1.MsgSend",
    value: { fromAddress: sender.address, toAddress: recipient, amount: [{ denom, amount: "1234" }] },
  };
  const sign = async (gas) => {
    const fee = calculateFee(gas, GasPrice.fromString(`${devnet.params.fees.average}${denom}`));
    const raw = await signing.sign(sender.address, [msg], fee, "over REST");
    return Buffer.from(TxRaw.encode(raw).finish()).toString("base64");
  };

  const simulated = await post("/cosmos/tx/v1beta1/simulate", { tx_bytes: await sign(200000) });
  assert.equal(simulated.status, 200, JSON.stringify(simulated.body));
  const gasUsed = Number(simulated.body.gas_info.gas_used);
  assert.ok(gasUsed > 0);

  const before = await get(`/cosmos/bank/v1beta1/balances/${recipient}`);
  const broadcast = await post("/cosmos/tx/v1beta1/txs", {
    tx_bytes: await sign(Math.ceil(gasUsed * 1.4)),
    mode: "BROADCAST_MODE_SYNC",
  });
  assert.equal(broadcast.status, 200, JSON.stringify(broadcast.body));
  assert.equal(broadcast.body.tx_response.code, 0, broadcast.body.tx_response.raw_log);
  const hash = broadcast.body.tx_response.txhash;

  let found;
  for (let i = 0; i < 60; i++) {
    found = await get(`/cosmos/tx/v1beta1/txs/${hash}`);
    if (found.status === 200) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(found.status, 200);
  assert.equal(found.body.tx_response.code, 0);
  assert.equal(found.body.tx_response.txhash, hash);
  const after = await get(`/cosmos/bank/v1beta1/balances/${recipient}`);
  const amount = (r) => BigInt(r.body.balances.find((b) => b.denom === denom)?.amount ?? "0");
  assert.equal(amount(after) - amount(before), 1234n);
  signing.disconnect();
});

test("CORS preflight admits a web app's origin", async () => {
  const response = await fetch(`${rest}/cosmos/tx/v1beta1/simulate`, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type",
    },
  });
  assert.ok(response.status === 200 || response.status === 204, `preflight ${response.status}`);
  const allowed = response.headers.get("access-control-allow-origin");
  assert.ok(allowed === "*" || allowed === origin, `allow-origin ${allowed}`);
});
