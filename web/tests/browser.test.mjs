// The built web app in Debian's Chromium, driven by playwright-core, against a live network
// (`tributary-demo --small --keep-running`, home in TRIBUTARY_DEMO_HOME). The Keplr extension
// cannot be installed here, so `window.keplr` is injected with the methods the app calls;
// signing happens in Node with a CosmJS DirectSecp256k1HdWallet, as Keplr signs outside the page.
//
// Flow: a contributor uploads a file → the curator accepts it → a user pays for an inference and
// sees its attribution → the model developer claims. Screenshots of each page go to
// TRIBUTARY_SCREENSHOTS (default web/screenshots).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync, mkdirSync, writeFileSync, existsSync } from "node:fs";
import { join, extname, resolve } from "node:path";
import { chromium } from "playwright-core";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { fromBase64, toBase64 } from "@cosmjs/encoding";

const home = process.env.TRIBUTARY_DEMO_HOME;
assert.ok(home, "set TRIBUTARY_DEMO_HOME to a running demo's home (tributary-demo --keep-running)");
const dist = resolve(import.meta.dirname, "..", "dist");
const shots = resolve(process.env.TRIBUTARY_SCREENSHOTS ?? join(import.meta.dirname, "..", "screenshots"));
mkdirSync(shots, { recursive: true });
const config = JSON.parse(readFileSync(join(home, "web-config.json"), "utf8"));
const devnet = JSON.parse(readFileSync(join(home, "devnet", "devnet.json"), "utf8"));
const mnemonic = (name) => devnet.keys.find((k) => k.name === name).mnemonic;

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json" };
let server;
let baseUrl;
let browser;

