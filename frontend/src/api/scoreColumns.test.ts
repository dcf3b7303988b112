import { describe, expect, it } from "vitest";
import { RANKED_COLUMNS, SCORE_COLUMNS, SHOWN_COLUMNS, scoreColumn, scoreColumnsFrom } from "./scoreColumns";

describe("score columns from the OpenAPI document", () => {
  it("lists the registry's columns in table order, with labels, units and orientation", () => {
    expect(SCORE_COLUMNS[0]).toMatchObject({ column: "harm", orientation: "higher_harmful" });
    expect(scoreColumn("loss")).toMatchObject({ label: "BT loss", unit: "nats", ranked: true });
    expect(scoreColumn("margin")?.orientation).toBe("lower_harmful");
    expect(scoreColumn("vibes")).toBeUndefined();
  });

  it("ranks by harm columns but not by their repeats, and shows what is not a repeat", () => {
    const ranked = RANKED_COLUMNS.map((c) => c.column);
    expect(ranked).toContain("harm_gradient_similarity");
    expect(ranked).not.toContain("removal_effect_influence");
    const shown = SHOWN_COLUMNS.map((c) => c.column);
    expect(shown).toContain("group_order");
    expect(shown).not.toContain("harm_loss");
  });

  it("picks up a column added to the registry with no list to edit", () => {
    const columns = scoreColumnsFrom({
      enum: ["harm", "harm_prompt_length"],
      "x-enum-labels": ["harm (default)", "prompt length"],
      "x-enum-units": ["the default method's", "characters"],
      "x-enum-orientations": ["higher_harmful", "higher_harmful"],
      "x-enum-descriptions": ["ranked most harmful", "a long prompt"],
      "x-enum-ranked": [true, true],
      "x-enum-shown": [true, true],
    });
    expect(columns[1]).toEqual({
      column: "harm_prompt_length",
      label: "prompt length",
      unit: "characters",
      orientation: "higher_harmful",
      high: "a long prompt",
      ranked: true,
      shown: true,
    });
  });
});
