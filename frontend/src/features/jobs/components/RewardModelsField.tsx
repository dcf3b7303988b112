import { useState } from "react";
import { helpOf } from "../api/options";
import { useSavedModels } from "../api/savedModels";
import { Alert } from "../../../components/ui/Alert";

/** At most this many reward models per audit (the server's `reward_models` limit). */
export const MAX_REWARD_MODELS = 4;

interface Props {
  value: string[];
  onChange: (models: string[]) => void;
}

/** Outside reward models for an audit: the models the user's earlier audits saved, ticked, and
 * any other directories or hub ids typed one per line. Each fills a margin column; their mean,
 * spread, votes against the label and an ambiguous flag fill four more. */
export function RewardModelsField({ value, onChange }: Props) {
  const saved = useSavedModels();
  const savedRefs = new Set((saved.data ?? []).map((m) => m.ref));
  const [others, setOthers] = useState("");

  const picked = value.filter((name) => savedRefs.has(name));
  const emit = (refs: string[], text: string) => {
    const typed = text
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "");
    onChange([...refs, ...typed.filter((name) => !refs.includes(name))]);
  };

  return (
    <fieldset className="methods" title={helpOf("reward_models")}>
      <legend>Reward models that vote (up to {MAX_REWARD_MODELS})</legend>
      {saved.isError && <Alert title="Could not list your saved models" error={saved.error} />}
      {saved.data?.length === 0 && (
        <p className="muted">No saved models yet: launch a LoRA audit with save_model to keep one.</p>
      )}
      {saved.data?.map((model) => (
        <label key={model.ref} className="inline" title={model.path}>
          <input
            type="checkbox"
            checked={picked.includes(model.ref)}
            disabled={!picked.includes(model.ref) && value.length >= MAX_REWARD_MODELS}
            onChange={(e) =>
              emit(
                e.target.checked ? [...picked, model.ref] : picked.filter((r) => r !== model.ref),
                others,
              )
            }
          />
          Audit #{model.job_id}: {model.model} on {model.dataset_name}
        </label>
      ))}
      <label>
        Other reward models: a directory or hub id per line
        <textarea
          rows={2}
          value={others}
          placeholder="/models/my-rm or org/name"
          onChange={(e) => {
            setOthers(e.target.value);
            emit(picked, e.target.value);
          }}
        />
      </label>
    </fieldset>
  );
}
