/** Runs the server from a config file the way a process does: load the file, start, reload the same file on
 *  SIGHUP (a broken file is reported with its located problems and the running config kept; the next SIGHUP
 *  tries again from scratch), drain and stop on SIGTERM or SIGINT.
 *  `tessera serve` and main.ts both call `serve`. */
import * as Effect from "effect/Effect"
import { Writable } from "node:stream"
import { Config, Problem } from "@tessera/engine"
import * as AccessLog from "./access-log.ts"
import { startServer, type RunningServer, type ServerOptions } from "./server.ts"

export interface ServeOptions extends ServerOptions {
  /** Path to tessera.yaml. */
  readonly config: string
  /** For the config's ${env:...} references and the OTEL_* variables (default process.env). */
  readonly env?: NodeJS.ProcessEnv | undefined
  /** Install SIGHUP/SIGTERM/SIGINT handlers (default true). */
  readonly signals?: boolean | undefined
}

export interface Serving extends RunningServer {
  /** Loads the config file again and swaps it in; rejects (keeping the running config) when it is broken. The
   *  outcome is logged and counted either way (server.ts `reload`). */
  readonly reloadFromFile: () => Promise<void>
  /** Settles once the server has closed (after a signal or `close()`). */
  readonly closed: Promise<void>
}

const logProblems = (log: AccessLog.LogSink, config: Config.Config) => {
  for (const [name, b] of config.broken) {
    AccessLog.error(log, {
      code: "InputInvalid",
      message: `connection "${name}" (${b.provider}) is misconfigured and will answer 500:\n${Problem.formatAll(Problem.errors(b.problems))}`
    })
  }
}

/** Loads `options.config` and starts the server. Rejects with the engine's ConfigInvalid when the file is broken. */
export const serve = async (options: ServeOptions): Promise<Serving> => {
  const given = options.log === false ? AccessLog.silent : (options.log ?? process.stdout)
  // One batch for the server's lines and these (problems, listening, stopping), in order: the server's close()
  // waits until a stream has written them all, so the process can exit then.
  const log = given instanceof Writable ? AccessLog.batched(given) : given
  const load = () => Effect.runPromise(Config.load(options.config, options.env))
  const config = await load()
  logProblems(log, config)
  // A process serving a file keeps runtime connections in SQLite unless the config says otherwise.
  // A process serving a file owns its heap: start-up's growth of the young generation is trimmed (heap-trim.ts).
  const server = await startServer(config, {
    ...options,
    connections: options.connections ?? "sqlite",
    log,
    trimHeap: options.trimHeap ?? true
  })
  AccessLog.info(log, "listening", { url: server.url, config: config.file, connections: config.connections.size })

  const reloadFromFile = () =>
    server.reload(async () => {
      const next = await load()
      logProblems(log, next)
      return next
    })

  let resolveClosed!: () => void
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve
  })
  const close = () =>
    server.close().finally(() => {
      detach()
      resolveClosed()
    })

  const onHup = () => {
    // server.reload has logged and counted a failure; the running config stays.
    reloadFromFile().catch(() => undefined)
  }
  const onStop = (signal: NodeJS.Signals) => () => {
    AccessLog.info(log, "stopping: draining requests in flight", { signal })
    void close()
  }
  const onTerm = onStop("SIGTERM")
  const onInt = onStop("SIGINT")
  const detach = () => {
    process.off("SIGHUP", onHup)
    process.off("SIGTERM", onTerm)
    process.off("SIGINT", onInt)
  }
  if (options.signals ?? true) {
    process.on("SIGHUP", onHup)
    process.on("SIGTERM", onTerm)
    process.on("SIGINT", onInt)
  }

  return { url: server.url, reload: server.reload, reloadFromFile, close, closed }
}
