import { formatNumber } from "./format";

/** A number as the app writes it (see `formatNumber`), kept on one line, with its full value
 *  on hover and an optional unit. */
export function Num({
  value,
  unit,
  digits,
  className,
}: {
  value: number | null | undefined;
  unit?: string;
  digits?: number;
  className?: string;
}) {
  const text = formatNumber(value, digits);
  const full = value === null || value === undefined ? undefined : String(value);
  return (
    <span className={className ? `num-value ${className}` : "num-value"} title={full}>
      {text}
      {unit && text !== "–" && <span className="unit"> {unit}</span>}
    </span>
  );
}
