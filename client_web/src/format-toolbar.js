// The formatting toolbar above the text: a button for each command of formatting.js, with its
// name, its keys (aria-keyshortcuts and the tooltip) and the same command as the keyboard. It is
// a WAI-ARIA toolbar (one Tab stop; ←/→/Home/End move between buttons). Buttons that do not fit
// on the row (a phone) go into the "More" menu at its end, so the bar never wraps or scrolls.
import {
  cycleHeading, toggleBold, toggleBulletList, toggleCode, toggleItalic, toggleLink,
  toggleNumberedList, toggleQuote, toggleStrikethrough, toggleTaskList
} from './formatting.js'

const SVG = 'http://www.w3.org/2000/svg'

/**
 * @typedef {object} Action
 * @property {string} id also the button's `data-format`
 * @property {string} label the accessible name
 * @property {string} key CodeMirror key name (formatting.js's keymap)
 * @property {string} [text] what the button shows, or
 * @property {string} [icon] an SVG path (16×16, stroked)
 * @property {import('./formatting.js').Command} run
 * @property {boolean} [groupStart] a separator goes before it
 */

/** @type {readonly Action[]} */
export const ACTIONS = Object.freeze([
  { id: 'bold', label: 'Bold', key: 'Mod-b', text: 'B', run: toggleBold },
  { id: 'italic', label: 'Italic', key: 'Mod-i', text: 'I', run: toggleItalic },
  { id: 'strikethrough', label: 'Strikethrough', key: 'Mod-Shift-x', text: 'S', run: toggleStrikethrough },
  { id: 'code', label: 'Inline code', key: 'Mod-e', icon: 'M5.5 4.5 2 8l3.5 3.5M10.5 4.5 14 8l-3.5 3.5', run: toggleCode },
  {
    id: 'link', label: 'Link', key: 'Mod-k',
    icon: 'M6.5 9.5l3-3M7.2 4.8l1.1-1.1a2.5 2.5 0 0 1 3.5 3.5l-1.1 1.1M8.8 11.2l-1.1 1.1a2.5 2.5 0 0 1-3.5-3.5l1.1-1.1',
    run: toggleLink
  },
  { id: 'heading', label: 'Heading', key: 'Mod-Shift-h', text: 'H', run: cycleHeading, groupStart: true },
  { id: 'bullet-list', label: 'Bulleted list', key: 'Mod-Shift-8', icon: 'M6 4h8M6 8h8M6 12h8M2.5 4h.5M2.5 8h.5M2.5 12h.5', run: toggleBulletList },
  { id: 'numbered-list', label: 'Numbered list', key: 'Mod-Shift-7', icon: 'M7 4h7M7 8h7M7 12h7M2.4 2.9l1-.7V6M2 9.3q1-1.1 2-.2.4.7-2 3.4h2.3', run: toggleNumberedList },
  { id: 'task-list', label: 'Task list', key: 'Mod-Shift-9', icon: 'M2 2.5h3.5V6H2zM2 10h3.5v3.5H2zM8 4.2h6M8 11.8h6', run: toggleTaskList },
  { id: 'quote', label: 'Quote', key: 'Mod-Shift-.', icon: 'M3 3.5v9M6.5 5h7.5M6.5 8h7.5M6.5 11h5', run: toggleQuote }
])

/** @param {Navigator} [nav] */
export const isMac = (nav = globalThis.navigator) => /Mac|iPhone|iPad/.test(nav?.platform ?? '')

/**
 * A CodeMirror key name for people: `Ctrl+Shift+X`, or `⌘⇧X` on a Mac.
 *
 * @param {string} key e.g. 'Mod-Shift-x'
 * @param {boolean} mac
 */
export const keyLabel = (key, mac) => {
  const parts = key.split('-')
  const base = parts.pop() ?? ''
  const name = base.length === 1 ? base.toUpperCase() : base
  const words = { Mod: mac ? '⌘' : 'Ctrl', Shift: mac ? '⇧' : 'Shift', Alt: mac ? '⌥' : 'Alt' }
  const mods = parts.map((part) => words[/** @type {'Mod'} */ (part)] ?? part)
  return mac ? mods.join('') + name : [...mods, name].join('+')
}

/**
 * The same key for aria-keyshortcuts: `Control+Shift+X` (`Meta+…` on a Mac).
 *
 * @param {string} key
 * @param {boolean} mac
 */
