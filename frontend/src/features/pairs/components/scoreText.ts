// What a score column of the ranked table is called, in what unit, and what a high value means:
// the registry's words (api/scoreColumns), with `harm` named after the method that filled it.
import { methodLabel } from "../../../api/methods";
import { scoreColumn } from "../../../api/scoreColumns";

export interface ColumnText {
  /** Short name for a column header ("harm = length heuristic"). */
  label: string;
  unit: string;
  /** What a high value means ("" where nothing is said). */
  high: string;
}

/** The column a method's harm fills (`harm_<method>`). */
export function harmColumnOf(method: string): string {
  return `harm_${method}`;
}

/**
 * How to read `column` of an audit whose default method is `defaultMethod`: `harm` is that
 * method's harm ("harm = length heuristic", characters); `harm_group` is shown as the greedy
 * order (1 = removed first), never as its inverted score.
 */
export function describeColumn(column: string, defaultMethod: string | null = null): ColumnText {
  if (column === "index") return { label: "Row", unit: "line of the file", high: "" };
  if (column === "length") return { label: "Length", unit: "characters", high: "a long pair" };
  if (column === "harm" && defaultMethod) {
    const source = scoreColumn(harmColumnOf(defaultMethod));
    return {
      label: `harm = ${source?.label ?? methodLabel(defaultMethod)}`,
      unit: source?.unit ?? "",
      high: source?.high ?? "",
    };
  }
  if (column === "harm_group" || column === "group_order") {
    const order = scoreColumn("group_order");
    return { label: order?.label ?? "greedy order", unit: "1 = removed first", high: "removed late" };
  }
  const info = scoreColumn(column);
  if (!info) return { label: column.replace(/_/g, " "), unit: "", high: "" };
  return { label: info.label, unit: info.unit, high: info.high };
}

/** The score a row shows for `column`: the greedy order for `harm_group` (its rank, not the
 *  inverted score the sort uses). */
export function shownScoreColumn(column: string): string {
  return column === "harm_group" ? "group_order" : column;
}
