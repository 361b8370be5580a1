/** Which URL hosts are loopback or private targets (private-target.ts), in the spellings the URL parser accepts. */
import { describe, expect, it } from "vitest"
import { privateHost } from "../src/private-target.ts"

describe("privateHost", () => {
  it("names loopback, private, CGNAT, link-local and unspecified hosts after normalization", () => {
    const cases: Array<[string, string, string]> = [
      ["http://127.0.0.1:8080/x", "127.0.0.1", "loopback"],
      ["https://2130706433/", "127.0.0.1", "loopback"],
      ["https://0x7f.1/", "127.0.0.1", "loopback"],
      ["https://0177.0.0.1/", "127.0.0.1", "loopback"],
      ["https://127.1/", "127.0.0.1", "loopback"],
      ["https://LOCALHOST./", "localhost.", "loopback"],
      ["https://a.b.localhost/", "a.b.localhost", "loopback"],
      ["https://[0:0:0:0:0:0:0:1]/", "[::1]", "loopback"],
      ["https://[::ffff:127.0.0.1]/", "[::ffff:7f00:1]", "loopback"],
      ["https://0.0.0.0/", "0.0.0.0", "unspecified"],
      ["https://[::]/", "[::]", "unspecified"],
      ["https://10.255.0.1/", "10.255.0.1", "private"],
      ["https://172.16.0.1/", "172.16.0.1", "private"],
      ["https://172.31.255.255/", "172.31.255.255", "private"],
      ["https://192.168.0.1/", "192.168.0.1", "private"],
      ["https://[fc00::1]/", "[fc00::1]", "private"],
      ["https://[fdff::1]/", "[fdff::1]", "private"],
      ["https://[::ffff:10.0.0.1]/", "[::ffff:a00:1]", "private"],
      ["https://100.64.0.1/", "100.64.0.1", "CGNAT"],
      ["https://100.127.255.255/", "100.127.255.255", "CGNAT"],
      ["https://169.254.169.254/", "169.254.169.254", "link-local"],
      ["https://[fe80::1]/", "[fe80::1]", "link-local"],
      ["https://[febf::1]/", "[febf::1]", "link-local"],
      ["https://192.0.0.170/", "192.0.0.170", "reserved"],
      ["https://198.19.255.255/", "198.19.255.255", "reserved"],
      ["https://255.255.255.255/", "255.255.255.255", "reserved"],
      ["https://[64:ff9b::7f00:1]/", "[64:ff9b::7f00:1]", "loopback"],
      ["https://[64:ff9b::10.1.2.3]/", "[64:ff9b::a01:203]", "private"],
      ["https://[64:ff9b:1::8.8.8.8]/", "[64:ff9b:1::808:808]", "private"],
      ["https://[2002:a9fe:a9fe::]/", "[2002:a9fe:a9fe::]", "link-local"]
    ]
    for (const [url, host, kind] of cases) expect(privateHost(url), url).toEqual({ host, kind })
  })

  it("leaves public hosts, names and non-URLs alone", () => {
    for (const url of [
      "https://example.com/",
      "https://8.8.8.8/",
      "https://172.32.0.1/",
      "https://172.15.255.255/",
      "https://100.128.0.1/",
      "https://100.63.255.255/",
      "https://169.253.0.1/",
      "https://11.0.0.1/",
      "https://[2001:db8::1]/",
      "https://[fec0::1]/",
      "https://198.17.255.255/",
      "https://198.20.0.1/",
      "https://192.0.1.1/",
      "https://[64:ff9b::808:808]/",
      "https://[2002:808:808::1]/",
      "https://localhost.example.com/",
      "not a url"
    ])
      expect(privateHost(url), url).toBeUndefined()
  })
})
