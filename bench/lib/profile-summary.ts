/** Summarizes a V8 .cpuprofile (from BENCH_PROFILE=dir or node --cpu-prof): self time by function and by
 *  package/file, and inclusive time for functions matching an optional filter.
 *    node bench/lib/profile-summary.ts /tmp/prof/CPU.*.cpuprofile [topN] [inclusive-filter] */
import { readFileSync } from "node:fs"

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}
interface Profile {
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const [file, topArg, filter] = process.argv.slice(2)
if (!file) {
  console.error("usage: profile-summary.ts FILE [topN] [filter]")
  process.exit(2)
}
const top = Number(topArg ?? 30)
const p = JSON.parse(readFileSync(file, "utf8")) as Profile
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const self = new Map<number, number>()
for (let i = 0; i < p.samples.length; i++)
  self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0))
const total = [...self.values()].reduce((a, b) => a + b, 0)

const where = (n: Node) => {
  const u = n.callFrame.url
  if (!u) return "(native/vm)"
  const m = /node_modules\/\.pnpm\/([^/]+)\/node_modules\/(.+)$/.exec(u) ?? /node_modules\/(.+)$/.exec(u)
  if (m) return m[2] ?? m[1]!
  const w = /\/work\/main\/(.+)$/.exec(u)
  return w ? w[1]! : u.replace(/^node:/, "node:")
}
const pkg = (n: Node) => {
  const u = n.callFrame.url
  if (!u) return "(native/vm)"
  if (u.startsWith("node:")) return "node: internals"
  const m = /node_modules\/\.pnpm\/([^/]+)\//.exec(u)
  if (m) return m[1]!.replace(/@(\d[^_]*)(_.*)?$/, "")
  const w = /\/work\/main\/([^/]+\/[^/]+)\//.exec(u)
  return w ? w[1]! : u
}
const pct = (x: number) => `${((100 * x) / total).toFixed(1)}%`

const fnSelf = new Map<string, number>()
const pkgSelf = new Map<string, number>()
for (const [id, t] of self) {
  const n = byId.get(id)!
  const key = `${n.callFrame.functionName || "(anonymous)"}  ${where(n)}:${n.callFrame.lineNumber + 1}`
  fnSelf.set(key, (fnSelf.get(key) ?? 0) + t)
  pkgSelf.set(pkg(n), (pkgSelf.get(pkg(n)) ?? 0) + t)
}
console.log(`total sampled ${(total / 1000).toFixed(0)} ms`)
console.log(`\nself time by package/area:`)
for (const [k, t] of [...pkgSelf].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${pct(t).padStart(6)}  ${k}`)
console.log(`\nself time by function (top ${top}):`)
for (const [k, t] of [...fnSelf].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(t).padStart(6)}  ${k}`)

// inclusive time: self of a node plus its subtree, counted once per function name+url along each stack
const parent = new Map<number, number>()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const incl = new Map<string, number>()
for (const [id, t] of self) {
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur)!
    const key = `${n.callFrame.functionName || "(anonymous)"}  ${where(n)}:${n.callFrame.lineNumber + 1}`
    if (seen.has(key)) continue
    seen.add(key)
    incl.set(key, (incl.get(key) ?? 0) + t)
  }
}
const matching = [...incl]
  .filter(([k]) => !filter || k.includes(filter))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top)
console.log(`\ninclusive time${filter ? ` (matching "${filter}")` : ""} (top ${top}):`)
for (const [k, t] of matching) console.log(`  ${pct(t).padStart(6)}  ${k}`)

// callers: for functions whose name matches $CALLERS, the heaviest call paths leading to them (self time)
const callersOf = process.env["CALLERS"]
if (callersOf) {
  const paths = new Map<string, number>()
  for (const [id, t] of self) {
    const n = byId.get(id)!
    if (!(n.callFrame.functionName || "(anonymous)").includes(callersOf)) continue
    const chain: string[] = []
    for (let cur = parent.get(id); cur !== undefined && chain.length < 8; cur = parent.get(cur)) {
      const c = byId.get(cur)!
      chain.push(`${c.callFrame.functionName || "(anon)"}@${where(c)}:${c.callFrame.lineNumber + 1}`)
    }
    const key = chain.join(" < ")
    paths.set(key, (paths.get(key) ?? 0) + t)
  }
  console.log(`\ncall paths into "${callersOf}":`)
  for (const [k, t] of [...paths].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ${pct(t).padStart(6)}  ${k}`)
}

// tree: top-down view below the frames whose "name  file:line" contains $TREE (merged), depth $DEPTH (default 6)
const treeOf = process.env["TREE"]
if (treeOf) {
  const depth = Number(process.env["DEPTH"] ?? 6)
  const inclNode = new Map<number, number>()
  const sum = (id: number): number => {
    const n = byId.get(id)!
    const t = (self.get(id) ?? 0) + (n.children ?? []).reduce((a, c) => a + sum(c), 0)
    inclNode.set(id, t)
    return t
  }
  sum(p.nodes[0]!.id)
  const label = (n: Node) => `${n.callFrame.functionName || "(anonymous)"}  ${where(n)}:${n.callFrame.lineNumber + 1}`
  interface Agg {
    t: number
    kids: Map<string, Agg>
  }
  const root: Agg = { t: 0, kids: new Map() }
  const add = (agg: Agg, id: number, d: number) => {
    for (const c of byId.get(id)!.children ?? []) {
      const k = label(byId.get(c)!)
      const a = agg.kids.get(k) ?? { t: 0, kids: new Map() }
      agg.kids.set(k, a)
      a.t += inclNode.get(c) ?? 0
      if (d < depth) add(a, c, d + 1)
    }
  }
  const visit = (id: number, inside: boolean) => {
    const n = byId.get(id)!
    if (!inside && label(n).includes(treeOf)) {
      root.t += inclNode.get(id) ?? 0
      add(root, id, 1)
      return
    }
    for (const c of n.children ?? []) visit(c, inside)
  }
  visit(p.nodes[0]!.id, false)
  console.log(`\ntop-down below "${treeOf}" (${pct(root.t)} of samples):`)
  const print = (a: Agg, indent: string) => {
    for (const [k, v] of [...a.kids].sort((x, y) => y[1].t - x[1].t)) {
      if (v.t / total < 0.002) continue
      console.log(`  ${pct(v.t).padStart(6)}  ${indent}${k}`)
      print(v, indent + "  ")
    }
  }
  print(root, "")
}
