import type { ReactNode } from "react";

/** A labelled number input whose value stays the text typed, so a form can say why "" or "1.5"
 *  is refused instead of silently turning it into 0 or 1. */
export function NumberField({
  label,
  value,
  onChange,
  min,
  max,
  step = 1,
  disabled,
  title,
}: {
  label: ReactNode;
  value: string;
  onChange: (value: string) => void;
  min?: number;
  max?: number;
  /** 1 (whole numbers) unless told; "any" for fractions. */
  step?: number | "any";
  disabled?: boolean;
  /** Help shown on hover (e.g. the API field's description). */
  title?: string;
}) {
  return (
    <label title={title}>
      {label}
      <input
        type="number"
        min={min}
        max={max}
        step={step}
        value={value}
        disabled={disabled}
        onChange={(e) => onChange(e.target.value)}
      />
    </label>
  );
}
