import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { WordDiff, wordDiff } from "./WordDiff";

describe("wordDiff", () => {
  it("marks the words only one side has, keeping the shared ones and the whitespace", () => {
    expect(wordDiff("the cat sat", "the dog sat")).toEqual([
      { kind: "same", text: "the " },
      { kind: "removed", text: "cat" },
      { kind: "added", text: "dog" },
      { kind: "same", text: " sat" },
    ]);
    expect(wordDiff("same", "same")).toEqual([{ kind: "same", text: "same" }]);
    expect(wordDiff("", "new words")).toEqual([{ kind: "added", text: "new words" }]);
  });

  it("gives up on texts too long to diff instead of freezing the page", () => {
    expect(wordDiff("w ".repeat(5000), "v ".repeat(5000))).toBeNull();
  });
});

describe("WordDiff", () => {
  it("highlights in each response what the other lacks", () => {
    render(<WordDiff chosen="Paris is the capital" rejected="Lyon is the capital" />);
    const chosen = screen.getByRole("region", { name: "Chosen response (diff)" });
    const rejected = screen.getByRole("region", { name: "Rejected response (diff)" });
    expect(chosen.querySelector("mark")!.textContent).toBe("Paris");
    expect(rejected.querySelector("mark")!.textContent).toBe("Lyon");
    expect(chosen.querySelector("pre")!.textContent).toBe("Paris is the capital");
  });
});
