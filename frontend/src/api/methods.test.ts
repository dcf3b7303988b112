import { describe, expect, it } from "vitest";
import { isMethod, methodDescription, methodLabel, METHODS } from "./methods";

describe("methods", () => {
  it("lists the registry's methods from the API's enum, in its order", () => {
    expect(METHODS[0]).toBe("loss");
    expect(METHODS).toContain("tracin");
    expect(METHODS).toContain("ensemble");
    expect(new Set(METHODS).size).toBe(METHODS.length);
    expect(isMethod("influence")).toBe(true);
    expect(isMethod("vibes")).toBe(false);
  });

  it("labels and explains every method from the spec, and any other name readably", () => {
    expect(methodLabel("length")).toBe("length heuristic");
    expect(methodLabel("oof_loss")).toBe("out-of-fold loss");
    expect(methodLabel("ensemble")).toBe("ensemble (−mean margin)");
    expect(methodLabel("gradient_similarity")).toBe("gradient similarity");
    expect(methodLabel("some_new_method")).toBe("some new method");
    for (const method of METHODS) expect(methodDescription(method)).toBeTruthy();
    expect(methodDescription("vibes")).toBeUndefined();
  });
});