export const ariaKeys = (key, mac) => {
  const parts = key.split('-')
  const base = parts.pop() ?? ''
  const words = { Mod: mac ? 'Meta' : 'Control', Shift: 'Shift', Alt: 'Alt' }
  return [...parts.map((part) => words[/** @type {'Mod'} */ (part)] ?? part), base.length === 1 ? base.toUpperCase() : base].join('+')
}

/** @param {string} path @return {SVGSVGElement} */
const icon = (path) => {
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('viewBox', '0 0 16 16')
  svg.setAttribute('width', '16')
  svg.setAttribute('height', '16')
  svg.setAttribute('aria-hidden', 'true')
  svg.setAttribute('focusable', 'false')
  const line = document.createElementNS(SVG, 'path')
  line.setAttribute('d', path)
  line.setAttribute('fill', 'none')
  line.setAttribute('stroke', 'currentColor')
  line.setAttribute('stroke-width', '1.6')
  line.setAttribute('stroke-linecap', 'round')
  line.setAttribute('stroke-linejoin', 'round')
  svg.append(line)
  return svg
}

/**
 * @param {object} opts
 * @param {HTMLElement} opts.bar the `role=toolbar` element (empty: filled here)
 * @param {import('@codemirror/view').EditorView} opts.view
 * @param {boolean} [opts.mac]
 * @return {{ layout: () => void }} `layout` fits the buttons to the bar's width again
 */
