import { defineConfig } from "vite";

// Relative asset paths: the built app opens from any folder or static server.
export default defineConfig({
  base: "./",
  resolve: {
    // The generated clients in ../clients/ts import CosmJS too: one copy in the bundle.
    dedupe: ["@cosmjs/amino", "@cosmjs/cosmwasm-stargate", "@cosmjs/proto-signing", "@cosmjs/stargate"],
  },
  server: { fs: { allow: [".."] } },
  build: { outDir: "dist", chunkSizeWarningLimit: 4096 },
});
