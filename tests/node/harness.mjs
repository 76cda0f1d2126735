// Test harness: one Node process hosting many real Yjs clients (y-websocket v3 and v1).
//
// Driven by JSON lines on stdin ({"id": N, "cmd": "...", ...args}); answers JSON lines on stdout:
//   {"id": N, "ok": true, "result": ...} | {"id": N, "ok": false, "error": "..."}
// plus unsolicited events {"event": "...", "client": "a", ...}. stdout carries nothing else:
// diagnostics go to stderr. See tests/nodeclient.py for the Python side.

import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { gunzipSync } from 'node:zlib'

import * as decoding from 'lib0/decoding'
import WebSocket from 'ws'
import { Awareness } from 'y-protocols/awareness'
import { WebsocketProvider as ProviderV3 } from 'y-websocket'
import { WebsocketProvider as ProviderV1 } from 'y-websocket-v1'
import * as Y from 'yjs'

// Keep stdout for the protocol alone, whatever a library decides to log.
console.log = console.info = console.debug = console.error

// Both clients read `WebSocket.OPEN` from the global in their resyncInterval timer, and Node 20
// has no global WebSocket: without this, resync_interval would throw inside a timer.
globalThis.WebSocket ??= WebSocket

const PROTOCOL = JSON.parse(readFileSync(new URL('../../shared/protocol.json', import.meta.url), 'utf8'))
const MSG = PROTOCOL.messageTypes
const STEP = PROTOCOL.syncSteps
const CONTENT = PROTOCOL.contentText
const PROVIDERS = { v3: ProviderV3, v1: ProviderV1 }
const DEFAULT_TIMEOUT_S = 60

const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const emit = (event, client, fields = {}) => write({ event, client, ...fields })

/** @type {Map<string, Client>} */
const clients = new Map()

class CommandError extends Error {}

// ---------------------------------------------------------------- argument checking

const TYPES = {
  string: (v) => typeof v === 'string',
  int: (v) => Number.isInteger(v) && v >= 0,
  number: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  array: Array.isArray,
  any: () => true
}

/** Read argument `name` of `msg`; `fallback === undefined` makes it required. */
const arg = (msg, name, type, fallback) => {
  const value = msg[name]
  if (value === undefined || value === null) {
    if (fallback === undefined) throw new CommandError(`missing argument "${name}" (${type})`)
    return fallback
  }
  if (!TYPES[type](value)) throw new CommandError(`argument "${name}" must be ${type}, got ${JSON.stringify(value)}`)
  return value
}

const getClient = (msg) => {
  const name = arg(msg, 'client', 'string')
  const client = clients.get(name)
  if (!client) throw new CommandError(`unknown client "${name}" (open: ${[...clients.keys()].join(', ') || 'none'})`)
  return client
}

const timeoutOf = (msg) => arg(msg, 'timeout', 'number', DEFAULT_TIMEOUT_S)

/** Is this outgoing frame update-bearing (sync step 2 or sync update)? */
const isUpdateFrame = (data) => {
  try {
    const dec = decoding.createDecoder(data instanceof Uint8Array ? data : new Uint8Array(data))
    if (decoding.readVarUint(dec) !== MSG.sync) return false
    const step = decoding.readVarUint(dec)
    return step === STEP.step2 || step === STEP.update
  } catch {
    return false
  }
}

// ---------------------------------------------------------------- one client

