import { ARMS, type Arm, type VerifyMetrics } from "../api/verify";
import { formatPercent } from "./format";

export const ARM_LABELS: Record<Arm, string> = {
  full: "All pairs",
  pruned: "Pruned",
  random: "Random removal",
  top_k: "Top-K, first order",
};

interface Props {
  metrics: VerifyMetrics;
  width?: number;
  height?: number;
}

const M = { top: 18, right: 40, bottom: 46, left: 52 };

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k). */
export function niceTicks(lo: number, hi: number, count = 4): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let tick = Math.ceil(lo / step) * step; tick <= hi + step * 1e-9; tick += step) {
    ticks.push(Number(tick.toPrecision(12)));
  }
  return ticks;
}

/**
 * Pairwise accuracy of every retrain: one dot per seed in each training set, thin lines joining
 * the same seed across sets (the differences are paired by seed), and each set's mean ± std.
 */
export function VerifyPlot({ metrics, width = 460, height = 270 }: Props) {
  const arms = ARMS.filter((arm) => metrics.runs.some((run) => run.arm === arm));
  const seeds = [...new Set(metrics.runs.map((run) => run.seed))].sort((a, b) => a - b);
  const accuracy = (arm: Arm, seed: number) =>
    metrics.runs.find((run) => run.arm === arm && run.seed === seed)?.accuracy;
  const summary = (arm: Arm) => metrics.arms[arm]?.accuracy;
  const nTrain = (arm: Arm) => metrics.runs.find((run) => run.arm === arm)?.n_train;

  // The y range covers every point and every mean ± std, padded so nothing sits on the frame.
  const extent: number[] = metrics.runs.map((run) => run.accuracy);
  for (const arm of arms) {
    const s = summary(arm);
    if (s?.mean != null) extent.push(s.mean - (s.std ?? 0), s.mean + (s.std ?? 0));
  }
  if (extent.length === 0) return <p className="muted">No retrains to plot.</p>;
  const min = Math.min(...extent);
  const max = Math.max(...extent);
  const pad = Math.max(0.01, (max - min) * 0.12);
  const lo = Math.max(0, min - pad);
  const hi = Math.min(1, max + pad);

  const innerW = width - M.left - M.right;
  const innerH = height - M.top - M.bottom;
  const band = innerW / Math.max(1, arms.length);
  const center = (i: number) => M.left + band * (i + 0.5);
  const y = (value: number) => M.top + innerH - ((value - lo) / (hi - lo || 1)) * innerH;
  // Seeds spread side by side left of the centre; the mean ± std bar stands right of them.
  const spread = Math.min(12, (band * 0.35) / Math.max(1, seeds.length));
  const dotX = (i: number, k: number) => center(i) - 6 + (k - (seeds.length - 1) / 2) * spread;
  const barX = (i: number) => center(i) + (seeds.length * spread) / 2 + 6;
  const ticks = niceTicks(lo, hi);
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 0.01;
  const tickDigits = step >= 0.01 ? 0 : step >= 0.001 ? 1 : 2;

  const label = arms
    .map((arm) => `${ARM_LABELS[arm].toLowerCase()} mean ${formatPercent(summary(arm)?.mean)}`)
    .join(", ");

  return (
    <figure className="verify-plot">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Pairwise accuracy of each retrain over ${seeds.length} seeds: ${label}`}
      >
        {ticks.map((tick) => (
          <g key={tick}>
            <line x1={M.left} x2={M.left + innerW} y1={y(tick)} y2={y(tick)} className="grid" />
            <text x={M.left - 6} y={y(tick) + 4} textAnchor="end" className="tick">
              {formatPercent(tick, tickDigits)}
            </text>
          </g>
        ))}
        <line x1={M.left} x2={M.left} y1={M.top} y2={M.top + innerH} className="axis" />
        <line x1={M.left} x2={M.left + innerW} y1={M.top + innerH} y2={M.top + innerH} className="axis" />
        <text
          transform={`translate(14 ${M.top + innerH / 2}) rotate(-90)`}
          textAnchor="middle"
          className="axis-label"
        >
          pairwise accuracy
        </text>
        {seeds.map((seed, k) => {
          const points = arms
            .map((arm, i) => [dotX(i, k), accuracy(arm, seed)] as const)
            .filter((point): point is readonly [number, number] => point[1] !== undefined)
            .map(([px, value]) => `${px},${y(value)}`);
          return <polyline key={seed} points={points.join(" ")} className="seed-line" />;
        })}
        {arms.map((arm, i) => {
          const s = summary(arm);
          return (
            <g key={arm} className={`arm arm-${arm}`} data-arm={arm}>
              {seeds.map((seed, k) => {
                const value = accuracy(arm, seed);
                return (
                  value !== undefined && (
                    <circle key={seed} cx={dotX(i, k)} cy={y(value)} r={4} className="dot">
                      <title>
                        {ARM_LABELS[arm]}, seed {seed}: {formatPercent(value)}
                      </title>
                    </circle>
                  )
                );
              })}
              {s?.mean != null && (
                <g className="mean">
                  {s.std != null && s.std > 0 && (
                    <>
                      <line x1={barX(i)} x2={barX(i)} y1={y(s.mean - s.std)} y2={y(s.mean + s.std)} />
                      <line x1={barX(i) - 4} x2={barX(i) + 4} y1={y(s.mean - s.std)} y2={y(s.mean - s.std)} />
                      <line x1={barX(i) - 4} x2={barX(i) + 4} y1={y(s.mean + s.std)} y2={y(s.mean + s.std)} />
                    </>
                  )}
                  <line
                    x1={dotX(i, 0) - 7}
                    x2={barX(i) + 7}
                    y1={y(s.mean)}
                    y2={y(s.mean)}
                    className="mean-line"
                  >
                    <title>
                      {ARM_LABELS[arm]}: mean {formatPercent(s.mean)}
                      {s.std != null && ` ± ${(s.std * 100).toFixed(1)} points (std over seeds)`}
                    </title>
                  </line>
                  <text x={barX(i) + 10} y={y(s.mean) + 4} className="mean-label">
                    {formatPercent(s.mean)}
                  </text>
                </g>
              )}
              <text x={center(i)} y={M.top + innerH + 18} textAnchor="middle" className="arm-label">
                {ARM_LABELS[arm]}
              </text>
              <text x={center(i)} y={M.top + innerH + 33} textAnchor="middle" className="tick">
                {nTrain(arm) !== undefined && `${nTrain(arm)} training pairs`}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption className="muted small">
        Dots: one retrain per seed, joined by seed. Bars: mean ± standard deviation over seeds.
      </figcaption>
    </figure>
  );
}