export const setupFormatToolbar = ({ bar, view, mac = isMac() }) => {
  const row = document.createElement('div')
  row.className = 'format-items'

  /** @param {Action} action */
  const run = (action) => {
    action.run(view)
    view.focus()
  }

  /** @type {HTMLElement[]} separators, by the index of the button they precede */
  const separators = []
  const buttons = ACTIONS.map((action, index) => {
    if (action.groupStart) {
      const sep = document.createElement('span')
      sep.className = 'format-sep'
      sep.setAttribute('aria-hidden', 'true')
      sep.dataset.before = String(index)
      separators.push(sep)
      row.append(sep)
    }
    const button = document.createElement('button')
    button.type = 'button'
    button.className = `format-button format-${action.id}`
    button.dataset.testid = `format-${action.id}`
    button.dataset.format = action.id
    button.setAttribute('aria-label', action.label)
    button.setAttribute('aria-keyshortcuts', ariaKeys(action.key, mac))
    button.title = `${action.label} (${keyLabel(action.key, mac)})`
    button.tabIndex = -1
    if (action.text) {
      const glyph = document.createElement('span')
      glyph.setAttribute('aria-hidden', 'true')
      glyph.textContent = action.text
      button.append(glyph)
    } else if (action.icon) {
      button.append(icon(action.icon))
    }
    // keep the focus (and the selection) in the text while clicking
    button.addEventListener('mousedown', (event) => event.preventDefault())
    button.addEventListener('click', () => run(action))
    row.append(button)
    return button
  })
  buttons[0].tabIndex = 0
  const heading = ACTIONS.find((a) => a.id === 'heading')
  if (heading) {
    const button = buttons[ACTIONS.indexOf(heading)]
    button.title = `Heading: next level (${keyLabel(heading.key, mac)}; ${keyLabel('Mod-Alt-1', mac)} … 6 sets one)`
  }

  // --- "More": the actions whose buttons do not fit ------------------------------------------
  const moreWrap = document.createElement('div')
  moreWrap.className = 'format-more'
  const more = document.createElement('button')
  more.type = 'button'
  more.className = 'format-button format-more-button'
  more.dataset.testid = 'format-more'
  more.id = 'format-more'
  more.setAttribute('aria-haspopup', 'menu')
  more.setAttribute('aria-expanded', 'false')
  more.setAttribute('aria-controls', 'format-more-menu')
  more.tabIndex = -1
  more.textContent = 'More'
  const caret = document.createElement('span')
  caret.className = 'caret'
  caret.setAttribute('aria-hidden', 'true')
  more.append(caret)
  const menu = document.createElement('div')
  menu.className = 'menu format-menu'
  menu.id = 'format-more-menu'
  menu.dataset.testid = 'format-more-menu'
  menu.setAttribute('role', 'menu')
  menu.setAttribute('aria-labelledby', 'format-more')
  menu.hidden = true
  moreWrap.append(more, menu)
  bar.replaceChildren(row, moreWrap)

  /** @type {HTMLButtonElement[]} */
  let menuItems = []
  const isOpen = () => !menu.hidden
  /** @param {number} index */
  const focusItem = (index) => {
    const n = menuItems.length
    if (n > 0) menuItems[((index % n) + n) % n].focus()
  }
  /** @param {number} [focusIndex] */
  const openMenu = (focusIndex = 0) => {
    menu.hidden = false
    more.setAttribute('aria-expanded', 'true')
    focusItem(focusIndex)
  }
  /** @param {boolean} [returnFocus] */
  const closeMenu = (returnFocus = false) => {
    if (!isOpen()) return
    menu.hidden = true
    more.setAttribute('aria-expanded', 'false')
    if (returnFocus) more.focus()
  }

  /** @param {Action[]} actions */
  const fillMenu = (actions) => {
    menuItems = actions.map((action) => {
      const item = document.createElement('button')
      item.type = 'button'
      item.className = 'menu-item'
      item.setAttribute('role', 'menuitem')
      item.setAttribute('aria-keyshortcuts', ariaKeys(action.key, mac))
      item.tabIndex = -1
      item.dataset.testid = `format-menu-${action.id}`
      item.dataset.format = action.id
      const label = document.createElement('span')
      label.className = 'menu-label'
      label.textContent = action.label
      const hint = document.createElement('span')
      hint.className = 'menu-hint'
      hint.setAttribute('aria-hidden', 'true')
      hint.textContent = keyLabel(action.key, mac)
      item.append(label, hint)
      item.addEventListener('mousedown', (event) => event.preventDefault())
      item.addEventListener('click', () => {
        closeMenu(false)
        run(action)
      })
      return item
    })
    menu.replaceChildren(...menuItems)
  }

  more.addEventListener('click', () => (isOpen() ? closeMenu(false) : openMenu(0)))
  more.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault()
      event.stopPropagation()
      openMenu(event.key === 'ArrowDown' ? 0 : menuItems.length - 1)
    }
  })
  menu.addEventListener('keydown', (event) => {
    event.stopPropagation() // not the toolbar's arrow keys
    const index = menuItems.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement))
    switch (event.key) {
      case 'ArrowDown': event.preventDefault(); focusItem(index + 1); break
      case 'ArrowUp': event.preventDefault(); focusItem(index - 1); break
      case 'Home': event.preventDefault(); focusItem(0); break
      case 'End': event.preventDefault(); focusItem(menuItems.length - 1); break
      case 'Escape': event.preventDefault(); closeMenu(true); break
      case 'Tab': closeMenu(false); break
    }
  })
  document.addEventListener('pointerdown', (event) => {
    if (isOpen() && event.target instanceof Node && !moreWrap.contains(event.target)) closeMenu(false)
  })
  moreWrap.addEventListener('focusout', (event) => {
    const next = event.relatedTarget
    if (isOpen() && next instanceof Node && !moreWrap.contains(next)) closeMenu(false)
  })

  // --- one Tab stop, arrows between the buttons shown ----------------------------------------
  const shown = () => [...buttons.filter((b) => !b.hidden), ...(more.hidden ? [] : [more])]
  /** @param {HTMLButtonElement} target */
  const rove = (target) => {
    for (const b of [...buttons, more]) b.tabIndex = b === target ? 0 : -1
    target.focus()
  }
  bar.addEventListener('keydown', (event) => {
    const list = shown()
    const index = list.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement))
    if (index < 0) return
    let next = -1
    if (event.key === 'ArrowRight') next = (index + 1) % list.length
    else if (event.key === 'ArrowLeft') next = (index - 1 + list.length) % list.length
    else if (event.key === 'Home') next = 0
    else if (event.key === 'End') next = list.length - 1
    if (next >= 0) {
      event.preventDefault()
      rove(list[next])
    }
  })

  // --- fit the row: hide buttons from the end, into the menu, until the rest fits -------------
  const layout = () => {
    for (const b of buttons) b.hidden = false
    for (const sep of separators) sep.hidden = false
    more.hidden = true
    /** @type {Action[]} */
    const overflow = []
    if (row.scrollWidth > row.clientWidth) {
      more.hidden = false
      for (let i = buttons.length - 1; i > 0 && row.scrollWidth > row.clientWidth; i--) {
        buttons[i].hidden = true
        overflow.unshift(ACTIONS[i])
        const sep = separators.find((s) => s.dataset.before === String(i))
        if (sep) sep.hidden = true
      }
    }
    if (overflow.length === 0) closeMenu(false)
    fillMenu(overflow)
    // the Tab stop stays on a shown button
    const list = shown()
    if (!list.some((b) => b.tabIndex === 0)) {
      for (const b of [...buttons, more]) b.tabIndex = b === list[0] ? 0 : -1
    }
  }
  new ResizeObserver(() => layout()).observe(bar)
  layout()

  return { layout }
}
