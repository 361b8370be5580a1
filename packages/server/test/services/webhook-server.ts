/** `tessera serve` for the restart test, in its own process: the config file given, webhook retries every 200 ms
 *  (the default schedule starts at 10 s) and a 1 s request limit. Prints `ready <url>`; SIGTERM stops it. */
import { Schedule } from "effect"
import { serve } from "../../src/index.ts"

const serving = await serve({
  config: process.argv[2]!,
  port: 0,
  host: "127.0.0.1",
  log: process.stdout,
  webhooks: { retry: Schedule.spaced("200 millis"), timeoutMs: 1_000, pollMs: 100 }
})
process.stdout.write(`ready ${serving.url}\n`)
await serving.closed
process.exit(0)
