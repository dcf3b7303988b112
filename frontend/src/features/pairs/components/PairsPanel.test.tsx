import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useLocation, useNavigate } from "react-router";
import { describe, expect, it } from "vitest";
import { makePair } from "../../../test/fixtures";
import { mockApi, renderWithClient } from "../../../test/utils";
import type { Pair } from "../api/pairs";
import { PairsPanel } from "./PairsPanel";

/** The router's current search string, to check what the URL holds, and the browser's Back. */
function Location() {
  const navigate = useNavigate();
  return (
    <>
      <output data-testid="location">{useLocation().search}</output>
      <button type="button" onClick={() => void navigate(-1)}>
        History back
      </button>
    </>
  );
}

function setup(
  groupBudget: number | null = null,
  jobId: number | null = 7,
  { url = "/", defaultMethod = null as string | null, defaultReason = null as string | null } = {},
) {
  const pairs: Pair[] = [
    // The file's row 4 was skipped at upload: the fourth stored pair is row 5 of the file.
    makePair(3, 0.8, {
      row: 5,
      prompt: "Human: keep   these\n  spaces\n\nAssistant:",
      chosen: " Sure:\n  1. indented",
      rejected: " No.",
    }),
    makePair(1, 0.2),
    makePair(0, -0.4),
  ];
  const flags = new Map<number, boolean>();
  const flagBodies: unknown[] = [];
  const withFlag = (pair: Pair): Pair => {
    const flagged = flags.get(pair.id) ?? false;
    return { ...pair, flagged, state: flagged ? "flagged" : "unreviewed" };
  };
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
    "GET /api/v1/datasets/1/review/actions": () => [],
    "PUT /api/v1/datasets/1/pairs/103/review": async (request) => {
      const body = (await request.json()) as { state: string; note: string | null };
      flagBodies.push(body);
      flags.set(103, body.state === "flagged");
      return { ...withFlag(pairs[0]), state: body.state, note: body.note, scores: null };
    },
    "GET /api/v1/datasets/1/pairs/101/history": () => [],
    "GET /api/v1/datasets/1/pairs/100/history": () => [],
    "PUT /api/v1/datasets/1/pairs/101/review": async (request) => {
      const body = (await request.json()) as { state: string; note: string | null };
      flagBodies.push(body);
      return { ...withFlag(pairs[1]), state: body.state, note: body.note, scores: null };
    },
    "POST /api/v1/datasets/1/review/undo": () => ({ changed: 1, dry_run: false }),
    "GET /api/v1/datasets/1/pairs/100": () => withFlag(pairs[2]),
    "GET /api/v1/datasets/1/pairs/103/history": () => [],
    "GET /api/v1/jobs/7/histogram": () => ({
      column: "harm",
      n: 3,
      edges: [-0.4, 0.2, 0.8],
      counts: [1, 2],
      quantiles: { p10: -0.28, p50: 0.2, p90: 0.68 },
    }),
    "POST /api/v1/datasets/1/flags": async (request) => {
      const body = (await request.json()) as Record<string, unknown>;
      flagBodies.push(body);
      if (body.rule === "greedy") {
        flags.set(103, true);
        flags.set(101, true);
        return { flagged: 2, unflagged: 0 };
      }
      expect(body).toEqual({ job_id: 7, top_fraction: 0.1 });
      flags.set(103, true);
      return { flagged: 1, unflagged: 0 };
    },
    "GET /api/v1/datasets/1/pairs/103/interactions": () => ({
      pair_id: 103,
      job_id: 7,
      items: [
        { pair_id: 101, index: 1, row: 2, prompt: "Human: a near copy", kappa: 0.0042, kind: "redundant", group_order: 5 },
        { pair_id: 100, index: 0, row: 1, prompt: "Human: other", kappa: -0.001, kind: "complementary", group_order: null },
      ],
    }),
  });
  renderWithClient(
    <>
      <PairsPanel datasetId={1} jobId={jobId} datasetPairs={4} groupBudget={groupBudget} defaultMethod={defaultMethod} defaultReason={defaultReason} />
      <Location />
    </>,
    { url },
  );
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
    // Rows are the file's rows (from 1), skipped ones left out.
    expect(dataRows().map((row) => within(row).getAllByRole("cell")[1].textContent)).toEqual([
      "5",
      "2",
      "1",
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

  it("browses the stored pairs before any audit: file order, no scores, no histogram", async () => {
    const { calls } = setup(null, null);
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    expect(dataRows().map((row) => within(row).getAllByRole("cell")[1].textContent)).toEqual(["1", "2", "5"]);
    const list = calls.find((r) => new URL(r.url).pathname.endsWith("/pairs"))!;
    expect(new URL(list.url).searchParams.get("job_id")).toBeNull();
    expect(new URL(list.url).searchParams.get("sort")).toBe("index");
    expect(calls.some((r) => new URL(r.url).pathname.endsWith("/histogram"))).toBe(false);
    expect(screen.queryByLabelText("Range column")).not.toBeInTheDocument();
    expect(screen.getByText(/pairs match/)).toBeInTheDocument();
  });

  it("runs the keyboard loop: j/k move, s swaps and advances, ? shows the keys", async () => {
    const { flagBodies } = setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    await userEvent.keyboard("j");
    expect(dataRows()[0]).toHaveAttribute("aria-selected", "true");
    await userEvent.keyboard("s");
    await waitFor(() => expect(flagBodies).toContainEqual({ state: "swapped", note: null }));
    // Auto-advance: the next pair is selected.
    expect(dataRows()[1]).toHaveAttribute("aria-selected", "true");
    await userEvent.keyboard("k");
    expect(dataRows()[0]).toHaveAttribute("aria-selected", "true");
    await waitFor(() => expect(within(dataRows()[0]).getByText("swapped")).toBeInTheDocument());
    await userEvent.keyboard("?");
    expect(screen.getByRole("dialog", { name: "Keyboard shortcuts" })).toHaveTextContent("K (shift+k)");
    // Keys typed into a field are text, not commands.
    await userEvent.type(screen.getByLabelText("Note (optional)"), "fks");
    expect(flagBodies).toHaveLength(1);
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
      expect(screen.getByRole("checkbox", { name: "Flag pair at row 5" })).toBeChecked(),
    );
    expect(flagBodies).toEqual([{ state: "flagged", note: "chosen is wrong" }]);
    expect(await screen.findByText("1 of 4 pairs flagged · an export keeps 3")).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Unflag pair" }));
    await waitFor(() =>
      expect(screen.getByRole("checkbox", { name: "Flag pair at row 5" })).not.toBeChecked(),
    );
  });

  it("flags the top 10% in one action and filters to flagged pairs", async () => {
    setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    expect(screen.getByLabelText("Fraction to flag (%)")).toHaveValue(10);
    await userEvent.click(screen.getByRole("button", { name: "Flag top 10%" }));
    expect(await screen.findByTestId("flag-message")).toHaveTextContent("Flagged the top 10% by harm: 1 pair newly flagged");
    await waitFor(() =>
      expect(screen.getByRole("checkbox", { name: "Flag pair at row 5" })).toBeChecked(),
    );
    await userEvent.selectOptions(screen.getByLabelText("Show"), "flagged");
    await waitFor(() => expect(dataRows()).toHaveLength(1));
  });

  it("offers no budget prune for an audit without the group method", async () => {
    setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    expect(screen.queryByRole("form", { name: "Prune a budget" })).not.toBeInTheDocument();
    await userEvent.click(dataRows()[0]);
    expect(screen.queryByRole("region", { name: "Strongest interactions" })).not.toBeInTheDocument();
  });

  it("prunes a budget greedily and shows a pair's strongest interactions with κ", async () => {
    const { flagBodies } = setup(2);
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    expect(screen.getByLabelText("Budget (pairs, or a fraction < 1)")).toHaveValue(2);
    await userEvent.click(screen.getByRole("button", { name: "Prune a budget of 2 (greedy)" }));
    expect(await screen.findByTestId("flag-message")).toHaveTextContent("2 pairs newly flagged");
    expect(flagBodies).toContainEqual({ job_id: 7, rule: "greedy", budget: 2 });
    await userEvent.click(dataRows()[0]);
    // The pair view and its partners name the file's rows.
    expect(screen.getByRole("heading", { name: /^Pair at row 5/ })).toBeInTheDocument();
    const region = screen.getByRole("region", { name: "Strongest interactions" });
    const rows = await within(region).findAllByTestId("interaction");
    expect(rows).toHaveLength(2);
    expect(within(rows[0]).getAllByRole("cell")[0]).toHaveTextContent("2");
    expect(rows[0]).toHaveTextContent("redundant");
    expect(rows[0]).toHaveTextContent("0.0042");
    expect(rows[1]).toHaveTextContent("complementary");
  });

  it("keeps the open pair in the URL", async () => {
    setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    await userEvent.click(dataRows()[1]);
    expect(screen.getByTestId("location")).toHaveTextContent("pair=101");
    expect(screen.getByRole("heading", { name: /^Pair at row 2/ })).toBeInTheDocument();
  });

  it("makes opening a pair and each sort a step of the history, but not moving between pairs", async () => {
    setup(null, 7, { url: "/?sort=-harm" });
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    const location = screen.getByTestId("location");
    await userEvent.click(dataRows()[1]);
    expect(location).toHaveTextContent("?sort=-harm&pair=101");
    await userEvent.keyboard("j");
    expect(location).toHaveTextContent("?sort=-harm&pair=100");
    await userEvent.selectOptions(screen.getByLabelText("Sort by"), "index");
    expect(location).toHaveTextContent("?sort=-index&pair=100");
    // Applying the filters already shown adds no step.
    await userEvent.click(screen.getByRole("button", { name: "Apply filters" }));
    const back = screen.getByRole("button", { name: "History back" });
    await userEvent.click(back);
    expect(location).toHaveTextContent("?sort=-harm&pair=100");
    expect(await screen.findByRole("heading", { name: /^Pair at row 1/ })).toBeInTheDocument();
    await userEvent.click(back);
    expect(location).toHaveTextContent(/^\?sort=-harm$/);
    await waitFor(() => expect(screen.queryByRole("heading", { name: /^Pair at row/ })).not.toBeInTheDocument());
  });

  it("opens the pair a shared link names", async () => {
    setup(null, 7, { url: "/?sort=-harm&pair=100" });
    expect(await screen.findByRole("heading", { name: /^Pair at row 1/ })).toBeInTheDocument();
    await waitFor(() => expect(dataRows()[2]).toHaveAttribute("aria-selected", "true"));
  });

  it("announces each decision, and an undo returns to the undone pair", async () => {
    const { flagBodies } = setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    await userEvent.keyboard("j");
    await userEvent.keyboard("f");
    await waitFor(() => expect(screen.getByTestId("announcer")).toHaveTextContent("Flagged pair at row 5."));
    // f advanced to the next pair …
    expect(dataRows()[1]).toHaveAttribute("aria-selected", "true");
    await userEvent.keyboard("K");
    await waitFor(() => expect(screen.getByTestId("announcer")).toHaveTextContent("Kept pair at row 2."));
    expect(flagBodies).toHaveLength(2);
    expect(dataRows()[2]).toHaveAttribute("aria-selected", "true");
    // … and u undoes the keep and goes back to it.
    await userEvent.keyboard("u");
    await waitFor(() => expect(dataRows()[1]).toHaveAttribute("aria-selected", "true"));
    expect(screen.getByTestId("announcer")).toHaveTextContent("Undone: 1 pair restored.");
    expect(screen.getByTestId("location")).toHaveTextContent("pair=101");
  });

  it("closes the keyboard help with Escape", async () => {
    setup();
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    await userEvent.keyboard("?");
    expect(screen.getByRole("dialog", { name: "Keyboard shortcuts" })).toBeInTheDocument();
    await userEvent.keyboard("{Escape}");
    expect(screen.queryByRole("dialog", { name: "Keyboard shortcuts" })).not.toBeInTheDocument();
  });

  it("names the default score in the header, with its unit, and says why it is the default", async () => {
    setup(null, 7, { defaultMethod: "length" });
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    const table = screen.getByRole("table", { name: "Pairs ranked by harm" });
    const harm = within(table).getByRole("columnheader", { name: /harm = length heuristic/ });
    expect(harm).toHaveTextContent("characters");
    expect(within(table).getByRole("columnheader", { name: /BT loss/ })).toHaveTextContent("nats");
    const legend = screen.getByTestId("score-legend");
    expect(legend).toHaveTextContent("Ranked by harm = length heuristic (characters): high = chosen is much shorter than rejected.");
    expect(screen.getByTestId("default-reason")).toHaveTextContent(/too small to test their rankings on canaries/);
    expect(within(screen.getByLabelText("Sort by")).getByRole("option", { name: "harm = length heuristic" })).toBeInTheDocument();
  });

  it("says why the audit chose its ranking when its canaries decided", async () => {
    setup(null, 7, { defaultMethod: "loss", defaultReason: "on 40 canaries the loss put 31 in its top 10%" });
    await waitFor(() => expect(dataRows()).toHaveLength(3));
    expect(screen.getByTestId("default-reason")).toHaveTextContent(
      "this audit chose it from its own evidence: on 40 canaries the loss put 31 in its top 10%",
    );
  });
});
