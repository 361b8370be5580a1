/** @tessera/testkit: a loopback sandbox emulating tessera's bundled providers' token endpoints and APIs. */
export { startSandbox } from "./sandbox.ts"
export { PROVIDER_IDS } from "./types.ts"
export type { ProviderId, RecordedRequest, Sandbox, SandboxOptions } from "./types.ts"
export type { Fault } from "./faults.ts"
export { DEMO_VALUES } from "./demo.ts"
export { decodeJwt, type DecodedJwt } from "./jwt.ts"
export { registerSecrets, registryDir } from "./secret-registry.ts"
