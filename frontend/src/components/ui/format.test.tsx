import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { formatNumber, formatPercent, formatWithUnit } from "./format";
import { Num } from "./Num";

describe("formatNumber", () => {
  it("writes at most four significant digits, the same way at every size", () => {
    expect(formatNumber(0.860297)).toBe("0.8603");
    expect(formatNumber(682.7234)).toBe("682.7");
    expect(formatNumber(-0.0123456)).toBe("-0.01235");
    expect(formatNumber(3.612e-4)).toBe("3.612×10⁻⁴");
    expect(formatNumber(4.531e-5)).toBe("4.531×10⁻⁵");
    expect(formatNumber(-2.5e-7)).toBe("-2.5×10⁻⁷");
    expect(formatNumber(0.2)).toBe("0.2");
    expect(formatNumber(123456.7)).toBe("1.235×10⁵");
  });

  it("keeps integers whole and has no exponent that could wrap", () => {
    expect(formatNumber(-1850)).toBe("-1850");
    expect(formatNumber(991)).toBe("991");
    expect(formatNumber(0)).toBe("0");
    for (const v of [4.531e-5, 1e-12, 9.99e20]) expect(formatNumber(v)).not.toMatch(/e/i);
  });

  it("reads '–' for a missing value", () => {
    expect(formatNumber(null)).toBe("–");
    expect(formatNumber(undefined)).toBe("–");
    expect(formatNumber(Number.NaN)).toBe("–");
  });

  it("adds a unit and writes fractions as percentages", () => {
    expect(formatWithUnit(-1850, "characters")).toBe("-1850 characters");
    expect(formatWithUnit(null, "nats")).toBe("–");
    expect(formatPercent(0.1)).toBe("10%");
    expect(formatPercent(0.001)).toBe("0.1%");
    expect(formatPercent(0.125)).toBe("12.5%");
  });
});

describe("<Num>", () => {
  it("shows the formatted value on one line with the full value on hover", () => {
    render(<Num value={4.5312e-5} unit="nats" />);
    const shown = screen.getByTitle("0.000045312");
    expect(shown).toHaveTextContent("4.531×10⁻⁵ nats");
    expect(shown).toHaveClass("num-value");
  });
});
