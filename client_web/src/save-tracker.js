// What is saved, and what is not: the bookkeeping behind the "save-status" indicator.
//
// The server acks durability with the "saved" message (MESSAGE.saved): its payload is one varUint,
// the cumulative number of *this connection's* update-bearing messages (sync step 2 and sync
// update, empty ones included) that are committed to its store. So the client counts the same
// messages as it sends them, per socket:
//
//   sent    update-bearing messages sent on the current socket (reset when a socket is created)
//   acked   the last count the server acked on the current socket
//   server  what the server has saved, as far as this page knows: each message sent is described
//           when it is sent (describeSent: a step 2 carries everything the server lacked, so once
//           it is committed the server holds all of this copy as it was; an update holds what it
//           holds), and each ack adds what the messages it covers hold. It only grows.
//   pending the document's unsaved edits (pending-edits.js): shared by every tab of this browser,
//           each one dropped as soon as some page's `server` holds it, so all tabs show the same
//           count and a closed tab's edits are cleared by whichever page sends them. The status
//           says "Unsaved changes" (the count is in data-pending and the tooltip).
//
// A full ack (`idle()`) is acked === sent on a socket that has already answered the server's sync
// step 1 with its step 2.
//
// This module touches no DOM and no provider: connection.js feeds the tracker what the provider
// does.
import * as decoding from 'lib0/decoding'
import * as Y from 'yjs'
import { MESSAGE, SYNC_STEP } from './protocol.js'
import { EDIT_PAUSE_MS, PendingEdits, docState, editIn } from './pending-edits.js'

export { EDIT_PAUSE_MS }

export const SAVE_TEXT = Object.freeze({
  saving: 'Saving…',
  saved: 'All changes saved',
  local: 'Unsaved changes, kept on this device',
  /** @param {number} n edits (bursts of typing) not yet on the server */
  pendingTitle: (n) => `${n} ${n === 1 ? 'edit' : 'edits'} not on the server yet; they are sent when the connection is back`,
  /** @param {number} n the server refused the page's token: what it cannot save */
  refused: (n) => n === 0
    ? 'No unsaved changes'
    : `${n} unsaved ${n === 1 ? 'change' : 'changes'} — not saved: access refused`,
  refusedTitle: 'Kept on this device; sent once the page is opened with a link the server accepts'
})

/**
 * Kind of an outgoing y-protocols message: 'step1' | 'step2' | 'update' | 'other'.
 *
 * @param {Uint8Array} message
 * @return {string}
 */
export const outgoingKind = (message) => {
  try {
    const decoder = decoding.createDecoder(message)
    if (decoding.readVarUint(decoder) !== MESSAGE.sync) return 'other'
    switch (decoding.readVarUint(decoder)) {
      case SYNC_STEP.step1: return 'step1'
      case SYNC_STEP.step2: return 'step2'
      case SYNC_STEP.update: return 'update'
      default: return 'other'
    }
  } catch {
    return 'other'
  }
}

/**
 * @param {unknown} data what WebSocket#send was given
 * @return {Uint8Array | null}
 */
const asBytes = (data) => {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return null
}

/**
 * What the server holds once a message is committed: `to` (a state vector), taken as it is when
 * `from` is null (a full state) or else only for the clients whose items the server already had
 * up to `from`; and the deletions `ds`.
 *
 * @typedef {{ from: Map<number, number> | null, to: Map<number, number>,
 *             ds: import('yjs').DeleteSet }} SentState
 */

/**
 * The bytes of the Yjs update in a sync step 2 or sync update message.
 *
 * @param {Uint8Array} message
 * @return {Uint8Array}
 */
const updateOf = (message) => {
  const decoder = decoding.createDecoder(message)
  decoding.readVarUint(decoder) // sync
  decoding.readVarUint(decoder) // step 2 or update
  return decoding.readVarUint8Array(decoder)
}

/**
 * Describes what each message sent holds, for `doc`'s tracker.
 *
 * @param {Y.Doc} doc
 * @return {(kind: string, message: Uint8Array) => SentState | null}
 */
