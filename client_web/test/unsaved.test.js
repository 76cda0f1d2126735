// Unit tests of the unsaved edits per document (no browser): what an edit is checked by, a list
// shared by several pages, and the tracker deciding from real Yjs documents what the server holds.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'

import { MESSAGE, SYNC_STEP } from '../src/protocol.js'
import {
  EDIT_PAUSE_MS, MAX_DELETION_WITNESSES, PendingEdits, docState, editIn, editsOf, extendEdit,
  memoryStore, newEdit, transactionWitness
} from '../src/pending-edits.js'
import { SaveTracker, describeSent } from '../src/save-tracker.js'

/** The witness of each local transaction of `doc`, in order. */
const witnesses = (doc) => {
  const seen = []
  doc.on('afterTransaction', (transaction) => seen.push(transactionWitness(transaction, doc.clientID)))
  return seen
}

test('an edit is witnessed by its last inserted item, or by an item it deleted', () => {
  const doc = new Y.Doc()
  const seen = witnesses(doc)
  const text = doc.getText('content')
  text.insert(0, 'hello')
  text.delete(0, 2)
  text.insert(3, 'X')
  doc.transact(() => {}) // nothing changed
  assert.deepEqual(seen, [
    { ins: [doc.clientID, 4], del: null },
    { ins: null, del: [doc.clientID, 0] },
    { ins: [doc.clientID, 5], del: null },
    null
  ])
})

test('an edit is in a state once that state holds what it made', () => {
  const doc = new Y.Doc()
  const seen = witnesses(doc)
  const text = doc.getText('content')
  text.insert(0, 'hello')
  const before = docState(doc)
  text.delete(1, 1)
  const after = docState(doc)
  const inserted = newEdit('a', 't', seen[0], 1)
  const deleted = newEdit('b', 't', seen[1], 2)
  assert.equal(editIn(inserted, before), true)
  assert.equal(editIn(deleted, before), false)
  assert.equal(editIn(deleted, after), true)
  const empty = { sv: new Map(), ds: Y.createDeleteSet(), full: false }
  assert.equal(editIn(inserted, empty), false)
  // an edit with nothing to check (an older page's count) waits for a full ack
  const legacy = newEdit('c', 't', null, 3)
  assert.equal(editIn(legacy, empty), false)
  assert.equal(editIn(legacy, { ...empty, full: true }), true)

  // a burst keeps its last insertion and its latest deletions
  let burst = newEdit('d', 't', { ins: [1, 3], del: null }, 0)
  burst = extendEdit(burst, { ins: [1, 9], del: null }, 5)
  burst = extendEdit(burst, { ins: [1, 4], del: null }, 6) // never goes back
  for (let i = 0; i < MAX_DELETION_WITNESSES + 4; i++) burst = extendEdit(burst, { ins: null, del: [2, i] }, 7)
  assert.deepEqual(burst.ins, [1, 9])
  assert.equal(burst.dels.length, MAX_DELETION_WITNESSES)
  assert.deepEqual(burst.dels.at(-1), [2, MAX_DELETION_WITNESSES + 3])
  assert.equal(burst.at, 7)
})

test('a stored record keeps only well-formed edits', () => {
  const good = { id: 'x:1', tab: 'x', at: 5, ins: [1, 2], dels: [[3, 4]] }
  assert.deepEqual(editsOf({ edits: [good] }), [good])
  assert.deepEqual(editsOf(null), [])
  assert.deepEqual(editsOf({ edits: 'many' }), [])
  assert.deepEqual(editsOf({
    edits: [
      good, null, 3, { ...good, id: 1 }, { ...good, ins: [1] }, { ...good, ins: [-1, 2] },
      { ...good, dels: [[1.5, 2]] }, { ...good, at: 'now' }, { ...good, legacy: 'yes' }
    ]
  }), [good])
})

test('pages sharing one list show one count, and a saved edit is gone for all of them', async () => {
  const store = memoryStore()
  // memoryStore tells no one: the pages read it again as another tab's page would when told
  let clock = 0
  const first = new PendingEdits({ store, tab: 'first', now: () => clock })
  const second = new PendingEdits({ store, tab: 'second', now: () => clock })
  await first.record({ ins: [1, 0], del: null })
  clock += 100
  await first.record({ ins: [1, 1], del: null }) // the same burst
  await second.refresh()
  assert.equal(first.count, 1)
  assert.equal(second.count, 1)
  clock += 100
  await second.record({ ins: [2, 0], del: null }) // another tab: another edit
  await first.refresh()
  assert.equal(first.count, 2)
  assert.equal(second.count, 2)

  // one page's ack saves the other page's edit too
  await first.settle((edit) => edit.tab === 'second')
  await second.refresh()
  assert.deepEqual(second.list().map((edit) => edit.id), ['first:1'])
  // the second page types on: its saved edit is gone, so this is a new one
  clock += 100
  await second.record({ ins: [2, 1], del: null })
  assert.equal(second.count, 2)
  // after a pause, the first page starts another edit
  clock += EDIT_PAUSE_MS
  await first.record({ ins: [1, 2], del: null })
  assert.equal(first.count, 3)
  await first.forget()
  await second.refresh()
  assert.equal(second.count, 0)
})

