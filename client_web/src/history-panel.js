// The History panel: the document's saved versions (GET …/versions), a read-only preview of one
// (…/export?format=txt&version=ID), what changed since and who edited it (…/versions/ID/diff/live
// ?format=json: "Edited by Ada, Bob", from the server's authors map), Save version
// (POST …/versions with an optional label, asked inline) and Restore (POST …/versions/ID/restore,
// confirmed inline). A restore reaches the editor as a normal edit from the server; the state
// before it is saved as "before restoring version N", so restoring that one undoes it.
//
// Everything from the server is shown with textContent. The page tells the panel what this person
// may do (access.js, applyAccess): readers see neither Save version nor Restore, writers see
// Restore disabled.
import { parseUnifiedDiff, diffSummary } from './diff.js'
import { relativeTime, absoluteTime, formatSize } from './format.js'

/** How long after the last text change the open diff is fetched again. */
const DIFF_REFRESH_MS = 1200
/** Relative times ("2 minutes ago") and the list are refreshed this often while open. */
const LIST_REFRESH_MS = 30_000

/**
 * The title of a version in the list: its label, else what kind of version it is.
 *
 * @param {{ label: string | null, auto: boolean }} version
 */
export const versionTitle = (version) => version.label ?? (version.auto ? 'Automatic' : 'Saved version')

/**
 * "Version 3": the document's own count of its versions (the server's `number`), not the id.
 *
 * @param {{ id: number, number?: number | null }} version
 */
export const versionLabel = (version) => `Version ${version.number ?? version.id}`

/**
 * "Edited by Ada, Bob": the authors of a diff (the server's `authors`, one per client id; a null
 * author is one the map has none for: an edit from before it, or the server's own).
 *
 * @param {{ author?: unknown }[]} authors
 * @return {string} '' when nobody edited
 */
export const editedBy = (authors) => {
  /** @type {string[]} */
  const names = []
  let unknown = false
  for (const entry of authors) {
    const author = entry?.author
    if (typeof author === 'string' && author.trim() !== '') {
      const name = author.replace(/\s+/g, ' ').trim()
      if (!names.includes(name)) names.push(name)
    } else {
      unknown = true
    }
  }
  // in alphabetical order: the server's is by client id, which means nothing to a reader
  names.sort((a, b) => a.localeCompare(b))
  if (unknown) names.push(names.length === 0 ? 'an unknown author' : 'someone unknown')
  if (names.length === 0) return ''
  const last = names.length > 1 && unknown ? ` and ${names.pop()}` : ''
  return `Edited by ${names.join(', ')}${last}`
}

/** @param {string} id @return {HTMLElement} */
const $ = (id) => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`editor.html lacks #${id}`)
  return element
}

/**
 * @param {object} opts
 * @param {ReturnType<typeof import('./api.js').createApi>} opts.api
 * @param {import('yjs').Text} opts.ytext the live text (to keep the open diff current)
 * @param {() => Promise<boolean>} opts.waitForSaved resolves true once local edits are on the server
 * @param {import('./access.js').Access} opts.access what this person may do at first (later: applyAccess)
 * @param {() => void} [opts.onClose] to give the focus back
 */
