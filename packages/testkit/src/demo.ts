/** The fixed demo credentials each emulated provider accepts, named like the manifests' connection inputs. */

export const DEMO_VALUES = {
  cube: { client_id: "cube-demo-client", client_secret: "cube-demo-secret", tenant: "acme" },
  dvinci: { client_id: "dvinci-api-user", client_secret: "dvinci-api-token" },
  "usage-engine": { client_id: "ue-demo-client", client_secret: "ue-demo-secret" },
  brandbox: { client_id: "42", client_secret: "-", username: "bb-user", password: "bb-password" },
  "crm-com": {
    api_key: "EE73C0AE64524371B5DDEFF5F7BB2192",
    authentication_code: "p_kestora1!",
    identifier: "crm-ident",
    pass_code: "crm-pass",
    jwt: "crm-idm-jwt",
    organisation: "ps_dev"
  },
  oauth2: { client_id: "oauth2-client", client_secret: "oauth2-secret", username: "alice", password: "alice-password" },
  /** A second oauth2 client whose id and secret change under RFC 6749 §2.3.1 form-encoding (":" "+" "%" " " "ü"),
   *  so a test can tell an encoding client from a naive one. */
  "oauth2-special": { client_id: "app:42 ü", client_secret: "s3:cr+t %2B ü" }
} as const
