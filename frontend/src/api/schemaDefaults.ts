// Defaults and help text of request fields, read from the backend's OpenAPI document, so a form
// shows what the server would do with an omitted field instead of a copy that can drift.
// Named import: the bundler keeps only `components`, not the whole document.
import { components } from "../../openapi.json";

interface PropertySchema {
  default?: unknown;
  description?: string;
}

const schemas = components.schemas as Record<string, { properties?: Record<string, PropertySchema> }>;

export type SchemaName = keyof typeof components.schemas;

function property(schema: SchemaName, field: string): PropertySchema | undefined {
  return schemas[schema]?.properties?.[field];
}

/** The server's default for `schema.field`, or `fallback` if the document gives none. */
export function schemaDefault<T>(schema: SchemaName, field: string, fallback: T): T {
  const value = property(schema, field)?.default;
  return value === undefined || value === null ? fallback : (value as T);
}

export function schemaHelp(schema: SchemaName, field: string): string | undefined {
  return property(schema, field)?.description;
}

export function hasField(schema: SchemaName, field: string): boolean {
  return property(schema, field) !== undefined;
}
