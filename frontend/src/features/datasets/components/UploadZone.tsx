import { useId, useRef, useState, type DragEvent, type FormEvent } from "react";

export const ACCEPTED = ".jsonl,.json,.csv,.parquet";

interface Props {
  /** Resolves when the upload is stored; the form then clears itself. */
  onUpload: (file: File, name: string) => Promise<unknown>;
  busy?: boolean;
  error?: string | null;
}

function defaultName(file: File): string {
  return file.name.replace(/\.(jsonl|json|csv|parquet)(\.gz)?$/i, "");
}

/** Drop a preference file (or pick one), name it, upload it. */
export function UploadZone({ onUpload, busy = false, error }: Props) {
  const [file, setFile] = useState<File | null>(null);
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
      await onUpload(file, name.trim() || defaultName(file));
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
          JSONL, JSON, CSV or Parquet with prompt / chosen / rejected columns, or HH-RLHF
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
        <button type="submit" className="primary" disabled={!file || busy}>
          {busy ? "Uploading…" : "Upload"}
        </button>
      </div>
      {error && (
        <p role="alert" className="error">
          Upload rejected. {error}
        </p>
      )}
    </form>
  );
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
