// Unit tests of the editor page's wiring that needs no browser: the connection's URL and query,
// what the indicators show, the published presence, read-only switching, the remembered unsaved
// count, the copied link and the editor's read-only guards (no DOM: plain objects stand in).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EditorState } from '@codemirror/state'

import { ACK_QUERY_PARAM, CLOSE_CODE, MESSAGE, SYNC_STEP } from '../src/protocol.js'
import { connectWhenLoaded, socketParams, socketUrl, unusualClose } from '../src/connection.js'
import { OFFLINE_TEXT, REFUSAL_TEXT, UNREACHABLE_TEXT, createRedraw, indicatorsOf, refusalText } from '../src/indicators.js'
import { userState } from '../src/presence.js'
import { deletedAccess, readOnlyReason, setupReadOnly } from '../src/read-only.js'
import { accessFor } from '../src/access.js'
import { SAVE_TEXT, setupSaveTracker, unsavedKey, whenSaved } from '../src/save-tracker.js'
import { memoryStore } from '../src/pending-edits.js'
import { shareUrl } from '../src/copy-link.js'
import { editability, isRedoKey, undoKeys } from '../src/editor-view.js'

test('the socket goes to /ws on the page host, wss for https, asking for acks and passing the token on', () => {
  assert.equal(socketUrl({ protocol: 'http:', host: '127.0.0.1:8080' }), 'ws://127.0.0.1:8080/ws')
  assert.equal(socketUrl({ protocol: 'https:', host: 'tandem.example' }), 'wss://tandem.example/ws')
  assert.deepEqual(socketParams(null), { [ACK_QUERY_PARAM]: '1' })
  assert.deepEqual(socketParams(''), { [ACK_QUERY_PARAM]: '1' })
  // the ack parameter first, as y-websocket writes them in order
  assert.deepEqual(Object.entries(socketParams('a.b.c')), [[ACK_QUERY_PARAM, '1'], ['token', 'a.b.c']])
})

test('normal closes and closes without a code are not worth a console line', () => {
  for (const code of [1000, CLOSE_CODE.goingAway, 1005, 1006]) assert.equal(unusualClose({ code }), false, String(code))
  assert.equal(unusualClose(null), false)
  assert.equal(unusualClose(undefined), false)
  for (const code of [1011, CLOSE_CODE.unauthorized, CLOSE_CODE.documentDeleted]) assert.equal(unusualClose({ code }), true, String(code))
})

test('the first connect waits for the IndexedDB copy, or for the timeout', async () => {
  const calls = []
  const provider = { connect: () => calls.push('connect') }
  let load
  connectWhenLoaded({ provider, loaded: new Promise((resolve) => { load = resolve }), onChange: () => calls.push('change'), waitMs: 60_000 })
  await new Promise((resolve) => setTimeout(resolve, 10))
  assert.deepEqual(calls, [])
  load()
  await new Promise((resolve) => setTimeout(resolve, 0))
  assert.deepEqual(calls, ['connect', 'change'])

  const late = []
  connectWhenLoaded({ provider: { connect: () => late.push('connect') }, loaded: new Promise(() => {}), onChange: () => {}, waitMs: 5 })
  await new Promise((resolve) => setTimeout(resolve, 30))
  assert.deepEqual(late, ['connect'])
})

const online = { socketOpen: true, browserOnline: true, failures: 0, refused: false, everOpened: true }
const saved = { state: 'saved', text: SAVE_TEXT.saved }

test('the indicators: connection state, save status, banner', () => {
  assert.deepEqual(indicatorsOf({ connection: online, refusal: null, deleted: false, readOnly: false, save: saved }),
    { connection: 'connected', save: saved, detail: null })

  // offline: the banner says the changes stay here
  const offline = { ...online, socketOpen: false, browserOnline: false }
  const local = { state: 'local', text: SAVE_TEXT.local }
  assert.deepEqual(indicatorsOf({ connection: offline, refusal: null, deleted: false, readOnly: false, save: local }),
    { connection: 'offline', save: local, detail: { text: OFFLINE_TEXT, kind: 'offline' } })
  // online, but the server does not answer: says so, and that the changes stay here
  const unreachable = { ...online, socketOpen: false, failures: 5 }
  assert.deepEqual(indicatorsOf({ connection: unreachable, refusal: null, deleted: false, readOnly: false, save: local }),
    { connection: 'unreachable', save: local, detail: { text: UNREACHABLE_TEXT, kind: 'offline' } })
  // a socket that works without a network (localhost): no banner
  assert.equal(indicatorsOf({ connection: { ...online, browserOnline: false }, refusal: null, deleted: false, readOnly: false, save: saved }).detail, null)

  // read-only: nothing of ours is saved, the save status is hidden (no text)
  assert.deepEqual(indicatorsOf({ connection: online, refusal: null, deleted: false, readOnly: true, save: saved }).save,
    { state: 'readonly', text: null })

  // refused for good: the reason, whatever the network says
  const refusal = { code: CLOSE_CODE.forbidden, reason: 'no' }
  assert.deepEqual(indicatorsOf({ connection: { ...offline, refused: true }, refusal, deleted: false, readOnly: false, save: saved }).detail,
    { text: REFUSAL_TEXT[CLOSE_CODE.forbidden], kind: 'error' })

  // deleted: the panel says it all, no banner and no save status
  const deleted = indicatorsOf({
    connection: { ...offline, refused: true },
    refusal: { code: CLOSE_CODE.documentDeleted, reason: 'document deleted' },
    deleted: true,
    readOnly: true,
    save: local
  })
  assert.deepEqual(deleted.save, { state: 'deleted', text: null })
  assert.equal(deleted.detail, null)
})

