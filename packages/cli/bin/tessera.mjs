#!/usr/bin/env node
// The `tessera` executable. In the repository it runs the TypeScript sources (src/main.ts); a packed @tessera/cli
// ships this same file bundled as dist/tessera.mjs (scripts/build.ts), with the sources compiled into chunks beside it.
// It is plain JavaScript that any Node parses, so an older Node gets a clear message instead of a stack.
const minimum = 24
const major = Number(process.versions.node.split(".")[0])
if (!(major >= minimum)) {
  process.stderr.write(
    `tessera needs Node.js ${minimum} or later, but this is Node.js ${process.versions.node} (${process.execPath}).\n` +
      `Install Node.js ${minimum} from https://nodejs.org/en/download or with a version manager ` +
      `(nvm install ${minimum}, fnm install ${minimum}, volta install node@${minimum}), then run tessera again.\n` +
      `Inside a tessera checkout, \`npx -y pnpm@10.34.9 exec tessera ...\` uses the repository's own Node.js ${minimum}.\n`
  )
  process.exit(2)
}
// The full CLI pays for loading megabytes of code on every call; Node's on-disk compile cache makes repeat calls
// start faster. From the sources (this file in bin/) it pays for the fast path too, which loads Effect there through
// the file store's module; the bundle's fast path is a few kilobytes, for which the cache costs more than it saves.
const compileCache = async () => (await import("node:module")).enableCompileCache()
if (import.meta.url.endsWith("/bin/tessera.mjs")) await compileCache()
// The fast path answers `--version` and `tessera token` cache hits without loading the CLI (src/fast-path.ts).
const argv = process.argv.slice(2)
if (!(await (await import("../src/fast-path.ts")).answer(argv))) {
  await compileCache()
  await (await import("../src/main.ts")).main(argv)
}
