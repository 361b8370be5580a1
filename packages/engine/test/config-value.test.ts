/** Config values: the reference syntax (embedded and several references, `$${` as a literal, every malformed `${`
 *  rejected with a hint) and `${file:...}` reads that only take a regular file of at most 1 MiB, located in the
 *  config on start and on reload (Config.load, which the server's reload calls). */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync, spawnSync } from "node:child_process"
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"
import * as Config from "../src/config.ts"
import * as ConfigValue from "../src/config-value.ts"
import { assertProblem, locate, onlyError } from "./fixtures/loader/helpers.ts"

const env = { HOST: "api.example.com", PORT: "8443", A: "left", B: "right", EMPTY: "" }
let dir: string
let configFile: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tessera-cv-"))
  configFile = join(dir, "tessera.yaml")
  writeFileSync(join(dir, "secret"), "s3cret-from-file\n")
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const resolve = (raw: string) => ConfigValue.resolveValue(raw, configFile, env)
const value = (raw: string) => {
  const r = resolve(raw)
  assert.strictEqual(r._tag, "Value", JSON.stringify(r))
  return r as Extract<ConfigValue.Resolved, { _tag: "Value" }>
}
const refused = (raw: string) => {
  const r = resolve(raw)
  assert.strictEqual(r._tag, "Unresolved", JSON.stringify(r))
  return r as Extract<ConfigValue.Resolved, { _tag: "Unresolved" }>
}

describe("reference syntax", () => {
  it("a reference inside text, and several in one value", () => {
    assert.deepStrictEqual(value("https://${env:HOST}:${env:PORT}/v1"), {
      _tag: "Value",
      value: "https://api.example.com:8443/v1",
      literal: false
    })
    assert.strictEqual(value("${env:A}${env:B}").value, "leftright")
    assert.strictEqual(value("prefix-${env:A}").value, "prefix-left")
    assert.strictEqual(value("Bearer ${file:./secret}").value, "Bearer s3cret-from-file")
  })

  it("a value built from a reference is not literal; plain text is", () => {
    assert.isFalse(value("x-${env:A}").literal)
    assert.isFalse(value("${file:./secret}").literal)
    assert.isTrue(value("plain text").literal)
    assert.isTrue(value("costs $5").literal)
  })

  it("$${ is a literal ${, and the text after it is not a reference", () => {
    assert.deepStrictEqual(value("$${env:A}"), { _tag: "Value", value: "${env:A}", literal: true })
    assert.strictEqual(value("a$${b}-${env:B}").value, "a${b}-right")
  })

  it("a fallback fills an unset variable", () => {
    assert.strictEqual(value("${env:NOPE:-fallback}").value, "fallback")
    assert.strictEqual(value("${env:EMPTY:-}").value, "")
  })

  it("an empty name or path is refused", () => {
    assert.include(refused("${env:}").message, "empty variable name in ${env:}")
    assert.include(refused("${env::-x}").message, "empty variable name")
    assert.include(refused("${file:}").message, "empty path in ${file:}")
  })

  it("an unknown or wrongly cased kind is refused with a did-you-mean hint", () => {
    const upper = refused("${FILE:x}")
    assert.include(upper.message, 'unknown reference kind "FILE"')
    assert.include(upper.hint, "did you mean ${file:...}?")
    assert.include(refused("${Env:HOME}").hint, "did you mean ${env:...}?")
    assert.include(refused("${evn:HOME}").hint, "did you mean ${env:...}?")
    assert.include(refused("${vault:kv/x}").hint, 'write "$${"')
  })

  it("a shell-style ${NAME}, an unterminated ${ and a bad name are refused", () => {
    const shell = refused("${HOME}/x")
    assert.include(shell.message, '"${HOME}" is not a reference')
    assert.include(shell.hint, "write ${env:HOME}")
    assert.include(refused("x ${env:A").message, "unterminated reference")
    assert.include(refused("${env:MY VAR}").message, '"MY VAR" is not an environment variable name')
  })

  it("the index points at the failing reference, and a fallback is never quoted", () => {
    assert.strictEqual(refused("https://${env:HOST}/${env:NOPE}").index, 20)
    const r = refused("${Env:X:-hunter2-fallback}")
    assert.notInclude(r.message + r.hint, "hunter2")
  })

  it("isReference: whether a value holds a well-formed reference", () => {
    assert.isTrue(ConfigValue.isReference("a-${env:A}"))
    assert.isFalse(ConfigValue.isReference("$${env:A}"))
    assert.isFalse(ConfigValue.isReference("${FILE:x}"))
    assert.isFalse(ConfigValue.isReference(3))
  })
})

const dvinci = (secret: string) =>
  `connections:\n  hr:\n    provider: dvinci\n    inputs:\n      base_url: https://jobs.example.com\n      client_id: api-user\n      client_secret: ${secret}\n`

