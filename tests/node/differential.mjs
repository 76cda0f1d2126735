// Yjs's side of the differential test (tests/test_differential.py): how Yjs reads updates, and
// valid updates made by real Yjs operations. JSON lines on stdin, one answer line per request:
//
//   {"id": n, "base": [b64...], "update": b64, "after": [b64...]?, "roots": {"content": "text",
//    ...}, "state": b64?}
//     -> {"id": n, "ok": true, "json": {...}, "ill_typed": [root...], "crooked": bool,
//         "pending": bool, "cleanups": [b64...], "state_json": {...}?, "encoded": b64}
//      | {"id": n, "ok": false, "error": "..."}
//   A fresh Y.Doc per request: roots defined, base updates applied, then the update (then the
//   `after` updates, when an update came early and they fill the gap it left). `json` is
//   the canonical view of every root (below); `state_json` the view of a fresh doc holding only
//   `state` (pycrdt's encoding of the same document); `encoded` Yjs's own full state;
//   `ill_typed` the roots holding content their type never holds (see wellTyped); `crooked`
//   whether an item's origins do not frame it (see crooked); `pending` whether Yjs holds structs
//   back; `cleanups` the updates Yjs made itself (formatting cleanup after a remote change, which
//   a browser sends on). A root that Yjs cannot read is {"$error": "..."}.
//
//   {"id": n, "cmd": "generate", "seed": s, "sessions": k, "steps": m}
//     -> {"id": n, "ok": true, "sessions": [{"chain": [b64...], "extras": [{"base": i,
//        "update": b64, "kind": "..."}]}]}
//   Random edits by 1-3 Yjs docs that sync now and then. `chain` is every update in the order
//   it was made (each applies on top of the ones before it); extras are other updates real
//   clients send: a sync step 2 diff, Y.mergeUpdates of a run, a full state; each applies on top
//   of the first `base` updates of the chain.
//
// Canonical view (tests/test_differential.py builds the same from pycrdt): undefined, NaN and
// ±Infinity are null, -0 is 0, a BigInt {"$bigint": "digits"}, a Uint8Array {"$bytes": hex},
// nested types tagged ({"$map": {...}}, {"$array": [...]}, {"$text": delta}, {"$xmltext": delta},
// {"$xmlelement": name, "attrs": {...}, "children": [...]}, {"$xmlfragment": [...]}); a text
// root is {"delta": [...], "string": toString()}, an XML root {"children": [...]}. Python then
// merges adjacent string inserts of equal attributes, so how either side chunks a delta does
// not matter.

import { createInterface } from 'node:readline'

import * as prng from 'lib0/prng'
import * as Y from 'yjs'

// stdout carries the protocol alone.
console.log = console.info = console.debug = console.warn = console.error

const write = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const fromB64 = (s) => new Uint8Array(Buffer.from(s, 'base64'))
const toB64 = (u) => Buffer.from(u).toString('base64')
const hex = (u) => Buffer.from(u).toString('hex')

// ---------------------------------------------------------------- the canonical view

const canon = (v) => {
  if (v === undefined || v === null) return null
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? (Object.is(v, -0) ? 0 : v) : null
    case 'bigint':
      return { $bigint: v.toString() }
    case 'string':
    case 'boolean':
      return v
    case 'object':
      break
    default:
      return { $unknown: typeof v }
  }
  if (v instanceof Uint8Array) return { $bytes: hex(v) }
  if (Array.isArray(v)) return v.map(canon)
  // Subclasses first: YXmlText extends YText, YXmlElement extends YXmlFragment.
  if (v instanceof Y.XmlText) return { $xmltext: delta(v) }
  if (v instanceof Y.Text) return { $text: delta(v) }
  if (v instanceof Y.XmlElement) {
    return { $xmlelement: v.nodeName, attrs: canonObject(v.getAttributes()), children: v.toArray().map(canon) }
  }
  if (v instanceof Y.XmlFragment) return { $xmlfragment: v.toArray().map(canon) }
  if (v instanceof Y.Map) return { $map: canonObject(Object.fromEntries(mapEntries(v))) }
  if (v instanceof Y.Array) return { $array: v.toArray().map(canon) }
  if (v instanceof Y.Doc) return { $doc: v.guid }
  if (v instanceof Y.AbstractType) return { $type: v.constructor.name }
  return canonObject(v)
}

