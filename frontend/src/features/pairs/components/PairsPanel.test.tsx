import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { makePair } from "../../../test/fixtures";
import { mockApi, renderWithClient } from "../../../test/utils";
import type { Pair } from "../api/pairs";
import { PairsPanel } from "./PairsPanel";

function setup() {
  const pairs: Pair[] = [
    makePair(3, 0.8, {
      prompt: "Human: keep   these\n  spaces\n\nAssistant:",
      chosen: " Sure:\n  1. indented",
      rejected: " No.",
    }),
    makePair(1, 0.2),
    makePair(0, -0.4),
  ];
  const flags = new Map<number, boolean>();
  const flagBodies: unknown[] = [];
  const withFlag = (pair: Pair) => ({ ...pair, flagged: flags.get(pair.id) ?? false });
  const api = mockApi({
    "GET /api/v1/datasets/1/pairs": (_request, url) => {
      const sort = url.searchParams.get("sort") ?? "index";
      const flagged = url.searchParams.get("flagged");
      let items = pairs.map(withFlag);
      if (flagged !== null) items = items.filter((pair) => String(pair.flagged) === flagged);
      if (sort === "-harm") items.sort((a, b) => b.scores!.harm! - a.scores!.harm!);
      if (sort === "harm") items.sort((a, b) => a.scores!.harm! - b.scores!.harm!);
      if (sort === "index") items.sort((a, b) => a.index - b.index);
      const offset = Number(url.searchParams.get("offset") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 50);
      return { items: items.slice(offset, offset + limit), total: items.length };
    },
    "GET /api/v1/jobs/7/histogram": () => ({
      column: "harm",
      n: 3,
      edges: [-0.4, 0.2, 0.8],
      counts: [1, 2],
      quantiles: { p10: -0.28, p50: 0.2, p90: 0.68 },
    }),
    "PUT /api/v1/datasets/1/pairs/103/flag": async (request) => {
      const body = (await request.json()) as { flagged: boolean; note: string | null };
      flagBodies.push(body);
      flags.set(103, body.flagged);
      return { ...withFlag(pairs[0]), note: body.note, scores: null };
    },
    "POST /api/v1/datasets/1/flags": async (request) => {
      const body = (await request.json()) as { job_id: number; top_fraction: number };
      expect(body).toEqual({ job_id: 7, top_fraction: 0.1 });
      flags.set(103, true);
      return { flagged: 1, unflagged: 0 };
    },
  });
  renderWithClient(<PairsPanel datasetId={1} jobId={7} datasetPairs={4} />);
  return { ...api, flagBodies };
}

function dataRows() {
  const table = screen.getByRole("table", { name: "Pairs ranked by harm" });
  return within(table)
    .getAllByRole("row")
    .filter((row) => row.getAttribute("aria-hidden") !== "true")
    .slice(1);
}

describe("PairsPanel", () => {
  it("ranks a job's pairs by harm and plots their histogram", async () => {
    const { calls } = setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    expect(dataRows().map((row) => within(row).getAllByRole("cell")[1].textContent)).toEqual([
      "3",
      "1",
      "0",
    ]);
    const list = calls.find((r) => new URL(r.url).searchParams.get("sort") === "-harm")!;
    expect(new URL(list.url).searchParams.get("job_id")).toBe("7");
    expect(
      await screen.findByRole("img", { name: /histogram of harm scores for 3 pairs/i }),
    ).toBeInTheDocument();
    expect(screen.getByText(/3 scored training pairs · median 0\.2 · 90th percentile 0\.68/)).toBeInTheDocument();
    // The histogram comes binned from the server; no page of texts is read for it.
    const histogram = calls.find((r) => new URL(r.url).pathname.endsWith("/histogram"))!;
    expect(Object.fromEntries(new URL(histogram.url).searchParams)).toEqual({ column: "harm", bins: "40" });
    expect(calls.filter((r) => new URL(r.url).pathname.endsWith("/pairs"))).toHaveLength(2);
    expect(screen.getByTestId("flag-summary")).toHaveTextContent("0 of 4 pairs flagged");
  });

  it("shows the selected pair's prompt, then chosen and rejected side by side, whitespace kept", async () => {
    setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    await userEvent.click(dataRows()[0]);
    const prompt = screen.getByRole("region", { name: "Prompt" });
    expect(prompt.querySelector("pre")!.textContent).toBe("Human: keep   these\n  spaces\n\nAssistant:");
    const chosen = screen.getByRole("region", { name: "Chosen response" });
    const rejected = screen.getByRole("region", { name: "Rejected response" });
    expect(chosen.querySelector("pre")!.textContent).toBe(" Sure:\n  1. indented");
    expect(rejected).toHaveTextContent("No.");
    expect(chosen.parentElement).toBe(rejected.parentElement);
  });

  it("flags with a note and unflags from the detail view", async () => {
    const { flagBodies } = setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    await userEvent.click(dataRows()[0]);
    await userEvent.type(screen.getByLabelText("Note (optional)"), "chosen is wrong");
    await userEvent.click(screen.getByRole("button", { name: "Flag pair" }));
    await waitFor(() =>
      expect(screen.getByRole("checkbox", { name: "Flag pair 3" })).toBeChecked(),
    );
    expect(flagBodies).toEqual([{ flagged: true, note: "chosen is wrong" }]);
    expect(await screen.findByText("1 of 4 pairs flagged · an export keeps 3")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Unflag pair" }));
    await waitFor(() =>
      expect(screen.getByRole("checkbox", { name: "Flag pair 3" })).not.toBeChecked(),
    );
  });

  it("flags the top 10% in one action and filters to flagged pairs", async () => {
    setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    expect(screen.getByLabelText("Fraction to flag (%)")).toHaveValue(10);
    await userEvent.click(screen.getByRole("button", { name: "Flag top 10%" }));
    expect(await screen.findByTestId("flag-message")).toHaveTextContent("1 pairs newly flagged");
    await waitFor(() =>
      expect(screen.getByRole("checkbox", { name: "Flag pair 3" })).toBeChecked(),
    );
    await userEvent.selectOptions(screen.getByLabelText("Show"), "flagged");
    await waitFor(() => expect(dataRows()).toHaveLength(1));
  });
});
