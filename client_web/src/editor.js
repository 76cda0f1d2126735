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
// read role, or the server's "permission denied" auth message, makes the editor read-only.
//
// For tests: window.tandem = { ydoc, provider, ytext, undoManager, persistence, view, tracker,
// status(), access(), history, embeds() }.
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { WebsocketProvider } from 'y-websocket'
import { IndexeddbPersistence } from 'y-indexeddb'
import { removeAwarenessStates } from 'y-protocols/awareness'
import { yUndoManagerKeymap } from 'y-codemirror.next'
import { Compartment, EditorState, Prec } from '@codemirror/state'
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter,
  highlightSpecialChars, drawSelection, dropCursor
} from '@codemirror/view'
import { defaultKeymap, indentWithTab } from '@codemirror/commands'
import { indentOnInput, LanguageSupport } from '@codemirror/language'
import { searchKeymap, highlightSelectionMatches } from '@codemirror/search'
import { markdownLanguage, markdownKeymap, pasteURLAsLink } from '@codemirror/lang-markdown'

import {
  ACK_QUERY_PARAM, CLOSE_CODE, CONTENT_TEXT, MESSAGE,
  documentNameFromPath, documentNameProblem, documentPath
} from './protocol.js'
import { SaveTracker, countingWebSocket } from './save-tracker.js'
import { CONNECTION_TEXT, connectionState } from './connection-status.js'
import { loadIdentity, saveName, cleanName, lightColor, storage } from './identity.js'
import { participantsOf, renderParticipants, sanitizeAwareness } from './participants.js'
import { accessFor, readAuthMessage, roleOfToken } from './access.js'
import { createApi } from './api.js'
import { setupExportMenu } from './export-menu.js'
import { setupHistoryPanel } from './history-panel.js'
import { editorTheme } from './editor-theme.js'
import { registerServiceWorker } from './offline.js'
import { embedPositions, safeCollab } from './ysync.js'
import { deleteDatabase, setupDeletedPanel } from './deleted-document.js'

// Markdown (GitHub flavour) without lang-markdown's `markdown()` helper: that one pulls in the
// HTML, CSS and JavaScript parsers for embedded HTML, tripling the bundle for little gain.
const markdown = () => new LanguageSupport(markdownLanguage, [
  Prec.high(keymap.of(markdownKeymap)), // Enter continues lists and quotes
  pasteURLAsLink
])

/** Wait at most this long for the IndexedDB copy before connecting anyway. */
const INDEXEDDB_WAIT_MS = 2000

/** @param {string} id @return {HTMLElement} */
const $ = (id) => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`editor.html lacks #${id}`)
  return element
}

/** Why a server refused the connection for good (close codes 4400-4499). */
const REFUSAL_TEXT = {
  [CLOSE_CODE.unauthorized]: 'The server needs a valid access token to open this document. Ask for a link that includes one.',
  [CLOSE_CODE.forbidden]: 'You are not allowed to open this document.',
  [CLOSE_CODE.badDocumentName]: 'The server does not accept this document name.',
  // shown in the document-deleted panel instead of the banner (see deleted-document.js)
  [CLOSE_CODE.documentDeleted]: 'This document was deleted on the server.'
}

/** @param {string} message */
const showFatal = (message) => {
  const detail = $('connection-detail')
  detail.textContent = message
  detail.dataset.kind = 'error'
  detail.hidden = false
  $('connection-status').textContent = CONNECTION_TEXT.offline
  $('connection-status').dataset.state = 'offline'
  $('editor').classList.add('editor-unavailable')
}

