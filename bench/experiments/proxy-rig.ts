/** Experiment rig (not a bench): starts the proxy bench's processes (sandbox IdP, nginx static API, tessera server,
 *  the bare undici proxy, the server bench's bare node:http; with RIG_OLD_ROOT a second tessera server from another checkout) and writes their URLs and pids to $RIG_OUT, then waits for SIGINT. For strace/perf. */
import { writeFileSync } from "node:fs"
import { start } from "../lib/child.ts"
import { nginxBinary, startNginx } from "../lib/nginx.ts"
import { apiBody, CONNECTION, configYaml, script, startSandbox } from "../lib/setup.ts"

const sb = await startSandbox()
const n = await startNginx(nginxBinary()!, { body: apiBody })
const apiBase = `${n.staticUrl!}/api`
const server = await start<{ url: string }>(script("server-child.ts"), {
  env: {
    BENCH_CONFIG: configYaml({ ...sb.info, credentials: { ...sb.info.credentials, api_base_url: apiBase } }),
    BENCH_SERVER_LOG: process.env["RIG_LOG"] ?? "off"
  }
})
const token = await sb.call<string>("issueToken")
// RIG_OLD_ROOT=<checkout>: also a tessera server from that checkout's bench (an A/B of two commits).
const oldRoot = process.env["RIG_OLD_ROOT"]
const old = oldRoot
  ? await start<{ url: string }>(`${oldRoot}/bench/lib/server-child.ts`, {
      env: {
        BENCH_CONFIG: configYaml({ ...sb.info, credentials: { ...sb.info.credentials, api_base_url: apiBase } }),
        BENCH_SERVER_LOG: process.env["RIG_LOG"] ?? "off"
      }
    })
  : undefined
const undici = await start<{ url: string }>(script("undici-proxy-child.ts"), {
  env: { BENCH_UPSTREAM: apiBase, BENCH_TOKEN: token }
})
// The token route's baseline (the server bench's bare node:http), answering a body of the token answer's size.
const tokenUrl = `${server.info.url}/v1/connections/${CONNECTION}/token`
const tokenBody = await (await fetch(tokenUrl)).text()
const bare = await start<{ url: string }>(script("bare-child.ts"), {
  env: { BENCH_BODY: JSON.stringify({ pad: "x".repeat(Math.max(0, tokenBody.length - 10)) }) }
})
writeFileSync(
  process.env["RIG_OUT"] ?? "/tmp/rig.json",
  JSON.stringify({
    tessera: { url: `${server.info.url}/v1/proxy/${CONNECTION}/items?page=1`, pid: server.pid },
    undici: { url: `${undici.info.url}/items?page=1`, pid: undici.pid },
    api: { pid: n.pid },
    token: { url: tokenUrl, pid: server.pid },
    bare: { url: bare.info.url, pid: bare.pid },
    ...(old ? { old: { url: `${old.info.url}/v1/proxy/${CONNECTION}/items?page=1`, pid: old.pid } } : {})
  })
)
console.log("ready")
process.on("SIGINT", async () => {
  await Promise.all([server.stop(), undici.stop(), n.stop(), sb.stop(), old?.stop(), bare.stop()])
  process.exit(0)
})
setInterval(() => {}, 1 << 30)
