// The one number format of the app: every score, κ and metric is written by `formatNumber` (or
// shown by <Num>), so the same value reads the same everywhere.

const SUPERSCRIPT: Record<string, string> = {
  "-": "⁻",
  "0": "⁰",
  "1": "¹",
  "2": "²",
  "3": "³",
  "4": "⁴",
  "5": "⁵",
  "6": "⁶",
  "7": "⁷",
  "8": "⁸",
  "9": "⁹",
};

/** Significant digits a score is written with. */
export const DIGITS = 4;

/**
 * `value` to `digits` significant digits (trailing zeros dropped: 0.2, not 0.2000): plain
 * between 0.001 and 100,000 ("0.8603", "682.7"),
 * integers whole up to ten million ("-1850"), else as a power of ten with a superscript exponent
 * ("4.531×10⁻⁵") that never breaks across lines. Null, undefined and NaN read "–".
 */
export function formatNumber(value: number | null | undefined, digits = DIGITS): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  if (value === 0) return "0";
  const size = Math.abs(value);
  if (Number.isInteger(value) && size < 1e7) return String(value);
  if (size >= 1e-3 && size < 1e5) return String(Number(value.toPrecision(digits)));
  const [fixed, exponent] = value.toExponential(digits - 1).split("e");
  const mantissa = String(Number(fixed));
  const power = String(Number(exponent))
    .split("")
    .map((c) => SUPERSCRIPT[c] ?? c)
    .join("");
  return `${mantissa}×10${power}`;
}

/** `formatNumber` with a unit after it ("682.7 characters"); no unit, no space. */
export function formatWithUnit(value: number | null | undefined, unit?: string, digits = DIGITS): string {
  const text = formatNumber(value, digits);
  return unit && text !== "–" ? `${text} ${unit}` : text;
}

/** A fraction as a percentage a person writes: 0.1 → "10%", 0.001 → "0.1%", 0.125 → "12.5%". */
export function formatPercent(fraction: number): string {
  return `${Number((fraction * 100).toPrecision(3))}%`;
}
