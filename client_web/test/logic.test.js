// Unit tests of the client's pure logic (no browser): `npm test` in client_web.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import * as encoding from 'lib0/encoding'

import {
  MESSAGE, SYNC_STEP, CLOSE_CODE, ACK_QUERY_PARAM, CONTENT_TEXT, AUTH_MESSAGE,
  documentNameProblem, documentPath, documentNameFromPath
} from '../src/protocol.js'
import { EDIT_PAUSE_MS, SaveTracker, SAVE_TEXT, outgoingKind } from '../src/save-tracker.js'
import { PendingEdits } from '../src/pending-edits.js'
import { connectionState, CONNECTION_TEXT, OFFLINE_AFTER_FAILURES } from '../src/connection-status.js'

const contract = JSON.parse(await readFile(new URL('../../shared/protocol.json', import.meta.url), 'utf8'))

/** @param {number[]} varUints */
const frame = (...varUints) => {
  const encoder = encoding.createEncoder()
  for (const n of varUints) encoding.writeVarUint(encoder, n)
  return encoding.toUint8Array(encoder)
}

test('the client takes every number from shared/protocol.json', () => {
  assert.deepEqual(MESSAGE, contract.messageTypes)
  assert.deepEqual(SYNC_STEP, contract.syncSteps)
  assert.deepEqual(CLOSE_CODE, contract.closeCodes)
  assert.deepEqual(AUTH_MESSAGE, contract.authMessages)
  assert.equal(ACK_QUERY_PARAM, contract.ackQueryParam)
  assert.equal(CONTENT_TEXT, contract.contentText)
})

test('document names follow the contract, without .. and outer slashes', () => {
  for (const good of ['a', 'notes/2024-plan.md', 'A~b_c-d.e', 'x'.repeat(200)]) {
    assert.equal(documentNameProblem(good), null, good)
  }
  for (const bad of ['', 'has space', 'x'.repeat(201), 'a/../b', '..', '/a', 'a/', 'é', '<b>', 'a?b', 'a#b']) {
    assert.equal(typeof documentNameProblem(bad), 'string', bad)
  }
})

test('document paths encode each segment and decode back', () => {
  assert.equal(documentPath('team/notes'), '/d/team/notes')
  assert.equal(documentPath('a b/c?d'), '/d/a%20b/c%3Fd')
  assert.equal(documentNameFromPath('/d/team/notes'), 'team/notes')
  assert.equal(documentNameFromPath('/d/a%20b/c%3Fd'), 'a b/c?d')
  assert.equal(documentNameFromPath('/elsewhere'), null)
  assert.equal(documentNameFromPath('/d/%E0%A4%A'), null)
})

test('only sync step 2 and sync update messages are counted as update-bearing', () => {
  assert.equal(outgoingKind(frame(MESSAGE.sync, SYNC_STEP.step1, 0)), 'step1')
  assert.equal(outgoingKind(frame(MESSAGE.sync, SYNC_STEP.step2, 0)), 'step2')
  assert.equal(outgoingKind(frame(MESSAGE.sync, SYNC_STEP.update, 0)), 'update')
  assert.equal(outgoingKind(frame(MESSAGE.awareness, 0)), 'other')
  assert.equal(outgoingKind(new Uint8Array([])), 'other')
})

/** Until the tracker's list has stored every change asked for so far. */
const settled = async (tracker) => {
  for (let i = 0; i < 5; i++) {
    await tracker.edits.flushed()
    await new Promise((resolve) => setTimeout(resolve, 0))
  }
}

test('save status: saving until the server acks everything sent on this socket', async () => {
  const socket = {}
  const tracker = new SaveTracker()
  await tracker.edits.refresh()
  tracker.socketCreated(socket)
  assert.equal(tracker.status(true).text, SAVE_TEXT.saved)
  tracker.outgoing(socket, frame(MESSAGE.sync, SYNC_STEP.step1, 0))
  assert.equal(tracker.sent, 0)
  tracker.outgoing(socket, frame(MESSAGE.sync, SYNC_STEP.step2, 0)) // answer to the server's step 1
  tracker.localTransaction()
  tracker.outgoing(socket, frame(MESSAGE.sync, SYNC_STEP.update, 0))
  assert.equal(tracker.sent, 2)
  assert.equal(tracker.status(true).text, 'Saving…')
  tracker.ack(1)
  await settled(tracker)
  assert.equal(tracker.status(true).text, 'Saving…')
  tracker.ack(2)
  await settled(tracker)
  assert.equal(tracker.pending, 0)
  assert.equal(tracker.status(true).text, 'All changes saved')
})