class Client {
  constructor (name, { url, room, params, version, awareness, resyncInterval, maxBackoffTime }) {
    this.name = name
    this.version = version
    this.serverUrl = url
    this.doc = new Y.Doc()
    this.text = this.doc.getText(CONTENT)
    this.awareness = new Awareness(this.doc)
    if (awareness !== undefined) this.awareness.setLocalState(awareness)
    /** per-socket counters; replaced whenever the provider opens a new socket */
    this.conn = { sent: 0, acked: 0 }
    this.remoteUpdates = 0
    this.closes = [] // {code, reason} of every socket close seen, oldest first
    this.waiters = new Set()

    const self = this
    // The provider constructs one of these per connection attempt: count what it sends and
    // see every close code (the provider itself hides the code of a local close).
    class CountingSocket extends WebSocket {
      constructor (...args) {
        super(...args)
        const conn = { sent: 0, acked: 0 }
        self.conn = conn
        this.addEventListener('close', (ev) => {
          self.closes.push({ code: ev.code, reason: ev.reason })
          emit('close', self.name, { code: ev.code, reason: ev.reason })
          self.notify()
        })
        this.addEventListener('error', (ev) => emit('socket_error', self.name, { error: String(ev.message ?? ev.error ?? ev) }))
        this._conn = conn
      }

      send (data, ...rest) {
        if (this.readyState === WebSocket.OPEN && isUpdateFrame(data)) {
          this._conn.sent++
          self.notify()
        }
        return super.send(data, ...rest)
      }
    }

    const Provider = PROVIDERS[version]
    this.provider = new Provider(url, room, this.doc, {
      WebSocketPolyfill: CountingSocket,
      awareness: this.awareness,
      params,
      // lib0's broadcastchannel delivers synchronously to every provider of the same room in
      // this process: with it on, our clients would sync without the server.
      disableBc: true,
      resyncInterval,
      maxBackoffTime,
      connect: false // connect below, once our listeners see the first "connecting"
    })
    // Our "saved" extension: a cumulative count of this connection's committed update frames.
    this.provider.messageHandlers[MSG.saved] = (_encoder, decoder) => {
      const n = decoding.readVarUint(decoder)
      if (n > this.conn.acked) this.conn.acked = n
      this.notify()
    }
    this.provider.on('status', ({ status }) => { emit('status', name, { status }); this.notify() })
    this.provider.on('sync', (synced) => { emit('synced', name, { synced }); this.notify() })
    // v3 only: the server closed with a code the client treats as final (4400-4499).
    this.provider.on('closed', ({ code, reason }) => emit('closed_final', name, { code, reason }))
    this.doc.on('update', (_update, origin) => {
      if (origin === this.provider) this.remoteUpdates++
      this.notify()
    })
    this.awareness.on('change', () => this.notify())
    this.provider.connect()
  }

  get status () {
    const p = this.provider
    return p.wsconnected ? 'connected' : p.wsconnecting ? 'connecting' : 'disconnected'
  }

  others () {
    const out = {}
    for (const [id, state] of this.awareness.getStates()) {
      if (id !== this.doc.clientID) out[id] = state
    }
    return out
  }

  info () {
    return {
      client: this.name,
      version: this.version,
      url: this.provider.url,
      room: this.provider.roomname,
      client_id: this.doc.clientID,
      status: this.status,
      synced: this.provider.synced,
      text_length: this.text.length,
      remote_updates: this.remoteUpdates,
      sent: this.conn.sent,
      acked: this.conn.acked,
      closes: this.closes.length,
      last_close: this.closes.at(-1) ?? null
    }
  }

  notify () {
    for (const w of [...this.waiters]) w.check()
  }

  /**
   * Resolve with check()'s truthy value once it has one; re-checked on every change of this
   * client. Rejects after `timeoutS` with what was awaited and the client's current state.
   */
  waitFor (what, check, timeoutS, describe = () => JSON.stringify(this.info())) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          let value
          try {
            value = check()
          } catch (e) {
            return w.done(() => reject(e))
          }
          if (value) w.done(() => resolve(value))
        },
        fail: (message) => w.done(() => reject(new CommandError(message))),
        done: (settle) => {
          clearTimeout(timer)
          this.waiters.delete(w)
          settle()
        }
      }
      const timer = setTimeout(
        () => w.fail(`timed out after ${timeoutS}s waiting for ${what} on client "${this.name}"; now: ${describe()}`),
        timeoutS * 1000)
      this.waiters.add(w)
      w.check()
    })
  }

  destroy () {
    for (const w of [...this.waiters]) w.fail(`client "${this.name}" was closed`)
    this.provider.destroy()
    this.doc.destroy()
  }
}

