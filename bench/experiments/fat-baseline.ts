/** Experiment (not a bench): tessera's proxy, the bare undici proxy, and the same bare proxy inside a process that
 *  has a tessera server loaded (fat-undici-child.ts), in alternating rounds; req/s and proxy CPU per request. */
import { start } from "../lib/child.ts"
import { load } from "../lib/load.ts"
import { nginxBinary, startNginx } from "../lib/nginx.ts"
import { apiBody, CONNECTION, configYaml, script, startSandbox } from "../lib/setup.ts"

const sb = await startSandbox()
const n = await startNginx(nginxBinary()!, { body: apiBody })
const apiBase = `${n.staticUrl!}/api`
const cfg = configYaml({ ...sb.info, credentials: { ...sb.info.credentials, api_base_url: apiBase } })
const token = await sb.call<string>("issueToken")
const env = { BENCH_CONFIG: cfg, BENCH_SERVER_LOG: "off", BENCH_UPSTREAM: apiBase, BENCH_TOKEN: token }
const server = await start<{ url: string }>(script("server-child.ts"), { env })
const bare = await start<{ url: string }>(script("undici-proxy-child.ts"), { env })
const fat = await start<{ url: string }>(new URL("./fat-undici-child.ts", import.meta.url).pathname, { env })
const sides = {
  tessera: { url: `${server.info.url}/v1/proxy/${CONNECTION}/items?page=1`, pid: server.pid },
  bare: { url: `${bare.info.url}/items?page=1`, pid: bare.pid },
  fat: { url: `${fat.info.url}/items?page=1`, pid: fat.pid }
}
const rounds = Number(process.env["ROUNDS"] ?? 3)
const secs = Number(process.env["SECS"] ?? 5)
for (const [, s] of Object.entries(sides)) await load({ url: s.url, durationS: 1, connections: 10 })
for (let r = 0; r < rounds; r++)
  for (const [name, s] of Object.entries(sides)) {
    const x = await load({ url: s.url, durationS: secs, connections: 10, pids: { proxy: s.pid } })
    const us = ((x.cpu["proxy"] ?? 0) / x.reqPerSec) * 1e6
    console.log(
      `${name.padEnd(8)} ${Math.round(x.reqPerSec)} req/s  cpu ${x.cpu["proxy"]}  ${us.toFixed(1)} µs/req  bad ${x.bad}  other ${x.cpu["other"]}`
    )
  }
await Promise.all([server.stop(), bare.stop(), fat.stop(), n.stop(), sb.stop()])
process.exit(0)
