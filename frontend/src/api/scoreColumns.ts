// The engine's score columns (worker/influence/methods.py), as the backend's OpenAPI document
// carries them: `ScoreColumn` is an enum of the column names in table order, with
// `x-enum-labels`, `x-enum-units`, `x-enum-orientations`, `x-enum-descriptions` (what a high
// value means), `x-enum-ranked` and `x-enum-shown` beside it. The ranking menus and the pair's
// score list read them here, so a column added to the registry shows up after `make openapi`.
import { components } from "../../openapi.json";
import type { Schemas } from "./client";

/** A score column's name. */
export type ScoreColumn = Schemas["ScoreColumn"];

/** How a column reads, and where the UI lists it. */
export interface ScoreColumnInfo {
  column: ScoreColumn;
  label: string;
  unit: string;
  /** Which end is harmful: higher_harmful, lower_harmful or unsigned. */
  orientation: string;
  /** What a high value means, in a few words. */
  high: string;
  /** Offered as a ranking and filter column. */
  ranked: boolean;
  /** Listed among a pair's scores (false where it repeats another column). */
  shown: boolean;
}

export interface ScoreColumnSchema {
  enum?: string[];
  "x-enum-labels"?: string[];
  "x-enum-units"?: string[];
  "x-enum-orientations"?: string[];
  "x-enum-descriptions"?: string[];
  "x-enum-ranked"?: boolean[];
  "x-enum-shown"?: boolean[];
}

/** The columns an OpenAPI `ScoreColumn` schema describes, in its order. */
export function scoreColumnsFrom(spec: ScoreColumnSchema): ScoreColumnInfo[] {
  return (spec.enum ?? []).map((column, i) => ({
    column: column as ScoreColumn,
    label: spec["x-enum-labels"]?.[i] ?? column.replace(/_/g, " "),
    unit: spec["x-enum-units"]?.[i] ?? "",
    orientation: spec["x-enum-orientations"]?.[i] ?? "unsigned",
    high: spec["x-enum-descriptions"]?.[i] ?? "",
    ranked: spec["x-enum-ranked"]?.[i] ?? true,
    shown: spec["x-enum-shown"]?.[i] ?? true,
  }));
}

/** Every score column, in the registry's table order. */
export const SCORE_COLUMNS: readonly ScoreColumnInfo[] = scoreColumnsFrom(
  components.schemas.ScoreColumn as ScoreColumnSchema,
);

/** The columns a reviewer ranks and filters by. */
export const RANKED_COLUMNS: readonly ScoreColumnInfo[] = SCORE_COLUMNS.filter((c) => c.ranked);

/** The columns listed among a pair's scores. */
export const SHOWN_COLUMNS: readonly ScoreColumnInfo[] = SCORE_COLUMNS.filter((c) => c.shown);

const BY_NAME = new Map(SCORE_COLUMNS.map((c) => [c.column as string, c]));

/** A column's description; undefined for a name the registry does not know. */
export function scoreColumn(column: string): ScoreColumnInfo | undefined {
  return BY_NAME.get(column);
}
