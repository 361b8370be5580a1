// Loaded with `node --import` into a `tessera` process under test: records the URL of every module the process loads
// (Node's synchronous module hooks) and writes them, one per line, to $TESSERA_TEST_LOADS when the process exits.
import { registerHooks } from "node:module"
import { writeFileSync } from "node:fs"

const loaded = []
registerHooks({
  load: (url, context, nextLoad) => {
    loaded.push(url)
    return nextLoad(url, context)
  }
})
process.on("exit", () => {
  if (process.env["TESSERA_TEST_LOADS"]) writeFileSync(process.env["TESSERA_TEST_LOADS"], loaded.join("\n"))
})
