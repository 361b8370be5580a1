/** A private PostgreSQL cluster in a temp directory, on a free loopback port, that a test can restart without
 *  disturbing the shared server other tests use. initdb and the server run as the `postgres` user (through
 *  runuser when this process is root), with fsync off: the tests care about restarts, not about power loss. */
import { execFileSync, spawnSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"
import { freePort } from "./redis-server.ts"

const binDir = (): string | undefined => {
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).sort()
  const v = versions.at(-1)
  return v && existsSync(join(root, v, "bin", "initdb")) ? join(root, v, "bin") : undefined
}

const bin = binDir()
const asPostgres = userInfo().uid === 0

/** Runs a PostgreSQL tool as the postgres user. */
const pgTool = (tool: string, args: ReadonlyArray<string>) => {
  const path = join(bin!, tool)
  return asPostgres
    ? execFileSync("runuser", ["-u", "postgres", "--", path, ...args], { stdio: "pipe" })
    : execFileSync(path, [...args], { stdio: "pipe" })
}

/** Whether a private cluster can be made here (PostgreSQL's binaries, and runuser when root). */
export const canRunPostgres: boolean =
  bin !== undefined && (!asPostgres || spawnSync("runuser", ["--help"], { stdio: "ignore" }).status === 0)

export interface PostgresServer {
  readonly url: string
  readonly start: () => void
  /** Stops it at once (`-m immediate`: like a crash), then `start` brings it back. */
  readonly stop: () => void
  readonly restart: () => void
  /** Stops it for good and removes its directory. */
  readonly destroy: () => void
}

export const postgresServer = async (): Promise<PostgresServer> => {
  if (!canRunPostgres) throw new Error("PostgreSQL binaries (or runuser) are not available")
  const dir = mkdtempSync(join(tmpdir(), "tessera-pg-"))
  if (asPostgres) chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString().trim()), 0)
  const data = join(dir, "data")
  pgTool("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
  const port = await freePort()
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`
  let running = false
  const start = () => {
    pgTool("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "-t", "30", "start"])
    running = true
  }
  const stop = () => {
    if (running) pgTool("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"])
    running = false
  }
  start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    restart: () => {
      stop()
      start()
    },
    destroy: () => {
      try {
        stop()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}
