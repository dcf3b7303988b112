// The one HTTP client: typed by src/api/schema.d.ts, which `npm run gen:api` generates from the
// backend's OpenAPI document. Features call `api.GET("/api/v1/...")`, never fetch() directly.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { getToken, setToken } from "./session";

const auth: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  onResponse({ request, response }) {
    // An expired or revoked token: drop it so the app falls back to the login page.
    if (response.status === 401 && !request.url.endsWith("/auth/login")) setToken(null);
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
api.use(auth);

export type Schemas = components["schemas"];
