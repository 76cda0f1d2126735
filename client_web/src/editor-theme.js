// How the editor looks: a calm writing surface with Markdown highlighting, and remote cursors
// whose name labels stay visible (y-codemirror.next shows them only on hover by default).
// Colours are style.css variables (--md-*, --gutter-text, --selection), so the light and dark
// themes (theme.js) restyle the editor without a second CodeMirror theme.
import { EditorView } from '@codemirror/view'
import { HighlightStyle, syntaxHighlighting } from '@codemirror/language'
import { tags as t } from '@lezer/highlight'

const markdownHighlight = HighlightStyle.define([
  { tag: t.heading1, fontWeight: '700', fontSize: '1.45em' },
  { tag: t.heading2, fontWeight: '700', fontSize: '1.25em' },
  { tag: t.heading3, fontWeight: '700', fontSize: '1.1em' },
  { tag: [t.heading4, t.heading5, t.heading6], fontWeight: '700' },
  { tag: t.strong, fontWeight: '700' },
  { tag: t.emphasis, fontStyle: 'italic' },
  { tag: t.strikethrough, textDecoration: 'line-through' },
  { tag: [t.link, t.url], color: 'var(--md-link)' },
  { tag: t.url, textDecoration: 'underline' },
  { tag: t.monospace, fontFamily: 'var(--mono)', color: 'var(--md-code)' },
  { tag: t.quote, color: 'var(--md-quote)', fontStyle: 'italic' },
  { tag: [t.processingInstruction, t.contentSeparator], color: 'var(--md-mark)' },
  { tag: t.meta, color: 'var(--md-mark)' },
  { tag: t.comment, color: 'var(--md-mark)' },
  { tag: t.keyword, color: 'var(--md-keyword)' },
  { tag: [t.string, t.special(t.string)], color: 'var(--md-string)' },
  { tag: t.number, color: 'var(--md-number)' },
  { tag: t.invalid, color: 'var(--bad)' }
])

const baseTheme = EditorView.theme({
  '&': {
    height: '100%',
    fontSize: '16px',
    backgroundColor: 'var(--surface)',
    color: 'var(--text)'
  },
  '&.cm-focused': {
    outline: 'none'
  },
  '.cm-scroller': {
    fontFamily: 'var(--mono)',
    lineHeight: '1.6'
  },
  '.cm-content': {
    padding: '20px 0 40vh',
    caretColor: 'var(--text)'
  },
  '.cm-line': {
    padding: '0 24px 0 12px'
  },
  '.cm-gutters': {
    backgroundColor: 'var(--surface)',
    color: 'var(--gutter-text)', // readable (4.5:1) line numbers
    border: 'none',
    paddingLeft: '8px'
  },
  '.cm-activeLineGutter': {
    backgroundColor: 'transparent',
    color: 'var(--text)'
  },
  '.cm-activeLine': {
    backgroundColor: 'var(--active-line)'
  },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection': {
    backgroundColor: 'var(--selection) !important'
  },
  '.cm-selectionMatch': {
    backgroundColor: 'var(--selection-match)'
  },
  '.cm-searchMatch': {
    backgroundColor: 'var(--search-match)',
    outline: '1px solid var(--search-match-border)'
  },
  '.cm-searchMatch.cm-searchMatch-selected': {
    backgroundColor: 'var(--search-match-current)'
  },
  '.cm-cursor, .cm-dropCursor': {
    borderLeftColor: 'var(--text)'
  },
  // find and replace (Ctrl/Cmd-F): one row of controls in the page's own look, both themes
  '.cm-panels': {
    backgroundColor: 'var(--surface-2)',
    color: 'var(--text)',
    fontFamily: 'var(--sans)'
  },
  '.cm-panels.cm-panels-top': { borderBottom: '1px solid var(--border)' },
  '.cm-panels.cm-panels-bottom': { borderTop: '1px solid var(--border)' },
  '.cm-panel.cm-search': {
    display: 'flex',
    flexWrap: 'wrap',
    alignItems: 'center',
    gap: '6px 8px',
    padding: '8px 40px 8px 12px',
    fontSize: '14px'
  },
  '.cm-panel.cm-search br': { flexBasis: '100%', height: '0' },
  '.cm-panels .cm-panel.cm-search input, .cm-panels .cm-panel.cm-search button, .cm-panels .cm-panel.cm-search label': { margin: '0' },
  '.cm-panel .cm-textfield': {
    minHeight: '32px',
    padding: '4px 10px',
    border: '1px solid var(--field-border)',
    borderRadius: '6px',
    backgroundColor: 'var(--surface)',
    color: 'var(--text)',
    fontSize: '14px'
  },
  '.cm-panel .cm-button': {
    minHeight: '32px',
    padding: '3px 10px',
    border: '1px solid var(--border)',
    borderRadius: '6px',
    backgroundColor: 'var(--surface)',
    backgroundImage: 'none',
    color: 'var(--text)',
    fontFamily: 'var(--sans)',
    fontSize: '13px',
    fontWeight: '600',
    cursor: 'pointer'
  },
  '.cm-panel .cm-button:hover': { backgroundColor: 'var(--hover)' },
  '.cm-panel .cm-button:active': { backgroundColor: 'var(--hover)', backgroundImage: 'none' },
  '.cm-panels .cm-panel.cm-search label': {
    display: 'inline-flex',
    alignItems: 'center',
    gap: '4px',
    fontSize: '13px',
    whiteSpace: 'nowrap',
    color: 'var(--text)'
  },
  '.cm-panels .cm-panel.cm-search input[type=checkbox]': { margin: '0', accentColor: 'var(--accent)' },
  '.cm-panels .cm-panel.cm-search button[name=close]': {
    position: 'absolute',
    padding: '0',
    border: 'none',
    backgroundColor: 'transparent',
    top: '8px',
    right: '8px',
    minWidth: '28px',
    minHeight: '28px',
    borderRadius: '6px',
    color: 'var(--muted)',
    fontSize: '20px',
    lineHeight: '1',
    cursor: 'pointer'
  },
  '.cm-panels .cm-panel.cm-search button[name=close]:hover': { color: 'var(--text)', backgroundColor: 'var(--hover)' },
  // remote carets: always show whose caret it is, in a readable sans-serif label
  '.cm-ySelectionInfo': {
    opacity: '1',
    fontFamily: 'var(--sans)',
    fontSize: '11px',
    fontWeight: '600',
    lineHeight: '1.4',
    top: '-1.45em',
    padding: '0 5px',
    borderRadius: '4px 4px 4px 0',
    pointerEvents: 'none'
  },
  '.cm-ySelectionCaretDot': {
    display: 'none'
  },
  '.cm-ySelectionCaret': {
    borderLeftWidth: '2px',
    borderRightWidth: '0'
  }
}, { dark: false })

export const editorTheme = [baseTheme, syntaxHighlighting(markdownHighlight)]
