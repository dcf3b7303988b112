import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, type RenderOptions } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter } from "react-router";
import { vi } from "vitest";

/** Renders `ui` with a fresh query client inside a router at `url` (default "/"). */
export function renderWithClient(ui: ReactElement, options?: RenderOptions & { url?: string }) {
  const { url = "/", ...renderOptions } = options ?? {};
  const client = new QueryClient({
    defaultOptions: { queries: { retry: false }, mutations: { retry: false } },
  });
  return {
    client,
    ...render(
      <QueryClientProvider client={client}>
        <MemoryRouter initialEntries={[url]}>{ui}</MemoryRouter>
      </QueryClientProvider>,
      renderOptions,
    ),
  };
}

type Handler = (request: Request, url: URL) => unknown | Response | Promise<unknown | Response>;

/**
 * Stubs fetch with a tiny router: `"GET /api/v1/jobs/1": () => body`. A handler returns a
 * body (sent as 200 JSON) or a Response. Unrouted requests fail the test loudly.
 */
export function mockApi(routes: Record<string, Handler>) {
  const calls: Request[] = [];
  const fetchMock = vi.fn(async (input: RequestInfo | URL) => {
    const request = input instanceof Request ? input : new Request(input);
    calls.push(request);
    const url = new URL(request.url);
    const handler = routes[`${request.method} ${url.pathname}`];
    if (!handler) throw new Error(`unexpected request ${request.method} ${url.pathname}${url.search}`);
    const result = await handler(request, url);
    if (result instanceof Response) return result;
    return new Response(JSON.stringify(result), {
      status: 200,
      headers: { "Content-Type": "application/json" },
    });
  });
  vi.stubGlobal("fetch", fetchMock);
  return { calls, fetchMock };
}
