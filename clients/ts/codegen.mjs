// Generates the typed clients in src/ from the contracts' JSON schemas in ../../schema.
// `node codegen.mjs --out <dir>` writes elsewhere (ci/test compares that with src/).
import codegen from "@cosmwasm/ts-codegen";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const at = process.argv.indexOf("--out");
const outPath = at > 0 ? path.resolve(process.argv[at + 1]) : path.join(here, "src");
const schema = (name) => path.join(here, "..", "..", "schema", name);

await codegen.default({
  contracts: [
    { name: "Datanet", dir: schema("datanet") },
    { name: "ModelRegistry", dir: schema("model-registry") },
    { name: "Payout", dir: schema("payout") },
  ],
  outPath,
  options: {
    bundle: { enabled: true, bundleFile: "index.ts", scope: "contracts" },
    types: { enabled: true },
    client: { enabled: true },
    messageComposer: { enabled: true },
    reactQuery: { enabled: false },
    recoil: { enabled: false },
    messageBuilder: { enabled: false },
  },
});
