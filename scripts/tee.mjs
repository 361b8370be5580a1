// Runs a command and passes its output on as it comes while also keeping it: scripts/test.mjs runs vitest this way,
// so that its line per finished test file shows up in a CI log at once (not all at the end) and the secret-leak scan
// still gets the whole output. Resolves to { status, stdout, stderr } when the command has exited.
import { spawn } from "node:child_process"

export const runTee = (cmd, args, opts = {}) =>
  new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["inherit", "pipe", "pipe"], shell: false, ...opts })
    const out = [],
      err = []
    child.stdout.on("data", (d) => {
      out.push(d)
      process.stdout.write(d)
    })
    child.stderr.on("data", (d) => {
      err.push(d)
      process.stderr.write(d)
    })
    child.on("error", (e) => resolve({ status: 1, stdout: "", stderr: String(e) }))
    child.on("close", (status) =>
      resolve({ status, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") })
    )
  })
