// A router of a few lines: pages are paths under /admin, history.pushState moves between them.
import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from 'react'

export const BASE = '/admin'

export function navigate (to: string, replace = false): void {
  if (replace) history.replaceState(null, '', to)
  else history.pushState(null, '', to)
  window.dispatchEvent(new PopStateEvent('popstate'))
  if (!replace) window.scrollTo(0, 0)
}

export function useLocation (): { path: string, search: URLSearchParams } {
  const read = (): { path: string, search: URLSearchParams } => ({
    path: location.pathname.replace(/\/+$/, '') || BASE,
    search: new URLSearchParams(location.search)
  })
  const [loc, setLoc] = useState(read)
  useEffect(() => {
    const update = (): void => setLoc(read())
    window.addEventListener('popstate', update)
    return () => window.removeEventListener('popstate', update)
  }, [])
  return loc
}

export function Link ({ to, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { to: string }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>): void => {
    rest.onClick?.(e)
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
    e.preventDefault()
    navigate(to)
  }
  return <a {...rest} href={to} onClick={onClick} />
}
