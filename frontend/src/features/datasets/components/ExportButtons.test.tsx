import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mockApi, renderWithClient } from "../../../test/utils";
import type { Dataset } from "../api/datasets";
import { ExportButtons } from "./ExportButtons";

const dataset = {
  id: 5,
  name: "hh",
  filename: "hh.jsonl",
  format: "jsonl",
  schema_kind: "prompt_chosen_rejected",
  n_pairs: 60,
  created_at: "2026-12-07T06:00:00Z",
  tag_counts: { duplicate: 2, ambiguous: 7, refusal: 0 },
} as unknown as Dataset;

const SOURCES = [
  { id: 11, label: "Audit 11" },
  { id: 12, label: "Judge 12" },
];

function blobRoute(exports: URL[]) {
  return (_request: Request, url: URL) => {
    exports.push(url);
    return new Response(new Blob(["{}\n"]), {
      status: 200,
      headers: { "Content-Disposition": 'attachment; filename="hh.cleaned.jsonl"' },
    });
  };
}

describe("ExportButtons", () => {
  beforeEach(() => {
    vi.stubGlobal("URL", Object.assign(URL, { createObjectURL: () => "blob:x", revokeObjectURL: () => {} }));
  });
  afterEach(() => vi.unstubAllGlobals());

  it("sends no filter by default and offers only the tags some pair has", async () => {
    const exports: URL[] = [];
    mockApi({ "GET /api/v1/datasets/5/export": blobRoute(exports) });
    renderWithClient(<ExportButtons dataset={dataset} softLabelSources={SOURCES} />);
    const only = screen.getByLabelText("only pairs tagged");
    const names = Array.from((only as HTMLSelectElement).options).map((o) => o.textContent);
    expect(names).toEqual(["(any pair)", "duplicate (2)", "ambiguous (7)"]);
    expect(screen.getByLabelText("the job's ambiguous pairs")).toBeDisabled();

    await userEvent.click(screen.getByRole("button", { name: "JSONL" }));
    await waitFor(() => expect(exports).toHaveLength(1));
    const query = exports[0].searchParams;
    expect(query.get("format")).toBe("jsonl");
    expect(query.get("exclude_flagged")).toBe("true");
    for (const name of ["tag", "not_tag", "soft_labels_job", "ambiguous"]) {
      expect(query.has(name)).toBe(false);
    }
  });

  it("sends the tag filters, the soft-label job and the ambiguous choice", async () => {
    const exports: URL[] = [];
    mockApi({ "GET /api/v1/datasets/5/export": blobRoute(exports) });
    renderWithClient(<ExportButtons dataset={dataset} softLabelSources={SOURCES} />);
    await userEvent.selectOptions(screen.getByLabelText("only pairs tagged"), "duplicate");
    await userEvent.selectOptions(screen.getByLabelText("leave out pairs tagged"), "ambiguous");
    await userEvent.selectOptions(screen.getByLabelText("soft labels from"), "12");
    const mode = screen.getByLabelText("the job's ambiguous pairs");
    expect(mode).toBeEnabled();
    await userEvent.selectOptions(mode, "only");
    await userEvent.click(screen.getByRole("button", { name: "PARQUET" }));
    await waitFor(() => expect(exports).toHaveLength(1));
    const query = exports[0].searchParams;
    expect(query.get("format")).toBe("parquet");
    expect(query.getAll("tag")).toEqual(["duplicate"]);
    expect(query.getAll("not_tag")).toEqual(["ambiguous"]);
    expect(query.get("soft_labels_job")).toBe("12");
    expect(query.get("ambiguous")).toBe("only");

    // Back to no soft labels: the ambiguous choice is not sent (the API would refuse it).
    await userEvent.selectOptions(screen.getByLabelText("soft labels from"), "");
    await userEvent.click(screen.getByRole("button", { name: "CSV" }));
    await waitFor(() => expect(exports).toHaveLength(2));
    expect(exports[1].searchParams.has("ambiguous")).toBe(false);
    expect(exports[1].searchParams.has("soft_labels_job")).toBe(false);
  });

  it("says when no pair has a tag and no job can give soft labels", () => {
    mockApi({});
    renderWithClient(<ExportButtons dataset={{ ...dataset, tag_counts: { duplicate: 0 } }} />);
    expect(screen.getByLabelText("only pairs tagged")).toBeDisabled();
    expect(screen.getByLabelText("soft labels from")).toBeDisabled();
    expect(screen.getByText("No pair of this dataset has a tag yet.")).toBeInTheDocument();
  });
});
