// The audit options the form offers. Defaults and help text come from the backend's OpenAPI
// document (AuditCreate), so the form shows what the server would do with an omitted field.
// Named import: the bundler keeps only `components`, not the whole document.
import { components } from "../../../../openapi.json";

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
  "tracin",
] as const;

interface PropertySchema {
  default?: unknown;
  description?: string;
  title?: string;
}

const schemas = components.schemas as Record<string, { properties?: Record<string, PropertySchema> }>;
const properties: Record<string, PropertySchema> = schemas.AuditCreate?.properties ?? {};

/** The server's default for an AuditCreate field, or `fallback` if the spec gives none. */
export function defaultOf<T>(field: string, fallback: T): T {
  const value = properties[field]?.default;
  return value === undefined || value === null ? fallback : (value as T);
}

export function helpOf(field: string): string | undefined {
  return properties[field]?.description;
}

export function isKnownOption(field: string): boolean {
  return field in properties;
}
