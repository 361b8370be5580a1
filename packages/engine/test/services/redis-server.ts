/** A private redis-server on a free loopback port that a test can stop and start again, to take Redis away from a
 *  running store. It runs under a small shell watchdog reading our stdin, so it also stops when the test process
 *  dies without cleaning up. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { createServer } from "node:net"
import { eventually, rawClient } from "./redis-available.ts"

/** Whether `redis-server` is on PATH (tests that need a private server skip without it, except on CI). */
export const hasRedisServer: boolean = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })

export interface RedisServer {
  readonly port: number
  readonly url: string
  readonly running: () => boolean
  /** Starts it (again) and waits until it answers PING. */
  readonly start: () => Promise<void>
  /** Kills it (like a crash) and waits until it is gone. */
  readonly stop: () => Promise<void>
}

// `cat` returns when our end of the pipe closes (stop(), or this process dying); then the server is killed.
const WATCHDOG = `redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning & r=$!
cat >/dev/null; kill -9 "$r" 2>/dev/null; wait "$r" 2>/dev/null; exit 0`

/** A server on `port` (a free one by default), not started yet. */
export const redisServer = async (port?: number): Promise<RedisServer> => {
  const p = port ?? (await freePort())
  const url = `redis://127.0.0.1:${p}`
  let proc: ChildProcess | undefined
  const answers = async () => {
    try {
      const c = await rawClient(url)
      try {
        return (await c.ping()) === "PONG"
      } finally {
        c.destroy()
      }
    } catch {
      return false
    }
  }
  const stop = async () => {
    const p0 = proc
    if (!p0) return
    proc = undefined
    if (p0.exitCode === null && p0.signalCode === null) {
      const gone = new Promise((r) => p0.once("exit", r))
      p0.stdin?.end()
      const timer = setTimeout(() => p0.kill("SIGKILL"), 3000)
      await gone
      clearTimeout(timer)
    }
  }
  return {
    port: p,
    url,
    running: () => proc !== undefined,
    start: async () => {
      if (proc) return
      proc = spawn("sh", ["-c", WATCHDOG, "sh", String(p)], { stdio: ["pipe", "ignore", "inherit"] })
      if (!(await eventually(answers, 5000, 25))) {
        await stop()
        throw new Error(`redis-server on port ${p} did not start`)
      }
    },
    stop
  }
}
