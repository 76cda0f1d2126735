// Where a document's unsaved edits (pending-edits.js) are kept for all the tabs of this browser:
// the IndexedDB database `tandem-unsaved`, one record per document name, changed only inside
// readwrite transactions (two tabs changing it at once are put one after the other, so neither
// change is lost), and the BroadcastChannel `tandem-unsaved:<name>`, on which a tab that changed
// the record tells the others to read it again.
//
// Without IndexedDB (a browser that refuses it) the list lives in this page only.
import { editsOf, memoryStore } from './pending-edits.js'

export const UNSAVED_DB = 'tandem-unsaved'
const STORE = 'documents'

/**
 * @param {() => void} gone the database was closed (this page opens it again when it needs it)
 * @return {Promise<IDBDatabase>}
 */
const openDatabase = (gone) => new Promise((resolve, reject) => {
  const request = window.indexedDB.open(UNSAVED_DB, 1)
  request.onupgradeneeded = () => { request.result.createObjectStore(STORE) }
  request.onsuccess = () => {
    const db = request.result
    // a newer page (or a deletion of the database) wants it: let it
    db.onversionchange = () => {
      db.close()
      gone()
    }
    db.onclose = gone
    resolve(db)
  }
  request.onerror = () => reject(request.error)
  request.onblocked = () => reject(new Error('the database is held by an older page'))
})

/**
 * @param {import('./pending-edits.js').Edit[]} a
 * @param {import('./pending-edits.js').Edit[]} b
 */
const sameEdits = (a, b) => a.length === b.length && JSON.stringify(a) === JSON.stringify(b)

/**
 * The shared store of `name`'s unsaved edits.
 *
 * @param {string} name
 * @return {import('./pending-edits.js').EditStore & { close?: () => void }}
 */
export const sharedUnsavedStore = (name) => {
  if (typeof window === 'undefined' || !window.indexedDB) return memoryStore()
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(`tandem-unsaved:${name}`) : null
  /** @type {Promise<IDBDatabase> | null} */
  let opening = null
  const database = () => {
    if (opening === null) {
      opening = openDatabase(() => { opening = null }).catch((error) => {
        opening = null
        throw error
      })
    }
    return opening
  }

  /**
   * @template T
   * @param {IDBTransactionMode} mode
   * @param {(store: IDBObjectStore, done: (value: T) => void) => void} body
   * @return {Promise<T>}
   */
  const transact = async (mode, body) => {
    const db = await database()
    return new Promise((resolve, reject) => {
      const tx = db.transaction([STORE], mode)
      /** @type {T} */
      let result
      body(tx.objectStore(STORE), (value) => { result = value })
      tx.oncomplete = () => resolve(result)
      tx.onerror = () => reject(tx.error)
      tx.onabort = () => reject(tx.error ?? new Error('the transaction was aborted'))
    })
  }

  const tellOthers = () => channel?.postMessage('changed')

  return {
    load: () => transact('readonly', (store, done) => {
      const request = store.get(name)
      request.onsuccess = () => done(editsOf(request.result))
    }),
    async change (change) {
      let changed = false
      const edits = await transact('readwrite', (store, done) => {
        const request = store.get(name)
        request.onsuccess = () => {
          const before = editsOf(request.result)
          const after = change([...before])
          changed = !sameEdits(before, after)
          if (changed) {
            if (after.length === 0) store.delete(name)
            else store.put({ edits: after }, name)
          }
          done(after)
        }
      })
      if (changed) tellOthers()
      return /** @type {import('./pending-edits.js').Edit[]} */ (edits)
    },
    subscribe (listener) {
      if (channel !== null) channel.onmessage = () => listener()
    },
    async forget () {
      await transact('readwrite', (store, done) => {
        store.delete(name)
        done(undefined)
      })
      tellOthers()
    },
    close: () => channel?.close()
  }
}

/**
 * Forgets `name`'s unsaved edits, for a page that deletes this device's copy of the document
 * without an editor open on it (the other tabs are told).
 *
 * @param {string} name
 * @return {Promise<void>}
 */
export const forgetUnsavedEdits = async (name) => {
  const store = sharedUnsavedStore(name)
  try {
    await store.forget()
  } finally {
    store.close?.()
  }
}
