/** What the crash-consistency worker writes: every input of one write carries the same generation number. */
export const inputsFor = (generation: number) => [
  { name: "client_id", value: `id-${generation}`, secret: false },
  { name: "client_secret", value: `secret-${generation}-${"s".repeat(40)}`, secret: true },
  { name: "password", value: `password-${generation}`, secret: true },
  { name: "token_url", value: `https://idp.example/${generation}/token`, secret: false }
]
