// The audit options the form offers. Defaults and help text come from the backend's OpenAPI
// document (AuditCreate), so the form shows what the server would do with an omitted field.
import { hasField, schemaDefault, schemaHelp } from "../../../api/schemaDefaults";
export { methodLabel } from "../../../api/methods";

export const MODEL_PRESETS = [
  { value: "minilm", label: "minilm: all-MiniLM-L6-v2 (default)" },
  { value: "tiny", label: "tiny: random 2-layer BERT (smoke tests)" },
  { value: "smollm2-135m", label: "smollm2-135m: SmolLM2-135M-Instruct" },
] as const;

export const METHODS = [
  "loss",
  "gradient_similarity",
  "influence",
  "datainf",
  "self_influence",
  "corrected_loss",
  "tracin",
  "length",
  "oof_loss",
  "ensemble",
] as const;

/** The server's default for an AuditCreate field, or `fallback` if the spec gives none. */
export function defaultOf<T>(field: string, fallback: T): T {
  return schemaDefault("AuditCreate", field, fallback);
}

export function helpOf(field: string): string | undefined {
  return schemaHelp("AuditCreate", field);
}

export function isKnownOption(field: string): boolean {
  return hasField("AuditCreate", field);
}
