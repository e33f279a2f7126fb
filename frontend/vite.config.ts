/** Builds the workspace, the lead's dashboard, the Models page (and the viewer's dev
 * harness) into static/frontend/dist, where Django's app-directories finder serves it under
 * /static/frontend/dist/; templates find the hashed entry through .vite/manifest.json
 * (frontend/templatetags/vite.py).
 *
 * dicom-image-loader starts its decode worker and finds its codecs' WASM with
 * `new URL(<specifier>, import.meta.url)`; Vite emits both as hashed assets under `base` (the
 * worker as an ES module), so nothing has to be copied by hand. */

import { defineConfig } from "vite";

const CODEC_PACKAGES = [
  "@cornerstonejs/dicom-image-loader",
  "@cornerstonejs/codec-libjpeg-turbo-8bit",
  "@cornerstonejs/codec-charls",
  "@cornerstonejs/codec-openjpeg",
  "@cornerstonejs/codec-openjph",
  "@cornerstonejs/codec-libjxl",
];

export default defineConfig({
  base: "/static/frontend/dist/",
  build: {
    outDir: "static/frontend/dist",
    emptyOutDir: true,
    manifest: true,
    target: "es2022",
    // Cornerstone and vtk.js are large by nature; one lazy chunk would not make the viewer faster.
    chunkSizeWarningLimit: 4000,
    rolldownOptions: {
      input: {
        workspace: "src/workspace/main.ts",
        models: "src/models/main.ts",
        "lead-dashboard": "src/dashboards/lead.ts",
        adjudication: "src/adjudication/main.ts",
        quarantine: "src/quarantine/main.ts",
        audit: "src/audit/main.ts",
        settings: "src/settings/main.ts",
        "viewer-harness": "src/dev/viewer-harness.html",
      },
    },
  },
  worker: { format: "es" },
  // Dev server only: the codecs are Emscripten modules that must not be pre-bundled.
  optimizeDeps: { exclude: CODEC_PACKAGES, include: ["dicom-parser"] },
});
