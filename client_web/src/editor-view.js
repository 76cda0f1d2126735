// The CodeMirror view of the document: Markdown editing bound to the Y.Text (ysync.js), undo and
// redo through a Y.UndoManager of this editor's own edits only, formatting keys (formatting.js),
// brackets and backticks closed as they are typed, and a read-only switch that blocks every way
// of changing the text (typing, the undo keys, the browser's own undo).
import * as Y from 'yjs'
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
import { closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete'

import { editorTheme } from './editor-theme.js'
import { safeCollab } from './ysync.js'
import { formattingKeymap } from './formatting.js'

// Markdown (GitHub flavour) without lang-markdown's `markdown()` helper: that one pulls in the
// HTML, CSS and JavaScript parsers for embedded HTML, tripling the bundle for little gain.
const markdown = () => new LanguageSupport(markdownLanguage, [
  Prec.high(keymap.of(markdownKeymap)), // Enter continues lists and quotes
  pasteURLAsLink,
  // closed as typed: no ' (an apostrophe in prose), and ` for inline code
  markdownLanguage.data.of({ closeBrackets: { brackets: ['(', '[', '{', '"', '`'] } })
])

/**
 * Read-only: CodeMirror refuses input (readOnly) and the text is not editable at all (editable).
 *
 * @param {boolean} readOnly
 * @return {import('@codemirror/state').Extension}
 */
export const editability = (readOnly) => [
  EditorState.readOnly.of(readOnly),
  EditorView.editable.of(!readOnly),
  EditorView.contentAttributes.of({ 'aria-readonly': String(readOnly) })
]

/**
 * y-codemirror.next's undo keys, doing nothing in a read-only editor: undo and redo change the
 * Y.Text directly, past CodeMirror's readOnly.
 *
 * @type {readonly import('@codemirror/view').KeyBinding[]}
 */
export const undoKeys = yUndoManagerKeymap.map((binding) => ({
  ...binding,
  run: (/** @type {EditorView} */ v) => (v.state.readOnly ? true : binding.run(v))
}))

/**
 * Shift+Ctrl/Cmd+Z, whatever case the event's key has: synthetic key events (test drivers)
 * report 'z' with Shift, which CodeMirror would read as Ctrl-z, i.e. undo.
 *
 * @param {{ key: string, shiftKey: boolean, ctrlKey: boolean, metaKey: boolean, altKey: boolean }} event
 */
export const isRedoKey = (event) =>
  event.shiftKey && (event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === 'z'

/**
 * @param {object} opts
 * @param {HTMLElement} opts.parent where the editor is mounted
 * @param {string} opts.name the document (for the text's accessible name)
 * @param {Y.Text} opts.ytext
 * @param {import('y-protocols/awareness').Awareness} opts.awareness
 * @param {boolean} opts.readOnly whether it starts read-only
 * @return {{ view: EditorView, undoManager: Y.UndoManager, setReadOnly: (readOnly: boolean) => void }}
 */
export const setupEditorView = ({ parent, name, ytext, awareness, readOnly }) => {
  // Undo/redo only what this editor typed: the UndoManager tracks no origin of its own, and
  // yCollab adds exactly its local sync origin. Remote edits (origin: the provider) and the
  // IndexedDB load (origin: the persistence) are never undone.
  const undoManager = new Y.UndoManager(ytext, { trackedOrigins: new Set() })
  const editable = new Compartment()
  // the text with one placeholder per embed (see ysync.js), and the binding itself
  const collab = safeCollab(ytext, awareness, { undoManager })
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: collab.doc,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightSpecialChars(),
        drawSelection(),
        // several selections (Ctrl/Cmd-D, Ctrl/Cmd-click): formatting applies to each
        EditorState.allowMultipleSelections.of(true),
        dropCursor(),
        indentOnInput(),
        highlightActiveLine(),
        highlightSelectionMatches(),
        closeBrackets(),
        EditorView.lineWrapping,
        markdown(),
        editorTheme,
        // the yjs undo keys come first: CodeMirror's own history is not loaded at all
        // the formatting keys before the default ones, whose Mod-i would take italic
        keymap.of([...undoKeys, ...closeBracketsKeymap, ...formattingKeymap, ...defaultKeymap, ...searchKeymap, indentWithTab]),
        editable.of(editability(readOnly)),
        collab.extensions,
        Prec.highest(EditorView.domEventHandlers({
          keydown (event) {
            if (isRedoKey(event)) {
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
        // tabindex: the text stays reachable by keyboard (and scrollable) when it is read-only
        // and not contenteditable; axe counts no contenteditable as focusable
        EditorView.contentAttributes.of({ 'aria-label': `Text of ${name}`, tabindex: '0' })
      ]
    })
  })

  return {
    view,
    undoManager,
    setReadOnly: (next) => view.dispatch({ effects: editable.reconfigure(editability(next)) })
  }
}
