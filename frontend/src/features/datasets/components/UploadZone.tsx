import { useId, useRef, useState, type DragEvent, type FormEvent } from "react";
import type { RowProblem } from "../../../api/errors";

// `.gz` too: a picker filtering on ".jsonl" hides "pairs.jsonl.gz".
export const ACCEPTED = ".jsonl,.ndjson,.json,.csv,.tsv,.parquet,.pq,.arrow,.gz";

/** Bad rows listed under a refused or partly skipped upload (the server lists up to 1,000). */
export const SHOWN_ROWS = 50;

interface Props {
  /** Resolves when the upload is stored; the form then clears itself. */
  onUpload: (file: File, name: string, skipBadRows: boolean) => Promise<unknown>;
  busy?: boolean;
  error?: string | null;
  /** Every bad row of a refused upload, and how many there were in all. */
  badRows?: RowProblem[];
  badRowCount?: number;
  badRowsCapped?: boolean;
}

function defaultName(file: File): string {
  return file.name.replace(/\.(jsonl|ndjson|json|csv|tsv|parquet|pq|arrow)(\.gz)?$/i, "");
}

/** Drop a preference file (or pick one), name it, upload it. */
export function UploadZone({
  onUpload,
  busy = false,
  error,
  badRows = [],
  badRowCount = 0,
  badRowsCapped = false,
}: Props) {
  const [file, setFile] = useState<File | null>(null);
  const [skipBadRows, setSkipBadRows] = useState(false);
  const [name, setName] = useState("");
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const hintId = useId();

  const choose = (picked: File | undefined) => {
    if (!picked) return;
    setFile(picked);
    setName((current) => current || defaultName(picked));
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    choose(event.dataTransfer.files[0]);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!file) return;
    try {
      await onUpload(file, name.trim() || defaultName(file), skipBadRows);
      setFile(null);
      setName("");
      if (input.current) input.current.value = "";
    } catch {
      // The caller shows the error; keep the file so a fix of the name can be retried.
    }
  };

  return (
    <form className="card upload" onSubmit={submit} aria-label="Upload a dataset">
      <div
        className={`dropzone${dragging ? " dragging" : ""}`}
        data-testid="dropzone"
        onDragEnter={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragOver={(e) => e.preventDefault()}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p className="dropzone-title">
          {file ? (
            <>
              Selected <strong>{file.name}</strong> ({formatBytes(file.size)})
            </>
          ) : (
            "Drop a preference file here"
          )}
        </p>
        <p className="muted" id={hintId}>
          JSONL, JSON, CSV, TSV, Parquet or Arrow (a Hugging Face save_to_disk file) with prompt / chosen / rejected columns, or HH-RLHF
          chosen / rejected transcripts.
        </p>
        <label className="file-button">
          Choose a file
          <input
            ref={input}
            type="file"
            accept={ACCEPTED}
            aria-describedby={hintId}
            onChange={(e) => choose(e.target.files?.[0])}
          />
        </label>
      </div>
      <div className="upload-row">
        <label>
          Dataset name
          <input
            value={name}
            onChange={(e) => setName(e.target.value)}
            placeholder="e.g. helpful-base sample"
          />
        </label>
        <label className="inline" title="Store the good rows and list the bad ones, instead of refusing the whole file">
          <input type="checkbox" checked={skipBadRows} onChange={(e) => setSkipBadRows(e.target.checked)} />
          Skip bad rows
        </label>
        <button type="submit" className="primary" disabled={!file || busy}>
          {busy ? "Uploading…" : "Upload"}
        </button>
      </div>
      {error && (
        <div role="alert" className="error">
          <p>Upload rejected. {error}</p>
          {badRows.length > 1 && (
            <BadRowList
              rows={badRows}
              total={badRowCount}
              capped={badRowsCapped}
              hint="Fix them, or tick “Skip bad rows” to store the rest."
            />
          )}
        </div>
      )}
    </form>
  );
}

/** The first SHOWN_ROWS bad rows, with how many there are in all. */
export function BadRowList({
  rows,
  total,
  capped = false,
  hint,
}: {
  rows: RowProblem[];
  total: number;
  capped?: boolean;
  hint?: string;
}) {
  const count = Math.max(total, rows.length);
  return (
    <div className="bad-rows">
      <p>
        {count.toLocaleString()}
        {capped ? "+" : ""} bad row{count === 1 ? "" : "s"}
        {rows.length < count ? ` (the first ${Math.min(rows.length, SHOWN_ROWS)} listed)` : ""}.{" "}
        {hint}
      </p>
      <ul data-testid="bad-rows">
        {rows.slice(0, SHOWN_ROWS).map((row, k) => (
          <li key={`${row.row ?? "file"}-${k}`}>{row.message}</li>
        ))}
      </ul>
      {rows.length > SHOWN_ROWS && <p className="muted small">… and {rows.length - SHOWN_ROWS} more.</p>}
    </div>
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