test('an edit counts at once, before the list is stored', () => {
  const edits = new PendingEdits({ store: memoryStore() })
  edits.record({ ins: [1, 0], del: null })
  assert.equal(edits.count, 1)
})

/** @param {Uint8Array} update */
const updateMessage = (update) => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE.sync)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** Answer a server's step 1 (its state vector) the way y-websocket does. */
const step2Message = (doc, serverVector) => {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MESSAGE.sync)
  encoding.writeVarUint(encoder, SYNC_STEP.step2)
  encoding.writeVarUint8Array(encoder, Y.encodeStateAsUpdate(doc, serverVector))
  return encoding.toUint8Array(encoder)
}

test('the tracker drops an edit once an acked message holds it, whichever tab made it', async () => {
  const store = memoryStore()
  const mine = new Y.Doc()
  const theirs = new Y.Doc() // another tab of the same document
  const server = new Y.Doc()
  mine.on('update', (update, origin) => { if (origin !== 'peer') Y.applyUpdate(theirs, update, 'peer') })
  theirs.on('update', (update, origin) => { if (origin !== 'peer') Y.applyUpdate(mine, update, 'peer') })
  const edits = new PendingEdits({ store, tab: 'mine' })
  const their = new PendingEdits({ store, tab: 'theirs' })
  const tracker = new SaveTracker({ edits, describe: describeSent(mine) })
  mine.on('afterTransaction', (tr) => { if (tr.origin !== 'peer') tracker.localTransaction(transactionWitness(tr, mine.clientID)) })
  theirs.on('afterTransaction', (tr) => { if (tr.origin !== 'peer') their.record(transactionWitness(tr, theirs.clientID)) })

  // offline: one edit here, one (a deletion only, later) in the other tab
  mine.getText('content').insert(0, 'mine ')
  theirs.getText('content').insert(0, 'theirs ')
  await their.flushed()
  await new Promise((resolve) => setTimeout(resolve, EDIT_PAUSE_MS + 20))
  theirs.getText('content').delete(0, 1)
  await their.flushed()
  await edits.flushed()
  await edits.refresh()
  assert.equal(edits.count, 3)

  // back online: the server's step 1, our step 2 with all of it, then one more edit of ours
  const socket = {}
  tracker.socketCreated(socket)
  const step2 = step2Message(mine, Y.encodeStateVector(server))
  tracker.outgoing(socket, step2)
  Y.applyUpdate(server, Y.encodeStateAsUpdate(mine, Y.encodeStateVector(server)))
  await new Promise((resolve) => setTimeout(resolve, EDIT_PAUSE_MS + 20))
  let sent = null
  mine.once('update', (update) => { sent = update })
  mine.getText('content').insert(0, '!')
  tracker.outgoing(socket, updateMessage(sent))
  await edits.flushed()
  assert.equal(edits.count, 4)

  // the step 2 is acked: the three edits it held are saved, the last one is not yet
  tracker.ack(1)
  await edits.flushed()
  assert.equal(edits.count, 1)
  assert.deepEqual(edits.list()[0].ins, [mine.clientID, 5])
  await their.refresh()
  assert.equal(their.count, 1)
  tracker.ack(2)
  await edits.flushed()
  assert.equal(edits.count, 0)
  assert.equal(tracker.status(true).text, 'All changes saved')

  // an update whose earlier items the server lacks proves nothing for them
  const gap = new SaveTracker({ edits: new PendingEdits(), describe: describeSent(mine) })
  const loose = new Y.Doc()
  loose.getText('content').insert(0, 'ab')
  let second = null
  loose.once('update', (update) => { second = update })
  loose.getText('content').insert(2, 'c')
  gap.socketCreated(socket)
  gap.outgoing(socket, updateMessage(second))
  gap.ack(1)
  assert.equal(gap.serverState().sv.get(loose.clientID), undefined)
})

test('a message that is not a readable update proves nothing', () => {
  const describe = describeSent(new Y.Doc())
  assert.equal(describe('update', new Uint8Array([MESSAGE.sync, SYNC_STEP.update, 5, 1])), null)
})
