import { defineProject } from "vitest/config"

// Each CLI test starts real `tessera` processes (about a second of CPU each), so allow for a busy machine.
// (Worker count is set once for all projects in the root vitest.config.ts: vitest rejects differing counts.)
export default defineProject({
  test: { name: "cli", include: ["test/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 30_000 }
})
