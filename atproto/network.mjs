// The AT Protocol reference network Takedown's atproto tests run against: @atproto/dev-env's TestNetwork (a
// PLC directory, a PDS, the AppView "bsky" with its bsync, and the Ozone moderation service).
//
//   REDIS_HOST=127.0.0.1:6379 DB_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/takedown_atproto \
//   DB_POSTGRES_SCHEMA=run_1234 node atproto/network.mjs
//
// Prints one line, "@@network {json}", with the services' URLs, the admin credentials and the moderation
// service's DID, once the network is up. It then reads commands from standard input, one a line, and
// answers each with one "@@reply {json}" line:
//
//   sync        wait until the PDS's events are processed everywhere (AppView, Ozone, background queues), and
//               Ozone's labels have reached the AppView (relayLabels below)
//
// It stays up until standard input closes, or SIGTERM / SIGINT, then closes the network. Every other thing
// the servers print goes to standard error. DB_POSTGRES_SCHEMA prefixes the schemas the AppView, bsync and
// Ozone create (appview_<schema>, bsync_<schema>, ozone_<schema>): give each run a new one.
import readline from 'node:readline'
import { ADMIN_PASSWORD, TestNetwork } from '@atproto/dev-env'

const out = (tag, value) => process.stdout.write(`@@${tag} ${JSON.stringify(value)}\n`)
// The servers' own console output would mix with our lines: send it to standard error.
console.log = (...args) => console.error(...args)
console.info = (...args) => console.error(...args)

for (const name of ['REDIS_HOST', 'DB_POSTGRES_URL', 'DB_POSTGRES_SCHEMA']) {
  if (!process.env[name]) {
    process.stderr.write(`network.mjs: ${name} is not set\n`)
    process.exit(2)
  }
}

const started = Date.now()
const network = await TestNetwork.create({
  dbPostgresUrl: process.env.DB_POSTGRES_URL,
  dbPostgresSchema: process.env.DB_POSTGRES_SCHEMA,
})

let closing = null
const close = async (code) => {
  if (closing) return closing
  closing = (async () => {
    try {
      await network.close()
    } catch (err) {
      process.stderr.write(`network.mjs: closing: ${err?.stack ?? err}\n`)
    }
    process.exit(code)
  })()
  return closing
}
process.on('SIGTERM', () => close(0))
process.on('SIGINT', () => close(0))

out('network', {
  plc: network.plc.url,
  pds: network.pds.url,
  pds_did: network.pds.ctx.cfg.service.did,
  pds_admin_password: ADMIN_PASSWORD,
  appview: network.bsky.url,
  appview_did: network.bsky.ctx.cfg.serverDid,
  ozone: network.ozone.url,
  ozone_did: network.ozone.ctx.cfg.service.did,
  ozone_admin_password: ADMIN_PASSWORD,
  handle_domains: network.pds.ctx.cfg.identity.serviceHandleDomains,
  started_ms: Date.now() - started,
})

// Bluesky's AppView learns of Ozone's labels (among them "!takedown", which is how Ozone takes a post down on the
// AppView) through a label ingester that dev-env does not include. relayLabels stands in for it: it reads the
// labels Ozone publishes (com.atproto.label.queryLabels, from where it got to) and applies them to the AppView's
// label table as the ingester does: a label is added, a negation removes the label it negates.
let labelCursor = ''
async function relayLabels() {
  let relayed = 0
  for (;;) {
    const query = new URLSearchParams({ uriPatterns: '*', limit: '250' })
    if (labelCursor) query.set('cursor', labelCursor)
    const answer = await fetch(`${network.ozone.url}/xrpc/com.atproto.label.queryLabels?${query}`)
    if (!answer.ok) throw new Error(`queryLabels answered HTTP ${answer.status}`)
    const { labels, cursor } = await answer.json()
    if (!labels.length) return relayed
    const db = network.bsky.db.db
    for (const label of labels) {
      const key = { src: label.src, uri: label.uri, cid: label.cid ?? '', val: label.val }
      if (label.neg) {
        await db.deleteFrom('label').where('src', '=', key.src).where('uri', '=', key.uri)
          .where('cid', '=', key.cid).where('val', '=', key.val).execute()
      } else {
        await db.insertInto('label').values({ ...key, neg: false, cts: label.cts, exp: label.exp ?? null })
          .onConflict((oc) => oc.doNothing()).execute()
      }
      relayed += 1
    }
    labelCursor = cursor ?? labelCursor
  }
}

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  const command = line.trim()
  if (!command) return
  try {
    if (command === 'sync') {
      await network.processAll()
      const relayed = await relayLabels()
      out('reply', { ok: true, labels: relayed })
    } else {
      out('reply', { ok: false, error: `unknown command ${JSON.stringify(command.slice(0, 40))}` })
    }
  } catch (err) {
    out('reply', { ok: false, error: String(err?.message ?? err) })
  }
})
lines.on('close', () => close(0))