// ---------------------------------------------------------------- traces

const traces = new Map()

const loadTrace = (path) => {
  if (!traces.has(path)) {
    let trace
    try {
      trace = JSON.parse(gunzipSync(readFileSync(path)).toString('utf8'))
    } catch (e) {
      throw new CommandError(`cannot read trace ${path}: ${e.message}`)
    }
    if (!Array.isArray(trace.txns)) throw new CommandError(`${path} is not a sequential trace (no txns array)`)
    traces.set(path, trace)
  }
  return traces.get(path)
}

/** The text after the first `limit` transactions (the whole trace if limit is absent). */
const traceText = (trace, limit) => {
  if (limit === undefined || limit >= trace.txns.length) return trace.endContent
  let text = trace.startContent ?? ''
  for (const { patches } of trace.txns.slice(0, limit)) {
    for (const [pos, del, ins] of patches) text = text.slice(0, pos) + ins + text.slice(pos + del)
  }
  return text
}

const replay = async (msg) => {
  const names = arg(msg, 'clients', 'array')
  if (names.length === 0 || new Set(names).size !== names.length) throw new CommandError('"clients" must be distinct names, at least one')
  const group = names.map((client) => getClient({ client }))
  const trace = loadTrace(arg(msg, 'trace', 'string'))
  const block = arg(msg, 'block', 'int', 50)
  if (block < 1) throw new CommandError('"block" must be at least 1')
  const timeoutS = timeoutOf(msg)
  const limit = msg.limit === undefined ? undefined : arg(msg, 'limit', 'int')
  const txns = trace.txns.slice(0, limit ?? trace.txns.length)
  // Clients of one cluster may sit on different instances (servers: "any"): one room by name.
  const anyServer = msg.servers === 'any'
  const rooms = new Set(group.map((c) => (anyServer ? c.provider.roomname : `${c.serverUrl} ${c.provider.roomname}`)))
  if (rooms.size > 1) throw new CommandError(`clients are not in one room: ${[...rooms].join(', ')}`)
  const notSynced = group.filter((c) => !c.provider.synced).map((c) => c.name)
  if (notSynced.length) throw new CommandError(`clients not synced: ${notSynced.join(', ')}`)

  const start = Date.now()
  const base = group.map((c) => c.remoteUpdates)
  const typedBy = group.map(() => 0) // txns typed so far by each client
  for (let k = 0, first = 0; first < txns.length; k++, first += block) {
    const i = k % group.length
    const c = group[i]
    // Everything typed so far by the others must have reached this client: each Y transaction
    // arrives as exactly one relayed update. A server that merges or drops relayed updates
    // makes this wait time out, with the counts in the error.
    const expected = first - typedBy[i]
    const received = () => c.remoteUpdates - base[i]
    await c.waitFor(`${expected} remote updates before typing block ${k} (txns ${first}..)`,
      () => received() >= expected, timeoutS,
      () => `received ${received()} remote updates, ${JSON.stringify(c.info())}`)
    for (const { patches } of txns.slice(first, first + block)) {
      c.doc.transact(() => {
        for (const [pos, del, ins] of patches) {
          if (del > 0) c.text.delete(pos, del)
          if (ins) c.text.insert(pos, ins)
        }
      })
      typedBy[i]++
    }
  }
  const expectedText = traceText(trace, limit)
  return {
    typed: txns.length,
    expected_text_length: expectedText.length,
    expected_sha256: createHash('sha256').update(expectedText).digest('hex'),
    ms: Date.now() - start
  }
}

// ---------------------------------------------------------------- commands

const b64 = (bytes) => Buffer.from(bytes).toString('base64')

