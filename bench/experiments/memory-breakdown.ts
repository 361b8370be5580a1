/** Where the memory bench's RSS goes: starts the tessera server (server-child) and the bare node:http server
 *  (bare-child) as `memory` does, drives N sequential new-connection requests at each, and prints for both, at
 *  start and at the end: RSS split by mapping kind (/proc/<pid>/smaps: V8 heap and other anonymous memory, malloc
 *  arenas, file-backed code) and V8's heap spaces (committed vs used). `node bench/experiments/memory-breakdown.ts
 *  [N]`. Not part of `pnpm bench`; figures in bench/README.md. */
import { readFile } from "node:fs/promises"
import { start, type Child } from "../lib/child.ts"
import { CONNECTION, configYaml, script, startSandbox } from "../lib/setup.ts"
import { get } from "../benches/server.ts"
import { request } from "node:http"

const n = Number(process.argv[2] ?? 10_000)
const MB = 1024 * 1024
const once = (url: string): Promise<void> =>
  new Promise((resolve, reject) => {
    request(url, { agent: false, headers: { connection: "close" } }, (res) => {
      res.resume()
      res.on("end", () => resolve())
    })
      .on("error", reject)
      .end()
  })

/** RSS (MB) per mapping kind: "[heap]" (brk malloc), anonymous mappings, file-backed (split node binary / other). */
const smaps = async (pid: number) => {
  const text = await readFile(`/proc/${pid}/smaps`, "utf8")
  const out: Record<string, number> = {}
  let kind = ""
  for (const line of text.split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head) {
      const name = head[1]!
      kind =
        name === ""
          ? "anon"
          : name.startsWith("[")
            ? name
            : name.includes("/node") && !name.includes(".so")
              ? "node binary"
              : "file"
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss) out[kind] = (out[kind] ?? 0) + Number(rss[1]) / 1024
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v * 10) / 10]))
}

interface Space {
  space_name: string
  space_size: number
  space_used_size: number
  physical_space_size: number
}
const show = async (label: string, c: Child<{ url: string }>) => {
  const spaces = await c.call<Space[]>("spaces")
  const mem = await c.call<NodeJS.MemoryUsage>("memory")
  console.log(
    `${label}: rss ${(mem.rss / MB).toFixed(1)} MB, external ${(mem.external / MB).toFixed(1)}, arrayBuffers ${(mem.arrayBuffers / MB).toFixed(1)}`
  )
  console.log(`  smaps: ${JSON.stringify(await smaps(c.pid))}`)
  console.log(
    `  v8: ${spaces.map((s) => `${s.space_name.replace("_space", "")} ${(s.physical_space_size / MB).toFixed(1)}/${(s.space_used_size / MB).toFixed(1)}`).join(", ")}`
  )
}

const sb = await startSandbox()
const server = await start<{ url: string }>(script("server-child.ts"), {
  env: { BENCH_CONFIG: configYaml(sb.info), BENCH_SERVER_LOG: process.env["BENCH_SERVER_LOG"] ?? "" },
  execArgv: ["--expose-gc"]
})
const url = `${server.info.url}/v1/connections/${CONNECTION}/token`
const first = await get(url)
const bare = await start<{ url: string }>(script("bare-child.ts"), {
  env: { BENCH_BODY: first.body },
  execArgv: ["--expose-gc"]
})
try {
  for (const [name, c, u] of [
    ["tessera", server, url],
    ["bare", bare, bare.info.url]
  ] as const) {
    await show(`${name} at start`, c)
    for (let i = 0; i < n; i++) await once(u)
    await show(`${name} after ${n}`, c)
    await c.call("gc")
    await show(`${name} after ${n} + gc`, c)
  }
} finally {
  await Promise.all([server.stop(), bare.stop(), sb.stop()])
}
