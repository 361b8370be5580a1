/** nginx for the benches, when the `nginx` binary is installed (Debian package `nginx`): a static answer (the API
 *  behind the proxies, so that the proxies' own cost shows) and a forwarding proxy with `proxy_set_header
 *  Authorization` (a peer row). One worker process, no access log, its files in a temporary prefix; stopped with
 *  the bench (and at exit). */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

/** The nginx binary, or undefined when it is not installed. */
export const nginxBinary = (): string | undefined => {
  for (const bin of ["nginx", "/usr/sbin/nginx"]) {
    const r = spawnSync(bin, ["-v"], { stdio: "ignore" })
    if (r.status === 0) return bin
  }
  return undefined
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })

export interface Nginx {
  readonly pid: number
  /** The static answer (when a body was given). */
  readonly staticUrl: string | undefined
  /** The forwarding proxy to `upstream` (when one was given). */
  readonly proxyUrl: string | undefined
  readonly stop: () => Promise<void>
}

const live = new Set<ChildProcess>()
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL")
})

const waitListening = async (port: number, ms: number) => {
  const until = Date.now() + ms
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer()
      s.once("error", () => resolve(true)) // taken: nginx listens
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(false)))
    })
    if (ok) return
    if (Date.now() > until) throw new Error(`nginx did not listen on ${port} within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Starts nginx answering `body` (JSON), or, with `proxyTo` (an http URL), forwarding to it with
 *  `Authorization: Bearer <token>` set: one process each, so that the two never share a worker. */
export const startNginx = async (
  bin: string,
  o: { readonly body: string } | { readonly proxyTo: string; readonly token: string }
): Promise<Nginx> => {
  const prefix = mkdtempSync(join(tmpdir(), "tessera-bench-nginx-"))
  const staticPort = "body" in o ? await freePort() : undefined
  const proxyPort = "proxyTo" in o ? await freePort() : undefined
  const quote = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`
  const up = "proxyTo" in o ? new URL(o.proxyTo) : undefined
  const conf = [
    "worker_processes 1;",
    "daemon off;",
    "master_process off;",
    `pid ${join(prefix, "nginx.pid")};`,
    `error_log ${join(prefix, "error.log")} error;`,
    "events { worker_connections 4096; }",
    "http {",
    "  access_log off;",
    `  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi;`,
    `  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;`,
    "  keepalive_requests 1000000;",
    ...("body" in o && staticPort
      ? [
          `  server { listen 127.0.0.1:${staticPort}; location / { default_type application/json; add_header Cache-Control no-store; return 200 ${quote(o.body)}; } }`
        ]
      : []),
    ...(up && proxyPort
      ? [
          `  upstream api { server ${up.host}; keepalive 32; keepalive_requests 1000000; }`,
          `  server { listen 127.0.0.1:${proxyPort}; location / { proxy_pass http://api${up.pathname.replace(/\/+$/, "")}/;`,
          `    proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Authorization ${quote(`Bearer ${"token" in o ? o.token : ""}`)}; } }`
        ]
      : []),
    "}"
  ].join("\n")
  const file = join(prefix, "nginx.conf")
  writeFileSync(file, conf)
  const proc = spawn(bin, ["-p", prefix, "-c", file, "-e", join(prefix, "error.log")], { stdio: "ignore" })
  live.add(proc)
  proc.once("exit", () => live.delete(proc))
  const exitedEarly = new Promise<never>((_, reject) =>
    proc.once("exit", (code) => reject(new Error(`nginx exited (${code}); see ${join(prefix, "error.log")}`)))
  )
  await Promise.race([
    Promise.all([staticPort, proxyPort].map((p) => (p === undefined ? undefined : waitListening(p, 5000)))),
    exitedEarly
  ])
  exitedEarly.catch(() => undefined)
  return {
    pid: proc.pid!,
    staticUrl: staticPort ? `http://127.0.0.1:${staticPort}` : undefined,
    proxyUrl: proxyPort ? `http://127.0.0.1:${proxyPort}` : undefined,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise<void>((r) => proc.once("exit", () => r()))
        proc.kill("SIGQUIT")
        const t = setTimeout(() => proc.kill("SIGKILL"), 3000)
        await gone
        clearTimeout(t)
      }
      rmSync(prefix, { recursive: true, force: true })
    }
  }
}
