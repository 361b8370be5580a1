/** Starts `redis-worker.ts` processes (separate tessera instances sharing one Redis) and talks to them. Every worker
 *  started is tracked, so `stopAll()` in afterEach ends them even when a test fails; they also exit on their own when
 *  their stdin closes. */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { createInterface } from "node:readline"
import type { Command, GetReply, WorkerSettings } from "./redis-worker.ts"

const script = fileURLToPath(new URL("./redis-worker.ts", import.meta.url))

type Body<C> = C extends unknown ? Omit<C, "id"> : never

export interface Worker {
  readonly pid: number
  readonly get: (connection: string, n: number) => Promise<GetReply>
  readonly health: () => Promise<{ readonly status: string; readonly detail: string }>
  /** SIGKILL: the process dies at once, holding whatever it held. */
  readonly kill: () => Promise<void>
  readonly stop: () => Promise<void>
}

const live = new Set<ChildProcess>()

const exited = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null
const waitExit = (p: ChildProcess) =>
  exited(p) ? Promise.resolve() : new Promise<void>((r) => p.once("exit", () => r()))

export const startWorker = async (settings: WorkerSettings): Promise<Worker> => {
  const proc = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", script], {
    env: { ...process.env, TESSERA_REDIS_WORKER: JSON.stringify(settings) },
    stdio: ["pipe", "pipe", "inherit"]
  })
  live.add(proc)
  proc.once("exit", () => live.delete(proc))
  const pending = new Map<number, { resolve: (reply: unknown) => void; reject: (e: Error) => void }>()
  proc.once("exit", (code, signal) => {
    for (const p of pending.values())
      p.reject(new Error(`worker ${proc.pid} exited (${signal ?? code}) before answering`))
    pending.clear()
  })
  let onReady: (() => void) | undefined
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    let msg: { id?: number; ready?: boolean }
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
    if (msg.ready) onReady?.()
    else if (typeof msg.id === "number") {
      pending.get(msg.id)?.resolve(msg)
      pending.delete(msg.id)
    }
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("worker did not start within 20 s")), 20_000)
    onReady = () => {
      clearTimeout(timer)
      resolve()
    }
    proc.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`worker exited with ${code} before it was ready`))
    })
  })
  let next = 0
  const send = <A>(cmd: Body<Command>): Promise<A> =>
    new Promise((resolve, reject) => {
      if (exited(proc)) return reject(new Error("worker is gone"))
      const id = ++next
      pending.set(id, { resolve: resolve as (r: unknown) => void, reject })
      proc.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`)
    })
  return {
    pid: proc.pid!,
    get: (connection, n) => send<GetReply>({ op: "get", connection, n }),
    health: async () => (await send<{ health: { status: string; detail: string } }>({ op: "health" })).health,
    kill: async () => {
      proc.kill("SIGKILL")
      await waitExit(proc)
    },
    stop: async () => {
      proc.stdin!.end()
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000)
      await waitExit(proc)
      clearTimeout(t)
    }
  }
}

/** Ends every worker still running (afterEach). */
export const stopAll = async (): Promise<void> => {
  await Promise.all(
    [...live].map((p) => {
      p.kill("SIGKILL")
      return waitExit(p)
    })
  )
}