before(async () => {
  assert.ok(existsSync(join(dist, "index.html")), "build the app first: (cd web && npm run build)");
  server = createServer((req, res) => {
    const path = req.url === "/" ? "/index.html" : decodeURIComponent(req.url.split("?")[0]);
    if (path === "/config.json") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(config));
      return;
    }
    const file = join(dist, path);
    if (!file.startsWith(dist) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  baseUrl = `http://127.0.0.1:${server.address().port}/`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** A page whose `window.keplr` signs with `name`'s devnet key. */
async function pageAs(name) {
  const wallet = await DirectSecp256k1HdWallet.fromMnemonic(mnemonic(name), { prefix: "trib" });
  const [account] = await wallet.getAccounts();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const suggested = [];
  await context.exposeFunction("__keplrSuggest", (info) => suggested.push(info));
  await context.exposeFunction("__walletAccount", () => ({
    address: account.address,
    algo: account.algo,
    pubkey: toBase64(account.pubkey),
  }));
  await context.exposeFunction("__walletSignDirect", async (signer, doc) => {
    const signDoc = {
      bodyBytes: fromBase64(doc.bodyBytes),
      authInfoBytes: fromBase64(doc.authInfoBytes),
      chainId: doc.chainId,
      accountNumber: BigInt(doc.accountNumber),
    };
    const { signed, signature } = await wallet.signDirect(signer, signDoc);
    return {
      signed: {
        bodyBytes: toBase64(signed.bodyBytes),
        authInfoBytes: toBase64(signed.authInfoBytes),
        chainId: signed.chainId,
        accountNumber: signed.accountNumber.toString(),
      },
      signature,
    };
  });
  await context.addInitScript(() => {
    const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    const toB64 = (bytes) => btoa(String.fromCharCode(...bytes));
    let chainId = null;
    const signer = {
      getAccounts: async () => {
        const a = await window.__walletAccount();
        return [{ address: a.address, algo: a.algo, pubkey: b64(a.pubkey) }];
      },
      signDirect: async (address, doc) => {
        const out = await window.__walletSignDirect(address, {
          bodyBytes: toB64(doc.bodyBytes),
          authInfoBytes: toB64(doc.authInfoBytes),
          chainId: doc.chainId,
          accountNumber: doc.accountNumber.toString(),
        });
        return {
          signed: {
            bodyBytes: b64(out.signed.bodyBytes),
            authInfoBytes: b64(out.signed.authInfoBytes),
            chainId: out.signed.chainId,
            accountNumber: BigInt(out.signed.accountNumber),
          },
          signature: out.signature,
        };
      },
    };
    window.keplr = {
      experimentalSuggestChain: async (info) => {
        chainId = info.chainId;
        await window.__keplrSuggest(info);
      },
      enable: async (id) => {
        if (id !== chainId) throw new Error(`chain ${id} was not suggested`);
      },
      getKey: async () => {
        const a = await window.__walletAccount();
        return { name: "test", bech32Address: a.address, algo: a.algo, pubKey: b64(a.pubkey), isNanoLedger: false };
      },
      getOfflineSigner: () => signer,
    };
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(baseUrl);
  await page.getByTestId("connect").click();
  await page.getByTestId("address").waitFor();
  assert.equal(await page.getByTestId("address").textContent(), account.address);
  assert.equal(suggested[0].chainId, config.chain.chainId);
  assert.equal(suggested[0].bech32Config.bech32PrefixAccAddr, "trib");
  return { page, address: account.address, errors };
}

/** The hash of the transaction whose status row starts with `label`, once it is in a block. */
async function txLabelled(page, label) {
  const status = page.getByTestId("tx-status").filter({ hasText: label }).first();
  await status.waitFor({ timeout: 90_000 });
  await page.waitForFunction(
    (label) =>
      [...document.querySelectorAll("[data-testid=tx-status]")].some(
        (row) => row.textContent.startsWith(label) && !row.classList.contains("pending"),
      ),
    label,
    { timeout: 90_000 },
  );
  const text = await status.textContent();
  assert.match(text, /included in block/, text);
  return (await status.getByTestId("tx-hash").textContent()).trim();
}

async function lastTx(page) {
  const status = page.getByTestId("tx-status").first();
  await status.waitFor();
  await page.waitForFunction(() => !document.querySelector("[data-testid=tx-status]")?.classList.contains("pending"), null, { timeout: 60_000 });
  const text = await status.textContent();
  assert.match(text, /included in block/, text);
  return (await page.getByTestId("tx-hash").first().textContent()).trim();
}

test("upload, curate, pay for an inference, see its attribution, claim", async () => {
  // A contributor uploads a file to the curated datanet.
  const contributor = await pageAs("contributor2");
  const datanet = contributor.page.getByTestId("datanet-1");
  await datanet.waitFor();
  await contributor.page.screenshot({ path: join(shots, "1-datanets.png"), fullPage: true });
  const text = `A contribution from the browser at ${new Date().toISOString()}: write(2) returns the number of bytes written.`;
  await contributor.page.getByTestId("file-1").setInputFiles({ name: "write-notes.txt", mimeType: "text/plain", buffer: Buffer.from(text) });
  // Two signatures: the commitment, then (a block later) the reveal of the file's hash.
  await contributor.page.getByTestId("contribute-1").click();
  const commitTx = await txLabelled(contributor.page, "Commit to write-notes.txt");
  const revealTx = await txLabelled(contributor.page, "Reveal write-notes.txt");
  assert.match(commitTx, /^[0-9A-F]{64}$/);
  assert.match(revealTx, /^[0-9A-F]{64}$/);
  assert.notEqual(commitTx, revealTx);
  await contributor.page.waitForFunction(
    () => /pending/.test(document.querySelector("[data-testid=my-contributions]")?.textContent ?? ""),
    null,
    { timeout: 60_000 },
  );
  const mine = await contributor.page.getByTestId("my-contributions").textContent();
  assert.match(mine, /pending/);
  await contributor.page.screenshot({ path: join(shots, "2-contributed.png"), fullPage: true });
  const contributionId = Number(/(\d+)\s*1\s*pending/.exec(mine.replace(/\s+/g, " "))?.[1] ?? NaN);

  // The curator accepts it.
  const curator = await pageAs("curator");
  await curator.page.getByTestId("tab-curate").click();
  const queue = curator.page.getByTestId("queue-1");
  await queue.waitFor();
  const accept = Number.isNaN(contributionId) ? queue.locator("[data-testid^=accept-]").first() : curator.page.getByTestId(`accept-${contributionId}`);
  await curator.page.screenshot({ path: join(shots, "3-curate.png"), fullPage: true });
  await accept.click();
  await lastTx(curator.page);

  await contributor.page.getByTestId("tab-datanets").click();
  await contributor.page.getByTestId("my-contributions").waitFor();
  assert.match(await contributor.page.getByTestId("my-contributions").textContent(), /accepted/);

  // A user pays for an inference and reads its attribution.
  const user = await pageAs("user");
  await user.page.getByTestId("tab-infer").click();
  await user.page.getByTestId("prompt").fill("The write() system call");
  await user.page.getByTestId("pay").click();
  await lastTx(user.page);
  const completion = user.page.getByTestId("completion");
  await completion.waitFor({ timeout: 60_000 });
  const bars = user.page.locator("[data-testid=attribution] .bar-row");
  assert.ok((await bars.count()) > 0, "attribution bars shown");
  // The top passages' text comes from the content store.
  await user.page.getByTestId("passages").waitFor({ timeout: 30_000 });
  assert.ok((await user.page.locator("[data-testid=passages] tbody tr").count()) > 0);
  await user.page.screenshot({ path: join(shots, "4-inference.png"), fullPage: true });
  const requestId = Number((await completion.locator("h3").first().textContent()).replace(/\D+/g, ""));

  // The request is listed among the user's, with its status and the transaction that paid.
  await user.page.getByTestId("tab-requests").click();
  const row = user.page.getByTestId(`request-${requestId}`);
  await row.waitFor({ timeout: 30_000 });
  assert.match(await user.page.getByTestId(`status-${requestId}`).textContent(), /^(open|attested|finalized)$/);
  assert.equal(await row.locator("[data-testid=tx-hash]").count(), 1, "the payment transaction is linked");
  await user.page.screenshot({ path: join(shots, "4b-requests.png"), fullPage: true });

  // The model developer sees its models and claims what it earned.
  const developer = await pageAs("developer");
  await developer.page.getByTestId("tab-models").click();
  await developer.page.getByTestId("claim").waitFor();
  await developer.page.screenshot({ path: join(shots, "5-models.png"), fullPage: true });
  await developer.page.getByTestId("claim").click();
  await lastTx(developer.page);
  await developer.page.screenshot({ path: join(shots, "6-claimed.png"), fullPage: true });

  for (const p of [contributor, curator, user, developer]) {
    assert.deepEqual(p.errors, [], "no uncaught errors in the page");
  }
  writeFileSync(join(shots, "README.txt"), "Screenshots of the web app's browser test, one per step.\n");
});
