import { useId } from "react";
import { schemaLabel, type ColumnMapping, type UploadPreview } from "../api/datasets";
import { BadRowList } from "./BadRowList";

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

/** What the upload would store: how the file is read, which column holds each text (the user
 * can change it), the first pairs and the bad rows among the first records. */
export function UploadPreviewPanel({ preview, loading, error, mapping, onMappingChange }: Props) {
  const titleId = useId();
  const columns = preview?.columns ?? [];
  // A mapped column the file lacks (another file was picked) still shows, so it can be undone.
  const options = (field: (typeof FIELDS)[number]) =>
    mapping[field] && !columns.includes(mapping[field]!) ? [...columns, mapping[field]!] : columns;
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
        <p role="alert" className="error">
          The file cannot be read: {error}
        </p>
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
                    <option value="">“{field}” (as named)</option>
                    {options(field).map((column) => (
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
            <div className="table-scroll">
              <table className="preview-table" aria-label="First pairs of the file">
                <thead>
                  <tr>
                    <th scope="col">Row</th>
                    <th scope="col">Prompt</th>
                    <th scope="col">Chosen</th>
                    <th scope="col">Rejected</th>
                  </tr>
                </thead>
                <tbody>
                  {preview.pairs.map((pair) => (
                    <tr key={pair.row}>
                      <td>{pair.row}</td>
                      <td className="preview-text">{clip(pair.prompt)}</td>
                      <td className="preview-text">{clip(pair.chosen)}</td>
                      <td className="preview-text">{clip(pair.rejected)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <p className="error">
              No pair could be read from the first {records(preview.rows_read)}.
            </p>
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
