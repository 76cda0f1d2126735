// How the editor looks: a calm writing surface with Markdown highlighting, and remote cursors
// whose name labels stay visible (y-codemirror.next shows them only on hover by default).
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
  { tag: [t.link, t.url], color: '#1d4ed8' },
  { tag: t.url, textDecoration: 'underline' },
  { tag: t.monospace, fontFamily: 'var(--mono)', color: '#9f1239' },
  { tag: t.quote, color: '#4b5563', fontStyle: 'italic' },
  { tag: [t.processingInstruction, t.contentSeparator], color: '#6b7280' },
  { tag: t.meta, color: '#6b7280' },
  { tag: t.comment, color: '#6b7280' },
  { tag: t.keyword, color: '#7e22ce' },
  { tag: [t.string, t.special(t.string)], color: '#15803d' },
  { tag: t.number, color: '#b45309' },
  { tag: t.invalid, color: '#b91c1c' }
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
    color: '#9ca3af',
    border: 'none',
    paddingLeft: '8px'
  },
  '.cm-activeLineGutter': {
    backgroundColor: 'transparent',
    color: 'var(--text)'
  },
  '.cm-activeLine': {
    backgroundColor: 'rgba(37, 99, 235, 0.04)'
  },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection': {
    backgroundColor: 'rgba(37, 99, 235, 0.22) !important'
  },
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
