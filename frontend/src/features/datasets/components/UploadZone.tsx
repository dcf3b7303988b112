import { useEffect, useId, useRef, useState, type DragEvent, type FormEvent } from "react";
import { errorMessage, type RowProblem } from "../../../api/errors";
import type { ColumnMapping, UploadPreview } from "../api/datasets";
import { Alert } from "../../../components/ui/Alert";
import { BadRowList } from "./BadRowList";
import { UploadPreviewPanel } from "./UploadPreviewPanel";

// `.gz` too: a picker filtering on ".jsonl" hides "pairs.jsonl.gz".
export const ACCEPTED = ".jsonl,.ndjson,.json,.csv,.tsv,.parquet,.pq,.arrow,.gz";

interface Props {
  /** Resolves when the upload is stored; the form then clears itself. */
  onUpload: (file: File, name: string, skipBadRows: boolean, mapping: ColumnMapping) => Promise<unknown>;
  /** Reads the chosen file's first pairs with a column mapping (nothing is stored); without it
   * no preview is shown. */
  onPreview?: (file: File, mapping: ColumnMapping) => Promise<UploadPreview>;
  /** A file was picked: what the last upload said no longer applies. */
  onFileChosen?: () => void;
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
  onPreview,
  onFileChosen,
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
  const [mapping, setMapping] = useState<ColumnMapping>({});
  const [preview, setPreview] = useState<UploadPreview | null>(null);
  const [previewError, setPreviewError] = useState<string | null>(null);
  const [previewing, setPreviewing] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const hintId = useId();

  // Preview the chosen file with the current mapping; a later file or mapping wins.
  const mappingKey = JSON.stringify(mapping);
  useEffect(() => {
    if (!file || !onPreview) return;
    let current = true;
    setPreviewing(true);
    setPreviewError(null);
    onPreview(file, JSON.parse(mappingKey) as ColumnMapping)
      .then((result) => current && setPreview(result))
      .catch((e: unknown) => {
        if (!current) return;
        setPreview(null);
        setPreviewError(errorMessage(e));
      })
      .finally(() => current && setPreviewing(false));
    return () => {
      current = false;
    };
  }, [file, mappingKey, onPreview]);

  const choose = (picked: File | undefined) => {
    if (!picked) return;
    setFile(picked);
    setMapping({}); // another file, other columns
    setPreview(null);
    // Another file, another dataset: its name starts from the new file's, not the last one's
    // (a name typed before the first file was picked is kept).
    setName((current) => (file === null && current.trim() !== "" ? current : defaultName(picked)));
    onFileChosen?.();
  };

  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    choose(event.dataTransfer.files[0]);
  };

  const send = async (skip: boolean) => {
    if (!file) return;
    try {
      await onUpload(file, name.trim() || defaultName(file), skip, mapping);
      setFile(null);
      setName("");
      setMapping({});
      setPreview(null);
      setPreviewError(null);
      if (input.current) input.current.value = "";
    } catch {
      // The caller shows the error; keep the file so a fix of the name can be retried.
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void send(skipBadRows);
  };
  // A file refused for its bad rows: one click stores the good ones.
  const refusedForRows = badRows.length > 0 || badRowCount > 0;
  const retrySkipping = () => {
    setSkipBadRows(true);
    void send(true);
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
          JSONL, JSON, CSV, TSV, Parquet or Arrow (a Hugging Face save_to_disk file) with prompt / chosen / rejected columns
          (or columns you name in the preview), HH-RLHF transcripts, chat-message lists, SHP or UltraFeedback records.
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
      {file && onPreview && (
        <UploadPreviewPanel
          preview={preview}
          loading={previewing}
          error={previewError}
          mapping={mapping}
          onMappingChange={setMapping}
        />
      )}
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
        <Alert>
          <p>Upload rejected. {error}</p>
          {badRows.length > 1 && (
            <BadRowList
              rows={badRows}
              total={badRowCount}
              capped={badRowsCapped}
              hint="Fix them, or store the rest without them."
            />
          )}
          {refusedForRows && file && !skipBadRows && (
            <button type="button" className="primary" onClick={retrySkipping} disabled={busy}>
              Skip bad rows and retry
            </button>
          )}
        </Alert>
      )}
    </form>
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
