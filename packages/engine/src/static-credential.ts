/** Static credentials: manifests of kind `api_key` (a key from the inputs, in a header or a query parameter) and
 *  `basic` (HTTP Basic, RFC 7617, from a user name and a password). No token endpoint, no cache, no renewal: the
 *  credential is rendered from the connection's inputs whenever an API call needs it (engine.authorization), and
 *  every token operation (getToken, --dry-run) fails with StaticCredential, because the only "token" would be the
 *  long-lived secret itself, which tessera never hands out. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Connection } from "./connection.ts"
import type { Manifest } from "./manifest.ts"
import * as Template from "./template.ts"
import { InputInvalid, StaticCredential } from "./token-error.ts"

export const isStatic = (m: Manifest): boolean => m.kind !== "oauth2"

/** The failure of every token operation on a static connection. */
export const staticCredential = (c: Connection): Effect.Effect<never, StaticCredential> =>
  Effect.fail(
    new StaticCredential({
      connection: c.name,
      provider: c.manifest.id,
      kind: c.manifest.kind === "basic" ? "basic" : "api_key"
    })
  )

/** Where the credential goes on an API call: a header, or (api_key with apply.query) a query parameter. */
export interface Applied {
  readonly place: "header" | "query"
  /** The header or query parameter name. */
  readonly name: string
  readonly value: Redacted.Redacted<string>
}

/** The credential as the manifest's apply rule says, from the connection's inputs. */
export const render = (c: Connection): Effect.Effect<Applied, InputInvalid> =>
  Effect.suspend(() => {
    const m = c.manifest
    const ctx = { inputs: (n: string) => c.inputs.get(n) }
    const invalid = (detail: string) =>
      Effect.fail(new InputInvalid({ connection: c.name, provider: m.id, details: [detail] }))
    const at = (what: string, t: Template.Template) => {
      const r = Template.render(t, ctx)
      return r._tag === "Missing"
        ? { missing: `${what} needs ${r.names.join(", ")}, which is not set` }
        : { value: r.value }
    }
    if (m.apply.basic) {
      const user = at("apply.username", m.apply.basic.username)
      const password = at("apply.password", m.apply.basic.password)
      if ("missing" in user) return invalid(user.missing)
      if ("missing" in password) return invalid(password.missing)
      const u = Template.reveal(user.value)
      // RFC 7617 §2: the user-id cannot contain a colon; the password may.
      if (u.includes(":")) return invalid('apply.username contains ":", which HTTP Basic cannot carry (RFC 7617 §2)')
      const encoded = Buffer.from(`${u}:${Template.reveal(password.value)}`, "utf8").toString("base64")
      return Effect.succeed({
        place: "header",
        name: m.apply.header,
        value: Redacted.make(`Basic ${encoded}`, { label: "authorization" })
      })
    }
    const v = at("apply.value", m.apply.value)
    if ("missing" in v) return invalid(v.missing)
    const text = Template.reveal(v.value)
    if (text === "") return invalid("apply.value is empty: the API key input has no value")
    if (/[\r\n\0]/.test(text)) return invalid("apply.value contains a line break or NUL, which no header can carry")
    const value = Redacted.make(text, { label: "api_key" })
    const names = m.apply.names
    if (!names)
      return Effect.succeed({
        place: m.apply.query !== undefined ? "query" : "header",
        name: m.apply.query ?? m.apply.header,
        value
      })
    // Names from inputs: the header when its input is set, else the query parameter.
    for (const place of ["header", "query"] as const) {
      const t = names[place]
      const r = t && Template.render(t, ctx)
      if (!r || r._tag === "Missing") continue
      const name = Template.reveal(r.value)
      if (name === "") continue
      const ok = place === "header" ? /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/ : /^[A-Za-z0-9_.~-]+$/
      if (!ok.test(name))
        return invalid(
          `apply.${place} renders to ${JSON.stringify(name)}, which is not a valid ${place === "header" ? "header" : "query parameter"} name`
        )
      return Effect.succeed({ place, name, value })
    }
    return invalid(
      `apply.header and apply.query both need inputs that are not set: give one (${[names.header?.source, names.query?.source].filter(Boolean).join(" or ")})`
    )
  })
