import autocannon from "autocannon"
const [url, amount] = process.argv.slice(2)
const r = await autocannon({ url, connections: 10, amount: Number(amount) })
console.log(url, "req/s", r.requests.average, "non2xx", r.non2xx)
