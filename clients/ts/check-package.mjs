// Checks what `npm pack` would publish: compiled CommonJS with declarations for every
// generated module, CosmJS as a peer dependency, and an entry point that loads.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const packed = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--silent"], { encoding: "utf8" }))[0];
const files = new Set(packed.files.map((f) => f.path));
const problems = [];
for (const module of ["index", "Datanet.client", "ModelRegistry.client", "Payout.client", "Payout.types"]) {
  for (const ext of [".js", ".d.ts"]) {
    if (!files.has(`lib/${module}${ext}`)) problems.push(`lib/${module}${ext} is not in the package`);
  }
}
for (const f of files) {
  if (!f.startsWith("lib/") && f !== "README.md" && f !== "package.json") problems.push(`${f} should not be published`);
}
const manifest = JSON.parse(readFileSync("package.json", "utf8"));
if (manifest.dependencies && Object.keys(manifest.dependencies).some((d) => d.startsWith("@cosmjs/"))) {
  problems.push("CosmJS must be a peer dependency, not a dependency");
}
if (!manifest.peerDependencies?.["@cosmjs/cosmwasm-stargate"]) problems.push("@cosmjs/cosmwasm-stargate is no peer dependency");
const { contracts } = createRequire(import.meta.url)("./lib/index.js");
for (const [name, client] of [["Datanet", "DatanetClient"], ["ModelRegistry", "ModelRegistryClient"], ["Payout", "PayoutClient"]]) {
  if (typeof contracts[name]?.[client] !== "function") problems.push(`contracts.${name}.${client} is not exported`);
}
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`${packed.name}@${packed.version}: ${files.size} files, ${packed.size} bytes packed`);
