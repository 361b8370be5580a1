/** Child processes for the benches: each system under test (sandbox, tessera server, bare server, Redis worker) runs
 *  in its own Node process, so the load generator in the parent does not share its event loop.
 *
 *  Protocol: `fork` with an IPC channel. The child sends `{ ready: true, ...info }` once it is up and answers each
 *  `{ id, op, ...args }` with `{ id, ok, value | error }`. A child exits when its IPC channel closes (the parent
 *  ended, crashed or called `stop`), so nothing outlives a bench; `stopAll` also SIGKILLs stragglers. */
import { fork, type ChildProcess } from "node:child_process"

export interface Child<Info> {
  readonly pid: number
  readonly info: Info
  readonly call: <A = unknown>(op: string, args?: Record<string, unknown>) => Promise<A>
  readonly stop: () => Promise<void>
}

export interface StartOptions {
  readonly env?: Record<string, string | undefined>
  /** Where the child's stdout goes: "ignore" (/dev/null, the default) or "inherit". */
  readonly stdout?: "ignore" | "inherit"
  readonly execArgv?: ReadonlyArray<string>
  readonly readyTimeoutMs?: number
}

/** BENCH_PROFILE=<dir>: child processes write V8 CPU profiles there (open them in Chrome DevTools or speedscope);
 *  BENCH_PROFILE_CHILD=<name> limits that to one child script, e.g. server-child; BENCH_PROFILE_INTERVAL=<µs>
 *  samples more often than V8's default 1000 µs. */
const profileArgs = (script: string): string[] => {
  const dir = process.env["BENCH_PROFILE"]
  const only = process.env["BENCH_PROFILE_CHILD"]
  if (!dir || (only && !script.includes(only))) return []
  const interval = process.env["BENCH_PROFILE_INTERVAL"]
  return ["--cpu-prof", `--cpu-prof-dir=${dir}`, ...(interval ? [`--cpu-prof-interval=${interval}`] : [])]
}

const live = new Set<ChildProcess>()
const exited = (p: ChildProcess) => p.exitCode !== null || p.signalCode !== null
const waitExit = (p: ChildProcess) =>
  exited(p) ? Promise.resolve() : new Promise<void>((r) => p.once("exit", () => r()))

export const start = async <Info = Record<string, unknown>>(
  script: string,
  opts: StartOptions = {}
): Promise<Child<Info>> => {
  const proc = fork(script, [], {
    env: { ...process.env, ...opts.env },
    execArgv: ["--disable-warning=ExperimentalWarning", ...profileArgs(script), ...(opts.execArgv ?? [])],
    stdio: ["ignore", opts.stdout ?? "ignore", "inherit", "ipc"],
    serialization: "advanced"
  })
  live.add(proc)
  proc.once("exit", () => live.delete(proc))
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  proc.once("exit", (code, signal) => {
    for (const p of pending.values())
      p.reject(new Error(`${script} (pid ${proc.pid}) exited (${signal ?? code}) before answering`))
    pending.clear()
  })
  let onReady: ((info: Info) => void) | undefined
  proc.on("message", (msg: { ready?: boolean; id?: number; ok?: boolean; value?: unknown; error?: string }) => {
    if (msg.ready) onReady?.(msg as Info)
    else if (typeof msg.id === "number") {
      const p = pending.get(msg.id)
      pending.delete(msg.id)
      if (msg.ok) p?.resolve(msg.value)
      else p?.reject(new Error(msg.error ?? "child failed"))
    }
  })
  const info = await new Promise<Info>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL")
      reject(new Error(`${script} did not start within ${opts.readyTimeoutMs ?? 30_000} ms`))
    }, opts.readyTimeoutMs ?? 30_000)
    onReady = (i) => {
      clearTimeout(timer)
      resolve(i)
    }
    proc.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`${script} exited with ${code} before it was ready`))
    })
  })
  let next = 0
  return {
    pid: proc.pid!,
    info,
    call: <A>(op: string, args: Record<string, unknown> = {}) =>
      new Promise<A>((resolve, reject) => {
        if (exited(proc) || !proc.connected) return reject(new Error(`${script} is gone`))
        const id = ++next
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
        proc.send({ ...args, id, op })
      }),
    stop: async () => {
      if (proc.connected) proc.disconnect()
      const t = setTimeout(() => proc.kill("SIGKILL"), 10_000)
      await waitExit(proc)
      clearTimeout(t)
    }
  }
}

/** Ends every child still running (on failure paths and at exit). */
export const stopAll = async (): Promise<void> => {
  await Promise.all(
    [...live].map((p) => {
      p.kill("SIGKILL")
      return waitExit(p)
    })
  )
}

process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL")
})

// ---- child side ----------------------------------------------------------------------------------------------

export type Handlers = Record<string, (args: Record<string, unknown>) => unknown>

/** In a child: announce readiness with `info`, serve `handlers`, and exit when the parent goes away. `cleanup` runs
 *  first (close servers) but the process exits within 5 s regardless. */
export const serve = (
  info: Record<string, unknown>,
  handlers: Handlers,
  cleanup: () => Promise<void> = async () => {}
): void => {
  if (!process.send) throw new Error("this script runs as a bench child process (forked with IPC)")
  let ending = false
  const end = () => {
    if (ending) return
    ending = true
    setTimeout(() => process.exit(0), 5000).unref()
    cleanup()
      .catch(() => {})
      .finally(() => process.exit(0))
  }
  process.on("disconnect", end)
  process.on("message", (msg: { id: number; op: string } & Record<string, unknown>) => {
    const h = handlers[msg.op]
    const reply = (m: Record<string, unknown>) => {
      if (process.connected) process.send!({ id: msg.id, ...m })
    }
    if (!h) return reply({ ok: false, error: `unknown op ${msg.op}` })
    Promise.resolve()
      .then(() => h(msg))
      .then(
        (value) => reply({ ok: true, value }),
        (e: unknown) => reply({ ok: false, error: String(e instanceof Error ? (e.stack ?? e.message) : e) })
      )
  })
  process.send({ ready: true, ...info })
}

/** Resident set size of a process in bytes, read from /proc (Linux); undefined elsewhere. */
export const rssOf = async (pid: number): Promise<number | undefined> => {
  try {
    const { readFile } = await import("node:fs/promises")
    const status = await readFile(`/proc/${pid}/status`, "utf8")
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc (Linux); undefined elsewhere. */
export const cpuOf = async (pid: number): Promise<number | undefined> => {
  try {
    const { readFile } = await import("node:fs/promises")
    const stat = await readFile(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined
  }
}

/** Busy CPU time of the whole machine so far (all cores, user+nice+system+irq+softirq+steal), in seconds, from
 *  /proc/stat; undefined elsewhere. Minus what the bench's own processes used, it shows other work competing. */
export const machineBusy = async (): Promise<number | undefined> => {
  try {
    const { readFile } = await import("node:fs/promises")
    const f = (await readFile("/proc/stat", "utf8")).split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
    return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!) / 100
  } catch {
    return undefined
  }
}

/** Cores kept busy by work outside this bench, sampled over `ms` while the bench is idle. */
export const backgroundLoad = async (ms = 1000): Promise<number | undefined> => {
  const a = await machineBusy()
  const self0 = process.cpuUsage()
  await new Promise((r) => setTimeout(r, ms))
  const b = await machineBusy()
  const self = process.cpuUsage(self0)
  if (a === undefined || b === undefined) return undefined
  return Math.max(0, Math.round(((b - a - (self.user + self.system) / 1e6) / (ms / 1000)) * 100) / 100)
}