// Object.fromEntries defines own properties, so even a key "__proto__" stays a key.
const canonObject = (obj) => Object.fromEntries(Object.keys(obj).sort().map((k) => [k, canon(obj[k])]))

// What Y.Map.toJSON reads: the last value of each entry not deleted.
const mapEntries = (m) => {
  const out = []
  m._map.forEach((item, key) => {
    if (!item.deleted) out.push([key, item.content.getContent()[item.length - 1]])
  })
  return out
}

const delta = (t) =>
  t.toDelta().map((op) => {
    const out = { insert: canon(op.insert) }
    if (op.attributes && Object.keys(op.attributes).length > 0) out.attributes = canonObject(op.attributes)
    return out
  })

const ROOT_TYPES = { text: Y.Text, map: Y.Map, array: Y.Array, xml: Y.XmlFragment }

const defineRoots = (doc, roots) => {
  for (const [name, kind] of Object.entries(roots)) {
    if (!ROOT_TYPES[kind]) throw new Error(`unknown root kind ${kind}`)
    doc.get(name, ROOT_TYPES[kind])
  }
}

const rootView = (type, kind) => {
  if (kind === 'text') return { delta: delta(type), string: type.toString() }
  if (kind === 'map') return canonObject(Object.fromEntries(mapEntries(type)))
  if (kind === 'array') return type.toArray().map(canon)
  return { children: type.toArray().map(canon) }
}

const view = (doc, roots) => {
  const out = {}
  for (const [name, kind] of Object.entries(roots)) {
    try {
      out[name] = rootView(doc.get(name, ROOT_TYPES[kind]), kind)
    } catch (err) {
      out[name] = { $error: `${err && err.name}: ${err && err.message}` }
    }
  }
  return out
}

// An update cannot say which type a root is, nor check what an origin points at: a list or a
// map can end up holding content its type never holds (a string in an array, a format as a map
// value, a Y.Map in an XML fragment). Each side then shows it its own way (yrs may even loop
// forever reading it), so such a root is compared no further: the roots listed here.
const LIST_CONTENT = (t) =>
  t instanceof Y.Text ? [Y.ContentString, Y.ContentEmbed, Y.ContentFormat, Y.ContentType, Y.ContentDeleted]
    : t instanceof Y.XmlFragment ? [Y.ContentType, Y.ContentDeleted]
      : t instanceof Y.Array ? [Y.ContentAny, Y.ContentBinary, Y.ContentType, Y.ContentDeleted]
        : [Y.ContentDeleted]
// A Y.Map's values; another type's attributes (text, XML) are plain values.
const MAP_CONTENT = (t) =>
  t instanceof Y.Map ? [Y.ContentAny, Y.ContentBinary, Y.ContentType, Y.ContentDeleted] : [Y.ContentAny, Y.ContentBinary, Y.ContentDeleted]

const wellTyped = (t) => {
  const allowed = LIST_CONTENT(t)
  for (let n = t._start; n !== null; n = n.right) {
    if (n.deleted) continue
    if (!allowed.includes(n.content.constructor)) return false
    if (n.content instanceof Y.ContentType) {
      const child = n.content.type
      if (t instanceof Y.XmlFragment && !(child instanceof Y.XmlElement || child instanceof Y.XmlText)) return false
      if (!wellTyped(child)) return false
    }
  }
  const allowedValues = MAP_CONTENT(t)
  for (const n of t._map.values()) {
    if (n.deleted) continue
    if (!allowedValues.includes(n.content.constructor)) return false
    if (n.content instanceof Y.ContentType && !wellTyped(n.content.type)) return false
  }
  return true
}

const illTyped = (doc, roots) =>
  Object.entries(roots).filter(([name, kind]) => !wellTyped(doc.get(name, ROOT_TYPES[kind]))).map(([name]) => name)