export const describeSent = (doc) => (kind, message) => {
  if (kind === 'step2') {
    // y-websocket answers the server's step 1 at once with what it lacks: then it has all of it
    const { sv, ds } = docState(doc)
    return { from: null, to: sv, ds }
  }
  try {
    const update = updateOf(message)
    const { from, to } = Y.parseUpdateMeta(update)
    return { from, to, ds: Y.decodeUpdate(update).ds }
  } catch {
    return null // not an update this page can read: it proves nothing
  }
}

export class SaveTracker {
  /**
   * @param {object} [opts]
   * @param {PendingEdits} [opts.edits] the document's unsaved edits
   * @param {(kind: string, message: Uint8Array) => SentState | null} [opts.describe] what a
   *   message holds (describeSent); without it only full acks count, for edits without witnesses
   * @param {() => void} [opts.onChange] called after any change of the counters
   */
  constructor ({ edits = new PendingEdits(), describe = () => null, onChange = () => {} } = {}) {
    /** @type {WebSocket | null} */
    this.socket = null
    this.sent = 0
    this.acked = 0
    /** Whether the current socket has sent its sync step 2 (the answer to the server's step 1). */
    this.answeredServer = false
    this.edits = edits
    this._describe = describe
    this._onChange = onChange
    /** @type {Array<() => void>} */
    this._settled = []
    /** @type {Array<{ index: number, state: SentState }>} messages of this socket not acked yet */
    this._unacked = []
    this._sv = new Map()
    this._ds = Y.createDeleteSet()
    edits.onRefresh(() => this.reconcile())
  }

  /** The document's unsaved edits (all tabs). */
  get pending () { return this.edits.count }

  /** A new socket was created: acks are per connection, so the counts start again. */
  socketCreated (socket) {
    this.socket = socket
    this.sent = 0
    this.acked = 0
    this.answeredServer = false
    this._unacked = []
    this._onChange()
  }

  /**
   * @param {WebSocket} socket
   * @param {unknown} data
   */
  outgoing (socket, data) {
    if (socket !== this.socket) return
    const bytes = asBytes(data)
    if (bytes === null) return
    const kind = outgoingKind(bytes)
    if (kind === 'step2' || kind === 'update') {
      this.sent++
      if (kind === 'step2') this.answeredServer = true
      const state = this._describe(kind, bytes)
      if (state !== null) this._unacked.push({ index: this.sent, state })
      this._onChange()
    }
  }

  /** The server's "saved" message: `count` update-bearing messages of this socket are durable. */
  ack (count) {
    if (count > this.acked) this.acked = count
    while (this._unacked.length > 0 && this._unacked[0].index <= this.acked) {
      this._hold(/** @type {{ state: SentState }} */ (this._unacked.shift()).state)
    }
    this.reconcile()
  }

  /** @param {SentState} state */
  _hold ({ from, to, ds }) {
    for (const [client, clock] of to) {
      const had = this._sv.get(client) ?? 0
      if (clock > had && (from === null || had >= (from.get(client) ?? 0))) this._sv.set(client, clock)
    }
    if (ds.clients.size > 0) this._ds = Y.mergeDeleteSets([this._ds, ds])
  }

  /** Everything sent on this socket is acked, its step 2 included. */
  idle () {
    return this.answeredServer && this.acked >= this.sent
  }

  /** @return {import('./pending-edits.js').HeldState} what the server has saved */
  serverState () {
    return { sv: this._sv, ds: this._ds, full: this.idle() }
  }

  /** Drops the edits the server holds (after an ack, or when another tab changed the list). */
  reconcile () {
    const server = this.serverState()
    this.edits.settle((edit) => editIn(edit, server)).then(() => {
      for (const listener of this._settled) listener()
    })
    this._onChange()
  }

  /** @param {() => void} listener called after each reconcile, once its drops are stored */
  onSettled (listener) { this._settled.push(listener) }

