import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies the API to a ferroflow server on FERROFLOW_URL (default 127.0.0.1:5000).
const target = process.env.FERROFLOW_URL ?? "http://127.0.0.1:5000";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, chunkSizeWarningLimit: 1500 },
  server: {
    proxy: {
      "/api": target,
      "/ajax-api": target,
      "/get-artifact": target,
      "/model-versions/get-artifact": target,
    },
  },
});