// Whether some item's right origin does not lie to the right of its origin in one list (it lies
// left of it, in another list, or among a map's entries): yrs and Yjs place such an item each
// their own way. Only the document shows it, so the Python side compares such a case no further.
const crooked = (doc) => {
  const place = new Map() // item -> [list or map entry owner, index or key]
  const visit = (t) => {
    let i = 0
    for (let n = t._start; n !== null; n = n.right) {
      place.set(n, [t, i++])
      if (n.content instanceof Y.ContentType) visit(n.content.type)
    }
    t._map.forEach((last, key) => {
      for (let n = last; n !== null; n = n.left) {
        place.set(n, [t, `key:${key}`])
        if (n.content instanceof Y.ContentType) visit(n.content.type)
      }
    })
  }
  doc.share.forEach(visit)
  const find = (id) => (id.clock < Y.getState(doc.store, id.client) ? Y.getItem(doc.store, id) : null)
  for (const [item] of place) {
    if (item.origin === null || item.rightOrigin === null) continue
    const left = place.get(find(item.origin))
    const right = place.get(find(item.rightOrigin))
    if (left === undefined || right === undefined) continue
    if (left[0] !== right[0] || typeof left[1] !== 'number' || typeof right[1] !== 'number' || right[1] <= left[1]) return true
  }
  return false
}

const runCase = (msg) => {
  const doc = new Y.Doc()
  defineRoots(doc, msg.roots)
  // Yjs cleans up formatting after a remote change to a text: deletions of its own, which a
  // browser then sends to the server. The Python side applies them to pycrdt too.
  const cleanups = []
  doc.on('update', (u, _origin, _doc, tr) => { if (tr.local) cleanups.push(toB64(u)) })
  for (const u of msg.base) Y.applyUpdate(doc, fromB64(u))
  Y.applyUpdate(doc, fromB64(msg.update))
  for (const u of msg.after ?? []) Y.applyUpdate(doc, fromB64(u))
  const reply = {
    id: msg.id,
    ok: true,
    json: view(doc, msg.roots),
    ill_typed: illTyped(doc, msg.roots),
    crooked: crooked(doc),
    pending: doc.store.pendingStructs !== null,
    cleanups,
    encoded: toB64(Y.encodeStateAsUpdate(doc))
  }
  if (msg.state !== undefined) {
    const fresh = new Y.Doc()
    defineRoots(fresh, msg.roots)
    Y.applyUpdate(fresh, fromB64(msg.state))
    for (const u of cleanups) Y.applyUpdate(fresh, fromB64(u)) // relayed by the server
    reply.state_json = view(fresh, msg.roots)
    reply.ill_typed = [...new Set([...reply.ill_typed, ...illTyped(fresh, msg.roots)])]
  }
  return reply
}

// ---------------------------------------------------------------- generating real updates

const pick = (g, arr) => arr[prng.int31(g, 0, arr.length - 1)]
const chance = (g, p) => g.next() < p

const CHUNKS = [
  'a', 'hello ', 'world', ' ', 'é', 'ß', '中文', '😀', '𝔘𝔫𝔦', '\uFEFF', '\u0000', 'e\u0301', '\n',
  '👩‍💻', 'שלום', '\t', '\u200d', '\uFFFD', '\r\n', '"quoted"', '<tag>', '\\', '{}'
]
const randText = (g) => {
  let s = ''
  for (let i = prng.int31(g, 1, 3); i > 0; i--) s += pick(g, CHUNKS)
  return s
}
const KEYS = ['a', 'b', 'k', 'ü', '😀', '', 'constructor', 'toString', 'hasOwnProperty', 'x y', '0', '1']
const ATTRS = [
  { bold: true }, { italic: true }, { bold: null }, { color: '#f00' }, { link: { href: 'https://x.test/ü' } },
  { size: 12 }, { font: 'Ünïcode 😀' }, { bold: true, italic: null }, { list: [1, 'two'] }
]
const XML_NAMES = ['p', 'div', 'h1', 'Custom-Tag', 'ü', 'x:y']

const anyValue = (g, depth = 0) => {
  const k = prng.int31(g, 0, depth > 2 ? 8 : 10)
  switch (k) {
    case 0: return pick(g, [0, 1, -1, 42, -42, 63, 64, -64, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53 - 1, -(2 ** 53 - 1)])
    case 1: return pick(g, [1.5, 0.1, -0, NaN, Infinity, -Infinity, 1e300, 5e-324, 3.4028234663852886e38, -2.5e-10])
    case 2: return randText(g)
    case 3: return pick(g, ['', 'x', 'constructor'])
    case 4: return pick(g, [true, false])
    case 5: return pick(g, [null, undefined])
    case 6: return pick(g, [0.5, -7]) // no BigInt: check_update refuses it (yrs writes it back as a number)
    case 7: return prng.uint8Array(g, prng.int31(g, 0, 5))
    case 8: return prng.int31(g, -1000, 1000)
    case 9: return Array.from({ length: prng.int31(g, 0, 3) }, () => anyValue(g, depth + 1))
    default: {
      const obj = {}
      for (let i = prng.int31(g, 0, 3); i > 0; i--) obj[pick(g, KEYS)] = anyValue(g, depth + 1)
      return obj
    }
  }
}

