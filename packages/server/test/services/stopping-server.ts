/** `serve` in its own process with its log on a slow file stream (slow-file.ts), exiting as `tessera serve` does
 *  once the server has closed. Argv: the config file, the log file. Prints `ready <url>` on stdout once listening. */
import { serve } from "../../src/index.ts"
import { slowFile } from "./slow-file.ts"

const [config, logFile] = process.argv.slice(2)
const serving = await serve({
  config: config!,
  port: 0,
  host: "127.0.0.1",
  connections: "memory",
  log: slowFile(logFile!, 300)
})
process.stdout.write(`ready ${serving.url}\n`)
void serving.closed.then(() => process.exit(0))
