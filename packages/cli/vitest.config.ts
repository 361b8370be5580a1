import { defineProject } from "vitest/config"

// Each CLI test starts real `tessera` processes (about a second of CPU each), so allow for a busy machine.
// Two files at a time: a test mostly waits on its child processes (test/services/cli.ts caps how many run at once).
export default defineProject({ test: { name: "cli", include: ["test/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 30_000, maxWorkers: 2 } })
