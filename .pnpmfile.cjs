// pnpm hook that gives every packed package (pnpm pack, pnpm publish) a package.json pointing at built JavaScript.
// In the repository each package's `exports` and `bin` name its TypeScript sources, which Node runs directly; Node
// refuses to strip types under node_modules, so a tarball must point at dist/ instead. The mapping is derived here,
// so adding an export is one line in `exports`:
//   "./x": "./src/x.ts"      becomes  "./x": { "types": "./dist/x.d.ts", "default": "./dist/x.js" }
//   bin "./bin/x.mjs"        becomes  "./dist/x.mjs" (the CLI's bundle, see packages/cli/scripts/build.ts)
// Packing fails, naming the file, when a mapped target was not built (every package's prepack builds it).
"use strict"
const { existsSync } = require("node:fs")
const { join } = require("node:path")

const built = (dir, pkg, path) => {
  if (!existsSync(join(dir, path)))
    throw new Error(`${pkg.name}: ${path} does not exist; its prepack script should have built it`)
  return path
}

const exportTarget = (dir, pkg, target) => {
  const m = typeof target === "string" ? /^\.\/src\/(.+)\.ts$/.exec(target) : null
  if (!m) return target
  const types = `./dist/${m[1]}.d.ts`
  return {
    ...(existsSync(join(dir, types)) ? { types } : {}),
    default: built(dir, pkg, `./dist/${m[1]}.js`)
  }
}

const binTarget = (dir, pkg, target) => {
  const m = /^\.\/bin\/(.+\.mjs)$/.exec(target)
  return m ? built(dir, pkg, `./dist/${m[1]}`) : target
}

const beforePacking = (pkg, dir) => {
  if (pkg.exports && typeof pkg.exports === "object")
    pkg.exports = Object.fromEntries(Object.entries(pkg.exports).map(([k, v]) => [k, exportTarget(dir, pkg, v)]))
  if (pkg.bin && typeof pkg.bin === "object")
    pkg.bin = Object.fromEntries(Object.entries(pkg.bin).map(([k, v]) => [k, binTarget(dir, pkg, v)]))
  return pkg
}

module.exports = { hooks: { beforePacking } }
