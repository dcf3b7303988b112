import { describe, expect, it } from "vitest";
import { describeDetail } from "./errors";

describe("describeDetail", () => {
  it("names the row and column of a rejected upload", () => {
    expect(
      describeDetail(422, { detail: { message: "not valid JSON", row: 12, column: null } }),
    ).toBe("Row 12: not valid JSON");
    expect(describeDetail(422, { detail: { message: "empty", row: 3, column: "chosen" } })).toBe(
      'Row 3, column "chosen": empty',
    );
    expect(describeDetail(422, { detail: { message: "bad quote", row: 2, column: 17 } })).toBe(
      "Row 2, column 17: bad quote",
    );
    // The backend's own message already names the place: not repeated.
    expect(
      describeDetail(422, {
        detail: { message: "row 4, column chosen: is empty", row: 4, column: "chosen" },
      }),
    ).toBe("Row 4, column chosen: is empty");
  });

  it("passes a plain detail through and summarises FastAPI's field errors", () => {
    expect(describeDetail(401, { detail: "wrong username or password" })).toBe(
      "wrong username or password",
    );
    expect(
      describeDetail(422, { detail: [{ loc: ["body", "top_fraction"], msg: "must be > 0" }] }),
    ).toBe("top_fraction: must be > 0");
    expect(describeDetail(500, "Internal Server Error")).toBe("Internal Server Error");
    expect(describeDetail(502, undefined)).toBe("The server answered 502.");
  });
});