const start = () => {
  const name = documentNameFromPath(window.location.pathname)
  const problem = name === null ? 'This is not a document address.' : documentNameProblem(name)
  document.title = `${name ?? 'Invalid document'} — Tandem`
  $('doc-title').textContent = name ?? ''
  if (name === null || problem !== null) {
    showFatal(`Cannot open this document: ${problem}`)
    return
  }

  const identity = loadIdentity()
  const ydoc = new Y.Doc()
  const ytext = ydoc.getText(CONTENT_TEXT)

  // --- save bookkeeping (see save-tracker.js) -------------------------------------------------
  const pendingKey = `tandem:unsaved:${name}`
  const restoredPending = Number.parseInt(storage.get(pendingKey) || '0', 10)
  // set once "Discard my copy" has forgotten this document's copy: nothing is written back
  let discarded = false
  const tracker = new SaveTracker({
    pending: Number.isFinite(restoredPending) && restoredPending > 0 ? restoredPending : 0,
    onPendingChange: (n) => { if (!discarded) storage.set(pendingKey, String(n)) },
    onChange: () => scheduleRender()
  })

  // --- offline copy ---------------------------------------------------------------------------
  const persistence = new IndexeddbPersistence(`tandem:${name}`, ydoc)

  // --- server connection ----------------------------------------------------------------------
  const pageParams = new URLSearchParams(window.location.search)
  /** @type {Record<string, string>} */
  const params = { [ACK_QUERY_PARAM]: '1' }
  const token = pageParams.get('token')
  if (token) params.token = token
  const wsScheme = window.location.protocol === 'https:' ? 'wss' : 'ws'
  const provider = new WebsocketProvider(`${wsScheme}://${window.location.host}/ws`, name, ydoc, {
    connect: false, // connected below, once the IndexedDB copy is loaded
    params,
    WebSocketPolyfill: countingWebSocket(tracker)
    // BroadcastChannel stays on: other tabs of this browser stay in sync even offline
  })
  // the "saved" ack: one varUint, the cumulative count of committed update-bearing messages
  provider.messageHandlers[MESSAGE.saved] = (_encoder, decoder) => {
    tracker.ack(decoding.readVarUint(decoder))
  }

  // --- what this page may do (see access.js) --------------------------------------------------
  const role = roleOfToken(token)
  let access = accessFor(role)
  // y-protocols' auth message: "permission denied" means this connection's edits are dropped
  provider.messageHandlers[MESSAGE.auth] = (_encoder, decoder) => {
    const { denied, reason } = readAuthMessage(decoder)
    if (denied && !access.denied) {
      console.info(`Tandem: the server does not accept edits from this page${reason ? ` (${reason})` : ''}`)
      setAccess(accessFor(role, true))
    }
  }

  // Local transactions are everything that did not come from a peer (WebSocket or another tab,
  // both arrive with the provider as origin) or from the IndexedDB copy.
  ydoc.on('update', (_update, origin) => {
    if (origin !== provider && origin !== persistence) tracker.localTransaction()
  })

  // --- connection facts for the status rule (see connection-status.js) ------------------------
  let everOpened = false
  /** @type {{ code: number, reason: string } | null} */
  let refusal = null
  /** The server deleted this document (4410): read-only, no reconnecting, see markDeleted. */
  let deleted = false
  provider.on('status', ({ status }) => {
    if (status === 'connected') everOpened = true
    scheduleRender()
  })
  provider.on('connection-close', (event) => {
    // 1005/1006: no code (network loss, a socket that never opened); 1000/1001: normal, going away
    if (event && event.code > CLOSE_CODE.goingAway && event.code !== 1005 && event.code !== 1006) {
      console.info(`Tandem: connection closed (code ${event.code}${event.reason ? `: ${event.reason}` : ''})`)
    }
    scheduleRender()
  })
  provider.on('connection-error', () => scheduleRender())
  provider.on('sync', () => scheduleRender())
  provider.on('closed', (event) => {
    refusal = event
    if (event.code === CLOSE_CODE.documentDeleted) markDeleted()
    scheduleRender()
  })
  window.addEventListener('offline', () => {
    // The network is gone: a socket that still looks open is most likely dead, and y-websocket's
    // watchdog would need 30 s to notice. Close it; y-websocket retries on its own backoff.
    if (provider.ws) provider.ws.close()
    scheduleRender()
  })
  window.addEventListener('online', () => {
    // Back online: try now instead of waiting for the backoff timer.
    if (provider.shouldConnect && !provider.wsconnected) {
      provider.wsUnsuccessfulReconnects = 0
      if (provider.ws === null) provider.connect()
    }
    scheduleRender()
  })

  // --- presence -------------------------------------------------------------------------------
  const awareness = provider.awareness
  // Registered before the editor's own listener, so the caret labels only see checked states.
  awareness.on('change', (/** @type {{ added: number[], updated: number[] }} */ { added, updated }) => {
    sanitizeAwareness(awareness, [...added, ...updated])
  })
  let renames = 0
  /** @param {string} displayName */
  const publishUser = (displayName) => {
    // y-codemirror.next redraws a remote caret label only when its colour string changes, so each
    // rename alternates between '#rrggbb' and the identical-looking '#rrggbbff'.
    const color = renames % 2 === 0 ? identity.color : identity.color + 'ff'
    awareness.setLocalStateField('user', {
      name: displayName,
      color,
      colorLight: lightColor(identity.color),
      id: identity.id,
      ...(access.readOnly ? { readOnly: true } : {})
    })
  }
  publishUser(identity.name)
  let currentName = identity.name

  const participantsList = $('participants')
  const participantsCount = document.getElementById('participants-count')
  const drawParticipants = () =>
    renderParticipants(participantsList, participantsCount, participantsOf(awareness, identity.id))
  awareness.on('change', drawParticipants)
  drawParticipants()
  // leave the participants lists of the others (and of the other tabs) at once
  window.addEventListener('pagehide', () => {
    removeAwarenessStates(awareness, [ydoc.clientID], 'page closed')
  })
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) publishUser(currentName) // back from the back/forward cache
  })

  const nameInput = /** @type {HTMLInputElement} */ ($('name-input'))
  nameInput.value = currentName
  /** @param {string} raw */
  const rename = (raw) => {
    const cleaned = cleanName(raw)
    if (!cleaned || cleaned === currentName) return
    currentName = cleaned
    renames++
    saveName(cleaned)
    publishUser(cleaned)
  }
  nameInput.addEventListener('input', () => rename(nameInput.value))
  nameInput.addEventListener('change', () => {
    if (!cleanName(nameInput.value)) nameInput.value = currentName
  })
  nameInput.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault()
      view.focus()
    }
  })
  window.addEventListener('storage', (event) => {
    // renamed in another tab of this browser
    if (event.key === 'tandem:name' && event.newValue) {
      const cleaned = cleanName(event.newValue)
      if (cleaned && cleaned !== currentName) {
        if (document.activeElement !== nameInput) nameInput.value = cleaned
        currentName = cleaned
        renames++
        publishUser(cleaned)
      }
    }
  })

  // --- editor ---------------------------------------------------------------------------------
  // Undo/redo only what this editor typed: the UndoManager tracks no origin of its own, and
  // yCollab adds exactly its local sync origin. Remote edits (origin: the provider) and the
  // IndexedDB load (origin: the persistence) are never undone.
  const undoManager = new Y.UndoManager(ytext, { trackedOrigins: new Set() })
  // read-only: CodeMirror refuses input (readOnly) and the text is not editable at all (editable)
  const editability = new Compartment()
  /** @param {boolean} readOnly */
  const editabilityExtensions = (readOnly) => [
    EditorState.readOnly.of(readOnly),
    EditorView.editable.of(!readOnly),
    EditorView.contentAttributes.of({ 'aria-readonly': String(readOnly) })
  ]
  // undo and redo change the Y.Text directly: never from a read-only editor
  const undoKeys = yUndoManagerKeymap.map((binding) => ({
    ...binding,
    run: (/** @type {EditorView} */ v) => (v.state.readOnly ? true : binding.run(v))
  }))
  // the text with one placeholder per embed (see ysync.js), and the binding itself
  const collab = safeCollab(ytext, awareness, { undoManager })
  const view = new EditorView({
    parent: $('editor'),
    state: EditorState.create({
      doc: collab.doc,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        drawSelection(),
        dropCursor(),
        indentOnInput(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        EditorView.lineWrapping,
        markdown(),
        editorTheme,
        // the yjs undo keys come first: CodeMirror's own history is not loaded at all
        keymap.of([...undoKeys, ...defaultKeymap, ...searchKeymap, indentWithTab]),
        editability.of(editabilityExtensions(access.readOnly)),
        collab.extensions,
        // Shift+Ctrl/Cmd+Z is redo whatever case the event's key has: synthetic key events (test
        // drivers) report 'z' with Shift, which CodeMirror would read as Ctrl-z, i.e. undo.
        Prec.highest(EditorView.domEventHandlers({
          keydown (event) {
            if (event.shiftKey && (event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === 'z') {
              event.preventDefault()
              if (!view.state.readOnly) undoManager.redo()
              return true
            }
            return false
          },
          // the browser's own undo/redo (Ctrl+Z in a non-editable editor, the Edit menu) would
          // reach yCollab's beforeinput handler, which undoes even in a read-only editor
          beforeinput (event) {
            if ((event.inputType === 'historyUndo' || event.inputType === 'historyRedo') && view.state.readOnly) {
              event.preventDefault()
              return true
            }
            return false
          }
        })),
        EditorView.contentAttributes.of({ 'aria-label': `Text of ${name}` })
      ]
    })
  })

  // --- indicators -----------------------------------------------------------------------------
  const connectionElement = $('connection-status')
  const saveElement = $('save-status')
  const detailElement = $('connection-detail')
  let renderQueued = false
  // Rendered in a microtask: y-websocket updates its failure count after emitting its events.
  function scheduleRender () {
    if (renderQueued) return
    renderQueued = true
    queueMicrotask(() => {
      renderQueued = false
      render()
    })
  }
  const connectionFacts = () => ({
    socketOpen: provider.wsconnected,
    browserOnline: navigator.onLine,
    failures: provider.wsUnsuccessfulReconnects,
    refused: refusal !== null,
    everOpened
  })
  const render = () => {
    const state = connectionState(connectionFacts())
    if (connectionElement.dataset.state !== state) {
      connectionElement.dataset.state = state
      connectionElement.textContent = CONNECTION_TEXT[state]
    }
    if (deleted) {
      // nothing is saved any more: the panel says what happens to the copy
      saveElement.hidden = true
      saveElement.dataset.state = 'deleted'
    } else if (access.readOnly) {
      // nothing of ours is saved: a read-only connection's messages are never acked
      saveElement.hidden = true
      saveElement.dataset.state = 'readonly'
    } else {
      const save = tracker.status(provider.wsconnected)
      if (saveElement.textContent !== save.text) saveElement.textContent = save.text
      saveElement.hidden = false
      saveElement.dataset.state = save.state
    }
    saveElement.dataset.pending = String(tracker.pending)
    if (deleted) {
      detailElement.hidden = true // the document-deleted panel says it, with what to do
    } else if (refusal !== null) {
      detailElement.textContent = REFUSAL_TEXT[refusal.code] ??
        `The server refused this document (code ${refusal.code}${refusal.reason ? `: ${refusal.reason}` : ''}).`
      detailElement.dataset.kind = 'error'
      detailElement.hidden = false
    } else if (!navigator.onLine && !provider.wsconnected) {
      detailElement.textContent = 'You are offline. Keep writing: your changes stay on this device and are sent when the connection is back.'
      detailElement.dataset.kind = 'offline'
      detailElement.hidden = false
    } else {
      detailElement.hidden = true
    }
  }
  render()

  // --- copy link ------------------------------------------------------------------------------
  const copyButton = /** @type {HTMLButtonElement} */ ($('copy-link'))
  const copyLabel = copyButton.textContent
  // The link carries no token: whoever opens it brings their own.
  const shareUrl = window.location.origin + documentPath(name)
  copyButton.dataset.url = shareUrl
  let copyTimer = 0
  copyButton.addEventListener('click', async () => {
    let copied = false
    try {
      await navigator.clipboard.writeText(shareUrl)
      copied = true
    } catch {
      // no async clipboard (plain http on another host): the old way
      const field = document.createElement('textarea')
      field.value = shareUrl
      field.setAttribute('readonly', '')
      field.className = 'offscreen'
      document.body.append(field)
      field.select()
      try { copied = document.execCommand('copy') } catch { copied = false }
      field.remove()
    }
    copyButton.textContent = copied ? 'Link copied' : 'Copy failed'
    copyButton.dataset.copied = String(copied)
    window.clearTimeout(copyTimer)
    copyTimer = window.setTimeout(() => {
      copyButton.textContent = copyLabel
      delete copyButton.dataset.copied
    }, 2000)
  })

  // --- notices (export results, errors) ------------------------------------------------------
  const noticeElement = $('notice')
  let noticeTimer = 0
  /** @param {string} text @param {'info' | 'error'} [kind] */
  const notify = (text, kind = 'info') => {
    noticeElement.textContent = text
    noticeElement.dataset.kind = kind
    noticeElement.hidden = false
    window.clearTimeout(noticeTimer)
    noticeTimer = window.setTimeout(() => { noticeElement.hidden = true }, kind === 'error' ? 12_000 : 5_000)
  }
  noticeElement.addEventListener('click', () => { noticeElement.hidden = true })

  // --- export and history ---------------------------------------------------------------------
  const api = createApi({ name, token })
  setupExportMenu({
    wrap: $('export-wrap'),
    button: /** @type {HTMLButtonElement} */ ($('export-menu')),
    menu: $('export-list'),
    api,
    notify
  })
  /** Until everything typed here is committed on the server (or `ms` passed): true if it is. */
  const waitForSaved = async (ms = 15_000) => {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      if (provider.wsconnected && tracker.status(true).state === 'saved') return true
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return false
  }
  const historyPanel = setupHistoryPanel({ api, ytext, waitForSaved, access: () => access })

  // --- read-only ------------------------------------------------------------------------------
  const badge = $('read-only-badge')
  /** @param {import('./access.js').Access} next */
  function setAccess (next) {
    const wasReadOnly = access.readOnly
    // a deleted document stays read-only whatever the server said before
    if (deleted) next = { ...next, readOnly: true, canEdit: false, canSaveVersion: false, canRestore: false }
    access = next
    document.body.dataset.access = next.readOnly ? 'read-only' : 'edit'
    badge.hidden = !next.readOnly
    badge.title = deleted
      ? 'The document was deleted on the server: your copy can be read and downloaded, not edited.'
      : next.denied && role !== 'read'
        ? 'The server does not accept edits from this link: you can read and follow the document.'
        : 'Your link lets you read and follow this document, not edit it.'
    if (next.readOnly !== wasReadOnly) {
      view.dispatch({ effects: editability.reconfigure(editabilityExtensions(next.readOnly)) })
      publishUser(currentName)
    }
    historyPanel.applyAccess()
    scheduleRender()
  }
  setAccess(access)

  // --- deleted on the server (close code 4410, see deleted-document.js) -----------------------
  const deletedPanel = setupDeletedPanel({
    name,
    token,
    text: () => ytext.toString(),
    discard: async () => {
      discarded = true
      storage.remove(pendingKey)
      await persistence.destroy()
      await deleteDatabase(persistence.name)
    }
  })
  const exportButton = /** @type {HTMLButtonElement} */ ($('export-menu'))
  const historyButton = /** @type {HTMLButtonElement} */ ($('history-button'))
  function markDeleted () {
    if (deleted) return
    deleted = true
    // no reconnecting (y-websocket already stopped on the final close; this also covers the
    // browser's online event) and no more syncing with this browser's other tabs
    provider.disconnect()
    console.info('Tandem: the document was deleted on the server; this copy stays on this device')
    if (historyPanel.isOpen()) historyPanel.close()
    for (const button of [exportButton, historyButton]) {
      button.disabled = true
      button.title = 'The document was deleted on the server'
    }
    setAccess(access)
    deletedPanel.show()
    scheduleRender()
  }

  // --- go -------------------------------------------------------------------------------------
  const loaded = Promise.race([
    persistence.whenSynced,
    new Promise((resolve) => setTimeout(resolve, INDEXEDDB_WAIT_MS))
  ])
  loaded.then(() => {
    provider.connect()
    scheduleRender()
  })

  registerServiceWorker()

  window.tandem = {
    ydoc,
    provider,
    ytext,
    undoManager,
    persistence,
    view,
    tracker,
    history: historyPanel,
    /** Where the editor draws embeds (positions of their placeholders). */
    embeds: () => embedPositions(view.state),
    /** What this page may do: { role, denied, readOnly, canEdit, canSaveVersion, canRestore }. */
    access: () => ({ ...access }),
    /** Everything the indicators show, for tests. */
    status: () => ({
      connection: connectionState(connectionFacts()),
      save: deleted ? 'deleted' : access.readOnly ? 'readonly' : tracker.status(provider.wsconnected).state,
      pending: tracker.pending,
      sent: tracker.sent,
      acked: tracker.acked,
      deleted,
      /** the close code of the server's final refusal (4401/4403/4404/4410), or null */
      refused: refusal === null ? null : refusal.code
    })
  }
  if (!access.readOnly) view.focus()
}

start()
