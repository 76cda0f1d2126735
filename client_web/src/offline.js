// Offline support: registers the service worker (src/sw.js, served at /sw.js) that keeps a copy
// of the page shells, so that a document can be reopened, or reloaded, while the server is
// unreachable; and waits for the IndexedDB copy to be written before the page reloads itself.

/** The service worker registration, or null where there is none (no support, not a secure context). */
export const registerServiceWorker = async () => {
  if (!('serviceWorker' in navigator)) return null
  try {
    return await navigator.serviceWorker.register('/sw.js', { scope: '/' })
  } catch (error) {
    // the pages work without it: only reloading with no server needs it
    console.info(`Tandem: no offline copy of the page (${error instanceof Error ? error.message : String(error)})`)
    return null
  }
}

/**
 * Until every update y-indexeddb has queued so far is stored in the page's IndexedDB copy (a read
 * transaction on its store starts only after the writes opened before it have finished), e.g.
 * before this page reloads itself.
 *
 * @param {{ db: IDBDatabase | null }} persistence a y-indexeddb IndexeddbPersistence
 * @return {Promise<void>}
 */
export const flushCopy = (persistence) => new Promise((resolve, reject) => {
  if (persistence.db === null) {
    resolve() // never opened: nothing was queued
    return
  }
  const tx = persistence.db.transaction(['updates'], 'readonly')
  tx.objectStore('updates').count()
  tx.oncomplete = () => resolve()
  tx.onerror = () => reject(tx.error)
})
