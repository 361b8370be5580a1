/** Builds the published `tessera`: bin/tessera.mjs bundled with everything it imports (the CLI, the engine, the
 *  server, Effect and the other dependencies) into dist/tessera.mjs plus chunks beside it. Every dynamic import in
 *  the sources becomes a chunk loaded only when its path runs: the fast path (src/fast-path.ts) is a small chunk of
 *  its own, the full CLI another, and the server, the Redis store and undici are each loaded on demand. A new
 *  command is picked up by following the imports; nothing here lists them.
 *
 *  `node scripts/build.ts [outdir]` (default dist/). The output is not minified: stack traces stay readable, and
 *  each bundled module keeps its `// path` comment, which the tests use to check what a cache hit loads. The
 *  chunks sit flat in the output directory, one level below the package root, as the engine's asset lookup and the
 *  `../package.json` reads expect. */
import { build, type Plugin } from "esbuild"
import { rmSync } from "node:fs"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))

// CommonJS dependencies (the Redis client, for one) call require() for Node's own modules.
const banner = {
  js: 'import { createRequire as __tesseraRequire } from "node:module";\nconst require = __tesseraRequire(import.meta.url);'
}

const common = {
  absWorkingDir: root,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node24",
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
  legalComments: "none"
} as const

// The fast path is bundled on its own: a module shared with the full CLI would land in a chunk shared with it, and
// the file store's read function would bring Effect along (its module also holds the Effect store).
const fastPathApart: Plugin = {
  name: "fast-path-apart",
  setup: (b) => {
    b.onResolve({ filter: /(^|\/)fast-path\.ts$/ }, () => ({ path: "./fast-path.mjs", external: true }))
  }
}

export const bundle = async (outdir: string = resolve(root, "dist")): Promise<void> => {
  rmSync(outdir, { recursive: true, force: true })
  await Promise.all([
    build({
      ...common,
      entryPoints: { tessera: "bin/tessera.mjs" },
      outdir,
      splitting: true,
      banner,
      plugins: [fastPathApart]
    }),
    build({
      ...common,
      entryPoints: { "fast-path": "src/fast-path.ts" },
      outdir,
      splitting: true,
      chunkNames: "fast-path-[name]-[hash]"
    })
  ])
}

if (import.meta.url === `file://${process.argv[1]}`)
  await bundle(process.argv[2] ? resolve(process.argv[2]) : undefined)
