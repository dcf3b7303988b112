import { useId } from "react";
import { schemaLabel, type ColumnMapping, type UploadPreview } from "../api/datasets";
import { BadRowList } from "./BadRowList";
import { Alert } from "../../../components/ui/Alert";
import { Table, type Column } from "../../../components/ui/Table";

export const FIELDS = ["prompt", "chosen", "rejected"] as const;

/** Characters of each text the preview table shows (the server sends up to 2,000). */
export const PREVIEW_TEXT = 240;

interface Props {
  preview: UploadPreview | null;
  loading: boolean;
  error: string | null;
  mapping: ColumnMapping;
  onMappingChange: (mapping: ColumnMapping) => void;
}

function records(n: number): string {
  return n === 1 ? "record" : `${n.toLocaleString()} records`;
}

function clip(text: string): string {
  return text.length > PREVIEW_TEXT ? `${text.slice(0, PREVIEW_TEXT)}…` : text;
}

type PreviewPair = UploadPreview["pairs"][number];

const PREVIEW_COLUMNS: Column<PreviewPair>[] = [
  { key: "row", header: "Row", cell: (pair) => pair.row, className: "num" },
  { key: "prompt", header: "Prompt", cell: (pair) => clip(pair.prompt), className: "preview-text" },
  { key: "chosen", header: "Chosen", cell: (pair) => clip(pair.chosen), className: "preview-text" },
  { key: "rejected", header: "Rejected", cell: (pair) => clip(pair.rejected), className: "preview-text" },
];

/** What the upload would store: how the file is read, which column holds each text (the user
 * can change it), the first pairs and the bad rows among the first records. */
export function UploadPreviewPanel({ preview, loading, error, mapping, onMappingChange }: Props) {
  const titleId = useId();
  const columns = preview?.columns ?? [];
  // Only the file's own columns are offered; a mapped column the file lacks (another file was
  // picked) still shows, so it can be undone.
  const options = (field: (typeof FIELDS)[number]) =>
    mapping[field] && !columns.includes(mapping[field]!) ? [...columns, mapping[field]!] : columns;
  // What "no column picked" means: the file's column of that name, or the format's own reading.
  const automatic = (field: (typeof FIELDS)[number]) =>
    columns.includes(field)
      ? `“${field}” (same name)`
      : preview && preview.schema_kind !== "prompt_chosen_rejected"
        ? `automatic (${schemaLabel(preview.schema_kind)})`
        : "none: pick a column";
  const choose = (field: (typeof FIELDS)[number], column: string) => {
    const next = { ...mapping };
    if (column) next[field] = column;
    else delete next[field];
    onMappingChange(next);
  };

  return (
    <section className="upload-preview" aria-labelledby={titleId} aria-busy={loading}>
      <h3 id={titleId}>Preview</h3>
      {loading && <p className="muted small">Reading the first records…</p>}
      {error && (
        <Alert title="The file cannot be read" error={error} />
      )}
      {preview && (
        <>
          <p className="muted small" data-testid="preview-summary">
            Read as {preview.format.toUpperCase()}, {schemaLabel(preview.schema_kind)}
            {columns.length > 0 && <> · columns: {columns.join(", ")}</>}
          </p>
          {columns.length > 0 && (
            <fieldset className="column-mapping">
              <legend>Columns holding the pair</legend>
              {FIELDS.map((field) => (
                <label key={field}>
                  {field[0].toUpperCase() + field.slice(1)} column
                  <select value={mapping[field] ?? ""} onChange={(e) => choose(field, e.target.value)}>
                    <option value="">{automatic(field)}</option>
                    {options(field)
                      .filter((column) => column !== field)
                      .map((column) => (
                        <option key={column} value={column}>
                          {column}
                        </option>
                      ))}
                  </select>
                </label>
              ))}
            </fieldset>
          )}
          {preview.pairs.length > 0 ? (
            <Table
              label="First pairs of the file"
              className="preview-table"
              columns={PREVIEW_COLUMNS}
              rows={preview.pairs}
              rowKey={(pair) => pair.row}
            />
          ) : (
            <Alert>
              No pair could be read from the first {records(preview.rows_read)}.
            </Alert>
          )}
          {preview.bad_rows.length > 0 && (
            <BadRowList
              rows={preview.bad_rows}
              total={preview.bad_rows.length}
              hint={`Among the first ${records(preview.rows_read)}; pick the columns above if they are named otherwise.`}
            />
          )}
        </>
      )}
    </section>
  );
}