const COMMANDS = {
  ping: () => 'pong',

  protocol: () => PROTOCOL,

  open: (msg) => {
    const name = arg(msg, 'client', 'string')
    if (clients.has(name)) throw new CommandError(`client "${name}" is already open`)
    const version = arg(msg, 'version', 'string', 'v3')
    if (!PROVIDERS[version]) throw new CommandError(`version must be one of ${Object.keys(PROVIDERS)}, got "${version}"`)
    const params = Object.fromEntries(Object.entries(arg(msg, 'params', 'object', {})).map(([k, v]) => [k, String(v)]))
    const client = new Client(name, {
      url: arg(msg, 'url', 'string'),
      room: arg(msg, 'room', 'string'),
      params,
      version,
      awareness: msg.awareness === undefined ? undefined : arg(msg, 'awareness', 'object'),
      resyncInterval: arg(msg, 'resync_interval', 'number', -1),
      maxBackoffTime: arg(msg, 'max_backoff', 'number', 2500)
    })
    clients.set(name, client)
    return client.info()
  },

  info: (msg) => getClient(msg).info(),

  clients: () => [...clients.keys()],

  client_id: (msg) => getClient(msg).doc.clientID,

  wait_synced: async (msg) => {
    const c = getClient(msg)
    await c.waitFor('synced', () => c.provider.synced, timeoutOf(msg))
    return c.info()
  },

  insert: (msg) => {
    const c = getClient(msg)
    const pos = arg(msg, 'pos', 'int')
    const text = arg(msg, 'text', 'string')
    if (pos > c.text.length) throw new CommandError(`pos ${pos} is past the end (length ${c.text.length})`)
    c.text.insert(pos, text)
    return c.text.length
  },

  delete: (msg) => {
    const c = getClient(msg)
    const pos = arg(msg, 'pos', 'int')
    const len = arg(msg, 'len', 'int')
    if (pos + len > c.text.length) throw new CommandError(`range ${pos}+${len} is past the end (length ${c.text.length})`)
    c.text.delete(pos, len)
    return c.text.length
  },

  text: (msg) => getClient(msg).text.toString(),

  wait_text: async (msg) => {
    const c = getClient(msg)
    const want = arg(msg, 'text', 'string')
    const short = want.length > 80 ? `${JSON.stringify(want.slice(0, 80))}... (${want.length} chars)` : JSON.stringify(want)
    await c.waitFor(`text ${short}`,
      // length first: toString() on every update of a long document is not free
      () => c.text.length === want.length && c.text.toString() === want,
      timeoutOf(msg),
      () => {
        const have = c.text.toString()
        let i = 0
        while (i < have.length && have[i] === want[i]) i++
        return `length ${have.length} (want ${want.length}), first difference at ${i}: ` +
          `${JSON.stringify(have.slice(i, i + 40))}; ${JSON.stringify(c.info())}`
      })
    return want.length
  },

  state: (msg) => b64(Y.encodeStateAsUpdate(getClient(msg).doc)),

  state_vector: (msg) => b64(Y.encodeStateVector(getClient(msg).doc)),

  apply: (msg) => {
    const c = getClient(msg)
    Y.applyUpdate(c.doc, Buffer.from(arg(msg, 'update_b64', 'string'), 'base64'))
    return c.text.length
  },

  set_map: (msg) => {
    const c = getClient(msg)
    c.doc.getMap(arg(msg, 'map', 'string')).set(arg(msg, 'key', 'string'), arg(msg, 'value', 'any'))
    return true
  },

  get_map: (msg) => getClient(msg).doc.getMap(arg(msg, 'map', 'string')).toJSON(),

  set_awareness: (msg) => {
    const c = getClient(msg)
    c.awareness.setLocalState(msg.state === null ? null : arg(msg, 'state', 'object'))
    return true
  },

  awareness: (msg) => getClient(msg).others(),

  // Until the client knows exactly `count` other participants (and, if `match` is given, one of
  // them has all of match's top-level key/values).
  wait_awareness: async (msg) => {
    const c = getClient(msg)
    const count = msg.count === undefined ? undefined : arg(msg, 'count', 'int')
    const match = msg.match === undefined ? undefined : arg(msg, 'match', 'object')
    const fits = (state) => Object.entries(match).every(([k, v]) => JSON.stringify(state?.[k]) === JSON.stringify(v))
    return c.waitFor(`awareness count=${count} match=${JSON.stringify(match)}`, () => {
      const others = c.others()
      if (count !== undefined && Object.keys(others).length !== count) return false
      if (match !== undefined && !Object.values(others).some(fits)) return false
      return others
    }, timeoutOf(msg), () => `others ${JSON.stringify(c.others())}`)
  },

  acks: (msg) => {
    const { sent, acked } = getClient(msg).conn
    return { sent, acked }
  },

  wait_acked: async (msg) => {
    const c = getClient(msg)
    await c.waitFor('acked >= sent', () => c.conn.acked >= c.conn.sent, timeoutOf(msg))
    return { sent: c.conn.sent, acked: c.conn.acked }
  },

  disconnect: (msg) => {
    getClient(msg).provider.disconnect()
    return true
  },

  connect: (msg) => {
    getClient(msg).provider.connect()
    return true
  },

  close: (msg) => {
    const c = getClient(msg)
    clients.delete(c.name)
    c.destroy()
    return true
  },

  closed_code: (msg) => getClient(msg).closes.at(-1)?.code ?? null,

  // Until the client has seen `count` socket closes in all (default 1), the last with `code` if given.
  wait_closed: async (msg) => {
    const c = getClient(msg)
    const count = arg(msg, 'count', 'int', 1)
    const code = msg.code === undefined ? undefined : arg(msg, 'code', 'int')
    await c.waitFor(`${count} socket close(s)${code === undefined ? '' : ` with code ${code}`}`,
      () => c.closes.length >= count && (code === undefined || c.closes.at(-1).code === code),
      timeoutOf(msg), () => `closes ${JSON.stringify(c.closes)}`)
    return c.closes.at(-1)
  },

  replay,

  trace_text: (msg) => {
    const limit = msg.limit === undefined ? undefined : arg(msg, 'limit', 'int')
    return traceText(loadTrace(arg(msg, 'trace', 'string')), limit)
  },

  exit: () => {
    // reply first, then leave once stdout has drained
    setImmediate(shutdown)
    return true
  }
}

