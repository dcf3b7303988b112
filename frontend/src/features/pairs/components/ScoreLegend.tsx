import { AUTO_PROVISIONAL, methodLabel } from "../../../api/methods";
import { describeColumn } from "./scoreText";

interface Props {
  /** The column the list is sorted by (without its `-`). */
  sortColumn: string;
  /** Score columns the table shows, in order. */
  columns: string[];
  /** The audit's default method (it filled `harm`); null before any audit. */
  defaultMethod: string | null;
  /** Why the audit chose it from its own evidence (metrics.default_choice.reason), if it did. */
  defaultReason?: string | null;
}

/** How to read the ranking: what the sort column is and what high means in each score column,
 *  and why `harm` is the method it is. */
export function ScoreLegend({ sortColumn, columns, defaultMethod, defaultReason = null }: Props) {
  const sorted = describeColumn(sortColumn, defaultMethod);
  return (
    <div className="score-legend small" data-testid="score-legend">
      <p>
        Ranked by <strong>{sorted.label}</strong>
        {sorted.unit && <> ({sorted.unit})</>}
        {sorted.high && <>: high = {sorted.high}</>}.
      </p>
      <ul>
        {columns
          .filter((column) => column !== sortColumn)
          .map((column) => {
            const text = describeColumn(column, defaultMethod);
            return (
              <li key={column}>
                <strong>{text.label}</strong>
                {text.unit && <> ({text.unit})</>}
                {text.high && <>: high = {text.high}</>}
              </li>
            );
          })}
      </ul>
      {defaultMethod && (
        <p className="muted" data-testid="default-reason">
          Why harm is the {methodLabel(defaultMethod)}:{" "}
          {defaultReason
            ? `this audit chose it from its own evidence: ${defaultReason}`
            : defaultMethod === AUTO_PROVISIONAL
              ? "it is the default of audits too small to test their rankings on canaries (under 200 training pairs)."
              : "it was named when the audit was launched."}
        </p>
      )}
    </div>
  );
}
