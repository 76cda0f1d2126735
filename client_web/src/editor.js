// The editor page, /d/<document name>.
//
// CodeMirror 6 <- ysync.js (y-codemirror.next with a sync plugin safe for embeds and formats) ->
// Y.Doc (text in the Y.Text named by protocol.json's `contentText`) <- y-websocket -> Tandem
// server, with y-indexeddb keeping an offline copy and y-websocket's BroadcastChannel keeping
// the other tabs of this browser in sync. A document deleted on the server (close code 4410)
// turns the page read-only with what to do with the copy (deleted-document.js).
//
// The service worker (sw.js) keeps the page itself for reloads with no server.
//
// The toolbar's Export menu (export-menu.js) and History panel (history-panel.js) use the HTTP
// API (api.js). The page's `?token=` decides what the page offers (access.js): a token with the
// read role, or the server's "permission denied" auth message, makes the editor read-only
// (read-only.js); a token the server refuses (4401 expired/invalid, 4403) makes it read-only and
// offers to reopen the page with a new link (refused-access.js). The save status counts the
// document's unsaved edits, shared by this browser's tabs (pending-edits.js, unsaved-store.js).
//
// This file only puts the parts together; each setup takes what it uses and returns what the
// others need. For tests: window.tandem = { ydoc, provider, ytext, undoManager, persistence,
// view, tracker, status(), access(), history, preview, embeds(), authors }.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { IndexeddbPersistence } from 'y-indexeddb'

import { CONTENT_TEXT, documentNameFromPath, documentNameProblem } from './protocol.js'
import { countingWebSocket, setupSaveTracker, whenSaved } from './save-tracker.js'
import { loadIdentity, storage } from './identity.js'
import { accessFor, roleOfToken } from './access.js'
import { connectWhenLoaded, socketParams, socketUrl, watchConnection } from './connection.js'
import { setupNameInput, setupPresence } from './presence.js'
import { setupEditorView } from './editor-view.js'
import { createRedraw, setupIndicators, showFatal } from './indicators.js'
import { setupCopyLink, shareUrl } from './copy-link.js'
import { setupShareDialog } from './share-dialog.js'
import { setupNotices } from './notices.js'
import { createApi } from './api.js'
import { setupExportMenu } from './export-menu.js'
import { localExport } from './local-export.js'
import { setupFormatToolbar } from './format-toolbar.js'
import { setupHistoryPanel } from './history-panel.js'
import { setupAuthorsView } from './authors-view.js'
import { setupReadOnly } from './read-only.js'
import { deleteDatabase, setupDeletedDocument } from './deleted-document.js'
import { flushCopy, registerServiceWorker } from './offline.js'
import { sharedUnsavedStore } from './unsaved-store.js'
import { setupRefusedAccess } from './refused-access.js'
import { embedPositions } from './ysync.js'
import { setupImages } from './images.js'
import { setupPreview } from './preview.js'
import { setupTopMenu } from './top-menu.js'
import { setupDocumentMenu } from './document-menu.js'

/** @param {string} id @return {HTMLElement} */
const $ = (id) => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`editor.html lacks #${id}`)
  return element
}

/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ ($(id))

