import type { Key, ReactNode } from "react";

/** One column of a <Table>: its header, how a row fills its cell, and a class for both. */
export interface Column<T> {
  key: string;
  header: ReactNode;
  cell: (row: T) => ReactNode;
  /** "num" right-aligns tabular figures. */
  className?: string;
  /** The cell is the row's header (`<th scope="row">`). */
  rowHeader?: boolean;
}

/**
 * The app's data table: a labelled, keyboard-scrollable region around a plain table with
 * column headers. An empty list shows `empty` instead of an empty table.
 */
export function Table<T>({
  label,
  columns,
  rows,
  rowKey,
  className,
  empty,
  rowProps,
}: {
  label: string;
  columns: Column<T>[];
  rows: readonly T[];
  rowKey: (row: T) => Key;
  className?: string;
  empty?: ReactNode;
  rowProps?: (row: T) => Record<string, string | undefined>;
}) {
  if (rows.length === 0 && empty !== undefined) return <>{empty}</>;
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      <table className={className} aria-label={label}>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column.key} scope="col" className={column.className}>
                {column.header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} {...rowProps?.(row)}>
              {columns.map((column) =>
                column.rowHeader ? (
                  <th key={column.key} scope="row" className={column.className}>
                    {column.cell(row)}
                  </th>
                ) : (
                  <td key={column.key} className={column.className}>
                    {column.cell(row)}
                  </td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
