import { describe, expect, it } from "vitest";

import { count } from "./count";

describe("count", () => {
  it("reads as English for one, many and none", () => {
    expect(count(1, "pair")).toBe("1 pair");
    expect(count(2, "pair")).toBe("2 pairs");
    expect(count(0, "bad row")).toBe("0 bad rows");
    expect(count(1204, "pair")).toBe(`${(1204).toLocaleString()} pairs`);
    expect(count(1, "entry", "entries")).toBe("1 entry");
    expect(count(3, "entry", "entries")).toBe("3 entries");
  });
});
