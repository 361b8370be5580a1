/** The server as a process: `node packages/server/src/main.ts --config F [--port N] [--host H]`.
 *  SIGHUP reloads the config file without dropping requests; SIGTERM/SIGINT drain requests in flight and exit 0.
 *  Exit codes: 0 stopped cleanly, 1 could not start (bind refused, port in use, store failed), 2 bad usage or a
 *  broken config file. */
import { parseArgs } from "node:util"
import { ManifestError, Problem, Runtime } from "@tessera/engine"
import { serve } from "./serve.ts"

const usage = "usage: node packages/server/src/main.ts --config tessera.yaml [--port 8787] [--host 127.0.0.1]"

const main = async (argv: ReadonlyArray<string>): Promise<number | undefined> => {
  let values: {
    config?: string | undefined
    port?: string | undefined
    host?: string | undefined
    help?: boolean | undefined
  }
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string", short: "c" },
        port: { type: "string", short: "p" },
        host: { type: "string" },
        help: { type: "boolean", short: "h" }
      }
    }).values
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${usage}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`)
    return 0
  }
  if (Runtime.parseLogLevel() === undefined) {
    process.stderr.write(
      `TESSERA_LOG_LEVEL=${JSON.stringify(process.env["TESSERA_LOG_LEVEL"])} names no log level; use one of: ${Runtime.levels.map((l) => l.toLowerCase()).join(", ")}\n`
    )
    return 2
  }
  const config = values.config ?? process.env["TESSERA_CONFIG"] ?? "tessera.yaml"
  let port: number | undefined
  if (values.port !== undefined) {
    port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port > 65535) {
      process.stderr.write(`--port must be 0-65535, got ${values.port}\n${usage}\n`)
      return 2
    }
  }
  try {
    const serving = await serve({ config, port, host: values.host })
    await serving.closed
    return 0
  } catch (e) {
    if (e instanceof ManifestError.ConfigInvalid) {
      process.stderr.write(`${Problem.formatAll(e.problems)}\n`)
      return 2
    }
    process.stderr.write(`tessera server: ${e instanceof Error ? e.message : String(e)}\n`)
    return 1
  }
}

// Exit explicitly: pooled upstream sockets or a stray timer must not keep a stopped server's process alive.
main(process.argv.slice(2)).then((code) => process.exit(code ?? 0))