test('a refusal without a sentence of its own shows its code and reason', () => {
  assert.equal(refusalText({ code: CLOSE_CODE.unauthorized, reason: 'bad token' }), REFUSAL_TEXT[CLOSE_CODE.unauthorized])
  assert.equal(refusalText({ code: 4499, reason: 'odd' }), 'The server refused this document (code 4499: odd).')
  assert.equal(refusalText({ code: 4499, reason: '' }), 'The server refused this document (code 4499).')
})

test('redraws are coalesced into one microtask, and the drawing can come later', async () => {
  const redraw = createRedraw()
  let draws = 0
  redraw.schedule() // before any drawing: harmless
  redraw.drawWith(() => draws++)
  redraw.schedule()
  redraw.schedule()
  assert.equal(draws, 0)
  await Promise.resolve()
  assert.equal(draws, 1)
  redraw.schedule()
  await Promise.resolve()
  assert.equal(draws, 2)
})

test('the published user alternates its colour spelling on each rename and says when it only views', () => {
  const identity = { id: 'p1', color: '#1d4ed8' }
  assert.deepEqual(userState(identity, 'Ann', 0, false), { name: 'Ann', color: '#1d4ed8', colorLight: '#1d4ed833', id: 'p1' })
  assert.equal(userState(identity, 'Ann B', 1, false).color, '#1d4ed8ff')
  assert.equal(userState(identity, 'Ann C', 2, false).color, '#1d4ed8')
  assert.equal(userState(identity, 'Ann', 0, true).readOnly, true)
  assert.equal('readOnly' in userState(identity, 'Ann', 0, false), false)
})

/** A stand-in for the page's parts: records what read-only switching tells them. */
const readOnlyPage = (role) => {
  const calls = []
  const badge = { hidden: true, title: '' }
  const body = { dataset: {} }
  const readOnly = setupReadOnly({
    role,
    access: accessFor(role),
    badge,
    body,
    editor: { setReadOnly: (value) => calls.push(['editor', value]) },
    presence: { setReadOnly: (value) => calls.push(['presence', value]) },
    history: { applyAccess: (access) => calls.push(['history', access.canRestore]) },
    onChange: () => calls.push(['change'])
  })
  return { readOnly, calls, badge, body }
}

test('read-only switching: the role first, then the server takes rights away', () => {
  const info = console.info
  console.info = () => {}
  try {
    const page = readOnlyPage('admin')
    assert.equal(page.body.dataset.access, 'edit')
    assert.equal(page.badge.hidden, true)
    // nothing switched at first: the editor and presence were created with it
    assert.deepEqual(page.calls, [['history', true], ['change']])

    page.calls.length = 0
    page.readOnly.deny('read-only token')
    assert.deepEqual(page.readOnly.access(), accessFor('admin', true))
    assert.equal(page.body.dataset.access, 'read-only')
    assert.equal(page.badge.hidden, false)
    assert.match(page.badge.title, /does not accept edits from this link/)
    assert.deepEqual(page.calls, [['editor', true], ['presence', true], ['history', false], ['change']])

    page.calls.length = 0
    page.readOnly.deny('again') // once is enough
    assert.deepEqual(page.calls, [])

    page.readOnly.markDeleted()
    assert.match(page.badge.title, /deleted on the server/)
    assert.equal(page.readOnly.access().readOnly, true)

    const reader = readOnlyPage('read')
    assert.equal(reader.body.dataset.access, 'read-only')
    assert.equal(reader.badge.hidden, false)
    assert.match(reader.badge.title, /Your link lets you read/)
  } finally {
    console.info = info
  }
})

test('a deleted document allows reading only, and says so', () => {
  for (const role of ['open', 'read', 'write', 'admin']) {
    const access = deletedAccess(accessFor(role))
    assert.deepEqual({ ...access }, { role, denied: false, readOnly: true, canEdit: false, canSaveVersion: false, canRestore: false })
  }
  assert.match(readOnlyReason({ deleted: true, denied: true, role: 'write' }), /deleted on the server/)
  // a reader told "permission denied" was a reader all along
  assert.match(readOnlyReason({ deleted: false, denied: true, role: 'read' }), /Your link lets you read/)
  assert.match(readOnlyReason({ deleted: false, denied: true, role: 'open' }), /does not accept edits/)
})

