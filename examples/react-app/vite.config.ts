import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import wasm from "vite-plugin-wasm";

// The package is wasm-bindgen's `bundler` output: `import * as wasm from "./x_bg.wasm"`.
// vite-plugin-wasm turns that import into an instantiated module (with a top-level await,
// hence the es2022 target).
export default defineConfig({
  plugins: [react(), wasm()],
  resolve: {
    // `file:` dependencies are symlinks: without this, the React entry inside the package
    // would resolve `react` from bindings-js/node_modules (a second React: broken hooks) and
    // its own `@pitchey/realtime` import from nowhere.
    dedupe: ["react", "react-dom", "@pitchey/realtime"],
  },
  optimizeDeps: { exclude: ["@pitchey/realtime"] },
  build: { target: "es2022" },
});