test('save status: nothing is claimed before the shared list is read', async () => {
  const tracker = new SaveTracker()
  assert.deepEqual(tracker.status(false), { state: 'unknown', text: null })
  await tracker.edits.refresh()
  assert.equal(tracker.status(false).text, SAVE_TEXT.saved)
})

test('save status: edits without witnesses are counted while disconnected and cleared by the next full ack', async () => {
  let clock = 0
  const tracker = new SaveTracker({ edits: new PendingEdits({ now: () => clock }) })
  const first = {}
  tracker.socketCreated(first)
  tracker.localTransaction()
  tracker.outgoing(first, frame(MESSAGE.sync, SYNC_STEP.update, 0))
  // the socket drops before the ack; two more edits, each after a pause
  clock += EDIT_PAUSE_MS
  tracker.localTransaction()
  clock += EDIT_PAUSE_MS
  tracker.localTransaction()
  await settled(tracker)
  assert.equal(tracker.status(false).text, 'Unsaved changes, kept on this device')
  assert.equal(tracker.status(false).state, 'local')
  // a late ack of the old socket is ignored by y-websocket; a new socket starts from zero
  const second = {}
  tracker.socketCreated(second)
  assert.equal(tracker.status(true).text, 'Saving…') // nothing sent yet, but 3 changes unsaved
  tracker.ack(0) // an ack before our step 2 proves nothing
  await settled(tracker)
  assert.equal(tracker.pending, 3)
  tracker.outgoing(second, frame(MESSAGE.sync, SYNC_STEP.step2, 0))
  tracker.ack(1)
  await settled(tracker)
  assert.equal(tracker.pending, 0)
  assert.equal(tracker.status(false).text, 'All changes saved')
  assert.equal(SAVE_TEXT.pendingTitle(1), '1 edit not on the server yet; they are sent when the connection is back')
})

test('save status: a burst of typing is one edit, a pause starts the next', async () => {
  let clock = 0
  const edits = new PendingEdits({ now: () => clock })
  for (let key = 0; key < 20; key++) {
    edits.record({ ins: [7, key], del: null })
    clock += 120 // typing speed
  }
  await edits.flushed()
  assert.equal(edits.count, 1)
  assert.deepEqual(edits.list()[0].ins, [7, 19])
  clock += EDIT_PAUSE_MS
  edits.record({ ins: [7, 20], del: null })
  edits.record({ ins: null, del: [3, 4] })
  await edits.flushed()
  assert.equal(edits.count, 2)
  assert.deepEqual(edits.list()[1], { id: edits.list()[1].id, tab: edits.tab, at: clock, ins: [7, 20], dels: [[3, 4]] })
})

test('sends on a socket that is no longer current are not counted', () => {
  const tracker = new SaveTracker()
  const old = {}
  tracker.socketCreated(old)
  tracker.socketCreated({})
  tracker.outgoing(old, frame(MESSAGE.sync, SYNC_STEP.update, 0))
  assert.equal(tracker.sent, 0)
})

test('connection status rule', () => {
  const facts = { socketOpen: false, browserOnline: true, failures: 0, refused: false, everOpened: false }
  assert.equal(connectionState(facts), 'connecting')
  assert.equal(connectionState({ ...facts, socketOpen: true }), 'connected')
  assert.equal(connectionState({ ...facts, socketOpen: true, browserOnline: false }), 'connected')
  assert.equal(connectionState({ ...facts, everOpened: true }), 'reconnecting')
  assert.equal(connectionState({ ...facts, failures: 1 }), 'reconnecting')
  assert.equal(connectionState({ ...facts, failures: OFFLINE_AFTER_FAILURES - 1 }), 'reconnecting')
  // the network is up but the server does not answer: not "Offline"
  assert.equal(connectionState({ ...facts, failures: OFFLINE_AFTER_FAILURES }), 'unreachable')
  assert.equal(connectionState({ ...facts, failures: OFFLINE_AFTER_FAILURES, browserOnline: false }), 'offline')
  assert.equal(connectionState({ ...facts, browserOnline: false }), 'offline')
  assert.equal(connectionState({ ...facts, refused: true, everOpened: true }), 'offline')
  // a refused token is said as such, whatever the network
  assert.equal(connectionState({ ...facts, refused: true, accessRefused: true, browserOnline: false }), 'refused')
  assert.deepEqual(Object.values(CONNECTION_TEXT), ['Connected', 'Connecting…', 'Reconnecting…', "Can't reach the server", 'Offline', 'Access refused'])
})
