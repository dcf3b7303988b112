import { fireEvent, screen, within, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { setSignedIn } from "../../../api/session";
import { mockApi, renderWithClient } from "../../../test/utils";
import { DatasetsPage } from "./DatasetsPage";
import { UploadZone } from "./UploadZone";

function jsonlFile(name = "prefs.jsonl") {
  return new File(['{"prompt":"p","chosen":"a","rejected":"b"}\n'], name, {
    type: "application/jsonl",
  });
}

const PREVIEW = {
  format: "jsonl",
  schema_kind: "prompt_chosen_rejected",
  columns: ["prompt", "chosen", "rejected"],
  pairs: [{ row: 1, prompt: "p", chosen: "a", rejected: "b", metadata: {} }],
  bad_rows: [],
  rows_read: 1,
};

describe("UploadZone", () => {
  it("accepts a dropped file, names it after the file and uploads it", async () => {
    const onUpload = vi.fn().mockResolvedValue(undefined);
    renderWithClient(<UploadZone onUpload={onUpload} />);
    const upload = screen.getByRole("button", { name: "Upload" });
    expect(upload).toBeDisabled();

    const file = jsonlFile();
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [file] } });

    expect(screen.getByText("prefs.jsonl")).toBeInTheDocument();
    expect(screen.getByLabelText("Dataset name")).toHaveValue("prefs");
    await userEvent.click(upload);
    expect(onUpload).toHaveBeenCalledWith(file, "prefs", false, {});
    // A stored upload clears the form for the next one.
    await waitFor(() => expect(screen.getByLabelText("Dataset name")).toHaveValue(""));
    expect(screen.getByText("Drop a preference file here")).toBeInTheDocument();
  });

  it("takes a file from the file input and keeps a name typed before it", async () => {
    const onUpload = vi.fn().mockResolvedValue(undefined);
    renderWithClient(<UploadZone onUpload={onUpload} />);
    await userEvent.type(screen.getByLabelText("Dataset name"), "my set");
    const file = jsonlFile("data.csv");
    await userEvent.upload(screen.getByLabelText(/choose a file/i), file);
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    expect(onUpload).toHaveBeenCalledWith(file, "my set", false, {});
  });

  it("keeps the file and shows the server's reason when the upload is rejected", async () => {
    const onUpload = vi.fn().mockRejectedValue(new Error("nope"));
    renderWithClient(
      <UploadZone onUpload={onUpload} error={'Row 3, column "chosen": is empty'} />,
    );
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile()] } });
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    expect(screen.getByRole("alert")).toHaveTextContent('Row 3, column "chosen": is empty');
    expect(screen.getByText("prefs.jsonl")).toBeInTheDocument();
  });

  it("names each newly picked file after it, even over a typed name, and says a file was picked", async () => {
    const onFileChosen = vi.fn();
    renderWithClient(<UploadZone onUpload={vi.fn()} onFileChosen={onFileChosen} />);
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile("first.jsonl")] } });
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile("second.jsonl")] } });
    expect(screen.getByLabelText("Dataset name")).toHaveValue("second");
    expect(onFileChosen).toHaveBeenCalledTimes(2);
    await userEvent.clear(screen.getByLabelText("Dataset name"));
    await userEvent.type(screen.getByLabelText("Dataset name"), "mine");
    // Another file is another dataset: the name typed for the last one does not stick to it.
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile("third.jsonl")] } });
    expect(screen.getByLabelText("Dataset name")).toHaveValue("third");
  });
});

/** An upload route that refuses a file for its bad `rows` (422) unless asked to skip them, then
 * stores `stored` pairs; returns what `describe` made of each request's form, in order. */
