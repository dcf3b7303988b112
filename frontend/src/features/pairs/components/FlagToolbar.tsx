import { useState, type FormEvent } from "react";
import type { FlagFilter } from "../api/pairs";

interface Props {
  filter: FlagFilter;
  onFilterChange: (filter: FlagFilter) => void;
  percent: string;
  onPercentChange: (percent: string) => void;
  onFlagTop: (fraction: number) => void;
  onClearFlags: () => void;
  busy?: boolean;
  /** A group audit's own budget (pairs): shows "prune a budget" beside "flag top N%". */
  groupBudget?: number | null;
  onFlagBudget?: (budget: number) => void;
}

/** Bulk flagging (the most harmful fraction, or clear all) and the flagged filter. */
export function FlagToolbar({
  filter,
  onFilterChange,
  percent,
  onPercentChange,
  onFlagTop,
  onClearFlags,
  busy = false,
  groupBudget = null,
  onFlagBudget,
}: Props) {
  const [confirmClear, setConfirmClear] = useState(false);
  const [budget, setBudget] = useState(groupBudget === null ? "" : String(groupBudget));
  const budgetValue = Number(budget);
  const budgetValid = budget !== "" && budgetValue > 0;
  const value = Number(percent);
  const valid = percent !== "" && value > 0 && value <= 100;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (valid) onFlagTop(value / 100);
  };

  return (
    <div className="toolbar">
      <form onSubmit={submit} className="flag-top" aria-label="Flag the most harmful pairs">
        <label>
          Fraction to flag (%)
          <input
            type="number"
            min={0.1}
            max={100}
            step="any"
            value={percent}
            onChange={(e) => onPercentChange(e.target.value)}
          />
        </label>
        <button type="submit" className="primary" disabled={!valid || busy}>
          Flag top {valid ? `${value}%` : "…"}
        </button>
      </form>
      {groupBudget !== null && onFlagBudget && (
        <form
          className="flag-top"
          aria-label="Prune a budget"
          onSubmit={(event) => {
            event.preventDefault();
            if (budgetValid) onFlagBudget(budgetValue);
          }}
          title="Greedy interaction-aware selection: each pick lowers the predicted validation loss most given the pairs picked before it, so near-duplicates of a picked pair wait."
        >
          <label>
            Budget (pairs, or a fraction &lt; 1)
            <input type="number" min={0} step="any" value={budget} onChange={(e) => setBudget(e.target.value)} />
          </label>
          <button type="submit" disabled={!budgetValid || busy}>
            Prune a budget of {budgetValid ? budget : "…"} (greedy)
          </button>
        </form>
      )}
      {confirmClear ? (
        <span className="confirm">
          Clear every flag of this dataset?
          <button
            type="button"
            className="danger"
            onClick={() => {
              setConfirmClear(false);
              onClearFlags();
            }}
          >
            Yes, clear
          </button>
          <button type="button" onClick={() => setConfirmClear(false)}>
            Keep
          </button>
        </span>
      ) : (
        <button type="button" onClick={() => setConfirmClear(true)} disabled={busy}>
          Clear all flags
        </button>
      )}
      <label className="filter">
        Show
        <select value={filter} onChange={(e) => onFilterChange(e.target.value as FlagFilter)}>
          <option value="all">All pairs</option>
          <option value="flagged">Flagged only</option>
          <option value="unflagged">Unflagged only</option>
        </select>
      </label>
    </div>
  );
}
