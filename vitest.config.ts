import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*"],
    // Two test files at a time on every project: most tests wait on sockets and child processes, not the CPU.
    maxWorkers: 2,
    testTimeout: 20_000,
    hookTimeout: 20_000
  }
})
