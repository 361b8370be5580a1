// Loaded with `node --import` into a `tessera` process under test: writes the Node built-ins it loaded
// (`process.moduleLoadList`, internal ones included), one per line, to $TESSERA_TEST_BUILTINS when the process exits.
import { writeFileSync } from "node:fs"

process.on("exit", () => {
  if (process.env["TESSERA_TEST_BUILTINS"])
    writeFileSync(process.env["TESSERA_TEST_BUILTINS"], process.moduleLoadList.join("\n"))
})
