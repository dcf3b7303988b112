import {
  createColumnHelper,
  flexRender,
  getCoreRowModel,
  useReactTable,
  type SortingState,
} from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, type KeyboardEvent } from "react";
import { EmptyState } from "../../../components/ui/EmptyState";
import { Num } from "../../../components/ui/Num";
import type { Pair, Sort } from "../api/pairs";
import { describeColumn, shownScoreColumn } from "./scoreText";

export const ROW_HEIGHT = 38;
/** A row with longer previews: four lines of each text. */
export const EXPANDED_ROW_HEIGHT = 96;

interface Props {
  pairs: Pair[];
  total: number;
  sort: Sort;
  onSortChange: (sort: Sort) => void;
  selectedId: number | null;
  onSelect: (pair: Pair) => void;
  onToggleFlag: (pair: Pair, flagged: boolean) => void;
  /** No decisions (a viewer): the flag boxes show the state but cannot change it. */
  readOnly?: boolean;
  /** Asked for when the last loaded rows scroll into view. */
  onNeedMore?: () => void;
  height?: number;
  /** A third score column to show and sort by (any column of the audit). */
  extraColumn?: string | null;
  /** The audit's default method: the `harm` header names it ("harm = length heuristic"). */
  defaultMethod?: string | null;
  /** Longer previews: each row shows four lines of its texts. */
  expanded?: boolean;
}

/** `-harm` ⇄ TanStack's `[{ id: "harm", desc: true }]`. */
export function sortToState(sort: Sort): SortingState {
  const desc = sort.startsWith("-");
  return [{ id: desc ? sort.slice(1) : sort, desc }];
}

export function stateToSort(state: SortingState): Sort {
  const [first] = state;
  if (!first) return "-harm";
  return `${first.desc ? "-" : ""}${first.id}`;
}

const column = createColumnHelper<Pair>();

/** A score column's header: its name and unit, with what a high value means on hover. */
function ScoreHeader({ column, defaultMethod }: { column: string; defaultMethod: string | null }) {
  const text = describeColumn(column, defaultMethod);
  return (
    <span className="col-head" title={text.high ? `High: ${text.high}` : undefined}>
      <span className="col-label">{text.label}</span>
      {text.unit && <span className="col-unit">{text.unit}</span>}
    </span>
  );
}

function scoreOf(pair: Pair, column: string): number | null {
  return (pair.scores as Record<string, number | null | undefined> | null)?.[column] ?? null;
}

