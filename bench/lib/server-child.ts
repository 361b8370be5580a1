/** The tessera HTTP server (@tessera/server `startServer`) in its own process, for the config in $BENCH_CONFIG (YAML
 *  text). Access-log lines go to stdout, which the parent points at /dev/null: the server formats and writes
 *  every line as in production, and nobody reads them. BENCH_SERVER_LOG=off passes `log: false` instead;
 *  `trimHeap: true`, as `serve` (main.ts, `tessera serve`) passes it; BENCH_TRIM=false leaves it off (experiments).
 *  Ops: `memory` -> process.memoryUsage(); `spaces` -> V8 heap spaces; `gc` -> a full GC when started with --expose-gc. */
import { Config } from "@tessera/engine"
import { startServer } from "@tessera/server"
import * as Effect from "effect/Effect"
import { getHeapSpaceStatistics } from "node:v8"
import { serve } from "./child.ts"

const text = process.env["BENCH_CONFIG"]
if (!text) throw new Error("BENCH_CONFIG is not set")
const config = await Effect.runPromise(Config.parse("/tmp/tessera-bench/tessera.yaml", text, process.env))
const server = await startServer(config, {
  port: 0,
  host: "127.0.0.1",
  log: process.env["BENCH_SERVER_LOG"] === "off" ? false : process.stdout,
  trimHeap: process.env["BENCH_TRIM"] !== "false"
})

serve(
  { url: server.url },
  {
    memory: () => process.memoryUsage(),
    spaces: () => getHeapSpaceStatistics(),
    gc: () => {
      ;(globalThis as { gc?: () => void }).gc?.()
      return process.memoryUsage()
    }
  },
  () => server.close()
)
