/** CLI entrypoint: starts a sandbox, prints its URLs and demo inputs as one JSON line, runs until SIGTERM/SIGINT. */
import { parseArgs } from "node:util"
import { PROVIDER_IDS, startSandbox } from "./index.ts"

function fail(message: string): never {
  process.stderr.write(`testkit sandbox: ${message}\nusage: node packages/testkit/src/main.ts [--port N] [--host H]\n`)
  process.exit(2)
}

function options(): { port: number; host?: string } {
  let values: { port?: string | undefined; host?: string | undefined }
  try {
    ;({ values } = parseArgs({ options: { port: { type: "string" }, host: { type: "string" } }, strict: true }))
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error))
  }
  const port = Number(values.port ?? "0")
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid --port ${values.port ?? ""}`)
  return values.host === undefined ? { port } : { port, host: values.host }
}

const sandbox = await startSandbox(options()).catch((error: unknown) =>
  fail(error instanceof Error ? error.message : String(error))
)
const providers = Object.fromEntries(
  PROVIDER_IDS.map((id) => [
    id,
    { base: sandbox.base(id), token_url: sandbox.tokenUrl(id), inputs: sandbox.credentials[id] }
  ])
)
process.stdout.write(`${JSON.stringify({ url: sandbox.url, providers })}\n`)

let stopping = false
const stop = (): void => {
  if (stopping) return
  stopping = true
  void sandbox.close().then(() => process.exit(0))
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