function preview(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * The pairs of one audit, ranked server-side (`sort`), virtualised so thousands of rows
 * stay smooth. Rank is the position in the current order.
 */
export function PairsTable({
  pairs,
  total,
  sort,
  onSortChange,
  selectedId,
  onSelect,
  onToggleFlag,
  readOnly = false,
  onNeedMore,
  height = 420,
  extraColumn = "harm_gradient_similarity",
  defaultMethod = null,
  expanded = false,
}: Props) {
  const rowHeight = expanded ? EXPANDED_ROW_HEIGHT : ROW_HEIGHT;
  const scoreIds = useMemo(() => (extraColumn ? ["harm", "loss", extraColumn] : ["harm", "loss"]), [extraColumn]);
  // Up to three metadata fields of the upload, as they appear in the loaded rows.
  const metaKeys = useMemo(() => {
    const keys: string[] = [];
    for (const pair of pairs.slice(0, 200)) {
      for (const key of Object.keys(pair.metadata ?? {})) {
        if (!keys.includes(key) && keys.length < 3) keys.push(key);
      }
    }
    return keys;
  }, [pairs]);
  const metaSignature = metaKeys.join("\u0000");
  const columns = useMemo(
    () => [
      column.display({
        id: "rank",
        header: "Rank",
        cell: (info) => info.row.original.rank ?? info.row.index + 1,
        enableSorting: false,
      }),
      // Sorting by row is sorting by the file's order (the API's `index`); rows count from 1.
      column.accessor("index", {
        header: "Row",
        cell: (info) => info.row.original.row,
        sortDescFirst: false,
      }),
      ...scoreIds.map((id) =>
        column.accessor((pair) => scoreOf(pair, shownScoreColumn(id)), {
          id,
          header: () => <ScoreHeader column={id} defaultMethod={defaultMethod} />,
          cell: (info) => <Num value={info.getValue()} />,
          sortDescFirst: true,
        }),
      ),
      column.accessor("prompt", {
        header: "Prompt",
        cell: (info) => <span className="prompt-preview">{preview(info.getValue())}</span>,
        enableSorting: false,
      }),
      column.accessor("chosen", {
        header: "Chosen",
        cell: (info) => <span className="prompt-preview">{preview(info.getValue()).slice(0, 600)}</span>,
        enableSorting: false,
      }),
      column.accessor("rejected", {
        header: "Rejected",
        cell: (info) => <span className="prompt-preview">{preview(info.getValue()).slice(0, 600)}</span>,
        enableSorting: false,
      }),
      ...metaSignature
        .split("\u0000")
        .filter((key) => key !== "")
        .map((key) =>
          column.accessor((pair) => pair.metadata?.[key], {
            id: `meta:${key}`,
            header: key,
            cell: (info) => {
              const value = info.getValue();
              if (value === undefined || value === null) return <span className="muted">–</span>;
              const text = typeof value === "string" ? value : JSON.stringify(value);
              return <span className="prompt-preview">{text.slice(0, 80)}</span>;
            },
            enableSorting: false,
          }),
        ),
      column.accessor("state", {
        header: "State",
        cell: (info) =>
          info.getValue() === "unreviewed" ? (
            <span className="muted">–</span>
          ) : (
            <span className={`tag tag-${info.getValue()}`}>{info.getValue()}</span>
          ),
        enableSorting: false,
      }),
      column.display({
        id: "flag",
        header: "Flag",
        cell: (info) => {
          const pair = info.row.original;
          return (
            <input
              type="checkbox"
              aria-label={`Flag pair at row ${pair.row}`}
              checked={pair.flagged}
              disabled={readOnly}
              onClick={(event) => event.stopPropagation()}
              onChange={(event) => onToggleFlag(pair, event.target.checked)}
            />
          );
        },
      }),
    ],
    [onToggleFlag, readOnly, scoreIds, defaultMethod, metaSignature],
  );

  const table = useReactTable({
    data: pairs,
    columns,
    state: { sorting: sortToState(sort) },
    manualSorting: true,
    enableSortingRemoval: false,
    onSortingChange: (updater) => {
      const next = typeof updater === "function" ? updater(sortToState(sort)) : updater;
      onSortChange(stateToSort(next));
    },
    getCoreRowModel: getCoreRowModel(),
    getRowId: (pair) => String(pair.id),
  });

  const rows = table.getRowModel().rows;
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => rowHeight,
    overscan: 12,
    initialRect: { width: 800, height },
  });
  const items = virtualizer.getVirtualItems();
  const lastVisible = items.at(-1)?.index ?? -1;

  useEffect(() => {
    if (onNeedMore && rows.length < total && lastVisible >= rows.length - 20) onNeedMore();
  }, [lastVisible, rows.length, total, onNeedMore]);

  useEffect(() => virtualizer.measure(), [rowHeight, virtualizer]);

  const padTop = items.length > 0 ? items[0].start : 0;
  const padBottom = items.length > 0 ? virtualizer.getTotalSize() - items[items.length - 1].end : 0;

  const moveSelection = (event: KeyboardEvent, rowIndex: number) => {
    const step = event.key === "ArrowDown" ? 1 : event.key === "ArrowUp" ? -1 : 0;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onSelect(rows[rowIndex].original);
    } else if (step !== 0) {
      event.preventDefault();
      const next = Math.min(rows.length - 1, Math.max(0, rowIndex + step));
      onSelect(rows[next].original);
      virtualizer.scrollToIndex(next);
      scroller.current
        ?.querySelector<HTMLElement>(`[data-row-index="${next}"]`)
        ?.focus();
    }
  };

  return (
    <div className="table-scroll" ref={scroller} style={{ height }} data-testid="pairs-scroll">
      <table
        className={expanded ? "pairs expanded" : "pairs"}
        aria-label="Pairs ranked by harm"
        aria-rowcount={total}
      >
        <thead>
          {table.getHeaderGroups().map((group) => (
            <tr key={group.id}>
              {group.headers.map((header) => {
                const sorted = header.column.getIsSorted();
                const content = flexRender(header.column.columnDef.header, header.getContext());
                return (
                  <th
                    key={header.id}
                    scope="col"
                    className={`col-${header.column.id}${scoreIds.includes(header.column.id) ? " col-score" : ""}`}
                    aria-sort={sorted === "asc" ? "ascending" : sorted === "desc" ? "descending" : undefined}
                  >
                    {header.column.getCanSort() ? (
                      <button
                        type="button"
                        className="sort-button"
                        onClick={header.column.getToggleSortingHandler()}
                      >
                        {content}
                        <span aria-hidden="true" className="sort-mark">
                          {sorted === "asc" ? "▲" : sorted === "desc" ? "▼" : "↕"}
                        </span>
                      </button>
                    ) : (
                      content
                    )}
                  </th>
                );
              })}
            </tr>
          ))}
        </thead>
        <tbody>
          {padTop > 0 && (
            <tr aria-hidden="true">
              <td colSpan={columns.length} style={{ height: padTop, padding: 0 }} />
            </tr>
          )}
          {items.map((item) => {
            const row = rows[item.index];
            const pair = row.original;
            return (
              <tr
                key={row.id}
                data-row-index={item.index}
                aria-rowindex={item.index + 2}
                aria-selected={pair.id === selectedId}
                className={`${pair.id === selectedId ? "selected" : ""}${pair.flagged ? " flagged" : ""}${pair.state === "swapped" ? " swapped" : ""}`}
                style={{ height: rowHeight }}
                tabIndex={0}
                onClick={() => onSelect(pair)}
                onKeyDown={(event) => moveSelection(event, item.index)}
              >
                {row.getVisibleCells().map((cell) => (
                  <td
                    key={cell.id}
                    className={`col-${cell.column.id}${scoreIds.includes(cell.column.id) ? " col-score" : ""}`}
                  >
                    {flexRender(cell.column.columnDef.cell, cell.getContext())}
                  </td>
                ))}
              </tr>
            );
          })}
          {padBottom > 0 && (
            <tr aria-hidden="true">
              <td colSpan={columns.length} style={{ height: padBottom, padding: 0 }} />
            </tr>
          )}
        </tbody>
      </table>
      {rows.length === 0 && <EmptyState>No pairs match.</EmptyState>}
    </div>
  );
}
