// The audit options the form offers. Defaults and help text come from the backend's OpenAPI
// document (AuditCreate), so the form shows what the server would do with an omitted field.
import type { Schemas } from "../../../api/client";
import { hasField, schemaDefault, schemaHelp } from "../../../api/schemaDefaults";
export { METHODS, methodDescription, methodLabel, type MethodName } from "../../../api/methods";

/** A training mode (`AuditCreate.mode`, an enum in the API). */
export type Mode = NonNullable<Schemas["AuditCreate"]["mode"]>;

/** What each mode does, in a few words; the Record keeps it in step with the API's enum. */
export const MODE_LABELS: Record<Mode, string> = {
  lora: "lora: LoRA adapters + reward head",
  head: "head: frozen backbone, exact linear head",
  pretrained: "pretrained: score with your own reward model, no training",
};

export const MODEL_PRESETS = [
  { value: "minilm", label: "minilm: all-MiniLM-L6-v2 (default)" },
  { value: "tiny", label: "tiny: random 2-layer BERT (smoke tests)" },
  { value: "smollm2-135m", label: "smollm2-135m: SmolLM2-135M-Instruct" },
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
