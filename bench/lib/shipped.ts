/** The server as it ships, for the memory bench's info rows: `tessera serve` from the bundle a packed @tessera/cli
 *  ships (packages/cli/dist/tessera.mjs, which the bench builds first, as `cli` does), and as its baseline the bare
 *  node:http server of bare-child.ts written as plain JavaScript: a source run (.ts) pays for Node's TypeScript
 *  stripping, about 18 MB of RSS, which neither a release nor this baseline loads. Plain child processes, not IPC
 *  children: each listens on a port picked here, stdout goes to /dev/null (the access log, as for server-child),
 *  readiness is the first answer to `ready`, RSS comes from /proc, and SIGTERM (SIGKILL after 10 s) ends them. */
import { spawn, type ChildProcess } from "node:child_process"
import { createServer, request } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"

export const bundled = fileURLToPath(new URL("../../packages/cli/dist/tessera.mjs", import.meta.url))

export interface Plain {
  readonly pid: number
  readonly url: string
  readonly stop: () => Promise<void>
}

const running = new Set<ChildProcess>()
process.once("exit", () => {
  for (const p of running) p.kill("SIGKILL")
})

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
    s.on("error", reject)
  })

const answers = (url: string): Promise<boolean> =>
  new Promise((resolve) => {
    request(url, { agent: false }, (res) => {
      res.resume()
      res.on("end", () => resolve(true))
    })
      .on("error", () => resolve(false))
      .end()
  })

/** Runs `node ...args(port)` and waits until `ready(url)` answers (30 s at most). */
const launch = async (
  args: (port: number) => ReadonlyArray<string>,
  ready: (url: string) => string,
  env: NodeJS.ProcessEnv
): Promise<Plain> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const proc = spawn(process.execPath, [...args(port)], { env, stdio: ["ignore", "ignore", "inherit"] })
  running.add(proc)
  const exited = new Promise<void>((r) => proc.once("exit", () => r()))
  void exited.then(() => running.delete(proc))
  const deadline = Date.now() + 30_000
  while (!(await answers(ready(url)))) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${args(port).join(" ")} exited early`)
    if (Date.now() > deadline) {
      proc.kill("SIGKILL")
      throw new Error(`${args(port).join(" ")} did not answer within 30 s`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return {
    pid: proc.pid!,
    url,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill("SIGTERM")
      const t = setTimeout(() => proc.kill("SIGKILL"), 10_000)
      await exited
      clearTimeout(t)
    }
  }
}

/** `tessera serve --config <file>` from the bundle; `path` is the route that tells it is up. */
export const serveBundled = (config: string, path: string, env: NodeJS.ProcessEnv): Promise<Plain> =>
  launch(
    (port) => [bundled, "serve", "--config", config, "--port", String(port)],
    (url) => `${url}${path}`,
    env
  )

/** bare-child.ts's server (fixed body, same headers), as plain JavaScript given to `node -e`. */
export const bareJs = (body: string): Promise<Plain> =>
  launch(
    (port) => [
      "-e",
      `const body = Buffer.from(process.env.BENCH_BODY ?? "{}")
require("node:http").createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store", "content-length": body.length })
  res.end(body)
}).listen(${port}, "127.0.0.1")
process.on("SIGTERM", () => process.exit(0))`
    ],
    (url) => url,
    { ...process.env, BENCH_BODY: body }
  )
