/** Bench settings from the environment, with --quick shrinking everything to a smoke run (seconds, not minutes).
 *    BENCH_DURATION_S      seconds per autocannon round (default 3; quick 1)
 *    BENCH_ROUNDS          autocannon rounds per target, alternating target and baseline (default 3; quick 1)
 *    BENCH_WARMUP_S        autocannon warm-up per target before the rounds (default 1; quick 0.5)
 *    BENCH_CONNECTIONS     autocannon connections (default 10)
 *    BENCH_ITERATIONS      timed acquisitions per client in `cold` (default 1500; quick 100)
 *    BENCH_CLI_RUNS        timed runs per command in `cli` (default 20; quick 3)
 *    BENCH_MEMORY_CONNS    sequential connections in `memory` (default 10000; quick 500)
 *    BENCH_HERD            concurrent gets in `herd` (default 1000; quick 200)
 *    BENCH_REDIS_URL       Redis for the 3-process herd (default redis://127.0.0.1:6379)
 *    BENCH_SERVER_LOG      "off" to run the server without its access log (default: lines written to /dev/null) */
export interface Settings {
  readonly quick: boolean
  readonly durationS: number
  readonly rounds: number
  readonly warmupS: number
  readonly connections: number
  readonly iterations: number
  readonly cliRuns: number
  readonly memoryConns: number
  readonly herd: number
  readonly redisUrl: string
  readonly serverLog: "devnull" | "off"
}

const num = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0) throw new TypeError(`${name} must be a positive number, got ${raw}`)
  return n
}

export const settings = (quick: boolean): Settings => ({
  quick,
  durationS: num("BENCH_DURATION_S", quick ? 1 : 3),
  rounds: Math.round(num("BENCH_ROUNDS", quick ? 1 : 3)),
  warmupS: num("BENCH_WARMUP_S", quick ? 0.5 : 1),
  connections: Math.round(num("BENCH_CONNECTIONS", 10)),
  iterations: Math.round(num("BENCH_ITERATIONS", quick ? 100 : 1500)),
  cliRuns: Math.round(num("BENCH_CLI_RUNS", quick ? 3 : 20)),
  memoryConns: Math.round(num("BENCH_MEMORY_CONNS", quick ? 500 : 10_000)),
  herd: Math.round(num("BENCH_HERD", quick ? 200 : 1000)),
  redisUrl: process.env["BENCH_REDIS_URL"] || "redis://127.0.0.1:6379",
  serverLog: process.env["BENCH_SERVER_LOG"] === "off" ? "off" : "devnull"
})
