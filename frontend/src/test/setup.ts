import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach, vi } from "vitest";

// findBy… and waitFor wait up to 5 s: the machine running the suite is shared, and a first
// render with its fetches can take longer than the default 1 s there.
configure({ asyncUtilTimeout: 5_000 });
// A whole user flow (typing, several fetches) can take more than vitest's 5 s there too.
vi.setConfig({ testTimeout: 30_000 });

// jsdom lays nothing out: give elements a size so the virtualised table renders its rows.
class ResizeObserverStub {
  observe() {}
  unobserve() {}
  disconnect() {}
}
globalThis.ResizeObserver ??= ResizeObserverStub as unknown as typeof ResizeObserver;
// (@tanstack/virtual-core measures the scroll element's client box.)
Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 400 });
Object.defineProperty(HTMLElement.prototype, "clientWidth", { configurable: true, get: () => 800 });

afterEach(() => {
  cleanup();
  localStorage.clear();
  for (const cookie of document.cookie.split(";")) {
    const name = cookie.split("=")[0].trim();
    if (name) document.cookie = `${name}=; max-age=0; path=/`;
  }
  vi.unstubAllGlobals();
  vi.restoreAllMocks();
});
