/** @tessera/engine: provider manifests, the loader, the token engine and its stores. Effect users take the
 *  services and layers from here; plain TypeScript users take `createTessera` from "@tessera/engine/promise".
 *
 *  A token's way, one module each: Manifest (the provider's YAML) → Connection (with its inputs) → TokenRequest
 *  (what a flow sends) → Http (the HTTP seam: undici, or recorded exchanges replayed) → TokenResponse (the answer
 *  read) → TokenCache (keys, local copy, store, single-flight) → Api (calling the API with the token). Upstream is
 *  one exchange with its retries, Renewal the choice between reuse, refresh and acquire, Engine the composition. */
export * as Api from "./api.ts"
export * as Assertion from "./assertion.ts"
export * as Authorization from "./authorization.ts"
export * as AuthorizationError from "./authorization-error.ts"
export * as Catalog from "./catalog.ts"
export * as Config from "./config.ts"
export * as ConfigValue from "./config-value.ts"
export * as Connection from "./connection.ts"
export * as Discovery from "./discovery.ts"
export * as ConnectionRegistry from "./connection-registry.ts"
export * as PrivateTarget from "./private-target.ts"
export * as ConnectionStore from "./connection-store.ts"
export * as ConnectionStoreSqlite from "./connection-store-sqlite.ts"
export * as DeviceFlow from "./device-flow.ts"
export * as Engine from "./engine.ts"
export * as Events from "./events.ts"
export * as Expiry from "./expiry.ts"
export * as FileStore from "./file-store.ts"
export * as Grants from "./grants.ts"
export * as Fixture from "./fixture.ts"
export * as Http from "./http.ts"
export * as JsonPath from "./json-path.ts"
export * as Manifest from "./manifest.ts"
export * as Observability from "./observability.ts"
export * as ManifestError from "./manifest-error.ts"
export * as Notify from "./notify.ts"
export * as Problem from "./problem.ts"
export * as Redaction from "./redaction.ts"
export * as Renewal from "./renewal.ts"
export * as RetryDelay from "./retry-delay.ts"
export * as Runtime from "./runtime.ts"
export * as SecretBox from "./secret-box.ts"
export * as StaticCredential from "./static-credential.ts"
export * as Template from "./template.ts"
export * as Token from "./token.ts"
export * as TokenCache from "./token-cache.ts"
export * as TokenError from "./token-error.ts"
export * as TokenRequest from "./token-request.ts"
export * as TokenResponse from "./token-response.ts"
export * as TokenStore from "./token-store.ts"
export * as Upstream from "./upstream.ts"
export * as WebhookSignature from "./webhook-signature.ts"
// The Redis store and the PostgreSQL connection store are subpath exports ("@tessera/engine/redis",
// "@tessera/engine/postgres"): re-exporting them here would load their clients into every process, which costs the
// CLI most of its start-up time. node:sqlite is built into Node and costs nothing until a database is opened.
export { createTessera, type Tessera, type CreateOptions, type FetchInit } from "./promise.ts"
