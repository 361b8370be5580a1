/** Keeps secrets out of the text tessera shows. `scrub` is the one function that the engine (provider messages and
 *  every error built from provider text), the CLI (errors in text and --json, `inspect`) and the server (problem
 *  `detail` and `provider_message`) use; `encodings` and `basicCredentials` say what it looks for.
 *
 *  `scrub(text, secrets)` replaces with `***`:
 *  - every known secret value in each form it can take on the wire or in a provider's echo of a request: raw;
 *    base64 (standard, unpadded and url-safe); percent-encoding (`encodeURIComponent`, upper or lower-case hex);
 *    application/x-www-form-urlencoded (`+` for a space); and JSON string escaping of each of these (plain, ASCII
 *    `\u00fc` style, and with `\/`). A Basic header's `id:secret` is registered as a secret of its own, with
 *    `basicCredentials` (RFC 6749 §2.3.1 form-encoded and plain), so its base64 is masked too.
 *  - credentials in named places, whatever their value: the credentials after an `Authorization` header's scheme
 *    (`Authorization: Basic ***`) and the values of credential fields in a form, a query or JSON
 *    (`client_secret=***`, `"password":"***"`), so that text quoting a request is safe where its values are unknown.
 *
 *  Every character inside any occurrence of any form is masked, and occurrences that overlap or touch become one
 *  `***`: a secret inside a longer one (`hunter2` in `hunter2-extra`) never leaves a visible remainder.
 *
 *  Short secrets: a secret of fewer than 4 characters (brandbox's client_secret is the literal `-`) is masked, in
 *  each of its forms, only where it stands as a whole value: the whole text, or after `=`, `:` (and spaces) or a
 *  quote, and before `&`, a quote, whitespace, `,`, `;`, a closing bracket or the end. So `client_secret=-&x` and
 *  `"client_secret":"-"` are masked while the `-` of "tenant - not found" stays. */

export const mask = "***"

/** Secrets shorter than this are masked only as whole delimited values (see the module header). */
export const minLength = 4

/** application/x-www-form-urlencoded, as RFC 6749 §2.3.1 encodes client credentials before Basic encoding. */
const formEncode = (s: string): string => new URLSearchParams([["", s]]).toString().slice(1)

/** What a Basic header built from `id` and `secret` carries before base64: form-encoded (RFC 6749 §2.3.1) and plain
 *  (RFC 7617, for a provider that echoes it decoded). Register these as secrets beside the secret itself. */
export const basicCredentials = (id: string, secret: string): ReadonlyArray<string> => [
  ...new Set([`${formEncode(id)}:${formEncode(secret)}`, `${id}:${secret}`])
]

const lowerHex = (s: string) => s.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())

/** A string as it appears inside a JSON string literal: as JSON.stringify writes it, ASCII-only (Python's default),
 *  and ASCII-only with `\/` (PHP's default). */
const jsonForms = (s: string): ReadonlyArray<string> => {
  const plain = JSON.stringify(s).slice(1, -1)
  const ascii = plain.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  return [plain, ascii, ascii.replaceAll("/", "\\/")]
}

/** Every form of one secret that `scrub` looks for, without duplicates; none for the empty string. */
export const encodings = (secret: string): ReadonlyArray<string> => {
  if (secret === "") return []
  const bytes = Buffer.from(secret, "utf8")
  const b64 = bytes.toString("base64")
  const pct = encodeURIComponent(secret)
  const form = formEncode(secret)
  const wire = [secret, b64, b64.replace(/=+$/, ""), bytes.toString("base64url"), pct, lowerHex(pct), form]
  wire.push(lowerHex(form))
  return [...new Set(wire.flatMap((w) => [w, ...jsonForms(w)]))]
}

interface Compiled {
  /** Forms of secrets of `minLength` or more: masked wherever they occur. */
  readonly anywhere: ReadonlyArray<string>
  /** Forms of shorter secrets, as one expression that matches them only as whole delimited values. */
  readonly delimited: RegExp | undefined
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&")

const compile = (secrets: ReadonlyArray<string>): Compiled => {
  const anywhere = new Set<string>()
  const short = new Set<string>()
  for (const s of secrets) for (const form of encodings(s)) (s.length < minLength ? short : anywhere).add(form)
  const alternatives = [...short].sort((a, b) => b.length - a.length).map(escapeRegExp)
  return {
    anywhere: [...anywhere],
    delimited:
      alternatives.length === 0
        ? undefined
        : new RegExp(String.raw`(?<=^|[=:]\s*|["'])(?:${alternatives.join("|")})(?=$|[&"'\s,;)\]}])`, "gd")
  }
}

/** Names whose value is a credential in a form body, a query string or a JSON object. */
const fields = [
  "client_secret",
  "client_assertion",
  "assertion",
  "password",
  "pass_code",
  "authentication_code",
  "api_key",
  "apikey",
  "access_token",
  "refresh_token",
  "id_token",
  "token",
  "secret",
  "jwt"
].join("|")

/** Each pattern's group 1 is a credential to mask. */
const named: ReadonlyArray<RegExp> = [
  // form or query: client_secret=value
  new RegExp(String.raw`(?<![\w-])(?:${fields})=([^&\s"']+)`, "gid"),
  // JSON: "client_secret": "value"
  new RegExp(String.raw`"(?:${fields})"\s*:\s*"((?:[^"\\]|\\.)*)"`, "gid"),
  // JSON inside a JSON string: \"client_secret\":\"value\"
  new RegExp(String.raw`\\"(?:${fields})\\"\s*:\s*\\"(.*?)\\"(?=\s*[,}\]]|$)`, "gid"),
  // RFC 9110 §11.4: credentials = auth-scheme [ token68 ]. The scheme stays readable.
  /(?<![\w-])(?:proxy-)?authorization"?\s*[:=]\s*"?\s*[A-Za-z][\w-]*\s+([A-Za-z0-9\-._~+/]+=*)(?=$|[\s"',;&)\]}])/dgi
]

type Span = readonly [start: number, end: number]

const spansOf = (text: string, c: Compiled): Span[] => {
  const spans: Span[] = []
  for (const form of c.anywhere)
    for (let at = text.indexOf(form); at !== -1; at = text.indexOf(form, at + 1)) spans.push([at, at + form.length])
  // The `d` flag gives the span of the group: the value alone, not the name before it.
  const matches = (re: RegExp, group: number) => {
    for (const m of text.matchAll(re)) {
      const span = m.indices?.[group]
      if (span && span[1] > span[0] && m[group] !== mask) spans.push(span)
    }
  }
  if (c.delimited) matches(c.delimited, 0)
  for (const re of named) matches(re, 1)
  return spans
}

/** Spans sorted and merged, touching ones too, so that adjacent secrets become one mask. */
const merge = (spans: Span[]): ReadonlyArray<Span> => {
  const out: Array<[number, number]> = []
  for (const [s, e] of spans.sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1]
    if (last && s <= last[1]) last[1] = Math.max(last[1], e)
    else out.push([s, e])
  }
  return out
}

/** `text` with every form of every secret, and every credential in a named place, replaced by `***`. */
export const scrub = (text: string, secrets: ReadonlyArray<string> = []): string => {
  const spans = merge(spansOf(text, compile(secrets)))
  let out = ""
  let at = 0
  for (const [s, e] of spans) {
    out += text.slice(at, s) + mask
    at = e
  }
  return out + text.slice(at)
}
