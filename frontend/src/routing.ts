// Where the app's pages are, and where a login may send the browser back to: a signed-out visit
// to any page goes to /login?next=<that page>, and logging in lands on it.
import { matchPath } from "react-router";

/** The pages of the app (App.tsx routes them); only these are ever a login's `next`. */
export const APP_PATHS = ["/datasets", "/datasets/:datasetId", "/tokens", "/admin"] as const;

/** `next` if it is one of the app's pages on this origin (its path, query and fragment), else
 * null: a login never sends the browser to another site (`//host`, `/\host`, `https://…`), an
 * API or docs URL, or back to the login page. */
export function safeNext(next: string | null | undefined): string | null {
  if (!next || !next.startsWith("/")) return null;
  let url: URL;
  try {
    url = new URL(next, window.location.origin);
  } catch {
    return null;
  }
  // The URL parser reads "//host", "/\host" and tabs or newlines inside them as another host.
  if (url.origin !== window.location.origin) return null;
  if (!APP_PATHS.some((path) => matchPath({ path, end: true }, url.pathname))) return null;
  return url.pathname + url.search + url.hash;
}

/** The login page, returning to `here` (a path with its query) after login when it is a page
 * of the app. */
export function loginPath(here: string | null): string {
  const next = safeNext(here);
  return next ? `/login?next=${encodeURIComponent(next)}` : "/login";
}