// ---------------------------------------------------------------- main loop

const handle = async (line) => {
  if (!line.trim()) return
  let msg
  try {
    msg = JSON.parse(line)
  } catch (e) {
    return write({ id: null, ok: false, error: `bad JSON: ${e.message}` })
  }
  const id = msg?.id ?? null
  try {
    if (!TYPES.object(msg)) throw new CommandError('a command must be a JSON object')
    if (!Object.hasOwn(COMMANDS, msg.cmd ?? '')) throw new CommandError(`unknown command ${JSON.stringify(msg.cmd)}`)
    write({ id, ok: true, result: (await COMMANDS[msg.cmd](msg)) ?? null })
  } catch (e) {
    // a CommandError is the caller's mistake; anything else is worth a stack on stderr
    if (!(e instanceof CommandError)) console.error(e)
    write({ id, ok: false, error: e instanceof CommandError ? e.message : `${e.name}: ${e.message}` })
  }
}

const shutdown = () => {
  for (const c of clients.values()) c.destroy()
  clients.clear()
  process.stdout.write('', () => process.exit(0))
}

// A library throwing inside a timer or socket callback must not take the other clients down.
process.on('uncaughtException', (e) => {
  console.error('uncaught:', e)
  write({ event: 'uncaught', error: `${e.name}: ${e.message}` })
})
process.on('unhandledRejection', (e) => {
  console.error('unhandled rejection:', e)
  write({ event: 'uncaught', error: String(e) })
})

createInterface({ input: process.stdin, crlfDelay: Infinity })
  .on('line', handle)
  .on('close', shutdown)

write({ event: 'ready', pid: process.pid })
