import { useState } from "react";
import { useBulk, useReviewActions, useUndo, type BulkKind, type BulkResult } from "../api/pairs";
import type { Schemas } from "../../../api/client";
import { count } from "../../../components/ui/count";
import { Alert } from "../../../components/ui/Alert";

interface Props {
  datasetId: number;
  filter: Schemas["PairFilter"];
  /** The list's total, shown before a preview. */
  matching: number;
  onDone: (message: string) => void;
}

const VERBS: Record<BulkKind, string> = { flag: "Flag", keep: "Keep", swap: "Swap", clear: "Clear" };

/** Bulk actions on everything the filter matches (not just the page), previewed, undoable. */
export function BulkBar({ datasetId, filter, matching, onDone }: Props) {
  const [kind, setKind] = useState<BulkKind>("flag");
  const [overrideKept, setOverrideKept] = useState(false);
  const [preview, setPreview] = useState<BulkResult | null>(null);
  const bulk = useBulk(datasetId);
  const undo = useUndo(datasetId);
  const actions = useReviewActions(datasetId);
  const last = actions.data?.find((a) => a.kind !== "undo" && !a.undone_at);

  const body = { action: kind, filter, override_kept: overrideKept };
  return (
    <div className="bulk-bar" role="group" aria-label="Bulk actions">
      <label>
        Bulk action
        <select
          value={kind}
          onChange={(e) => {
            setKind(e.target.value as BulkKind);
            setPreview(null);
          }}
        >
          <option value="flag">flag</option>
          <option value="keep">keep</option>
          <option value="swap">swap chosen/rejected</option>
          <option value="clear">clear (back to unreviewed)</option>
        </select>
      </label>
      <label className="inline">
        <input
          type="checkbox"
          checked={overrideKept}
          onChange={(e) => {
            setOverrideKept(e.target.checked);
            setPreview(null);
          }}
        />
        also change kept pairs
      </label>
      <button
        type="button"
        disabled={bulk.isPending}
        onClick={() => bulk.mutate({ ...body, dry_run: true }, { onSuccess: setPreview })}
      >
        Preview on all {matching.toLocaleString()} matching
      </button>
      {preview && (
        <span className="bulk-preview" data-testid="bulk-preview" role="status">
          {preview.matched.toLocaleString()} match · {preview.changed.toLocaleString()} would change
          {(preview.protected ?? 0) > 0 && ` · ${(preview.protected ?? 0).toLocaleString()} kept left alone`}
          <button
            type="button"
            disabled={bulk.isPending}
            onClick={() =>
              bulk.mutate(body, {
                onSuccess: (result) => {
                  setPreview(null);
                  onDone(`${VERBS[kind]}: ${count(result.changed, "pair")} changed.`);
                },
              })
            }
          >
            {VERBS[kind]} {count(preview.changed, "pair")}
          </button>
          <button type="button" onClick={() => setPreview(null)}>
            Cancel
          </button>
        </span>
      )}
      <button
        type="button"
        disabled={!last || undo.isPending}
        title={last ? `Undo “${last.description}”` : "Nothing to undo"}
        onClick={() =>
          undo.mutate(undefined, {
            onSuccess: (result) => onDone(`Undone: ${count(result.changed, "pair")} restored.`),
          })
        }
      >
        Undo{last ? ` “${last.description.slice(0, 60)}”` : ""}
      </button>
      {(bulk.error || undo.error) && (
        <Alert error={bulk.error ?? undo.error} />
      )}
    </div>
  );
}
