import { useEffect, useState, type FormEvent } from "react";
import { RANKED_COLUMNS } from "../../../api/scoreColumns";
import type { ReviewState, ScoreRange } from "../api/pairs";
import { describeColumn } from "./scoreText";
import type { TagInfo } from "../api/tags";

export const STATES: ReviewState[] = ["unreviewed", "kept", "flagged", "swapped"];

/** Score columns a reviewer ranks and filters by, with what a high value means (the registry's). */
export const SCORE_CHOICES: { column: string; label: string; high: string }[] = RANKED_COLUMNS.map((c) => ({
  column: c.column,
  label: c.label,
  high: c.high,
}));

export type Split = "train" | "val" | "all";

export interface ReviewFilters {
  q: string;
  states: ReviewState[];
  range: ScoreRange | null;
  /** With an audit: its training pairs (scored), its validation pairs, or both. */
  split?: Split;
  /** An exact-check tag (GET /methods/tags); empty: any. */
  tag?: string;
  /** An exact-check tag to leave out (e.g. the ambiguous pairs); empty: none. */
  notTag?: string;
}

interface Props {
  value: ReviewFilters;
  onChange: (value: ReviewFilters) => void;
  sort: string;
  onSortChange: (sort: string) => void;
  /** An audit's scores exist: offer score ranges and score sorts. */
  scored?: boolean;
  /** The audit's default method: the `harm` choice is named after it. */
  defaultMethod?: string | null;
  /** The exact-check tags to filter by (GET /methods/tags), with the dataset's counts. */
  tags?: TagInfo[];
  tagCounts?: Record<string, number>;
}

function parseBound(text: string): number | undefined {
  if (text.trim() === "") return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** Search, review state, a score range and the sort column: the list's filter model. */
export function ReviewFilterBar({
  value,
  onChange,
  sort,
  onSortChange,
  scored = true,
  tags = [],
  tagCounts = {},
  defaultMethod = null,
}: Props) {
  // `harm` is named after the method that filled it ("harm = length heuristic").
  const label = (c: { column: string; label: string }) =>
    c.column === "harm" && defaultMethod ? describeColumn("harm", defaultMethod).label : c.label;
  const [q, setQ] = useState(value.q);
  const [column, setColumn] = useState(value.range?.column ?? "harm");
  const [min, setMin] = useState(value.range?.min !== undefined ? String(value.range.min) : "");
  const [max, setMax] = useState(value.range?.max !== undefined ? String(value.range.max) : "");
  useEffect(() => setQ(value.q), [value.q]);
  // A range picked elsewhere (brushing the histogram) shows here. The parent rebuilds its range
  // object on every render, so this follows its values: a re-render must not undo what is typed.
  const [rangeColumn, rangeMin, rangeMax] = [value.range?.column, value.range?.min, value.range?.max];
  useEffect(() => {
    if (rangeColumn === undefined) return;
    setColumn(rangeColumn);
    setMin(rangeMin !== undefined ? String(Number(rangeMin.toPrecision(6))) : "");
    setMax(rangeMax !== undefined ? String(Number(rangeMax.toPrecision(6))) : "");
  }, [rangeColumn, rangeMin, rangeMax]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const lo = parseBound(min);
    const hi = parseBound(max);
    onChange({
      ...value,
      q: q.trim(),
      range: lo === undefined && hi === undefined ? null : { column, min: lo, max: hi },
    });
  };
  const descending = sort.startsWith("-");
  const sortKey = descending ? sort.slice(1) : sort;
  const choice = SCORE_CHOICES.find((c) => c.column === sortKey);

  return (
    <form className="filter-bar" role="search" aria-label="Filter pairs" onSubmit={submit}>
      <label>
        Search
        <input
          type="search"
          value={q}
          placeholder="words in prompt, chosen or rejected"
          onChange={(e) => setQ(e.target.value)}
        />
      </label>
      <label>
        State
        <select
          value={value.states.length === 1 ? value.states[0] : ""}
          onChange={(e) =>
            onChange({ ...value, states: e.target.value ? [e.target.value as ReviewState] : [] })
          }
        >
          <option value="">any</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      {tags.length > 0 && (
        <>
          <label title={tags.find((t) => t.name === value.tag)?.description}>
            Check
            <select value={value.tag ?? ""} onChange={(e) => onChange({ ...value, tag: e.target.value })}>
              <option value="">any</option>
              {tagOptions(tags, tagCounts)}
            </select>
          </label>
          <label title="Leave out the pairs that carry this tag (e.g. the ambiguous ones)">
            Except
            <select value={value.notTag ?? ""} onChange={(e) => onChange({ ...value, notTag: e.target.value })}>
              <option value="">none</option>
              {tagOptions(tags, tagCounts)}
            </select>
          </label>
        </>
      )}
      {scored && (
        <label>
          Split
          <select
            value={value.split ?? "train"}
            onChange={(e) => onChange({ ...value, split: e.target.value as Split })}
          >
            <option value="train">training (scored)</option>
            <option value="val">validation</option>
            <option value="all">both</option>
          </select>
        </label>
      )}
      {scored && (
      <fieldset className="range">
        <legend>Score range</legend>
        <label>
          Range column
          <select value={column} onChange={(e) => setColumn(e.target.value)}>
            {SCORE_CHOICES.map((c) => (
              <option key={c.column} value={c.column}>
                {label(c)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Range min
          <input inputMode="decimal" value={min} onChange={(e) => setMin(e.target.value)} size={7} />
        </label>
        <label>
          Range max
          <input inputMode="decimal" value={max} onChange={(e) => setMax(e.target.value)} size={7} />
        </label>
      </fieldset>
      )}
      <button type="submit">Apply filters</button>
      <label>
        Sort by
        <select value={sortKey} onChange={(e) => onSortChange(`${descending ? "-" : ""}${e.target.value}`)}>
          <option value="index">row</option>
          <option value="length">length</option>
          {scored && SCORE_CHOICES.map((c) => (
            <option key={c.column} value={c.column}>
              {label(c)}
            </option>
          ))}
        </select>
      </label>
      <label className="inline">
        <input
          type="checkbox"
          checked={descending}
          onChange={(e) => onSortChange(`${e.target.checked ? "-" : ""}${sortKey}`)}
        />
        highest first
      </label>
      {choice?.high && (
        <p className="muted small explanation">
          High {label(choice)}: {choice.column === "harm" && defaultMethod ? describeColumn("harm", defaultMethod).high : choice.high}.
        </p>
      )}
    </form>
  );
}

/** A tag per option, with the dataset's count where it is known. */
function tagOptions(tags: TagInfo[], tagCounts: Record<string, number>) {
  return tags.map((t) => {
    const n = tagCounts[t.name];
    return (
      <option key={t.name} value={t.name} title={t.description}>
        {n === undefined ? t.label : `${t.label} (${n.toLocaleString()})`}
      </option>
    );
  });
}
