// The one HTTP client: typed by src/api/schema.d.ts, which `npm run gen:api` generates from the
// backend's OpenAPI document. Features call `api.GET("/api/v1/...")`, never fetch() directly.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { csrfToken, setSignedIn } from "./session";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const session: Middleware = {
  onRequest({ request }) {
    // The session cookie goes with every same-origin request; a change also carries the CSRF
    // value, which only a page of this origin can read.
    const csrf = csrfToken();
    if (csrf && !SAFE_METHODS.has(request.method)) request.headers.set("X-CSRF-Token", csrf);
    return request;
  },
  onResponse({ request, response }) {
    // An expired or revoked session: fall back to the login page.
    if (response.status === 401 && !request.url.endsWith("/auth/login")) setSignedIn(false);
    return response;
  },
};

export const api = createClient<paths>({
  // Same origin as the page (the backend serves the built app); absolute so it also works under
  // jsdom, where Request() has no page to resolve a relative URL against.
  baseUrl: window.location.origin,
  // Looked up per call so tests can stub globalThis.fetch after this module loaded.
  fetch: (request) => globalThis.fetch(request),
});
api.use(session);

export type Schemas = components["schemas"];
