// Numbers of a verification as people read them: accuracy in percent, differences in points.

const MINUS = "\u2212";

/** 0.6123 → "61.2%". */
export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  if (fraction === null || fraction === undefined) return "–";
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** A difference of accuracies in percentage points, signed: 0.012 → "+1.2". */
export function formatPoints(fraction: number | null | undefined): string {
  if (fraction === null || fraction === undefined) return "–";
  const value = fraction * 100;
  if (Math.abs(value) < 0.05) return "0.0";
  return `${value > 0 ? "+" : MINUS}${Math.abs(value).toFixed(1)}`;
}

/** A loss (or a difference of losses when `signed`), four decimals. */
export function formatLoss(value: number | null | undefined, signed = false): string {
  if (value === null || value === undefined) return "–";
  const text = Math.abs(value).toFixed(4);
  if (!signed) return value < 0 ? `${MINUS}${text}` : text;
  if (Number(text) === 0) return "0.0000";
  return `${value > 0 ? "+" : MINUS}${text}`;
}
