import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { makePair } from "../../../test/fixtures";
import type { Pair, Sort } from "../api/pairs";
import { PairsTable, sortToState, stateToSort } from "./PairsTable";

const pairs = [makePair(4, 0.9), makePair(0, 0.5), makePair(2, -0.1)];

function renderTable(overrides: Partial<Parameters<typeof PairsTable>[0]> = {}) {
  const handlers = { onSortChange: vi.fn(), onSelect: vi.fn(), onToggleFlag: vi.fn() };
  render(
    <PairsTable
      pairs={pairs}
      total={pairs.length}
      sort={"-harm" as Sort}
      selectedId={null}
      {...handlers}
      {...overrides}
    />,
  );
  return handlers;
}

function bodyRows() {
  const table = screen.getByRole("table", { name: "Pairs ranked by harm" });
  return within(table)
    .getAllByRole("row")
    .filter((row) => row.getAttribute("aria-hidden") !== "true")
    .slice(1);
}

describe("PairsTable", () => {
  it("renders the pairs in the given order with rank, harm and loss", () => {
    renderTable();
    const rows = bodyRows();
    expect(rows).toHaveLength(3);
    expect(within(rows[0]).getAllByRole("cell").map((cell) => cell.textContent)).toEqual([
      "1",
      "5",
      "0.9",
      "1.8",
      "–",
      "Human: question 4 Assistant:",
      "helpful answer 4",
      "unhelpful answer 4",
      "–",
      "",
    ]);
    expect(within(rows[2]).getAllByRole("cell")[0]).toHaveTextContent("3");
    expect(screen.getByRole("columnheader", { name: /harm/i })).toHaveAttribute(
      "aria-sort",
      "descending",
    );
  });

  it("asks for a new server-side sort when a header is clicked", async () => {
    const { onSortChange } = renderTable();
    await userEvent.click(screen.getByRole("button", { name: /harm/i }));
    expect(onSortChange).toHaveBeenLastCalledWith("harm");
    await userEvent.click(screen.getByRole("button", { name: /loss/i }));
    expect(onSortChange).toHaveBeenLastCalledWith("-loss");
    await userEvent.click(screen.getByRole("button", { name: /row/i }));
    expect(onSortChange).toHaveBeenLastCalledWith("index");
  });

  it("re-renders in the new order when the parent applies the sort", async () => {
    function Harness() {
      const [sort, setSort] = useState<Sort>("-harm");
      const sorted = [...pairs].sort((a, b) =>
        sort === "-harm" ? b.scores!.harm! - a.scores!.harm! : a.scores!.harm! - b.scores!.harm!,
      );
      return (
        <PairsTable
          pairs={sorted}
          total={sorted.length}
          sort={sort}
          onSortChange={setSort}
          selectedId={null}
          onSelect={() => {}}
          onToggleFlag={() => {}}
        />
      );
    }
    render(<Harness />);
    expect(within(bodyRows()[0]).getAllByRole("cell")[1]).toHaveTextContent("5");
    await userEvent.click(screen.getByRole("button", { name: /harm/i }));
    expect(screen.getByRole("columnheader", { name: /harm/i })).toHaveAttribute("aria-sort", "ascending");
    expect(within(bodyRows()[0]).getAllByRole("cell")[1]).toHaveTextContent("3");
  });

  it("selects a row on click and flags from the checkbox without selecting", async () => {
    const { onSelect, onToggleFlag } = renderTable({ selectedId: 100 });
    await userEvent.click(screen.getByText("Human: question 2 Assistant:"));
    expect(onSelect).toHaveBeenCalledWith(pairs[2]);
    onSelect.mockClear();
    await userEvent.click(screen.getByRole("checkbox", { name: "Flag pair at row 5" }));
    expect(onToggleFlag).toHaveBeenCalledWith(pairs[0], true);
    expect(onSelect).not.toHaveBeenCalled();
    expect(bodyRows()[1]).toHaveAttribute("aria-selected", "true");
  });

  it("moves the selection with the arrow keys", async () => {
    const { onSelect } = renderTable();
    bodyRows()[0].focus();
    await userEvent.keyboard("{ArrowDown}");
    expect(onSelect).toHaveBeenLastCalledWith(pairs[1]);
    await userEvent.keyboard("{Enter}");
    expect(onSelect).toHaveBeenCalledTimes(2);
  });

  it("renders only a window of a long list", () => {
    const many: Pair[] = Array.from({ length: 2000 }, (_, i) => makePair(i, 1 - i / 2000));
    const onNeedMore = vi.fn();
    renderTable({ pairs: many, total: 5000, onNeedMore, height: 400 });
    const rendered = bodyRows().length;
    expect(rendered).toBeGreaterThan(5);
    expect(rendered).toBeLessThan(100);
    // Far from the end of what is loaded: no need for the next page yet.
    expect(onNeedMore).not.toHaveBeenCalled();
  });

  it("asks for the next page when the loaded rows run out before the total", () => {
    const few: Pair[] = Array.from({ length: 12 }, (_, i) => makePair(i, 1 - i / 12));
    const onNeedMore = vi.fn();
    renderTable({ pairs: few, total: 500, onNeedMore });
    expect(onNeedMore).toHaveBeenCalled();
  });

  it("maps the API's sort to TanStack sorting state and back", () => {
    expect(sortToState("-harm")).toEqual([{ id: "harm", desc: true }]);
    expect(stateToSort([{ id: "index", desc: false }])).toBe("index");
  });
});
