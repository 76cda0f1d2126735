// What is saved, and what is not: the bookkeeping behind the "save-status" indicator.
//
// The server acks durability with the "saved" message (MESSAGE.saved): its payload is one varUint,
// the cumulative number of *this connection's* update-bearing messages (sync step 2 and sync
// update, empty ones included) that are committed to its store. So the client counts the same
// messages as it sends them, per socket:
//
//   sent   - update-bearing messages sent on the current socket (reset when a socket is created)
//   acked  - the last count the server acked on the current socket
//   pending - local edits made since the last *full* ack, counted as a person sees them: a burst
//             of typing with no pause of EDIT_PAUSE_MS is one edit, not one per key. y-indexeddb
//             keeps them on this device meanwhile. Remembered in localStorage so a reload while
//             offline still tells the truth. The status says "Unsaved changes" (the count is in
//             data-pending and the tooltip): a number of keystrokes meant nothing to anyone.
//
// A full ack is acked === sent on a socket that has already answered the server's sync step 1
// with its step 2: that step 2 carries everything the server lacked (offline edits included),
// so once it and every later update are committed, nothing local is unsaved any more.
//
// This module touches no DOM and no provider: connection.js feeds the tracker what the provider
// does, and the page's localStorage comes in as a parameter.
import * as decoding from 'lib0/decoding'
import { MESSAGE, SYNC_STEP } from './protocol.js'

export const SAVE_TEXT = Object.freeze({
  saving: 'Saving…',
  saved: 'All changes saved',
  local: 'Unsaved changes, kept on this device',
  /** @param {number} n edits (bursts of typing) not yet on the server */
  pendingTitle: (n) => `${n} ${n === 1 ? 'edit' : 'edits'} not on the server yet; they are sent when the connection is back`
})

/** A pause in typing this long (ms) ends one edit: what follows is the next one. */
export const EDIT_PAUSE_MS = 1000

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

export class SaveTracker {
  /**
   * @param {object} opts
   * @param {number} [opts.pending] local transactions not yet known to be saved (e.g. restored)
   * @param {(pending: number) => void} [opts.onPendingChange] to remember `pending` across reloads
   * @param {() => void} [opts.onChange] called after any change of the counters
   * @param {() => number} [opts.now] the clock (ms), for the pauses between edits
   */
  constructor ({ pending = 0, onPendingChange = () => {}, onChange = () => {}, now = () => Date.now() } = {}) {
    /** @type {WebSocket | null} */
    this.socket = null
    this.sent = 0
    this.acked = 0
    /** Whether the current socket has sent its sync step 2 (the answer to the server's step 1). */
    this.answeredServer = false
    this.pending = pending
    this._onPendingChange = onPendingChange
    this._onChange = onChange
    this._now = now
    this._lastLocal = -Infinity
  }

  /** A new socket was created: acks are per connection, so the counts start again. */
  socketCreated (socket) {
    this.socket = socket
    this.sent = 0
    this.acked = 0
    this.answeredServer = false
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
      this._onChange()
    }
  }

  /** The server's "saved" message: `count` update-bearing messages of this socket are durable. */
  ack (count) {
    if (count > this.acked) this.acked = count
    if (this.answeredServer && this.acked >= this.sent && this.pending !== 0) {
      this._setPending(0)
    }
    this._onChange()
  }

  /**
   * A local transaction changed the Y.Doc (typing, undo, paste: anything not from a peer). It
   * starts a new edit after a pause, or when nothing was pending.
   */
  localTransaction () {
    const at = this._now()
    if (this.pending === 0 || at - this._lastLocal >= EDIT_PAUSE_MS) this._setPending(this.pending + 1)
    this._lastLocal = at
    this._onChange()
  }

  /** @param {number} n */
  _setPending (n) {
    this.pending = n
    this._onPendingChange(n)
  }

  /**
   * @param {boolean} connected whether the socket is open now
   * @return {{ state: 'saving' | 'saved' | 'local', text: string }}
   */
  status (connected) {
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
 * Where a document's `pending` count is remembered across reloads.
 *
 * @param {string} name
 */
export const unsavedKey = (name) => `tandem:unsaved:${name}`

/**
 * The page's tracker, its `pending` count restored from `storage` and written back on change.
 *
 * @param {object} opts
 * @param {string} opts.name the document
 * @param {PageStorage} opts.storage
 * @param {() => void} opts.onChange
 * @return {{ tracker: SaveTracker, forget: () => void }} `forget` drops the remembered count
 *   for good ("Discard my copy"): nothing is written back after it
 */
export const setupSaveTracker = ({ name, storage, onChange }) => {
  const key = unsavedKey(name)
  const restored = Number.parseInt(storage.get(key) || '0', 10)
  let forgotten = false
  const tracker = new SaveTracker({
    pending: Number.isFinite(restored) && restored > 0 ? restored : 0,
    onPendingChange: (n) => { if (!forgotten) storage.set(key, String(n)) },
    onChange
  })
  return {
    tracker,
    forget () {
      forgotten = true
      storage.remove(key)
    }
  }
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
