import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { cutoff, HarmHistogram, histogram, tickFormatter } from "./HarmHistogram";

describe("HarmHistogram", () => {
  it("bins values, the maximum into the last bin", () => {
    expect(histogram([0, 0.1, 0.5, 1], 2)).toEqual({ edges: [0, 0.5, 1], counts: [2, 2] });
  });

  it("finds the cut-off of the most harmful fraction", () => {
    const values = Array.from({ length: 20 }, (_, i) => i);
    expect(cutoff(values, 0.1)).toBe(18);
    expect(cutoff([], 0.1)).toBeNull();
  });

  it("keeps ticks of a narrow range distinct", () => {
    const format = tickFormatter(0.69291, 0.69334);
    expect(format(0.69291)).not.toBe(format(0.69334));
    expect(tickFormatter(-2, 3)(0.5)).toBe("0.5");
  });

  it("draws one labelled bar per bin and the cut-off line", () => {
    const harms = Array.from({ length: 50 }, (_, i) => i / 49);
    const { container } = render(<HarmHistogram harms={harms} topFraction={0.1} bins={10} />);
    expect(screen.getByRole("img", { name: /harm scores for 50 pairs, from 0 to 1/ })).toBeInTheDocument();
    expect(container.querySelectorAll("rect")).toHaveLength(10);
    expect(container.querySelectorAll("rect.bar-cut").length).toBeGreaterThan(0);
    expect(screen.getByText(/top 10%/)).toBeInTheDocument();
  });
});
