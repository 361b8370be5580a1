/** The full CLI as a process (loaded by bin/tessera.mjs when the fast path, fast-path.ts, does not answer): runs
 *  `tessera` on the argv with the Node services and exits with the code the command produced. */
export const main = async (argv: ReadonlyArray<string>): Promise<void> => {
  // Dynamic imports, so that a bundler makes them chunks loaded only on this path. Deep imports: the
  // @effect/platform-node index also loads Redis, cluster and WebSocket support, and the effect index all of Effect.
  const [Effect, Exit, Runtime, NodeRuntime, NodeServices, { run }] = await Promise.all([
    import("effect/Effect"),
    import("effect/Exit"),
    import("effect/Runtime"),
    import("@effect/platform-node/NodeRuntime"),
    import("@effect/platform-node/NodeServices"),
    import("./cli.ts")
  ])
  run(argv).pipe(
    Effect.provide(NodeServices.layer),
    NodeRuntime.runMain({
      disableErrorReporting: true,
      teardown: (exit, onExit) =>
        Exit.isSuccess(exit) && typeof exit.value === "number"
          ? onExit(exit.value)
          : Runtime.defaultTeardown(exit, onExit)
    })
  )
}