// Y.Map and Y.Array pick the content by the value's constructor: an object with its own key
// "constructor" throws there; Y.Array inserts no undefined either. Nested in an array, any
// value passes.
const mapValue = (g) => {
  const v = anyValue(g)
  return v !== null && typeof v === 'object' && Object.hasOwn(v, 'constructor') ? [v] : v
}
const arrayValue = (g) => {
  const v = mapValue(g)
  return v === undefined ? null : v
}

// A prelim (not yet integrated) nested type.
const prelimType = (g) => {
  switch (prng.int31(g, 0, 3)) {
    case 0: return new Y.Map([[pick(g, KEYS), mapValue(g)]])
    case 1: return Y.Array.from([arrayValue(g), arrayValue(g)])
    case 2: return new Y.Text(randText(g))
    default: {
      const el = new Y.XmlElement(pick(g, XML_NAMES))
      el.setAttribute('class', randText(g))
      return el
    }
  }
}

// A text's content as code units, an embed as one: positions between them that split no
// surrogate pair (a real editor never does; see test_differential's known divergences).
const textUnits = (t) => t.toDelta().map((op) => (typeof op.insert === 'string' ? op.insert : '\uE000')).join('')
const boundaries = (s) => {
  const out = [0]
  for (let i = 1; i <= s.length; i++) {
    const c = s.charCodeAt(i - 1)
    if (!(i < s.length && c >= 0xd800 && c <= 0xdbff)) out.push(i)
  }
  return out
}
const span = (g, s) => {
  const b = boundaries(s)
  const i = prng.int31(g, 0, b.length - 1)
  const j = prng.int31(g, i, Math.min(b.length - 1, i + 4))
  return [b[i], b[j] - b[i]]
}

const textOp = (g, t) => {
  const [pos, len] = span(g, textUnits(t))
  const k = prng.int31(g, 0, 9)
  if (k <= 3) t.insert(pos, randText(g), chance(g, 0.3) ? pick(g, ATTRS) : undefined)
  else if (k <= 5 && len > 0) t.delete(pos, len)
  else if (k <= 7 && len > 0) t.format(pos, len, pick(g, ATTRS))
  else if (k === 8) t.insertEmbed(pos, pick(g, [{ image: 'a.png' }, { formula: 'x^2' }, [1, 2], 42]), chance(g, 0.3) ? pick(g, ATTRS) : undefined)
  else if (chance(g, 0.3)) t.insertEmbed(pos, prelimType(g))
  else t.insert(pos, randText(g))
}

const mapOp = (g, m) => {
  const k = prng.int31(g, 0, 9)
  if (k <= 5) m.set(pick(g, KEYS), mapValue(g))
  else if (k <= 7) m.delete(pick(g, [...m.keys(), 'a']))
  else m.set(pick(g, KEYS), prelimType(g))
}

const arrayOp = (g, a) => {
  const k = prng.int31(g, 0, 9)
  const pos = prng.int31(g, 0, a.length)
  if (k <= 4) a.insert(pos, Array.from({ length: prng.int31(g, 1, 3) }, () => arrayValue(g)))
  else if (k <= 7 && a.length > 0) a.delete(Math.min(pos, a.length - 1), prng.int31(g, 1, Math.min(3, a.length - Math.min(pos, a.length - 1))))
  else a.insert(pos, [prelimType(g)])
}

const xmlOp = (g, x) => {
  const k = prng.int31(g, 0, 9)
  const pos = prng.int31(g, 0, x.length)
  if (k <= 3) {
    const el = new Y.XmlElement(pick(g, XML_NAMES))
    if (chance(g, 0.5)) el.insert(0, [new Y.XmlText(randText(g))])
    x.insert(pos, [el])
  } else if (k <= 5) x.insert(pos, [new Y.XmlText(randText(g))])
  else if (k <= 7 && x.length > 0) x.delete(Math.min(pos, x.length - 1), 1)
  else if (x instanceof Y.XmlElement) {
    if (chance(g, 0.7)) x.setAttribute(pick(g, KEYS.filter((key) => key !== '')), chance(g, 0.8) ? randText(g) : mapValue(g))
    else x.removeAttribute(pick(g, [...Object.keys(x.getAttributes()), 'a']))
  } else x.insert(pos, [new Y.XmlElement(pick(g, XML_NAMES))])
}

