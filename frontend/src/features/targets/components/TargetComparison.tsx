// Two targeted audits side by side: their top-k lists by harm against each one's target, the
// overlap, the rank correlation and a scatter of the two influence columns.
import { useState } from "react";
import { Alert } from "../../../components/ui/Alert";
import { Num } from "../../../components/ui/Num";
import { useTargetComparison } from "../api/targets";

/** What the comparison endpoint returns (its scatter is a list of [a, b] points). */
type Compared = NonNullable<ReturnType<typeof useTargetComparison>["data"]>;

interface Audit {
  id: number;
  label: string;
}

export function TargetComparison({ datasetId, audits }: { datasetId: number; audits: Audit[] }) {
  const [a, setA] = useState<number | null>(audits[0]?.id ?? null);
  const [b, setB] = useState<number | null>(audits[1]?.id ?? null);
  const [k, setK] = useState(20);
  const compared = useTargetComparison(datasetId, a, b, k);
  const pick = (value: number | null, set: (id: number | null) => void, label: string) => (
    <label>
      {label}
      <select value={value ?? ""} onChange={(e) => set(Number(e.target.value) || null)}>
        {audits.map((audit) => (
          <option key={audit.id} value={audit.id}>
            {audit.label}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <section className="card" aria-labelledby="compare-title">
      <h2 id="compare-title">Compare two targets</h2>
      <div className="launch-row">
        {pick(a, setA, "Audit A")}
        {pick(b, setB, "Audit B")}
        <label>
          Top k
          <input type="number" min={1} max={1000} value={k} onChange={(e) => setK(Number(e.target.value) || 20)} />
        </label>
      </div>
      {a === b && <p className="muted">Pick two different audits.</p>}
      {compared.isError && <Alert title="Could not compare" error={compared.error} />}
      {compared.data && <ComparisonView data={compared.data} />}
    </section>
  );
}

function ComparisonView({ data }: { data: Compared }) {
  const inB = new Set(data.top_b.map((p) => p.pair_id));
  const inA = new Set(data.top_a.map((p) => p.pair_id));
  return (
    <div data-testid="target-comparison">
      <p>
        {data.overlap} of the top {data.k} pairs are in both lists (Jaccard <Num value={data.jaccard} />
        ); rank correlation of the two harm columns over every pair:{" "}
        <Num value={data.spearman ?? null} />.
      </p>
      <div className="two-col">
        {[
          { title: data.target_a ?? `audit ${data.job_a}`, rows: data.top_a, other: inB },
          { title: data.target_b ?? `audit ${data.job_b}`, rows: data.top_b, other: inA },
        ].map((side) => (
          <div key={side.title}>
            <h3>{side.title}</h3>
            <ol>
              {side.rows.map((row) => (
                <li key={row.pair_id} className={side.other.has(row.pair_id) ? "shared" : undefined}>
                  pair {row.pair_id} · <Num value={row.harm ?? null} />
                  {side.other.has(row.pair_id) ? " (in both)" : ""}
                </li>
              ))}
            </ol>
          </div>
        ))}
      </div>
      <Scatter points={data.scatter} />
    </div>
  );
}

function Scatter({ points }: { points: Compared["scatter"] }) {
  if (points.length === 0) return null;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => 10 + (280 * (x - x0)) / (x1 - x0 || 1);
  const sy = (y: number) => 190 - (180 * (y - y0)) / (y1 - y0 || 1);
  return (
    <svg width={300} height={200} role="img" aria-label="Harm against target A (x) and B (y), one dot per pair">
      <rect x={0} y={0} width={300} height={200} fill="none" stroke="currentColor" strokeOpacity={0.2} />
      {points.map(([x, y], i) => (
        <circle key={i} cx={sx(x)} cy={sy(y)} r={2} fillOpacity={0.5} />
      ))}
    </svg>
  );
}