export const setupHistoryPanel = ({ api, ytext, waitForSaved, access, onClose = () => {} }) => {
  let allowed = access
  const panel = $('history-panel')
  const toggleButton = /** @type {HTMLButtonElement} */ ($('history-button'))
  const workspace = panel.closest('.workspace')
  const heading = $('history-heading')
  const errorElement = $('history-error')
  const noticeElement = $('history-notice')
  const saveArea = $('save-version-area')
  const saveButton = /** @type {HTMLButtonElement} */ ($('save-version'))
  const saveForm = /** @type {HTMLFormElement} */ ($('save-version-form'))
  const labelInput = /** @type {HTMLInputElement} */ ($('version-label-input'))
  const saveConfirm = /** @type {HTMLButtonElement} */ ($('save-version-confirm'))
  const saveCancel = /** @type {HTMLButtonElement} */ ($('save-version-cancel'))
  const list = $('version-list')
  const listMessage = $('version-list-message')
  const detail = $('version-detail')
  const detailHeading = $('version-detail-heading')
  const detailMeta = $('version-detail-meta')
  const restoreArea = $('restore-area')
  const restoreButton = /** @type {HTMLButtonElement} */ ($('restore-version'))
  const restoreHint = $('restore-hint')
  const confirmBox = $('restore-confirmation')
  const confirmQuestion = $('restore-question')
  const confirmButton = /** @type {HTMLButtonElement} */ ($('restore-confirm'))
  const cancelButton = /** @type {HTMLButtonElement} */ ($('restore-cancel'))
  const diffElement = $('version-diff')
  const diffSummaryElement = $('version-diff-summary')
  const editorsElement = $('version-editors')
  const preview = $('version-preview')

  /** @type {import('./api.js').Version[]} */
  let versions = []
  /** @type {number | null} */
  let selectedId = null
  let listSeq = 0
  let diffSeq = 0
  let previewSeq = 0
  let diffTimer = 0
  let listTimer = 0
  let loadedOnce = false

  const isOpen = () => !panel.hidden

  // --- messages -------------------------------------------------------------------------------
  /** @param {unknown} error */
  const showError = (error) => {
    errorElement.textContent = error instanceof Error ? error.message : String(error)
    errorElement.hidden = false
  }
  const clearError = () => {
    errorElement.hidden = true
    errorElement.textContent = ''
  }
  /** @param {string} text */
  const showNotice = (text) => { noticeElement.textContent = text }

  // --- list -----------------------------------------------------------------------------------
  /** @param {import('./api.js').Version} version */
  const versionItem = (version) => {
    const li = document.createElement('li')
    const button = document.createElement('button')
    button.type = 'button'
    button.className = 'version-item'
    button.dataset.testid = 'version-item'
    button.dataset.versionId = String(version.id)
    button.dataset.versionNumber = String(version.number)
    button.dataset.kind = version.label !== null ? 'named' : version.auto ? 'auto' : 'saved'
    if (version.id === selectedId) button.setAttribute('aria-current', 'true')

    const title = document.createElement('span')
    title.className = 'version-title'
    title.dataset.testid = 'version-title'
    title.textContent = versionTitle(version)

    const meta = document.createElement('span')
    meta.className = 'version-meta'
    const time = document.createElement('time')
    time.dataset.testid = 'version-time'
    time.dateTime = new Date(version.created_at * 1000).toISOString()
    time.title = absoluteTime(version.created_at)
    time.textContent = relativeTime(version.created_at)
    const size = document.createElement('span')
    size.dataset.testid = 'version-size'
    size.textContent = formatSize(version.size_bytes)
    const number = document.createElement('span')
    number.className = 'version-number'
    number.dataset.testid = 'version-number'
    number.textContent = versionLabel(version)
    meta.append(number, ' · ', time, ' · ', size)

    // the name is the visible text (no aria-label that says something else: WCAG 2.5.3)
    button.append(title, meta)
    button.addEventListener('click', () => select(version.id))
    li.append(button)
    return li
  }

  const renderList = () => {
    const focusedId = document.activeElement instanceof HTMLElement && document.activeElement.dataset.testid === 'version-item'
      ? document.activeElement.dataset.versionId
      : null
    list.replaceChildren(...versions.map(versionItem))
    if (focusedId !== null) {
      const again = list.querySelector(`[data-version-id="${CSS.escape(focusedId)}"]`)
      if (again instanceof HTMLElement) again.focus()
    }
    if (versions.length === 0) {
      listMessage.textContent = 'No versions yet. One is saved automatically when editing pauses, or use Save version.'
      listMessage.hidden = false
    } else {
      listMessage.textContent = ''
      listMessage.hidden = true
    }
  }

  const refreshList = async () => {
    const seq = ++listSeq
    if (!loadedOnce) {
      listMessage.textContent = 'Loading versions…'
      listMessage.hidden = false
    }
    list.setAttribute('aria-busy', 'true')
    try {
      const got = await api.versions()
      if (seq !== listSeq) return
      versions = got
      loadedOnce = true
      renderList()
      if (selectedId !== null && !versions.some((v) => v.id === selectedId)) deselect()
      else if (selectedId !== null) renderDetailHeading()
    } catch (error) {
      if (seq !== listSeq) return
      if (/** @type {any} */ (error).status === 404 && !loadedOnce) {
        // a brand-new document the server has not stored yet: nothing to list
        versions = []
        renderList()
      } else {
        showError(error)
        if (!loadedOnce) listMessage.hidden = true
      }
    } finally {
      if (seq === listSeq) list.setAttribute('aria-busy', 'false')
    }
  }

  // keyboard: ↑/↓/Home/End move between versions
  list.addEventListener('keydown', (event) => {
    const items = /** @type {HTMLElement[]} */ ([...list.querySelectorAll('[data-testid=version-item]')])
    const index = items.indexOf(/** @type {HTMLElement} */ (document.activeElement))
    if (index < 0) return
    let next = -1
    if (event.key === 'ArrowDown') next = Math.min(index + 1, items.length - 1)
    else if (event.key === 'ArrowUp') next = Math.max(index - 1, 0)
    else if (event.key === 'Home') next = 0
    else if (event.key === 'End') next = items.length - 1
    if (next >= 0) {
      event.preventDefault()
      items[next].focus()
    }
  })

  // --- one version ----------------------------------------------------------------------------
  const selected = () => versions.find((v) => v.id === selectedId) ?? null

  const renderDetailHeading = () => {
    const version = selected()
    if (!version) return
    detailHeading.textContent = `${versionLabel(version)}: ${versionTitle(version)}`
    detailMeta.textContent = `Saved ${absoluteTime(version.created_at)} · ${formatSize(version.size_bytes)}`
    confirmQuestion.textContent = `Replace the current text with ${versionLabel(version).toLowerCase()}? Everyone editing sees the change at once. The current text is saved as a version first, so you can undo this by restoring that one.`
  }

  /** @param {number} id */
  const select = (id) => {
    if (selectedId !== id) hideConfirmation(false)
    selectedId = id
    for (const item of list.querySelectorAll('[data-testid=version-item]')) {
      if (item instanceof HTMLElement) {
        if (item.dataset.versionId === String(id)) item.setAttribute('aria-current', 'true')
        else item.removeAttribute('aria-current')
      }
    }
    detail.hidden = false
    renderDetailHeading()
    applyAccess()
    loadPreview()
    loadDiff(true)
  }

  const deselect = () => {
    selectedId = null
    detail.hidden = true
    hideConfirmation(false)
    for (const item of list.querySelectorAll('[aria-current]')) item.removeAttribute('aria-current')
  }

  const loadPreview = async () => {
    const id = selectedId
    if (id === null) return
    const seq = ++previewSeq
    preview.setAttribute('aria-busy', 'true')
    preview.dataset.state = 'loading'
    preview.textContent = 'Loading…'
    try {
      const text = await api.versionText(id)
      if (seq !== previewSeq) return
      preview.textContent = text
      preview.dataset.state = text === '' ? 'empty' : 'loaded'
    } catch (error) {
      if (seq !== previewSeq) return
      preview.textContent = ''
      preview.dataset.state = 'error'
      showError(error)
    } finally {
      if (seq === previewSeq) preview.setAttribute('aria-busy', 'false')
    }
  }

  /** @param {boolean} [showLoading] */
  const loadDiff = async (showLoading = false) => {
    const id = selectedId
    if (id === null) return
    const seq = ++diffSeq
    diffElement.setAttribute('aria-busy', 'true')
    if (showLoading) {
      diffElement.dataset.state = 'loading'
      diffElement.textContent = 'Loading…'
      diffSummaryElement.textContent = ''
      editorsElement.textContent = ''
      editorsElement.hidden = true
    }
    try {
      const { diff, authors } = await api.diffWithAuthors(id)
      if (seq !== diffSeq) return
      renderDiff(diff)
      editorsElement.textContent = editedBy(authors)
      editorsElement.hidden = editorsElement.textContent === ''
    } catch (error) {
      if (seq !== diffSeq) return
      diffElement.textContent = ''
      diffElement.dataset.state = 'error'
      diffSummaryElement.textContent = ''
      editorsElement.textContent = ''
      editorsElement.hidden = true
      showError(error)
    } finally {
      if (seq === diffSeq) diffElement.setAttribute('aria-busy', 'false')
    }
  }

  /** @param {string} text */
  const renderDiff = (text) => {
    const { lines, added, removed } = parseUnifiedDiff(text)
    diffSummaryElement.textContent = `(${diffSummary(added, removed).toLowerCase()})`
    if (added === 0 && removed === 0) {
      const same = document.createElement('p')
      same.className = 'diff-none'
      same.textContent = 'No changes: this version is the same as the current text.'
      diffElement.replaceChildren(same)
      diffElement.dataset.state = 'same'
      return
    }
    const rows = lines
      .filter((line) => line.kind !== 'file')
      .map((line) => {
        const row = document.createElement('span')
        row.className = `diff-line diff-${line.kind}`
        row.textContent = line.text === '' ? ' ' : line.text
        if (line.kind === 'add') row.title = 'Added since this version'
        else if (line.kind === 'del') row.title = 'Removed since this version'
        return row
      })
    diffElement.replaceChildren(...rows)
    diffElement.dataset.state = 'changed'
  }

  // the diff is "against now": follow the text while a version is shown
  ytext.observe(() => {
    if (!isOpen() || selectedId === null) return
    window.clearTimeout(diffTimer)
    diffTimer = window.setTimeout(() => { loadDiff(false) }, DIFF_REFRESH_MS)
  })

  // --- save version ---------------------------------------------------------------------------
  const showSaveForm = () => {
    saveForm.hidden = false
    saveButton.setAttribute('aria-expanded', 'true')
    labelInput.value = ''
    labelInput.focus()
  }
  /** @param {boolean} [returnFocus] */
  const hideSaveForm = (returnFocus = true) => {
    if (saveForm.hidden) return
    saveForm.hidden = true
    saveButton.setAttribute('aria-expanded', 'false')
    if (returnFocus && !saveArea.hidden) saveButton.focus()
  }
  saveButton.addEventListener('click', () => {
    if (saveForm.hidden) showSaveForm()
    else hideSaveForm(false)
  })
  saveCancel.addEventListener('click', () => hideSaveForm())
  saveForm.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault()
      event.stopPropagation()
      hideSaveForm()
    }
  })
  saveForm.addEventListener('submit', async (event) => {
    event.preventDefault()
    if (!allowed.canSaveVersion) return
    const label = labelInput.value.replace(/\s+/g, ' ').trim()
    saveConfirm.disabled = true
    saveCancel.disabled = true
    saveForm.setAttribute('aria-busy', 'true')
    clearError()
    showNotice('Saving a version…')
    try {
      const complete = await waitForSaved()
      const saved = await api.saveVersion(label || null)
      hideSaveForm()
      showNotice(`Saved ${versionLabel(saved).toLowerCase()}${label ? ` “${label}”` : ''}.` +
        (complete ? '' : ' Your latest changes had not reached the server yet and may be missing from it.'))
      await refreshList()
    } catch (error) {
      showNotice('')
      showError(error)
    } finally {
      saveConfirm.disabled = false
      saveCancel.disabled = false
      saveForm.removeAttribute('aria-busy')
    }
  })

  // --- restore --------------------------------------------------------------------------------
  const showConfirmation = () => {
    if (!allowed.canRestore || selectedId === null) return
    confirmBox.hidden = false
    restoreButton.setAttribute('aria-expanded', 'true')
    confirmButton.focus()
  }
  /** @param {boolean} [returnFocus] */
  const hideConfirmation = (returnFocus = true) => {
    if (confirmBox.hidden) return
    confirmBox.hidden = true
    restoreButton.setAttribute('aria-expanded', 'false')
    if (returnFocus && !restoreButton.disabled && !restoreArea.hidden) restoreButton.focus()
  }
  restoreButton.addEventListener('click', () => {
    if (confirmBox.hidden) showConfirmation()
    else hideConfirmation(false)
  })
  cancelButton.addEventListener('click', () => hideConfirmation())
  confirmBox.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault()
      event.stopPropagation()
      hideConfirmation()
    }
  })
  confirmButton.addEventListener('click', async () => {
    const id = selectedId
    if (id === null || !allowed.canRestore) return
    confirmButton.disabled = true
    cancelButton.disabled = true
    confirmBox.setAttribute('aria-busy', 'true')
    clearError()
    const restoring = versionLabel(selected() ?? { id }).toLowerCase()
    showNotice(`Restoring ${restoring}…`)
    try {
      await waitForSaved()
      const result = await api.restore(id)
      hideConfirmation()
      await refreshList()
      const before = versions.find((v) => v.id === result.saved_before) ?? { id: result.saved_before }
      showNotice(`Restored ${restoring}. The text from before is saved as ${versionLabel(before).toLowerCase()}: restore that one to undo.`)
      loadDiff(false)
    } catch (error) {
      showNotice('')
      showError(error)
    } finally {
      confirmButton.disabled = false
      cancelButton.disabled = false
      confirmBox.removeAttribute('aria-busy')
    }
  })

  // --- what this person may do ----------------------------------------------------------------
  /** @param {import('./access.js').Access} [next] what this person may do now */
  const applyAccess = (next = allowed) => {
    allowed = next
    saveArea.hidden = !allowed.canSaveVersion
    if (!allowed.canSaveVersion) hideSaveForm(false)
    if (allowed.canRestore) {
      restoreArea.hidden = false
      restoreButton.disabled = false
      restoreHint.textContent = 'The current text is saved as a version first.'
    } else if (allowed.canEdit) {
      // a writer sees that restoring exists, and why it is not offered
      restoreArea.hidden = false
      restoreButton.disabled = true
      restoreHint.textContent = 'Only an admin can restore versions. You can copy text from the preview below.'
      hideConfirmation(false)
    } else {
      restoreArea.hidden = true
      restoreButton.disabled = true
      hideConfirmation(false)
    }
  }

  // --- open / close ---------------------------------------------------------------------------
  const open = () => {
    panel.hidden = false
    toggleButton.setAttribute('aria-expanded', 'true')
    workspace?.classList.add('history-open')
    applyAccess()
    heading.focus()
    refreshList().then(() => { if (selectedId !== null) loadDiff(false) })
    window.clearInterval(listTimer)
    listTimer = window.setInterval(() => {
      if (document.visibilityState === 'visible') refreshList()
    }, LIST_REFRESH_MS)
  }
  /** @param {boolean} [returnFocus] */
  const close = (returnFocus = true) => {
    if (!isOpen()) return
    panel.hidden = true
    toggleButton.setAttribute('aria-expanded', 'false')
    workspace?.classList.remove('history-open')
    window.clearInterval(listTimer)
    window.clearTimeout(diffTimer)
    hideSaveForm(false)
    hideConfirmation(false)
    if (returnFocus) {
      toggleButton.focus()
      // a phone: the button is in the top bar's closed "⋯" popup (top-menu.js): its button then
      if (document.activeElement !== toggleButton) {
        toggleButton.closest('.top-more')?.querySelector('button')?.focus()
      }
    }
    onClose()
  }
  toggleButton.addEventListener('click', () => (isOpen() ? close() : open()))
  $('history-close').addEventListener('click', () => close())
  $('history-refresh').addEventListener('click', () => {
    clearError()
    refreshList().then(() => {
      if (selectedId !== null) {
        loadPreview()
        loadDiff(false)
      }
    })
  })
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !event.defaultPrevented) {
      event.preventDefault()
      close()
    }
  })

  return { open, close, isOpen, refreshList, applyAccess, select }
}
