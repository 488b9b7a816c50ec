// The connection: the app's configuration, Keplr (or any wallet with Keplr's interface), the
// CosmJS clients and the generated contract clients.
import { CosmWasmClient, SigningCosmWasmClient } from "@cosmjs/cosmwasm-stargate";
import type { OfflineSigner } from "@cosmjs/proto-signing";
import { GasPrice } from "@cosmjs/stargate";
import { DatanetClient, DatanetQueryClient } from "../../clients/ts/src/Datanet.client";
import { ModelRegistryQueryClient } from "../../clients/ts/src/ModelRegistry.client";
import { PayoutClient, PayoutQueryClient } from "../../clients/ts/src/Payout.client";

/** Keplr's `ChainInfo`, as `experimentalSuggestChain` takes it. */
export interface ChainInfo {
  chainId: string;
  chainName: string;
  rpc: string;
  rest: string;
  bip44: { coinType: number };
  bech32Config: Record<string, string>;
  currencies: Currency[];
  feeCurrencies: (Currency & { gasPriceStep?: { low: number; average: number; high: number } })[];
  stakeCurrency: Currency;
  features?: string[];
}

interface Currency {
  coinDenom: string;
  coinMinimalDenom: string;
  coinDecimals: number;
}

/** `config.json`, next to `index.html`: the chain, the contracts and the off-chain services. */
export interface AppConfig {
  chain: ChainInfo;
  contracts: { datanet: string; model_registry: string; payout: string; cw20: string };
  /** The content store's base URL. */
  store: string;
  /**
   * A relayer gateway for a model id, tried after the gateways the model version's attestors
   * publish in the registry (for networks whose relayers publish none).
   */
  gateways?: Record<string, string>;
}

/** The part of Keplr's interface the app uses. */
export interface KeplrLike {
  experimentalSuggestChain(info: ChainInfo): Promise<void>;
  enable(chainId: string): Promise<void>;
  getKey(chainId: string): Promise<{ name: string; bech32Address: string }>;
  getOfflineSigner(chainId: string): OfflineSigner;
}

declare global {
  interface Window {
    keplr?: KeplrLike;
  }
}

export async function loadConfig(): Promise<AppConfig> {
  const response = await fetch("./config.json");
  if (!response.ok) {
    throw new Error(`config.json: HTTP ${response.status} (write it next to index.html; see web/README.md)`);
  }
  return (await response.json()) as AppConfig;
}

/** Read-only clients, available before a wallet connects. */
export class Reader {
  readonly datanet: DatanetQueryClient;
  readonly registry: ModelRegistryQueryClient;
  readonly payout: PayoutQueryClient;

  constructor(
    readonly config: AppConfig,
    readonly cosmwasm: CosmWasmClient,
  ) {
    this.datanet = new DatanetQueryClient(cosmwasm, config.contracts.datanet);
    this.registry = new ModelRegistryQueryClient(cosmwasm, config.contracts.model_registry);
    this.payout = new PayoutQueryClient(cosmwasm, config.contracts.payout);
  }

  static async connect(config: AppConfig): Promise<Reader> {
    return new Reader(config, await CosmWasmClient.connect(config.chain.rpc));
  }
}

/** A connected wallet and its signing clients. */
export class Wallet {
  readonly datanet: DatanetClient;
  readonly payout: PayoutClient;

  constructor(
    readonly address: string,
    readonly name: string,
    readonly signing: SigningCosmWasmClient,
    config: AppConfig,
  ) {
    this.datanet = new DatanetClient(signing, address, config.contracts.datanet);
    this.payout = new PayoutClient(signing, address, config.contracts.payout);
  }

  /** Suggests the chain to Keplr, enables it and connects with its signer. */
  static async connect(config: AppConfig): Promise<Wallet> {
    const keplr = window.keplr;
    if (!keplr) {
      throw new Error("Keplr is not installed: add the Keplr extension to this browser");
    }
    const chain = config.chain;
    await keplr.experimentalSuggestChain(chain);
    await keplr.enable(chain.chainId);
    const key = await keplr.getKey(chain.chainId);
    const signer = keplr.getOfflineSigner(chain.chainId);
    const fee = chain.feeCurrencies[0];
    const gasPrice = GasPrice.fromString(`${fee.gasPriceStep?.average ?? 0.03}${fee.coinMinimalDenom}`);
    const signing = await SigningCosmWasmClient.connectWithSigner(chain.rpc, signer, { gasPrice });
    return new Wallet(key.bech32Address, key.name, signing, config);
  }
}

/** SHA-256 of bytes, lower-case hex, computed by the browser. */
export async function sha256Hex(bytes: ArrayBuffer): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The domain separator of a contribution commitment, as `tributary_types::datanet` defines it. */
const COMMITMENT_DOMAIN = "tributary-contribution-v1";

/**
 * The commitment a `Contribute` carries, lower-case hex: SHA-256 of the domain separator, the
 * contributor's bech32 address and the content hash's 32 bytes
 * (`tributary_types::datanet::contribution_commitment`). It says nothing about the content, and
 * only the contributor can reveal it.
 */
export async function contributionCommitment(contributor: string, contentHashHex: string): Promise<string> {
  if (!/^[0-9a-fA-F]{64}$/.test(contentHashHex)) {
    throw new Error(`a content hash is 64 hex characters, got ${JSON.stringify(contentHashHex)}`);
  }
  const text = new TextEncoder();
  const hash = Uint8Array.from(contentHashHex.match(/../g)!.map((b) => parseInt(b, 16)));
  const domain = text.encode(COMMITMENT_DOMAIN);
  const address = text.encode(contributor);
  const preimage = new Uint8Array(domain.length + address.length + hash.length);
  preimage.set(domain, 0);
  preimage.set(address, domain.length);
  preimage.set(hash, domain.length + address.length);
  return sha256Hex(preimage.buffer);
}

/**
 * Waits until the chain has a block above `height`. A reveal is simulated against the latest
 * block, which must be later than its commitment's.
 */
export async function waitForBlockAfter(client: CosmWasmClient, height: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await client.getHeight()) <= height) {
    if (Date.now() > deadline) {
      throw new Error(`the chain made no block after height ${height} in ${timeoutMs / 1000} s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Uploads bytes to the content store under their hash. */
export async function upload(store: string, hash: string, bytes: ArrayBuffer): Promise<void> {
  const response = await fetch(`${store.replace(/\/$/, "")}/blobs/${hash}`, { method: "PUT", body: bytes });
  if (!response.ok) {
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    throw new Error(`the content store refused the upload: ${body.error ?? response.status}`);
  }
}

/** A chain or contract failure in words a person can act on. */
export function readableError(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const contract = /message index: \d+: (.*?): (execute|instantiate) wasm contract failed/.exec(text);
  if (contract) {
    return `The contract refused: ${contract[1]}`;
  }
  if (/out of gas/i.test(text)) {
    return `Out of gas: the transaction needed more gas than it was given (${text})`;
  }
  if (/insufficient funds/i.test(text)) {
    return `Insufficient funds: the account cannot pay this amount and its fee (${text})`;
  }
  if (/Request rejected/i.test(text)) {
    return "The wallet rejected the request";
  }
  return text;
}