describe("references in a config", () => {
  it.effect("an embedded reference is located at the reference itself", () =>
    Effect.gen(function* () {
      const text = dvinci("pre-${env:A}-${env:NOPE}")
      const c = yield* Config.parse(configFile, text, env)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "${env:NOPE}"),
        path: "connections.hr.inputs.client_secret",
        message: "environment variable NOPE is not set"
      })
    })
  )

  it.effect("a secret built from a reference is not warned about as literal", () =>
    Effect.gen(function* () {
      const c = yield* Config.parse(configFile, dvinci("tok-${env:A}"), env)
      assert.deepStrictEqual(c.problems, [])
    })
  )

  it.effect("a ${...} in a providers: directory or store.path is refused, not taken as a directory name", () =>
    Effect.gen(function* () {
      const text = "providers: [./p]\nstore:\n  type: file\n  path: ${env:HOME}/cache\n"
      const e = yield* Effect.flip(Config.parse(configFile, text, env))
      assertProblem(onlyError(e.problems), {
        ...locate(text, "${env:HOME}"),
        path: "store.path",
        message: "references are not resolved in a path"
      })
    })
  )
})

const fifoPath = () => {
  const p = join(dir, `fifo-${Math.random().toString(36).slice(2)}`)
  execFileSync("mkfifo", [p])
  return p
}

describe("${file:...} reads only a regular file of at most 1 MiB", () => {
  const expectRefusal = (path: string, message: RegExp, hint?: RegExp) => {
    const r = refused(`\${file:${path}}`)
    assert.match(r.message, message)
    if (hint) assert.match(r.hint, hint)
  }

  it("/dev/zero is a character device, refused at once", () => {
    const t0 = Date.now()
    expectRefusal(
      "/dev/zero",
      /^cannot read \/dev\/zero: it is a character device, not a regular file$/,
      /at most 1 MiB/
    )
    assert.isBelow(Date.now() - t0, 1000)
  })

  it("a FIFO is refused without waiting for a writer", () => {
    const p = fifoPath()
    expectRefusal(p, /it is a FIFO \(named pipe\), not a regular file/)
  })

  it("a directory is refused", () => {
    mkdirSync(join(dir, "a-dir"), { recursive: true })
    expectRefusal("./a-dir", /a-dir: it is a directory, not a regular file/)
  })

  it("a file over 1 MiB is refused, one of exactly 1 MiB is read", () => {
    writeFileSync(join(dir, "big"), Buffer.alloc(2 * 1_048_576, 0x61))
    expectRefusal("./big", /big: it is larger than 1 MiB \(2 MiB\)/)
    writeFileSync(join(dir, "limit"), Buffer.alloc(1_048_576, 0x61))
    assert.strictEqual(value("${file:./limit}").value.length, 1_048_576)
  })

  it("a missing file names the resolved path", () => {
    expectRefusal("./nope", new RegExp(`cannot read ${dir}/nope: it does not exist \\(ENOENT\\)`))
  })

  it("a file that is not UTF-8 text is refused", () => {
    writeFileSync(join(dir, "binary"), Buffer.from([0xff, 0xfe, 0x00, 0xc3]))
    expectRefusal("./binary", /binary: it is not UTF-8 text/)
  })

  it("an unreadable file: permission denied (as root, checked in a child process running as nobody)", () => {
    const secret = join(dir, "private")
    writeFileSync(secret, "top-secret\n")
    chmodSync(secret, 0o000)
    chmodSync(dir, 0o755)
    const asRoot = process.getuid?.() === 0
    if (!asRoot) {
      expectRefusal(secret, /private: it cannot be read: permission denied \(EACCES\)/)
      return
    }
    // Root reads a mode-000 file anyway, so chmod alone proves nothing here: ask an unprivileged process instead.
    assert.strictEqual(
      readFileSync(secret, "utf8"),
      "top-secret\n",
      "root reads a 000 file: the premise of this branch"
    )
    const module = fileURLToPath(new URL("../src/config-value.ts", import.meta.url))
    const script = `import { resolveValue } from ${JSON.stringify(module)}; console.log(JSON.stringify(resolveValue(process.argv[1], "/tessera.yaml")))`
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script, `\${file:${secret}}`], {
      uid: 65534,
      gid: 65534,
      encoding: "utf8",
      timeout: 20_000
    })
    assert.strictEqual(child.status, 0, child.stderr)
    const r = JSON.parse(child.stdout) as ConfigValue.Resolved
    assert.strictEqual(r._tag, "Unresolved")
    if (r._tag === "Unresolved") assert.match(r.message, /private: it cannot be read: permission denied \(EACCES\)/)
  })

  it.effect("Config.load (start and the server's reload) reports a FIFO secret at its place in the file", () =>
    Effect.gen(function* () {
      const p = fifoPath()
      const text = dvinci(`\${file:${p}}`)
      writeFileSync(configFile, text)
      for (let load = 0; load < 2; load++) {
        const c = yield* Config.load(configFile, env)
        assertProblem(onlyError(c.problems), {
          ...locate(text, "${file:"),
          path: "connections.hr.inputs.client_secret",
          message: "is a FIFO (named pipe), not a regular file"
        })
        assert.isFalse(c.connections.has("hr"))
      }
    })
  )

  it.effect("a config file that is a device or a FIFO is refused, not read or waited on", () =>
    Effect.gen(function* () {
      for (const [path, what] of [
        ["/dev/zero", "is a character device"],
        [fifoPath(), "is a FIFO"]
      ] as const) {
        const e = yield* Effect.flip(Config.load(path, env))
        assert.strictEqual(e._tag, "ConfigInvalid")
        assert.include(e.problems[0]!.message, `cannot read config: ${path} ${what}`)
      }
    })
  )
})