function refusedThenSkipped(
  rows: number[],
  stored: number,
  message: string,
  describe: (form: FormData) => string,
): string[] {
  const bodies: string[] = [];
  const json = (body: unknown, status: number) =>
    new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  mockApi({
    "GET /api/v1/datasets": () => ({ items: [], total: 0 }),
    "POST /api/v1/datasets/preview": () => PREVIEW,
    "POST /api/v1/datasets": async (request) => {
      const form = await request.formData();
      bodies.push(describe(form));
      const errors = rows.map((row) => ({ message: `row ${row}: bad`, row, column: "chosen" }));
      if (form.get("on_bad_rows") === "reject") {
        return json({ detail: { message, row: rows[0], column: "chosen", errors, n_errors: rows.length } }, 422);
      }
      return json(
        {
          id: 2, name: "prefs", filename: "prefs.jsonl", format: "jsonl", schema_kind: "prompt_chosen_rejected",
          n_pairs: stored, n_skipped: rows.length, skipped: errors, created_at: "2026-11-22T10:00:00Z",
        },
        201,
      );
    },
  });
  return bodies;
}

describe("DatasetsPage", () => {
  it("uploads a dropped file as multipart and lists it; a bad row's 422 names the row", async () => {
    const datasets: unknown[] = [];
    let uploads = 0;
    const { calls } = mockApi({
      "GET /api/v1/datasets": () => ({ items: datasets, total: datasets.length }),
      "POST /api/v1/datasets/preview": () => PREVIEW,
      "POST /api/v1/datasets": async (request) => {
        uploads += 1;
        const form = await request.formData();
        if (uploads === 1) {
          return new Response(
            JSON.stringify({ detail: { message: "'chosen' is empty", row: 7, column: "chosen" } }),
            { status: 422, headers: { "Content-Type": "application/json" } },
          );
        }
        const dataset = {
          id: 1,
          name: form.get("name"),
          filename: (form.get("file") as File).name,
          format: "jsonl",
          schema_kind: "prompt_chosen_rejected",
          n_pairs: 60,
          created_at: "2026-11-22T10:00:00Z",
        };
        datasets.push(dataset);
        return new Response(JSON.stringify(dataset), {
          status: 201,
          headers: { "Content-Type": "application/json" },
        });
      },
    });
    setSignedIn(true);
    document.cookie = "prefaudit_csrf=csrf-value; path=/";
    renderWithClient(<DatasetsPage />);
    expect(await screen.findByText(/No datasets yet/)).toBeInTheDocument();

    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile()] } });
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(
      /Row 7, column "chosen": 'chosen' is empty/,
    );

    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    expect(await screen.findByRole("link", { name: "prefs" })).toHaveAttribute("href", "/datasets/1");
    expect(screen.getByRole("cell", { name: "60" })).toBeInTheDocument();
    const post = calls.find((request) => request.method === "POST" && request.url.endsWith("/datasets"))!;
    expect(post.headers.get("X-CSRF-Token")).toBe("csrf-value");
    expect(post.headers.get("Content-Type")).toMatch(/^multipart\/form-data/);
  });

  it("lists every bad row of a refused file, then skips them when asked", async () => {
    const bodies = refusedThenSkipped([3, 6, 9], 7, "row 3: bad (and 2 more bad rows)", (form) =>
      String(form.get("on_bad_rows")),
    );
    setSignedIn(true);
    renderWithClient(<DatasetsPage />);
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile()] } });
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("3 bad rows");
    expect(screen.getByTestId("bad-rows").querySelectorAll("li")).toHaveLength(3);

    await userEvent.click(screen.getByLabelText("Skip bad rows"));
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    const status = await screen.findByRole("status");
    expect(status).toHaveTextContent("7 pairs; skipped 3 bad rows");
    expect(status).toHaveTextContent("row 9: bad");
    expect(bodies).toEqual(["reject", "skip"]);
  });

  it("offers 'Skip bad rows and retry' on a refused upload: one click stores the good rows", async () => {
    const bodies = refusedThenSkipped([121], 599, "row 121: bad", (form) => `${form.get("name")}:${form.get("on_bad_rows")}`);
    setSignedIn(true);
    renderWithClient(<DatasetsPage />);
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile()] } });
    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent(/row 121: bad/i);

    await userEvent.click(within(alert).getByRole("button", { name: "Skip bad rows and retry" }));
    const status = await screen.findByRole("status");
    expect(status).toHaveTextContent("599 pairs; skipped 1 bad row");
    expect(bodies).toEqual(["prefs:reject", "prefs:skip"]);
    expect(screen.queryByRole("button", { name: "Skip bad rows and retry" })).toBeNull();
  });

  it("offers only the file's own columns in the column selects", async () => {
    mockApi({
      "GET /api/v1/datasets": () => ({ items: [], total: 0 }),
      "POST /api/v1/datasets/preview": () => ({
        ...PREVIEW,
        schema_kind: "hh_transcript",
        columns: ["chosen", "rejected"],
      }),
    });
    setSignedIn(true);
    renderWithClient(<DatasetsPage />);
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile()] } });
    const prompt = await screen.findByLabelText("Prompt column");
    const options = within(prompt).getAllByRole("option").map((o) => o.textContent);
    expect(options).toEqual(["automatic (HH transcripts)", "chosen", "rejected"]);
    expect(options.join(" ")).not.toContain("“prompt”");
    const chosen = within(screen.getByLabelText("Chosen column")).getAllByRole("option").map((o) => o.textContent);
    expect(chosen).toEqual(["“chosen” (same name)", "rejected"]);
  });

  it("lets the file picker offer gzipped files", () => {
    renderWithClient(<UploadZone onUpload={vi.fn()} />);
    expect(screen.getByLabelText(/choose a file/i).getAttribute("accept")).toContain(".gz");
  });

  it("previews the file, lets the user name its columns, and uploads with that mapping", async () => {
    const previews: string[] = [];
    let uploaded: FormData | null = null;
    mockApi({
      "GET /api/v1/datasets": () => ({ items: [], total: 0 }),
      "POST /api/v1/datasets/preview": async (request) => {
        const mapping = String((await request.formData()).get("mapping") ?? "");
        previews.push(mapping);
        const complete = mapping.includes("good") && mapping.includes("bad");
        return {
          ...PREVIEW,
          columns: ["question", "good", "bad"],
          pairs: complete ? [{ row: 1, prompt: "q1", chosen: "yes", rejected: "no", metadata: {} }] : [],
          bad_rows: complete ? [] : [{ row: 1, column: "chosen", message: "row 1, column chosen: missing column 'chosen'" }],
        };
      },
      "POST /api/v1/datasets": async (request) => {
        uploaded = await request.formData();
        return new Response(
          JSON.stringify({ ...PREVIEW, id: 3, name: "mine", filename: "mine.jsonl", n_pairs: 1, created_at: "2026-12-03T10:00:00Z" }),
          { status: 201, headers: { "Content-Type": "application/json" } },
        );
      },
    });
    setSignedIn(true);
    renderWithClient(<DatasetsPage />);
    fireEvent.drop(screen.getByTestId("dropzone"), { dataTransfer: { files: [jsonlFile("mine.jsonl")] } });
    expect(await screen.findByText(/No pair could be read from the first record/)).toBeInTheDocument();
    expect(screen.getByTestId("preview-summary")).toHaveTextContent("columns: question, good, bad");
    expect(screen.getByTestId("bad-rows")).toHaveTextContent("missing column 'chosen'");

    await userEvent.selectOptions(screen.getByLabelText("Prompt column"), "question");
    await userEvent.selectOptions(screen.getByLabelText("Chosen column"), "good");
    await userEvent.selectOptions(screen.getByLabelText("Rejected column"), "bad");
    const table = await screen.findByRole("table", { name: "First pairs of the file" });
    expect(table).toHaveTextContent("q1yesno");
    expect(previews.at(-1)).toBe(JSON.stringify({ prompt: "question", chosen: "good", rejected: "bad" }));
    expect(previews[0]).toBe(""); // the first preview reads the columns as named

    await userEvent.click(screen.getByRole("button", { name: "Upload" }));
    await waitFor(() => expect(uploaded).not.toBeNull());
    expect(uploaded!.get("mapping")).toBe(JSON.stringify({ prompt: "question", chosen: "good", rejected: "bad" }));
    // The stored upload clears the form and its preview.
    await waitFor(() => expect(screen.queryByRole("table", { name: "First pairs of the file" })).toBeNull());
  });
});
