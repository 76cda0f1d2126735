// The edits made in this browser that the server has not confirmed as saved, per document: what
// the save status counts. All the tabs of a document share one list (unsaved-store.js keeps it in
// IndexedDB and tells the other tabs of each change), so they all show the same number, and an
// edit made in a tab that was closed since is still counted until some tab's connection has it
// saved.
//
// An edit is a burst of typing in one tab (no pause of EDIT_PAUSE_MS): a number of keystrokes
// means nothing to anyone. It is not a tally of events: it names the data it made, so whether it
// is saved is decided from data (`editIn`), whichever tab or connection saved it:
//   ins   [client, clock] of the last item it inserted: held by a state whose state vector for
//         `client` is past `clock` (a client's items are integrated in clock order);
//   dels  [client, clock] of one item each of its deletion-only transactions deleted: held by a
//         state whose delete set has that item (kept for the last MAX_DELETION_WITNESSES).
//   legacy counted by an older version of this page, with nothing to check: saved by the next
//         full ack (a state with `full`).
import * as Y from 'yjs'

/** A pause in typing this long (ms) ends one edit: what follows is the next one. */
export const EDIT_PAUSE_MS = 1000

/** How many deletion witnesses an edit keeps (the latest: later ones need the earlier ones). */
export const MAX_DELETION_WITNESSES = 16

/** Edits kept at most per document (a broken or hostile record cannot grow without end). */
export const MAX_EDITS = 10_000

/** @typedef {[number, number]} ItemId an item's client and clock */

/**
 * @typedef {object} Edit
 * @property {string} id
 * @property {string} tab the page that made it
 * @property {number} at when it last grew (ms since the epoch)
 * @property {ItemId | null} ins
 * @property {ItemId[]} dels
 * @property {boolean} [legacy]
 */

/** @typedef {{ ins: ItemId | null, del: ItemId | null }} Witness what one transaction made */

/**
 * What a state (the server's saved one, or this tab's copy) holds.
 *
 * @typedef {object} HeldState
 * @property {Map<number, number>} sv
 * @property {import('yjs').DeleteSet} ds
 * @property {boolean} full a full ack: a sync step 2 and everything after it is saved
 */

/**
 * The witness of a local transaction: its last inserted item, else one item it deleted.
 *
 * @param {{ beforeState: Map<number, number>, afterState: Map<number, number>,
 *           deleteSet: import('yjs').DeleteSet }} transaction
 * @param {number} client the doc's clientID
 * @return {Witness | null} null when it changed nothing
 */
export const transactionWitness = ({ beforeState, afterState, deleteSet }, client) => {
  const before = beforeState.get(client) ?? 0
  const after = afterState.get(client) ?? 0
  if (after > before) return { ins: [client, after - 1], del: null }
  for (const [owner, items] of deleteSet.clients) {
    if (items.length > 0) return { ins: null, del: [owner, items[0].clock] }
  }
  return null
}

/**
 * @param {string} id
 * @param {string} tab
 * @param {Witness | null} witness null: a legacy edit
 * @param {number} at
 * @return {Edit}
 */
export const newEdit = (id, tab, witness, at) => witness === null
  ? { id, tab, at, ins: null, dels: [], legacy: true }
  : { id, tab, at, ins: witness.ins, dels: witness.del ? [witness.del] : [] }

/**
 * The edit once one more transaction of its burst is in it.
 *
 * @param {Edit} edit
 * @param {Witness | null} witness
 * @param {number} at
 * @return {Edit}
 */
export const extendEdit = (edit, witness, at) => {
  if (witness === null) return { ...edit, at }
  const ins = witness.ins === null
    ? edit.ins
    : edit.ins === null || edit.ins[0] !== witness.ins[0] || edit.ins[1] < witness.ins[1] ? witness.ins : edit.ins
  const dels = witness.del === null ? edit.dels : [...edit.dels, witness.del].slice(-MAX_DELETION_WITNESSES)
  return { ...edit, at, ins, dels }
}

/**
 * Whether `state` holds everything `edit` made.
 *
 * @param {Edit} edit
 * @param {HeldState} state
 */
