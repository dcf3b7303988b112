import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ReviewFilterBar, type ReviewFilters } from "./ReviewFilterBar";

function setup(value: ReviewFilters = { q: "", states: [], range: null }, sort = "-harm") {
  const onChange = vi.fn();
  const onSortChange = vi.fn();
  render(<ReviewFilterBar value={value} onChange={onChange} sort={sort} onSortChange={onSortChange} />);
  return { onChange, onSortChange };
}

describe("ReviewFilterBar", () => {
  it("applies a search and a score range together", async () => {
    const { onChange } = setup();
    await userEvent.type(screen.getByLabelText("Search"), "  refund policy ");
    await userEvent.selectOptions(screen.getByLabelText("Range column"), "harm_gradient_similarity");
    await userEvent.type(screen.getByLabelText("Range min"), "0.5");
    await userEvent.click(screen.getByRole("button", { name: "Apply filters" }));
    expect(onChange).toHaveBeenLastCalledWith({
      q: "refund policy",
      states: [],
      range: { column: "harm_gradient_similarity", min: 0.5, max: undefined },
    });
  });

  it("drops an empty range and filters by one review state at once", async () => {
    const { onChange } = setup({ q: "x", states: [], range: { column: "harm", min: 1 } });
    await userEvent.clear(screen.getByLabelText("Range min"));
    await userEvent.click(screen.getByRole("button", { name: "Apply filters" }));
    expect(onChange).toHaveBeenLastCalledWith({ q: "x", states: [], range: null });
    await userEvent.selectOptions(screen.getByLabelText("State"), "kept");
    expect(onChange).toHaveBeenLastCalledWith({ q: "x", states: ["kept"], range: { column: "harm", min: 1 } });
  });

  it("keeps what is typed when the parent re-renders with the same range", async () => {
    const onChange = vi.fn();
    const bar = (value: ReviewFilters) => (
      <ReviewFilterBar value={value} onChange={onChange} sort="-harm" onSortChange={vi.fn()} />
    );
    const { rerender } = render(bar({ q: "", states: [], range: { column: "harm", min: 1 } }));
    await userEvent.clear(screen.getByLabelText("Range min"));
    rerender(bar({ q: "", states: [], range: { column: "harm", min: 1 } })); // a new, equal object
    expect(screen.getByLabelText("Range min")).toHaveValue("");
    rerender(bar({ q: "", states: [], range: { column: "harm", min: 2 } })); // a new range: shown
    expect(screen.getByLabelText("Range min")).toHaveValue("2");
  });

  it("filters by an exact-check tag from the server's list, with the dataset's counts", async () => {
    const onChange = vi.fn();
    const tags = [
      { name: "duplicate", label: "exact duplicate", description: "The same pair again.", stage: "upload" as const },
      { name: "refusal", label: "refusal in the chosen response", description: "A refusal.", stage: "upload" as const },
    ];
    render(
      <ReviewFilterBar
        value={{ q: "", states: [], range: null }}
        onChange={onChange}
        sort="index"
        onSortChange={vi.fn()}
        scored={false}
        tags={tags}
        tagCounts={{ duplicate: 1234, refusal: 0 }}
      />,
    );
    const check = screen.getByLabelText("Check");
    expect(within(check).getByRole("option", { name: "exact duplicate (1,234)" })).toBeInTheDocument();
    expect(within(check).getByRole("option", { name: "refusal in the chosen response (0)" })).toBeInTheDocument();
    await userEvent.selectOptions(check, "duplicate");
    expect(onChange).toHaveBeenLastCalledWith({ q: "", states: [], range: null, tag: "duplicate" });
    // The same tags can be left out instead (not_tag): e.g. every pair but the ambiguous ones.
    const except = screen.getByLabelText("Except");
    expect(within(except).getByRole("option", { name: "exact duplicate (1,234)" })).toBeInTheDocument();
    await userEvent.selectOptions(except, "refusal");
    expect(onChange).toHaveBeenLastCalledWith({ q: "", states: [], range: null, notTag: "refusal" });
  });

  it("offers no check filter without the tag list", () => {
    setup();
    expect(screen.queryByLabelText("Check")).toBeNull();
    expect(screen.queryByLabelText("Except")).toBeNull();
  });

  it("sorts by any score, keeping the direction, and says what a high value means", async () => {
    const { onSortChange } = setup(undefined, "-harm_gradient_similarity");
    expect(screen.getByText(/High gradient similarity: its gradient opposes/)).toBeInTheDocument();
    expect(screen.queryByText(/harm_gradient_similarity/)).toBeNull();
    await userEvent.selectOptions(screen.getByLabelText("Sort by"), "loss");
    expect(onSortChange).toHaveBeenLastCalledWith("-loss");
    await userEvent.click(screen.getByLabelText("highest first"));
    expect(onSortChange).toHaveBeenLastCalledWith("harm_gradient_similarity");
  });
});
