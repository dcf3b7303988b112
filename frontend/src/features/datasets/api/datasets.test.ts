import { describe, expect, it } from "vitest";
import { previewHead } from "./datasets";

describe("previewHead", () => {
  it("sends a large line-based file's whole first lines, and other files whole", async () => {
    const text = '{"chosen":"a","rejected":"b"}\n'.repeat(10); // 30 bytes a line
    const big = new File([text], "pairs.jsonl");
    const head = await previewHead(big, 100);
    expect(head.name).toBe("pairs.jsonl");
    expect(await head.text()).toBe('{"chosen":"a","rejected":"b"}\n'.repeat(3));
    expect(await previewHead(big, 1000)).toBe(big); // small enough: as it is
    const gz = new File([text], "pairs.jsonl.gz");
    expect(await previewHead(gz, 100)).toBe(gz); // a cut gzip would not read
    const parquet = new File([text], "pairs.parquet");
    expect(await previewHead(parquet, 100)).toBe(parquet);
  });
});