export const editIn = (edit, state) => {
  if (edit.legacy || (edit.ins === null && edit.dels.length === 0)) return state.full
  if (edit.ins !== null && !((state.sv.get(edit.ins[0]) ?? 0) > edit.ins[1])) return false
  return edit.dels.every(([client, clock]) => Y.isDeleted(state.ds, Y.createID(client, clock)))
}

/**
 * What a Y.Doc holds now (its copy: every edit in it could be sent from here).
 *
 * @param {Y.Doc} doc
 * @return {HeldState}
 */
export const docState = (doc) => ({
  sv: Y.decodeStateVector(Y.encodeStateVector(doc)),
  ds: Y.createDeleteSetFromStructStore(doc.store),
  full: true
})

/** @param {unknown} value */
const isItemId = (value) => Array.isArray(value) && value.length === 2 &&
  value.every((n) => Number.isSafeInteger(n) && n >= 0)

/**
 * The edits of a stored record, without anything that is not one (another version's, or junk).
 *
 * @param {unknown} record
 * @return {Edit[]}
 */
export const editsOf = (record) => {
  const edits = /** @type {{ edits?: unknown }} */ (record)?.edits
  if (!Array.isArray(edits)) return []
  return edits.filter((edit) => edit !== null && typeof edit === 'object' &&
    typeof edit.id === 'string' && typeof edit.tab === 'string' && Number.isFinite(edit.at) &&
    (edit.ins === null || isItemId(edit.ins)) && Array.isArray(edit.dels) && edit.dels.every(isItemId) &&
    (edit.legacy === undefined || typeof edit.legacy === 'boolean')
  ).slice(-MAX_EDITS)
}

/**
 * @typedef {object} EditStore the list shared by the tabs (unsaved-store.js, or memoryStore())
 * @property {() => Promise<Edit[]>} load
 * @property {(change: (edits: Edit[]) => Edit[]) => Promise<Edit[]>} change applies `change` to
 *   the stored list atomically (it must not wait for anything) and tells the other tabs when it
 *   changed something; resolves with the list as stored
 * @property {(listener: () => void) => void} subscribe another tab changed the list
 * @property {() => Promise<void>} forget deletes the list
 */

/**
 * A store that only this page sees (no IndexedDB; tests).
 *
 * @param {Edit[]} [initial]
 * @return {EditStore}
 */
export const memoryStore = (initial = []) => {
  let edits = [...initial]
  return {
    load: async () => [...edits],
    change: async (change) => {
      edits = change([...edits])
      return [...edits]
    },
    subscribe: () => {},
    forget: async () => { edits = [] }
  }
}

let tabs = 0

/** An id for this page, unique enough among the tabs of one browser. */
export const newTabId = () => globalThis.crypto?.randomUUID?.() ??
  `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}-${++tabs}`

/**
 * The document's unsaved edits as this page knows them: the shared list as last read or written
 * (`list()`, `count`), changed only through the store, one change at a time, in order.
 */
export class PendingEdits {
  /**
   * @param {object} [opts]
   * @param {EditStore} [opts.store]
   * @param {string} [opts.tab]
   * @param {() => number} [opts.now]
   * @param {() => void} [opts.onChange] the list changed (here or in another tab)
   */
  constructor ({ store = memoryStore(), tab = newTabId(), now = () => Date.now(), onChange = () => {} } = {}) {
    this.store = store
    this.tab = tab
    this._now = now
    this._onChange = onChange
    /** @type {Edit[]} */
    this._edits = []
    /** Whether the list has been read once (until then nothing is known). */
    this.loaded = false
    /** @type {Array<{ change: (edits: Edit[]) => Edit[], adds: number }>} changes not stored yet */
    this._queue = []
    /** Edits those changes add (counted at once: "saved" must not show while they are stored). */
    this._adding = 0
    /** @type {Promise<void>} */
    this._writing = Promise.resolve()
    this._busy = false
    this._stale = false
    this._forgotten = false
    /** This page's current burst, and when it last grew. */
    this._current = ''
    this._last = -Infinity
    this._made = 0
    /** @type {Array<() => void>} */
    this._listeners = []
    store.subscribe(() => { this.refresh() })
  }

  /** @return {Edit[]} */
  list () { return this._edits }

  get count () { return this._edits.length + this._adding }

