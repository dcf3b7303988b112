// The launch form's target field: aim an audit at one of the dataset's target sets, or at none.
import { useTargetSets } from "../api/targets";
import { count } from "../../../components/ui/count";

export function TargetPicker({
  datasetId,
  value,
  onChange,
}: {
  datasetId: number;
  value: number | null;
  onChange: (id: number | null) => void;
}) {
  const targets = useTargetSets(datasetId);
  const items = targets.data?.items ?? [];
  return (
    <label title="Influence, gradient similarity, DataInf and TracIn measure against this target's loss instead of the validation loss; loss, length and the other training-loss scores do not change.">
      Target set (targeted audit)
      <select value={value ?? ""} onChange={(e) => onChange(Number(e.target.value) || null)}>
        <option value="">None: measure against the validation split</option>
        {items.map((target) => (
          <option key={target.id} value={target.id}>
            {target.name} ({count(target.n_pairs, "pair")})
          </option>
        ))}
      </select>
    </label>
  );
}
