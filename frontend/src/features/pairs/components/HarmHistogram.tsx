import { useMemo, useRef, useState, type PointerEvent } from "react";
import { count } from "../../../components/ui/count";

/** Equal-width bins of one score column: `edges` has one more entry than `counts`. */
export interface Histogram {
  edges: number[];
  counts: number[];
}

interface Props {
  histogram: Histogram;
  /** Marks where a "flag top fraction" cut would fall. */
  topFraction?: number;
  caption?: string;
  width?: number;
  height?: number;
  /** The score column plotted (for the labels). */
  column?: string;
  /** Brushing: drag across the plot, or click a bar, to pick a score range. */
  onBrush?: (min: number, max: number) => void;
  /** The range picked now, drawn over the bars. */
  selected?: { min?: number; max?: number } | null;
}

/**
 * The value above which the `fraction` highest values lie, estimated from the bin counts: the
 * server flags the ceil(fraction × n) highest pairs, and within the bin where that rank falls
 * the values are taken as evenly spread, so the estimate is off by less than one bin width.
 */
export function cutoff({ edges, counts }: Histogram, fraction: number): number | null {
  const n = counts.reduce((sum, count) => sum + count, 0);
  if (n === 0 || fraction <= 0) return null;
  const k = Math.max(1, Math.ceil(n * Math.min(1, fraction)));
  let above = 0;
  for (let i = counts.length - 1; i >= 0; i -= 1) {
    if (above + counts[i] >= k) {
      return edges[i + 1] - ((k - above) / counts[i]) * (edges[i + 1] - edges[i]);
    }
    above += counts[i];
  }
  return edges[0];
}

const M = { top: 20, right: 16, bottom: 34, left: 44 };

/** Enough significant digits that the axis ticks of a narrow range still differ. */
export function tickFormatter(lo: number, hi: number): (value: number) => string {
  const span = Math.abs(hi - lo);
  const magnitude = Math.max(Math.abs(lo), Math.abs(hi));
  const digits =
    span > 0 && magnitude > 0 ? Math.min(10, Math.max(3, Math.ceil(Math.log10(magnitude / span)) + 2)) : 3;
  return (value: number) => String(Number(value.toPrecision(digits)));
}

/** Distribution of the job's harm scores (binned by the server), with the flagging cut-off drawn in. */
export function HarmHistogram({
  histogram: hist,
  topFraction,
  caption,
  width = 640,
  height = 200,
  column = "harm",
  onBrush,
  selected = null,
}: Props) {
  const n = useMemo(() => hist.counts.reduce((sum, count) => sum + count, 0), [hist]);
  const svg = useRef<SVGSVGElement>(null);
  const [drag, setDrag] = useState<{ from: number; to: number } | null>(null);
  const cut = useMemo(
    () => (topFraction !== undefined ? cutoff(hist, topFraction) : null),
    [hist, topFraction],
  );
  if (n === 0) return <p className="muted">No harm scores to plot.</p>;

  const innerW = width - M.left - M.right;
  const innerH = height - M.top - M.bottom;
  const maxCount = Math.max(...hist.counts);
  const lo = hist.edges[0];
  const hi = hist.edges[hist.edges.length - 1];
  const x = (value: number) => M.left + ((value - lo) / (hi - lo || 1)) * innerW;
  const y = (count: number) => M.top + innerH - (count / maxCount) * innerH;
  const barW = innerW / hist.counts.length;
  const ticks = [lo, (lo + hi) / 2, hi];
  const format = tickFormatter(lo, hi);
  const valueAt = (event: PointerEvent) => {
    const box = svg.current?.getBoundingClientRect();
    if (!box || box.width === 0) return null;
    const px = ((event.clientX - box.left) / box.width) * width;
    return lo + (Math.min(Math.max(px - M.left, 0), innerW) / innerW) * (hi - lo);
  };
  const shown = drag ? { min: Math.min(drag.from, drag.to), max: Math.max(drag.from, drag.to) } : selected;

  return (
    <figure className="histogram">
      <svg
        ref={svg}
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Histogram of ${column} scores for ${count(n, "pair")}, from ${format(lo)} to ${format(hi)}`}
        className={onBrush ? "brushable" : undefined}
        onPointerDown={(event) => {
          const value = onBrush ? valueAt(event) : null;
          if (value !== null) setDrag({ from: value, to: value });
        }}
        onPointerMove={(event) => {
          const value = drag ? valueAt(event) : null;
          if (drag && value !== null) setDrag({ ...drag, to: value });
        }}
        onPointerUp={() => {
          if (drag && onBrush && Math.abs(drag.to - drag.from) > (hi - lo) / 200) {
            onBrush(Math.min(drag.from, drag.to), Math.max(drag.from, drag.to));
          }
          setDrag(null);
        }}
      >
        {shown && (shown.min !== undefined || shown.max !== undefined) && (
          <rect
            className="brush"
            x={x(Math.max(lo, shown.min ?? lo))}
            y={M.top}
            width={Math.max(1, x(Math.min(hi, shown.max ?? hi)) - x(Math.max(lo, shown.min ?? lo)))}
            height={innerH}
          />
        )}
        {hist.counts.map((count, i) => {
          // A bin is drawn as cut when some of its pairs lie above the cut-off.
          const flagged = cut !== null && hist.edges[i + 1] > cut;
          return (
            <rect
              key={i}
              x={M.left + i * barW + 1}
              y={y(count)}
              width={Math.max(1, barW - 2)}
              height={M.top + innerH - y(count)}
              className={flagged ? "bar bar-cut" : "bar"}
              data-testid="histogram-bar"
              onClick={() => !drag && onBrush?.(hist.edges[i], hist.edges[i + 1])}
            >
              <title>
                {count} pairs with {column} in [{format(hist.edges[i])}, {format(hist.edges[i + 1])})
              </title>
            </rect>
          );
        })}
        <line x1={M.left} x2={M.left + innerW} y1={M.top + innerH} y2={M.top + innerH} className="axis" />
        <line x1={M.left} x2={M.left} y1={M.top} y2={M.top + innerH} className="axis" />
        {ticks.map((tick) => (
          <text key={tick} x={x(tick)} y={height - 16} textAnchor="middle" className="tick">
            {format(tick)}
          </text>
        ))}
        <text x={M.left - 6} y={M.top + 8} textAnchor="end" className="tick">
          {maxCount}
        </text>
        <text x={M.left - 6} y={M.top + innerH} textAnchor="end" className="tick">
          0
        </text>
        <text x={M.left + innerW / 2} y={height - 2} textAnchor="middle" className="axis-label">
          {column} (higher = more harmful){onBrush ? " · drag or click to filter" : ""}
        </text>
        {cut !== null && (
          <g>
            <line x1={x(cut)} x2={x(cut)} y1={M.top - 2} y2={M.top + innerH} className="cut" />
            <text x={x(cut)} y={M.top - 6} textAnchor="middle" className="cut-label">
              top {Number(((topFraction ?? 0) * 100).toPrecision(3))}% →
            </text>
          </g>
        )}
      </svg>
      {caption && <figcaption className="muted small">{caption}</figcaption>}
    </figure>
  );
}