  /**
   * A local transaction changed the Y.Doc (typing, undo, paste: anything not from a peer).
   *
   * @param {import('./pending-edits.js').Witness | null} [witness] what it made
   */
  localTransaction (witness = null) {
    this.edits.record(witness)
    this._onChange()
  }

  /**
   * @param {boolean} connected whether the socket is open now
   * @return {{ state: 'saving' | 'saved' | 'local' | 'unknown', text: string | null }}
   */
  status (connected) {
    // until the shared list is read, "saved" could be a lie and "unsaved" a guess
    if (!this.edits.loaded && this.pending === 0) return { state: 'unknown', text: null }
    if (connected) {
      return this.acked < this.sent || this.pending > 0
        ? { state: 'saving', text: SAVE_TEXT.saving }
        : { state: 'saved', text: SAVE_TEXT.saved }
    }
    return this.pending > 0
      ? { state: 'local', text: SAVE_TEXT.local }
      : { state: 'saved', text: SAVE_TEXT.saved }
  }
}

/**
 * A WebSocket class for y-websocket's `WebSocketPolyfill` option that reports every socket it
 * creates and every frame sent on it to `tracker`. This is how the client counts what it sends
 * without patching y-websocket.
 *
 * @param {SaveTracker} tracker
 * @param {typeof WebSocket} [Base]
 * @return {typeof WebSocket}
 */
export const countingWebSocket = (tracker, Base = WebSocket) =>
  class CountingWebSocket extends Base {
    /**
     * @param {string | URL} url
     * @param {string | string[]} [protocols]
     */
    constructor (url, protocols) {
      super(url, protocols)
      tracker.socketCreated(this)
    }

    /** @param {any} data */
    send (data) {
      // a socket that is not open discards what it is given: that was not sent
      if (this.readyState === this.OPEN) tracker.outgoing(this, data)
      super.send(data)
    }
  }

/** @typedef {{ get: (key: string) => string | null, set: (key: string, value: string) => void,
 *              remove: (key: string) => void }} PageStorage localStorage that may not work (identity.js) */

/**
 * Where an older version of this page remembered its own count of unsaved edits (read once, to
 * carry them over, then removed).
 *
 * @param {string} name
 */
export const unsavedKey = (name) => `tandem:unsaved:${name}`

/**
 * The page's tracker over the document's shared list of unsaved edits.
 *
 * @param {object} opts
 * @param {string} opts.name the document
 * @param {PageStorage} opts.storage
 * @param {import('./pending-edits.js').EditStore} opts.store the shared list (unsaved-store.js)
 * @param {Y.Doc} [opts.doc] describes what the messages sent hold (without it: full acks only)
 * @param {() => void} opts.onChange
 * @return {{ tracker: SaveTracker, forget: () => Promise<void> }} `forget` deletes the list for
 *   good ("Discard my copy"): nothing is written after it
 */
export const setupSaveTracker = ({ name, storage, store, doc, onChange }) => {
  const edits = new PendingEdits({ store, onChange })
  const tracker = new SaveTracker({ edits, onChange, ...(doc ? { describe: describeSent(doc) } : {}) })
  const key = unsavedKey(name)
  const legacy = Number.parseInt(storage.get(key) || '0', 10)
  storage.remove(key)
  const carried = Number.isSafeInteger(legacy) && legacy > 0 ? Math.min(legacy, 1000) : 0
  if (carried > 0) edits.carry(carried)
  edits.refresh()
  return { tracker, forget: () => edits.forget() }
}

/**
 * Until everything typed here is committed on the server (or `ms` passed).
 *
 * @param {object} opts
 * @param {SaveTracker} opts.tracker
 * @param {() => boolean} opts.connected whether the socket is open now
 * @param {number} [opts.ms]
 * @param {number} [opts.pollMs]
 * @return {Promise<boolean>} true if it is
 */
export const whenSaved = async ({ tracker, connected, ms = 15_000, pollMs = 100 }) => {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (connected() && tracker.status(true).state === 'saved') return true
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
  return false
}
