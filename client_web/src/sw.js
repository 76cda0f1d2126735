// Tandem's service worker (served at /sw.js, scope /): lets the pages open with no server.
//
// Only the page shells are cached here: the text of a document comes from its IndexedDB copy
// (y-indexeddb, see editor.js), and edits made offline reach the server when it is back.
//
// - Page navigations (/ and /d/<name>) are network-first: a reachable server always serves the
//   current build. When the network fails, /d/<any name> is answered with the cached editor
//   shell (editor.js reads the name from the address) and / with the cached home page.
// - /static/ files are cache-first: their URLs carry a content hash (?v=…), so a cached copy is
//   never stale. Files that no cached shell refers to any more are dropped.
// - Nothing else (/api/, /ws/, /healthz) is touched.
//
// Copied verbatim into dist/ by build.mjs (it imports nothing).

const CACHE = 'tandem-pages-v1'
/** The editor page without a document name: what server/pages.py serves at /d/<name>. */
const EDITOR_SHELL = '/offline/editor.html'
const HOME = '/'
const SHELLS = [HOME, EDITOR_SHELL]

/** @param {string} html @return {string[]} the /static/ files a page refers to, each once */
const staticRefs = (html) => [...new Set([...html.matchAll(/"(\/static\/[^"]+)"/g)].map((m) => m[1]))]

/** Keep only the /static/ files that a cached shell still refers to. */
const prune = async (cache) => {
  const wanted = new Set()
  for (const shell of SHELLS) {
    const response = await cache.match(shell)
    if (response) for (const ref of staticRefs(await response.text())) wanted.add(new URL(ref, self.location.origin).href)
  }
  for (const request of await cache.keys()) {
    if (new URL(request.url).pathname.startsWith('/static/') && !wanted.has(request.url)) await cache.delete(request)
  }
}

/** Store a fresh copy of a shell, and the /static/ files it needs that are not cached yet. */
const storeShell = async (cache, shell, response) => {
  const html = await response.clone().text()
  await cache.put(shell, response)
  const missing = []
  for (const ref of staticRefs(html)) if (!(await cache.match(ref))) missing.push(ref)
  await cache.addAll(missing)
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE)
    for (const shell of SHELLS) {
      const response = await fetch(shell, { cache: 'no-store' })
      if (!response.ok) throw new Error(`cannot cache ${shell}: HTTP ${response.status}`)
      await storeShell(cache, shell, response)
    }
    await prune(cache)
    await self.skipWaiting()
  })())
})

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name)
    await self.clients.claim()
  })())
})

/** @param {FetchEvent} event @param {string} shell */
const networkFirst = async (event, shell) => {
  const cache = await caches.open(CACHE)
  let response
  try {
    response = await fetch(event.request)
  } catch (error) {
    const cached = await cache.match(shell)
    if (cached) return cached
    throw error
  }
  const html = (response.headers.get('Content-Type') || '').startsWith('text/html')
  if (response.ok && response.type === 'basic' && !response.redirected && html) {
    // refresh the offline copy (a new build), without delaying the page
    event.waitUntil(storeShell(cache, shell, response.clone()).then(() => prune(cache)).catch(() => {}))
  }
  return response
}

/** @param {Request} request */
const cacheFirst = async (request) => {
  const cache = await caches.open(CACHE)
  const cached = await cache.match(request)
  if (cached) return cached
  const response = await fetch(request)
  if (response.ok && response.type === 'basic') await cache.put(request, response.clone())
  return response
}

self.addEventListener('fetch', (event) => {
  const request = event.request
  if (request.method !== 'GET') return
  const url = new URL(request.url)
  if (url.origin !== self.location.origin) return
  if (request.mode === 'navigate') {
    if (url.pathname === HOME) event.respondWith(networkFirst(event, HOME))
    else if (url.pathname.startsWith('/d/')) event.respondWith(networkFirst(event, EDITOR_SHELL))
  } else if (url.pathname.startsWith('/static/')) {
    event.respondWith(cacheFirst(request))
  }
})