  /** @param {() => void} listener called after the list was read again (another tab changed it) */
  onRefresh (listener) { this._listeners.push(listener) }

  /** Reads the shared list again. */
  async refresh () {
    try {
      const edits = await this.store.load()
      if (!this._busy && this._queue.length === 0) {
        this._set(edits)
      } else {
        // a change of this page is being stored: read again after it (this read may predate it)
        this._stale = true
        return
      }
      this.loaded = true
    } catch (error) {
      console.info(`Tandem: the list of unsaved edits cannot be read (${error instanceof Error ? error.message : String(error)})`)
      this.loaded = true
    }
    this._onChange()
    for (const listener of this._listeners) listener()
  }

  /**
   * A local transaction: it grows this page's current edit, or starts the next one after a pause
   * (or once the current one is saved).
   *
   * @param {Witness | null} witness null: nothing to check it by (saved by the next full ack)
   * @return {Promise<void>}
   */
  record (witness) {
    const at = this._now()
    const grow = at - this._last < EDIT_PAUSE_MS
    this._last = at
    const known = grow && (this._edits.some((edit) => edit.id === this._current) || this._adding > 0)
    return this._change(known ? 0 : 1, (edits) => {
      const index = grow ? edits.findIndex((edit) => edit.id === this._current) : -1
      if (index >= 0) {
        edits[index] = extendEdit(edits[index], witness, at)
        return edits
      }
      this._current = `${this.tab}:${++this._made}`
      return [...edits, newEdit(this._current, this.tab, witness, at)].slice(-MAX_EDITS)
    })
  }

  /**
   * Adds `count` edits with nothing to check them by (an older page's count, carried over).
   *
   * @param {number} count
   */
  carry (count) {
    const at = this._now()
    return this._change(count, (edits) => [
      ...edits,
      ...Array.from({ length: count }, (_, i) => newEdit(`${this.tab}:carried-${i}`, this.tab, null, at))
    ].slice(-MAX_EDITS))
  }

  /**
   * Drops the edits `saved` says are saved (or lost), from the list as stored when it runs.
   *
   * @param {(edit: Edit) => boolean} saved
   * @return {Promise<void>}
   */
  settle (saved) {
    // nothing of what this page knows is saved: no write (and no other tab woken up for nothing);
    // an edit it does not know yet is checked when it hears of it (refresh)
    if (this._queue.length === 0 && !this._busy && !this._edits.some(saved)) return Promise.resolve()
    return this._change(0, (edits) => edits.filter((edit) => !saved(edit)))
  }

  /** Until every change asked for so far is stored. */
  flushed () { return this._writing }

  /** Deletes the list ("Discard my copy"); nothing is written after it. */
  async forget () {
    this._forgotten = true
    this._queue = []
    this._adding = 0
    await this._writing
    await this.store.forget()
    this._set([])
    this._onChange()
  }

  /**
   * @param {number} adds how many edits `change` adds (as far as this page can tell)
   * @param {(edits: Edit[]) => Edit[]} change
   */
  _change (adds, change) {
    if (this._forgotten) return Promise.resolve()
    this._queue.push({ change, adds })
    this._adding += adds
    if (!this._busy) this._writing = this._drain()
    return this._writing
  }

  async _drain () {
    this._busy = true
    try {
      while (this._queue.length > 0 && !this._forgotten) {
        const changes = this._queue.splice(0)
        /** @param {Edit[]} edits */
        const apply = (edits) => changes.reduce((list, { change }) => change(list), edits)
        let stored
        try {
          stored = await this.store.change(apply)
        } catch (error) {
          // IndexedDB failed (quota, a browser without it): count on in this page at least
          console.info(`Tandem: the list of unsaved edits cannot be stored (${error instanceof Error ? error.message : String(error)})`)
          stored = apply([...this._edits])
        }
        if (this._forgotten) break
        this._adding -= changes.reduce((sum, { adds }) => sum + adds, 0)
        this._set(stored)
        this.loaded = true
        this._onChange()
      }
    } finally {
      this._busy = false
    }
    if (this._stale && !this._forgotten) {
      this._stale = false
      await this.refresh()
    }
  }

  /** @param {Edit[]} edits */
  _set (edits) { this._edits = edits }
}
