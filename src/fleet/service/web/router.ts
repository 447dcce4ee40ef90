import { useEffect, useState } from 'preact/hooks';
import { parseRoute, type Route } from './routes.js';

export { href, parseRoute, type Route } from './routes.js';

export function navigate(to: string): void {
  location.hash = to;
}

/** The current route, re-rendered on every hash change. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