/** @return {{ values: Map<string, string>, get: Function, set: Function, remove: Function }} */
const memoryStorage = (entries = []) => {
  const values = new Map(entries)
  return {
    values,
    get: (key) => values.get(key) ?? null,
    set: (key, value) => values.set(key, value),
    remove: (key) => values.delete(key)
  }
}

test('the unsaved edits survive a reload, an older page\'s count is carried over, and "Discard my copy" forgets them', async () => {
  const key = unsavedKey('team/notes')
  assert.equal(key, 'tandem:unsaved:team/notes')
  const storage = memoryStorage([[key, '3']])
  const store = memoryStore()
  let changes = 0
  const saves = setupSaveTracker({ name: 'team/notes', storage, store, onChange: () => changes++ })
  // the older page's count is read once and becomes edits of the shared list
  assert.equal(storage.values.has(key), false)
  await saves.tracker.edits.flushed()
  assert.equal(saves.tracker.pending, 3)
  saves.tracker.localTransaction({ ins: [1, 0], del: null })
  await saves.tracker.edits.flushed()
  assert.equal(saves.tracker.pending, 4)
  assert.ok(changes > 0)

  // a reload (another page) reads the same list
  const again = setupSaveTracker({ name: 'team/notes', storage, store, onChange: () => {} })
  await again.tracker.edits.refresh()
  assert.equal(again.tracker.pending, 4)

  await saves.forget()
  assert.equal(saves.tracker.pending, 0)
  saves.tracker.localTransaction({ ins: [1, 1], del: null })
  await saves.tracker.edits.flushed()
  assert.equal((await store.load()).length, 0)

  for (const junk of ['-2', 'many', '']) {
    const other = setupSaveTracker({ name: 'x', storage: memoryStorage([[unsavedKey('x'), junk]]), store: memoryStore(), onChange: () => {} })
    await other.tracker.edits.flushed()
    assert.equal(other.tracker.pending, 0, junk)
  }
})

test('waiting for saved: true once connected and saved, false after the time is up', async () => {
  const { tracker } = setupSaveTracker({ name: 'w', storage: memoryStorage(), store: memoryStore(), onChange: () => {} })
  await tracker.edits.refresh()
  let connected = false
  assert.equal(await whenSaved({ tracker, connected: () => connected, ms: 30, pollMs: 5 }), false)
  connected = true
  tracker.localTransaction() // not acked yet
  assert.equal(await whenSaved({ tracker, connected: () => connected, ms: 30, pollMs: 5 }), false)
  const waiting = whenSaved({ tracker, connected: () => connected, ms: 2000, pollMs: 5 })
  tracker.socketCreated({})
  tracker.outgoing(tracker.socket, new Uint8Array([MESSAGE.sync, SYNC_STEP.step2, 0]))
  tracker.ack(1)
  assert.equal(await waiting, true)
})

test('the copied link is the editor address with the page\'s own token, if it has one', () => {
  assert.equal(shareUrl('https://tandem.example', 'team/a b'), 'https://tandem.example/d/team/a%20b')
  assert.equal(shareUrl('https://tandem.example', 'team/a b', null), 'https://tandem.example/d/team/a%20b')
  assert.equal(shareUrl('https://tandem.example', 'team/a b', ''), 'https://tandem.example/d/team/a%20b')
  assert.equal(shareUrl('http://127.0.0.1:8000', 'notes', 'aa.bb-_.cc'), 'http://127.0.0.1:8000/d/notes?token=aa.bb-_.cc')
  // whatever a token holds, it stays one query value
  assert.equal(shareUrl('https://t.example', 'n', 'a&b=c#d'), 'https://t.example/d/n?token=a%26b%3Dc%23d')
})

test('a read-only editor refuses input and its undo keys do nothing', () => {
  const readOnly = EditorState.create({ extensions: editability(true) })
  const editable = EditorState.create({ extensions: editability(false) })
  assert.equal(readOnly.readOnly, true)
  assert.equal(editable.readOnly, false)

  assert.ok(undoKeys.length > 0)
  for (const binding of undoKeys) {
    // handled (so the browser does nothing either), without reaching the undo manager
    assert.equal(binding.run({ state: readOnly }), true, binding.key)
  }
})

test('Shift+Ctrl/Cmd+Z is redo whatever case the key has', () => {
  const key = (key, mods) => ({ key, shiftKey: false, ctrlKey: false, metaKey: false, altKey: false, ...mods })
  assert.equal(isRedoKey(key('Z', { shiftKey: true, ctrlKey: true })), true)
  assert.equal(isRedoKey(key('z', { shiftKey: true, ctrlKey: true })), true)
  assert.equal(isRedoKey(key('z', { shiftKey: true, metaKey: true })), true)
  assert.equal(isRedoKey(key('z', { ctrlKey: true })), false)
  assert.equal(isRedoKey(key('z', { shiftKey: true, ctrlKey: true, altKey: true })), false)
  assert.equal(isRedoKey(key('y', { shiftKey: true, ctrlKey: true })), false)
})
