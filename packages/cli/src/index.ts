/** @tessera/cli: the `tessera` command line. `command` is the command tree and `run(argv)` runs it to an exit
 *  code; bin/tessera.mjs is the executable. */
export { command, run, version } from "./cli.ts"
export * as ConfigDiscovery from "./config-discovery.ts"
export * as ExitCode from "./exit-code.ts"
export * as Providers from "./commands/providers.ts"
export * as Report from "./report.ts"
export * as Token from "./commands/token.ts"
export * as Validate from "./commands/validate.ts"