// Every live type of a doc, roots and nested.
const liveTypes = (doc) => {
  const out = []
  const visit = (t) => {
    out.push(t)
    const children = t instanceof Y.Map ? [...t.values()] : t instanceof Y.Text ? t.toDelta().map((op) => op.insert) : t instanceof Y.Array || t instanceof Y.XmlFragment ? t.toArray() : []
    if (t instanceof Y.XmlElement || t instanceof Y.XmlText) children.push(...Object.values(t.getAttributes()))
    for (const c of children) if (c instanceof Y.AbstractType) visit(c)
  }
  visit(doc.getText('content'))
  visit(doc.getMap('m'))
  visit(doc.getArray('a'))
  visit(doc.getXmlFragment('x'))
  return out
}

const randomOp = (g, doc) => {
  const t = pick(g, liveTypes(doc))
  if (t instanceof Y.Text) textOp(g, t) // XmlText too
  else if (t instanceof Y.Map) mapOp(g, t)
  else if (t instanceof Y.Array) arrayOp(g, t)
  else xmlOp(g, t)
}

const CLIENT_IDS = [1, 2, 3, 0x7fffffff, 0xffffffff, 2 ** 32 + 5, 2 ** 53 - 1, 2 ** 52 + 7]

const generateSession = (g, steps) => {
  const docs = []
  for (let i = prng.int31(g, 1, 3); i > 0; i--) {
    const doc = new Y.Doc()
    doc.clientID = chance(g, 0.5) ? prng.uint32(g, 0, 0xffffffff) : pick(g, CLIENT_IDS)
    if (docs.some((d) => d.clientID === doc.clientID)) doc.clientID = docs.length + 100
    docs.push(doc)
  }
  const chain = []
  const extras = []
  for (const doc of docs) doc.on('update', (u, origin) => { if (origin !== 'sync') chain.push(u) })
  for (let step = 0; step < steps; step++) {
    if (docs.length > 1 && chance(g, 0.2)) {
      const [a, b] = [pick(g, docs), pick(g, docs)]
      if (a !== b) {
        const diff = Y.encodeStateAsUpdate(a, Y.encodeStateVector(b))
        extras.push({ base: chain.length, update: toB64(diff), kind: 'sync' })
        Y.applyUpdate(b, diff, 'sync')
      }
      continue
    }
    const doc = pick(g, docs)
    doc.transact(() => {
      for (let i = prng.int31(g, 1, 3); i > 0; i--) randomOp(g, doc)
    })
  }
  if (chain.length > 1) {
    const i = prng.int31(g, 0, chain.length - 2)
    const j = prng.int31(g, i + 1, Math.min(chain.length, i + 6))
    extras.push({ base: i, update: toB64(Y.mergeUpdates(chain.slice(i, j))), kind: 'merged' })
  }
  for (const doc of docs) extras.push({ base: 0, update: toB64(Y.encodeStateAsUpdate(doc)), kind: 'state' })
  return { chain: chain.map(toB64), extras }
}

const generate = (msg) => {
  const g = prng.create(msg.seed)
  const sessions = []
  for (let i = 0; i < msg.sessions; i++) sessions.push(generateSession(g, msg.steps))
  return { id: msg.id, ok: true, sessions }
}

// ---------------------------------------------------------------- the loop

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on('line', (line) => {
  if (!line.trim()) return
  let msg
  try {
    msg = JSON.parse(line)
  } catch (err) {
    write({ id: null, ok: false, error: `bad request: ${err.message}` })
    return
  }
  try {
    write(msg.cmd === 'generate' ? generate(msg) : runCase(msg))
  } catch (err) {
    if (process.env.DIFFERENTIAL_DEBUG) process.stderr.write(`${err && err.stack}\n`)
    write({ id: msg.id, ok: false, error: `${err && err.name}: ${err && err.message}` })
  }
})
