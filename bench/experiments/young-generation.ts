/** Why the memory bench's figure follows the size of the heap a server holds from its start rather than what it
 *  allocates per request: the bare node:http server of `memory` (plain JavaScript, the same fixed body and headers),
 *  given `KEEP` MB of long-lived objects built before it listens (what a server's modules and config hold) and
 *  `ALLOC` bytes of short-lived garbage per request, driven with N sequential new-connection requests as `memory`
 *  drives its servers. Prints RSS at start and after the run, and V8's new and old space (physical / committed).
 *  `node bench/experiments/young-generation.ts [N] [KEEP,...] [ALLOC,...]`, e.g. `... 10000 0,5,10,20,30 0`.
 *  Not part of `pnpm bench`; figures in bench/README.md ("Issue 14, fourth round: memory"). */
import { spawn } from "node:child_process"
import { request } from "node:http"
import { createInterface } from "node:readline"
import { rssOf } from "../lib/child.ts"

const n = Number(process.argv[2] ?? 10_000)
const keeps = (process.argv[3] ?? "0,5,10,20,30").split(",").map(Number)
const allocs = (process.argv[4] ?? "0").split(",").map(Number)
const MB = 1024 * 1024

// The child: plain JavaScript (no TypeScript stripping), kept objects first, then the server. GET /stats answers
// its heap spaces (after the run, so that it does not count in it).
const child = `
const http = require("node:http"); const v8 = require("node:v8")
const keep = []; for (let i = 0; i < Number(process.env.KEEP) * 1048576 / 64; i++) keep.push({ a: i, b: i, c: i, d: i, e: i, f: i })
const alloc = Number(process.env.ALLOC); let sink = 0
const body = Buffer.from(JSON.stringify({ access_token: "x".repeat(200), token_type: "Bearer", expires_in: 3600 }))
const server = http.createServer((req, res) => {
  if (req.url === "/stats") return res.end(JSON.stringify(v8.getHeapSpaceStatistics()))
  if (alloc) { const a = []; for (let i = 0; i < alloc / 64; i++) a.push({ a: i, b: i, c: i, d: i, e: i, f: i }); sink += a.length }
  res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store", "content-length": body.length })
  res.end(body)
})
server.listen(0, "127.0.0.1", () => console.log(server.address().port))
`

const once = (url: string): Promise<string> =>
  new Promise((resolve, reject) => {
    request(url, { agent: false, headers: { connection: "close" } }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (c: string) => (text += c))
      res.on("end", () => resolve(text))
    })
      .on("error", reject)
      .end()
  })

interface Space {
  space_name: string
  space_size: number
  physical_space_size: number
}
const space = (spaces: Space[], name: string) => {
  const s = spaces.find((x) => x.space_name === name)!
  return `${(s.physical_space_size / MB).toFixed(1)}/${(s.space_size / MB).toFixed(0)}`
}

for (const alloc of allocs) {
  for (const keep of keeps) {
    const p = spawn(process.execPath, ["-e", child], {
      env: { ...process.env, KEEP: String(keep), ALLOC: String(alloc) },
      stdio: ["ignore", "pipe", "inherit"]
    })
    try {
      const port = await new Promise<string>((resolve) => createInterface({ input: p.stdout }).once("line", resolve))
      const url = `http://127.0.0.1:${port}/`
      const start = ((await rssOf(p.pid!)) ?? NaN) / MB
      for (let i = 0; i < n; i++) await once(url)
      const end = ((await rssOf(p.pid!)) ?? NaN) / MB
      const spaces = JSON.parse(await once(`${url}stats`)) as Space[]
      console.log(
        `keep ${String(keep).padStart(3)} MB, ${String(alloc).padStart(5)} B garbage/request: RSS ${start.toFixed(1)} -> ${end.toFixed(1)} MB after ${n}; ` +
          `new space ${space(spaces, "new_space")} MB, old space ${space(spaces, "old_space")} MB (physical/committed)`
      )
    } finally {
      p.kill("SIGKILL")
    }
  }
}
