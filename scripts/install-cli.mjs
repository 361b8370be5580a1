// `pnpm cli:install`: puts `tessera` on the PATH. Packs @tessera/cli (its prepack builds the bundle: one
// self-contained dist/tessera.mjs with its chunks, no dependencies to fetch) and installs that tarball with
// `npm install -g`, into npm's global prefix (`npm prefix -g`, or $NPM_CONFIG_PREFIX). Then it runs the installed
// `tessera --version` through the PATH and says what to do if that does not work: the command needs Node.js 24 as
// `node` on the PATH.
import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"

const root = new URL("../", import.meta.url)
const { packageManager } = JSON.parse(readFileSync(new URL("package.json", root), "utf8"))
// Inside `pnpm <script>`, npm_execpath is pnpm itself; otherwise the pinned pnpm through npx.
const pnpm = /pnpm\.c?js$/.test(process.env.npm_execpath ?? "")
  ? [process.execPath, process.env.npm_execpath]
  : ["npx", "-y", packageManager]

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", ...opts })
  if (r.status !== 0) {
    process.stderr.write(`${r.stdout ?? ""}${r.stderr ?? ""}`)
    console.error(`cli:install: ${[cmd, ...args].join(" ")} failed (exit ${r.status ?? r.signal})`)
    process.exit(1)
  }
  return r.stdout
}

const out = mkdtempSync(join(tmpdir(), "tessera-cli-pack-"))
try {
  run(pnpm[0], [...pnpm.slice(1), "--filter", "@tessera/cli", "pack", "--pack-destination", out])
  const tarball = join(
    out,
    readdirSync(out).find((f) => f.endsWith(".tgz"))
  )
  run("npm", ["install", "--global", "--no-audit", "--no-fund", "--loglevel=error", tarball], { stdio: "inherit" })
} finally {
  rmSync(out, { recursive: true, force: true })
}

const prefix = run("npm", ["prefix", "--global"]).trim()
const binDir = process.platform === "win32" ? prefix : join(prefix, "bin")
console.log(`installed tessera in ${binDir}`)
// The check runs as a user's shell would: npm and pnpm put their own directories first on a script's PATH.
const PATH = (process.env.PATH ?? "")
  .split(delimiter)
  .filter((d) => !d.includes("node_modules"))
  .join(delimiter)
const check = spawnSync("tessera", ["--version"], { encoding: "utf8", env: { ...process.env, PATH } })
if (check.status === 0) console.log(`tessera --version: ${check.stdout.trim()}`)
else if (check.error) console.log(`note: ${binDir} is not on your PATH; add it (export PATH="${binDir}:$PATH")`)
else process.stdout.write(`note: ${check.stderr}`)
