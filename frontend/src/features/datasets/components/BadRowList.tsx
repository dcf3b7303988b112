import type { RowProblem } from "../../../api/errors";

/** Bad rows listed under a refused or partly skipped upload (the server lists up to 1,000). */
export const SHOWN_ROWS = 50;

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
