import { fireEvent, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { cutoff, HarmHistogram, tickFormatter } from "./HarmHistogram";

// 20 values 0..19 in 10 bins of width 2: two per bin.
const twoPerBin = {
  edges: Array.from({ length: 11 }, (_, i) => 2 * i - 0.5),
  counts: new Array<number>(10).fill(2),
};

describe("HarmHistogram", () => {
  it("estimates the cut-off of the most harmful fraction from the counts", () => {
    // The top 10% of 20 are the 2 pairs of the last bin: the cut is its lower edge.
    expect(cutoff(twoPerBin, 0.1)).toBeCloseTo(17.5);
    // ceil(0.15 × 20) = 3: the whole last bin and half of the one below.
    expect(cutoff(twoPerBin, 0.15)).toBeCloseTo(16.5);
    // Empty bins at the top are skipped.
    expect(cutoff({ edges: [0, 1, 2, 3], counts: [5, 5, 0] }, 0.1)).toBeCloseTo(1.8);
    expect(cutoff(twoPerBin, 1)).toBeCloseTo(-0.5);
    expect(cutoff(twoPerBin, 0)).toBeNull();
    expect(cutoff({ edges: [0, 1], counts: [0] }, 0.1)).toBeNull();
  });

  it("brushes: a click on a bar picks its range, a drag across the plot picks the span", async () => {
    const onBrush = vi.fn();
    render(<HarmHistogram histogram={twoPerBin} column="loss" onBrush={onBrush} selected={{ min: 3.5 }} />);
    expect(screen.getByRole("img", { name: /histogram of loss scores for 20 pairs/i })).toBeInTheDocument();
    await userEvent.click(screen.getAllByTestId("histogram-bar")[3]);
    expect(onBrush).toHaveBeenLastCalledWith(5.5, 7.5);
    // A drag: the plot is 640 units wide on screen here, so screen x = viewBox x.
    const svg = screen.getByRole("img");
    svg.getBoundingClientRect = () => ({ left: 0, top: 0, width: 640, height: 200, right: 640, bottom: 200, x: 0, y: 0, toJSON: () => ({}) });
    fireEvent.pointerDown(svg, { clientX: 44 });
    fireEvent.pointerMove(svg, { clientX: 44 + 290 });
    fireEvent.pointerUp(svg, { clientX: 44 + 290 });
    const [lo, hi] = onBrush.mock.calls.at(-1)!;
    expect(lo).toBeCloseTo(-0.5);
    expect(hi).toBeCloseTo(9.5); // half of the 580-wide plot: half the range
    expect(svg.querySelector("rect.brush")).not.toBeNull(); // the selected range is drawn
  });

  it("keeps ticks of a narrow range distinct", () => {
    const format = tickFormatter(0.69291, 0.69334);
    expect(format(0.69291)).not.toBe(format(0.69334));
    expect(tickFormatter(-2, 3)(0.5)).toBe("0.5");
  });

  it("draws one labelled bar per bin and the cut-off line", () => {
    const { container } = render(
      <HarmHistogram
        histogram={{ edges: [0, 0.2, 0.4, 0.6, 0.8, 1], counts: [10, 20, 10, 5, 5] }}
        topFraction={0.1}
      />,
    );
    expect(screen.getByRole("img", { name: /harm scores for 50 pairs, from 0 to 1/ })).toBeInTheDocument();
    const bars = container.querySelectorAll("rect");
    expect(bars).toHaveLength(5);
    // ceil(0.1 × 50) = 5 pairs: exactly the last bin.
    expect([...bars].map((bar) => bar.classList.contains("bar-cut"))).toEqual([false, false, false, false, true]);
    expect(bars[1].querySelector("title")).toHaveTextContent("20 pairs with harm in [0.2, 0.4)");
    expect(screen.getByText(/top 10%/)).toBeInTheDocument();
  });

  it("says so when there is nothing to plot", () => {
    render(<HarmHistogram histogram={{ edges: [0, 1], counts: [0] }} />);
    expect(screen.getByText("No harm scores to plot.")).toBeInTheDocument();
  });
});
