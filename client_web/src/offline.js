// Registers the service worker (src/sw.js, served at /sw.js) that keeps a copy of the page
// shells, so that a document can be reopened, or reloaded, while the server is unreachable.

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
