/** The process entry point of `tessera` (loaded by bin/tessera.mjs): runs the CLI on process.argv with the Node
 *  services and exits with the code the command produced. */
import { enableCompileCache } from "node:module"

// A CLI pays its module loading on every call; Node's on-disk compile cache makes repeat calls start faster.
// Enabled before the rest is loaded, hence the dynamic imports below.
enableCompileCache()

// Deep imports: the @effect/platform-node index also loads Redis, cluster and WebSocket support.
const [{ Effect, Exit, Runtime }, NodeRuntime, NodeServices, { run }] = await Promise.all([
  import("effect"),
  import("@effect/platform-node/NodeRuntime"),
  import("@effect/platform-node/NodeServices"),
  import("./cli.ts")
])

run(process.argv.slice(2)).pipe(
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    teardown: (exit, onExit) =>
      Exit.isSuccess(exit) && typeof exit.value === "number"
        ? onExit(exit.value)
        : Runtime.defaultTeardown(exit, onExit)
  })
)