const start = () => {
  const name = documentNameFromPath(window.location.pathname)
  const problem = name === null ? 'This is not a document address.' : documentNameProblem(name)
  document.title = `${name ?? 'Invalid document'} — Tandem`
  $('doc-title').textContent = name ?? ''
  if (name === null || problem !== null) {
    showFatal({ connection: $('connection-status'), detail: $('connection-detail'), editor: $('editor') },
      `Cannot open this document: ${problem}`)
    return
  }
  const token = new URLSearchParams(window.location.search).get('token')
  const role = roleOfToken(token)
  const initialAccess = accessFor(role)

  const ydoc = new Y.Doc()
  const ytext = ydoc.getText(CONTENT_TEXT)
  // everything below reports changes to the indicators, which are set up once it all exists
  const redraw = createRedraw()
  const saves = setupSaveTracker({ name, storage, store: sharedUnsavedStore(name), doc: ydoc, onChange: redraw.schedule })
  const tracker = saves.tracker
  const persistence = new IndexeddbPersistence(`tandem:${name}`, ydoc)
  const provider = new WebsocketProvider(socketUrl(window.location), name, ydoc, {
    connect: false, // connected at the end, once the IndexedDB copy is loaded
    params: socketParams(token),
    WebSocketPolyfill: countingWebSocket(tracker)
    // BroadcastChannel stays on: other tabs of this browser stay in sync even offline
  })
  const awareness = provider.awareness

  // before the editor: its remote carets must only see checked awareness states
  const presence = setupPresence({
    awareness, identity: loadIdentity(), readOnly: initialAccess.readOnly,
    list: $('participants'), count: document.getElementById('participants-count')
  })
  const editor = setupEditorView({ parent: $('editor'), name, ytext, awareness, readOnly: initialAccess.readOnly })
  const { view, undoManager } = editor
  setupFormatToolbar({ bar: $('format-toolbar'), view })
  // Duplicate, Delete (document-menu.js): hidden, and left out of the "⋯" panel, when the token allows neither
  const documentMenu = setupDocumentMenu({
    wrap: $('document-wrap'), button: button('document-menu'), menu: $('document-list'), name, token,
    waitForSaved: () => whenSaved({ tracker, connected: () => provider.wsconnected }),
    forgetLocal: async () => {
      await saves.forget()
      await persistence.destroy()
      await deleteDatabase(persistence.name)
    },
    deleted: () => deletion.isDeleted(),
    fallbackFocus: () => button('top-more')
  })
  setupTopMenu({
    wrap: $('top-more-wrap'), button: button('top-more'), panel: $('top-more-panel'),
    items: [$('export-wrap'), ...(documentMenu ? [$('document-wrap')] : []), $('history-button'), $('copy-link'), $('share-button'), $('theme-select')]
  })
  setupNameInput({ input: /** @type {HTMLInputElement} */ ($('name-input')), presence, done: () => view.focus() })
  setupCopyLink({ button: button('copy-link'), url: shareUrl(window.location.origin, name, token) })
  setupShareDialog({
    button: button('share-button'), name, token,
    // the phone's "⋯" panel has closed by the time the dialog does
    fallbackFocus: () => button('top-more')
  })
  const notify = setupNotices($('notice'))
  const preview = setupPreview({ ytext, view })

  const api = createApi({ name, token })
  setupExportMenu({
    wrap: $('export-wrap'), button: button('export-menu'), menu: $('export-list'), api, notify,
    // with no connection, what this device holds is the text: export it from here
    unreachable: () => !provider.wsconnected,
    local: (format) => localExport({
      format, name, text: ytext.toString(), update: () => Y.encodeStateAsUpdate(ydoc),
      render: /** @type {any} */ (window).tandem?.renderMarkdown
    })
  })
  const waitForSaved = () => whenSaved({ tracker, connected: () => provider.wsconnected })
  const historyPanel = setupHistoryPanel({ api, ytext, waitForSaved, access: initialAccess })
  // "Show authors" (the sidebar): the text coloured by who wrote it, from the server's map
  const authors = setupAuthorsView({
    view, ytext, api, toggle: /** @type {HTMLInputElement} */ ($('show-authors')), legend: $('authors-legend')
  })
  const readOnly = setupReadOnly({
    role, access: initialAccess, badge: $('read-only-badge'), body: document.body,
    editor, presence, history: historyPanel, onChange: redraw.schedule
  })
  const deletion = setupDeletedDocument({
    name,
    token,
    text: () => ytext.toString(),
    discard: async () => {
      await saves.forget()
      await persistence.destroy()
      await deleteDatabase(persistence.name)
    },
    provider,
    history: historyPanel,
    buttons: [button('export-menu'), button('history-button'), button('document-menu')],
    readOnly,
    onChange: redraw.schedule
  })
  const refused = setupRefusedAccess({
    name, token, readOnly, onChange: redraw.schedule,
    flush: () => Promise.all([tracker.edits.flushed(), flushCopy(persistence)])
  })
  setupImages({
    view, ytext, name, token, notify,
    online: () => provider.wsconnected && navigator.onLine !== false,
    canEdit: () => !readOnly.access().readOnly && !deletion.isDeleted()
  })

  // nothing comes from the provider before it connects (below), so listening starts here
  const connection = watchConnection({
    provider, ydoc, persistence, loaded: persistence.whenSynced, tracker,
    canSend: () => !readOnly.access().readOnly,
    onDenied: readOnly.deny, onDeleted: deletion.markDeleted, onRefused: refused.refuse, onChange: redraw.schedule
  })
  const indicators = setupIndicators({
    elements: { connection: $('connection-status'), save: $('save-status'), detail: $('connection-detail') },
    redraw,
    connection,
    tracker,
    readOnly: () => readOnly.access().readOnly,
    deleted: deletion.isDeleted,
    accessRefusal: refused.kind
  })

  connectWhenLoaded({ provider, loaded: persistence.whenSynced, onChange: redraw.schedule })
  registerServiceWorker()

  window.tandem = {
    ydoc,
    provider,
    ytext,
    authors,
    undoManager,
    persistence,
    view,
    tracker,
    history: historyPanel,
    preview,
    /** The preview's HTML of the text, for the offline web-page export (null when not shown). */
    renderMarkdown: preview.renderMarkdown,
    /** Where the editor draws embeds (positions of their placeholders). */
    embeds: () => embedPositions(view.state),
    /** What this page may do: { role, denied, readOnly, canEdit, canSaveVersion, canRestore }. */
    access: () => ({ ...readOnly.access() }),
    /** Everything the indicators show, for tests. */
    status: indicators.status
  }
  if (!readOnly.access().readOnly) view.focus()
}

start()
